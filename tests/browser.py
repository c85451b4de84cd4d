"""A real browser against the real dashboard: headless Chromium driven over the DevTools
protocol (no test dependency beyond `websockets`), and `streamlit run dashboards/server.py`
(the app behind its sign-in routes, as `ocse dashboard` serves it) on a free port. Shared
by the browser tests (`tests/test_dashboards.py`, through `tests/dashboard_world.py`) and
the benchmark's first-render step (`bench/render.py`), so it imports nothing of the
project: starting it costs no pipeline, no pandas."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "dashboards" / "server.py"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking")

# Streamlit's own markers, not the pages' contents: the app root says whether a script run
# is going on (`data-test-script-state`: initial, running, notRunning, ...), the status
# widget shows while it runs, elements of the previous run are `data-stale` until replaced.
SCRIPT_STATE = "document.querySelector('[data-testid=\"stApp\"]')?.dataset.testScriptState"
STATUS_WIDGET = "document.querySelector('[data-testid=\"stStatusWidget\"]')"
EXCEPTION = "document.querySelector('[data-testid=\"stException\"]')"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """A headless Chromium tab driven over the DevTools protocol (no extra test dependency)."""

    def __init__(
        self, devtools: ClientConnection, *, recv_timeout: float = 60, wait_timeout: float = 90
    ) -> None:
        self.devtools = devtools
        self.calls = 0
        self.recv_timeout = recv_timeout
        self.wait_timeout = wait_timeout
        self.chromium_port: int | None = None  # its DevTools port, when known

    def call(self, method: str, **params: object) -> dict:
        self.calls += 1
        self.devtools.send(json.dumps({"id": self.calls, "method": method, "params": params}))
        while True:
            message = json.loads(self.devtools.recv(timeout=self.recv_timeout))
            if message.get("id") == self.calls:
                return message.get("result", {})

    def evaluate(self, expression: str) -> object:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float | None = None, poll: float = 0.4) -> None:
        deadline = time.monotonic() + (timeout or self.wait_timeout)
        while not self.evaluate(expression):
            if time.monotonic() > deadline:
                text = self.evaluate("document.body.innerText")
                raise AssertionError(f"timed out waiting for {expression!r}; page: {text!r}")
            time.sleep(poll)

    def settle(self, timeout: float = 90) -> None:
        """Until Streamlit has finished the script run (no running indicator)."""
        time.sleep(1.0)
        self.wait_for(f"{STATUS_WIDGET} === null", timeout)
        time.sleep(1.0)

    def type_into(self, selector: str, text: str) -> None:
        self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        self.call("Input.insertText", text=text)

    def click_text(self, tag: str, text: str) -> None:
        found = self.evaluate(
            f"(() => {{ const e = [...document.querySelectorAll({json.dumps(tag)})]"
            f".find(e => e.innerText.trim().endsWith({json.dumps(text)})); "
            "if (e) { e.click(); return true; } return false; })()"
        )
        assert found, f"no <{tag}> with text {text!r}"

    def press_key(self, key: str) -> None:
        """One key typed into the page (Streamlit's hotkeys: r reruns, c clears caches)."""
        for kind in ("keyDown", "keyUp"):
            self.call(
                "Input.dispatchKeyEvent",
                type=kind,
                key=key,
                code=f"Key{key.upper()}" if len(key) == 1 else key,
                text=key if kind == "keyDown" and len(key) == 1 else "",
                windowsVirtualKeyCode=ord(key.upper()) if len(key) == 1 else 13,
            )

    def screenshot(self, path: Path) -> None:
        """The tab as it is (a tall window; resizing would re-lay out Streamlit's sidebar)."""
        import base64

        self.evaluate("window.scrollTo(0, 0)")
        shot = self.call("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))


def start_chromium(profile: Path, window_size: str = "1440,2200") -> tuple[subprocess.Popen, int]:
    chromium = chromium_path()
    assert chromium is not None
    port = free_port()
    process = subprocess.Popen(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--window-size={window_size}",
            f"--user-data-dir={profile}",
            f"--remote-debugging-port={port}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return process, port


@contextmanager
def chromium_tab(
    profile: Path,
    *,
    window_size: str = "1440,2200",
    recv_timeout: float = 60,
    wait_timeout: float = 90,
) -> Iterator[Browser]:
    """A headless Chromium with one tab, stopped on exit."""
    process, port = start_chromium(profile, window_size)
    try:
        targets = json.loads(wait_for_http(f"http://127.0.0.1:{port}/json", 30))
        page = next(t for t in targets if t["type"] == "page")
        with ws_connect(page["webSocketDebuggerUrl"], max_size=None) as devtools:
            browser = Browser(devtools, recv_timeout=recv_timeout, wait_timeout=wait_timeout)
            browser.chromium_port = port
            yield browser
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def another_tab(browser: Browser) -> Iterator[Browser]:
    """One more tab in the Chromium of `browser` (from `chromium_tab`), closed on exit."""
    port = browser.chromium_port
    request = urllib.request.Request(f"http://127.0.0.1:{port}/json/new?about:blank", method="PUT")
    with urllib.request.urlopen(request, timeout=30) as response:
        target = json.loads(response.read().decode())
    try:
        with ws_connect(target["webSocketDebuggerUrl"], max_size=None) as devtools:
            yield Browser(
                devtools, recv_timeout=browser.recv_timeout, wait_timeout=browser.wait_timeout
            )
    finally:
        close = f"http://127.0.0.1:{port}/json/close/{target['id']}"
        with urllib.request.urlopen(close, timeout=30):
            pass


def start_dashboard(
    env: dict[str, str],
    *,
    log: Path | None = None,
    timeout: float = 90,
    extra_args: tuple[str, ...] | list[str] = (),
) -> tuple[subprocess.Popen, str]:
    """`streamlit run dashboards/server.py` on a free port of 127.0.0.1, headless; its output
    goes to `log` (else nowhere); `extra_args`: more Streamlit options. Returns the process
    and the app's base URL."""
    port = free_port()
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - the child keeps it
    try:
        server = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(APP)]
            + ["--server.headless=true", f"--server.port={port}", "--server.address=127.0.0.1"]
            + ["--browser.gatherUsageStats=false", *extra_args],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
        )
    finally:
        if log:
            out.close()
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_http(url + "_stcore/health", timeout)
    except OSError:
        server.terminate()
        server.wait(timeout=15)
        raise
    return server, url


def sign_in_with_password(browser: Browser, url: str, user: str, password: str) -> None:
    """Open the app at `url` without a session (the server sends the browser to its sign-in
    form), sign in, and wait until the app has drawn the page it came back to."""
    browser.call("Page.navigate", url=url)
    browser.wait_for("document.querySelector('input[type=password]') !== null")
    submit_sign_in(browser, user, password)
    browser.wait_for(f"{APP_ROOT} !== null")
    browser.settle()


APP_ROOT = "document.querySelector('[data-testid=\"stApp\"]')"


def submit_sign_in(browser: Browser, user: str, password: str) -> None:
    """Fill in and post the sign-in form on screen (returns once the post is sent)."""
    browser.evaluate(
        f"document.querySelector('#username').value = {json.dumps(user)};"
        f"document.querySelector('#password').value = {json.dumps(password)};"
        "document.querySelector('#sign-in').click(); true"
    )
    time.sleep(0.5)
