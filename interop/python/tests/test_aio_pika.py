"""The interop scenarios with aio-pika (asyncio, on aiormq and pamqp).

Each test is a plain function that runs its coroutine with asyncio.run under a timeout."""

import asyncio
import hashlib
from datetime import datetime, timezone
from decimal import Decimal

import aio_pika
import aiormq.exceptions as aexc
import pamqp.commands
import pamqp.encode
import pamqp.frame
import pamqp.header
import pytest
from aio_pika import DeliveryMode, ExchangeType, Message

import amqp_fields as af
from conftest import unique

LOGIN_REFUSED = (
    "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. "
    "For details see the broker logfile."
)


def run(coro, timeout=90.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def until(predicate, timeout=10.0, what="condition"):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)


async def drain(queue):
    """Bodies currently in queue (basic.get with no_ack until get-empty)."""
    out = []
    while True:
        msg = await queue.get(no_ack=True, fail=False)
        if msg is None:
            return out
        out.append(msg.body)


# -- 1. connection: credentials, vhost, refusals ---------------------------------------------


def test_aio_connect_url_and_explicit_vhost(broker):
    async def main():
        conn = await aio_pika.connect(broker.url)
        async with conn:
            ch = await conn.channel()
            q = await ch.declare_queue("", exclusive=True)
            assert q.name.startswith("amq.gen-")
        assert conn.is_closed
        conn = await aio_pika.connect(host=broker.host, port=broker.port, login="guest",
                                      password="guest", virtualhost="/")
        async with conn:
            ch = await conn.channel()
            assert not ch.is_closed

    run(main())


def test_aio_wrong_password_refused(broker):
    async def main():
        with pytest.raises(aexc.ProbableAuthenticationError) as ei:
            await aio_pika.connect(broker.url_for("guest", "wrong-password"))
        return ei.value

    err = run(main())
    assert err.args == (LOGIN_REFUSED,)


def test_aio_unknown_vhost_refused_530(broker, monkeypatch):
    vhost = unique("aio-novhost")
    closes = []
    orig = pamqp.frame.unmarshal

    def unmarshal(data):
        out = orig(data)
        if isinstance(out[2], pamqp.commands.Connection.Close):
            closes.append(out[2])
        return out

    monkeypatch.setattr(pamqp.frame, "unmarshal", unmarshal)

    async def main():
        # aiormq 7.2.4 turns a connection.close in answer to connection.open into
        # InvalidFrameError ("Expected one of ['Connection.OpenOk'] ...") and then into a
        # CancelledError; the close frame itself is checked below.
        with pytest.raises((aexc.AMQPError, asyncio.CancelledError)) as ei:
            await aio_pika.connect(broker.url_for(vhost=vhost))
        return ei.value

    err = run(main())
    assert "Connection.Close" in str(err), repr(err)
    assert [(c.reply_code, c.reply_text) for c in closes] == [
        (530, f"NOT_ALLOWED - vhost {vhost} not found")
    ]


# -- 2. exchange types ----------------------------------------------------------------------


