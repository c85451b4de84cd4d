"""`make bench` on the tiny scale S: if the harness broke, the numbers in bench/RESULTS.md
would silently stop being produced, or be produced for steps that did not run. No timing is
asserted: the machine is shared and timings are the benchmark's output, not a test."""

from __future__ import annotations

import json

import pytest

from bench.report import STEP_LABELS
from bench.run import main

pytestmark = pytest.mark.integration

STEPS = ("raw_load", "full_run", "incremental_run", "dashboard_queries", "alert_latency")


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    code = main(
        ["--scale", "S", "--repeats", "2"]
        + ["--results-dir", str(root / "results"), "--markdown", str(root / "RESULTS.md")]
        + ["--work-dir", str(root / "work")]
    )
    results = json.loads((root / "results" / "S.json").read_text())
    return {"code": code, "results": results, "markdown": (root / "RESULTS.md").read_text()}


def test_every_step_ran_and_succeeded(bench_run):
    results = bench_run["results"]
    assert bench_run["code"] == 0, {k: v["ok"] for k, v in results["steps"].items()}
    assert set(results["steps"]) == set(STEPS)
    for name in STEPS:
        step = results["steps"][name]
        assert step["ok"], (name, step)
        assert step["wall_seconds"] > 0, name
        assert step["cpu_seconds"] > 0, name
        # every step is a Python process at least: tens of MiB, far below the machine
        assert 10 * 2**20 < step["peak_tree_rss_bytes"] < 24 * 2**30, name
        assert step["peak_rss_bytes"] <= step["peak_tree_rss_bytes"], name


def test_rows_are_counted_from_what_each_step_did(bench_run):
    steps, generated = bench_run["results"]["steps"], bench_run["results"]["generated"]
    landed = sum(generated["rows"].values())
    # the limit loads every readable file; the pipeline reads every file, bad ones included
    assert 0 < steps["raw_load"]["rows"] <= landed
    assert steps["full_run"]["rows"] >= steps["raw_load"]["rows"]
    # the pipeline records every file in its ledger, the rejected and duplicate ones too
    assert steps["full_run"]["files"] > steps["raw_load"]["files"]
    assert steps["incremental_run"]["rows"] == sum(steps["incremental_run"]["batch_rows"].values())
    assert steps["full_run"]["rows_per_second"] > 0
    ratio = bench_run["results"]["ratio_full_run_to_raw_load"]
    assert ratio == pytest.approx(
        steps["full_run"]["wall_seconds"] / steps["raw_load"]["wall_seconds"], rel=0.01
    )


def test_the_alert_step_measured_a_delivered_breach(bench_run):
    step = bench_run["results"]["steps"]["alert_latency"]
    assert "error" not in step, step.get("error")
    assert step["latency_seconds"] > 0
    assert step["runs_triggered"] >= 1


def test_dashboard_step_reports_percentiles_or_says_why_not(bench_run):
    step = bench_run["results"]["steps"]["dashboard_queries"]
    if not step["available"]:
        assert step["reason"]
        return
    assert step["queries"]
    for name, q in step["queries"].items():
        assert 0 < q["p50_ms"] <= q["p95_ms"] <= q["max_ms"], name


def test_markdown_table_has_a_row_per_step_and_the_targets(bench_run):
    text = bench_run["markdown"]
    assert "### S:" in text
    for label in STEP_LABELS.values():
        assert label in text
    assert "Ratio of step 2 to step 1" in text
