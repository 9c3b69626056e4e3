"""Celery (kombu + py-amqp) on the broker: a real worker process executes tasks sent with
.delay(); results come back through the rpc:// backend (AMQP reply queues)."""

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from pathlib import Path

import pytest

from conftest import unique

HERE = Path(__file__).resolve().parent / "celery_worker"
sys.path.insert(0, str(HERE))
import celery_app  # noqa: E402

READY_TIMEOUT = 60.0
RESULT_TIMEOUT = 30.0


class Worker:
    """`celery -A celery_app worker --pool=solo` in a subprocess, its output kept."""

    def __init__(self, broker_url, queue):
        self.name = f"interop-{uuid.uuid4().hex[:8]}@localhost"
        self.log = deque(maxlen=500)
        self.ready = threading.Event()
        env = dict(os.environ, CELERY_TEST_BROKER=broker_url, CELERY_TEST_QUEUE=queue,
                   PYTHONPATH=str(HERE), PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "celery_app", "worker", "--pool=solo",
             "-c", "1", "--without-heartbeat", "--without-gossip", "--without-mingle",
             "--loglevel=INFO", "-Q", queue, "-n", self.name],
            cwd=str(HERE), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self.ready.wait(READY_TIMEOUT):
            self.kill()
            raise AssertionError(f"celery worker not ready within {READY_TIMEOUT}s:\n"
                                 + self.tail())

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            self.log.append(line)
            if line.endswith(" ready."):
                self.ready.set()

    def tail(self, n=60):
        return "\n".join(list(self.log)[-n:])

    def wait_exit(self, timeout):
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self._reader.join(5)  # the rest of its output
        return rc

    def stop(self, app):
        """Clean shutdown through Celery's remote control: a broadcast on the
        celery.pidbox fanout exchange that the worker consumes. (SIGTERM works too, but with
        heartbeats off the worker only notices it at its next 10 s poll timeout.)"""
        if self.proc.poll() is not None:
            return self.proc.returncode
        app.control.shutdown(destination=[self.name])
        rc = self.wait_exit(30)
        if rc is None:
            self.proc.send_signal(signal.SIGTERM)
            rc = self.wait_exit(30)
        if rc is None:
            self.kill()
            raise AssertionError("celery worker did not stop within 60s:\n" + self.tail())
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def celery_env(broker):
    queue = unique("celery")
    app = celery_app.create_app(broker.url, queue)
    state = {"worker": Worker(broker.url, queue)}
    yield app, queue, state, broker
    try:
        rc = state["worker"].stop(app)
        assert rc == 0, f"celery worker exited with {rc} on shutdown:\n{state['worker'].tail()}"
        assert "Got shutdown from remote" in state["worker"].tail(), state["worker"].tail()
    finally:
        state["worker"].kill()
        app.close()
        import pika

        try:
            c = pika.BlockingConnection(broker.params())
            c.channel().queue_delete(queue)
            c.channel().exchange_delete(queue)
            c.close()
        except Exception:
            pass


def _get(result, app_worker_state, timeout=RESULT_TIMEOUT):
    try:
        return result.get(timeout=timeout)
    except Exception as e:
        if type(e).__name__ == "TimeoutError":
            raise AssertionError(f"no result within {timeout}s; worker log:\n"
                                 + app_worker_state["worker"].tail()) from e
        raise


def test_celery_delay_runs_task_and_rpc_result(celery_env):
    app, queue, state, _broker = celery_env
    add = app.tasks["interop.add"]
    results = [add.delay(i, 1000) for i in range(5)]
    assert [_get(r, state) for r in results] == [1000 + i for i in range(5)]
    assert all(r.state == "SUCCESS" for r in results)
    info = _get(app.tasks["interop.describe"].delay({"k": ["v", 1, None]}), state)
    assert info == {"payload": {"k": ["v", 1, None]}, "routing_key": queue,
                    "redelivered": False, "retries": 0}


def test_celery_remote_control_ping(celery_env):
    """Remote control: a broadcast on the celery.pidbox fanout exchange, answered on the
    reply.celery.pidbox direct exchange."""
    app, _queue, state, _broker = celery_env
    name = state["worker"].name
    replies = app.control.ping(destination=[name], timeout=10)
    assert replies == [{name: {"ok": "pong"}}]


def test_celery_autoretry_until_success(celery_env):
    app, _queue, state, _broker = celery_env
    flaky = app.tasks["interop.flaky"]
    assert _get(flaky.delay(3), state) == "succeeded after 3 retries"
    assert _get(flaky.delay(0), state) == "succeeded after 0 retries"


def test_celery_retries_exhausted_raise(celery_env):
    app, _queue, state, _broker = celery_env
    r = app.tasks["interop.flaky"].delay(99)  # max_retries=5: attempts 0..5 all fail
    with pytest.raises(RuntimeError) as ei:
        r.get(timeout=RESULT_TIMEOUT)
    assert str(ei.value) == "attempt 5 fails"
    assert r.state == "FAILURE"


def test_celery_acks_late_message_redelivered_after_worker_dies(celery_env):
    app, queue, state, broker = celery_env
    token = unique("late")
    r = app.tasks["interop.crash_unless_redelivered"].delay(token)
    # The first delivery kills the worker process before it acks (acks_late).
    rc = state["worker"].wait_exit(RESULT_TIMEOUT)
    assert rc == 3, f"worker did not die in the task (rc={rc}):\n{state['worker'].tail()}"
    # The broker requeued the unacked task message; a new worker gets it redelivered.
    state["worker"] = Worker(broker.url, queue)
    assert _get(r, state) == f"{token} ran on redelivery"
    # The new worker is fully working.
    assert _get(app.tasks["interop.add"].delay(2, 3), state) == 5
