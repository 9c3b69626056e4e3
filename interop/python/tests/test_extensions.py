"""RabbitMQ extensions: priority queues, dead-lettering (rejected, expired, delivery limit),
TTLs, length limits with reject-publish, single active consumer, direct reply-to, alternate
exchanges, the delayed-message and consistent-hash exchanges, quorum queue declaration and
consumer timeouts.

Where RabbitMQ 3.10 (the oracle) and current RabbitMQ (4.x) differ, these tests expect the 4.x
answer, which warren gives: `x-last-death-*` headers, `x-delivery-count` and a delivery limit on
classic queues, `x-consumer-timeout` as a queue argument. The delayed-message exchange is a
plugin the oracle does not have.
"""

import time
from datetime import datetime

import pika
import pika.exceptions as exc
import pytest

from conftest import publish_confirmed, pump, rabbitmq_3x, unique, wait_until

REPLY_TO = "amq.rabbitmq.reply-to"


def _get_all(ch, q):
    """Every message now in q (basic.get, auto-ack) as (method, properties, body)."""
    out = []
    while True:
        method, props, body = ch.basic_get(q, auto_ack=True)
        if method is None:
            return out
        out.append((method, props, body))


def _poll_get(conn, ch, q, timeout=10.0, what=None):
    """basic.get q until a message comes (auto-ack); fail after timeout seconds."""
    got = []

    def _try():
        method, props, body = ch.basic_get(q, auto_ack=True)
        if method is not None:
            got.append((method, props, body))
        return bool(got)

    wait_until(conn, _try, timeout=timeout, what=what or f"a message in {q}")
    return got[0]


def _dead_letter_setup(ch, cleanup, prefix, **source_args):
    """A direct DLX with a queue bound on 'dead', and a source queue dead-lettering to it
    with x-dead-letter-routing-key 'dead'. Returns (source, dlx, dlq)."""
    dlx = cleanup.exchange(unique(f"{prefix}-dlx"))
    dlq = cleanup.queue(unique(f"{prefix}-dlq"))
    src = cleanup.queue(unique(f"{prefix}-src"))
    ch.exchange_declare(dlx, "direct")
    ch.queue_declare(dlq)
    ch.queue_bind(dlq, dlx, "dead")
    args = {"x-dead-letter-exchange": dlx, "x-dead-letter-routing-key": "dead"}
    args.update(source_args)
    ch.queue_declare(src, arguments=args)
    return src, dlx, dlq


def _check_death(conn, headers, *, queue, reason, exchange, routing_keys, before, extra=None):
    """The x-death history (one entry) and x-first/last-death-* headers of a message that
    died once in `queue`."""
    deaths = headers["x-death"]
    assert isinstance(deaths, list) and len(deaths) == 1, deaths
    death = dict(deaths[0])
    when = death.pop("time")
    assert isinstance(when, datetime)
    # A timestamp has whole seconds.
    assert before - 1 <= when.timestamp() <= time.time() + 1, (when, before)
    expected = {
        "count": 1,
        "reason": reason,
        "queue": queue,
        "exchange": exchange,
        "routing-keys": routing_keys,
    }
    expected.update(extra or {})
    assert death == expected
    assert headers["x-first-death-reason"] == reason
    assert headers["x-first-death-queue"] == queue
    assert headers["x-first-death-exchange"] == exchange
    if not rabbitmq_3x(conn):
        # RabbitMQ 3.13 and later also set x-last-death-*.
        assert headers["x-last-death-reason"] == reason
        assert headers["x-last-death-queue"] == queue
        assert headers["x-last-death-exchange"] == exchange


# -- 1. priority queues ---------------------------------------------------------------------


