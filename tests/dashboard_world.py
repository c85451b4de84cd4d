"""One serving snapshot built by the real pipeline from generated data, shared by the
dashboard tests (building it costs one pipeline run), plus a browser driver and session
helpers for AppTest."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from websockets.sync.client import ClientConnection

from dashboards.auth import SESSION_KEY, SessionUser
from ocse.pipeline import run_pipeline
from sample_data.generator import generate
from tests.feeds import TEST_KEY

AS_OF = datetime(2025, 6, 30, 16, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parent.parent
PAGE_FILES = {
    "overview": "pages/overview.py",
    "sla": "pages/sla.py",
    "trends": "pages/trends.py",
    "offenders": "pages/offenders.py",
    "cases": "pages/cases.py",
    "operations_queue": "pages/operations_queue.py",
    "pipeline_health": "pages/pipeline_health.py",
    "research": "pages/research.py",
    "methodology": "pages/methodology.py",
    "access_log": "pages/access_log.py",
}


@dataclass(frozen=True)
class World:
    serving: Path
    warehouse: Path
    landing: Path


def build_world(root: Path, monkeypatch) -> World:
    """Generate six weeks of feeds ending at AS_OF and run the pipeline once."""
    landing = root / "landing"
    generate(landing, seed=5, days=42, scale=4000, end=AS_OF, bad_share=0.01, progress=None)
    world = World(root / "serving.duckdb", root / "ocse.duckdb", landing)
    world_env(world, monkeypatch)
    result = run_pipeline(AS_OF)
    assert result.success, result.failure
    return world


def world_env(world: World, monkeypatch) -> None:
    """The environment the dashboards and the pipeline read for this world."""
    monkeypatch.setenv("OCSE_PSEUDONYM_KEY", TEST_KEY)
    monkeypatch.delenv("OCSE_PSEUDONYM_KEY_FILE", raising=False)
    monkeypatch.delenv("OCSE_AS_OF", raising=False)
    monkeypatch.setenv("OCSE_LANDING_DIR", str(world.landing))
    monkeypatch.setenv("OCSE_WAREHOUSE", str(world.warehouse))
    monkeypatch.setenv("OCSE_SERVING", str(world.serving))
    dagster_home = world.landing.parent / "dagster_home"
    dagster_home.mkdir(exist_ok=True)
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))


def sign_in(at, role: str, username: str | None = None) -> None:
    """Put a signed-in user of `role` into an AppTest session."""
    now = time.time()
    at.session_state[SESSION_KEY] = SessionUser(
        username or f"test-{role}", role, "password", now, now
    )


# --- a real browser ------------------------------------------------------------------------


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

    def wait_for(self, expression: str, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout or self.wait_timeout)
        while not self.evaluate(expression):
            if time.monotonic() > deadline:
                text = self.evaluate("document.body.innerText")
                raise AssertionError(f"timed out waiting for {expression!r}; page: {text!r}")
            time.sleep(0.4)

    def settle(self, timeout: float = 90) -> None:
        """Until Streamlit has finished the script run (no running indicator)."""
        time.sleep(1.0)
        self.wait_for(
            "document.querySelector('[data-testid=\"stStatusWidget\"]') === null", timeout
        )
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

    def screenshot(self, path: Path) -> None:
        """The tab as it is (a tall window; resizing would re-lay out Streamlit's sidebar)."""
        import base64

        self.evaluate("window.scrollTo(0, 0)")
        shot = self.call("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))


def start_chromium(profile: Path) -> tuple[subprocess.Popen, int]:
    chromium = chromium_path()
    assert chromium is not None
    port = free_port()
    process = subprocess.Popen(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--window-size=1440,2200",
            f"--user-data-dir={profile}",
            f"--remote-debugging-port={port}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return process, port


def start_dashboard(env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    import sys

    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(ROOT / "dashboards" / "app.py"),
            "--server.headless=true",
            f"--server.port={port}",
            "--server.address=127.0.0.1",
            "--browser.gatherUsageStats=false",
        ],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    wait_for_http(url + "_stcore/health", 90)
    return server, url
