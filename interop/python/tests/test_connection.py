"""Connection handshake: credentials, vhosts, tuning, heartbeats, channels."""

import time
import uuid

import pika
import pika.exceptions as exc
import pytest

from conftest import rabbitmq_3x, unique, wait_until

LOGIN_REFUSED = (
    "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. "
    "For details see the broker logfile."
)


def _assert_access_refused(err):
    """pika reports a connection.close during the handshake as ProbableAuthenticationError
    whose text carries the broker's close (code and reply text)."""
    if isinstance(err, exc.ConnectionClosedByBroker):
        assert err.reply_code == 403
        assert err.reply_text == LOGIN_REFUSED
    else:
        assert isinstance(err, exc.ProbableAuthenticationError), repr(err)
        # A bare TCP drop would read "StreamLostError"; the broker must send connection.close.
        assert str(err.args[0]) == f"ConnectionClosedByBroker: (403) {LOGIN_REFUSED!r}"


def test_connect_with_credentials_and_default_vhost(broker):
    conn = pika.BlockingConnection(broker.params())
    try:
        assert conn.is_open
        ch = conn.channel()
        assert ch.is_open
        ok = ch.queue_declare("", exclusive=True)
        assert ok.method.queue.startswith("amq.gen-")
    finally:
        conn.close()
    assert conn.is_closed


def test_explicit_vhost_slash_url(broker):
    conn = pika.BlockingConnection(pika.URLParameters(broker.url_for("guest", "guest", "/")))
    try:
        assert conn.channel().is_open
    finally:
        conn.close()


def test_plain_credentials_object(broker):
    params = pika.ConnectionParameters(
        host=broker.host,
        port=broker.port,
        virtual_host="/",
        credentials=pika.PlainCredentials("guest", "guest"),
        connection_attempts=1,
        socket_timeout=10,
    )
    conn = pika.BlockingConnection(params)
    try:
        assert conn.is_open
    finally:
        conn.close()


def test_wrong_password_is_refused_with_403(broker):
    with pytest.raises((exc.ProbableAuthenticationError, exc.ConnectionClosedByBroker)) as ei:
        pika.BlockingConnection(
            broker.params(credentials=pika.PlainCredentials("guest", "not-the-password"))
        )
    _assert_access_refused(ei.value)


def test_unknown_user_is_refused_with_403(broker):
    with pytest.raises((exc.ProbableAuthenticationError, exc.ConnectionClosedByBroker)) as ei:
        pika.BlockingConnection(
            broker.params(credentials=pika.PlainCredentials(unique("nouser"), "x"))
        )
    _assert_access_refused(ei.value)


def test_unknown_vhost_is_refused_with_530(broker):
    vhost = unique("novhost")
    with pytest.raises((exc.ProbableAccessDeniedError, exc.ConnectionClosedByBroker)) as ei:
        pika.BlockingConnection(broker.params(virtual_host=vhost))
    err = ei.value
    text = f"NOT_ALLOWED - vhost {vhost} not found"
    if isinstance(err, exc.ConnectionClosedByBroker):
        assert (err.reply_code, err.reply_text) == (530, text)
    else:
        assert isinstance(err, exc.ProbableAccessDeniedError), repr(err)
        assert str(err.args[0]) == f"ConnectionClosedByBroker: (530) {text!r}"


def test_tune_values_offered_by_server(broker):
    offered = {}

    def heartbeat_cb(_conn, server_value):
        offered["heartbeat"] = server_value
        return server_value

    conn = pika.BlockingConnection(broker.params(heartbeat=heartbeat_cb))
    try:
        # RabbitMQ's defaults: heartbeat 60 s, frame_max 128 KiB, channel_max 2047.
        # pika keeps min(client, server); its own defaults are 131072 and 65535.
        assert offered["heartbeat"] == 60
        assert conn._impl.params.heartbeat == 60
        assert conn._impl.params.frame_max == 131072
        assert conn._impl.params.channel_max == 2047
    finally:
        conn.close()


def test_server_properties_and_capabilities(conn):
    props = conn._impl.server_properties
    caps = props["capabilities"]
    for cap in (
        "publisher_confirms",
        "exchange_exchange_bindings",
        "basic.nack",
        "consumer_cancel_notify",
        "connection.blocked",
        "authentication_failure_close",
        "per_consumer_qos",
    ):
        assert caps.get(cap) is True, f"capability {cap} missing: {caps}"
    for key in ("product", "version", "platform", "copyright", "information"):
        assert isinstance(props.get(key), str) and props[key], f"server property {key}"


