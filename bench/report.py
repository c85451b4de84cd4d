"""The issue's targets, and the Markdown table of every results file (`bench/RESULTS.md`)."""

from __future__ import annotations

import json
from pathlib import Path

GIB = 2**30


def _wall(step: str):
    return lambda _r, s: s.get(step, {}).get("wall_seconds") if s.get(step, {}).get("ok") else None


def _peak_gib(_r, steps) -> float | None:
    peaks = [s["peak_tree_rss_bytes"] / GIB for s in steps.values() if s.get("peak_tree_rss_bytes")]
    return round(max(peaks), 2) if peaks else None


def _dashboard_p95(_r, steps) -> float | None:
    """The p95 of the slowest query: every page's queries must meet the target, not their
    pooled samples."""
    step = steps.get("dashboard_queries", {})
    if not step.get("available") or not step.get("queries"):
        return None
    return max(q["p95_ms"] for q in step["queries"].values())


def _render_p95(_r, steps) -> float | None:
    """The p95 of the slowest page, in seconds: every page must meet the target."""
    step = steps.get("dashboard_render", {})
    if not step.get("available") or not step.get("pages"):
        return None
    return round(max(p["p95_ms"] for p in step["pages"].values()) / 1000, 2)


def _alert_latency(_r, steps) -> float | None:
    step = steps.get("alert_latency", {})
    return step.get("latency_seconds") if step.get("ok") else None


# key: (label, scales it applies to, value getter, upper limit)
TARGETS = {
    "full_run_seconds": ("L full run from empty < 120 s", {"L"}, _wall("full_run"), 120),
    "full_to_raw_ratio": (
        "L full run <= 10 x raw load",
        {"L"},
        lambda r, _s: r.get("ratio_full_run_to_raw_load"),
        10,
    ),
    "incremental_seconds": (
        "L incremental 15-minute batch < 15 s",
        {"L"},
        _wall("incremental_run"),
        15,
    ),
    "dashboard_p95_ms": (
        "L dashboard queries p95 < 200 ms (slowest query)",
        {"L"},
        _dashboard_p95,
        200,
    ),
    "render_p95_seconds": (
        "L first render of every page p95 < 2 s (slowest page)",
        {"L"},
        _render_p95,
        2,
    ),
    "peak_memory_gib": ("L peak memory < 8 GiB", {"L"}, _peak_gib, 8),
    "xl_peak_memory_gib": ("XL completes without running out of memory", {"XL"}, _peak_gib, 24),
    # Issue 4's target, measured here (step 5) at every scale.
    "alert_latency_seconds": (
        "file landed -> breach alert delivered < 60 s (issue 4)",
        {"S", "demo", "M", "L", "XL"},
        _alert_latency,
        60,
    ),
}

STEP_LABELS = {
    "raw_load": "1. DuckDB bulk load (the limit)",
    "full_run": "2. `ocse run` from empty",
    "incremental_run": "3. incremental run, one 15-min batch",
    "dashboard_queries": "4. dashboard queries",
    "alert_latency": "5. file landed → breach alert",
    "live_loop": "6. live loop, sensor + schedule on",
    "dashboard_render": "7. dashboard first render, headless Chromium",
}


def _fmt(value, unit: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.2f}{unit}"
    return f"{value:,}{unit}"


def _ms(value) -> str:
    return "–" if value is None else f"{value:,.0f}"


def render_detail(step: dict) -> str:
    """Step 7 in one line (the per-page table follows the scale's table)."""
    if not step.get("available"):
        return step.get("reason", "not available")
    text = (
        f"{step.get('page_views', 0)} page views, {len(step.get('pages', {}))} pages x "
        f"{len(step.get('roles', {}))} roles, {step.get('samples_per_page')} samples each; "
        f"slowest page {step.get('worst_page')}: p95 {_ms(step.get('worst_p95_ms'))} ms"
    )
    errors = step.get("errors") or []
    if errors:
        first = errors[0]
        text += f"; **{len(errors)} errors** (first: {first.get('role')}/{first.get('page')}: "
        text += f"{first.get('error', '')[:120]})"
    return text


