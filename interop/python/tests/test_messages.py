"""Message content: every BasicProperties field, header value types, bodies of all sizes."""

import hashlib
import struct
from datetime import datetime, timezone
from decimal import Decimal

import pika
import pika.data
import pika.exceptions as exc
import pytest

from conftest import publish_confirmed, unique, wait_until


@pytest.fixture
def float_fields(monkeypatch):
    """pika 1.4.4 cannot encode a float field value and decodes 'd' (double) as an int.
    Teach it 'd' and 'f' for the duration of a test so float headers can be checked
    byte-for-byte through the broker."""
    orig_encode = pika.data.encode_value
    orig_decode = pika.data.decode_value

    def encode_value(pieces, value):
        if isinstance(value, float):
            pieces.append(struct.pack(">cd", b"d", value))
            return 9
        return orig_encode(pieces, value)

    def decode_value(encoded, offset):
        kind = encoded[offset:offset + 1]
        if kind == b"d":
            return struct.unpack_from(">d", encoded, offset + 1)[0], offset + 9
        if kind == b"f":
            return struct.unpack_from(">f", encoded, offset + 1)[0], offset + 5
        return orig_decode(encoded, offset)

    monkeypatch.setattr(pika.data, "encode_value", encode_value)
    monkeypatch.setattr(pika.data, "decode_value", decode_value)


HEADERS = {
    "str": "hello",
    "unicode": "grüße ✓",
    "empty-str": "",
    "int": 42,
    "negative": -7,
    "zero": 0,
    "int32-max": 2**31 - 1,
    "int64": 2**40,
    "int64-min": -(2**63),
    "float": 3.25,
    "float-neg": -0.1,
    "true": True,
    "false": False,
    "nested": {"a": 1, "b": {"c": "d", "e": [1, 2]}, "f": None},
    "empty-table": {},
    "list": [1, "two", True, None, {"k": "v"}, [3, 4], b"\x00\xff"],
    "empty-list": [],
    "bytes": b"\x00\x01\x02\xfe\xff",
    "none": None,
    "decimal": Decimal("12.345"),
    "decimal-int": Decimal("7"),
    "datetime": datetime(2024, 2, 29, 12, 34, 56, tzinfo=timezone.utc),
}

ALL_PROPS = dict(
    content_type="application/json",
    content_encoding="gzip",
    delivery_mode=2,
    priority=7,
    correlation_id="corr-42",
    reply_to="amq.gen-reply-to",
    expiration="600000",
    message_id="msg-ünïcødé-1",
    timestamp=1700000000,
    type="order.created",
    user_id="guest",
    app_id="warren-pytest",
    cluster_id="cluster-a",
)

PROP_NAMES = (
    "content_type",
    "content_encoding",
    "headers",
    "delivery_mode",
    "priority",
    "correlation_id",
    "reply_to",
    "expiration",
    "message_id",
    "timestamp",
    "type",
    "user_id",
    "app_id",
    "cluster_id",
)


def _assert_props_equal(got, expected):
    for name in PROP_NAMES:
        assert getattr(got, name) == getattr(expected, name), name


def test_all_properties_round_trip_via_get(conn, cleanup, float_fields):
    ch = conn.channel()
    q = cleanup.queue(unique("props-get"))
    ch.queue_declare(q)
    sent = pika.BasicProperties(headers=HEADERS, **ALL_PROPS)
    publish_confirmed(conn, q, [b"payload"], properties=sent)
    method, got, body = ch.basic_get(q, auto_ack=True)
    assert body == b"payload"
    _assert_props_equal(got, sent)
    assert got.headers == HEADERS
    # Types survive too (bool is not int 1, bytes is not str, ...).
    for k, v in HEADERS.items():
        g = got.headers[k]
        if isinstance(v, bool) or not isinstance(v, int):
            assert type(g) is type(v), k
        else:  # pika decodes 64-bit ints as its int subclass `long`
            assert isinstance(g, int) and not isinstance(g, bool), k


def test_all_properties_round_trip_via_consume(conn, cleanup, float_fields):
    ch = conn.channel()
    q = cleanup.queue(unique("props-consume"))
    ch.queue_declare(q)
    sent = pika.BasicProperties(headers=HEADERS, **ALL_PROPS)
    got = []
    ch.basic_consume(q, lambda c, m, p, b: got.append((m, p, b)), auto_ack=True)
    conn.channel().basic_publish("", q, b"consumed", sent)
    wait_until(conn, lambda: got, what="delivery")
    method, props, body = got[0]
    assert isinstance(method, pika.spec.Basic.Deliver)
    assert body == b"consumed"
    _assert_props_equal(props, sent)


@pytest.mark.parametrize("name", [n for n in PROP_NAMES if n != "headers"])
def test_each_property_alone(conn, cleanup, name):
    ch = conn.channel()
    q = cleanup.queue(unique(f"prop-{name}"))
    ch.queue_declare(q)
    sent = pika.BasicProperties(**{name: ALL_PROPS[name]})
    publish_confirmed(conn, q, [b"x"], properties=sent)
    _m, got, _b = ch.basic_get(q, auto_ack=True)
    _assert_props_equal(got, sent)


