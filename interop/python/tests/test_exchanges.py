"""Exchange types, bindings and exchange-level errors."""

import pika
import pika.exceptions as exc
import pytest

from conftest import unique


def _queues(ch, cleanup, n, prefix):
    names = []
    for i in range(n):
        q = cleanup.queue(unique(f"{prefix}{i}"))
        ch.queue_declare(q)
        names.append(q)
    return names


def _drain(ch, q):
    """All bodies currently in q (basic.get until get-empty), acked."""
    bodies = []
    while True:
        method, _props, body = ch.basic_get(q, auto_ack=True)
        if method is None:
            return bodies
        bodies.append(body)


@pytest.fixture
def cch(conn):
    """A channel in confirm mode: a publish returns once the broker has routed it."""
    c = conn.channel()
    c.confirm_delivery()
    return c


def test_default_exchange_routes_by_queue_name(cch, cleanup):
    q = cleanup.queue(unique("default"))
    cch.queue_declare(q)
    cch.basic_publish("", q, b"to-default")
    method, _props, body = cch.basic_get(q, auto_ack=True)
    assert body == b"to-default"
    assert method.exchange == ""
    assert method.routing_key == q
    assert method.redelivered is False
    assert method.message_count == 0


def test_direct_exchange(cch, cleanup):
    x = cleanup.exchange(unique("direct"))
    cch.exchange_declare(x, exchange_type="direct")
    qa, qb, qab = _queues(cch, cleanup, 3, "direct")
    cch.queue_bind(qa, x, routing_key="a")
    cch.queue_bind(qb, x, routing_key="b")
    cch.queue_bind(qab, x, routing_key="a")
    cch.queue_bind(qab, x, routing_key="b")
    for key in ("a", "b", "c", "a"):
        cch.basic_publish(x, key, key.encode())
    assert _drain(cch, qa) == [b"a", b"a"]
    assert _drain(cch, qb) == [b"b"]
    assert _drain(cch, qab) == [b"a", b"b", b"a"]


def test_amq_direct_predeclared(cch, cleanup):
    q = cleanup.queue(unique("amqdirect"))
    cch.queue_declare(q)
    cch.queue_bind(q, "amq.direct", routing_key=q)
    cch.basic_publish("amq.direct", q, b"via amq.direct")
    method, _props, body = cch.basic_get(q, auto_ack=True)
    assert body == b"via amq.direct"
    assert method.exchange == "amq.direct"


def test_predeclared_exchanges_exist(ch):
    for name, xtype in (
        ("amq.direct", "direct"),
        ("amq.fanout", "fanout"),
        ("amq.topic", "topic"),
        ("amq.headers", "headers"),
        ("amq.match", "headers"),
    ):
        ch.exchange_declare(name, passive=True)
        ch.exchange_declare(name, exchange_type=xtype, durable=True)


def test_fanout_exchange_ignores_routing_key(cch, cleanup):
    x = cleanup.exchange(unique("fanout"))
    cch.exchange_declare(x, exchange_type="fanout")
    qs = _queues(cch, cleanup, 3, "fanout")
    for i, q in enumerate(qs):
        cch.queue_bind(q, x, routing_key=f"ignored-{i}")
    cch.basic_publish(x, "whatever", b"one")
    cch.basic_publish(x, "", b"two")
    for q in qs:
        assert _drain(cch, q) == [b"one", b"two"]


def test_topic_exchange_star_and_hash(cch, cleanup):
    x = cleanup.exchange(unique("topic"))
    cch.exchange_declare(x, exchange_type="topic")
    patterns = {
        "orange": "*.orange.*",
        "rabbit": "*.*.rabbit",
        "lazy": "lazy.#",
        "all": "#",
        "exact": "quick.orange.rabbit",
        "hashmid": "a.#.z",
        "star1": "*",
    }
    qs = {}
    for name, pattern in patterns.items():
        q = cleanup.queue(unique(f"topic-{name}"))
        cch.queue_declare(q)
        cch.queue_bind(q, x, routing_key=pattern)
        qs[name] = q
    keys = [
        "quick.orange.rabbit",
        "lazy.orange.elephant",
        "quick.orange.fox",
        "lazy.brown.fox",
        "lazy.pink.rabbit",
        "quick.brown.fox",
        "orange",
        "quick.orange.male.rabbit",
        "lazy.orange.male.rabbit",
        "lazy",
        "a.z",
        "a.b.c.z",
        "a.b.c",
        "",
    ]
    for k in keys:
        cch.basic_publish(x, k, k.encode())
    got = {name: [b.decode() for b in _drain(cch, q)] for name, q in qs.items()}
    assert got["orange"] == ["quick.orange.rabbit", "lazy.orange.elephant", "quick.orange.fox"]
    assert got["rabbit"] == ["quick.orange.rabbit", "lazy.pink.rabbit"]
    assert got["lazy"] == [
        "lazy.orange.elephant",
        "lazy.brown.fox",
        "lazy.pink.rabbit",
        "lazy.orange.male.rabbit",
        "lazy",
    ]
    assert got["all"] == keys
    assert got["exact"] == ["quick.orange.rabbit"]
    assert got["hashmid"] == ["a.z", "a.b.c.z"]
    assert got["star1"] == ["orange", "lazy"]


