"""Publisher confirms, mandatory returns and transactions."""

import pika
import pika.exceptions as exc
import pytest

from conftest import publish_confirmed, pump, unique, wait_until


def test_confirm_delivery_routed_publish(conn, cleanup):
    ch = conn.channel()
    ch.confirm_delivery()
    q = cleanup.queue(unique("confirm"))
    ch.queue_declare(q)
    for i in range(10):
        ch.basic_publish("", q, b"%d" % i)  # raises on nack; returns once acked
    assert ch.queue_declare(q, passive=True).method.message_count == 10


def test_confirm_unroutable_non_mandatory_is_acked(conn):
    ch = conn.channel()
    ch.confirm_delivery()
    ch.basic_publish("amq.direct", unique("nobody-bound"), b"dropped")
    assert ch.is_open


def test_confirm_mandatory_unroutable_raises(conn):
    ch = conn.channel()
    ch.confirm_delivery()
    key = unique("nobody-bound")
    with pytest.raises(exc.UnroutableError) as ei:
        ch.basic_publish("amq.direct", key, b"returned", mandatory=True)
    returned = ei.value.messages
    assert len(returned) == 1
    ret = returned[0]
    assert ret.method.reply_code == 312
    assert ret.method.reply_text == "NO_ROUTE"
    assert ret.method.exchange == "amq.direct"
    assert ret.method.routing_key == key
    assert ret.body == b"returned"
    # The channel stays usable.
    ch.basic_publish("amq.direct", key, b"again")


def test_confirm_mandatory_to_default_exchange_missing_queue(conn):
    ch = conn.channel()
    ch.confirm_delivery()
    key = unique("no-such-queue")
    with pytest.raises(exc.UnroutableError) as ei:
        ch.basic_publish("", key, b"x", pika.BasicProperties(content_type="text/plain"),
                         mandatory=True)
    ret = ei.value.messages[0]
    assert (ret.method.reply_code, ret.method.reply_text) == (312, "NO_ROUTE")
    assert ret.method.exchange == ""
    assert ret.method.routing_key == key
    assert ret.properties.content_type == "text/plain"


def test_mandatory_return_without_confirms(conn):
    ch = conn.channel()
    returns = []
    ch.add_on_return_callback(lambda c, m, p, b: returns.append((m, p, b)))
    key = unique("nobody")
    ch.basic_publish("amq.topic", key, b"back", pika.BasicProperties(message_id="r1"),
                     mandatory=True)
    wait_until(conn, lambda: returns, what="basic.return")
    method, props, body = returns[0]
    assert (method.reply_code, method.reply_text) == (312, "NO_ROUTE")
    assert (method.exchange, method.routing_key) == ("amq.topic", key)
    assert props.message_id == "r1"
    assert body == b"back"


def test_mandatory_routed_is_not_returned(conn, cleanup):
    ch = conn.channel()
    returns = []
    ch.add_on_return_callback(lambda *a: returns.append(a))
    q = cleanup.queue(unique("mandatory-ok"))
    ch.queue_declare(q)
    ch.basic_publish("", q, b"stays", mandatory=True)
    method, _p, body = ch.basic_get(q, auto_ack=True)
    assert body == b"stays"
    pump(conn, 0.2)
    assert returns == []


def test_raw_confirm_select_acks_with_sequence_numbers(conn, cleanup):
    """Confirm mode on the async channel: delivery tags 1..n, possibly batched by multiple."""
    bch = conn.channel()
    q = cleanup.queue(unique("raw-confirm"))
    bch.queue_declare(q)
    ch = bch._impl
    acks = []
    ok = []
    ch.confirm_delivery(lambda frame: acks.append(frame.method), callback=lambda f: ok.append(f))
    wait_until(conn, lambda: ok, what="confirm.select-ok")
    for i in range(20):
        ch.basic_publish("", q, b"%d" % i)

    def confirmed_upto():
        top = 0
        for m in acks:
            assert isinstance(m, pika.spec.Basic.Ack), m
            top = max(top, m.delivery_tag)
        return top

    wait_until(conn, lambda: confirmed_upto() >= 20, what="20 confirms")
    # Each tag is acked exactly once, either singly or covered by a multiple ack.
    covered = []
    prev = 0
    for m in acks:
        if m.multiple:
            covered.extend(range(prev + 1, m.delivery_tag + 1))
        else:
            covered.append(m.delivery_tag)
        prev = max(prev, m.delivery_tag)
    assert sorted(covered) == list(range(1, 21))