def test_no_properties(conn, cleanup):
    ch = conn.channel()
    q = cleanup.queue(unique("props-none"))
    ch.queue_declare(q)
    publish_confirmed(conn, q, [b"bare"])
    _m, got, body = ch.basic_get(q, auto_ack=True)
    assert body == b"bare"
    for name in PROP_NAMES:
        assert getattr(got, name) is None, name


def test_empty_headers_table(conn, cleanup):
    ch = conn.channel()
    q = cleanup.queue(unique("props-emptyhdr"))
    ch.queue_declare(q)
    publish_confirmed(conn, q, [b"x"], properties=pika.BasicProperties(headers={}))
    _m, got, _b = ch.basic_get(q, auto_ack=True)
    assert got.headers == {}


def test_user_id_mismatch_406(conn):
    ch = conn.channel()
    ch.basic_publish("", unique("any"), b"x", pika.BasicProperties(user_id="mallory"))
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        ch.queue_declare("", exclusive=True)
    assert ei.value.reply_code == 406
    assert ei.value.reply_text == (
        "PRECONDITION_FAILED - user_id property set to 'mallory' but authenticated user was 'guest'"
    )


def test_invalid_expiration_406(conn):
    ch = conn.channel()
    ch.basic_publish("", unique("any"), b"x", pika.BasicProperties(expiration="soon"))
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        ch.queue_declare("", exclusive=True)
    assert ei.value.reply_code == 406
    assert ei.value.reply_text == "PRECONDITION_FAILED - invalid expiration 'soon': no_integer"


def test_expiration_zero_expires_unless_delivered_at_once(conn, cleanup):
    ch = conn.channel()
    q = cleanup.queue(unique("ttl0"))
    ch.queue_declare(q)
    publish_confirmed(conn, q, [b"gone"], properties=pika.BasicProperties(expiration="0"))
    publish_confirmed(conn, q, [b"kept"])
    _m, _p, body = ch.basic_get(q, auto_ack=True)
    assert body == b"kept"
    assert ch.basic_get(q) == (None, None, None)


def test_expired_message_not_delivered(conn, cleanup):
    ch = conn.channel()
    q = cleanup.queue(unique("ttl"))
    ch.queue_declare(q)
    publish_confirmed(conn, q, [b"short"], properties=pika.BasicProperties(expiration="100"))

    def expired():
        return ch.queue_declare(q, passive=True).method.message_count == 0

    wait_until(conn, expired, timeout=10, what="message expiry")
    assert ch.basic_get(q) == (None, None, None)


def _body(size, seed):
    out = bytearray()
    block = hashlib.sha256(seed.encode()).digest()
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block * 64
    return bytes(out[:size])


@pytest.mark.parametrize("size", [0, 1, 131064, 131065, 131072, 262128, 1 << 20, 10 << 20],
                         ids=lambda s: f"{s}B")
def test_body_sizes_round_trip(conn, cleanup, size):
    """Bodies split across frames (frame_max 131072 -> 131064 payload bytes per body frame)."""
    ch = conn.channel()
    q = cleanup.queue(unique(f"body{size}"))
    ch.queue_declare(q)
    body = _body(size, q)
    pub = conn.channel()
    pub.confirm_delivery()
    pub.basic_publish("", q, body, pika.BasicProperties(message_id=f"size-{size}"))
    got = []
    ch.basic_consume(q, lambda c, m, p, b: got.append((p, b)), auto_ack=True)
    wait_until(conn, lambda: got, timeout=60, what=f"{size}-byte message")
    props, received = got[0]
    assert props.message_id == f"size-{size}"
    assert len(received) == size
    assert received == body


def test_large_messages_1mib_and_10mib_via_get(conn, cleanup):
    ch = conn.channel()
    q = cleanup.queue(unique("large"))
    ch.queue_declare(q)
    bodies = [_body(1 << 20, "one"), _body(10 << 20, "ten")]
    publish_confirmed(conn, q, bodies)
    for expected in bodies:
        method, _p, body = ch.basic_get(q, auto_ack=True)
        assert method is not None
        assert len(body) == len(expected)
        assert hashlib.sha256(body).hexdigest() == hashlib.sha256(expected).hexdigest()


def test_interleaved_channels_large_messages(conn, cleanup):
    """Two channels publishing multi-frame messages concurrently keep their frames apart."""
    q = cleanup.queue(unique("interleave"))
    conn.channel().queue_declare(q)
    a = conn.channel()
    b = conn.channel()
    body_a = b"A" * 300_000
    body_b = b"B" * 300_000
    for _ in range(3):
        a.basic_publish("", q, body_a)
        b.basic_publish("", q, body_b)
    ch = conn.channel()
    got = []
    ch.basic_consume(q, lambda c, m, p, bd: got.append(bd), auto_ack=True)
    wait_until(conn, lambda: len(got) >= 6, timeout=30, what="six messages")
    assert sorted(got) == sorted([body_a] * 3 + [body_b] * 3)