def test_topic_empty_words(cch, cleanup):
    x = cleanup.exchange(unique("topic-empty"))
    cch.exchange_declare(x, exchange_type="topic")
    q_star = cleanup.queue(unique("topic-es"))
    q_hash = cleanup.queue(unique("topic-eh"))
    cch.queue_declare(q_star)
    cch.queue_declare(q_hash)
    cch.queue_bind(q_star, x, routing_key="a.*.c")
    cch.queue_bind(q_hash, x, routing_key="#.c")
    for k in ("a..c", "a.b.c", "a.c", ".c", "c"):
        cch.basic_publish(x, k, k.encode())
    assert _drain(cch, q_star) == [b"a..c", b"a.b.c"]
    assert _drain(cch, q_hash) == [b"a..c", b"a.b.c", b"a.c", b".c", b"c"]


def test_headers_exchange_all_and_any(cch, cleanup):
    x = cleanup.exchange(unique("headers"))
    cch.exchange_declare(x, exchange_type="headers")
    q_all = cleanup.queue(unique("hdr-all"))
    q_any = cleanup.queue(unique("hdr-any"))
    q_default = cleanup.queue(unique("hdr-default"))
    q_empty = cleanup.queue(unique("hdr-empty"))
    for q in (q_all, q_any, q_default, q_empty):
        cch.queue_declare(q)
    cch.queue_bind(q_all, x, arguments={"x-match": "all", "format": "pdf", "type": "report"})
    cch.queue_bind(q_any, x, arguments={"x-match": "any", "format": "pdf", "type": "report"})
    # No x-match means "all".
    cch.queue_bind(q_default, x, arguments={"format": "pdf", "type": "report"})
    # An empty "all" binding matches every message.
    cch.queue_bind(q_empty, x, arguments={"x-match": "all"})

    def pub(body, headers):
        cch.basic_publish(x, "ignored", body, pika.BasicProperties(headers=headers))

    pub(b"both", {"format": "pdf", "type": "report"})
    pub(b"both+extra", {"format": "pdf", "type": "report", "extra": 1})
    pub(b"format-only", {"format": "pdf"})
    pub(b"type-only", {"type": "report"})
    pub(b"wrong-values", {"format": "zip", "type": "log"})
    pub(b"one-wrong", {"format": "pdf", "type": "log"})
    pub(b"no-headers", None)

    assert _drain(cch, q_all) == [b"both", b"both+extra"]
    assert _drain(cch, q_default) == [b"both", b"both+extra"]
    assert _drain(cch, q_any) == [
        b"both",
        b"both+extra",
        b"format-only",
        b"type-only",
        b"one-wrong",
    ]
    assert _drain(cch, q_empty) == [
        b"both",
        b"both+extra",
        b"format-only",
        b"type-only",
        b"wrong-values",
        b"one-wrong",
        b"no-headers",
    ]


def test_headers_exchange_value_types(cch, cleanup):
    x = cleanup.exchange(unique("headers-types"))
    cch.exchange_declare(x, exchange_type="headers")
    q_int = cleanup.queue(unique("hdr-int"))
    q_bool = cleanup.queue(unique("hdr-bool"))
    cch.queue_declare(q_int)
    cch.queue_declare(q_bool)
    cch.queue_bind(q_int, x, arguments={"x-match": "all", "n": 42})
    cch.queue_bind(q_bool, x, arguments={"x-match": "any", "flag": True})
    cch.basic_publish(x, "", b"int42", pika.BasicProperties(headers={"n": 42}))
    cch.basic_publish(x, "", b"int43", pika.BasicProperties(headers={"n": 43}))
    cch.basic_publish(x, "", b"str42", pika.BasicProperties(headers={"n": "42"}))
    cch.basic_publish(x, "", b"true", pika.BasicProperties(headers={"flag": True}))
    cch.basic_publish(x, "", b"false", pika.BasicProperties(headers={"flag": False}))
    assert _drain(cch, q_int) == [b"int42"]
    assert _drain(cch, q_bool) == [b"true"]


