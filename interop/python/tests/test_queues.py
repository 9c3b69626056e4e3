"""Queue declaration, equivalence checks, exclusivity, purge and delete."""

import pika.exceptions as exc
import pytest

from conftest import publish_confirmed, unique, wait_until


def test_declare_ok_counts(conn, cleanup):
    ch = conn.channel()
    q = cleanup.queue(unique("counts"))
    ok = ch.queue_declare(q)
    assert ok.method.queue == q
    assert ok.method.message_count == 0
    assert ok.method.consumer_count == 0
    publish_confirmed(conn, q, [b"m0", b"m1", b"m2"])
    ok = ch.queue_declare(q)
    assert (ok.method.message_count, ok.method.consumer_count) == (3, 0)
    ok = ch.queue_declare(q, passive=True)
    assert (ok.method.message_count, ok.method.consumer_count) == (3, 0)

    cons = conn.channel()
    cons.basic_qos(prefetch_count=1)
    cons.basic_consume(q, lambda *a: None)
    # One message is now unacked at the consumer: message_count counts ready messages only.
    wait_until(
        conn,
        lambda: ch.queue_declare(q, passive=True).method.message_count == 2,
        what="one delivery in flight",
    )
    ok = ch.queue_declare(q, passive=True)
    assert (ok.method.message_count, ok.method.consumer_count) == (2, 1)


def test_server_named_queue(ch):
    ok = ch.queue_declare("", exclusive=True)
    name = ok.method.queue
    assert name.startswith("amq.gen-")
    assert len(name) == len("amq.gen-") + 22
    again = ch.queue_declare("", exclusive=True).method.queue
    assert again != name
    assert ch.queue_declare(name, passive=True).method.queue == name


def test_passive_declare_missing_queue_404(ch):
    name = unique("missing")
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        ch.queue_declare(name, passive=True)
    assert ei.value.reply_code == 404
    assert ei.value.reply_text.startswith("NOT_FOUND - no queue")
    assert ei.value.reply_text == f"NOT_FOUND - no queue '{name}' in vhost '/'"
    assert ch.is_closed


def test_exclusive_queue_from_other_connection_405(connect, cleanup):
    owner = connect()
    q = cleanup.queue(unique("exclusive"))
    owner.channel().queue_declare(q, exclusive=True)
    other = connect()
    text = (
        f"RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{q}' in vhost '/'. "
        "It could be originally declared on another connection or the exclusive property "
        "value does not match that of the original declaration."
    )
    for name, op in (
        ("declare", lambda c: c.queue_declare(q)),
        ("declare-exclusive", lambda c: c.queue_declare(q, exclusive=True)),
        ("passive", lambda c: c.queue_declare(q, passive=True)),
        ("consume", lambda c: c.basic_consume(q, lambda *a: None)),
        ("get", lambda c: c.basic_get(q)),
        ("purge", lambda c: c.queue_purge(q)),
        ("delete", lambda c: c.queue_delete(q)),
        ("bind", lambda c: c.queue_bind(q, "amq.fanout")),
    ):
        c = other.channel()
        with pytest.raises(exc.ChannelClosedByBroker) as ei:
            op(c)
        assert (ei.value.reply_code, ei.value.reply_text) == (405, text), name
    # The owner itself may use it from any of its channels.
    owner.channel().queue_declare(q, exclusive=True)
    owner.channel().queue_declare(q, passive=True)


def test_non_exclusive_redeclared_exclusive_405(conn, cleanup):
    ch = conn.channel()
    q = cleanup.queue(unique("excl-mismatch"))
    ch.queue_declare(q)
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        ch.queue_declare(q, exclusive=True)
    assert ei.value.reply_code == 405
    assert ei.value.reply_text.startswith(
        f"RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{q}' in vhost '/'."
    )


def test_redeclare_different_durable_406(conn, cleanup):
    ch = conn.channel()
    q = cleanup.queue(unique("durable"))
    ch.queue_declare(q, durable=False)
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        ch.queue_declare(q, durable=True)
    assert ei.value.reply_code == 406
    assert ei.value.reply_text == (
        f"PRECONDITION_FAILED - inequivalent arg 'durable' for queue '{q}' in vhost '/': "
        "received 'true' but current is 'false'"
    )


def test_redeclare_durable_queue_as_transient_406(conn, cleanup):
    ch = conn.channel()
    q = cleanup.queue(unique("durable2"))
    ch.queue_declare(q, durable=True)
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        ch.queue_declare(q, durable=False)
    assert ei.value.reply_code == 406
    assert ei.value.reply_text == (
        f"PRECONDITION_FAILED - inequivalent arg 'durable' for queue '{q}' in vhost '/': "
        "received 'false' but current is 'true'"
    )


def test_redeclare_different_auto_delete_406(conn, cleanup):
    ch = conn.channel()
    q = cleanup.queue(unique("autodel"))
    ch.queue_declare(q)
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        ch.queue_declare(q, auto_delete=True)
    assert ei.value.reply_code == 406
    assert ei.value.reply_text == (
        f"PRECONDITION_FAILED - inequivalent arg 'auto_delete' for queue '{q}' in vhost '/': "
        "received 'true' but current is 'false'"
    )


