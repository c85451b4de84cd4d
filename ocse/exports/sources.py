"""The published aggregate tables, computed from the serving snapshot only.

Each loader reads marts (never the warehouse), sums them to the requested periods and
returns unprotected `TableData`; `tables.protect_tables` decides what may be shown. No
loader selects a user reference, a content, report or case id, a file name or a timestamp:
only dates truncated to the period, category codes and counts leave these queries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb

from ocse.contracts import load_contract
from ocse.exports.periods import Period
from ocse.exports.tables import ALL, Quantile, Rate, TableData, TableSpec, empty_row
from ocse.serving import open_snapshot


class SnapshotError(RuntimeError):
    """No usable serving snapshot (message says what to do)."""


CSAM = "csam"  # subtotal of the categories with is_csam (the one-hour rule)
# A file processed this long after it landed is late data: the one-hour CSAM rule cannot
# be watched on data older than the rule itself.
LATE_FILE_MINUTES = 60

CATEGORY_TRENDS = TableSpec(
    name="category_trends",
    title="Category trends",
    dimension="category_code",
    counts=("confirmed_hits", "reports_received", "takedowns", "proactive_takedowns"),
    rates=(Rate("proactive_share", "proactive_takedowns", "takedowns"),),
    subsets=(("proactive_takedowns", "takedowns"),),
    not_applicable=tuple(
        ("unclassified", m)
        for m in ("confirmed_hits", "takedowns", "proactive_takedowns", "proactive_share")
    ),
    source=("rpt_category_trends_weekly", "fct_content_takedowns", "rpt_report_handling_daily"),
    description="Which forms of exploitation are rising: screening hits confirmed, reports "
    "received and content taken down per category. `confirmed_hits` is published at week "
    "grain only (the marts give confirmed hits per ISO week).",
)

TAKEDOWN_SLA = TableSpec(
    name="takedown_sla",
    title="Takedown SLA compliance",
    dimension="category_code",
    counts=("takedowns", "prevented", "exposed", "within_sla", "breached", "evidence_on_time"),
    rates=(
        Rate("compliance_rate", "within_sla", "takedowns"),
        Rate("evidence_on_time_rate", "evidence_on_time", "takedowns"),
    ),
    quantiles=(
        Quantile("median_exposure_minutes", 0.5, "exposed"),
        Quantile("p90_exposure_minutes", 0.9, "exposed"),
    ),
    identities=(("takedowns", ("within_sla", "breached")), ("takedowns", ("prevented", "exposed"))),
    subsets=(("evidence_on_time", "takedowns"), ("prevented", "within_sla")),
    not_applicable=tuple(
        ("unclassified", m)
        for m in (
            "takedowns",
            "prevented",
            "exposed",
            "within_sla",
            "breached",
            "evidence_on_time",
            "compliance_rate",
            "evidence_on_time_rate",
            "median_exposure_minutes",
            "p90_exposure_minutes",
        )
    ),
    source=("fct_content_takedowns",),
    description="Content taken down per period of `taken_down_at` and category: within the "
    "category's target (60 minutes for CSAM, 24 hours otherwise, policy in force when the "
    "clock started), prevented before anyone saw it, evidence preserved on time. `exposed` "
    "= takedowns not prevented, the units of the exposure quantiles.",
)

REPORT_HANDLING = TableSpec(
    name="report_handling",
    title="Report handling",
    dimension="category_code",
    counts=(
        "received",
        "ack_decided",
        "ack_on_time",
        "resolution_decided",
        "resolution_on_time",
        "resolved",
        "feedback_sent",
    ),
    rates=(
        Rate("ack_compliance_rate", "ack_on_time", "ack_decided"),
        Rate("resolution_compliance_rate", "resolution_on_time", "resolution_decided"),
        Rate("feedback_rate", "feedback_sent", "resolved"),
    ),
    subsets=(
        ("ack_on_time", "ack_decided"),
        ("ack_decided", "received"),
        ("resolution_on_time", "resolution_decided"),
        ("resolution_decided", "received"),
        ("resolved", "resolution_decided"),
        ("feedback_sent", "resolved"),
    ),
    shared=(("received", "reports_received"),),
    source=("rpt_report_handling_daily",),
    description="Reports per period of `received_at` and category (all channels): "
    "acknowledged and resolved within target, feedback sent to the reporter.",
)

CASE_OUTCOMES = TableSpec(
    name="case_outcomes",
    title="Case outcomes and victim support",
    dimension="category_code",
    counts=(
        "cases_opened",
        "confirmed",
        "referred",
        "referral_decided",
        "referral_on_time",
        "authority_accepted",
        "prosecuted",
        "convicted",
        "victims",
        "support_offered",
        "support_accepted",
    ),
    rates=(Rate("referral_compliance_rate", "referral_on_time", "referral_decided"),),
    quantiles=(Quantile("median_hours_to_referral", 0.5, "referred"),),
    subsets=(
        ("confirmed", "cases_opened"),
        ("referred", "cases_opened"),
        ("referral_decided", "confirmed"),
        ("referral_on_time", "referral_decided"),
        ("authority_accepted", "cases_opened"),
        ("prosecuted", "cases_opened"),
        ("convicted", "prosecuted"),
        ("support_offered", "cases_opened"),
        ("support_accepted", "support_offered"),
    ),
    contributors=(("victims", "cases_opened"),),
    not_applicable=tuple(
        ("unclassified", m)
        for m in (
            "cases_opened",
            "confirmed",
            "referred",
            "referral_decided",
            "referral_on_time",
            "authority_accepted",
            "prosecuted",
            "convicted",
            "victims",
            "support_offered",
            "support_accepted",
            "referral_compliance_rate",
            "median_hours_to_referral",
        )
    ),
    source=("fct_cases",),
    description="Cases per period of `opened_at` and category: confirmation, referral to "
    "the authority (within 24 hours of confirmation), prosecution and conviction, child "
    "victims and the support offered to them. `victims` also needs k cases behind it.",
)

DETECTION_QUALITY = TableSpec(
    name="detection_quality",
    title="Detection quality",
    dimension="detection_method",
    counts=("hits", "reviewed", "confirmed", "false_positives", "pending"),
    rates=(Rate("precision", "confirmed", "reviewed"),),
    quantiles=(Quantile("median_minutes_to_review", 0.5, "reviewed"),),
    identities=(("hits", ("reviewed", "pending")), ("reviewed", ("confirmed", "false_positives"))),
    shared=(("confirmed", "confirmed_hits"),),
    only_for_groups=("median_minutes_to_review",),
    source=("rpt_detection_quality_weekly",),
    description="Screening hits per ISO week of `detected_at` and detection method: "
    "reviewed, confirmed, false positives, precision. Always at week grain (the mart is "
    "weekly). The median time to review is published per method only: medians do not add "
    "up and the marts give them per method.",
)

LIST_STATISTICS = TableSpec(
    name="list_statistics",
    title="White / grey / black list",
    dimension="list_rule",
    counts=("accounts_at_end", "entries"),
    source=("fct_user_tier_history",),
    description="Accounts on the list at the end of the period by tier and the rule that "
    "put them there, and entries into each tier during the period (an account whose tier "
    "changed to this one, counted at each change).",
)

DATA_QUALITY = TableSpec(
    name="data_quality",
    title="Data quality",
    dimension="feed",
    counts=(
        "files",
        "files_rejected",
        "files_duplicate",
        "files_late",
        "rows_read",
        "rows_loaded",
        "rows_quarantined",
    ),
    rates=(
        Rate("quarantine_rate", "rows_quarantined", "rows_read"),
        Rate("late_file_rate", "files_late", "files"),
    ),
    identities=(("rows_read", ("rows_loaded", "rows_quarantined")),),
    subsets=(
        ("files_rejected", "files"),
        ("files_duplicate", "files"),
        ("files_late", "files"),
    ),
    source=("ops_ingest_ledger",),
    description="Files the ingestion gate processed and their rows: quarantined rows broke "
    f"their feed's contract; a file is late when processed more than {LATE_FILE_MINUTES} "
    "minutes after it landed.",
)

RESEARCH_TABLES = (CATEGORY_TRENDS, TAKEDOWN_SLA, REPORT_HANDLING, CASE_OUTCOMES, DETECTION_QUALITY)
LIST_RULES = {
    "black:zero_tolerance": ("black", "zero_tolerance"),
    "black:repeat_180d": ("black", "repeat_180d"),
    "grey:violation_180d": ("grey", "violation_180d"),
    "grey:reports_30d": ("grey", "reports_30d"),
    "white:cleared": ("white", "cleared"),
}
LIST_SUBTOTALS = {
    "black": ("black:zero_tolerance", "black:repeat_180d"),
    "grey": ("grey:violation_180d", "grey:reports_30d"),
}


@dataclass(frozen=True)
class SnapshotInfo:
    as_of: datetime
    published_at: datetime
    run_id: str
    reporting_tz: str


@dataclass(frozen=True)
class Categories:
    codes: tuple[str, ...]  # every code, `unclassified` last
    csam: tuple[str, ...]
    labels: dict[str, str]

    @property
    def classified(self) -> tuple[str, ...]:
        return tuple(c for c in self.codes if c != "unclassified")


def open_published(snapshot_path: Path) -> duckdb.DuckDBPyConnection:
    path = Path(snapshot_path)
    if not path.is_file():
        raise SnapshotError(
            f"No serving snapshot at {path}: nothing has been published yet. Run the "
            "pipeline first (`ocse run`), or point --snapshot / OCSE_SERVING at the snapshot."
        )
    try:
        conn = open_snapshot(path)
        conn.execute("select 1 from meta.snapshot").fetchall()
    except duckdb.Error as exc:
        raise SnapshotError(f"{path} is not a readable serving snapshot ({exc})") from None
    return conn


def snapshot_info(conn: duckdb.DuckDBPyConnection) -> SnapshotInfo:
    row = conn.execute(
        "select as_of, published_at, run_id, reporting_tz from meta.snapshot"
    ).fetchone()
    if row is None:
        raise SnapshotError("the serving snapshot has no meta.snapshot row")
    return SnapshotInfo(*row)


def categories(conn: duckdb.DuckDBPyConnection) -> Categories:
    rows = conn.execute(
        "select category_code, is_csam, label_en from marts.dim_categories "
        "order by is_unclassified, category_code"
    ).fetchall()
    return Categories(
        codes=tuple(code for code, _, _ in rows),
        csam=tuple(code for code, is_csam, _ in rows if is_csam),
        labels={code: label for code, _, label in rows},
    )


def local_midnight(day: date, tz: str) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(tz))


def policy_versions(conn, start: date, end: date, tz: str) -> list[int]:
    """The policy versions in force at some moment of [start, end] (local dates)."""
    rows = conn.execute(
        "select policy_version from marts.dim_policy_versions "
        "where valid_from < ? and (valid_to is null or valid_to > ?) order by 1",
        [local_midnight(end + timedelta(days=1), tz), local_midnight(start, tz)],
    ).fetchall()
    return [version for (version,) in rows]


# --- loading --------------------------------------------------------------------------------


def _membership(sets: dict[str, tuple[str, ...]]) -> tuple[str, list[str]]:
    """A VALUES list mapping each member to every set it belongs to, as placeholders."""
    pairs = [(name, member) for name, members in sets.items() for member in members]
    sql = "(values " + ", ".join("(?, ?)" for _ in pairs) + ") as m(set_name, member)"
    return sql, [value for pair in pairs for value in pair]


def _sets(groups: tuple[str, ...], subtotals: dict[str, tuple[str, ...]]) -> dict:
    return {**{g: (g,) for g in groups}, **subtotals, ALL: groups}


def _fill(
    spec: TableSpec,
    periods: list[Period],
    groups: tuple[str, ...],
    subtotals: dict[str, tuple[str, ...]],
    rows: list[tuple],
    columns: list[str],
    *,
    drop: tuple[str, ...] = (),
) -> TableData:
    """Zero-filled TableData from query rows (period_start, set_name, measures...)."""
    by_start = {p.start: p for p in periods}
    data = TableData(
        spec=spec,
        periods=periods,
        groups=list(groups),
        subtotals=dict(subtotals),
        drop_measures=drop,
    )
    for period in periods:
        for group in data.row_groups:
            data.values[(period.label, group)] = empty_row(spec)
    for row in rows:
        record = dict(zip(columns, row, strict=True))
        period = by_start.get(record.pop("period_start"))
        if period is None:
            continue
        target = data.values[(period.label, record.pop("set_name"))]
        for measure, value in record.items():
            if measure in spec.counts:
                target[measure] = int(value or 0)
            else:
                target[measure] = None if value is None else float(value)
    return data


def _query(conn, sql: str, params: list) -> tuple[list[tuple], list[str]]:
    cursor = conn.execute(sql, params)
    columns = [d[0] for d in cursor.description]
    return cursor.fetchall(), columns


def _range(periods: list[Period]) -> list[date]:
    return [periods[0].start, periods[-1].end]


def load_takedown_sla(conn, periods, cats: Categories) -> TableData:
    groups, subtotals = cats.classified, {CSAM: cats.csam}
    membership, params = _membership(_sets(groups, subtotals))
    rows, columns = _query(
        conn,
        f"""
        select
            cast(date_trunc(?, t.report_date) as date) as period_start,
            m.set_name,
            count(*) as takedowns,
            count(*) filter (where t.is_prevented) as prevented,
            count(*) filter (where not t.is_prevented) as exposed,
            count(*) filter (where t.is_within_sla) as within_sla,
            count(*) filter (where not t.is_within_sla) as breached,
            count(*) filter (where t.is_evidence_on_time) as evidence_on_time,
            quantile_cont(t.exposure_minutes, 0.5) filter (where not t.is_prevented)
                as median_exposure_minutes,
            quantile_cont(t.exposure_minutes, 0.9) filter (where not t.is_prevented)
                as p90_exposure_minutes
        from marts.fct_content_takedowns as t
        inner join {membership} on t.category_code = m.member
        where t.report_date between ? and ?
        group by all
        """,
        [periods[0].grain, *params, *_range(periods)],
    )
    return _fill(TAKEDOWN_SLA, periods, groups, subtotals, rows, columns)


def load_report_handling(conn, periods, cats: Categories) -> TableData:
    groups, subtotals = cats.codes, {CSAM: cats.csam}
    membership, params = _membership(_sets(groups, subtotals))
    rows, columns = _query(
        conn,
        f"""
        select
            cast(date_trunc(?, r.report_date) as date) as period_start,
            m.set_name,
            sum(r.received) as received,
            sum(r.ack_decided) as ack_decided,
            sum(r.ack_on_time) as ack_on_time,
            sum(r.resolution_decided) as resolution_decided,
            sum(r.resolution_on_time) as resolution_on_time,
            sum(r.resolved) as resolved,
            sum(r.feedback_sent) as feedback_sent
        from marts.rpt_report_handling_daily as r
        inner join {membership} on r.category_code = m.member
        where r.report_date between ? and ?
        group by all
        """,
        [periods[0].grain, *params, *_range(periods)],
    )
    return _fill(REPORT_HANDLING, periods, groups, subtotals, rows, columns)


def load_case_outcomes(conn, periods, cats: Categories, tz: str) -> TableData:
    groups, subtotals = cats.classified, {CSAM: cats.csam}
    membership, params = _membership(_sets(groups, subtotals))
    rows, columns = _query(
        conn,
        f"""
        with cases as (
            select *, cast(timezone(?, opened_at) as date) as opened_date
            from marts.fct_cases
        )
        select
            cast(date_trunc(?, c.opened_date) as date) as period_start,
            m.set_name,
            count(*) as cases_opened,
            count(c.confirmed_at) as confirmed,
            count(c.referred_at) as referred,
            count(c.is_referral_within_target) as referral_decided,
            count(*) filter (where c.is_referral_within_target) as referral_on_time,
            count(c.authority_accepted_at) as authority_accepted,
            count(*) filter (where c.outcome in ('prosecuted', 'convicted')) as prosecuted,
            count(*) filter (where c.outcome = 'convicted') as convicted,
            coalesce(sum(c.victims_count), 0) as victims,
            count(*) filter (where c.victim_support in ('offered', 'accepted', 'declined'))
                as support_offered,
            count(*) filter (where c.victim_support = 'accepted') as support_accepted,
            quantile_cont(c.hours_to_referral, 0.5) filter (where c.referred_at is not null)
                as median_hours_to_referral
        from cases as c
        inner join {membership} on c.category_code = m.member
        where c.opened_date between ? and ?
        group by all
        """,
        [tz, periods[0].grain, *params, *_range(periods)],
    )
    return _fill(CASE_OUTCOMES, periods, groups, subtotals, rows, columns)


def load_category_trends(conn, periods, cats: Categories) -> TableData:
    """Week grain: the weekly trend mart as it is. Other grains: takedowns and reports
    summed from their facts and daily mart; confirmed hits exist per ISO week only."""
    groups, subtotals = cats.codes, {CSAM: cats.csam}
    membership, params = _membership(_sets(groups, subtotals))
    grain = periods[0].grain
    if grain == "week":
        rows, columns = _query(
            conn,
            f"""
            select
                w.week_start as period_start,
                m.set_name,
                sum(w.confirmed_hits) as confirmed_hits,
                sum(w.reports_received) as reports_received,
                sum(w.takedowns) as takedowns,
                sum(w.proactive_takedowns) as proactive_takedowns
            from marts.rpt_category_trends_weekly as w
            inner join {membership} on w.category_code = m.member
            where w.week_start between ? and ?
            group by all
            """,
            [*params, *_range(periods)],
        )
        return _fill(CATEGORY_TRENDS, periods, groups, subtotals, rows, columns)
    rows, columns = _query(
        conn,
        f"""
        with facts as (
            select cast(date_trunc(?, report_date) as date) as period_start, category_code,
                0 as reports_received, 1 as takedowns,
                (trigger = 'proactive')::int as proactive_takedowns
            from marts.fct_content_takedowns
            where report_date between ? and ?
            union all
            select cast(date_trunc(?, report_date) as date), category_code,
                received, 0, 0
            from marts.rpt_report_handling_daily
            where report_date between ? and ?
        )
        select
            f.period_start,
            m.set_name,
            sum(f.reports_received) as reports_received,
            sum(f.takedowns) as takedowns,
            sum(f.proactive_takedowns) as proactive_takedowns
        from facts as f
        inner join {membership} on f.category_code = m.member
        group by all
        """,
        [grain, *_range(periods), grain, *_range(periods), *params],
    )
    return _fill(
        CATEGORY_TRENDS, periods, groups, subtotals, rows, columns, drop=("confirmed_hits",)
    )


def detection_methods() -> tuple[str, ...]:
    return load_contract("screening_hits").field("detection_method").valid_values


def load_detection_quality(conn, weeks: list[Period]) -> TableData:
    groups = detection_methods()
    membership, params = _membership(_sets(groups, {}))
    rows, columns = _query(
        conn,
        f"""
        select
            d.week_start as period_start,
            m.set_name,
            sum(d.hits) as hits,
            sum(d.reviewed) as reviewed,
            sum(d.confirmed) as confirmed,
            sum(d.false_positives) as false_positives,
            sum(d.pending) as pending,
            -- one method per set except `all`, whose median is not computable from the mart
            case when count(*) = 1 then max(d.median_minutes_to_review) end
                as median_minutes_to_review
        from marts.rpt_detection_quality_weekly as d
        inner join {membership} on d.detection_method = m.member
        where d.week_start between ? and ?
        group by all
        """,
        [*params, *_range(weeks)],
    )
    return _fill(DETECTION_QUALITY, weeks, groups, {}, rows, columns)


def load_list_statistics(conn, periods: list[Period], info: SnapshotInfo) -> TableData:
    groups = tuple(LIST_RULES)
    data = TableData(
        spec=LIST_STATISTICS, periods=periods, groups=list(groups), subtotals=LIST_SUBTOTALS
    )
    sets = _sets(groups, LIST_SUBTOTALS)
    for period in periods:
        start = local_midnight(period.start, info.reporting_tz)
        end = min(local_midnight(period.end + timedelta(days=1), info.reporting_tz), info.as_of)
        at_end = dict(
            conn.execute(
                "select tier || ':' || tier_reason, count(*) from marts.fct_user_tier_history "
                "where valid_from <= ? and (valid_to is null or valid_to > ?) group by 1",
                [end, end],
            ).fetchall()
        )
        entries = dict(
            conn.execute(
                """
                with stretches as (
                    select
                        tier, tier_reason, valid_from,
                        lag(tier) over (partition by user_ref order by valid_from) as before
                    from marts.fct_user_tier_history
                )
                select tier || ':' || tier_reason, count(*) from stretches
                where valid_from >= ? and valid_from < ?
                    and tier is distinct from coalesce(before, 'none')
                group by 1
                """,
                [start, end],
            ).fetchall()
        )
        for name, members in sets.items():
            data.values[(period.label, name)] = {
                "accounts_at_end": sum(at_end.get(m, 0) for m in members),
                "entries": sum(entries.get(m, 0) for m in members),
            }
    return data


def load_data_quality(conn, scopes: list[Period], info: SnapshotInfo) -> TableData:
    """Files and rows by feed, for files *ingested* in each scope (local dates)."""
    groups = tuple(f.feed for f in _feeds())
    data = TableData(spec=DATA_QUALITY, periods=scopes, groups=list(groups))
    membership, params = _membership(_sets(groups, {}))
    for scope in scopes:
        rows, columns = _query(
            conn,
            f"""
            select
                m.set_name,
                count(*) as files,
                count(*) filter (where l.outcome = 'rejected') as files_rejected,
                count(*) filter (where l.outcome = 'duplicate') as files_duplicate,
                count(*) filter (
                    where l.ingested_at > l.received_at + to_minutes(?)
                ) as files_late,
                coalesce(sum(l.rows_read), 0) as rows_read,
                coalesce(sum(l.rows_loaded), 0) as rows_loaded,
                coalesce(sum(l.rows_quarantined), 0) as rows_quarantined
            from marts.ops_ingest_ledger as l
            inner join {membership} on l.feed = m.member
            where cast(timezone(?, l.ingested_at) as date) between ? and ?
            group by all
            """,
            [LATE_FILE_MINUTES, *params, info.reporting_tz, scope.start, scope.end],
        )
        for name in data.row_groups:
            data.values[(scope.label, name)] = empty_row(DATA_QUALITY)
        for row in rows:
            record = dict(zip(columns, row, strict=True))
            group = record.pop("set_name")
            data.values[(scope.label, group)] = {m: int(v) for m, v in record.items()}
    return data


def _feeds():
    from ocse.contracts import all_contracts

    return all_contracts()


def ingestion_span(conn, info: SnapshotInfo) -> tuple[date, date] | None:
    row = conn.execute(
        "select cast(timezone(?, min(ingested_at)) as date), "
        "cast(timezone(?, max(ingested_at)) as date) from marts.ops_ingest_ledger",
        [info.reporting_tz, info.reporting_tz],
    ).fetchone()
    return None if row is None or row[0] is None else (row[0], row[1])
