"""The interop scenarios on pika's asynchronous SelectConnection (callbacks on pika's
ioloop), written as straight-line generators with select_flow.Flow."""

import hashlib

import pika
import pika.exceptions as exc
import pytest

import amqp_fields as af
from conftest import unique
from select_flow import Flow, confirmed_tags


def _bodies(flow_results):
    return [b for _m, _p, b in flow_results]


def test_select_every_exchange_type(broker, cleanup):
    names = {k: cleanup.queue(unique(f"sel-{k}")) for k in
             ("d-a", "d-b", "fan1", "fan2", "t-star", "t-hash", "h-all", "h-any")}
    xs = {k: cleanup.exchange(unique(f"sel-x-{k}")) for k in ("direct", "fanout", "topic",
                                                              "headers")}
    got = {}

    def scenario(flow):
        ch = yield flow.channel()
        acks = yield flow.confirm_mode(ch)
        for kind, x in xs.items():
            yield flow.call(ch.exchange_declare, x, exchange_type=kind)
        for q in names.values():
            yield flow.call(ch.queue_declare, q)
        binds = [
            ("d-a", "direct", "a", None), ("d-b", "direct", "b", None),
            ("fan1", "fanout", "x", None), ("fan2", "fanout", "y", None),
            ("t-star", "topic", "*.error", None), ("t-hash", "topic", "app.#", None),
            ("h-all", "headers", "", {"x-match": "all", "kind": "log", "level": 3}),
            ("h-any", "headers", "", {"x-match": "any", "kind": "log", "level": 3}),
        ]
        for q, kind, key, args in binds:
            yield flow.call(ch.queue_bind, names[q], xs[kind], routing_key=key, arguments=args)
        publishes = [
            ("direct", "a", b"direct-a", None), ("direct", "b", b"direct-b", None),
            ("direct", "c", b"direct-c", None),
            ("fanout", "ignored", b"fan", None),
            ("topic", "db.error", b"db.error", None), ("topic", "app.web.error", b"app.web.error", None),
            ("topic", "app", b"app", None), ("topic", "x.y.error", b"x.y.error", None),
            ("headers", "", b"h-both", {"kind": "log", "level": 3}),
            ("headers", "", b"h-kind", {"kind": "log", "level": 4}),
            ("headers", "", b"h-level", {"level": 3}),
            ("headers", "", b"h-none", {"other": 1}),
        ]
        for kind, key, body, headers in publishes:
            ch.basic_publish(xs[kind], key, body, pika.BasicProperties(headers=headers))
        yield flow.until(lambda: confirmed_tags(acks) == set(range(1, len(publishes) + 1)),
                         what="confirms")
        for k, q in names.items():
            got[k] = _bodies((yield from flow.drain(ch, q)))

    Flow(broker.params()).run(scenario)
    assert got == {
        "d-a": [b"direct-a"],
        "d-b": [b"direct-b"],
        "fan1": [b"fan"],
        "fan2": [b"fan"],
        "t-star": [b"db.error"],
        "t-hash": [b"app.web.error", b"app"],
        "h-all": [b"h-both"],
        "h-any": [b"h-both", b"h-kind", b"h-level"],
    }


