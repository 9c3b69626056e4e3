"""Consumers, prefetch, acks, nack/reject, basic.get and basic.cancel."""

import pika
import pika.exceptions as exc
import pytest

from conftest import publish_confirmed, pump, unique, wait_until


def _fill(ch, q, n, prefix="m"):
    publish_confirmed(ch.connection, q, [f"{prefix}{i}".encode() for i in range(n)])
    assert ch.queue_declare(q, passive=True).method.message_count == n


def test_prefetch_limits_unacked_in_flight(conn, cleanup):
    ch = conn.channel()
    q = cleanup.queue(unique("prefetch"))
    ch.queue_declare(q)
    _fill(ch, q, 6)
    ch.basic_qos(prefetch_count=2)
    got = []
    tag = ch.basic_consume(q, lambda c, m, p, b: got.append((m, b)))
    wait_until(conn, lambda: len(got) >= 2, what="two deliveries")
    pump(conn, 0.5)
    assert [b for _m, b in got] == [b"m0", b"m1"], "prefetch 2 must hold back the third"
    ok = conn.channel().queue_declare(q, passive=True)
    assert (ok.method.message_count, ok.method.consumer_count) == (4, 1)
    assert all(m.consumer_tag == tag for m, _b in got)
    assert [m.delivery_tag for m, _b in got] == [1, 2]
    assert all(m.redelivered is False for m, _b in got)
    assert all(m.exchange == "" and m.routing_key == q for m, _b in got)

    ch.basic_ack(got[0][0].delivery_tag)
    wait_until(conn, lambda: len(got) >= 3, what="third delivery after one ack")
    pump(conn, 0.3)
    assert [b for _m, b in got] == [b"m0", b"m1", b"m2"]

    # multiple=True acks tags 2 and 3 -> two more may be sent.
    ch.basic_ack(got[2][0].delivery_tag, multiple=True)
    wait_until(conn, lambda: len(got) >= 5, what="two more deliveries")
    pump(conn, 0.3)
    assert [b for _m, b in got] == [b"m0", b"m1", b"m2", b"m3", b"m4"]
    ch.basic_ack(got[4][0].delivery_tag, multiple=True)
    wait_until(conn, lambda: len(got) >= 6, what="last delivery")
    ch.basic_ack(got[5][0].delivery_tag)
    assert [m.delivery_tag for m, _b in got] == [1, 2, 3, 4, 5, 6]
    ch.basic_cancel(tag)
    ok = conn.channel().queue_declare(q, passive=True)
    assert (ok.method.message_count, ok.method.consumer_count) == (0, 0)


def test_prefetch_is_per_consumer(conn, cleanup):
    ch = conn.channel()
    q1 = cleanup.queue(unique("pc1"))
    q2 = cleanup.queue(unique("pc2"))
    ch.queue_declare(q1)
    ch.queue_declare(q2)
    _fill(ch, q1, 3)
    _fill(ch, q2, 3)
    ch.basic_qos(prefetch_count=1)
    got1, got2 = [], []
    ch.basic_consume(q1, lambda c, m, p, b: got1.append(b))
    ch.basic_consume(q2, lambda c, m, p, b: got2.append(b))
    wait_until(conn, lambda: got1 and got2, what="one delivery per consumer")
    pump(conn, 0.3)
    assert (got1, got2) == ([b"m0"], [b"m0"])


def test_auto_ack_consumer_gets_everything(conn, cleanup):
    ch = conn.channel()
    q = cleanup.queue(unique("autoack"))
    ch.queue_declare(q)
    ch.basic_qos(prefetch_count=1)  # ignored for auto-ack consumers
    _fill(ch, q, 20)
    got = []
    ch.basic_consume(q, lambda c, m, p, b: got.append(b), auto_ack=True)
    wait_until(conn, lambda: len(got) >= 20, what="20 deliveries")
    assert got == [f"m{i}".encode() for i in range(20)]
    assert conn.channel().queue_declare(q, passive=True).method.message_count == 0


def test_consumer_receives_later_publishes_in_order(conn, cleanup):
    ch = conn.channel()
    q = cleanup.queue(unique("live"))
    ch.queue_declare(q)
    got = []
    ch.basic_consume(q, lambda c, m, p, b: (got.append(b), c.basic_ack(m.delivery_tag)))
    pub = conn.channel()
    for i in range(50):
        pub.basic_publish("", q, b"%d" % i)
    wait_until(conn, lambda: len(got) >= 50, what="50 deliveries")
    assert got == [b"%d" % i for i in range(50)]


def test_round_robin_between_consumers(conn, cleanup):
    ch = conn.channel()
    q = cleanup.queue(unique("rr"))
    ch.queue_declare(q)
    got = {"a": [], "b": []}
    ch.basic_consume(q, lambda c, m, p, b: got["a"].append(b), auto_ack=True, consumer_tag="a")
    ch.basic_consume(q, lambda c, m, p, b: got["b"].append(b), auto_ack=True, consumer_tag="b")
    for i in range(10):
        ch.basic_publish("", q, b"%d" % i)
    wait_until(conn, lambda: len(got["a"]) + len(got["b"]) >= 10, what="10 deliveries")
    assert len(got["a"]) == 5 and len(got["b"]) == 5
    assert sorted(got["a"] + got["b"], key=int) == [b"%d" % i for i in range(10)]