def test_priority_queue_highest_first_fifo_within_priority(conn, cleanup):
    ch = conn.channel()
    q = cleanup.queue(unique("prio"))
    ch.queue_declare(q, arguments={"x-max-priority": 10})
    sent = [
        ("p1-a", 1),
        ("none-a", None),
        ("p5-a", 5),
        ("p9-a", 9),
        ("p1-b", 1),
        ("p5-b", 5),
        ("none-b", None),
        ("p9-b", 9),
    ]
    pub = conn.channel()
    pub.confirm_delivery()
    for body, prio in sent:
        pub.basic_publish("", q, body.encode(), pika.BasicProperties(priority=prio))
    pub.close()
    assert ch.queue_declare(q, passive=True).method.message_count == len(sent)

    got = []
    tag = ch.basic_consume(q, lambda c, m, p, b: got.append((b.decode(), p.priority)),
                           auto_ack=True)
    wait_until(conn, lambda: len(got) >= len(sent), what="every message")
    ch.basic_cancel(tag)
    assert got == [
        ("p9-a", 9),
        ("p9-b", 9),
        ("p5-a", 5),
        ("p5-b", 5),
        ("p1-a", 1),
        ("p1-b", 1),
        ("none-a", None),
        ("none-b", None),
    ]


# -- 2. dead-lettering on basic.reject ------------------------------------------------------


def test_reject_without_requeue_dead_letters_with_x_death(conn, cleanup):
    ch = conn.channel()
    src, dlx, dlq = _dead_letter_setup(ch, cleanup, "dlx-rej")
    before = time.time()
    publish_confirmed(
        conn, src, [b"rejected body"],
        properties=pika.BasicProperties(headers={"app": "kept"}, message_id="m-1"),
    )
    method, _props, body = ch.basic_get(src)
    assert body == b"rejected body"
    ch.basic_reject(method.delivery_tag, requeue=False)

    method, props, body = _poll_get(conn, ch, dlq, what="the dead-lettered message")
    assert body == b"rejected body"
    assert (method.exchange, method.routing_key, method.redelivered) == (dlx, "dead", False)
    assert props.message_id == "m-1"
    headers = dict(props.headers)
    assert headers.pop("app") == "kept"
    _check_death(
        conn, headers, queue=src, reason="rejected", exchange="", routing_keys=[src],
        before=before,
    )
    expected_keys = {"x-death", "x-first-death-reason", "x-first-death-queue",
                     "x-first-death-exchange"}
    if not rabbitmq_3x(conn):
        expected_keys |= {"x-last-death-reason", "x-last-death-queue", "x-last-death-exchange"}
    assert set(headers) == expected_keys
    assert ch.queue_declare(src, passive=True).method.message_count == 0
    assert ch.queue_declare(dlq, passive=True).method.message_count == 0


# -- 3. TTL: per-queue and per-message expiry dead-letter with reason 'expired' -------------


def test_queue_ttl_expiry_dead_letters_expired(conn, cleanup):
    ch = conn.channel()
    src, dlx, dlq = _dead_letter_setup(ch, cleanup, "ttl-q", **{"x-message-ttl": 100})
    before = time.time()
    publish_confirmed(conn, src, [b"short-lived"])
    method, props, body = _poll_get(conn, ch, dlq, what="the expired message")
    assert body == b"short-lived"
    assert (method.exchange, method.routing_key) == (dlx, "dead")
    assert props.expiration is None
    _check_death(
        conn, props.headers, queue=src, reason="expired", exchange="", routing_keys=[src],
        before=before,
    )
    assert "original-expiration" not in props.headers["x-death"][0]
    assert ch.queue_declare(src, passive=True).method.message_count == 0


def test_message_expiration_dead_letters_with_original_expiration(conn, cleanup):
    ch = conn.channel()
    src, dlx, dlq = _dead_letter_setup(ch, cleanup, "ttl-msg")
    before = time.time()
    publish_confirmed(
        conn, src, [b"expiring"], properties=pika.BasicProperties(expiration="150"),
    )
    # Expiry takes ~150 ms: the message must not be dead yet.
    assert ch.basic_get(dlq, auto_ack=True)[0] is None
    method, props, body = _poll_get(conn, ch, dlq, what="the expired message")
    assert body == b"expiring"
    assert (method.exchange, method.routing_key) == (dlx, "dead")
    # The expiration property is removed; x-death keeps it as original-expiration.
    assert props.expiration is None
    _check_death(
        conn, props.headers, queue=src, reason="expired", exchange="", routing_keys=[src],
        before=before, extra={"original-expiration": "150"},
    )
    assert ch.queue_declare(src, passive=True).method.message_count == 0


