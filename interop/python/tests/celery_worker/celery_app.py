"""The Celery application for test_celery.py, used both by the test (to send tasks) and by
the worker process it starts:

    CELERY_TEST_BROKER=amqp://... CELERY_TEST_QUEUE=NAME \
        celery -A celery_app worker --pool=solo -c 1 ...

Results come back over AMQP through the rpc:// backend (reply queues)."""

import os

from celery import Celery


def create_app(broker_url, queue):
    app = Celery("warren_interop", broker=broker_url, backend="rpc://")
    app.conf.update(
        task_default_queue=queue,
        task_default_exchange=queue,
        task_default_routing_key=queue,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=False,
        broker_connection_max_retries=0,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_send_task_events=False,
    )

    @app.task(name="interop.add")
    def add(x, y):
        return x + y

    @app.task(name="interop.describe", bind=True)
    def describe(self, payload):
        """Echo what the worker saw: the payload and the AMQP delivery info."""
        info = self.request.delivery_info or {}
        return {
            "payload": payload,
            "routing_key": info.get("routing_key"),
            "redelivered": bool(info.get("redelivered")),
            "retries": self.request.retries,
        }

    @app.task(name="interop.flaky", bind=True, autoretry_for=(RuntimeError,), max_retries=5,
              default_retry_delay=0, retry_backoff=False, retry_jitter=False)
    def flaky(self, fail_times):
        """Raise RuntimeError on the first fail_times attempts; each failure is retried by
        Celery (a new task message on the broker) until an attempt succeeds."""
        if self.request.retries < fail_times:
            raise RuntimeError(f"attempt {self.request.retries} fails")
        return f"succeeded after {self.request.retries} retries"

    @app.task(name="interop.crash_unless_redelivered", bind=True, acks_late=True)
    def crash_unless_redelivered(self, token):
        """acks_late: the message is acked only after the task ran. The first delivery kills
        the worker outright, so the broker must requeue the unacked message and hand it,
        marked redelivered, to the next worker."""
        if not (self.request.delivery_info or {}).get("redelivered"):
            os._exit(3)
        return f"{token} ran on redelivery"

    return app


if os.environ.get("CELERY_TEST_BROKER"):
    app = create_app(os.environ["CELERY_TEST_BROKER"], os.environ["CELERY_TEST_QUEUE"])