def test_aio_exchange_types(broker, cleanup):
    xs = {t: cleanup.exchange(unique(f"aio-{t}")) for t in ("direct", "fanout", "topic",
                                                             "headers")}
    qn = {k: cleanup.queue(unique(f"aio-{k}")) for k in
          ("d1", "d2", "f1", "f2", "star", "hash", "all", "any")}

    async def main():
        async with await aio_pika.connect(broker.url) as conn:
            ch = await conn.channel()  # publisher confirms are on by default
            ex = {t: await ch.declare_exchange(n, ExchangeType(t)) for t, n in xs.items()}
            qs = {k: await ch.declare_queue(n) for k, n in qn.items()}
            await qs["d1"].bind(ex["direct"], "one")
            await qs["d2"].bind(ex["direct"], "two")
            await qs["f1"].bind(ex["fanout"], "ignored")
            await qs["f2"].bind(ex["fanout"])
            await qs["star"].bind(ex["topic"], "stock.*.nyse")
            await qs["hash"].bind(ex["topic"], "stock.#")
            await qs["all"].bind(ex["headers"], arguments={"x-match": "all", "a": 1, "b": "x"})
            await qs["any"].bind(ex["headers"], arguments={"x-match": "any", "a": 1, "b": "x"})
            for t, key, body, headers in [
                ("direct", "one", b"d-one", None), ("direct", "two", b"d-two", None),
                ("direct", "three", b"d-three", None), ("fanout", "", b"fan", None),
                ("topic", "stock.ibm.nyse", b"ibm.nyse", None),
                ("topic", "stock.ibm.x.nyse", b"ibm.x.nyse", None),
                ("topic", "stock", b"stock", None), ("topic", "bond.x.nyse", b"bond", None),
                ("headers", "", b"h-both", {"a": 1, "b": "x"}),
                ("headers", "", b"h-a", {"a": 1, "b": "y"}),
                ("headers", "", b"h-b", {"b": "x"}),
                ("headers", "", b"h-neither", {"a": 2}),
            ]:
                await ex[t].publish(Message(body, headers=headers or {}), key, mandatory=False)
            return {k: await drain(q) for k, q in qs.items()}

    assert run(main()) == {
        "d1": [b"d-one"],
        "d2": [b"d-two"],
        "f1": [b"fan"],
        "f2": [b"fan"],
        "star": [b"ibm.nyse"],
        "hash": [b"ibm.nyse", b"ibm.x.nyse", b"stock"],
        "all": [b"h-both"],
        "any": [b"h-both", b"h-a", b"h-b"],
    }


# -- 3. prefetch and manual acks ------------------------------------------------------------


def test_aio_prefetch_exactly_n_until_ack(broker, cleanup):
    name = cleanup.queue(unique("aio-prefetch"))

    async def main():
        async with await aio_pika.connect(broker.url) as conn:
            pub = await conn.channel()
            q = await pub.declare_queue(name)
            for i in range(6):
                await pub.default_exchange.publish(Message(b"m%d" % i), name)
            ch = await conn.channel()
            await ch.set_qos(prefetch_count=2)
            cq = await ch.get_queue(name)
            got = []

            async def on_message(msg):
                got.append(msg)

            tag = await cq.consume(on_message)
            await until(lambda: len(got) >= 2, what="2 deliveries")
            await asyncio.sleep(0.5)
            first = [m.body for m in got]
            await got[0].ack()
            await until(lambda: len(got) >= 3, what="3rd delivery")
            await asyncio.sleep(0.3)
            second = [m.body for m in got]
            await got[2].ack(multiple=True)
            await until(lambda: len(got) >= 5, what="5 deliveries")
            await asyncio.sleep(0.3)
            third = [m.body for m in got]
            for m in got[3:]:
                await m.ack()
            await until(lambda: len(got) >= 6, what="6 deliveries")
            await got[5].ack()
            await cq.cancel(tag)
            ok = await pub.declare_queue(name, passive=True)
            return first, second, third, [m.delivery_tag for m in got], \
                ok.declaration_result.message_count

    first, second, third, tags, left = run(main())
    assert first == [b"m0", b"m1"]
    assert second == [b"m0", b"m1", b"m2"]
    assert third == [b"m0", b"m1", b"m2", b"m3", b"m4"]
    assert tags == [1, 2, 3, 4, 5, 6]
    assert left == 0


# -- 4. nack and reject ---------------------------------------------------------------------


def test_aio_nack_reject_requeue_and_discard(broker, cleanup):
    name = cleanup.queue(unique("aio-nack"))

    async def main():
        async with await aio_pika.connect(broker.url) as conn:
            ch = await conn.channel()
            q = await ch.declare_queue(name)
            for i in range(4):
                await ch.default_exchange.publish(Message(b"n%d" % i), name)
            msgs = [await q.get(timeout=5) for _ in range(4)]
            assert [m.body for m in msgs] == [b"n0", b"n1", b"n2", b"n3"]
            assert [m.redelivered for m in msgs] == [False] * 4
            await msgs[0].reject(requeue=True)
            await msgs[1].nack(requeue=True)
            await msgs[2].reject(requeue=False)
            await msgs[3].nack(requeue=False)
            left = []
            while (m := await q.get(no_ack=True, fail=False)) is not None:
                left.append((m.body, m.redelivered))
            return left

    assert run(main()) == [(b"n0", True), (b"n1", True)]


