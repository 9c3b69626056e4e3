"""Shared fixtures for the Python interop suite (pika, aio-pika, Celery).

The broker under test is either an external one, named by AMQP_URL (set by interop/run.sh,
which also sets BROKER_RESTART and BROKER_KIND) or by WARREN_TEST_URL (for example a real
RabbitMQ at amqp://guest:guest@127.0.0.1:5673/%2f, the oracle these tests were checked
against), or a warren binary started here for the whole session:

    $WARREN_BIN --amqp-port 0 --mgmt-port 0 --metrics-port 0 --data-dir <fresh temp dir>

WARREN_BIN defaults to target/release/warren, else target/debug/warren (relative to the
repository root). The broker's log must contain `listening on <ip>:<port>` and
`Server startup complete`; at the end it is sent SIGTERM and must exit 0 within 10 s.

Restart (scenario 9): with an external broker, `sh -c "$BROKER_RESTART"` restarts it on the
same port with the same data; without BROKER_RESTART the restart tests are skipped. A warren
started here is restarted by the suite itself (SIGTERM, then the same binary on the same
port and data directory).
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections import deque
from pathlib import Path

import pika
import pika.data
import pika.spec
import pytest

import amqp_fields

REPO_ROOT = Path(__file__).resolve().parents[3]

#: The external broker's URL: AMQP_URL (interop/run.sh) or WARREN_TEST_URL, else None.
EXTERNAL_URL = os.environ.get("AMQP_URL") or os.environ.get("WARREN_TEST_URL") or None

#: True when running against an external broker (warren or the RabbitMQ oracle).
EXTERNAL = bool(EXTERNAL_URL)

#: How to restart an external broker (interop/run.sh sets it); None when there is none.
BROKER_RESTART = os.environ.get("BROKER_RESTART") or None

STARTUP_TIMEOUT = 30.0
SHUTDOWN_TIMEOUT = 10.0

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_LISTENING = re.compile(r"listening on \[?([0-9A-Fa-f.:]+?)\]?:(\d+)\b")


def unique(prefix):
    """A name no other test (or earlier run against a shared broker) uses."""
    return f"py-{prefix}-{uuid.uuid4().hex[:12]}"


def wait_until(connection, predicate, timeout=10.0, what="condition"):
    """Pump pika's I/O until predicate() is true; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        connection.process_data_events(time_limit=min(0.05, remaining))


def pump(connection, seconds):
    """Keep pika's I/O running for a fixed time (used to show that nothing more arrives)."""
    deadline = time.monotonic() + seconds
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        connection.process_data_events(time_limit=min(0.05, remaining))


