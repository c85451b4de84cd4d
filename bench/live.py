"""The live loop as operators run it: the real Dagster daemon (landing sensor, pipeline
schedule, delivery and failure sensors, run queue), the real alert receiver
(`ocse alerts receive`), batches landing from `ocse generate --follow`, breach files planted
to time file -> alert, a receiver outage and a killed run on request. Used by the soak test
(tests/test_live_loop.py) and by `make bench` (step 6: queue wait, run time, latency).

Everything is observed from outside, as an operator would: the run storage (sampled every
second for queued and started pipeline runs), the receiver's JSON Lines file, the alert
store and the serving snapshot."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
BREACH_CATEGORY = "csam_production_distribution"  # one-hour takedown target


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def breach_csv(content_id: str, now: datetime, minutes_ago: float = 62) -> bytes:
    """One screening hit of CSAM content posted `minutes_ago` before `now` and not taken
    down: past its one-hour takedown target, a breach (critical) the next run must alert on.
    Just past the hour (the default), it is a live breach, not backlog."""
    posted = now - timedelta(minutes=minutes_ago)
    detected = posted + timedelta(minutes=1)
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    header = (
        "hit_id,content_id,content_type,uploader_id,posted_at,detected_at,detection_method,"
        "matched_list,score,category_code,review_status,reviewed_at,reviewer_id,updated_at"
    )
    row = (
        f"hit-{content_id},{content_id},image,acct-live{content_id[-6:]},"
        f"{posted.strftime(stamp)},{detected.strftime(stamp)},hash_match,csam-hashes-live,"
        f"0.99,{BREACH_CATEGORY},pending,,,{detected.strftime(stamp)}"
    )
    return (header + "\n" + row + "\n").encode()


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper is dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def stats(values: list[float]) -> dict:
    """n, median, p95 and max, in the values' unit (seconds here)."""
    values = sorted(values)
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "median": round(values[len(values) // 2], 1),
        "p95": round(values[min(len(values) - 1, int(len(values) * 0.95))], 1),
        "max": round(values[-1], 1),
    }


@dataclass
class Sample:
    at: float
    waiting: int
    started: int


@dataclass
class LiveLoop:
    work: Path
    env: dict[str, str]
    follow_interval: float = 10.0
    retry: dict = field(
        default_factory=lambda: {
            "max_attempts": 4,
            "base_seconds": 1,
            "max_backoff_seconds": 4,
            "attempts_per_run": 1,
            "claim_timeout_seconds": 60,
        }
    )
    samples: list[Sample] = field(default_factory=list)
    planted: dict[str, float] = field(default_factory=dict)  # content id -> landed at
    killed: list[str] = field(default_factory=list)
    orphans: list[int] = field(default_factory=list)  # dbt processes that outlived a kill

    def __post_init__(self) -> None:
        self.landing = self.work / "landing"
        self.dagster_home = self.work / "dagster_home"
        self.received = self.work / "alerts_received.jsonl"
        self.logs = self.work / "logs"
        self.http_port, self.smtp_port = free_port(), free_port()
        self.procs: dict[str, subprocess.Popen] = {}
        self._stop = threading.Event()

    # -- set-up ------------------------------------------------------------------------------

    def configure(self) -> dict[str, str]:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.dagster_home.mkdir(parents=True, exist_ok=True)
        (self.dagster_home / "dagster.yaml").write_text(
            (PROJECT_ROOT / "dagster_project" / "dagster.yaml").read_text()
        )
        routing = {
            "dashboard_url": "http://127.0.0.1:8501",
            "channels": {
                "hook": {"type": "webhook", "url": f"http://127.0.0.1:{self.http_port}/alerts"},
                "mail": {
                    "type": "smtp",
                    "host": "127.0.0.1",
                    "port": self.smtp_port,
                    "sender": "alerts@example.org",
                    "recipients": ["ops@example.org"],
                },
            },
            "routes": [
                {"types": ["*"], "min_severity": "warning", "channels": ["hook"]},
                {
                    "types": ["takedown", "referral", "pipeline_failed"],
                    "min_severity": "high",
                    "channels": ["mail"],
                },
            ],
            "retry": self.retry,
            "dead_letter": {"channels": ["mail"], "min_severity": "high", "after_minutes": 0.5},
            "thresholds": {
                "feed_silence_minutes": {"screening_hits": 600, "reports": 600},
            },
        }
        (self.work / "alerting.yaml").write_text(yaml.safe_dump(routing))
        self.env = {
            **self.env,
            "DAGSTER_HOME": str(self.dagster_home),
            "OCSE_ALERTING_CONFIG": str(self.work / "alerting.yaml"),
            "OCSE_LANDING_DIR": str(self.landing),
            "OCSE_WAREHOUSE": str(self.work / "ocse.duckdb"),
            "OCSE_SERVING": str(self.work / "serving.duckdb"),
            "OCSE_PIPELINE_INTERVAL_MINUTES": "1",
        }
        self.env.pop("OCSE_AS_OF", None)  # live: T is each run's start
        # The instance's storage is created by whichever process opens it first; the daemon
        # and this harness's sampler starting together raced on it (alembic_version: UNIQUE
        # constraint failed, and the daemon died). Create it here, before either starts.
        with self.instance() as instance:
            instance.get_runs(limit=1)
        return self.env

    def _spawn(self, name: str, args: list[str]) -> None:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - the process owns it
        self.procs[name] = subprocess.Popen(
            args,
            env=self.env,
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start_receiver(self) -> None:
        self._spawn(
            "receiver",
            [str(BIN / "ocse"), "alerts", "receive", "--http-port", str(self.http_port)]
            + ["--smtp-port", str(self.smtp_port), "--out", str(self.received)],
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.http_port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("the alert receiver did not start")

    def stop_receiver(self) -> None:
        self._terminate("receiver")

    def start(self) -> None:
        self.start_receiver()
        self._spawn(
            "daemon", [str(BIN / "dagster-daemon"), "run", "-m", "dagster_project.definitions"]
        )
        self._spawn(
            "follow",
            [str(BIN / "ocse"), "generate", "--follow", "--interval", str(self.follow_interval)]
            + ["--out", str(self.landing)],
        )
        threading.Thread(target=self._sample, daemon=True).start()

    def stop_follow(self) -> None:
        self._terminate("follow")

    def stop(self) -> None:
        self._stop.set()
        for name in ("follow", "daemon", "receiver"):
            self._terminate(name)
        self._kill_leftovers()

    def _terminate(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def _kill_leftovers(self) -> None:
        """Run workers the daemon launched (their own sessions) that outlived it."""
        for pid in self.processes_of_this_loop():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def processes_of_this_loop(self, needle: str = "") -> list[int]:
        mark = f"DAGSTER_HOME={self.dagster_home}".encode()
        found = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) == os.getpid():
                continue
            try:
                environ = (proc / "environ").read_bytes().split(b"\0")
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if mark in environ and needle.encode() in cmdline:
                found.append(int(proc.name))
        return found

    # -- observation ------------------------------------------------------------------------

    def instance(self):
        import dagster as dg

        return dg.DagsterInstance.from_config(str(self.dagster_home))

    def pipeline_runs(self) -> list:
        import dagster as dg

        with self.instance() as instance:
            return list(instance.get_run_records(filters=dg.RunsFilter(job_name="ocse_pipeline")))

    def _sample(self) -> None:
        import dagster as dg

        waiting = {dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED}
        while not self._stop.wait(1.0):
            try:
                records = self.pipeline_runs()
            except Exception:  # noqa: BLE001 - storage busy for a moment; sample again
                continue
            self.samples.append(
                Sample(
                    at=time.time(),
                    waiting=sum(r.dagster_run.status in waiting for r in records),
                    started=sum(
                        r.dagster_run.status == dg.DagsterRunStatus.STARTED for r in records
                    ),
                )
            )

    def wait_for(self, predicate, timeout: float, what: str, interval: float = 1.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(interval)
        raise TimeoutError(f"{what}: not within {timeout:.0f} s (logs in {self.logs})")

    def received_records(self) -> list[dict]:
        if not self.received.exists():
            return []
        return [json.loads(line) for line in self.received.read_text().splitlines() if line]

    def received_for(self, content_id: str) -> list[dict]:
        return [r for r in self.received_records() if content_id in json.dumps(r)]

    def successful_runs(self) -> int:
        import dagster as dg

        return sum(
            r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in self.pipeline_runs()
        )

    # -- actions -----------------------------------------------------------------------------

    def plant_breach(self, tag: str) -> str:
        content_id = f"live-{tag}-{int(time.time())}"
        target = self.landing / "screening_hits" / "live" / f"breach_{content_id}.csv"
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(breach_csv(content_id, datetime.now(UTC)))
        os.replace(tmp, target)  # the upstream way: write .tmp, rename when complete
        self.planted[content_id] = time.time()
        return content_id

    def kill_a_running_run(self, timeout: float = 300) -> str:
        """kill -9 the worker of a pipeline run while its dbt child works."""
        import dagster as dg

        found: dict = {}

        def running_with_dbt() -> bool:
            for record in self.pipeline_runs():
                run = record.dagster_run
                pid = run.tags.get("ocse/pid")
                if (
                    run.status == dg.DagsterRunStatus.STARTED
                    and pid
                    and self.processes_of_this_loop("dbt build")
                ):
                    found.update(run_id=run.run_id, pid=int(pid))
                    return True
            return False

        self.wait_for(running_with_dbt, timeout, "a pipeline run with a dbt build", 0.3)
        dbt = self.processes_of_this_loop("dbt build")
        os.kill(found["pid"], signal.SIGKILL)
        self.killed.append(found["run_id"])
        # its dbt child dies with it (dbt_bound_to_run.sh), it does not write on as an orphan
        time.sleep(3)
        self.orphans = [pid for pid in dbt if _alive(pid)]
        return found["run_id"]

    def settle(self, timeout: float = 300) -> None:
        """Wait until everything landed so far is in the marts and its alerts are delivered: a
        pipeline run that started after this call has succeeded (or no run is waiting or
        running at all), and no delivery is due. With the schedule every minute and runs
        longer than that (scale M) the loop is never idle, so idleness alone never comes."""
        import dagster as dg

        called = time.time()

        def caught_up() -> bool:
            return any(
                r.dagster_run.status == dg.DagsterRunStatus.SUCCESS
                and r.start_time is not None
                and r.start_time > called
                for r in self.pipeline_runs()
            )

        busy = {
            dg.DagsterRunStatus.QUEUED,
            dg.DagsterRunStatus.NOT_STARTED,
            dg.DagsterRunStatus.STARTING,
            dg.DagsterRunStatus.STARTED,
        }

        def quiet() -> bool:
            with self.instance() as instance:
                active = [r for r in instance.get_run_records() if r.dagster_run.status in busy]
            if active and not caught_up():
                return False
            with sqlite3.connect(f"file:{self.work / 'alerts.sqlite'}?mode=ro", uri=True) as c:
                (due,) = c.execute(
                    "select count(*) from deliveries where state in ('pending', 'sending')"
                ).fetchone()
            return due == 0

        self.wait_for(quiet, timeout, "the loop to settle", 2.0)

    def alerts_retry(self, *args: str) -> str:
        return subprocess.run(
            [str(BIN / "ocse"), "alerts", "retry", *args],
            env=self.env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    # -- the report --------------------------------------------------------------------------

    def report(self) -> dict:
        import dagster as dg

        runs = sorted(self.pipeline_runs(), key=lambda r: r.create_timestamp)
        waits, durations = [], []
        for r in runs:
            if r.start_time:
                waits.append(r.start_time - r.create_timestamp.timestamp())
            if r.start_time and r.end_time and r.dagster_run.status == dg.DagsterRunStatus.SUCCESS:
                durations.append(r.end_time - r.start_time)
        latencies = {}
        for content_id, landed in self.planted.items():
            got = [
                datetime.fromisoformat(r["received_at"]).timestamp()
                for r in self.received_for(content_id)
            ]
            latencies[content_id] = round(min(got) - landed, 1) if got else None
        statuses: dict[str, int] = {}
        for r in runs:
            statuses[r.dagster_run.status.value] = statuses.get(r.dagster_run.status.value, 0) + 1

        return {
            "runs": statuses,
            "queue_wait_seconds": stats(waits),
            "run_seconds": stats(durations),
            "landing_to_alert_seconds": latencies,
            "max_waiting": max((s.waiting for s in self.samples), default=0),
            "max_started": max((s.started for s in self.samples), default=0),
        }
