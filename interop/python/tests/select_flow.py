"""Write pika SelectConnection scenarios as straight-line generators.

A scenario is a generator function `scenario(flow, ...)`. Each `yield` hands the driver a
*step*: a function that starts one asynchronous pika operation and takes the callback to
call when it completes; the generator resumes with what pika passed to that callback (one
argument as itself, several as a tuple). Everything still runs on pika's own ioloop with
pika's own callbacks; the generator only orders them.

    def scenario(flow):
        ch = yield flow.channel()
        frame = yield flow.call(ch.queue_declare, "", exclusive=True)
        ...

    Flow(broker.params()).run(scenario)
"""

import time

import pika
import pika.exceptions


class Flow:
    def __init__(self, params, timeout=60.0):
        self.params = params
        self.timeout = timeout
        self.conn = None
        self.error = None
        self.done = False
        self.open_error = None
        self.close_reason = None
        self.channel_close_reasons = []  # (channel number, reason), for diagnostics
        self._closed_channels = {}  # id(channel) -> reason
        self._awaiting_close = set()  # id(channel) of channels a step expects to close
        self._gen = None
        self._waiting_close = None

    # -- driver ---------------------------------------------------------------------------

    def run(self, scenario, *args):
        self.conn = pika.SelectConnection(
            self.params,
            on_open_callback=lambda _c: self._start(scenario, args),
            on_open_error_callback=self._on_open_error,
            on_close_callback=self._on_close,
        )
        timer = self.conn.ioloop.call_later(self.timeout, self._on_timeout)
        self.conn.ioloop.start()
        self.conn.ioloop.remove_timeout(timer)
        if self.error is not None:
            raise self.error
        if self.open_error is not None:
            raise AssertionError(f"connection failed to open: {self.open_error!r}")
        assert self.done, (
            f"connection closed before the scenario finished: {self.close_reason!r}; "
            f"channel closes: {self.channel_close_reasons}"
        )
        return self

    def _start(self, scenario, args):
        self._gen = scenario(self, *args)
        self._send(None)

    def _send(self, value):
        if self.done or self.error is not None:
            return
        try:
            step = self._gen.send(value)
        except StopIteration:
            self.done = True
            self._finish()
            return
        except BaseException as e:  # an assertion in the scenario fails the test
            self.error = e
            self._finish()
            return
        fired = []

        def resume(*cb_args):
            if fired:
                return
            fired.append(True)
            value = cb_args[0] if len(cb_args) == 1 else cb_args
            # Never re-enter the generator from inside the step that started it.
            self.conn.ioloop.call_later(0, lambda: self._send(value))

        try:
            step(resume)
        except BaseException as e:
            self.error = e
            self._finish()

    def _finish(self):
        if self.conn.is_open:
            self.conn.close()  # _on_close stops the loop
        elif self.conn.is_closed:
            self.conn.ioloop.stop()

    def _on_open_error(self, _conn, err):
        self.open_error = err
        self.conn.ioloop.stop()

    def _on_close(self, _conn, reason):
        self.close_reason = reason
        waiter, self._waiting_close = self._waiting_close, None
        if waiter is not None and not self.done:
            waiter(reason)
            # The generator resumes from call_later: keep the loop running for it.
            return
        self.conn.ioloop.stop()

    def _on_timeout(self):
        self.error = AssertionError(
            f"scenario timed out after {self.timeout}s; channel closes: "
            f"{self.channel_close_reasons}; connection close: {self.close_reason!r}"
        )
        self._finish()

    # -- steps ----------------------------------------------------------------------------

    def call(self, fn, *args, cb="callback", **kwargs):
        """Step: fn(*args, **kwargs, <cb>=callback)."""

        def step(resume):
            fn(*args, **{cb: resume}, **kwargs)

        return step

    def channel(self):
        """Step: open a channel (its broker-side close reason lands in
        channel_close_reasons)."""

        def step(resume):
            def opened(ch):
                def closed(c, reason):
                    self._closed_channels[id(c)] = reason
                    self.channel_close_reasons.append((c.channel_number, reason))
                    expected = (id(c) in self._awaiting_close or self.done
                                or isinstance(reason, (pika.exceptions.ChannelClosedByClient,
                                                       pika.exceptions.ConnectionClosed)))
                    if not expected and self.error is None:
                        # Fail now rather than at the scenario's timeout.
                        self.error = AssertionError(
                            f"channel {c.channel_number} closed unexpectedly: {reason!r}")
                        self._finish()

                ch.add_on_close_callback(closed)
                resume(ch)

            self.conn.channel(on_open_callback=opened)

        return step

    def channel_closed(self, ch, timeout=10.0):
        """Step: wait until ch is closed; resumes with the close reason."""
        self._awaiting_close.add(id(ch))
        return self.until(lambda: id(ch) in self._closed_channels,
                          timeout=timeout, what=f"channel {ch.channel_number} closed",
                          value=lambda: self._closed_channels[id(ch)])

    def connection_closed(self):
        """Step: wait for the broker to close the connection; resumes with the reason."""

        def step(resume):
            if self.close_reason is not None:
                resume(self.close_reason)
            else:
                self._waiting_close = resume

        return step

    def sleep(self, seconds):
        """Step: let the ioloop run for `seconds` (used to show nothing more arrives)."""
        return lambda resume: self.conn.ioloop.call_later(seconds, resume)

    def until(self, predicate, timeout=10.0, what="condition", value=lambda: None):
        """Step: poll predicate() on the ioloop; fail the scenario after timeout."""

        def step(resume):
            deadline = time.monotonic() + timeout

            def check():
                if self.done or self.error is not None:
                    return
                try:
                    ok = predicate()
                except BaseException as e:
                    self.error = e
                    self._finish()
                    return
                if ok:
                    resume(value())
                elif time.monotonic() > deadline:
                    self.error = AssertionError(
                        f"timed out after {timeout}s waiting for {what}; channel closes: "
                        f"{self.channel_close_reasons}")
                    self._finish()
                else:
                    self.conn.ioloop.call_later(0.01, check)

            check()

        return step

    # -- composite steps (use with `yield from`) ------------------------------------------

    def drain(self, ch, queue):
        """All (method, properties, body) currently in queue, by basic.get with auto-ack."""
        out = []
        while True:
            got = yield self.get(ch, queue, auto_ack=True)
            if got is None:
                return out
            out.append(got)

    def get(self, ch, queue, auto_ack=False):
        """Step: basic.get; resumes with (method, properties, body) or None on get-empty."""

        def step(resume):
            def on_empty(_frame):
                resume(None)

            def on_ok(_ch, method, props, body):
                ch.callbacks.remove(ch.channel_number, pika.spec.Basic.GetEmpty, on_empty)
                resume((method, props, body))

            # basic.get-empty reaches only callbacks added for it (pika's advice).
            ch.add_callback(on_empty, [pika.spec.Basic.GetEmpty], one_shot=True)
            ch.basic_get(queue, on_ok, auto_ack=auto_ack)

        return step

    def confirm_mode(self, ch):
        """Step: confirm.select; returns a list that collects Basic.Ack/Nack methods."""
        acks = []

        def step(resume):
            ch.confirm_delivery(lambda frame: acks.append(frame.method),
                                callback=lambda _f: resume(acks))

        return step


def confirmed_tags(acks):
    """Set of delivery tags covered by a list of Basic.Ack methods (multiple expanded)."""
    tags = set()
    for m in acks:
        assert isinstance(m, pika.spec.Basic.Ack), m
        if m.multiple:
            tags.update(range(1, m.delivery_tag + 1))
        else:
            tags.add(m.delivery_tag)
    return tags