# -- 4. x-max-length with x-overflow reject-publish -----------------------------------------


def test_max_length_reject_publish_nacks_overflow(conn, cleanup):
    ch = conn.channel()
    q = cleanup.queue(unique("maxlen"))
    ch.queue_declare(q, arguments={"x-max-length": 2, "x-overflow": "reject-publish"})
    pub = conn.channel()
    pub.confirm_delivery()
    pub.basic_publish("", q, b"one")
    pub.basic_publish("", q, b"two")
    with pytest.raises(exc.NackError):
        pub.basic_publish("", q, b"three")
    assert pub.is_open
    assert ch.queue_declare(q, passive=True).method.message_count == 2
    # Room again after one is taken: the next publish is acked.
    method, _p, body = ch.basic_get(q, auto_ack=True)
    assert body == b"one"
    pub.basic_publish("", q, b"four")
    assert [b for _m, _p, b in _get_all(ch, q)] == [b"two", b"four"]


# -- 5. delivery limit ----------------------------------------------------------------------


def test_delivery_limit_dead_letters_after_failed_deliveries(conn, cleanup):
    ch = conn.channel()
    src, dlx, dlq = _dead_letter_setup(ch, cleanup, "dlimit", **{"x-delivery-limit": 1})
    before = time.time()
    publish_confirmed(conn, src, [b"poison"])

    method, props, body = ch.basic_get(src)
    assert (body, method.redelivered) == (b"poison", False)
    assert props.headers is None
    ch.basic_reject(method.delivery_tag, requeue=True)

    method, props, body = ch.basic_get(src)
    assert (body, method.redelivered) == (b"poison", True)
    # RabbitMQ 4.x: one failed delivery so far, one return.
    assert props.headers == {"x-delivery-count": 1, "x-acquired-count": 1}
    ch.basic_reject(method.delivery_tag, requeue=True)

    # The second failed delivery exceeds the limit of 1: dead-lettered, not requeued.
    method, props, body = _poll_get(conn, ch, dlq, what="the dead-lettered message")
    assert body == b"poison"
    assert (method.exchange, method.routing_key) == (dlx, "dead")
    _check_death(
        conn, props.headers, queue=src, reason="delivery_limit", exchange="",
        routing_keys=[src], before=before,
    )
    assert ch.basic_get(src, auto_ack=True)[0] is None


# -- 6. single active consumer --------------------------------------------------------------


def test_single_active_consumer_and_failover(conn, cleanup):
    ch = conn.channel()
    q = cleanup.queue(unique("sac"))
    ch.queue_declare(q, arguments={"x-single-active-consumer": True})
    ch_a, ch_b = conn.channel(), conn.channel()
    got = {"a": [], "b": []}
    ch_a.basic_consume(q, lambda c, m, p, b: got["a"].append(b), auto_ack=True,
                       consumer_tag="sac-a")
    ch_b.basic_consume(q, lambda c, m, p, b: got["b"].append(b), auto_ack=True,
                       consumer_tag="sac-b")
    for i in range(5):
        ch.basic_publish("", q, b"first-%d" % i)
    wait_until(conn, lambda: len(got["a"]) >= 5, what="five deliveries to the active consumer")
    pump(conn, 0.3)
    assert got == {"a": [b"first-%d" % i for i in range(5)], "b": []}

    ch_a.basic_cancel("sac-a")
    for i in range(3):
        ch.basic_publish("", q, b"second-%d" % i)
    wait_until(conn, lambda: len(got["b"]) >= 3, what="the second consumer taking over")
    pump(conn, 0.3)
    assert got == {
        "a": [b"first-%d" % i for i in range(5)],
        "b": [b"second-%d" % i for i in range(3)],
    }


# -- 7. direct reply-to ---------------------------------------------------------------------