def test_nack_multiple_requeue_redelivers_in_original_order(conn, cleanup):
    ch = conn.channel()
    q = cleanup.queue(unique("nack-requeue"))
    ch.queue_declare(q)
    _fill(ch, q, 4)
    ch.basic_qos(prefetch_count=3)
    got = []
    tag = ch.basic_consume(q, lambda c, m, p, b: got.append((m, b)))
    wait_until(conn, lambda: len(got) >= 3, what="three deliveries")
    pump(conn, 0.2)
    assert [b for _m, b in got] == [b"m0", b"m1", b"m2"]
    ch.basic_cancel(tag)  # stop consuming; the unacked three stay with this channel
    ch.basic_nack(got[2][0].delivery_tag, multiple=True, requeue=True)
    seen = []
    for _ in range(4):
        method, _props, body = ch.basic_get(q, auto_ack=True)
        assert method is not None
        seen.append((body, method.redelivered))
    assert seen == [(b"m0", True), (b"m1", True), (b"m2", True), (b"m3", False)]
    assert ch.basic_get(q)[0] is None


def test_reject_requeue_returns_to_original_position(conn, cleanup):
    ch = conn.channel()
    q = cleanup.queue(unique("reject-requeue"))
    ch.queue_declare(q)
    _fill(ch, q, 3)
    m0, _p, b0 = ch.basic_get(q)
    m1, _p, b1 = ch.basic_get(q)
    assert (b0, b1) == (b"m0", b"m1")
    assert m1.message_count == 1
    ch.basic_reject(m1.delivery_tag, requeue=True)
    ch.basic_ack(m0.delivery_tag)
    again, _p, body = ch.basic_get(q)
    assert body == b"m1"
    assert again.redelivered is True
    # A new delivery tag for the redelivery.
    assert again.delivery_tag == 3
    ch.basic_ack(again.delivery_tag)
    last, _p, body = ch.basic_get(q, auto_ack=True)
    assert body == b"m2" and last.redelivered is False
    assert ch.basic_get(q)[0] is None


def test_consumer_redelivery_after_reject(conn, cleanup):
    ch = conn.channel()
    q = cleanup.queue(unique("reject-consumer"))
    ch.queue_declare(q)
    _fill(ch, q, 1)
    got = []

    def on_msg(c, m, p, b):
        got.append((m.redelivered, b))
        if not m.redelivered:
            c.basic_reject(m.delivery_tag, requeue=True)
        else:
            c.basic_ack(m.delivery_tag)

    ch.basic_consume(q, on_msg)
    wait_until(conn, lambda: len(got) >= 2, what="delivery and redelivery")
    assert got == [(False, b"m0"), (True, b"m0")]


def test_reject_and_nack_without_requeue_discard(conn, cleanup):
    ch = conn.channel()
    q = cleanup.queue(unique("discard"))
    ch.queue_declare(q)
    _fill(ch, q, 4)
    tags = [ch.basic_get(q)[0].delivery_tag for _ in range(4)]
    ch.basic_reject(tags[0], requeue=False)
    ch.basic_nack(tags[2], multiple=True, requeue=False)  # tags 2 and 3
    ch.basic_nack(tags[3], multiple=False, requeue=False)
    assert ch.basic_get(q)[0] is None
    ok = ch.queue_declare(q, passive=True)
    assert ok.method.message_count == 0
    # Nothing left unacked: closing the channel requeues nothing.
    ch.close()
    assert conn.channel().basic_get(q) == (None, None, None)


def test_unacked_requeued_on_channel_close(conn, cleanup):
    ch = conn.channel()
    q = cleanup.queue(unique("close-requeue"))
    ch.queue_declare(q)
    _fill(ch, q, 3)
    ch.basic_get(q)
    ch.basic_get(q)
    ch.close()
    other = conn.channel()
    seen = []
    while True:
        method, _props, body = other.basic_get(q, auto_ack=True)
        if method is None:
            break
        seen.append((body, method.redelivered))
    assert seen == [(b"m0", True), (b"m1", True), (b"m2", False)]


def test_ack_unknown_delivery_tag_406(conn, cleanup):
    ch = conn.channel()
    ch.basic_ack(99)
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        ch.queue_declare("", exclusive=True)
    assert ei.value.reply_code == 406
    assert ei.value.reply_text == "PRECONDITION_FAILED - unknown delivery tag 99"


def test_double_ack_406(conn, cleanup):
    ch = conn.channel()
    q = cleanup.queue(unique("double-ack"))
    ch.queue_declare(q)
    _fill(ch, q, 1)
    method, _p, _b = ch.basic_get(q)
    ch.basic_ack(method.delivery_tag)
    ch.basic_ack(method.delivery_tag)
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        ch.queue_declare("", exclusive=True)
    assert ei.value.reply_code == 406
    assert ei.value.reply_text == "PRECONDITION_FAILED - unknown delivery tag 1"