def test_client_may_lower_frame_max(broker, connect):
    conn = connect(frame_max=8192)
    assert conn._impl.params.frame_max == 8192
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    body = bytes(range(256)) * 200  # 51200 bytes -> several 8 KiB body frames
    ch.basic_publish("", q, body)
    method, _props, got = ch.basic_get(q, auto_ack=True)
    assert method is not None
    assert got == body


def test_heartbeat_negotiated_and_idle_connection_survives(broker, connect):
    offered = {}

    def heartbeat_cb(_conn, server_value):
        offered["heartbeat"] = server_value
        return 2

    conn = connect(heartbeat=heartbeat_cb)
    assert offered["heartbeat"] == 60
    assert conn._impl.params.heartbeat == 2
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    checker = conn._impl._heartbeat_checker
    assert checker is not None
    # Idle for ~5 s (2.5 heartbeat intervals): pika sends its heartbeats while it pumps I/O,
    # and the broker must both tolerate them and send its own.
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.25)
    assert conn.is_open
    assert checker._heartbeat_frames_sent >= 2, "pika did not send its heartbeats"
    assert checker._heartbeat_frames_received >= 1, "broker sent no heartbeat frames in 5 s"
    ch.basic_publish("", q, b"after idle")
    method, _props, body = ch.basic_get(q, auto_ack=True)
    assert method is not None and body == b"after idle"


def test_heartbeat_disabled_by_client(connect):
    conn = connect(heartbeat=0)
    assert conn._impl.params.heartbeat == 0
    assert conn._impl._heartbeat_checker is None
    ch = conn.channel()
    assert ch.is_open


def test_many_channels_and_channel_numbers(conn):
    chans = [conn.channel() for _ in range(20)]
    numbers = [c.channel_number for c in chans]
    assert len(set(numbers)) == 20
    for c in chans:
        c.queue_declare("", exclusive=True)
    for c in chans[::2]:
        c.close()
    assert all(c.is_closed for c in chans[::2])
    assert all(c.is_open for c in chans[1::2])
    # Closed channel numbers can be reused.
    again = conn.channel()
    again.queue_declare("", exclusive=True)
    assert again.is_open


def test_channel_error_closes_only_that_channel(conn):
    bad = conn.channel()
    good = conn.channel()
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        bad.queue_declare(unique("missing"), passive=True)
    assert ei.value.reply_code == 404
    assert bad.is_closed
    assert good.is_open
    assert conn.is_open
    good.queue_declare("", exclusive=True)


def test_unknown_exchange_type(conn):
    ch = conn.channel()
    xtype = "x-no-such-type-" + uuid.uuid4().hex[:8]
    if rabbitmq_3x(conn):
        # RabbitMQ before 4.0 closed the whole connection with 503 COMMAND_INVALID.
        with pytest.raises(exc.ConnectionClosedByBroker) as ei:
            ch.exchange_declare(unique("badtype"), exchange_type=xtype)
        assert ei.value.reply_code == 503
        assert ei.value.reply_text == f"COMMAND_INVALID - unknown exchange type '{xtype}'"
        assert conn.is_closed
        return
    # Current RabbitMQ (4.0+, rabbitmq-server b6aacb7): a channel-level precondition failure.
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        ch.exchange_declare(unique("badtype"), exchange_type=xtype)
    assert ei.value.reply_code == 406
    assert ei.value.reply_text == f"PRECONDITION_FAILED - unknown exchange type '{xtype}'"
    assert conn.is_open


def test_prefetch_size_not_implemented_540(conn):
    ch = conn.channel()
    with pytest.raises(exc.ConnectionClosedByBroker) as ei:
        ch.basic_qos(prefetch_size=10)
    assert ei.value.reply_code == 540
    assert ei.value.reply_text == "NOT_IMPLEMENTED - prefetch_size!=0 (10)"


def test_client_close_and_reconnect(broker):
    for _ in range(3):
        conn = pika.BlockingConnection(broker.params())
        ch = conn.channel()
        ch.queue_declare("", exclusive=True)
        conn.close()
        assert conn.is_closed


def test_exclusive_queue_removed_when_owner_closes(broker, connect):
    owner = connect()
    q = owner.channel().queue_declare(unique("excl-gone"), exclusive=True).method.queue
    other = connect()
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        other.channel().queue_declare(q, passive=True)
    assert ei.value.reply_code == 405
    owner.close()

    def gone():
        ch = other.channel()
        try:
            ch.queue_declare(q, passive=True)
            ch.close()
            return False
        except exc.ChannelClosedByBroker as e:
            assert e.reply_code == 404
            return True

    wait_until(other, gone, timeout=10, what="exclusive queue deletion")
