"""The bodies of the benchmark steps that are not `ocse run` itself. Each runs in its own
process (`python -m bench.steps <step> ...`), so the harness can measure its wall time and
peak memory, and prints one JSON line `BENCH_RESULT {...}` with what it counted."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

RESULT_PREFIX = "BENCH_RESULT "


def emit(result: dict) -> None:
    print(RESULT_PREFIX + json.dumps(result, default=str), flush=True)


# -- step 1: the limit ------------------------------------------------------------------------


def raw_load(landing: Path, database: Path, skip: set[str]) -> dict:
    """DuckDB's own bulk load of every feed file into plain tables: no validation, no
    pseudonyms, no ledger. One table per feed and format. Files the generator planted as
    unreadable (listed in `skip`) are left out: no loader can read them.

    The fastest plain load, not the most forgiving: CSV files are read in one scan per
    distinct header (`union_by_name` would sniff every one of thousands of files), JSON Lines
    with the contract's fields given as VARCHAR (no sampling), Parquet by name."""
    import duckdb

    from ocse.contracts import load_contract
    from ocse.ingest.discovery import discover

    database.unlink(missing_ok=True)
    conn = duckdb.connect(str(database))
    scans: dict[tuple[str, str, tuple], list[str]] = {}
    for file in discover(landing):
        if file.file_name in skip or file.size == 0:
            continue
        fmt = file.path.suffix.lstrip(".")
        shape: tuple = ()
        if fmt == "csv":
            with open(file.path, "rb") as fh:
                shape = (fh.readline(),)
        scans.setdefault((file.feed, fmt, shape), []).append(str(file.path))
    tables: dict[str, dict] = {}
    shapes: dict[tuple[str, str], list[tuple]] = {}
    for (feed, fmt, shape), files in scans.items():
        if fmt == "csv":
            reader = "read_csv($files, header = true, all_varchar = true)"
        elif fmt == "jsonl":
            names = ", ".join(f"'{name}': 'VARCHAR'" for name in load_contract(feed).names)
            reader = f"read_json($files, format = 'newline_delimited', columns = {{{names}}})"
        else:
            reader = "read_parquet($files, union_by_name = true)"
        # a CSV header of its own (an extra column) gets a table of its own
        seen = shapes.setdefault((feed, fmt), [])
        seen.append(shape)
        name = f"{feed}_{fmt}" + (f"_{len(seen)}" if len(seen) > 1 else "")
        conn.execute(f"create table {name} as select * from {reader}", {"files": files})
        tables[name] = {"files": len(files), "rows": 0}
    rows = 0
    for name, info in tables.items():
        (info["rows"],) = conn.execute(f"select count(*) from {name}").fetchone()
        rows += info["rows"]
    conn.close()
    return {"rows": rows, "tables": tables, "files": sum(t["files"] for t in tables.values())}


# -- step 4: dashboard queries ------------------------------------------------------------------


def dashboard_queries(serving: Path, repeats: int) -> dict:
    """Every dashboard page's queries against the serving snapshot, `repeats` times each
    after one warm-up run: p50 and p95 per query, in milliseconds."""
    try:
        from dashboards import queries
    except Exception as exc:  # noqa: BLE001 - the dashboards are being rewritten
        return {"available": False, "reason": f"dashboards.queries cannot be imported: {exc}"}
    workload_of = getattr(queries, "benchmark_workload", None)
    if workload_of is None:
        return {
            "available": False,
            "reason": "not available yet: dashboards.queries.benchmark_workload does not exist",
        }
    identity = queries.snapshot_identity(serving)
    workload: dict[str, Callable[[], object]] = workload_of(identity)
    per_query = {}
    for name, run in workload.items():
        run()
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            run()
            times.append((time.perf_counter() - started) * 1000)
        per_query[name] = _percentiles(times)
    every = [t for q in per_query.values() for t in q.pop("_samples")]
    return {
        "available": True,
        "queries": per_query,
        "repeats": repeats,
        "overall": {k: v for k, v in _percentiles(every).items() if k != "_samples"},
        "samples": len(every),
    }


def _percentiles(times_ms: list[float]) -> dict:
    ordered = sorted(times_ms)
    if not ordered:
        return {"p50_ms": None, "p95_ms": None, "max_ms": None, "_samples": []}
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(p95, 2),
        "max_ms": round(ordered[-1], 2),
        "_samples": ordered,
    }


# -- step 5: file landed -> breach alert delivered --------------------------------------------


def _wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def _runs(dagster_home: Path) -> list:
    import dagster as dg

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        return list(instance.get_run_records())


def _all_runs_done(dagster_home: Path, at_least: int) -> bool:
    import dagster as dg

    records = _runs(dagster_home)
    done = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
    return len(records) >= at_least and all(r.dagster_run.status in done for r in records)