def test_headers_binding_ignores_x_prefixed_keys(cch, cleanup):
    x = cleanup.exchange(unique("headers-x"))
    cch.exchange_declare(x, exchange_type="headers")
    q = cleanup.queue(unique("hdr-x"))
    cch.queue_declare(q)
    cch.queue_bind(q, x, arguments={"x-match": "all", "x-custom": "ignored", "k": "v"})
    cch.basic_publish(x, "", b"match", pika.BasicProperties(headers={"k": "v"}))
    cch.basic_publish(x, "", b"nomatch", pika.BasicProperties(headers={"x-custom": "ignored"}))
    assert _drain(cch, q) == [b"match"]


def test_unbind_stops_routing(cch, cleanup):
    x = cleanup.exchange(unique("unbind"))
    cch.exchange_declare(x, exchange_type="direct")
    q = cleanup.queue(unique("unbind"))
    cch.queue_declare(q)
    cch.queue_bind(q, x, routing_key="k")
    cch.basic_publish(x, "k", b"before")
    cch.queue_unbind(q, x, routing_key="k")
    cch.basic_publish(x, "k", b"after")
    assert _drain(cch, q) == [b"before"]


def test_duplicate_binding_delivers_once(cch, cleanup):
    x = cleanup.exchange(unique("dupbind"))
    cch.exchange_declare(x, exchange_type="topic")
    q = cleanup.queue(unique("dupbind"))
    cch.queue_declare(q)
    cch.queue_bind(q, x, routing_key="a.*")
    cch.queue_bind(q, x, routing_key="a.*")
    cch.queue_bind(q, x, routing_key="#")
    cch.basic_publish(x, "a.b", b"once")
    assert _drain(cch, q) == [b"once"]


def test_exchange_to_exchange_binding(cch, cleanup):
    src = cleanup.exchange(unique("e2e-src"))
    dst = cleanup.exchange(unique("e2e-dst"))
    cch.exchange_declare(src, exchange_type="topic")
    cch.exchange_declare(dst, exchange_type="fanout")
    q = cleanup.queue(unique("e2e"))
    cch.queue_declare(q)
    cch.queue_bind(q, dst)
    cch.exchange_bind(destination=dst, source=src, routing_key="logs.*")
    cch.basic_publish(src, "logs.error", b"routed")
    cch.basic_publish(src, "metrics.cpu", b"not routed")
    method, _props, body = cch.basic_get(q, auto_ack=True)
    assert body == b"routed"
    # The delivery names the exchange the message was published to.
    assert method.exchange == src
    assert method.routing_key == "logs.error"
    assert cch.basic_get(q, auto_ack=True)[0] is None
    cch.exchange_unbind(destination=dst, source=src, routing_key="logs.*")
    cch.basic_publish(src, "logs.error", b"after unbind")
    assert cch.basic_get(q, auto_ack=True)[0] is None


def test_exchange_to_exchange_chain_and_cycle_delivers_once(cch, cleanup):
    a = cleanup.exchange(unique("e2e-a"))
    b = cleanup.exchange(unique("e2e-b"))
    cch.exchange_declare(a, exchange_type="fanout")
    cch.exchange_declare(b, exchange_type="fanout")
    q = cleanup.queue(unique("e2e-cycle"))
    cch.queue_declare(q)
    cch.exchange_bind(destination=b, source=a)
    cch.exchange_bind(destination=a, source=b)  # a cycle
    cch.queue_bind(q, a)
    cch.queue_bind(q, b)
    cch.basic_publish(a, "", b"cyclic")
    assert _drain(cch, q) == [b"cyclic"]


def test_exchange_declare_passive_missing_404(ch):
    name = unique("nox")
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        ch.exchange_declare(name, passive=True)
    assert ei.value.reply_code == 404
    assert ei.value.reply_text == f"NOT_FOUND - no exchange '{name}' in vhost '/'"


def test_exchange_redeclare_different_type_406(conn, cleanup):
    ch = conn.channel()
    x = cleanup.exchange(unique("xtype"))
    ch.exchange_declare(x, exchange_type="direct")
    ch.exchange_declare(x, exchange_type="direct")  # equivalent: fine
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        ch.exchange_declare(x, exchange_type="fanout")
    assert ei.value.reply_code == 406
    assert ei.value.reply_text == (
        f"PRECONDITION_FAILED - inequivalent arg 'type' for exchange '{x}' in vhost '/': "
        "received 'fanout' but current is 'direct'"
    )


def test_exchange_redeclare_different_durable_406(conn, cleanup):
    ch = conn.channel()
    x = cleanup.exchange(unique("xdurable"))
    ch.exchange_declare(x, exchange_type="topic", durable=False)
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        ch.exchange_declare(x, exchange_type="topic", durable=True)
    assert ei.value.reply_code == 406
    assert ei.value.reply_text == (
        f"PRECONDITION_FAILED - inequivalent arg 'durable' for exchange '{x}' in vhost '/': "
        "received 'true' but current is 'false'"
    )