def render_table(step: dict) -> list[str]:
    """Per page: the cold first render (the slowest role's), p50 and p95 over the samples of
    every role that may open it, in milliseconds."""
    if not step.get("available") or not step.get("pages"):
        return []
    lines = [
        "",
        f"First render per page (step 7), ms: cold = caches cleared (the slowest role's), "
        f"p50 / p95 over {step.get('samples_per_page')} samples per role (the first cold), "
        "all roles that may open the page:",
        "",
        "| page | cold | p50 | p95 | max | roles | slowest role (its cold / p95) |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for page, row in step["pages"].items():
        slow = row.get("slowest_role")
        own = step.get("roles", {}).get(slow, {}).get(page, {})
        lines.append(
            f"| {page} | {_ms(row['cold_ms'])} | {_ms(row['p50_ms'])} | {_ms(row['p95_ms'])} "
            f"| {_ms(row.get('max_ms'))} | {len(row.get('roles', []))} "
            f"| {slow} ({_ms(own.get('cold_ms'))} / {_ms(own.get('p95_ms'))}) |"
        )
    return lines


def _detail(step: dict) -> str:
    name = step["step"]
    if name == "dashboard_render":
        return render_detail(step)
    if name == "dashboard_queries":
        if not step.get("available"):
            return step.get("reason", "not available")
        o = step["overall"]
        return f"p50 {o['p50_ms']} ms, p95 {o['p95_ms']} ms over {len(step['queries'])} queries"
    if name == "alert_latency":
        if step.get("error"):
            return step["error"]
        return f"latency {step.get('latency_seconds')} s"
    if name == "live_loop":
        wait, run, alert = (
            step.get("queue_wait_seconds", {}),
            step.get("run_seconds", {}),
            step.get("landing_to_alert_seconds", {}),
        )
        return (
            f"{step.get('live_seconds')} s live, runs {step.get('runs')}: queue wait median "
            f"{wait.get('median')} s / max {wait.get('max')} s; run median {run.get('median')} s "
            f"/ p95 {run.get('p95')} s; landed -> alert median {alert.get('median')} s / max "
            f"{alert.get('max')} s ({alert.get('not_alerted')} of {alert.get('planted')} not "
            f"alerted); waiting at once max {step.get('max_waiting')}"
        )
    if name in ("full_run", "incremental_run"):
        return f"{step.get('files', 0):,} files"
    if name == "raw_load":
        return f"{step.get('files', 0):,} files"
    return ""


def evaluate_targets(results: dict) -> dict:
    """Each target of the issue: the measured value and whether it is met (None: not measured
    at this scale or the step did not run)."""
    steps, verdicts = results["steps"], {}
    for key, (label, scales, getter, limit) in TARGETS.items():
        if results["scale"] not in scales:
            continue
        value = getter(results, steps)
        verdicts[key] = {
            "target": label,
            "value": value,
            "met": None if value is None else value <= limit,
        }
    return verdicts


def _load(values) -> str:
    return ", ".join(f"{x:.2f}" for x in values)


def scale_table(results: dict) -> list[str]:
    gen = results.get("generated", {})
    lines = [
        f"### {results['scale']}: {results.get('scale_note', '')}",
        "",
        f"Landed rows (every version): {_fmt(sum(gen.get('rows', {}).values()))} in "
        f"{_fmt(sum(gen.get('files', {}).values()))} files; run {results['started_at']} "
        f"(load average at start {_load(results['machine']['load_average_at_start'])}).",
        "",
        "| step | ok | wall (s) | CPU (s) | rows | rows/s | peak RSS, tree (GiB) | detail |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for key, label in STEP_LABELS.items():
        step = results["steps"].get(key)
        if step is None:
            lines.append(f"| {label} | not run | | | | | | |")
            continue
        lines.append(
            f"| {label} | {'yes' if step['ok'] else '**no**'} | {_fmt(step['wall_seconds'])} "
            f"| {_fmt(step.get('cpu_seconds'))} "
            f"| {_fmt(step['rows'])} | {_fmt(step['rows_per_second'])} "
            f"| {_fmt(step['peak_rss_gib'])} | {_detail(step)} |"
        )
    if "dashboard_render" in results["steps"]:
        lines += render_table(results["steps"]["dashboard_render"])
    ratio = results.get("ratio_full_run_to_raw_load")
    lines += ["", f"Ratio of step 2 to step 1: **{_fmt(ratio)}**."]
    targets = evaluate_targets(results)
    if targets:
        lines += ["", "| target | measured | met |", "|---|---:|---|"]
        for t in targets.values():
            met = {True: "yes", False: "**no**", None: "not measured"}[t["met"]]
            lines.append(f"| {t['target']} | {_fmt(t['value'])} | {met} |")
    lines.append("")
    return lines


def write_markdown(results_dir: Path, dest: Path) -> None:
    order = {"S": 0, "demo": 1, "M": 2, "L": 3, "XL": 4}
    files = sorted(results_dir.glob("*.json"), key=lambda p: order.get(p.stem, 9))
    lines = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`python -m bench.run`); see `bench/README.md` for what each "
        "step measures. Timings are wall-clock on a shared 2-core machine: other work ran at "
        "the same time, so they are noisy; the load average is recorded with each run. Peak "
        "RSS is the largest sampled sum over the step's whole process tree.",
        "",
    ]
    for path in files:
        lines += scale_table(json.loads(path.read_text()))
    notes = dest.with_name("NOTES.md")
    if notes.exists():
        lines += [
            "",
            f"What bounds each step, and the missed targets: [{notes.name}]({notes.name}).",
        ]
    dest.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    # Re-render bench/RESULTS.md from the results files (no measurement is repeated).
    here = Path(__file__).resolve().parent
    write_markdown(here / "results", here / "RESULTS.md")