def test_direct_reply_to_round_trip(connect, cleanup):
    client = connect()
    server = connect()
    cch = client.channel()
    replies = []
    cch.basic_consume(REPLY_TO, lambda c, m, p, b: replies.append((m, p, b)), auto_ack=True)

    sch = server.channel()
    rpc_q = cleanup.queue(unique("rpc"))
    sch.queue_declare(rpc_q)
    cch.basic_publish(
        "", rpc_q, b"ping",
        pika.BasicProperties(reply_to=REPLY_TO, correlation_id="c-42"),
    )
    method, props, body = _poll_get(server, sch, rpc_q, what="the request")
    assert body == b"ping"
    assert props.correlation_id == "c-42"
    reply_to = props.reply_to
    assert reply_to.startswith(REPLY_TO + "."), reply_to

    sch.confirm_delivery()
    sch.basic_publish("", reply_to, b"pong", pika.BasicProperties(correlation_id="c-42"))
    wait_until(client, lambda: replies, what="the reply")
    pump(client, 0.2)
    assert len(replies) == 1
    m, p, b = replies[0]
    assert b == b"pong"
    assert p.correlation_id == "c-42"
    assert (m.exchange, m.routing_key) == ("", reply_to)


# -- 8. alternate exchange ------------------------------------------------------------------


def test_alternate_exchange_takes_unroutable(conn, cleanup):
    ch = conn.channel()
    ae = cleanup.exchange(unique("ae"))
    main = cleanup.exchange(unique("ae-main"))
    ae_q = cleanup.queue(unique("ae-q"))
    main_q = cleanup.queue(unique("ae-main-q"))
    ch.exchange_declare(ae, "fanout")
    ch.queue_declare(ae_q)
    ch.queue_bind(ae_q, ae)
    ch.exchange_declare(main, "direct", arguments={"alternate-exchange": ae})
    ch.queue_declare(main_q)
    ch.queue_bind(main_q, main, "known")

    pub = conn.channel()
    pub.confirm_delivery()
    # mandatory, yet not returned: the alternate exchange routed it.
    pub.basic_publish(main, "unknown", b"to the AE", mandatory=True)
    pub.basic_publish(main, "known", b"to main", mandatory=True)

    ae_msgs = _get_all(ch, ae_q)
    assert [(m.exchange, m.routing_key, b) for m, _p, b in ae_msgs] == [
        (main, "unknown", b"to the AE")
    ]
    main_msgs = _get_all(ch, main_q)
    assert [(m.exchange, m.routing_key, b) for m, _p, b in main_msgs] == [
        (main, "known", b"to main")
    ]


# -- 9. delayed-message exchange ------------------------------------------------------------


def test_delayed_message_exchange(conn, cleanup):
    ch = conn.channel()
    x = cleanup.exchange(unique("delayed"))
    q = cleanup.queue(unique("delayed-q"))
    ch.exchange_declare(x, "x-delayed-message", arguments={"x-delayed-type": "direct"})
    ch.queue_declare(q)
    ch.queue_bind(q, x, "k")
    pub = conn.channel()
    pub.confirm_delivery()
    start = time.monotonic()
    pub.basic_publish(x, "k", b"later", pika.BasicProperties(headers={"x-delay": 300}))
    assert ch.basic_get(q, auto_ack=True)[0] is None, "delivered before its delay"
    method, props, body = _poll_get(conn, ch, q, timeout=10.0, what="the delayed message")
    elapsed = time.monotonic() - start
    assert elapsed >= 0.25, f"arrived after {elapsed:.3f}s, delay was 300 ms"
    assert body == b"later"
    assert (method.exchange, method.routing_key) == (x, "k")
    assert props.headers == {"x-delay": -300}


# -- 10. consistent-hash exchange -----------------------------------------------------------