def test_exchange_reserved_prefix_403(ch):
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        ch.exchange_declare("amq.py-custom", exchange_type="direct")
    assert ei.value.reply_code == 403
    assert ei.value.reply_text == (
        "ACCESS_REFUSED - exchange name 'amq.py-custom' contains reserved prefix 'amq.*'"
    )


def test_bind_to_default_exchange_403(conn, cleanup):
    ch = conn.channel()
    q = cleanup.queue(unique("bind-default"))
    ch.queue_declare(q)
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        ch.queue_bind(q, "", routing_key="k")
    assert ei.value.reply_code == 403
    assert ei.value.reply_text == "ACCESS_REFUSED - operation not permitted on the default exchange"


def test_delete_default_exchange_403(ch):
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        ch.exchange_delete("")
    assert ei.value.reply_code == 403
    assert ei.value.reply_text == "ACCESS_REFUSED - operation not permitted on the default exchange"


def test_delete_system_exchange_403(ch):
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        ch.exchange_delete("amq.direct")
    assert ei.value.reply_code == 403
    assert ei.value.reply_text == (
        "ACCESS_REFUSED - deletion of system exchange 'amq.direct' in vhost '/' not allowed"
    )


def test_publish_to_missing_exchange_404(ch):
    name = unique("nox-pub")
    ch.basic_publish(name, "k", b"lost")
    # basic.publish has no reply; the channel.close arrives before the next reply.
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        ch.queue_declare("", exclusive=True)
    assert ei.value.reply_code == 404
    assert ei.value.reply_text == f"NOT_FOUND - no exchange '{name}' in vhost '/'"


def test_bind_missing_exchange_and_missing_queue_404(conn, cleanup):
    q = cleanup.queue(unique("bind-missing"))
    conn.channel().queue_declare(q)
    xname = unique("nox-bind")
    ch = conn.channel()
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        ch.queue_bind(q, xname, routing_key="k")
    assert (ei.value.reply_code, ei.value.reply_text) == (
        404,
        f"NOT_FOUND - no exchange '{xname}' in vhost '/'",
    )
    qname = unique("noq-bind")
    ch = conn.channel()
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        ch.queue_bind(qname, "amq.direct", routing_key="k")
    assert (ei.value.reply_code, ei.value.reply_text) == (
        404,
        f"NOT_FOUND - no queue '{qname}' in vhost '/'",
    )


def test_exchange_delete_and_missing_is_ok(ch):
    x = unique("xdel")
    ch.exchange_declare(x, exchange_type="fanout")
    ch.exchange_delete(x)
    ch.exchange_delete(x)  # deleting a missing exchange is not an error
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        ch.exchange_declare(x, passive=True)
    assert ei.value.reply_code == 404


def test_exchange_delete_if_unused_406(conn, cleanup):
    ch = conn.channel()
    x = cleanup.exchange(unique("xunused"))
    ch.exchange_declare(x, exchange_type="direct")
    q = cleanup.queue(unique("xunused"))
    ch.queue_declare(q)
    ch.queue_bind(q, x, routing_key="k")
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        ch.exchange_delete(x, if_unused=True)
    assert ei.value.reply_code == 406
    assert ei.value.reply_text == f"PRECONDITION_FAILED - exchange '{x}' in vhost '/' in use"
    ch = conn.channel()
    ch.queue_unbind(q, x, routing_key="k")
    ch.exchange_delete(x, if_unused=True)


def test_internal_exchange_rejects_publish_403(conn, cleanup):
    ch = conn.channel()
    x = cleanup.exchange(unique("internal"))
    ch.exchange_declare(x, exchange_type="fanout", internal=True)
    ch.basic_publish(x, "", b"nope")
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        ch.queue_declare("", exclusive=True)
    assert ei.value.reply_code == 403
    assert ei.value.reply_text == f"ACCESS_REFUSED - cannot publish to internal exchange '{x}' in vhost '/'"


def test_auto_delete_exchange_goes_with_last_binding(conn, cleanup):
    ch = conn.channel()
    x = cleanup.exchange(unique("xautodel"))
    ch.exchange_declare(x, exchange_type="fanout", auto_delete=True)
    q = cleanup.queue(unique("xautodel"))
    ch.queue_declare(q)
    ch.queue_bind(q, x)
    ch.exchange_declare(x, passive=True)
    ch.queue_unbind(q, x)
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        ch.exchange_declare(x, passive=True)
    assert ei.value.reply_code == 404