def test_confirm_after_tx_406(conn):
    ch = conn.channel()
    ch.tx_select()
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        ch.confirm_delivery()
    assert ei.value.reply_code == 406
    assert ei.value.reply_text == "PRECONDITION_FAILED - cannot switch from tx to confirm mode"


def test_tx_after_confirm_406(conn):
    ch = conn.channel()
    ch.confirm_delivery()
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        ch.tx_select()
    assert ei.value.reply_code == 406
    assert ei.value.reply_text == "PRECONDITION_FAILED - cannot switch from confirm to tx mode"


def test_tx_commit_and_rollback_publishes(conn, cleanup):
    ch = conn.channel()
    q = cleanup.queue(unique("tx"))
    ch.queue_declare(q)
    ch.tx_select()
    ch.basic_publish("", q, b"rolled back")
    ch.tx_rollback()
    ch.basic_publish("", q, b"c1")
    ch.basic_publish("", q, b"c2")
    # Uncommitted publishes are not visible.
    other = conn.channel()
    assert other.basic_get(q) == (None, None, None)
    ch.tx_commit()
    bodies = []
    while True:
        method, _p, body = other.basic_get(q, auto_ack=True)
        if method is None:
            break
        bodies.append(body)
    assert bodies == [b"c1", b"c2"]
    # The channel stays transactional after commit.
    ch.basic_publish("", q, b"c3")
    assert other.basic_get(q) == (None, None, None)
    ch.tx_commit()
    assert other.basic_get(q, auto_ack=True)[2] == b"c3"


def test_tx_acks_commit_and_rollback(conn, cleanup):
    q = cleanup.queue(unique("tx-ack"))
    conn.channel().queue_declare(q)
    publish_confirmed(conn, q, [b"a", b"b"])
    ch = conn.channel()
    ch.tx_select()
    ma, _p, body_a = ch.basic_get(q)
    mb, _p, body_b = ch.basic_get(q)
    assert (body_a, body_b) == (b"a", b"b")
    ch.basic_ack(ma.delivery_tag)
    ch.tx_commit()  # "a" is acked for good
    ch.basic_ack(mb.delivery_tag)
    ch.tx_rollback()  # the ack of "b" is discarded: "b" stays unacked
    ch.close()  # ... and is requeued when the channel closes
    other = conn.channel()
    method, _p, body = other.basic_get(q, auto_ack=True)
    assert body == b"b" and method.redelivered is True
    assert other.basic_get(q) == (None, None, None)


def test_tx_commit_without_select_406(ch):
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        ch.tx_commit()
    assert ei.value.reply_code == 406
    assert ei.value.reply_text == "PRECONDITION_FAILED - channel is not transactional"


def test_tx_rollback_without_select_406(ch):
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        ch.tx_rollback()
    assert ei.value.reply_code == 406
    assert ei.value.reply_text == "PRECONDITION_FAILED - channel is not transactional"


def test_tx_mandatory_unroutable_returned_on_commit(conn):
    ch = conn.channel()
    returns = []
    ch.add_on_return_callback(lambda c, m, p, b: returns.append((m, b)))
    ch.tx_select()
    key = unique("tx-nobody")
    ch.basic_publish("amq.direct", key, b"tx-return", mandatory=True)
    ch.tx_commit()
    wait_until(conn, lambda: returns, what="basic.return after commit")
    method, body = returns[0]
    assert (method.reply_code, method.reply_text, method.routing_key) == (312, "NO_ROUTE", key)
    assert body == b"tx-return"
