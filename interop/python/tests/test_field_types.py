"""Header field types through the broker, checked on the wire (scenario 8).

The content header pika receives is kept raw and parsed with amqp_fields, so each value
must come back with the same field type tag and the same bits, in the same order: a broker
that re-encodes an 8-bit int as a 32-bit one, a double as a float or reorders a table fails
here even where pika's own decoder would hide it."""

from datetime import datetime, timezone
from decimal import Decimal

import pika
import pika.data
import pytest

import amqp_fields as af
from conftest import publish_confirmed, unique, wait_until


def _sent_headers(headers):
    """What pika puts on the wire for a headers dict, as typed items."""
    pieces = []
    pika.data.encode_table(pieces, headers)
    items, _ = af.parse_table(b"".join(pieces))
    return items


def _round_trip_get(conn, cleanup, headers, **props):
    ch = conn.channel()
    q = cleanup.queue(unique("fields"))
    ch.queue_declare(q)
    publish_confirmed(conn, q, [b"typed"], properties=pika.BasicProperties(headers=headers,
                                                                          **props))
    method, got, body = ch.basic_get(q, auto_ack=True)
    assert method is not None and body == b"typed"
    return got


# Everything pika 1.4.4 encodes natively: str, bytes, bool, int (as 32-bit 'I' when it
# fits, else 64-bit 'l'), Decimal, datetime, dict, list, None.
NATIVE = {
    "str": "text ✓",
    "bytes": b"\x00\x01\xfe\xff",
    "true": True,
    "false": False,
    "int32-min": -(2**31),
    "int32-max": 2**31 - 1,
    "int64-just-above-int32": 2**31,
    "int64-just-below-int32": -(2**31) - 1,
    "int64-min": -(2**63),
    "int64-max": 2**63 - 1,
    "zero": 0,
    "decimal": Decimal("12.345"),
    "decimal-negative": Decimal("-0.5"),
    "decimal-whole": Decimal("100"),
    "decimal-max-scale": Decimal("0.000000001"),
    "timestamp": datetime(2024, 2, 29, 12, 34, 56, tzinfo=timezone.utc),
    "timestamp-epoch": datetime(1970, 1, 1, tzinfo=timezone.utc),
    "nested": {"a": {"b": {"c": [1, {"d": None}]}}, "e": b"bin", "f": False},
    "array": [1, 2**40, "s", b"b", True, None, Decimal("1.5"), [], {}, [["deep"]]],
    "none": None,
}


def test_pika_native_types_same_tags_and_values(conn, cleanup, wire):
    sent = _sent_headers(NATIVE)
    tags = {k: v[0] for k, v in sent}
    # pika's choice of width for ints: this is what the broker has to give back.
    assert (tags["int32-max"], tags["int64-just-above-int32"], tags["int64-max"]) == ("I", "l", "l")
    got = _round_trip_get(conn, cleanup, NATIVE)
    af.assert_same_items(af.headers_of_basic_properties(got.raw), sent)
    # And pika's decoded view equals what was sent.
    assert got.headers == NATIVE
    assert type(got.headers["true"]) is bool
    assert type(got.headers["bytes"]) is bytes
    assert type(got.headers["decimal"]) is Decimal
    assert got.headers["timestamp"] == NATIVE["timestamp"]


def test_every_amqp_field_type_same_tags_and_bits(conn, cleanup, wire):
    """8/16-bit, unsigned and float fields, which pika cannot produce itself, sent
    pre-encoded."""
    headers = {k: af.Raw(v) for k, v in af.ALL_TYPES}
    got = _round_trip_get(conn, cleanup, headers)
    af.assert_same_items(af.headers_of_basic_properties(got.raw), af.ALL_TYPES)


def test_field_types_via_consumer_with_all_properties(conn, cleanup, wire):
    ch = conn.channel()
    q = cleanup.queue(unique("fields-consume"))
    ch.queue_declare(q)
    headers = {k: af.Raw(v) for k, v in af.ALL_TYPES}
    sent = pika.BasicProperties(
        content_type="application/octet-stream", content_encoding="identity",
        headers=headers, delivery_mode=2, priority=9, correlation_id="c-1",
        reply_to="r-1", expiration="60000", message_id="m-1", timestamp=1234567890,
        type="t-1", user_id="guest", app_id="a-1",
    )
    got = []
    ch.basic_consume(q, lambda c, m, p, b: got.append((p, b)), auto_ack=True)
    pub = conn.channel()
    pub.confirm_delivery()
    pub.basic_publish("", q, b"consumed", sent)
    wait_until(conn, lambda: got, what="delivery")
    props, body = got[0]
    assert body == b"consumed"
    af.assert_same_items(af.headers_of_basic_properties(props.raw), af.ALL_TYPES)
    for name in ("content_type", "content_encoding", "delivery_mode", "priority",
                 "correlation_id", "reply_to", "expiration", "message_id", "timestamp",
                 "type", "user_id", "app_id"):
        assert getattr(props, name) == getattr(sent, name), name


def test_field_types_survive_headers_exchange_routing(conn, cleanup, wire):
    """A headers exchange has to look into the table to route: the table must still come
    back untouched, and typed bindings match by value."""
    ch = conn.channel()
    ch.confirm_delivery()
    x = cleanup.exchange(unique("fields-hx"))
    ch.exchange_declare(x, exchange_type="headers")
    q = cleanup.queue(unique("fields-hq"))
    ch.queue_declare(q)
    ch.queue_bind(q, x, arguments={"x-match": "all", "string": "grüße ✓", "bool-true": True})
    headers = {k: af.Raw(v) for k, v in af.ALL_TYPES}
    ch.basic_publish(x, "", b"routed", pika.BasicProperties(headers=headers))
    method, got, body = ch.basic_get(q, auto_ack=True)
    assert body == b"routed"
    af.assert_same_items(af.headers_of_basic_properties(got.raw), af.ALL_TYPES)
