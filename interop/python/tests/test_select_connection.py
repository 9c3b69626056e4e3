"""Scenarios on pika's asynchronous SelectConnection (callback style)."""

import pika
import pika.exceptions as exc

from conftest import unique

LOGIN_REFUSED = (
    "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. "
    "For details see the broker logfile."
)


class Run:
    """Drive one SelectConnection until stop() or a timeout; collect what happened."""

    def __init__(self, params, on_open, timeout=30.0):
        self.events = []
        self.error = None
        self.open_error = None
        self.close_reason = None
        self.timed_out = False
        self.conn = pika.SelectConnection(
            params,
            on_open_callback=lambda c: self._guard(on_open, c),
            on_open_error_callback=self._on_open_error,
            on_close_callback=self._on_close,
        )
        self._timer = self.conn.ioloop.call_later(timeout, self._on_timeout)

    def _guard(self, fn, *args):
        try:
            fn(*args)
        except Exception as e:  # surface assertion errors from callbacks
            self.error = e
            self.finish()

    def cb(self, fn):
        """Wrap a callback so that an exception in it fails the test instead of the loop."""
        return lambda *args: self._guard(fn, *args)

    def _on_open_error(self, _conn, err):
        self.open_error = err
        self.conn.ioloop.stop()

    def _on_close(self, _conn, reason):
        self.close_reason = reason
        self.conn.ioloop.stop()

    def _on_timeout(self):
        self.timed_out = True
        self.finish()

    def finish(self):
        if self.conn.is_open:
            self.conn.close()  # _on_close stops the loop
        elif self.conn.is_closed:
            self.conn.ioloop.stop()
        else:
            self.conn.ioloop.stop()

    def run(self):
        self.conn.ioloop.start()
        self.conn.ioloop.remove_timeout(self._timer)
        if self.error is not None:
            raise self.error
        assert not self.timed_out, f"scenario timed out; events so far: {self.events}"
        return self


def test_select_publish_confirm_consume_ack(broker):
    n = 5
    state = {"acked": set(), "got": [], "qname": None}

    def on_open(conn):
        conn.channel(on_open_callback=run.cb(on_channel))

    def on_channel(ch):
        state["ch"] = ch
        ch.queue_declare("", exclusive=True, callback=run.cb(on_declared))

    def on_declared(frame):
        q = frame.method.queue
        assert q.startswith("amq.gen-")
        state["qname"] = q
        state["ch"].confirm_delivery(run.cb(on_confirm), callback=run.cb(on_confirm_mode))

    def on_confirm_mode(_frame):
        for i in range(n):
            state["ch"].basic_publish(
                "", state["qname"], b"msg-%d" % i, pika.BasicProperties(message_id=str(i))
            )

    def on_confirm(frame):
        m = frame.method
        assert isinstance(m, pika.spec.Basic.Ack), m
        if m.multiple:
            state["acked"].update(t for t in range(1, m.delivery_tag + 1))
        else:
            state["acked"].add(m.delivery_tag)
        if state["acked"] == set(range(1, n + 1)) and "ctag" not in state:
            state["ch"].basic_qos(prefetch_count=2, callback=run.cb(on_qos))

    def on_qos(_frame):
        state["ctag"] = state["ch"].basic_consume(state["qname"], run.cb(on_message))

    def on_message(ch, method, props, body):
        assert method.consumer_tag == state["ctag"]
        assert props.message_id == str(len(state["got"]))
        state["got"].append(body)
        ch.basic_ack(method.delivery_tag)
        if len(state["got"]) == n:
            ch.basic_cancel(state["ctag"], callback=run.cb(on_cancelled))

    def on_cancelled(frame):
        assert isinstance(frame.method, pika.spec.Basic.CancelOk)
        assert frame.method.consumer_tag == state["ctag"]
        state["cancelled"] = True
        run.conn.close()

    run = Run(broker.params(), on_open)
    run.run()
    assert run.open_error is None
    assert state["acked"] == set(range(1, n + 1))
    assert state["got"] == [b"msg-%d" % i for i in range(n)]
    assert state.get("cancelled")
    # A client-initiated close is reported as ConnectionClosedByClient(200, 'Normal shutdown').
    assert isinstance(run.close_reason, exc.ConnectionClosedByClient)
    assert run.close_reason.reply_code == 200