def test_select_prefetch_exactly_n_until_ack(broker, cleanup):
    q = cleanup.queue(unique("sel-prefetch"))
    seen = {}

    def scenario(flow):
        ch = yield flow.channel()
        acks = yield flow.confirm_mode(ch)
        yield flow.call(ch.queue_declare, q)
        for i in range(7):
            ch.basic_publish("", q, b"p%d" % i)
        yield flow.until(lambda: len(confirmed_tags(acks)) == 7, what="7 confirms")
        cons = yield flow.channel()
        yield flow.call(cons.basic_qos, prefetch_count=3)
        got = []
        ok = yield flow.call(cons.basic_consume, q,
                             on_message_callback=lambda c, m, p, b: got.append((m, b)))
        assert isinstance(ok.method, pika.spec.Basic.ConsumeOk)
        yield flow.until(lambda: len(got) >= 3, what="3 deliveries")
        yield flow.sleep(0.5)
        seen["first"] = [b for _m, b in got]
        cons.basic_ack(got[0][0].delivery_tag)
        yield flow.until(lambda: len(got) >= 4, what="4th delivery")
        yield flow.sleep(0.3)
        seen["after one ack"] = [b for _m, b in got]
        cons.basic_ack(got[3][0].delivery_tag, multiple=True)  # acks 2, 3 and 4
        yield flow.until(lambda: len(got) >= 7, what="the rest")
        yield flow.sleep(0.2)
        seen["all"] = [b for _m, b in got]
        seen["tags"] = [m.delivery_tag for m, _b in got]
        cons.basic_ack(got[-1][0].delivery_tag, multiple=True)
        frame = yield flow.call(ch.queue_declare, q, passive=True)
        seen["left"] = (frame.method.message_count, frame.method.consumer_count)

    Flow(broker.params()).run(scenario)
    assert seen["first"] == [b"p0", b"p1", b"p2"]
    assert seen["after one ack"] == [b"p0", b"p1", b"p2", b"p3"]
    assert seen["all"] == [b"p%d" % i for i in range(7)]
    assert seen["tags"] == list(range(1, 8))
    assert seen["left"] == (0, 1)


def test_select_nack_and_reject(broker, cleanup):
    q = cleanup.queue(unique("sel-nack"))
    res = {}

    def scenario(flow):
        ch = yield flow.channel()
        acks = yield flow.confirm_mode(ch)
        yield flow.call(ch.queue_declare, q)
        for i in range(4):
            ch.basic_publish("", q, b"n%d" % i)
        yield flow.until(lambda: len(confirmed_tags(acks)) == 4, what="confirms")
        taken = []
        for _ in range(4):
            taken.append((yield flow.get(ch, q)))
        assert [b for _m, _p, b in taken] == [b"n0", b"n1", b"n2", b"n3"]
        ch.basic_reject(taken[0][0].delivery_tag, requeue=True)
        ch.basic_nack(taken[1][0].delivery_tag, multiple=False, requeue=True)
        ch.basic_reject(taken[2][0].delivery_tag, requeue=False)
        ch.basic_nack(taken[3][0].delivery_tag, multiple=False, requeue=False)
        res["left"] = [(b, m.redelivered) for m, _p, b in (yield from flow.drain(ch, q))]
        # nack(multiple, requeue) through a consumer: redelivered on the same consumer.
        for i in range(3):
            ch.basic_publish("", q, b"c%d" % i)
        yield flow.until(lambda: len(confirmed_tags(acks)) == 7, what="confirms")
        got = []

        def on_message(c, m, p, b):
            got.append((b, m.redelivered))
            if len(got) == 3:
                c.basic_nack(m.delivery_tag, multiple=True, requeue=True)
            elif len(got) > 3:
                c.basic_ack(m.delivery_tag)

        yield flow.call(ch.basic_consume, q, on_message_callback=on_message)
        yield flow.until(lambda: len(got) >= 6, what="deliveries and redeliveries")
        yield flow.sleep(0.2)
        res["consumer"] = got

    Flow(broker.params()).run(scenario)
    assert res["left"] == [(b"n0", True), (b"n1", True)]
    assert res["consumer"] == [(b"c0", False), (b"c1", False), (b"c2", False),
                               (b"c0", True), (b"c1", True), (b"c2", True)]


def test_select_confirms_count_and_mandatory_return(broker, cleanup):
    q = cleanup.queue(unique("sel-confirm"))
    key = unique("sel-unroutable")
    res = {}

    def scenario(flow):
        ch = yield flow.channel()
        returns = []
        ch.add_on_return_callback(lambda c, m, p, b: returns.append((m, p, b)))
        acks = yield flow.confirm_mode(ch)
        yield flow.call(ch.queue_declare, q)
        for i in range(50):
            ch.basic_publish("", q, b"%d" % i)
        ch.basic_publish("amq.direct", key, b"bounce", pika.BasicProperties(message_id="b1"),
                         mandatory=True)
        ch.basic_publish("", q, b"routed-mandatory", mandatory=True)
        yield flow.until(lambda: confirmed_tags(acks) == set(range(1, 53)), what="52 confirms")
        yield flow.until(lambda: returns, what="basic.return")
        yield flow.sleep(0.2)
        res["returns"] = returns
        res["acks"] = acks
        frame = yield flow.call(ch.queue_declare, q, passive=True)
        res["count"] = frame.method.message_count

    Flow(broker.params()).run(scenario)
    assert all(isinstance(m, pika.spec.Basic.Ack) for m in res["acks"])
    assert res["count"] == 51
    assert len(res["returns"]) == 1
    method, props, body = res["returns"][0]
    assert (method.reply_code, method.reply_text) == (312, "NO_ROUTE")
    assert (method.exchange, method.routing_key) == ("amq.direct", key)
    assert props.message_id == "b1" and body == b"bounce"