def test_aio_consumer_reject_then_redelivery(broker, cleanup):
    name = cleanup.queue(unique("aio-redeliver"))

    async def main():
        async with await aio_pika.connect(broker.url) as conn:
            ch = await conn.channel()
            q = await ch.declare_queue(name)
            await ch.default_exchange.publish(Message(b"again"), name)
            seen = []

            async def on_message(msg):
                seen.append((msg.body, msg.redelivered))
                if msg.redelivered:
                    await msg.ack()
                else:
                    await msg.nack(requeue=True)

            await q.consume(on_message)
            await until(lambda: len(seen) >= 2, what="redelivery")
            await asyncio.sleep(0.2)
            return seen

    assert run(main()) == [(b"again", False), (b"again", True)]


# -- 5. publisher confirms, 6. mandatory returns ------------------------------------------


def test_aio_publisher_confirms(broker, cleanup):
    name = cleanup.queue(unique("aio-confirm"))

    async def main():
        async with await aio_pika.connect(broker.url) as conn:
            ch = await conn.channel(publisher_confirms=True)
            await ch.declare_queue(name)
            confirms = await asyncio.gather(*(
                ch.default_exchange.publish(Message(b"%d" % i), name) for i in range(100)))
            ok = await ch.declare_queue(name, passive=True)
            return confirms, ok.declaration_result.message_count

    confirms, count = run(main())
    assert len(confirms) == 100
    assert all(type(c).__name__ == "Ack" for c in confirms), {type(c).__name__ for c in confirms}
    assert count == 100


def test_aio_mandatory_unroutable_raises_with_on_return_raises(broker):
    key = unique("aio-noroute")

    async def main():
        async with await aio_pika.connect(broker.url) as conn:
            ch = await conn.channel(publisher_confirms=True, on_return_raises=True)
            with pytest.raises(aexc.DeliveryError) as ei:
                await ch.default_exchange.publish(Message(b"bounce"), key, mandatory=True)
            return ei.value

    err = run(main())
    ret = err.message.delivery
    assert (ret.reply_code, ret.reply_text) == (312, "NO_ROUTE")
    assert (ret.exchange, ret.routing_key) == ("", key)
    assert err.message.body == b"bounce"


def test_aio_mandatory_return_callback(broker):
    """Without on_return_raises the returned message goes to channel.return_callbacks and
    publish() resolves to it (aiormq matches returns to publishes through confirms, so
    returns need a confirm channel)."""
    key = unique("aio-noroute-cb")

    async def main():
        async with await aio_pika.connect(broker.url) as conn:
            ch = await conn.channel(publisher_confirms=True, on_return_raises=False)
            returned = []
            ch.return_callbacks.add(lambda _ch, msg: returned.append(msg))
            x = await ch.get_exchange("amq.topic")
            result = await x.publish(Message(b"back", message_id="r1"), key, mandatory=True)
            await until(lambda: returned, what="basic.return")
            routed = await ch.default_exchange.publish(Message(b"x"), unique("aio-nobody"),
                                                       mandatory=False)
            return returned, result, routed

    returned, result, routed = run(main())
    assert len(returned) == 1
    msg = returned[0]
    assert msg.body == b"back" and msg.message_id == "r1"
    assert (msg.exchange, msg.routing_key) == ("amq.topic", key)
    assert (result.delivery.reply_code, result.delivery.reply_text) == (312, "NO_ROUTE")
    assert type(routed).__name__ == "Ack"


# -- 7. large messages ----------------------------------------------------------------------


def test_aio_large_messages_1mib_and_5mib(broker, cleanup):
    name = cleanup.queue(unique("aio-large"))
    bodies = [hashlib.sha256(b"a").digest() * (1 << 15), hashlib.sha256(b"b").digest() * (5 << 15)]
    assert [len(b) for b in bodies] == [1 << 20, 5 << 20]

    async def main():
        async with await aio_pika.connect(broker.url) as conn:
            ch = await conn.channel()
            q = await ch.declare_queue(name)
            for i, body in enumerate(bodies):
                await ch.default_exchange.publish(Message(body, message_id=str(i)), name)
            out = []
            async with q.iterator(no_ack=True) as it:
                async for msg in it:
                    out.append(msg.body)
                    if len(out) == 2:
                        break
            return out

    got = run(main())
    assert [len(b) for b in got] == [1 << 20, 5 << 20]
    assert got == bodies