def test_consistent_hash_exchange(conn, cleanup):
    ch = conn.channel()
    x = cleanup.exchange(unique("chash"))
    qs = [cleanup.queue(unique("chash-a")), cleanup.queue(unique("chash-b"))]
    ch.exchange_declare(x, "x-consistent-hash")
    for q in qs:
        ch.queue_declare(q)
        ch.queue_bind(q, x, "1")
    keys = [f"key-{i}" for i in range(1000)]

    def publish_all():
        pub = conn.channel()
        pub.confirm_delivery()
        for k in keys:
            pub.basic_publish(x, k, k.encode(), mandatory=True)
        pub.close()

    def where():
        placed = {}
        for q in qs:
            for _m, _p, body in _get_all(ch, q):
                k = body.decode()
                assert k not in placed, f"{k} routed twice"
                placed[k] = q
        return placed

    publish_all()
    counts = [ch.queue_declare(q, passive=True).method.message_count for q in qs]
    assert sum(counts) == 1000, counts
    assert all(c > 0 for c in counts), counts
    first = where()
    assert sorted(first) == sorted(keys)
    # The same routing keys again: each lands where it did before.
    publish_all()
    second = where()
    assert second == first


# -- 11. quorum queue declaration -----------------------------------------------------------


def test_quorum_queue_declare(conn, cleanup):
    ch = conn.channel()
    q = cleanup.queue(unique("quorum"))
    ok = ch.queue_declare(q, durable=True, arguments={"x-queue-type": "quorum"})
    assert (ok.method.queue, ok.method.message_count, ok.method.consumer_count) == (q, 0, 0)
    publish_confirmed(conn, q, [b"q1", b"q2"])
    assert [b for _m, _p, b in _get_all(ch, q)] == [b"q1", b"q2"]


def test_quorum_queue_non_durable_406(conn, cleanup):
    ch = conn.channel()
    q = cleanup.queue(unique("quorum-transient"))
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        ch.queue_declare(q, durable=False, arguments={"x-queue-type": "quorum"})
    assert ei.value.reply_code == 406
    assert ei.value.reply_text == (
        f"PRECONDITION_FAILED - invalid property 'non-durable' for queue '{q}' in vhost '/'"
    )
    # Nothing was created.
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        conn.channel().queue_declare(q, passive=True)
    assert ei.value.reply_code == 404


def test_stream_queue_declare_406(conn, cleanup):
    # warren has no streams: declaring one is refused (RabbitMQ would create it).
    ch = conn.channel()
    q = cleanup.queue(unique("stream"))
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        ch.queue_declare(q, durable=True, arguments={"x-queue-type": "stream"})
    assert ei.value.reply_code == 406
    assert ei.value.reply_text == (
        f"PRECONDITION_FAILED - cannot declare queue '{q}' in vhost '/': "
        "streams are not supported by warren"
    )


# -- 12. consumer timeout -------------------------------------------------------------------


def test_consumer_timeout_closes_channel_and_redelivers(conn, cleanup):
    ch = conn.channel()
    q = cleanup.queue(unique("ctimeout"))
    ch.queue_declare(q, arguments={"x-consumer-timeout": 200})
    publish_confirmed(conn, q, [b"slow"])

    cch = conn.channel()
    got = []
    start = time.monotonic()
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        for method, _props, body in cch.consume(q, inactivity_timeout=0.05):
            if method is not None:
                got.append((body, method.redelivered))  # never acked
            if time.monotonic() - start > 15:
                break
    assert got == [(b"slow", False)]
    assert ei.value.reply_code == 406
    assert ei.value.reply_text == (
        f"PRECONDITION_FAILED - delivery acknowledgement on channel {cch.channel_number} "
        "timed out. Timeout value used: 200 ms. This timeout value can be configured, see "
        "consumers doc guide to learn more"
    )
    assert cch.is_closed and conn.is_open

    # The unacked delivery went back to the queue: a new consumer gets it, redelivered.
    again = []
    nch = conn.channel()
    tag = nch.basic_consume(q, lambda c, m, p, b: (again.append((b, m.redelivered)),
                                                   c.basic_ack(m.delivery_tag)))
    wait_until(conn, lambda: again, what="the redelivery")
    nch.basic_cancel(tag)
    assert again == [(b"slow", True)]