def test_basic_get_and_get_empty(conn, cleanup):
    ch = conn.channel()
    q = cleanup.queue(unique("get"))
    ch.queue_declare(q)
    assert ch.basic_get(q) == (None, None, None)
    _fill(ch, q, 2)
    method, props, body = ch.basic_get(q, auto_ack=True)
    assert isinstance(method, pika.spec.Basic.GetOk)
    assert body == b"m0"
    assert method.message_count == 1
    assert method.delivery_tag == 1
    assert method.redelivered is False
    assert method.exchange == ""
    assert method.routing_key == q
    assert isinstance(props, pika.BasicProperties)
    method, _props, body = ch.basic_get(q, auto_ack=True)
    assert (body, method.message_count, method.delivery_tag) == (b"m1", 0, 2)
    assert ch.basic_get(q, auto_ack=True) == (None, None, None)


def test_basic_get_missing_queue_404(ch):
    name = unique("get-missing")
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        ch.basic_get(name)
    assert (ei.value.reply_code, ei.value.reply_text) == (
        404,
        f"NOT_FOUND - no queue '{name}' in vhost '/'",
    )


def test_consume_missing_queue_404(ch):
    name = unique("consume-missing")
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        ch.basic_consume(name, lambda *a: None)
    assert (ei.value.reply_code, ei.value.reply_text) == (
        404,
        f"NOT_FOUND - no queue '{name}' in vhost '/'",
    )


def test_basic_cancel_stops_deliveries(conn, cleanup):
    ch = conn.channel()
    q = cleanup.queue(unique("cancel"))
    ch.queue_declare(q)
    got = []
    tag = ch.basic_consume(q, lambda c, m, p, b: got.append(b), auto_ack=True)
    assert ch.queue_declare(q, passive=True).method.consumer_count == 1
    ch.basic_publish("", q, b"before")
    wait_until(conn, lambda: got, what="delivery before cancel")
    ch.basic_cancel(tag)
    assert tag not in ch.consumer_tags
    ok = ch.queue_declare(q, passive=True)
    assert ok.method.consumer_count == 0
    publish_confirmed(conn, q, [b"after"])
    pump(conn, 0.3)
    assert got == [b"before"]
    assert ch.queue_declare(q, passive=True).method.message_count == 1


def test_cancel_leaves_unacked_with_channel(conn, cleanup):
    ch = conn.channel()
    q = cleanup.queue(unique("cancel-unacked"))
    ch.queue_declare(q)
    _fill(ch, q, 2)
    got = []
    tag = ch.basic_consume(q, lambda c, m, p, b: got.append(m))
    wait_until(conn, lambda: len(got) >= 2, what="two deliveries")
    ch.basic_cancel(tag)
    # Unacked deliveries stay unacked after cancel and can still be acked on the channel.
    assert ch.queue_declare(q, passive=True).method.message_count == 0
    ch.basic_ack(got[0].delivery_tag)
    ch.basic_nack(got[1].delivery_tag, requeue=True)
    method, _p, body = ch.basic_get(q, auto_ack=True)
    assert body == b"m1" and method.redelivered is True


def test_explicit_consumer_tag_and_duplicate_530(conn, cleanup):
    ch = conn.channel()
    q = cleanup.queue(unique("ctag"))
    ch.queue_declare(q)
    tag = ch.basic_consume(q, lambda *a: None, consumer_tag="py-tag-1")
    assert tag == "py-tag-1"
    # Pika refuses a duplicate tag locally; send the raw method to reach the broker.
    ch._impl._send_method(pika.spec.Basic.Consume(queue=q, consumer_tag="py-tag-1"))
    with pytest.raises(exc.ConnectionClosedByBroker) as ei:
        ch.queue_declare("", exclusive=True)
    assert ei.value.reply_code == 530
    assert ei.value.reply_text == "NOT_ALLOWED - attempt to reuse consumer tag 'py-tag-1'"


def test_exclusive_consumer_403(conn, cleanup):
    ch = conn.channel()
    q = cleanup.queue(unique("excl-consumer"))
    ch.queue_declare(q)
    ch.basic_consume(q, lambda *a: None, exclusive=True)
    other = conn.channel()
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        other.basic_consume(q, lambda *a: None)
    assert ei.value.reply_code == 403
    assert ei.value.reply_text == f"ACCESS_REFUSED - queue '{q}' in vhost '/' in exclusive use"


def test_exclusive_consume_on_queue_with_consumer_403(conn, cleanup):
    ch = conn.channel()
    q = cleanup.queue(unique("excl-consumer2"))
    ch.queue_declare(q)
    ch.basic_consume(q, lambda *a: None)
    other = conn.channel()
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        other.basic_consume(q, lambda *a: None, exclusive=True)
    assert ei.value.reply_code == 403
    assert ei.value.reply_text == f"ACCESS_REFUSED - queue '{q}' in vhost '/' in exclusive use"
