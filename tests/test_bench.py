"""`make bench` on the tiny scale S: if the harness broke, the numbers in bench/RESULTS.md
would silently stop being produced, or be produced for steps that did not run. No timing is
asserted: the machine is shared and timings are the benchmark's output, not a test.

The first-render step's arithmetic and reporting (`bench/render.py`, `bench/report.py`) are
also checked on made-up samples, without a browser (those tests are not `integration`)."""

from __future__ import annotations

import json

import pytest

from bench.render import _measure_role, drawn, page_paths, summarise
from bench.report import STEP_LABELS, evaluate_targets, scale_table
from bench.run import _parse_result, main
from bench.steps import RESULT_PREFIX
from ocse.access import ROLES, pages_for
from tests.browser import chromium_path

integration = pytest.mark.integration

STEPS = ("raw_load", "full_run", "incremental_run", "dashboard_queries", "alert_latency")
STEPS += ("dashboard_render",) if chromium_path() else ()
RENDER_SAMPLES = 2


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    code = main(
        ["--scale", "S", "--repeats", "2", "--render-samples", str(RENDER_SAMPLES)]
        + ["--results-dir", str(root / "results"), "--markdown", str(root / "RESULTS.md")]
        + ["--work-dir", str(root / "work")]
    )
    results = json.loads((root / "results" / "S.json").read_text())
    return {"code": code, "results": results, "markdown": (root / "RESULTS.md").read_text()}


@integration
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


@integration
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


@integration
def test_the_alert_step_measured_a_delivered_breach(bench_run):
    step = bench_run["results"]["steps"]["alert_latency"]
    assert "error" not in step, step.get("error")
    assert step["latency_seconds"] > 0
    assert step["runs_triggered"] >= 1


@integration
def test_dashboard_step_reports_percentiles_or_says_why_not(bench_run):
    step = bench_run["results"]["steps"]["dashboard_queries"]
    if not step["available"]:
        assert step["reason"]
        return
    assert step["queries"]
    for name, q in step["queries"].items():
        assert 0 < q["p50_ms"] <= q["p95_ms"] <= q["max_ms"], name


@integration
def test_markdown_table_has_a_row_per_step_and_the_targets(bench_run):
    text = bench_run["markdown"]
    assert "### S:" in text
    for label in STEP_LABELS.values():
        assert label in text
    assert "Ratio of step 2 to step 1" in text


@integration
def test_first_render_step_viewed_every_page_of_every_role(bench_run):
    step = bench_run["results"]["steps"].get("dashboard_render")
    if step is None or not step["available"]:
        pytest.skip("Chromium is not installed")
    assert step["ok"] and not step["errors"], step["errors"]
    assert set(step["roles"]) == set(ROLES)
    for role in ROLES:
        assert set(step["roles"][role]) == set(pages_for(role)), role
        for page, row in step["roles"][role].items():
            assert row["samples"] == RENDER_SAMPLES, (role, page)
    assert set(step["pages"]) == {p for r in ROLES for p in pages_for(r)}
    assert "First render per page (step 7)" in bench_run["markdown"]
    for page in step["pages"]:
        assert f"| {page} |" in bench_run["markdown"]


# --- step 7 without a browser: what is counted as drawn, and what is reported -------------

DRAWN = {
    "path": "/sla",
    "script": "notRunning",
    "status": False,
    "stale": False,
    "h1": True,
    "exception": False,
}


@pytest.mark.parametrize(
    "change",
    [
        {"path": "/"},  # still the page before: Streamlit has not navigated yet
        {"script": "running"},
        {"script": "initial"},
        {"status": True},  # the run is over but the status widget has not gone yet
        {"stale": True},  # elements of the page before are still on screen
        {"h1": False},
    ],
    ids=lambda c: next(iter(c)),
)
def test_a_page_is_drawn_only_when_its_run_is_over_and_nothing_stale_is_left(change):
    assert drawn(DRAWN, "/sla")
    assert not drawn({**DRAWN, **change}, "/sla")


def test_menu_links_name_their_pages_and_the_root_is_the_first_page():
    links = ["/", "/sla", "/methodology"]
    assert page_paths(links, ["overview", "sla", "methodology"]) == {
        "overview": "/",
        "sla": "/sla",
        "methodology": "/methodology",
    }
    # the app served under a path prefix
    assert page_paths(["/ocse/", "/ocse/sla"], ["overview", "sla"]) == {
        "overview": "/ocse/",
        "sla": "/ocse/sla",
    }
    assert page_paths(["/sla"], ["overview", "sla"]) == {"sla": "/sla"}  # overview missing


SAMPLES = {
    "leadership": {"overview": [900.0, 300.0, 310.0, 320.0, 330.0], "sla": [700.0, 200.0]},
    "admin": {"overview": [1500.0, 400.0, 410.0, 420.0, 1900.0], "access_log": [100.0, 90.0]},
}


def test_summary_per_role_and_page_cold_first_then_percentiles():
    result = summarise(SAMPLES, errors=[])
    row = result["roles"]["admin"]["overview"]
    assert row["cold_ms"] == 1500.0  # the first sample, whatever the others
    assert row["samples"] == 5 and row["p50_ms"] == 420.0
    assert row["p95_ms"] == row["max_ms"] == 1900.0
    page = result["pages"]["overview"]
    assert page["roles"] == ["leadership", "admin"]
    assert page["cold_ms"] == 1500.0  # the slowest role's cold view
    assert page["samples"] == 10  # p50 / p95 over every role's samples
    assert page["p50_ms"] == pytest.approx((400.0 + 410.0) / 2)
    assert page["slowest_role"] == "admin"
    assert result["worst_page"] == "overview"
    assert result["worst_p95_ms"] == page["p95_ms"]
    assert result["page_views"] == 14
    assert set(result["pages"]) == {"overview", "sla", "access_log"}


