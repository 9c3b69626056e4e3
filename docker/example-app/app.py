"""An order service and its stock consumer, unchanged from a RabbitMQ setup: it declares a
durable queue, publishes "order paid" events with publisher confirms, and consumes them."""

import json
import os
import time

import pika

params = pika.URLParameters(os.environ["AMQP_URL"])
for attempt in range(30):
    try:
        conn = pika.BlockingConnection(params)
        break
    except pika.exceptions.AMQPConnectionError:
        time.sleep(1)
else:
    raise SystemExit("broker unreachable")

ch = conn.channel()
ch.exchange_declare("orders", "topic", durable=True)
ch.queue_declare("stock", durable=True)
ch.queue_bind("stock", "orders", "order.paid")
ch.confirm_delivery()
for n in range(10):
    body = json.dumps({"order": n, "status": "paid"})
    ch.basic_publish(
        "orders",
        "order.paid",
        body,
        pika.BasicProperties(delivery_mode=2, content_type="application/json"),
        mandatory=True,
    )
print("published 10 confirmed orders", flush=True)


def on_message(channel, method, properties, body):
    print("stock reserved for", json.loads(body), flush=True)
    channel.basic_ack(method.delivery_tag)


ch.basic_qos(prefetch_count=10)
ch.basic_consume("stock", on_message)
ch.start_consuming()