# -- 8. header field types and properties ---------------------------------------------------

# What pamqp encodes: ints in the narrowest of b, s, u, I, i, l; float as 32-bit 'f';
# bytearray as 'x'; Decimal, datetime, dict, list, None, bool, str.
AIO_HEADERS = {
    "str": "grüße",
    "int8": -5,
    "int16": -300,
    "uint16": 40000,
    "int32": -70000,
    "uint32": 3_000_000_000,
    "int64": -(2**40),
    "int64-max": 2**63 - 1,
    "float": 2.5,
    "true": True,
    "false": False,
    "decimal": Decimal("3.14"),
    "timestamp": datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
    "bytes": bytearray(b"\x00\xff\x01"),
    "none": None,
    "table": {"nested": {"deep": [1, "x", None]}, "flag": False},
    "array": [1, 300, 2.5, "s", True, None, {"k": "v"}, [Decimal("1.1")]],
}

AIO_PROPS = dict(
    content_type="application/json", content_encoding="gzip", delivery_mode=DeliveryMode.PERSISTENT,
    priority=5, correlation_id="corr-1", reply_to="reply-q", expiration=60,
    message_id="mid-1", timestamp=datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc),
    type="kind", user_id="guest", app_id="aio-test",
)


def test_aio_header_types_and_properties(broker, cleanup, monkeypatch):
    name = cleanup.queue(unique("aio-headers"))
    raw_headers = []
    orig = pamqp.header.ContentHeader.unmarshal

    def unmarshal(self, data):
        raw_headers.append(bytes(data))
        return orig(self, data)

    monkeypatch.setattr(pamqp.header.ContentHeader, "unmarshal", unmarshal)
    # pamqp writes the keys in sorted order.
    sent_items, _ = af.parse_table(pamqp.encode.field_table(AIO_HEADERS))
    tags = {k: t for k, (t, _v) in sent_items}
    assert [tags[k] for k in AIO_HEADERS] == ["S", "b", "s", "u", "I", "i", "l", "l", "f", "t",
                                              "t", "D", "T", "x", "V", "F", "A"]

    async def main():
        async with await aio_pika.connect(broker.url) as conn:
            ch = await conn.channel()
            q = await ch.declare_queue(name)
            await ch.default_exchange.publish(Message(b"typed", headers=AIO_HEADERS, **AIO_PROPS),
                                              name)
            msg = await q.get(no_ack=True, timeout=5)
            return msg

    msg = run(main())
    assert msg.body == b"typed"
    af.assert_same_items(af.headers_of_basic_properties(raw_headers[-1][12:]), sent_items)
    assert msg.headers == AIO_HEADERS
    for k in ("true", "decimal", "timestamp", "bytes", "float"):
        assert type(msg.headers[k]) is type(AIO_HEADERS[k]), k
    for k, v in AIO_PROPS.items():
        got = getattr(msg, k)
        if k == "expiration":  # aio-pika sends seconds as milliseconds and decodes back
            assert got == 60, got
        else:
            assert got == v, k


# -- 9. restart -----------------------------------------------------------------------------