def test_select_wrong_password(broker):
    run = Run(
        broker.params(credentials=pika.PlainCredentials("guest", "wrong")),
        on_open=lambda conn: None,
    )
    run.run()
    err = run.open_error
    assert err is not None, "connection opened with a wrong password"
    if isinstance(err, exc.ConnectionClosedByBroker):
        assert (err.reply_code, err.reply_text) == (403, LOGIN_REFUSED)
    else:
        assert isinstance(err, exc.ProbableAuthenticationError), repr(err)
        assert str(err.args[0]) == f"ConnectionClosedByBroker: (403) {LOGIN_REFUSED!r}"


def test_select_unknown_vhost(broker):
    vhost = unique("vh")
    run = Run(broker.params(virtual_host=vhost), on_open=lambda conn: None)
    run.run()
    err = run.open_error
    text = f"NOT_ALLOWED - vhost {vhost} not found"
    if isinstance(err, exc.ConnectionClosedByBroker):
        assert (err.reply_code, err.reply_text) == (530, text)
    else:
        assert isinstance(err, exc.ProbableAccessDeniedError), repr(err)
        assert str(err.args[0]) == f"ConnectionClosedByBroker: (530) {text!r}"


def test_select_channel_close_reason_and_recovery(broker):
    missing = unique("missing")
    state = {}

    def on_open(conn):
        conn.channel(on_open_callback=run.cb(on_channel))

    def on_channel(ch):
        ch.add_on_close_callback(run.cb(on_channel_closed))
        ch.queue_declare(missing, passive=True, callback=run.cb(lambda f: state.setdefault("ok", f)))

    def on_channel_closed(ch, reason):
        state["reason"] = reason
        # The connection survives a channel error: open another channel and use it.
        run.conn.channel(on_open_callback=run.cb(on_second))

    def on_second(ch):
        ch.queue_declare("", exclusive=True, callback=run.cb(on_second_declared))

    def on_second_declared(frame):
        state["second"] = frame.method.queue
        run.conn.close()

    run = Run(broker.params(), on_open)
    run.run()
    assert "ok" not in state
    reason = state["reason"]
    assert isinstance(reason, exc.ChannelClosedByBroker)
    assert reason.reply_code == 404
    assert reason.reply_text == f"NOT_FOUND - no queue '{missing}' in vhost '/'"
    assert state["second"].startswith("amq.gen-")


def test_select_heartbeat_idle_then_publish(broker):
    state = {"frames": 0}

    def on_open(conn):
        assert conn.params.heartbeat == 2
        conn.channel(on_open_callback=run.cb(on_channel))

    def on_channel(ch):
        state["ch"] = ch
        ch.queue_declare("", exclusive=True, callback=run.cb(on_declared))

    def on_declared(frame):
        state["q"] = frame.method.queue
        # Stay idle for 5 s (2.5 heartbeat intervals), then use the connection again.
        run.conn.ioloop.call_later(5.0, run.cb(after_idle))

    def after_idle():
        state["frames"] = run.conn._heartbeat_checker._heartbeat_frames_received
        state["ch"].basic_publish("", state["q"], b"still alive")
        state["ch"].basic_get(state["q"], run.cb(on_get), auto_ack=True)

    def on_get(ch, method, props, body):
        state["body"] = body
        run.conn.close()

    run = Run(broker.params(heartbeat=2), on_open, timeout=30)
    run.run()
    assert state.get("body") == b"still alive"
    assert state["frames"] >= 1, "broker sent no heartbeats while idle"
    assert isinstance(run.close_reason, exc.ConnectionClosedByClient)


def test_select_broker_closes_connection_on_hard_error(broker):
    state = {}

    def on_open(conn):
        conn.channel(on_open_callback=run.cb(on_channel))

    def on_channel(ch):
        # basic.qos with prefetch_size != 0 is a connection error (540 NOT_IMPLEMENTED).
        ch.basic_qos(prefetch_size=1, callback=run.cb(lambda f: state.setdefault("ok", f)))

    run = Run(broker.params(), on_open)
    run.run()
    assert "ok" not in state
    reason = run.close_reason
    assert isinstance(reason, exc.ConnectionClosedByBroker)
    assert reason.reply_code == 540
    assert reason.reply_text == "NOT_IMPLEMENTED - prefetch_size!=0 (1)"