def test_redeclare_different_argument_406(conn, cleanup):
    ch = conn.channel()
    q = cleanup.queue(unique("args"))
    ch.queue_declare(q)
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        ch.queue_declare(q, arguments={"x-max-length": 10})
    assert ei.value.reply_code == 406
    assert ei.value.reply_text == (
        f"PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue '{q}' in vhost '/': "
        "received the value '10' of type 'signedint' but current is none"
    )


def test_passive_ignores_other_flags(conn, cleanup):
    ch = conn.channel()
    q = cleanup.queue(unique("passive-flags"))
    ch.queue_declare(q, durable=False)
    ok = ch.queue_declare(q, passive=True, durable=True, auto_delete=True)
    assert ok.method.queue == q


def test_queue_reserved_prefix_403(ch):
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        ch.queue_declare("amq.py-queue")
    assert ei.value.reply_code == 403
    assert ei.value.reply_text == (
        "ACCESS_REFUSED - queue name 'amq.py-queue' contains reserved prefix 'amq.*'"
    )


def test_purge_returns_count(conn, cleanup):
    ch = conn.channel()
    q = cleanup.queue(unique("purge"))
    ch.queue_declare(q)
    publish_confirmed(conn, q, [b"x%d" % i for i in range(5)])
    ok = ch.queue_purge(q)
    assert ok.method.message_count == 5
    assert ch.queue_declare(q, passive=True).method.message_count == 0
    assert ch.queue_purge(q).method.message_count == 0


def test_purge_keeps_unacked(conn, cleanup):
    ch = conn.channel()
    q = cleanup.queue(unique("purge-unacked"))
    ch.queue_declare(q)
    publish_confirmed(conn, q, [b"x%d" % i for i in range(3)])
    method, _p, _b = ch.basic_get(q)  # unacked
    assert ch.queue_purge(q).method.message_count == 2
    ch.basic_reject(method.delivery_tag, requeue=True)
    m2, _p, body = ch.basic_get(q, auto_ack=True)
    assert body == b"x0" and m2.redelivered is True


def test_purge_missing_404(ch):
    name = unique("purge-missing")
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        ch.queue_purge(name)
    assert (ei.value.reply_code, ei.value.reply_text) == (
        404,
        f"NOT_FOUND - no queue '{name}' in vhost '/'",
    )


def test_delete_returns_count_and_removes(conn):
    ch = conn.channel()
    q = unique("delete")
    ch.queue_declare(q)
    publish_confirmed(conn, q, [b"x"] * 4)
    ok = ch.queue_delete(q)
    assert ok.method.message_count == 4
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        ch.queue_declare(q, passive=True)
    assert ei.value.reply_code == 404


def test_delete_missing_queue_is_ok(ch):
    ok = ch.queue_delete(unique("delete-missing"))
    assert ok.method.message_count == 0
    assert ch.is_open


def test_delete_if_unused_406(conn, cleanup):
    ch = conn.channel()
    q = cleanup.queue(unique("if-unused"))
    ch.queue_declare(q)
    cons = conn.channel()
    tag = cons.basic_consume(q, lambda *a: None)
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        ch.queue_delete(q, if_unused=True)
    assert ei.value.reply_code == 406
    assert ei.value.reply_text == f"PRECONDITION_FAILED - queue '{q}' in vhost '/' in use"
    cons.basic_cancel(tag)
    ch = conn.channel()
    assert ch.queue_delete(q, if_unused=True).method.message_count == 0


def test_delete_if_empty_406(conn, cleanup):
    ch = conn.channel()
    q = cleanup.queue(unique("if-empty"))
    ch.queue_declare(q)
    publish_confirmed(conn, q, [b"x"])
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        ch.queue_delete(q, if_empty=True)
    assert ei.value.reply_code == 406
    assert ei.value.reply_text == f"PRECONDITION_FAILED - queue '{q}' in vhost '/' not empty"
    ch = conn.channel()
    ch.queue_purge(q)
    assert ch.queue_delete(q, if_empty=True).method.message_count == 0


def test_auto_delete_queue_deleted_after_last_consumer(conn, cleanup):
    ch = conn.channel()
    q = cleanup.queue(unique("autodelete"))
    ch.queue_declare(q, auto_delete=True)
    # No consumer yet: an auto-delete queue that never had one stays.
    ch.queue_declare(q, passive=True)
    t1 = ch.basic_consume(q, lambda *a: None)
    t2 = ch.basic_consume(q, lambda *a: None)
    assert ch.queue_declare(q, passive=True).method.consumer_count == 2
    ch.basic_cancel(t1)
    ch.queue_declare(q, passive=True)
    ch.basic_cancel(t2)

    def gone():
        c = conn.channel()
        try:
            c.queue_declare(q, passive=True)
            c.close()
            return False
        except exc.ChannelClosedByBroker as e:
            assert e.reply_code == 404
            return True

    wait_until(conn, gone, what="auto-delete queue removal")


def test_queue_delete_cancels_consumers(conn, cleanup):
    ch = conn.channel()
    q = cleanup.queue(unique("delete-cancel"))
    ch.queue_declare(q)
    cancelled = []
    ch.add_on_cancel_callback(lambda frame: cancelled.append(frame.method.consumer_tag))
    tag = ch.basic_consume(q, lambda *a: None)
    conn.channel().queue_delete(q)
    wait_until(conn, lambda: cancelled, what="basic.cancel from the broker")
    assert cancelled == [tag]
    assert ch.is_open