def _big(size, seed):
    block = hashlib.sha256(seed).digest()
    return (block * (size // 32 + 1))[:size]


def test_select_large_messages(broker, cleanup):
    q = cleanup.queue(unique("sel-large"))
    bodies = [_big(1 << 20, b"1m"), _big(5 << 20, b"5m"), _big(131065, b"edge")]
    got = []

    def scenario(flow):
        ch = yield flow.channel()
        acks = yield flow.confirm_mode(ch)
        yield flow.call(ch.queue_declare, q)
        for i, body in enumerate(bodies):
            ch.basic_publish("", q, body, pika.BasicProperties(message_id=str(i)))
        yield flow.until(lambda: len(confirmed_tags(acks)) == 3, timeout=60, what="confirms")
        yield flow.call(ch.basic_consume, q, auto_ack=True,
                        on_message_callback=lambda c, m, p, b: got.append((p.message_id, b)))
        yield flow.until(lambda: len(got) >= 3, timeout=60, what="3 large deliveries")

    Flow(broker.params(), timeout=120).run(scenario)
    assert [mid for mid, _b in got] == ["0", "1", "2"]
    for (_mid, b), body in zip(got, bodies):
        assert len(b) == len(body)
        assert b == body


def test_select_header_field_types_and_properties(broker, cleanup, wire):
    q = cleanup.queue(unique("sel-fields"))
    sent = pika.BasicProperties(
        content_type="text/plain", content_encoding="utf-8",
        headers={k: af.Raw(v) for k, v in af.ALL_TYPES}, delivery_mode=2, priority=1,
        correlation_id="corr", reply_to="reply", expiration="100000", message_id="mid",
        timestamp=1700000001, type="kind", user_id="guest", app_id="select-test",
    )
    got = []

    def scenario(flow):
        ch = yield flow.channel()
        acks = yield flow.confirm_mode(ch)
        yield flow.call(ch.queue_declare, q)
        ch.basic_publish("", q, b"typed", sent)
        yield flow.until(lambda: acks, what="confirm")
        yield flow.call(ch.basic_consume, q, auto_ack=True,
                        on_message_callback=lambda c, m, p, b: got.append((p, b)))
        yield flow.until(lambda: got, what="delivery")

    Flow(broker.params()).run(scenario)
    props, body = got[0]
    assert body == b"typed"
    af.assert_same_items(af.headers_of_basic_properties(props.raw), af.ALL_TYPES)
    for name in ("content_type", "content_encoding", "delivery_mode", "priority",
                 "correlation_id", "reply_to", "expiration", "message_id", "timestamp",
                 "type", "user_id", "app_id"):
        assert getattr(props, name) == getattr(sent, name), name


def test_select_restart_keeps_durable_queue_and_messages(broker, cleanup):
    reason = broker.restart_unavailable()
    if reason:
        pytest.skip(reason)
    q = cleanup.queue(unique("sel-restart"))
    bodies = [b"r%d-" % i + _big(i * 40000, b"r%d" % i) for i in range(6)]
    after = {}

    def before(flow):
        ch = yield flow.channel()
        acks = yield flow.confirm_mode(ch)
        yield flow.call(ch.queue_declare, q, durable=True)
        for i, body in enumerate(bodies):
            ch.basic_publish("", q, body, pika.BasicProperties(delivery_mode=2,
                                                               headers={"n": i}))
        yield flow.until(lambda: len(confirmed_tags(acks)) == len(bodies), what="confirms")

    def recover(flow):
        ch = yield flow.channel()
        frame = yield flow.call(ch.queue_declare, q, passive=True)
        after["count"] = frame.method.message_count
        got = []
        yield flow.call(ch.basic_consume, q,
                        on_message_callback=lambda c, m, p, b: got.append((m, p, b)))
        yield flow.until(lambda: len(got) >= len(bodies), what="recovered messages")
        ch.basic_ack(got[-1][0].delivery_tag, multiple=True)
        after["got"] = got

    Flow(broker.params()).run(before)
    broker.restart()
    Flow(broker.params()).run(recover)
    assert after["count"] == len(bodies)
    assert [b for _m, _p, b in after["got"]] == bodies
    assert [m.redelivered for m, _p, _b in after["got"]] == [False] * len(bodies)
    assert [p.headers for _m, p, _b in after["got"]] == [{"n": i} for i in range(len(bodies))]
    assert [p.delivery_mode for _m, p, _b in after["got"]] == [2] * len(bodies)


def test_select_channel_errors_codes_and_texts(broker, cleanup):
    missing_q = unique("sel-missing-q")
    missing_x = unique("sel-missing-x")
    durable_q = cleanup.queue(unique("sel-durable"))
    reasons = {}

    def scenario(flow):
        ch = yield flow.channel()
        ch.queue_declare(missing_q, passive=True)
        reasons["passive"] = yield flow.channel_closed(ch)

        ch = yield flow.channel()
        yield flow.call(ch.queue_declare, durable_q, durable=False)
        ch.queue_declare(durable_q, durable=True)
        reasons["durable"] = yield flow.channel_closed(ch)

        ch = yield flow.channel()
        ch.basic_publish(missing_x, "k", b"lost")
        reasons["publish"] = yield flow.channel_closed(ch)

        ch = yield flow.channel()
        ch.basic_ack(42)
        reasons["ack"] = yield flow.channel_closed(ch)

        ch = yield flow.channel()
        ch.exchange_declare("amq.sel-custom", exchange_type="direct")
        reasons["reserved"] = yield flow.channel_closed(ch)

        ch = yield flow.channel()  # the connection is still fine
        frame = yield flow.call(ch.queue_declare, "", exclusive=True)
        reasons["ok"] = frame.method.queue

    Flow(broker.params()).run(scenario)
    got = {k: (r.reply_code, r.reply_text) for k, r in reasons.items() if k != "ok"}
    assert all(isinstance(r, exc.ChannelClosedByBroker) for k, r in reasons.items() if k != "ok")
    assert got == {
        "passive": (404, f"NOT_FOUND - no queue '{missing_q}' in vhost '/'"),
        "durable": (406, f"PRECONDITION_FAILED - inequivalent arg 'durable' for queue "
                         f"'{durable_q}' in vhost '/': received 'true' but current is 'false'"),
        "publish": (404, f"NOT_FOUND - no exchange '{missing_x}' in vhost '/'"),
        "ack": (406, "PRECONDITION_FAILED - unknown delivery tag 42"),
        "reserved": (403, "ACCESS_REFUSED - exchange name 'amq.sel-custom' contains reserved "
                          "prefix 'amq.*'"),
    }
    assert reasons["ok"].startswith("amq.gen-")


def test_select_connection_error_closes_connection(broker, cleanup):
    q = cleanup.queue(unique("sel-ctag"))
    res = {}

    def scenario(flow):
        ch = yield flow.channel()
        yield flow.call(ch.queue_declare, q)
        yield flow.call(ch.basic_consume, q, on_message_callback=lambda *a: None,
                        consumer_tag="dup-tag")
        # pika refuses a duplicate tag itself: send the raw method to reach the broker.
        ch._send_method(pika.spec.Basic.Consume(queue=q, consumer_tag="dup-tag"))
        res["reason"] = yield flow.connection_closed()

    Flow(broker.params()).run(scenario)
    reason = res["reason"]
    assert isinstance(reason, exc.ConnectionClosedByBroker)
    assert (reason.reply_code, reason.reply_text) == (
        530, "NOT_ALLOWED - attempt to reuse consumer tag 'dup-tag'")