class _Broker:
    def __init__(self, url, proc=None, data_dir=None, log=None, binary=None):
        self.url = url
        self.proc = proc
        self.data_dir = data_dir
        self.binary = binary
        self.log = log if log is not None else deque(maxlen=2000)
        parsed = urllib.parse.urlsplit(url)
        self.host = parsed.hostname
        self.port = parsed.port or 5672

    def url_for(self, user="guest", password="guest", vhost="/"):
        vh = urllib.parse.quote(vhost, safe="")
        u = urllib.parse.quote(user, safe="")
        p = urllib.parse.quote(password, safe="")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"amqp://{u}:{p}@{host}:{self.port}/{vh}"

    def params(self, **overrides):
        p = pika.URLParameters(self.url)
        # Fail fast instead of hanging on a broker that does not answer.
        p.socket_timeout = 10
        p.stack_timeout = 20
        p.blocked_connection_timeout = 30
        p.connection_attempts = 1
        for k, v in overrides.items():
            setattr(p, k, v)
        return p

    def log_tail(self, n=60):
        return "\n".join(list(self.log)[-n:])

    # -- restart (scenario 9) -------------------------------------------------------------

    def restart_unavailable(self):
        """None when restart() works, else the reason it cannot (for pytest.skip)."""
        if self.proc is not None or BROKER_RESTART:
            return None
        return (
            "no way to restart the external broker: BROKER_RESTART is not set "
            "(interop/run.sh sets it; with only AMQP_URL or WARREN_TEST_URL the suite cannot "
            "restart the broker)"
        )

    def restart(self, timeout=180.0):
        """Stop the broker and start it again on the same port with the same data, then
        wait until it accepts AMQP connections. Every open connection is lost."""
        reason = self.restart_unavailable()
        if reason:
            pytest.skip(reason)
        if self.proc is not None:
            _terminate(self)
            self.proc, self.log = _spawn_warren(self.binary, self.data_dir, self.port)
        else:
            done = subprocess.run(
                ["sh", "-c", BROKER_RESTART],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=timeout,
            )
            assert done.returncode == 0, (
                f"BROKER_RESTART failed with status {done.returncode}: "
                f"{done.stdout.decode('utf-8', 'replace')}"
            )
        self.wait_ready(timeout=60.0)

    def wait_ready(self, timeout=60.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                c = pika.BlockingConnection(self.params())
                c.close()
                return
            except pika.exceptions.AMQPConnectionError as e:
                if time.monotonic() > deadline:
                    raise AssertionError(f"broker not reachable {timeout}s after restart: {e!r}")
                time.sleep(0.2)


def _default_bin():
    env = os.environ.get("WARREN_BIN")
    if env:
        return Path(env) if os.path.isabs(env) else (Path.cwd() / env)
    for rel in ("target/release/warren", "target/debug/warren"):
        cand = REPO_ROOT / rel
        if cand.exists():
            return cand
    return REPO_ROOT / "target/release/warren"


def _spawn_warren(binary, data_dir, port, extra=()):
    """Start warren (with `extra` arguments) and wait for its startup lines; returns
    (proc, log) and leaves the (ip, port) it listens on in log.addr."""
    env = dict(os.environ)
    env.setdefault("NO_COLOR", "1")
    env.setdefault("RUST_LOG_STYLE", "never")
    proc = subprocess.Popen(
        [str(binary), "--amqp-port", str(port), "--mgmt-port", "0", "--metrics-port", "0",
         "--data-dir", data_dir, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=data_dir,
    )
    log = _Log(maxlen=2000)
    state = {"addr": None, "ready": False}
    cond = threading.Condition()

    def reader():
        for raw in proc.stdout:
            line = _ANSI.sub("", raw.decode("utf-8", "replace")).rstrip("\n")
            log.append(line)
            if os.environ.get("WARREN_TEST_ECHO_LOG"):
                print(f"[warren] {line}", file=sys.stderr)
            with cond:
                m = _LISTENING.search(line)
                if m and state["addr"] is None:
                    state["addr"] = (m.group(1), int(m.group(2)))
                if "Server startup complete" in line:
                    state["ready"] = True
                cond.notify_all()
        with cond:
            state["eof"] = True
            cond.notify_all()

    threading.Thread(target=reader, name="warren-log", daemon=True).start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    with cond:
        while not (state["ready"] and state["addr"]):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or state.get("eof"):
                break
            cond.wait(timeout=min(remaining, 0.5))
    if not (state["ready"] and state["addr"]):
        proc.kill()
        proc.wait()
        tail = "\n".join(log)
        raise RuntimeError(
            f"warren did not log 'Server startup complete' and 'listening on <ip>:<port>' "
            f"within {STARTUP_TIMEOUT}s (exit status {proc.returncode}). Log:\n{tail}"
        )
    log.addr = state["addr"]
    return proc, log


class _Log(deque):
    addr = None


def _start_warren():
    binary = _default_bin()
    if not binary.exists():
        pytest.exit(
            f"warren binary not found at {binary}; build it (cargo build --release) "
            "or set WARREN_BIN, AMQP_URL or WARREN_TEST_URL",
            returncode=2,
        )
    data_dir = tempfile.mkdtemp(prefix="warren-pytest-")
    try:
        proc, log = _spawn_warren(binary, data_dir, 0)
    except RuntimeError as e:
        shutil.rmtree(data_dir, ignore_errors=True)
        pytest.exit(str(e), returncode=3)
    ip, port = log.addr
    if ip in ("0.0.0.0", "::", ""):
        ip = "127.0.0.1"
    host = f"[{ip}]" if ":" in ip else ip
    return _Broker(
        f"amqp://guest:guest@{host}:{port}/%2f", proc=proc, data_dir=data_dir, log=log,
        binary=binary,
    )


def _terminate(broker):
    """SIGTERM our warren; it must exit 0 within SHUTDOWN_TIMEOUT."""
    proc = broker.proc
    if proc.poll() is not None:
        raise AssertionError(
            f"warren exited early with status {proc.returncode}. Log tail:\n{broker.log_tail()}"
        )
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=SHUTDOWN_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(
            f"warren did not exit within {SHUTDOWN_TIMEOUT}s of SIGTERM. Log tail:\n"
            f"{broker.log_tail()}"
        )
    assert rc == 0, f"warren exited with status {rc} after SIGTERM. Log tail:\n{broker.log_tail()}"


def _stop_warren(broker):
    try:
        _terminate(broker)
    finally:
        shutil.rmtree(broker.data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def broker():
    if EXTERNAL_URL:
        yield _Broker(EXTERNAL_URL)
        return
    b = _start_warren()
    try:
        yield b
    finally:
        _stop_warren(b)


@pytest.fixture
def connect(broker):
    """connect(**param_overrides) -> open BlockingConnection, closed at teardown."""
    opened = []

    def _connect(url=None, **overrides):
        params = broker.params(**overrides) if url is None else _params_from(url, overrides)
        c = pika.BlockingConnection(params)
        opened.append(c)
        return c

    yield _connect
    for c in opened:
        if c.is_open:
            try:
                c.close()
            except Exception:
                pass


def _params_from(url, overrides):
    p = pika.URLParameters(url)
    p.socket_timeout = 10
    p.stack_timeout = 20
    p.connection_attempts = 1
    for k, v in overrides.items():
        setattr(p, k, v)
    return p


@pytest.fixture
def conn(connect):
    return connect()


@pytest.fixture
def ch(conn):
    return conn.channel()


@pytest.fixture
def cleanup(broker):
    """Register queue/exchange names to delete after the test (over a fresh connection)."""
    queues, exchanges = [], []

    class _Cleanup:
        def queue(self, name):
            queues.append(name)
            return name

        def exchange(self, name):
            exchanges.append(name)
            return name

    yield _Cleanup()
    if not (queues or exchanges):
        return
    try:
        c = pika.BlockingConnection(broker.params())
    except Exception:
        return
    try:
        for q in queues:
            try:
                c.channel().queue_delete(q)
            except Exception:
                pass
        for x in exchanges:
            try:
                c.channel().exchange_delete(x)
            except Exception:
                pass
    finally:
        if c.is_open:
            c.close()


def rabbitmq_3x(connection):
    """True when the broker is a RabbitMQ 3.x (the oracle is 3.10), where a few answers
    differ from current RabbitMQ (4.x); tests check the old answer there and the current
    one everywhere else (warren)."""
    props = connection._impl.server_properties or {}
    product = props.get("product", b"")
    version = props.get("version", b"")
    if isinstance(product, bytes):
        product = product.decode("utf-8", "replace")
    if isinstance(version, bytes):
        version = version.decode("utf-8", "replace")
    return product == "RabbitMQ" and version.startswith("3.")


def publish_confirmed(connection, routing_key, bodies, exchange="", properties=None):
    """Publish bodies on a fresh confirm-mode channel and wait for every confirm.

    RabbitMQ answers queue.declare(passive) with a `stat` call that its queue process
    serves ahead of pending deliveries, so message_count right after a plain publish can
    lag; after the confirms it cannot."""
    pub = connection.channel()
    pub.confirm_delivery()
    for body in bodies:
        pub.basic_publish(exchange, routing_key, body, properties)
    pub.close()


@pytest.fixture
def wire(monkeypatch):
    """Let pika send amqp_fields.Raw values and keep every received property list raw
    (props.raw)."""
    orig_encode = pika.data.encode_value
    orig_decode = pika.spec.BasicProperties.decode

    def encode_value(pieces, value):
        if isinstance(value, amqp_fields.Raw):
            pieces.append(value.wire)
            return len(value.wire)
        return orig_encode(pieces, value)

    def decode(self, encoded, offset=0):
        self.raw = bytes(encoded[offset:])
        return orig_decode(self, encoded, offset)

    monkeypatch.setattr(pika.data, "encode_value", encode_value)
    monkeypatch.setattr(pika.spec.BasicProperties, "decode", decode)
