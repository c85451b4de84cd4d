"""`make demo` stops when asked: Ctrl-C ends every process it started (the receiver, the
Dagster webserver, daemon and code servers, any run they launched, the generator, the
dashboards) within 10 seconds. Before, eight Dagster processes ignored the signal for minutes.

The demo runs here on two days of data, on free ports, in a temporary folder."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from bench.live import free_port
from ocse.settings import PROJECT_ROOT
from tests.test_alerts import _routing

pytestmark = pytest.mark.integration


def _processes_with(mark: bytes) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if mark in (proc / "environ").read_bytes().split(b"\0"):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_ctrl_c_stops_every_process_of_the_demo_within_10_seconds(tmp_path):
    http_port, smtp_port = free_port(), free_port()
    routing = _routing(tmp_path / "alerting.yaml", http_port, smtp_port)
    config = yaml.safe_load(routing.read_text())
    config["digest"] = None
    routing.write_text(yaml.safe_dump(config))
    home = tmp_path / "dagster_home"
    dashboard_port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OCSE_", "DAGSTER_"))},
        "DAGSTER_HOME": str(home),
        "DAGSTER_PORT": str(free_port()),
        "DASHBOARD_PORT": str(dashboard_port),
        "OCSE_LANDING_DIR": str(tmp_path / "landing"),
        "OCSE_WAREHOUSE": str(tmp_path / "warehouse" / "ocse.duckdb"),
        "OCSE_SERVING": str(tmp_path / "warehouse" / "serving.duckdb"),
        "OCSE_ACCESS_DB": str(tmp_path / "warehouse" / "access.sqlite"),
        "OCSE_PSEUDONYM_KEY_FILE": str(tmp_path / "pseudonym.key"),
        "OCSE_ALERTING_CONFIG": str(routing),
        "OCSE_DEMO_DAYS": "2",
        "OCSE_DEMO_HITS": "300",
        "OCSE_DEMO_HTTP_PORT": str(http_port),
        "OCSE_DEMO_SMTP_PORT": str(smtp_port),
        "OCSE_FOLLOW_INTERVAL": "20",
    }
    log = open(tmp_path / "demo.log", "w")  # noqa: SIM115 - closed below
    demo = subprocess.Popen(
        ["bash", str(PROJECT_ROOT / "scripts" / "demo.sh")],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        # As from a terminal: a shell started with SIGINT ignored (a test run launched in the
        # background inherits that) cannot trap it, and Ctrl-C would not reach the cleanup.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509
    )
    mark = f"DAGSTER_HOME={home}".encode()
    try:
        deadline = time.monotonic() + 600
        while "demo is running" not in (tmp_path / "demo.log").read_text():
            assert demo.poll() is None, (tmp_path / "demo.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the demo did not come up in 10 minutes"
            time.sleep(1)
        # Every service up (receiver, webserver, daemon, code server, dashboards...): on a busy
        # machine `dagster dev` takes a while to start its children.
        while len(_processes_with(mark)) < 5:
            assert time.monotonic() < deadline, f"only {_processes_with(mark)} started"
            time.sleep(1)
        time.sleep(15)  # the daemon ticks, a run may start: the worst moment to stop

        stop_at = time.monotonic()
        demo.send_signal(signal.SIGINT)  # what Ctrl-C sends
        demo.wait(timeout=30)
        while _processes_with(mark) and time.monotonic() - stop_at < 30:
            time.sleep(0.2)
        took = time.monotonic() - stop_at
        left = _processes_with(mark)
        assert not left, f"still running after {took:.1f} s: {left}"
        assert took < 10, f"stopping took {took:.1f} s"
        assert "Stopped." in (tmp_path / "demo.log").read_text()
    finally:
        for pid in _processes_with(mark):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if demo.poll() is None:
            demo.kill()
        log.close()
