"""The management page in headless Chromium against a fresh warren: logging in, the overview's
numbers, the queue, exchange, connection and channel tables, publishing, getting and purging
from a queue's panel, and names and payloads full of markup shown as text.

Every expected value is exact (the broker is this suite's own); rates, which depend on
timing, are checked for their format only.
"""

import re

import pika
import pytest
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

XSS = "<img src=x onerror=alert(1)>"
RATE = re.compile(r"^\d+\.\d/s$")


@pytest.fixture(scope="module")
def orders(warren):
    """An open AMQP connection with one channel (in confirm mode) that has published three
    messages to `ui-orders`; a second queue is named like an HTML element."""
    conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", warren.amqp_port))
    ch = conn.channel()
    ch.confirm_delivery()
    ch.queue_declare("ui-orders", durable=True)
    ch.queue_declare(XSS)
    for i in (1, 2, 3):
        ch.basic_publish("", "ui-orders", f"order {i}".encode())
    yield ch
    conn.close()


def no_alert(page):
    try:
        text = page.driver.switch_to.alert.text
    except NoAlertPresentException:
        return
    raise AssertionError(f"the page raised an alert: {text!r}")


def test_a_wrong_password_is_refused_on_the_login_form(browser):
    browser.login("guest", "wrong")
    browser.text_is("#login-error", "Login failed")
    assert not browser.css("#app").is_displayed()
    browser.shot("login-failed")


def test_a_401_brings_the_login_form_back(browser, warren):
    status, _ = warren.api("PUT", "users/ui-temp", {"password": "pw", "tags": "management"})
    assert status == 201
    browser.login("ui-temp", "pw")
    browser.text_is("#who", "ui-temp")
    # The login lives in sessionStorage: a reload keeps it.
    browser.driver.refresh()
    browser.text_is("#who", "ui-temp")
    assert not browser.css("#login").is_displayed()
    assert warren.api("DELETE", "users/ui-temp")[0] == 204
    # The next refresh (every 5 s) gets 401 Login failed.
    browser.displayed("#login")
    browser.text_is("#login-error", "Login failed")
    assert browser.driver.execute_script("return sessionStorage.length") == 0
    browser.shot("logged-out")


