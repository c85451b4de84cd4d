"""`make bench`: the pipeline against this machine's limit, on cached scale sets.

    python -m bench.run --scale M [--scale L ...] [--steps 1,2,3,4,5,7] [--repeats 20]

Per scale, in one run on the same files: (1) DuckDB's bulk load of every feed file into plain
tables, no checks: the limit; (2) `ocse run` from an empty warehouse; (3) `ocse run` after one
more 15-minute batch lands; (4) every dashboard page's queries against the serving snapshot,
p50/p95; (5) file landed -> breach alert delivered, with the Dagster daemon running; (6) at the
scales that name a duration (demo, M): the live loop with the landing sensor and the schedule
both on, for minutes (queue wait, run time, landed -> alert: bench/live.py); (7) every
dashboard page's first render in headless Chromium, signed in as each role (bench/render.py).
Each step
runs in its own process tree: wall time, rows per second and peak memory are measured from
outside. Results: `bench/results/<scale>.json` and the table in `bench/RESULTS.md`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import yaml

from bench.measure import run_measured
from bench.report import evaluate_targets, write_markdown
from bench.scales import (
    BENCH_DIR,
    CACHE_DIR,
    END,
    PROJECT_ROOT,
    SCALES,
    ensure_scale_set,
    working_copy,
)
from bench.steps import RESULT_PREFIX

RESULTS_DIR = BENCH_DIR / "results"
STEP_NAMES = {
    1: "raw_load",
    2: "full_run",
    3: "incremental_run",
    4: "dashboard_queries",
    5: "alert_latency",
    6: "live_loop",
    7: "dashboard_render",
}
BATCH_MINUTES = 15
# Steps that only read the serving snapshot: chosen alone, they reuse the last run's.
READ_ONLY_STEPS = {4, 7}
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alerting_config(dest: Path, http_port: int, smtp_port: int) -> Path:
    """The project's routing, pointed at this run's own receiver (never the demo's)."""
    config = yaml.safe_load((PROJECT_ROOT / "alerting.yaml").read_text())
    for channel in config["channels"].values():
        if channel["type"] == "webhook":
            channel["url"] = f"http://127.0.0.1:{http_port}/alerts"
        else:
            channel["port"] = smtp_port
    dest.write_text(yaml.safe_dump(config, sort_keys=False))
    return dest


def _parse_result(log: Path) -> dict:
    for line in reversed(log.read_text(errors="replace").splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    return {}


def _ledger_rows_since(warehouse: Path, after_file_id: int) -> tuple[int, int, int]:
    """(files, rows read, max file id) of the ledger after `after_file_id`."""
    conn = duckdb.connect(str(warehouse), read_only=True)
    try:
        files, rows, last = conn.execute(
            "select count(*), coalesce(sum(rows_read), 0), coalesce(max(file_id), 0) "
            "from ingest.ledger where file_id > ?",
            [after_file_id],
        ).fetchone()
    finally:
        conn.close()
    return int(files), int(rows), int(last)


def _step_record(name: str, measured, rows: int | None, **extra) -> dict:
    record = {
        "step": name,
        "ok": measured.returncode == 0,
        "returncode": measured.returncode,
        "wall_seconds": round(measured.wall_seconds, 2),
        # CPU time is less sensitive than wall time to other work on the machine.
        "cpu_seconds": round(measured.cpu_seconds, 2),
        "rows": rows,
        "rows_per_second": round(rows / measured.wall_seconds)
        if rows and measured.wall_seconds
        else None,
        "peak_rss_bytes": measured.peak_rss_bytes,
        "peak_tree_rss_bytes": measured.peak_tree_rss_bytes,
        "peak_rss_gib": round(measured.peak_tree_rss_bytes / 2**30, 3),
    }
    record.update(extra)
    return record


def _run_profile(dagster_home: Path, log: Path) -> dict:
    """Where the time of the latest pipeline run went: seconds per Dagster step (from the
    instance's event log) and, per `dbt build` of the run, the slowest dbt nodes (from its
    run_results.json)."""
    import re

    import dagster as dg

    profile: dict = {}
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        records = instance.get_run_records(limit=1)
        if records:
            run = records[0].dagster_run
            stats = instance.get_run_step_stats(run.run_id)
            profile["steps_seconds"] = {
                s.step_key: round(s.end_time - s.start_time, 2)
                for s in sorted(stats, key=lambda s: s.start_time or 0)
                if s.start_time and s.end_time
            }
    # One folder per `dbt build` of the run (two: the alert path, then the rest), named
    # in the log line where dagster-dbt copies the parse into it.
    folders = re.findall(r"to `([^`]*)/partial_parse\.msgpack`", log.read_text(errors="replace"))
    for folder in dict.fromkeys(folders):
        results = Path(folder) / "run_results.json"
        if not results.exists():
            continue
        data = json.loads(results.read_text())
        nodes = sorted(data.get("results", []), key=lambda r: -r.get("execution_time", 0))
        by_type: dict[str, float] = {}
        for r in nodes:
            kind = r["unique_id"].split(".")[0]
            by_type[kind] = by_type.get(kind, 0) + r.get("execution_time", 0)
        # dbt/target/<asset definition>-<run id>-<random>: keyed by the asset definition
        name = Path(folder).name.rsplit("-", 2)[0]
        profile.setdefault("dbt", {})[name] = {
            "elapsed_seconds": round(data.get("elapsed_time", 0), 2),
            "nodes": len(nodes),
            "node_seconds_by_type": {k: round(v, 2) for k, v in by_type.items()},
            "slowest": {r["unique_id"]: round(r["execution_time"], 2) for r in nodes[:8]},
        }
    return profile


def bench_scale(
    scale_name: str,
    steps: set[int],
    repeats: int,
    work: Path | None = None,
    say=print,
    render_samples: int = 5,
) -> dict:
    scale = SCALES[scale_name]
    work = work or CACHE_DIR / f"work-{scale.name}"
    # Steps that only read the serving snapshot reuse the one the last run left in `work`.
    reused = steps <= READ_ONLY_STEPS and (work / "serving.duckdb").exists()
    if reused:
        say(f"steps {sorted(steps)} only: reusing the serving snapshot in {work}")
        reused_at = datetime.fromtimestamp((work / "serving.duckdb").stat().st_mtime, UTC)
    else:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
    if reused:
        _, generation = ensure_scale_set(scale, say)
        landing = work / "landing"
    elif steps - {6}:
        cached, generation = ensure_scale_set(scale, say)
        landing = working_copy(cached, work / "landing")
    else:  # the live loop generates its own data, ending now
        generation = {"note": "step 6 only: its data is generated ending now"}
        landing = work / "landing"
    warehouse, serving = work / "ocse.duckdb", work / "serving.duckdb"
    dagster_home, logs = work / "dagster_home", work / "logs"
    dagster_home.mkdir(exist_ok=True)
    logs.mkdir(exist_ok=True)
    shutil.copy(PROJECT_ROOT / "dagster_project" / "dagster.yaml", dagster_home / "dagster.yaml")
    http_port, smtp_port = _free_port(), _free_port()
    received = work / "alerts_received.jsonl"
    env = {
        **os.environ,
        "OCSE_LANDING_DIR": str(landing),
        "OCSE_WAREHOUSE": str(warehouse),
        "OCSE_SERVING": str(serving),
        "OCSE_LOG_DIR": str(logs),
        "OCSE_ALERTING_CONFIG": str(_alerting_config(work / "alerting.yaml", http_port, smtp_port)),
        # A key for this run only, kept in memory: nothing the benchmark writes is a secret.
        "OCSE_PSEUDONYM_KEY": secrets.token_hex(32),
        "DAGSTER_HOME": str(dagster_home),
        # The schedule would start runs of its own during step 5.
        "OCSE_PIPELINE_INTERVAL_MINUTES": "59",
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    env.pop("OCSE_PSEUDONYM_KEY_FILE", None)
    env.pop("OCSE_AS_OF", None)
    results: dict = {
        "scale": scale.name,
        "scale_note": scale.note,
        "generated": generation,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
            "python": platform.python_version(),
            "duckdb": duckdb.__version__,
            "load_average_at_start": os.getloadavg(),
        },
        "steps": {},
    }
    if reused:
        results["serving_reused"] = {"path": str(work / "serving.duckdb"), "written_at": reused_at}
    receiver = subprocess.Popen(
        [str(BIN / "ocse"), "alerts", "receive", "--out", str(received)]
        + ["--http-port", str(http_port), "--smtp-port", str(smtp_port)],
        env=env,
        stdout=open(logs / "receiver.log", "wb"),  # noqa: SIM115 - lives as long as the process
        stderr=subprocess.STDOUT,
    )
    try:
        _run_steps(scale, steps, repeats, env, work, generation, results, say, render_samples)
    finally:
        receiver.terminate()
        receiver.wait(timeout=30)
    results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["load_average_at_end"] = os.getloadavg()
    results["targets"] = evaluate_targets(results)
    return results


def _run_steps(
    scale, steps, repeats, env, work, generation, results, say, render_samples=5
) -> None:
    landing, warehouse, serving = work / "landing", work / "ocse.duckdb", work / "serving.duckdb"
    logs = work / "logs"
    out = results["steps"]
    python = str(Path(sys.executable))

    if 1 in steps:
        say("step 1: DuckDB bulk load of every feed file (the limit)")
        skip = [b["path"] for kinds in generation["bad_files"].values() for b in kinds]
        m = run_measured(
            [python, "-m", "bench.steps", "raw_load", "--landing", str(landing)]
            + ["--database", str(work / "raw_load.duckdb"), "--skip", json.dumps(skip)],
            env=env,
            log=logs / "1_raw_load.log",
            cwd=PROJECT_ROOT,
        )
        detail = _parse_result(logs / "1_raw_load.log")
        out["raw_load"] = _step_record(
            "raw_load",
            m,
            detail.get("rows"),
            files=detail.get("files"),
            tables=detail.get("tables"),
        )
        (work / "raw_load.duckdb").unlink(missing_ok=True)
        _say_step(say, out["raw_load"])

    as_of_full = END
    if 2 in steps:
        say("step 2: ocse run from an empty warehouse")
        m = run_measured(
            [str(BIN / "ocse"), "run", "--as-of", as_of_full.isoformat()],
            env=env,
            log=logs / "2_full_run.log",
            cwd=PROJECT_ROOT,
        )
        files, rows, _ = _ledger_rows_since(warehouse, 0) if warehouse.exists() else (0, 0, 0)
        out["full_run"] = _step_record(
            "full_run",
            m,
            rows,
            files=files,
            as_of=as_of_full.isoformat(),
            profile=_run_profile(work / "dagster_home", logs / "2_full_run.log"),
        )
        _say_step(say, out["full_run"])
        if "raw_load" in out and out["raw_load"]["wall_seconds"]:
            results["ratio_full_run_to_raw_load"] = round(
                out["full_run"]["wall_seconds"] / out["raw_load"]["wall_seconds"], 2
            )

    as_of_incr = as_of_full + timedelta(minutes=BATCH_MINUTES)
    if 3 in steps and out.get("full_run", {}).get("ok"):
        say(f"step 3: one more {BATCH_MINUTES}-minute batch lands, incremental ocse run")
        from sample_data.generator import follow_batch, read_state

        state = read_state(landing)
        batch = follow_batch(
            landing,
            seed=int(state["seed"]),
            batch_start=as_of_full,
            batch_end=as_of_incr,
            scale_per_day=float(state["scale_per_day"]),
            batch_no=int(state["batch_no"]) + 1,
        )
        _, _, before = _ledger_rows_since(warehouse, 0)
        m = run_measured(
            [str(BIN / "ocse"), "run", "--as-of", as_of_incr.isoformat()],
            env=env,
            log=logs / "3_incremental_run.log",
            cwd=PROJECT_ROOT,
        )
        files, rows, _ = _ledger_rows_since(warehouse, before)
        out["incremental_run"] = _step_record(
            "incremental_run",
            m,
            rows,
            files=files,
            batch_rows=batch["rows"],
            as_of=as_of_incr.isoformat(),
            profile=_run_profile(work / "dagster_home", logs / "3_incremental_run.log"),
        )
        _say_step(say, out["incremental_run"])

    if 4 in steps and serving.exists():
        say(f"step 4: dashboard page queries against the serving snapshot, x{repeats}")
        m = run_measured(
            [python, "-m", "bench.steps", "dashboards", "--serving", str(serving)]
            + ["--repeats", str(repeats)],
            env=env,
            log=logs / "4_dashboards.log",
            cwd=PROJECT_ROOT,
        )
        detail = _parse_result(logs / "4_dashboards.log")
        detail.pop("started_at", None)
        out["dashboard_queries"] = _step_record(
            "dashboard_queries", m, detail.pop("rows", None), **detail
        )
        _say_step(say, out["dashboard_queries"])

    if 5 in steps and out.get("full_run", {}).get("ok"):
        say("step 5: file landed -> breach alert delivered, daemon running")
        env5 = {**env, "OCSE_AS_OF": (as_of_incr + timedelta(minutes=1)).isoformat()}
        m = run_measured(
            [python, "-m", "bench.steps", "alert_latency", "--landing", str(landing)]
            + ["--received", str(work / "alerts_received.jsonl")]
            + ["--dagster-home", str(work / "dagster_home")],
            env=env5,
            log=logs / "5_alert_latency.log",
            cwd=PROJECT_ROOT,
        )
        detail = _parse_result(logs / "5_alert_latency.log")
        detail.pop("started_at", None)
        out["alert_latency"] = _step_record("alert_latency", m, detail.pop("rows", None), **detail)
        out["alert_latency"]["ok"] = m.returncode == 0 and "error" not in detail
        _say_step(say, out["alert_latency"])

    if 7 in steps and serving.exists():
        say(f"step 7: every dashboard page's first render in headless Chromium, x{render_samples}")
        m = run_measured(
            [python, "-m", "bench.steps", "dashboard_render", "--serving", str(serving)]
            + ["--work", str(work / "render"), "--samples", str(render_samples)]
            + ["--streamlit-log", str(logs / "7_streamlit.log")],
            env=env,
            log=logs / "7_dashboard_render.log",
            cwd=PROJECT_ROOT,
        )
        detail = _parse_result(logs / "7_dashboard_render.log")
        detail.pop("started_at", None)
        out["dashboard_render"] = _step_record("dashboard_render", m, None, **detail)
        out["dashboard_render"]["ok"] = (
            m.returncode == 0 and bool(detail.get("available")) and not detail.get("errors")
        )
        _say_step(say, out["dashboard_render"])

    elif 7 in steps:
        say("step 7 skipped: no serving snapshot (choose step 2 with it, or 7 alone after a run)")

    if 6 in steps and scale.live_seconds:
        say(
            f"step 6: the live loop for {scale.live_seconds} s (daemon, sensor and schedule on, "
            "a batch and a breach every minute), on data ending now"
        )
        live_env = {k: v for k, v in env.items() if k != "OCSE_PIPELINE_INTERVAL_MINUTES"}
        m = run_measured(
            [python, "-m", "bench.steps", "live_loop", "--work", str(work / "live")]
            + ["--days", str(scale.days), "--hits", str(scale.hits)]
            + ["--seconds", str(scale.live_seconds)],
            env=live_env,
            log=logs / "6_live_loop.log",
            cwd=PROJECT_ROOT,
        )
        detail = _parse_result(logs / "6_live_loop.log")
        detail.pop("started_at", None)
        out["live_loop"] = _step_record("live_loop", m, None, **detail)
        _say_step(say, out["live_loop"])


def _say_step(say, record: dict) -> None:
    extra = ""
    if record["step"] == "alert_latency" and record.get("latency_seconds") is not None:
        extra = f", latency {record['latency_seconds']}s"
    if record["step"] == "dashboard_queries" and not record.get("available", True):
        extra = f" ({record.get('reason')})"
    if record["step"] == "dashboard_render":
        from bench.report import render_detail

        extra = f": {render_detail(record)}"
    say(
        f"  {record['step']}: {'ok' if record['ok'] else 'FAILED'} in {record['wall_seconds']}s, "
        f"{record['rows'] or 0:,} rows, peak {record['peak_rss_gib']} GiB{extra}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--scale", action="append", choices=sorted(SCALES), required=True)
    parser.add_argument(
        "--steps",
        default="1,2,3,4,5,6,7",
        help="comma-separated step numbers (6 runs only at scales with a live duration); "
        "they run in the order 1-5, 7, 6",
    )
    parser.add_argument("--repeats", type=int, default=20, help="runs per dashboard query")
    parser.add_argument(
        "--render-samples",
        type=int,
        default=5,
        help="page views per page and role in step 7 (the first with cold caches)",
    )
    parser.add_argument(
        "--results-dir", type=Path, default=RESULTS_DIR, help="where <scale>.json goes"
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="scratch folder of a run (default bench/.cache/work-<scale>)",
    )
    parser.add_argument(
        "--markdown",
        type=Path,
        default=BENCH_DIR / "RESULTS.md",
        help="the Markdown table of every results file in --results-dir",
    )
    args = parser.parse_args(argv)
    # A stopped benchmark still stops the receiver and the daemon it started (finally blocks).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    steps = {int(s) for s in args.steps.split(",") if s.strip()}
    args.results_dir.mkdir(parents=True, exist_ok=True)
    failed = False
    for name in args.scale:
        started = time.perf_counter()
        work = args.work_dir / name if args.work_dir else None
        results = bench_scale(name, steps, args.repeats, work, render_samples=args.render_samples)
        results["bench_seconds"] = round(time.perf_counter() - started, 1)
        path = args.results_dir / f"{name}.json"
        if path.exists() and steps != set(STEP_NAMES):
            # A run of some steps only: the other steps' results of the earlier run are kept,
            # and say when they were measured.
            earlier = json.loads(path.read_text())
            for key, step in earlier.get("steps", {}).items():
                if key not in results["steps"]:
                    step.setdefault("measured_at", earlier.get("started_at"))
                    results["steps"][key] = step
            for key in ("ratio_full_run_to_raw_load", "generated"):
                if key in earlier and (key not in results or "note" in results[key]):
                    results[key] = earlier[key]
            results["targets"] = evaluate_targets(results)
        path.write_text(json.dumps(results, indent=2, default=str) + "\n")
        write_markdown(args.results_dir, args.markdown)
        print(f"results: {path}  table: {args.markdown}")
        failed |= not all(s["ok"] for s in results["steps"].values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
