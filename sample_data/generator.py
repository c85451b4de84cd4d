"""Deterministic sample landing data for the OCSE warehouse.

`generate` writes a whole period, day window by day window: it simulates what starts in
the window (content detected, reports received and all that follows from them), cuts the
lives into versions, delivers the versions that happened by the window's end and keeps the
later ones in a small pending buffer for the windows to come. Memory therefore follows the
daily volume and the lag between events, never the length of the period. At the end the
versions that lie in the future stay pending in `<out>/.ocse_generator/`, and
`follow_batch` delivers them as time passes, together with new activity, so that open
clocks, near-breaches and breaches appear and clear in a live demo.

Same arguments, same bytes: all randomness is drawn from numpy Generators seeded by the seed
and the coordinates of what is drawn (the day, the batch, the file), never from the clock.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import polars as pl

from sample_data.formats import write_atomic
from sample_data.ids import DAY_SHIFT, FOLLOW_FLAG, FOLLOW_SHIFT, SCENARIO_FLAG, IdMaker
from sample_data.landing import SUMMARY, LandingWriter, Stats
from sample_data.rhythm import (
    DAY,
    MEAN_DAY_WEIGHT,
    TZ_OFFSET,
    allocate,
    day_windows,
    local_day,
    plan_spikes,
    window_weight,
)
from sample_data.scenario import live_edge, slow_takedown
from sample_data.schema import CATEGORY_CODES, FEEDS
from sample_data.simulate import Counters, Population, Records, window_records
from sample_data.versions import explode

STATE_DIR = ".ocse_generator"
STATE_FILE = "state.json"
# Reports nobody's screening flagged, per screening hit; reports about flagged content come
# on top (about a quarter of all reports), for about one report per ten hits in total.
STANDALONE_REPORTS_PER_HIT = 0.075
PLAN_TAG, DAY_TAG, EDGE_TAG, FOLLOW_TAG = 0x9A, 0xDA, 0xED, 0xF0
CREATED_AT = {
    "screening_hits": "detected_at",
    "reports": "received_at",
    "enforcement_actions": "actioned_at",
    "cases": "opened_at",
}


def iso(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch(value: datetime | int) -> int:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"{value.isoformat()} has no offset; give one, e.g. ...Z or +08:00")
        return int(value.timestamp() // 1)
    return int(value)


def resolve_period(days: int, start: date | None, end: datetime | None) -> tuple[int, int]:
    """(start, end) epoch seconds. --start: from that date's Asia/Shanghai midnight for
    `days` days; otherwise the `days` before `end` (default: now, down to the minute)."""
    if days < 1:
        raise ValueError("days must be at least 1")
    if start is not None:
        if end is not None:
            raise ValueError("give a start date or an end time, not both")
        midnight = int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp())
        first = midnight - TZ_OFFSET
        return first, first + days * DAY
    if end is None:
        end = datetime.now(UTC).replace(second=0, microsecond=0)
    last = _epoch(end)
    return last - days * DAY, last


def _merge(records: Records, extra: Records) -> Records:
    def one(a: pl.DataFrame, b: pl.DataFrame) -> pl.DataFrame:
        frames = [f for f in (a, b) if f.width]
        return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()

    return Records(
        one(records.hits, extra.hits),
        one(records.reports, extra.reports),
        one(records.actions, extra.actions),
        one(records.cases, extra.cases),
    )


def _frames(records: Records) -> tuple[pl.DataFrame, ...]:
    return records.hits, records.reports, records.actions, records.cases


def _split(pending: pl.DataFrame | None, versions: pl.DataFrame, until: int):
    """(versions due by `until`, versions still in the future)."""
    frames = [f for f in (pending, versions) if f is not None and f.width]
    if not frames:
        return pl.DataFrame(), None
    combined = pl.concat(frames, how="vertical_relaxed")
    due = pl.col("updated_at") <= until
    return combined.filter(due), combined.filter(~due)


def _state_dir(out: Path) -> Path:
    return out / STATE_DIR


def read_state(out: Path) -> dict | None:
    path = _state_dir(out) / STATE_FILE
    return json.loads(path.read_text()) if path.exists() else None


def _save_pending(out: Path, pending: dict[str, pl.DataFrame | None]) -> dict[str, int]:
    counts = {}
    for feed in FEEDS:
        frame = pending.get(feed.name)
        path = _state_dir(out) / f"pending_{feed.name}.parquet"
        if frame is None or frame.width == 0:
            path.unlink(missing_ok=True)
            counts[feed.name] = 0
            continue
        frame = frame.sort(["updated_at", feed.key])
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        frame.write_parquet(tmp, statistics=False)
        tmp.replace(path)
        counts[feed.name] = frame.height
    return counts


def _load_pending(out: Path) -> dict[str, pl.DataFrame | None]:
    pending: dict[str, pl.DataFrame | None] = {}
    for feed in FEEDS:
        path = _state_dir(out) / f"pending_{feed.name}.parquet"
        pending[feed.name] = pl.read_parquet(path) if path.exists() else None
    return pending


def _write_state(out: Path, state: dict) -> None:
    write_atomic(_state_dir(out) / STATE_FILE, (json.dumps(state, indent=2) + "\n").encode())


def generate(
    out: Path,
    *,
    seed: int,
    days: int,
    scale: int,
    start: date | None = None,
    end: datetime | None = None,
    bad_share: float = 0.01,
    progress: Callable[[str], None] | None = print,
) -> dict:
    """Write the landing feeds for a whole period into `out`; return the run's summary.

    `scale` is the number of screening hits over the period (reports, actions and cases
    follow at about 1/10, 1/4 and 1/100 of it). Refuses an `out` that already holds a
    generated landing: files there are written once and never changed.
    """
    out = Path(out)
    if read_state(out) is not None:
        raise FileExistsError(
            f"{out} already holds generated data; use another folder, delete it, or "
            "continue it with --follow"
        )
    if seed < 0 or scale < 0 or not 0 <= bad_share < 0.5:
        raise ValueError("seed and scale must be >= 0 and bad_share in [0, 0.5)")
    say = progress or (lambda _line: None)
    clock = time.perf_counter()
    t_start, t_end = resolve_period(days, start, end)
    spikes = plan_spikes(np.random.default_rng([seed, PLAN_TAG]), t_start, t_end)
    windows = day_windows(t_start, t_end)
    hits_per = allocate(np.array([window_weight(a, b, spikes) for a, b in windows]), scale)
    reports_per = allocate(
        np.array([window_weight(a, b, spikes, with_spikes=False) for a, b in windows]),
        round(scale * STANDALONE_REPORTS_PER_HIT),
    )
    pop = Population.for_rate(scale / days)
    ids = IdMaker(seed)
    first_day, last_day = local_day(t_start), local_day(t_end - 1)
    writer = LandingWriter(out, seed, bad_share, first_day, last_day)
    say(
        f"generating {scale:,} screening hits over {days} days, {iso(t_start)} .. {iso(t_end)}"
        f" (seed {seed}) into {out}"
    )

    pending: dict[str, pl.DataFrame | None] = {feed.name: None for feed in FEEDS}
    records: Counter = Counter()
    live: dict[str, int] = {}
    every = 1 if len(windows) <= 62 else 7
    for i, (a, b) in enumerate(windows):
        day = local_day(a)
        rng = np.random.default_rng([seed, DAY_TAG, day])
        window = window_records(
            rng,
            ids,
            Counters(day << DAY_SHIFT),
            pop,
            a,
            b,
            int(hits_per[i]),
            int(reports_per[i]),
            spikes,
        )
        if i == len(windows) - 1:
            edge, live = live_edge(
                np.random.default_rng([seed, EDGE_TAG, t_end]),
                ids,
                Counters(SCENARIO_FLAG | (day << 12)),
                pop,
                t_end,
            )
            window = _merge(window, edge)
        for feed, frame in zip(FEEDS, _frames(window), strict=True):
            if frame.width:
                records[feed.name] += frame.filter(pl.col(CREATED_AT[feed.name]) <= t_end).height
            due, pending[feed.name] = _split(pending[feed.name], explode(frame, feed), b)
            writer.write_window(feed, due, a, b)
        if i % every == 0 or i == len(windows) - 1:
            rows = writer.stats.rows
            say(
                f"  {_day_name(day)} ({i + 1}/{len(windows)}): "
                + ", ".join(f"{f.name} {rows[f.name]:,}" for f in FEEDS)
                + f" rows so far  [{time.perf_counter() - clock:.1f}s]"
            )

    writer.finish()
    writer.write_manifest()
    future = _save_pending(out, pending)
    _write_state(
        out,
        {
            "seed": seed,
            "scale_per_day": scale / days,
            "bad_share": bad_share,
            "period_start": iso(t_start),
            "last_end": t_end,
            "batch_no": 0,
        },
    )
    summary = {
        "generator": "sample_data.generator",
        "seed": seed,
        "days": days,
        "scale": scale,
        "bad_share": bad_share,
        "period": {
            "start": iso(t_start),
            "end": iso(t_end),
            "folders": [_day_name(first_day), _day_name(last_day)],
        },
        "records": {f.name: records[f.name] for f in FEEDS},
        **writer.stats.as_dict(),
        "spikes": [
            {
                "week_start": _day_name(s.week * 7 - 3),
                "category": CATEGORY_CODES[s.category],
                "multiplier": round(s.multiplier, 2),
            }
            for s in spikes
        ],
        "live_edge_clocks": live,
        "pending_future_versions": future,
        "follow": {"batches": 0},
    }
    write_atomic(out / SUMMARY, (json.dumps(summary, indent=2) + "\n").encode())
    _print_summary(say, summary, time.perf_counter() - clock)
    return summary


def _day_name(day: int) -> str:
    return datetime.fromtimestamp(int(day) * DAY, UTC).strftime("%Y-%m-%d")


def _print_summary(say: Callable[[str], None], summary: dict, seconds: float) -> None:
    say(
        f"done in {seconds:.1f}s: files "
        + ", ".join(f"{k} {v:,}" for k, v in summary["files"].items())
    )
    say("  rows " + ", ".join(f"{k} {v:,}" for k, v in summary["rows"].items()))
    say(
        f"  formats {summary['formats']}; late deliveries {len(summary['late_deliveries'])}, "
        f"duplicate deliveries {len(summary['duplicate_deliveries'])}, "
        f"ignorable files {len(summary['ignored_files'])}"
    )
    say(
        f"  bad rows {sum(summary['bad_rows'].values()):,} "
        f"({len(summary['bad_rows'])} kinds, listed in {summary['bad_rows_manifest']}); "
        f"bad files {sum(len(v) for v in summary['bad_files'].values())} "
        f"({', '.join(summary['bad_files'])})"
    )
    say(
        f"  open clocks planted at the end: {summary['live_edge_clocks']}; versions after the "
        f"end kept for --follow: {summary['pending_future_versions']}"
    )


def follow_batch(
    out: Path,
    *,
    seed: int,
    batch_start: datetime | int,
    batch_end: datetime | int,
    scale_per_day: float,
    batch_no: int,
    bad_share: float | None = None,
) -> dict:
    """Deliver one live batch covering (batch_start, batch_end]: new activity plus the next
    versions of records still open from earlier (reviews, takedowns, acknowledgements,
    referrals). Updates the pending state in `out`; returns the batch's counts."""
    out = Path(out)
    a, b = _epoch(batch_start), _epoch(batch_end)
    if b <= a:
        raise ValueError("batch_end must be after batch_start")
    state = read_state(out) or {}
    if bad_share is None:
        bad_share = float(state.get("bad_share", 0.01))
    pop = Population.for_rate(scale_per_day)
    ids = IdMaker(seed)
    rng = np.random.default_rng([seed, FOLLOW_TAG, a, b])
    expected = scale_per_day * window_weight(a, b, ()) / MEAN_DAY_WEIGHT
    n_hits = int(rng.poisson(expected))
    n_reports = int(rng.poisson(expected * STANDALONE_REPORTS_PER_HIT))
    minute = a // 60
    records = window_records(
        rng, ids, Counters(FOLLOW_FLAG | (minute << FOLLOW_SHIFT)), pop, a, b, n_hits, n_reports, ()
    )
    # Now and then a CSAM item that will stay up for most of an hour: the near-breach alert.
    if rng.random() < min(1.0, (b - a) / 3600 * 1.5):
        records = _merge(
            records,
            slow_takedown(rng, ids, Counters(SCENARIO_FLAG | (1 << 45) | (minute << 8)), pop, a, b),
        )
    pending = _load_pending(out)
    stats = Stats()
    writer = LandingWriter(
        out, seed, bad_share, local_day(a), local_day(b - 1), follow=True, stats=stats
    )
    for feed, frame in zip(FEEDS, _frames(records), strict=True):
        due, pending[feed.name] = _split(pending[feed.name], explode(frame, feed), b)
        writer.write_follow(feed, due, b, batch_no)
    writer.write_manifest(append=True)
    _save_pending(out, pending)
    _write_state(
        out,
        {
            **state,
            "seed": seed,
            "scale_per_day": scale_per_day,
            "bad_share": bad_share,
            "last_end": b,
            "batch_no": batch_no,
        },
    )
    result = {
        "batch_no": batch_no,
        "start": iso(a),
        "end": iso(b),
        "files": {f.name: stats.files[f.name] for f in FEEDS},
        "rows": {f.name: stats.rows[f.name] for f in FEEDS},
        "bad_rows": dict(sorted(stats.bad_rows.items())),
    }
    _record_follow(out, result)
    return result


def _record_follow(out: Path, result: dict) -> None:
    path = out / SUMMARY
    if not path.exists():
        return
    summary = json.loads(path.read_text())
    follow = summary.setdefault("follow", {"batches": 0})
    follow["batches"] = follow.get("batches", 0) + 1
    follow["last_end"] = result["end"]
    for key in ("rows", "bad_rows"):
        totals = Counter(follow.get(key, {}))
        totals.update(result[key])
        follow[key] = dict(sorted(totals.items()))
    write_atomic(path, (json.dumps(summary, indent=2) + "\n").encode())


__all__ = ["follow_batch", "generate", "read_state", "resolve_period"]