def test_overview_queues_exchanges_connections_and_channels(browser, warren, orders):
    page = browser
    page.login()
    page.text_is("#who", "guest")
    _, overview = warren.api("GET", "overview")

    # Overview: the broker, object totals, queued messages, message rates.
    page.displayed("#tab-overview")
    page.text_is('[data-field="rabbitmq_version"]', overview["rabbitmq_version"])
    page.text_is('[data-field="node"]', overview["node"])
    expected = {
        "object_totals.connections": "1",
        "object_totals.channels": "1",
        "object_totals.exchanges": "6",
        "object_totals.queues": "2",
        "object_totals.consumers": "0",
        "queue_totals.messages_ready": "3",
        "queue_totals.messages_unacknowledged": "0",
        "queue_totals.messages": "3",
        "message_stats.publish": "3",
        "message_stats.confirm": "3",
        "message_stats.ack": "0",
    }
    for field, value in expected.items():
        page.text_is(f'[data-field="{field}"]', value)
    for key in ("publish", "confirm", "deliver_get", "redeliver", "ack"):
        rate = page.css(f'[data-field="message_stats.{key}_details.rate"]').text
        assert RATE.match(rate), (key, rate)
    page.shot("overview")

    # Queues: both rows; the one named like markup is text, and nothing ran.
    page.tab("queues")
    row = page.row("queues-table", 1, "ui-orders")
    assert row[:7] == ["/", "ui-orders", "classic", "running", "3", "0", "3"], row
    assert all(RATE.match(r) for r in row[7:]), row
    assert page.row("queues-table", 1, XSS)[:7] == ["/", XSS, "classic", "running", "0", "0", "0"]
    assert page.driver.find_elements(By.CSS_SELECTOR, "#queues-table img") == []
    no_alert(page)
    page.shot("queues")

    # A queue's panel: publish through the default exchange.
    page.open("queues-table", "ui-orders")
    page.text_is("#queues-detail h2 q", "ui-orders")
    page.text_is('#queues-detail [data-field="messages_ready"]', "3")
    page.text_is("#queues-detail table.bindings tbody", "(AMQP default) ui-orders {}")
    page.type("#queue-publish-payload", "hello from chromium")
    page.click("#queue-publish button[type=submit]")
    page.text_is("#queue-publish-status", "Message published.")
    page.text_is('#queues-detail [data-field="messages_ready"]', "4")

    # Get all four back, requeued: the payloads in order, nothing taken.
    count = page.css("#queue-get-count")
    count.clear()
    count.send_keys("4")
    Select(page.css("#queue-get-ackmode")).select_by_value("ack_requeue_true")
    page.click("#queue-get button[type=submit]")
    page.text_is("#queue-get-status", "4 messages.")
    payloads = [
        p.text for p in page.driver.find_elements(By.CSS_SELECTOR, "#queue-get-result pre.payload")
    ]
    assert payloads == ["order 1", "order 2", "order 3", "hello from chromium"]
    page.text_is('#queue-get-result .message:last-child [data-field="routing_key"]', "ui-orders")
    page.text_is('#queue-get-result .message:last-child [data-field="payload_bytes"]', "19")
    page.text_is('#queues-detail [data-field="messages_ready"]', "4")
    page.shot("get")

    # Get one and remove it: the first again, now redelivered.
    count.clear()
    count.send_keys("1")
    Select(page.css("#queue-get-ackmode")).select_by_value("ack_requeue_false")
    page.click("#queue-get button[type=submit]")
    page.text_is("#queue-get-status", "1 message.")
    page.text_is("#queue-get-result pre.payload", "order 1")
    page.text_is('#queue-get-result [data-field="redelivered"]', "yes")
    page.text_is('#queues-detail [data-field="messages_ready"]', "3")

    # Purge asks first; cancelling leaves the messages.
    page.click("#queue-purge")
    page.displayed("#queue-purge-confirm")
    page.shot("purge-confirm")
    page.click("#queues-detail .confirm button:not(.danger)")
    page.displayed("#queue-purge")
    assert warren.api("GET", "queues/%2F/ui-orders")[1]["messages"] == 3
    page.click("#queue-purge")
    page.click("#queue-purge-confirm")
    page.text_is("#queue-purge-status", "Queue purged.")
    page.text_is('#queues-detail [data-field="messages_ready"]', "0")
    page.wait(
        lambda: page.row("queues-table", 1, "ui-orders")[4:7] == ["0", "0", "0"], "the purged row"
    )
    assert warren.api("GET", "queues/%2F/ui-orders")[1]["messages"] == 0
    page.shot("purged")

    # The markup-named queue's panel: name and payload stay text.
    page.open("queues-table", XSS)
    page.text_is("#queues-detail h2 q", XSS)
    markup = "<b>bold</b><script>alert(2)</script>"
    page.type("#queue-publish-payload", markup)
    page.click("#queue-publish button[type=submit]")
    page.text_is("#queue-publish-status", "Message published.")
    Select(page.css("#queue-get-ackmode")).select_by_value("ack_requeue_false")
    page.click("#queue-get button[type=submit]")
    page.text_is("#queue-get-result pre.payload", markup)
    page.text_is('#queue-get-result [data-field="routing_key"]', XSS)
    assert (
        page.driver.find_elements(
            By.CSS_SELECTOR, "#queues-detail img, #queues-detail b, #queues-detail script"
        )
        == []
    )
    no_alert(page)
    page.shot("markup")

    # Sorting by a column, both ways, and filtering by name.
    names = lambda: [r[1] for r in page.rows("queues-table")]  # noqa: E731
    page.click("#queues-table th:nth-child(2) button")
    page.wait(lambda: names() == [XSS, "ui-orders"], "sorted by name")
    page.click("#queues-table th:nth-child(2) button")
    page.wait(lambda: names() == ["ui-orders", XSS], "sorted by name, reversed")
    page.type("#tab-queues .toolbar input", "ORDERS")
    page.wait(lambda: names() == ["ui-orders"], "filtered by name")
    page.text_is("#tab-queues .toolbar .info", "1–1 of 1 (2 in all) · page 1 of 1")

    # Exchanges: the default one routes by queue name; amq.fanout has no bindings.
    page.tab("exchanges")
    assert page.row("exchanges-table", 1, "(AMQP default)")[:4] == [
        "/",
        "(AMQP default)",
        "direct",
        "durable",
    ]
    page.open("exchanges-table", "(AMQP default)")
    page.type("#exchange-publish-key", "ui-orders")
    page.type("#exchange-publish-payload", "via the exchanges tab")
    page.click("#exchange-publish button[type=submit]")
    page.text_is("#exchange-publish-status", "Message published.")
    assert warren.api("GET", "queues/%2F/ui-orders")[1]["messages"] == 1
    page.open("exchanges-table", "amq.fanout")
    page.text_is("#exchanges-detail h2 q", "amq.fanout")
    page.text_is('#exchanges-detail [data-field="type"]', "fanout")
    page.type("#exchange-publish-key", "anything")
    page.type("#exchange-publish-payload", "lost")
    page.click("#exchange-publish button[type=submit]")
    page.text_is("#exchange-publish-status", "Message published, but not routed.")
    page.shot("exchanges")

    # An API error shows its reason: publishing to an exchange deleted meanwhile.
    assert warren.api("PUT", "exchanges/%2F/ui-gone", {"type": "direct"})[0] == 201
    page.driver.refresh()
    page.open("exchanges-table", "ui-gone")
    assert warren.api("DELETE", "exchanges/%2F/ui-gone")[0] == 204
    page.type("#exchange-publish-payload", "x")
    page.click("#exchange-publish button[type=submit]")
    page.text_is("#exchange-publish-status", "Not Found")
    page.text_is("#exchanges-detail p.status.error", "This exchange no longer exists.")
    assert not page.css("#error").is_displayed(), page.css("#error").text

    # Connections and channels: pika's connection and its one channel.
    page.tab("connections")
    conn = page.wait(
        lambda: (
            page.rows("connections-table")[0] if len(page.rows("connections-table")) == 1 else None
        ),
        "one connection",
    )
    assert conn[1:6] == ["guest", "/", "Pika Python Client Library", "1", "running"], conn
    assert all(re.match(r"^\d+(\.\d)? [kMG]?B/s$", r) for r in conn[6:]), conn
    page.tab("channels")
    chan = page.wait(
        lambda: page.rows("channels-table")[0] if len(page.rows("channels-table")) == 1 else None,
        "one channel",
    )
    assert chan[0] == conn[0] + " (1)", (chan, conn)
    assert chan[1:8] == ["guest", "/", "confirm", "0", "0", "0", "running"], chan
    page.shot("channels")
    no_alert(page)
