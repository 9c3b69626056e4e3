"""Fixtures for the web page suite: a warren of its own, headless Chromium, and helpers that
wait for what the page shows.

warren is WARREN_BIN (default target/release/warren, else target/debug/warren), started with
`--amqp-port 0 --mgmt-port 0 --metrics-port 0` and a fresh data directory; the ports are read from its log
(`Management API started on ADDR`, `AMQP listening on ADDR`). It gets SIGTERM at the end.
Chromium is Debian's, driven through /usr/bin/chromedriver.
"""

import base64
import json
import os
import re
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

REPO_ROOT = Path(__file__).resolve().parents[2]
WAIT = 15.0
_PORT = {
    "mgmt": re.compile(r"Management API started on \S*:(\d+)"),
    "amqp": re.compile(r"AMQP listening on \S*:(\d+)"),
}


def _binary():
    env = os.environ.get("WARREN_BIN")
    if env:
        return Path(env).resolve()
    for rel in ("target/release/warren", "target/debug/warren"):
        if (REPO_ROOT / rel).exists():
            return REPO_ROOT / rel
    pytest.fail("no warren binary: build it (cargo build --release) or set WARREN_BIN")


class Warren:
    def __init__(self, data_dir):
        self.log_path = Path(data_dir) / "log"
        env = dict(os.environ, NO_COLOR="1", WARREN_LOG="info")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    str(_binary()),
                    "--amqp-port",
                    "0",
                    "--mgmt-port",
                    "0",
                    "--metrics-port",
                    "0",
                    "--data-dir",
                    str(Path(data_dir) / "data"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        deadline = time.monotonic() + 30
        ports = {}
        while len(ports) < 2:
            text = re.sub(r"\x1b\[[0-9;]*m", "", self.log_path.read_text(errors="replace"))
            ports = {k: int(m.group(1)) for k, r in _PORT.items() if (m := r.search(text))}
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                pytest.fail(f"warren did not start:\n{text}")
            time.sleep(0.05)
        self.amqp_port = ports["amqp"]
        self.url = f"http://127.0.0.1:{ports['mgmt']}/"

    def api(self, method, path, body=None, user="guest", password="guest"):
        """Calls the management API; returns (status, parsed JSON body or None)."""
        req = urllib.request.Request(self.url + "api/" + path, method=method)
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        req.add_header("Authorization", "Basic " + token)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, data, timeout=10) as r:
                raw = r.read()
                return r.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            raw = e.read()
            return e.code, json.loads(raw) if raw else None

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            assert self.proc.wait(timeout=10) == 0, "warren exited with an error"
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise


@pytest.fixture(scope="session")
def warren():
    with tempfile.TemporaryDirectory(prefix="warren-ui-") as d:
        w = Warren(d)
        try:
            yield w
        finally:
            w.stop()


@pytest.fixture(scope="session")
def artifacts():
    d = Path(os.environ.get("UI_ARTIFACTS") or tempfile.mkdtemp(prefix="warren-ui-artifacts-"))
    d.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots in {d}")
    return d


@pytest.fixture
def browser(warren, artifacts, request):
    opts = webdriver.ChromeOptions()
    opts.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1000",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(
        service=Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")), options=opts
    )
    page = Page(driver, warren, artifacts, request.node.name)
    try:
        yield page
        # Script errors and content security policy violations end up in the console; so do
        # the 4xx answers the tests provoke, which are not errors of the page.
        log = driver.get_log("browser")
        severe = [
            e["message"]
            for e in log
            if e["level"] == "SEVERE" and "Failed to load resource" not in e["message"]
        ]
        assert severe == [], severe
    finally:
        page.shot("last")
        driver.quit()


class Page:
    """The page in the browser, with waits for what it shows."""

    def __init__(self, driver, warren, artifacts, test):
        self.driver = driver
        self.warren = warren
        self.artifacts = artifacts
        self.test = test
        self.shots = 0

    def shot(self, what):
        self.shots += 1
        self.driver.save_screenshot(str(self.artifacts / f"{self.test}-{self.shots:02}-{what}.png"))

    def wait(self, check, what):
        """Polls `check` until it returns something truthy (errors from a table being redrawn
        under it count as not yet); fails with `what` and the last value seen."""
        last = [None]

        def probe(_):
            last[0] = check()
            return last[0]

        try:
            return WebDriverWait(
                self.driver,
                WAIT,
                poll_frequency=0.1,
                ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
            ).until(probe)
        except Exception as e:
            self.shot("timeout")
            raise AssertionError(f"timed out waiting for {what}; last seen: {last[0]!r}") from e

    def css(self, selector):
        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def text_is(self, selector, expected):
        """Waits until the element's text is exactly `expected`."""
        seen = []

        def check():
            seen[:] = [self.css(selector).text]
            return seen[0] == expected

        try:
            self.wait(check, f"{selector} to read {expected!r}")
        except AssertionError as e:
            raise AssertionError(
                f"{selector}: expected {expected!r}, saw {seen[0] if seen else None!r}"
            ) from e

    def displayed(self, selector):
        return self.wait(
            lambda: self.css(selector).is_displayed() and self.css(selector), f"{selector} shown"
        )

    def click(self, selector):
        self.wait(lambda: self.css(selector).click() or True, f"a click on {selector}")

    def type(self, selector, text):
        e = self.displayed(selector)
        e.clear()
        e.send_keys(text)

    def login(self, user="guest", password="guest"):
        self.driver.get(self.warren.url)
        self.type("#login-user", user)
        self.type("#login-pass", password)
        self.click("#login button[type=submit]")

    def tab(self, name):
        self.click(f"#tabs a[data-tab={name}]")
        self.displayed(f"#tab-{name}")

    def rows(self, table):
        """The text of each cell of each row of a table, read in one go (cell by cell would
        take long enough on a big table for the page's refresh to redraw it midway)."""
        return self.driver.execute_script(
            "return [...document.querySelectorAll(arguments[0])]"
            ".map((tr) => [...tr.cells].map((td) => td.innerText.trim()))",
            f"#{table} tbody tr",
        )

    def row(self, table, column, value):
        """Waits for the row whose cell `column` reads `value`; returns its cells' text."""
        return self.wait(
            lambda: next(
                (r for r in self.rows(table) if len(r) > column and r[column] == value), None
            ),
            f"a row {value!r} in {table}",
        )

    def open(self, table, name):
        """Clicks the name button of the row for `name`."""

        def click():
            for b in self.driver.find_elements(By.CSS_SELECTOR, f"#{table} tbody button.link"):
                if b.text == name:
                    b.click()
                    return True
            return False

        self.wait(click, f"{name!r} in {table} to click")
