"""Broker restart (scenario 9) with pika's BlockingConnection: durable exchanges, queues,
bindings and persistent messages survive; transient ones do not.

With interop/run.sh the broker is restarted with $BROKER_RESTART; a warren started by
conftest is restarted by conftest itself; with only WARREN_TEST_URL the test is skipped."""

import hashlib

import pika
import pika.exceptions as exc
import pytest

from conftest import unique, wait_until


def _body(i, size):
    seed = hashlib.sha256(b"restart-%d" % i).digest()
    return (seed * (size // len(seed) + 1))[:size]


@pytest.fixture
def restartable(broker):
    reason = broker.restart_unavailable()
    if reason:
        pytest.skip(reason)
    return broker


def test_durable_state_survives_restart(restartable, connect, cleanup):
    broker = restartable
    conn = connect()
    ch = conn.channel()
    ch.confirm_delivery()
    x = cleanup.exchange(unique("restart-x"))
    q = cleanup.queue(unique("restart-q"))
    q_unacked = cleanup.queue(unique("restart-unacked"))
    q_transient = cleanup.queue(unique("restart-transient"))
    x_transient = cleanup.exchange(unique("restart-tx"))
    ch.exchange_declare(x, exchange_type="topic", durable=True)
    ch.exchange_declare(x_transient, exchange_type="fanout", durable=False)
    ch.queue_declare(q, durable=True)
    ch.queue_declare(q_unacked, durable=True)
    ch.queue_declare(q_transient, durable=False)
    ch.queue_bind(q, x, routing_key="r.#")

    sizes = [0, 1, 1000, 131072 + 7, 1 << 20, 100, 3]
    expected = []
    for i, size in enumerate(sizes):
        body = _body(i, size)
        props = pika.BasicProperties(
            delivery_mode=2, message_id=f"m{i}", content_type="application/x-test",
            headers={"i": i, "tag": "persistent"}, priority=i % 10, timestamp=1700000000 + i,
        )
        # Alternate the default exchange and the durable topic exchange.
        if i % 2:
            ch.basic_publish(x, f"r.{i}", body, props)
        else:
            ch.basic_publish("", q, body, props)
        expected.append((body, props))
        if i == 3:
            # A transient message in a durable queue is not kept across a restart.
            ch.basic_publish("", q, b"transient", pika.BasicProperties(delivery_mode=1))
    ch.basic_publish("", q_transient, b"in transient queue",
                     pika.BasicProperties(delivery_mode=2))
    for i in range(3):
        ch.basic_publish("", q_unacked, b"u%d" % i, pika.BasicProperties(delivery_mode=2))
    assert ch.queue_declare(q, passive=True).method.message_count == len(sizes) + 1

    # One message delivered but not acked when the broker goes down.
    getter = conn.channel()
    method, _p, body = getter.basic_get(q_unacked)
    assert body == b"u0" and method.redelivered is False

    broker.restart()
    with pytest.raises(exc.AMQPError):
        # The old connection is gone (the broker closed it or the socket broke).
        conn.channel().queue_declare(q, passive=True)

    conn = connect()
    ch = conn.channel()
    ok = ch.queue_declare(q, passive=True)
    assert (ok.method.message_count, ok.method.consumer_count) == (len(sizes), 0)
    ch.exchange_declare(x, passive=True)
    for name, op in (("queue", ch.queue_declare), ("exchange", ch.exchange_declare)):
        target = q_transient if name == "queue" else x_transient
        c = conn.channel()
        with pytest.raises(exc.ChannelClosedByBroker) as ei:
            (c.queue_declare if name == "queue" else c.exchange_declare)(target, passive=True)
        assert (ei.value.reply_code, ei.value.reply_text) == (
            404, f"NOT_FOUND - no {name} '{target}' in vhost '/'"
        ), name

    got = []
    ch.basic_qos(prefetch_count=100)
    tag = ch.basic_consume(q, lambda c, m, p, b: got.append((m, p, b)))
    wait_until(conn, lambda: len(got) >= len(sizes), timeout=30, what="recovered messages")
    ch.basic_cancel(tag)
    assert [m.redelivered for m, _p, _b in got] == [False] * len(sizes)
    assert [p.message_id for _m, p, _b in got] == [f"m{i}" for i in range(len(sizes))]
    for (m, p, b), (body, props) in zip(got, expected):
        assert len(b) == len(body) and b == body, p.message_id
        for name in ("delivery_mode", "content_type", "headers", "priority", "timestamp"):
            assert getattr(p, name) == getattr(props, name), (p.message_id, name)
    ch.basic_ack(got[-1][0].delivery_tag, multiple=True)

    # The binding of the durable queue to the durable exchange survived too.
    pub = conn.channel()
    pub.confirm_delivery()
    pub.basic_publish(x, "r.after", b"after restart", pika.BasicProperties(delivery_mode=2))
    method, _p, body = ch.basic_get(q, auto_ack=True)
    assert body == b"after restart" and method.redelivered is False
    assert ch.basic_get(q) == (None, None, None)

    # The message that was unacked at the restart comes back first, marked redelivered.
    seen = []
    while True:
        method, _p, body = ch.basic_get(q_unacked, auto_ack=True)
        if method is None:
            break
        seen.append((body, method.redelivered))
    assert seen == [(b"u0", True), (b"u1", False), (b"u2", False)]
