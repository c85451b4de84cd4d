"""Read the published serving snapshot: the only way dashboard pages get data.

The pipeline publishes `serving.duckdb` by writing a new file and `os.replace`-ing it over
the old one, so a snapshot is identified by its file's inode, mtime and size
(`SnapshotIdentity`). Every cached query takes that identity as its first argument: a newly
published snapshot has a new identity, which misses the cache and reopens the file.

Rules kept here so pages cannot break them:
- the file is opened read-only with external access (files, ATTACH, extensions) disabled;
- the pipeline's own warehouse file is never opened;
- every value reaches SQL as a `?` parameter; the SQL text is constant, and the only tables
  it reads are the ones in `TABLES`;
- results are cached per (snapshot, role, SQL, parameters) in `_cached_sql`, the only cache:
  a result computed for one role can never be served to another.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import NamedTuple
from zoneinfo import ZoneInfo

import duckdb
import pandas as pd
import streamlit as st

from dashboards.settings import get_dashboard_settings

# Logical name -> table in the snapshot. Pages add the marts they read here.
TABLES: dict[str, str] = {
    "ops_ingest_ledger": "marts.ops_ingest_ledger",
    "ops_quarantine": "marts.ops_quarantine",
    "snapshot": "meta.snapshot",
    "definitions": "meta.definitions",
    "dim_categories": "marts.dim_categories",
    "dim_policy_versions": "marts.dim_policy_versions",
    "dim_policy_sla_targets": "marts.dim_policy_sla_targets",
    "dim_policy_tier_rules": "marts.dim_policy_tier_rules",
    "fct_content_takedowns": "marts.fct_content_takedowns",
    "rpt_takedown_sla_daily": "marts.rpt_takedown_sla_daily",
    "fct_open_sla_breaches": "marts.fct_open_sla_breaches",
    "fct_sla_clocks": "marts.fct_sla_clocks",
    "fct_reports": "marts.fct_reports",
    "rpt_report_handling_daily": "marts.rpt_report_handling_daily",
    "fct_cases": "marts.fct_cases",
    "rpt_case_outcomes_monthly": "marts.rpt_case_outcomes_monthly",
    "dim_user_tiers": "marts.dim_user_tiers",
    "fct_user_tier_history": "marts.fct_user_tier_history",
    "rpt_repeat_offenders": "marts.rpt_repeat_offenders",
    "rpt_tier_counts_daily": "marts.rpt_tier_counts_daily",
    "rpt_category_trends_weekly": "marts.rpt_category_trends_weekly",
    "rpt_detection_quality_weekly": "marts.rpt_detection_quality_weekly",
    "alerts_outbox": "alerts.outbox",
    "alerts_deliveries": "alerts.deliveries",
    "alerts_channels": "alerts.channels",
    "alerts_delivery_rounds": "alerts.delivery_rounds",
}

PERIODS = ("hour", "day", "week")

_CONNECT_CONFIG = {"enable_external_access": False}
_CACHE = {"show_spinner": False, "max_entries": 256}


class SnapshotMissingError(FileNotFoundError):
    """No snapshot has been published at the configured path yet."""


class SnapshotIdentity(NamedTuple):
    """One published version of the snapshot file."""

    path: str
    device: int
    inode: int
    mtime_ns: int
    size: int


@dataclass(frozen=True)
class SnapshotInfo:
    published_at: datetime | None
    as_of: datetime | None
    run_id: str | None
    reporting_tz: str


@dataclass(frozen=True)
class IngestSelection:
    """Files chosen by the page filters: these feeds, ingested in [start, end)."""

    feeds: tuple[str, ...]
    start: datetime
    end: datetime

    @classmethod
    def for_days(
        cls, feeds: tuple[str, ...] | list[str], first_day: date, last_day: date, tz: str
    ) -> IngestSelection:
        """Whole days in the reporting time zone, both ends included."""
        zone = ZoneInfo(tz)
        return cls(
            feeds=tuple(feeds),
            start=datetime.combine(first_day, time.min, zone),
            end=datetime.combine(last_day + timedelta(days=1), time.min, zone),
        )

    def params(self) -> list[object]:
        return [list(self.feeds), self.start, self.end]


@dataclass(frozen=True)
class IngestKpis:
    files: int
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    files_rejected: int
    files_duplicate: int

    @property
    def quarantine_rate(self) -> float | None:
        """Share of the rows read that were quarantined; None when no row was read."""
        return self.rows_quarantined / self.rows_read if self.rows_read else None


# --- the snapshot file -----------------------------------------------------------------


class SnapshotConfigError(ValueError):
    """The configured snapshot path is one the dashboards must not open."""


def serving_path() -> Path:
    """Where the pipeline publishes the snapshot (`OCSE_SERVING`).

    Refuses the pipeline's own warehouse file: even a read-only open takes a lock that
    would stop the next pipeline run.
    """
    settings = get_dashboard_settings()
    serving = settings.serving.resolve()
    if serving == settings.warehouse.resolve():
        raise SnapshotConfigError(
            f"OCSE_SERVING points at the pipeline's warehouse ({serving}); the dashboards read "
            "only the published serving snapshot."
        )
    return serving


def snapshot_identity(path: Path | None = None) -> SnapshotIdentity | None:
    """The identity of the snapshot currently published, or None if there is none yet."""
    path = path or serving_path()
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return SnapshotIdentity(str(path), stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_size)


class _OpenSnapshot(NamedTuple):
    identity: SnapshotIdentity
    connection: duckdb.DuckDBPyConnection


# One open snapshot per process; the lock also serialises queries, because a DuckDB
# connection must not be used from two Streamlit sessions' threads at once.
_lock = threading.RLock()
_open: _OpenSnapshot | None = None


def _close_open_snapshot() -> None:
    global _open
    if _open is not None:
        _open.connection.close()
        _open = None


def _current_connection(path: Path) -> duckdb.DuckDBPyConnection:
    global _open
    identity = snapshot_identity(path)
    if identity is None:
        _close_open_snapshot()
        raise SnapshotMissingError(str(path))
    if _open is not None and _open.identity == identity:
        return _open.connection
    # DuckDB hands out the already-open database for a path it has open, even after the
    # file was replaced, so the old snapshot must be closed before the new one is opened.
    _close_open_snapshot()
    connection = duckdb.connect(identity.path, read_only=True, config=_CONNECT_CONFIG)
    connection.execute("set TimeZone = 'UTC'")
    _open = _OpenSnapshot(identity, connection)
    return connection


# Set by benchmarks and tests that query outside a Streamlit session; pages never set it.
_role_override: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "ocse_role_override", default=None
)
# Every query a page asks for, cached or not (tests: a refused page asks for none).
queries_asked = 0


@contextmanager
def acting_as(role: str) -> Iterator[None]:
    """Query as `role` outside a signed-in session (benchmarks, tests)."""
    token = _role_override.set(role)
    try:
        yield
    finally:
        _role_override.reset(token)


def _role_scope() -> str:
    override = _role_override.get()
    if override is not None:
        return override
    from dashboards.auth import current_role

    return current_role() or "anonymous"


def _query(
    snapshot: SnapshotIdentity, sql: str, params: list[object] | None = None
) -> pd.DataFrame:
    global queries_asked
    queries_asked += 1
    if _bypass_cache.get():
        return _run_sql(snapshot, sql, params or [])
    return _cached_sql(snapshot, _role_scope(), sql, params or [])


_bypass_cache: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "ocse_bypass_cache", default=False
)


def _run_sql(snapshot: SnapshotIdentity, sql: str, params: list[object]) -> pd.DataFrame:
    with _lock:
        connection = _current_connection(Path(snapshot.path))
        return connection.sql(sql, params=params).to_arrow_table().to_pandas()


@st.cache_data(**_CACHE)
def _cached_sql(
    snapshot: SnapshotIdentity, role: str, sql: str, params: list[object]
) -> pd.DataFrame:
    # `role` is part of the cache key only: the same SQL asked by another role is run again.
    return _run_sql(snapshot, sql, params)


def benchmark_workload(snapshot: SnapshotIdentity) -> dict[str, Callable[[], object]]:
    """Every page's queries with the page's default filters, each a zero-argument callable
    that runs its SQL (never the cache), as an administrator: what `make bench` times."""
    from dashboards import mart_queries as mq  # it imports this module

    def timed(function: Callable[..., object], *args: object) -> Callable[[], object]:
        def run() -> object:
            token, bypass = _role_override.set("admin"), _bypass_cache.set(True)
            try:
                return function(snapshot, *args)
            finally:
                _bypass_cache.reset(bypass)
                _role_override.reset(token)

        return run

    with acting_as("admin"):
        bounds = mq.data_days(snapshot)
        categories = tuple(mq.category_labels(snapshot))
        tz = snapshot_info(snapshot).reporting_tz
    last = bounds[1] if bounds else date.today()
    recent = mq.Period(last - timedelta(days=27), last, categories)
    quarter = mq.Period(last - timedelta(days=89), last, categories)
    weeks = mq.Period(last - timedelta(days=16 * 7 - 1), last, categories)
    ingest = IngestSelection.for_days(
        ("screening_hits", "reports", "enforcement_actions", "cases"),
        last - timedelta(days=6),
        last,
        tz,
    )
    return {
        "overview/takedown_summary": timed(mq.takedown_summary, recent),
        "overview/takedown_summary_previous": timed(mq.takedown_summary, recent.previous()),
        "overview/csam_takedown_summary": timed(mq.csam_takedown_summary, recent),
        "overview/report_summary": timed(mq.report_summary, recent),
        "overview/case_summary": timed(mq.case_summary, recent, tz),
        "overview/tier_counts": timed(mq.tier_counts),
        "overview/tier_counts_at": timed(mq.tier_counts_at, recent.previous().last_day, tz),
        "overview/takedowns_daily": timed(mq.takedowns_daily, recent),
        "overview/takedowns_by_category": timed(mq.takedowns_by_category, recent),
        "sla/by_category": timed(mq.sla_compliance_by_category, recent, tz),
        "sla/series_week": timed(mq.sla_compliance_series, recent, "week", tz),
        "sla/targets": timed(mq.sla_targets),
        "trends/category_trends": timed(mq.category_trends, weeks),
        "trends/detection_quality": timed(mq.detection_quality, weeks),
        "trends/detection_quality_totals": timed(mq.detection_quality_totals, weeks),
        "offenders/tier_reasons": timed(mq.tier_reasons),
        "offenders/tier_counts_weekly": timed(mq.tier_counts_weekly, quarter, tz),
        "offenders/repeat_offenders": timed(mq.repeat_offenders, ("black", "grey")),
        "cases/case_outcomes_monthly": timed(mq.case_outcomes_monthly, quarter),
        "cases/case_funnel": timed(mq.case_funnel, quarter, tz),
        "cases/victim_support": timed(mq.victim_support, quarter, tz),
        "operations_queue/open_clocks": timed(
            mq.open_clocks,
            ("takedown", "report_acknowledgement", "report_resolution", "referral"),
        ),
        "operations_queue/open_clock_counts": timed(mq.open_clock_counts),
        "operations_queue/alert_history": timed(mq.alert_history),
        "pipeline_health/ingest_kpis": timed(ingest_kpis, ingest),
        "pipeline_health/feed_freshness": timed(feed_freshness, ingest.feeds),
        "pipeline_health/files_by_outcome": timed(files_by_outcome, ingest, "day", tz),
        "pipeline_health/quarantine_reasons": timed(quarantine_reasons, ingest),
        "pipeline_health/problem_files": timed(problem_files, ingest),
        "pipeline_health/quarantined_rows": timed(quarantined_rows, ingest),
        "methodology/definitions": timed(mq.definitions),
        "methodology/policy_versions": timed(mq.policy_versions),
    }


def close() -> None:
    """Release the open snapshot (tests; a long-lived process never needs it)."""
    with _lock:
        _close_open_snapshot()


# --- metadata --------------------------------------------------------------------------


def available_tables(snapshot: SnapshotIdentity) -> frozenset[str]:
    """Logical names (keys of `TABLES`) of the tables present in this snapshot."""
    present = _query(
        snapshot,
        "select table_schema || '.' || table_name as qualified from information_schema.tables",
    )
    found = set(present["qualified"])
    return frozenset(name for name, qualified in TABLES.items() if qualified in found)


def missing_tables(snapshot: SnapshotIdentity, names: tuple[str, ...]) -> list[str]:
    """Which of the tables a page needs are absent (e.g. a snapshot from an older release)."""
    unknown = [name for name in names if name not in TABLES]
    if unknown:
        raise KeyError(f"not in the dashboard's table allow-list: {unknown}")
    present = available_tables(snapshot)
    return [TABLES[name] for name in names if name not in present]


def snapshot_info(snapshot: SnapshotIdentity) -> SnapshotInfo:
    """When the snapshot was published, its as-of time T and the reporting time zone."""
    default_tz = get_dashboard_settings().reporting_tz
    if "snapshot" not in available_tables(snapshot):
        return SnapshotInfo(None, None, None, default_tz)
    rows = _query(
        snapshot,
        """
        select published_at, as_of, run_id, reporting_tz
        from meta.snapshot
        order by published_at desc
        limit 1
        """,
    )
    if rows.empty:
        return SnapshotInfo(None, None, None, default_tz)
    row = rows.iloc[0]
    tz = row["reporting_tz"] if _is_time_zone(row["reporting_tz"]) else default_tz
    return SnapshotInfo(
        published_at=_to_datetime(row["published_at"]),
        as_of=_to_datetime(row["as_of"]),
        run_id=None if pd.isna(row["run_id"]) else str(row["run_id"]),
        reporting_tz=tz,
    )


# --- pipeline health -------------------------------------------------------------------


def alert_channel_health(snapshot: SnapshotIdentity) -> pd.DataFrame:
    """Per alert channel: its state (down since, last error), its deliveries by state, and
    the last delivery round that tried it. From the alert store as published."""
    return _query(
        snapshot,
        """
        with by_state as (
            select
                channel,
                count(*) filter (where state = 'delivered') as delivered,
                count(*) filter (where state in ('pending', 'sending')) as waiting,
                count(*) filter (where state = 'failed') as failed
            from alerts.deliveries
            group by channel
        ),
        last_round as (
            select channel, max(started_at) as last_round_at
            from alerts.delivery_rounds
            group by channel
        )
        select
            b.channel,
            coalesce(c.state, 'up') as state,
            c.down_since,
            c.last_error,
            c.last_success_at,
            b.delivered,
            b.waiting,
            b.failed,
            r.last_round_at
        from by_state as b
        left join alerts.channels as c using (channel)
        left join last_round as r using (channel)
        order by b.channel
        """,
    )


def ingest_feeds(snapshot: SnapshotIdentity) -> list[str]:
    """Feeds that have delivered at least one file."""
    rows = _query(snapshot, "select distinct feed from marts.ops_ingest_ledger order by feed")
    return [str(feed) for feed in rows["feed"]]


def ingest_time_bounds(snapshot: SnapshotIdentity) -> tuple[datetime, datetime] | None:
    """First and last `ingested_at` in the ledger (UTC), None when no file was ingested."""
    rows = _query(
        snapshot,
        "select min(ingested_at) as first_at, max(ingested_at) as last_at "
        "from marts.ops_ingest_ledger",
    )
    first_at, last_at = rows.iloc[0]["first_at"], rows.iloc[0]["last_at"]
    if pd.isna(first_at):
        return None
    return _to_datetime(first_at), _to_datetime(last_at)


def ingest_kpis(snapshot: SnapshotIdentity, selection: IngestSelection) -> IngestKpis:
    rows = _query(
        snapshot,
        """
        select
            count(*) as files,
            coalesce(sum(rows_read), 0) as rows_read,
            coalesce(sum(rows_loaded), 0) as rows_loaded,
            coalesce(sum(rows_quarantined), 0) as rows_quarantined,
            count(*) filter (where outcome = 'rejected') as files_rejected,
            count(*) filter (where outcome = 'duplicate') as files_duplicate
        from marts.ops_ingest_ledger
        where list_contains(?, feed) and ingested_at >= ? and ingested_at < ?
        """,
        selection.params(),
    )
    row = rows.iloc[0]
    return IngestKpis(**{name: int(row[name]) for name in IngestKpis.__dataclass_fields__})


def feed_freshness(snapshot: SnapshotIdentity, feeds: tuple[str, ...]) -> pd.DataFrame:
    """Per feed: the last file ingested (any outcome) and the last one that loaded rows.

    Not limited by the date range: freshness is about now.
    """
    return _query(
        snapshot,
        """
        select
            feed,
            max(ingested_at) as last_ingested_at,
            max(ingested_at) filter (
                where outcome in ('loaded', 'partially_quarantined')
            ) as last_loaded_at,
            count(*) as files
        from marts.ops_ingest_ledger
        where list_contains(?, feed)
        group by feed
        order by feed
        """,
        [list(feeds)],
    )


def files_by_outcome(
    snapshot: SnapshotIdentity, selection: IngestSelection, period: str, tz: str
) -> pd.DataFrame:
    """Files per (period_start, outcome); periods are taken in the time zone `tz`."""
    if period not in PERIODS:
        raise ValueError(f"period must be one of {PERIODS}, not {period!r}")
    return _query(
        snapshot,
        """
        select
            date_trunc(?, timezone(?, ingested_at)) as period_start,
            outcome,
            count(*) as files
        from marts.ops_ingest_ledger
        where list_contains(?, feed) and ingested_at >= ? and ingested_at < ?
        group by all
        order by period_start, outcome
        """,
        [period, tz, *selection.params()],
    )


def quarantine_reasons(snapshot: SnapshotIdentity, selection: IngestSelection) -> pd.DataFrame:
    """Quarantined rows per (reason_kind, feed); a row counts once per kind it breaks."""
    return _query(
        snapshot,
        """
        with

        quarantined as (
            select q.feed, q.file_name, q.row_number, q.reason_codes
            from marts.ops_quarantine as q
            inner join marts.ops_ingest_ledger as l on l.file_id = q.file_id
            where list_contains(?, q.feed) and l.ingested_at >= ? and l.ingested_at < ?
        ),

        kinds as (
            select distinct
                quarantined.feed,
                quarantined.file_name,
                quarantined.row_number,
                split_part(codes.code, ':', 1) as reason_kind
            from quarantined, unnest(quarantined.reason_codes) as codes(code)
        )

        select reason_kind, feed, count(*) as quarantined_rows
        from kinds
        group by all
        order by reason_kind, feed
        """,
        selection.params(),
    )


def problem_files(
    snapshot: SnapshotIdentity, selection: IngestSelection, limit: int = 500
) -> pd.DataFrame:
    """Rejected and duplicate files, newest first, with the gate's error."""
    return _query(
        snapshot,
        """
        select ingested_at, feed, file_name, outcome, error, rows_read, file_id
        from marts.ops_ingest_ledger
        where outcome in ('rejected', 'duplicate')
            and list_contains(?, feed) and ingested_at >= ? and ingested_at < ?
        order by ingested_at desc, file_id desc
        limit ?
        """,
        [*selection.params(), limit],
    )


def quarantined_rows(
    snapshot: SnapshotIdentity, selection: IngestSelection, limit: int = 200
) -> pd.DataFrame:
    """The most recently quarantined rows with their reasons and pseudonymised record."""
    return _query(
        snapshot,
        """
        select
            q.quarantined_at,
            q.feed,
            q.file_name,
            q.row_number,
            q.reason_codes,
            q.record
        from marts.ops_quarantine as q
        inner join marts.ops_ingest_ledger as l on l.file_id = q.file_id
        where list_contains(?, q.feed) and l.ingested_at >= ? and l.ingested_at < ?
        order by q.quarantined_at desc, q.file_name, q.row_number
        limit ?
        """,
        [*selection.params(), limit],
    )


# --- helpers ---------------------------------------------------------------------------


def _to_datetime(value: object) -> datetime | None:
    if value is None or pd.isna(value):
        return None
    return pd.Timestamp(value).to_pydatetime()


def _is_time_zone(name: object) -> bool:
    if not isinstance(name, str) or not name:
        return False
    try:
        ZoneInfo(name)
    except (ValueError, KeyError, OSError):
        return False
    return True