def test_aio_restart_durable_queue_and_robust_reconnect(broker, cleanup):
    reason = broker.restart_unavailable()
    if reason:
        pytest.skip(reason)
    name = cleanup.queue(unique("aio-restart"))
    live = cleanup.queue(unique("aio-restart-live"))
    bodies = [b"p%d-" % i + bytes(range(256)) * (i * 300) for i in range(5)]

    async def main():
        async with await aio_pika.connect(broker.url) as conn:
            ch = await conn.channel()
            await ch.declare_queue(name, durable=True)
            for i, body in enumerate(bodies):
                await ch.default_exchange.publish(
                    Message(body, delivery_mode=DeliveryMode.PERSISTENT, headers={"i": i}), name)

        # A robust connection with a consumer on a durable queue lives through the restart.
        robust = await aio_pika.connect_robust(broker.url, reconnect_interval=0.5)
        rch = await robust.channel()
        rq = await rch.declare_queue(live, durable=True)
        live_got = []

        async def on_live(msg):
            live_got.append(msg.body)
            await msg.ack()

        await rq.consume(on_live)
        reconnected = asyncio.Event()
        robust.reconnect_callbacks.add(lambda *_a: reconnected.set())

        await asyncio.to_thread(broker.restart)

        await asyncio.wait_for(reconnected.wait(), 60)
        await rch.default_exchange.publish(Message(b"after restart"), live)
        await until(lambda: live_got, timeout=20, what="delivery to the restored consumer")
        await robust.close()

        async with await aio_pika.connect(broker.url) as conn:
            ch = await conn.channel()
            q = await ch.declare_queue(name, passive=True)
            count = q.declaration_result.message_count
            got = []
            while (m := await q.get(fail=False)) is not None:
                got.append((m.body, m.redelivered, m.headers, m.delivery_mode))
                await m.ack()
            return count, got, live_got

    count, got, live_got = run(main(), timeout=110)
    assert count == len(bodies)
    assert [b for b, _r, _h, _d in got] == bodies
    assert [r for _b, r, _h, _d in got] == [False] * len(bodies)
    assert [h for _b, _r, h, _d in got] == [{"i": i} for i in range(len(bodies))]
    assert [d for _b, _r, _h, d in got] == [DeliveryMode.PERSISTENT] * len(bodies)
    assert live_got == [b"after restart"]


# -- 10. errors with exact codes and texts --------------------------------------------------


def test_aio_channel_errors(broker, cleanup):
    missing = unique("aio-missing")
    durable = cleanup.queue(unique("aio-durable"))
    nox = unique("aio-nox")

    async def main():
        async with await aio_pika.connect(broker.url) as conn:
            out = {}
            ch = await conn.channel()
            with pytest.raises(aexc.ChannelNotFoundEntity) as ei:
                await ch.get_queue(missing, ensure=True)
            out["passive"] = ei.value.args

            ch = await conn.channel()
            await ch.declare_queue(durable, durable=False)
            with pytest.raises(aexc.ChannelPreconditionFailed) as ei:
                await ch.declare_queue(durable, durable=True)
            out["durable"] = ei.value.args

            ch = await conn.channel()
            x = await ch.get_exchange(nox, ensure=False)
            with pytest.raises(aexc.ChannelNotFoundEntity) as ei:
                await x.publish(Message(b"lost"), "k", mandatory=False)
            out["publish"] = ei.value.args

            ch = await conn.channel()
            with pytest.raises(aexc.ChannelAccessRefused) as ei:
                await ch.declare_exchange("amq.aio-custom", ExchangeType.DIRECT)
            out["reserved"] = ei.value.args

            ch = await conn.channel()
            raw = await ch.get_underlay_channel()
            await raw.basic_ack(42)
            with pytest.raises(aexc.ChannelPreconditionFailed) as ei:
                await ch.declare_queue("", exclusive=True)
            out["ack"] = ei.value.args

            ch = await conn.channel()  # the connection survived all of it
            q = await ch.declare_queue("", exclusive=True)
            out["ok"] = q.name
            return out

    out = run(main())
    assert out.pop("ok").startswith("amq.gen-")
    assert out == {
        "passive": (f"NOT_FOUND - no queue '{missing}' in vhost '/'",),
        "durable": (f"PRECONDITION_FAILED - inequivalent arg 'durable' for queue '{durable}' "
                    "in vhost '/': received 'true' but current is 'false'",),
        "publish": (f"NOT_FOUND - no exchange '{nox}' in vhost '/'",),
        "reserved": ("ACCESS_REFUSED - exchange name 'amq.aio-custom' contains reserved "
                     "prefix 'amq.*'",),
        "ack": ("PRECONDITION_FAILED - unknown delivery tag 42",),
    }