def test_a_page_whose_every_view_failed_is_reported_as_an_error_not_a_time():
    errors = [{"role": "admin", "page": "sla", "sample": 0, "error": "stException on sla"}]
    result = summarise({"admin": {"overview": [500.0], "sla": []}}, errors)
    assert "sla" not in result["pages"]
    assert result["errors"] == errors


def _results(scale: str, render: dict) -> dict:
    step = {
        "step": "dashboard_render",
        "ok": not render.get("errors"),
        "returncode": 0,
        "wall_seconds": 120.0,
        "cpu_seconds": 80.0,
        "rows": None,
        "rows_per_second": None,
        "peak_rss_bytes": 2**30,
        "peak_tree_rss_bytes": 2**31,
        "peak_rss_gib": 2.0,
        **render,
    }
    return {
        "scale": scale,
        "scale_note": "made up",
        "generated": {},
        "started_at": "2025-01-01T00:00:00+00:00",
        "machine": {"load_average_at_start": [1.0, 1.0, 1.0]},
        "steps": {"dashboard_render": step},
    }


def test_the_per_page_table_and_the_target_of_the_slowest_page():
    render = summarise(SAMPLES, errors=[]) | {"samples_per_page": 5}
    lines = "\n".join(scale_table(_results("L", render)))
    assert "| 7. dashboard first render, headless Chromium | yes |" in lines
    assert "slowest page overview" in lines
    assert "| overview | 1,500 | 405 | 1,900 | 1,900 | 2 | admin (1,500 / 1,900) |" in lines
    assert "| access_log |" in lines and "| sla |" in lines
    target = evaluate_targets(_results("L", render))["render_p95_seconds"]
    assert target["value"] == 1.9 and target["met"] is True
    assert "| L first render of every page p95 < 2 s (slowest page) | 1.90 | yes |" in lines
    slow = summarise({"admin": {"overview": [2500.0, 2400.0]}}, errors=[])
    assert evaluate_targets(_results("L", slow))["render_p95_seconds"]["met"] is False
    # the target is the for L; other scales report the table only
    assert "render_p95_seconds" not in evaluate_targets(_results("M", render))


def test_an_unavailable_or_failed_render_step_says_why():
    missing = {"available": False, "reason": "Chromium is not installed"}
    lines = "\n".join(scale_table(_results("L", missing)))
    assert "Chromium is not installed" in lines and "First render per page" not in lines
    assert evaluate_targets(_results("L", missing))["render_p95_seconds"]["met"] is None
    errors = [{"role": "admin", "page": "sla", "sample": 0, "error": "stException on sla"}]
    failed = summarise({"admin": {"overview": [500.0], "sla": []}}, errors)
    lines = "\n".join(scale_table(_results("M", failed)))
    assert "**1 errors** (first: admin/sla: stException on sla)" in lines


def test_the_step_result_line_is_parsed_from_its_log(tmp_path):
    render = summarise(SAMPLES, errors=[]) | {"samples_per_page": 5}
    log = tmp_path / "7_dashboard_render.log"
    log.write_text(
        "streamlit noise\n" + RESULT_PREFIX + json.dumps(render) + "\nnanobind: leaked 3\n"
    )
    assert _parse_result(log) == json.loads(json.dumps(render))


class FakeTimer:
    """Stands in for the browser: records what step 7 asks of it, in order."""

    def __init__(self, start: str, fail: set[str] = frozenset()) -> None:
        self.at, self.fail, self.log, self.cleared = start, fail, [], set()

    def current(self) -> str:
        return self.at

    def clear_caches(self) -> None:
        self.log.append(("clear", None))
        self.cleared = set()

    def open(self, page: str) -> float:
        assert page != self.at, "a view is a navigation from another page"
        warm = page in self.cleared
        self.log.append(("open", page, warm))
        self.at = page
        self.cleared.add(page)  # its queries are cached now
        if page in self.fail:
            raise RuntimeError(f"stException on {page}")
        return 100.0 if warm else 900.0


def test_one_cold_view_per_page_then_warm_ones_never_the_refill_round():
    pages = ["overview", "sla", "methodology"]
    timer, times, errors = FakeTimer(start="overview"), {p: [] for p in pages}, []
    _measure_role(timer, "leadership", pages, 4, times, errors)
    assert not errors
    # every page: its first view cold (caches cleared just before), the 3 others warm
    assert times == {page: [900.0, 100.0, 100.0, 100.0] for page in pages}
    assert [e for e in timer.log if e[0] == "clear"] == [("clear", None)] * len(pages)
    cleared_then = [timer.log[i + 1] for i, e in enumerate(timer.log) if e[0] == "clear"]
    assert [e[1] for e in cleared_then] == pages


def test_a_page_that_fails_its_cold_view_is_left_out_of_the_rounds():
    pages = ["research", "methodology"]
    timer, times, errors = FakeTimer(start="research", fail={"research"}), {}, []
    times = {p: [] for p in pages}
    _measure_role(timer, "researcher", pages, 3, times, errors)
    assert times["research"] == [] and len(times["methodology"]) == 3
    assert errors == [
        {"role": "researcher", "page": "research", "sample": 0, "error": "stException on research"}
    ]