def alert_latency(landing: Path, received: Path, dagster_home: Path, timeout: float) -> dict:
    """With the Dagster daemon running (landing sensor, run queue, in-process steps) and the
    alert receiver listening: land a file that breaches a takedown SLA and time until the
    breach alert arrives at the receiver. The daemon's first run (it sees the landing for the
    first time) is waited out before the file lands."""
    from bench.live import breach_csv

    as_of = datetime.fromisoformat(os.environ["OCSE_AS_OF"])
    workdir = dagster_home.parent
    # Runs of earlier steps (`ocse run`) are in the same instance; the daemon's first sensor
    # tick starts one more run for the landing it has not seen yet.
    runs_at_start = len(_runs(dagster_home))
    daemon_log = open(workdir / "daemon.log", "wb")  # noqa: SIM115 - closed below
    daemon = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "dagster-daemon"),
            "run",
            "-m",
            "dagster_project.definitions",
        ],
        stdout=daemon_log,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        settled = _wait_for(
            lambda: _all_runs_done(dagster_home, runs_at_start + 1), timeout, interval=1.0
        )
        if not settled:
            return {"error": f"the daemon's first run did not finish within {timeout:.0f}s"}
        runs_before = len(_runs(dagster_home))
        content_id = f"bench-breach-{int(time.time())}"
        target = landing / "screening_hits" / "bench" / f"breach_{content_id}.csv"
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(breach_csv(content_id, as_of, minutes_ago=62))
        landed = time.time()
        os.replace(tmp, target)  # the upstream way: write .tmp, rename when complete

        def delivered() -> bool:
            return received.exists() and content_id in received.read_text(errors="replace")

        ok = _wait_for(delivered, timeout)
        arrived = time.time()
        if not ok:
            return {"error": f"no alert for {content_id} within {timeout:.0f}s"}
        every = _runs(dagster_home)  # newest first
        records = every[: len(every) - runs_before]
        run_started = min((r.start_time for r in records if r.start_time), default=None)
        run_created = min((r.create_timestamp.timestamp() for r in records), default=None)
        return {
            "latency_seconds": round(arrived - landed, 2),
            "sensor_to_run_created_seconds": round(run_created - landed, 2)
            if run_created
            else None,
            "run_start_delay_seconds": round(run_started - landed, 2) if run_started else None,
            "runs_triggered": len(records),
        }
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()
        daemon_log.close()


# -- step 6: the live loop -------------------------------------------------------------------


def live_loop(work: Path, days: int, hits: int, seconds: float) -> dict:
    """The loop as the demo runs it, at this scale's daily rate: data ending now, the Dagster
    daemon with the landing sensor and the pipeline schedule (every minute) both on, a batch
    landing every minute, a CSAM breach file planted every minute. Measured: how long runs
    wait in the queue, how long they take, landed -> alert at the receiver."""
    from bench.live import BIN, PROJECT_ROOT, LiveLoop, stats

    env = {k: v for k, v in os.environ.items() if k not in ("OCSE_AS_OF",)}
    loop = LiveLoop(work=work, env=env, follow_interval=60)
    env = loop.configure()
    started = time.monotonic()
    subprocess.run(
        [str(BIN / "ocse"), "generate", "--seed", "42", "--days", str(days)]
        + ["--scale", str(hits), "--out", str(loop.landing)],
        env=env,
        cwd=PROJECT_ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    generated = time.monotonic() - started
    loop.start()
    try:
        # A daemon that cannot load the definitions requests nothing: say so, do not hang.
        loop.wait_for(
            lambda: loop.pipeline_runs(), 300, f"a first run request (see {loop.logs}/daemon.log)"
        )
        loop.wait_for(lambda: loop.successful_runs() >= 1, 3600, "the first run")
        first_run_done = time.monotonic()
        while time.monotonic() - first_run_done < seconds:
            loop.plant_breach("bench")
            time.sleep(60)
        loop.stop_follow()
        loop.settle(timeout=1800)
        report = loop.report()
    finally:
        loop.stop()
    latencies = [v for v in report.pop("landing_to_alert_seconds").values() if v is not None]
    missed = len(loop.planted) - len(latencies)
    report["landing_to_alert_seconds"] = stats(latencies) | {
        "planted": len(loop.planted),
        "not_alerted": missed,
    }
    report["generate_seconds"] = round(generated, 1)
    report["live_seconds"] = seconds
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.steps")
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("raw_load")
    p.add_argument("--landing", type=Path, required=True)
    p.add_argument("--database", type=Path, required=True)
    p.add_argument("--skip", default="[]", help="JSON list of landing-relative file names")
    p = sub.add_parser("dashboards")
    p.add_argument("--serving", type=Path, required=True)
    p.add_argument("--repeats", type=int, default=20)
    p = sub.add_parser("dashboard_render")
    p.add_argument("--serving", type=Path, required=True)
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--samples", type=int, default=5)
    p.add_argument("--timeout", type=float, default=300, help="seconds per page view at most")
    p.add_argument("--streamlit-log", type=Path, default=None)
    p = sub.add_parser("live_loop")
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--days", type=int, required=True)
    p.add_argument("--hits", type=int, required=True)
    p.add_argument("--seconds", type=float, required=True)
    p = sub.add_parser("alert_latency")
    p.add_argument("--landing", type=Path, required=True)
    p.add_argument("--received", type=Path, required=True)
    p.add_argument("--dagster-home", type=Path, required=True)
    p.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args(argv)
    started = datetime.now(UTC)
    if args.step == "raw_load":
        result = raw_load(args.landing, args.database, set(json.loads(args.skip)))
    elif args.step == "dashboards":
        result = dashboard_queries(args.serving, args.repeats)
    elif args.step == "dashboard_render":
        from bench.render import first_render

        result = first_render(
            args.serving, args.work, args.samples, args.timeout, log=args.streamlit_log
        )
    elif args.step == "live_loop":
        result = live_loop(args.work, args.days, args.hits, args.seconds)
    else:
        result = alert_latency(args.landing, args.received, args.dagster_home, args.timeout)
    result["started_at"] = started.isoformat()
    emit(result)


if __name__ == "__main__":
    main()
