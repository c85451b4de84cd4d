"""The queries of the metric pages, over the published marts of the serving snapshot.

Every function takes the snapshot first and goes through `queries._query`, so the rules of
`dashboards/queries.py` hold here too: read-only snapshot, `?` parameters only, constant SQL
text over allow-listed tables, and a cache keyed by role. Functions that return
individual-level rows (pseudonymous user references, content, report or case ids) refuse
any role outside `SEES_INDIVIDUALS` themselves, so a page bug cannot leak them.

Periods are dates in the reporting time zone, both ends included; the marts already carry
the local `report_date`, `week_start` and `month_start` of each fact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import pandas as pd

from dashboards.queries import SnapshotIdentity, _query, _role_scope
from ocse.access import sees_individuals

GRAINS = ("day", "week", "month")
CLOCKS = ("takedown", "evidence", "report_acknowledgement", "report_resolution", "referral")
TIERS = ("black", "grey", "white", "none")


class IndividualsNotAllowedError(PermissionError):
    """A role without access to individual-level rows asked for them."""


def _require_individuals() -> None:
    role = _role_scope()
    if not sees_individuals(role):
        from dashboards.auth import log_refusal  # auth is the page layer; imported late

        log_refusal("query", "individual_rows", {"query": _caller()})
        raise IndividualsNotAllowedError(f"the {role} role may not see individual-level rows")


def _caller() -> str:
    """The query function that asked (two frames up), for the refusal's log entry."""
    import sys

    return sys._getframe(2).f_code.co_name


@dataclass(frozen=True)
class Period:
    """Whole days [first_day, last_day] in the reporting time zone, and categories.

    `comparison` is the period the KPIs compare with, or None when there is none to make:
    the page's filter sets it only when the data covers all of it (components.period_filter),
    so a change is never a change of coverage."""

    first_day: date
    last_day: date
    categories: tuple[str, ...]
    comparison: Period | None = field(default=None, compare=False)

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    def previous(self) -> Period:
        """The period of the same length just before this one (period-over-period)."""
        return Period(
            self.first_day - timedelta(days=self.days),
            self.first_day - timedelta(days=1),
            self.categories,
        )

    def year_before(self) -> Period:
        """The same days one year earlier (29 February becomes the 28th)."""
        return Period(_year_before(self.first_day), _year_before(self.last_day), self.categories)

    def covered_by(self, data_first_day: date) -> bool:
        return self.first_day >= data_first_day

    def params(self) -> list[object]:
        return [self.first_day, self.last_day, list(self.categories)]


def _year_before(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


def _one_row(frame: pd.DataFrame) -> dict[str, object]:
    row = frame.to_dict("records")[0]
    return {key: (None if pd.isna(value) else value) for key, value in row.items()}


# --- reference ---------------------------------------------------------------------------


def categories(snapshot: SnapshotIdentity) -> pd.DataFrame:
    """The categories (eight of the guideline plus `unclassified`) and their labels."""
    return _query(
        snapshot,
        """
        select category_code, label_en, label_zh, is_zero_tolerance, is_csam, is_unclassified
        from marts.dim_categories
        order by is_unclassified, is_csam desc, is_zero_tolerance desc, category_code
        """,
    )


def category_labels(snapshot: SnapshotIdentity) -> dict[str, tuple[str, str]]:
    rows = categories(snapshot)
    return {row.category_code: (row.label_en, row.label_zh) for row in rows.itertuples(index=False)}


def data_days(snapshot: SnapshotIdentity) -> tuple[date, date] | None:
    """First and last local day with a takedown or report: the period filter's bounds."""
    rows = _query(
        snapshot,
        """
        select min(d) as first_day, max(d) as last_day from (
            select min(report_date) as d from marts.rpt_takedown_sla_daily
            union all select max(report_date) from marts.rpt_takedown_sla_daily
            union all select min(report_date) from marts.rpt_report_handling_daily
            union all select max(report_date) from marts.rpt_report_handling_daily
        )
        """,
    )
    first, last = rows.iloc[0]["first_day"], rows.iloc[0]["last_day"]
    if pd.isna(first):
        return None
    return pd.Timestamp(first).date(), pd.Timestamp(last).date()


# --- leadership overview -----------------------------------------------------------------


def takedown_summary(snapshot: SnapshotIdentity, period: Period) -> dict[str, object]:
    """Takedowns in the period (by local day of `taken_down_at`): volumes, the one-hour
    rule's compliance, exposure quantiles over content that was visible, proactive share."""
    return _one_row(
        _query(
            snapshot,
            """
            select
                count(*) as takedowns,
                count(*) filter (where is_prevented) as prevented,
                count(*) filter (where is_within_sla) as within_sla,
                count(*) filter (where is_within_sla) / nullif(count(*), 0) as compliance_rate,
                quantile_cont(exposure_minutes, 0.5) filter (where not is_prevented)
                    as median_exposure_minutes,
                quantile_cont(exposure_minutes, 0.9) filter (where not is_prevented)
                    as p90_exposure_minutes,
                count(*) filter (where trigger = 'proactive') / nullif(count(*), 0)
                    as proactive_share,
                count(*) filter (where is_evidence_on_time) / nullif(count(*), 0)
                    as evidence_on_time_rate
            from marts.fct_content_takedowns
            where report_date between ? and ? and list_contains(?, category_code)
            """,
            period.params(),
        )
    )


def csam_takedown_summary(snapshot: SnapshotIdentity, period: Period) -> dict[str, object]:
    """The same for CSAM categories only: the one-hour rule's headline."""
    return _one_row(
        _query(
            snapshot,
            """
            select
                count(*) as takedowns,
                count(*) filter (where t.is_within_sla) / nullif(count(*), 0)
                    as compliance_rate,
                quantile_cont(t.exposure_minutes, 0.9) filter (where not t.is_prevented)
                    as p90_exposure_minutes
            from marts.fct_content_takedowns as t
            inner join marts.dim_categories as c using (category_code)
            where c.is_csam and t.report_date between ? and ?
                and list_contains(?, t.category_code)
            """,
            period.params(),
        )
    )


def report_summary(snapshot: SnapshotIdentity, period: Period) -> dict[str, object]:
    return _one_row(
        _query(
            snapshot,
            """
            select
                cast(coalesce(sum(received), 0) as bigint) as received,
                sum(ack_on_time) / nullif(sum(ack_decided), 0) as ack_compliance_rate,
                sum(resolution_on_time) / nullif(sum(resolution_decided), 0)
                    as resolution_compliance_rate,
                cast(coalesce(sum(resolved), 0) as bigint) as resolved,
                sum(feedback_sent) / nullif(sum(resolved), 0) as feedback_rate
            from marts.rpt_report_handling_daily
            where report_date between ? and ? and list_contains(?, category_code)
            """,
            period.params(),
        )
    )


def case_summary(snapshot: SnapshotIdentity, period: Period, tz: str) -> dict[str, object]:
    """Cases opened in the period (local day of `opened_at`) and their victims' support."""
    return _one_row(
        _query(
            snapshot,
            """
            select
                count(*) as cases_opened,
                count(confirmed_at) as confirmed,
                count(referred_at) as referred,
                count(*) filter (where is_referral_within_target)
                    / nullif(count(is_referral_within_target), 0) as referral_compliance_rate,
                count(*) filter (where outcome in ('prosecuted', 'convicted')) as prosecuted,
                cast(coalesce(sum(victims_count), 0) as bigint) as victims,
                count(*) filter (where victims_count > 0) as cases_with_victims,
                count(*) filter (where victim_support in ('offered', 'accepted', 'declined'))
                    as support_offered,
                count(*) filter (where victim_support = 'accepted') as support_accepted,
                count(*) filter (where victim_support in ('offered', 'accepted', 'declined'))
                    / nullif(count(*) filter (where victims_count > 0), 0)
                    as support_offered_rate
            from marts.fct_cases
            where cast(timezone(?, opened_at) as date) between ? and ?
                and list_contains(?, category_code)
            """,
            [tz, *period.params()],
        )
    )


def tier_counts(snapshot: SnapshotIdentity) -> dict[str, int]:
    """Accounts per tier at T (`dim_user_tiers`)."""
    rows = _query(
        snapshot, "select tier, count(*) as users from marts.dim_user_tiers group by tier"
    )
    counts = dict(zip(rows["tier"], rows["users"].astype(int), strict=True))
    return {tier: int(counts.get(tier, 0)) for tier in TIERS}


def tier_counts_at(snapshot: SnapshotIdentity, day: date, tz: str) -> dict[str, int]:
    """Accounts per tier at the end of a local day (`rpt_tier_counts_daily`: accounts whose
    tier history stretch covers the day's end). A day after the mart's last day (the day of
    T) reads that last day, the state at T; a day before its first reads 0. The mart's days
    are in the snapshot's reporting time zone, which is what pages pass as `tz`."""
    del tz  # the mart's report_date is already local
    rows = _query(
        snapshot,
        """
        select tier, users
        from marts.rpt_tier_counts_daily
        where report_date = least(
            cast(? as date), (select max(report_date) from marts.rpt_tier_counts_daily)
        )
        """,
        [day],
    )
    counts = dict(zip(rows["tier"], rows["users"].astype(int), strict=True))
    return {tier: int(counts.get(tier, 0)) for tier in TIERS}


def takedowns_daily(snapshot: SnapshotIdentity, period: Period) -> pd.DataFrame:
    """Per local day: takedowns, within the SLA, compliance, p90 exposure of the day's mart
    row weighted is not meaningful across categories, so the chart shows counts and rate."""
    return _query(
        snapshot,
        """
        select
            report_date,
            cast(sum(takedowns) as bigint) as takedowns,
            cast(sum(within_sla) as bigint) as within_sla,
            cast(sum(prevented) as bigint) as prevented,
            sum(within_sla) / nullif(sum(takedowns), 0) as compliance_rate
        from marts.rpt_takedown_sla_daily
        where report_date between ? and ? and list_contains(?, category_code)
        group by report_date
        order by report_date
        """,
        period.params(),
    )


def takedowns_by_category(snapshot: SnapshotIdentity, period: Period) -> pd.DataFrame:
    return _query(
        snapshot,
        """
        select
            category_code,
            count(*) as takedowns,
            count(*) filter (where is_within_sla) as within_sla,
            count(*) filter (where is_within_sla) / nullif(count(*), 0) as compliance_rate,
            quantile_cont(exposure_minutes, 0.5) filter (where not is_prevented)
                as median_exposure_minutes
        from marts.fct_content_takedowns
        where report_date between ? and ? and list_contains(?, category_code)
        group by category_code
        order by takedowns desc, category_code
        """,
        period.params(),
    )


# --- SLA compliance ----------------------------------------------------------------------

# The clocks come from marts.fct_sla_clocks: one row per clock, dated by the local day the
# rpt_* mart of the same metric dates it (takedown day, day received, day opened), so the
# page's rates reconcile with those marts (tests/test_dashboard_truth.py).


def sla_compliance_series(
    snapshot: SnapshotIdentity, period: Period, grain: str, tz: str
) -> pd.DataFrame:
    """Per (period_start, clock): clocks decided, on time, compliance rate."""
    del tz  # the mart's report_date is already local
    if grain not in GRAINS:
        raise ValueError(f"grain must be one of {GRAINS}, not {grain!r}")
    return _query(
        snapshot,
        """
        select
            cast(date_trunc(?, report_date) as date) as period_start,
            clock,
            count(*) as decided,
            count(*) filter (where is_on_time) as on_time,
            count(*) filter (where is_on_time) / count(*) as compliance_rate
        from marts.fct_sla_clocks
        where is_decided and report_date between ? and ? and list_contains(?, category_code)
        group by all
        order by period_start, clock
        """,
        [grain, *period.params()],
    )


def sla_compliance_by_category(snapshot: SnapshotIdentity, period: Period, tz: str) -> pd.DataFrame:
    """Per (category, clock) over the whole period."""
    del tz
    return _query(
        snapshot,
        """
        select
            category_code,
            clock,
            count(*) as decided,
            count(*) filter (where is_on_time) as on_time,
            count(*) filter (where is_on_time) / count(*) as compliance_rate
        from marts.fct_sla_clocks
        where is_decided and report_date between ? and ? and list_contains(?, category_code)
        group by all
        order by category_code, clock
        """,
        period.params(),
    )


def sla_targets(snapshot: SnapshotIdentity) -> pd.DataFrame:
    """Targets of the policy version in force at T."""
    return _query(
        snapshot,
        """
        select clock, category_code, target_minutes, near_breach_share, policy_version
        from marts.dim_policy_sla_targets
        where valid_to is null
        order by clock, category_code
        """,
    )


# --- trends ------------------------------------------------------------------------------


def category_trends(snapshot: SnapshotIdentity, period: Period) -> pd.DataFrame:
    """Weeks whose Monday falls in the period."""
    return _query(
        snapshot,
        """
        select week_start, category_code, confirmed_hits, reports_received, takedowns,
            proactive_takedowns, proactive_share, takedowns_prev_week, is_spike
        from marts.rpt_category_trends_weekly
        where week_start between ? and ? and list_contains(?, category_code)
        order by week_start, category_code
        """,
        period.params(),
    )


def trend_weeks(snapshot: SnapshotIdentity) -> tuple[date, date]:
    """First and last week of `rpt_category_trends_weekly` (the spike rule's history)."""
    row = _query(
        snapshot,
        "select min(week_start) as first, max(week_start) as last "
        "from marts.rpt_category_trends_weekly",
    ).iloc[0]
    return pd.Timestamp(row["first"]).date(), pd.Timestamp(row["last"]).date()


def detection_quality(snapshot: SnapshotIdentity, period: Period) -> pd.DataFrame:
    return _query(
        snapshot,
        """
        select week_start, detection_method, hits, reviewed, confirmed, false_positives,
            pending, precision, median_minutes_to_review
        from marts.rpt_detection_quality_weekly
        where week_start between ? and ?
        order by week_start, detection_method
        """,
        [period.first_day, period.last_day],
    )


def detection_quality_totals(snapshot: SnapshotIdentity, period: Period) -> pd.DataFrame:
    """Per method over the period; precision = confirmed / reviewed of the summed weeks."""
    return _query(
        snapshot,
        """
        select
            detection_method,
            cast(sum(hits) as bigint) as hits,
            cast(sum(reviewed) as bigint) as reviewed,
            cast(sum(confirmed) as bigint) as confirmed,
            cast(sum(false_positives) as bigint) as false_positives,
            cast(sum(pending) as bigint) as pending,
            sum(confirmed) / nullif(sum(reviewed), 0) as precision
        from marts.rpt_detection_quality_weekly
        where week_start between ? and ?
        group by detection_method
        order by hits desc, detection_method
        """,
        [period.first_day, period.last_day],
    )


# --- repeat offenders --------------------------------------------------------------------


def tier_reasons(snapshot: SnapshotIdentity) -> pd.DataFrame:
    """Black and grey accounts per rule that put them there (counts, for every role)."""
    return _query(
        snapshot,
        """
        select tier, tier_reason, count(*) as users
        from marts.dim_user_tiers
        where tier in ('black', 'grey')
        group by all
        order by tier, users desc, tier_reason
        """,
    )


def tier_counts_weekly(snapshot: SnapshotIdentity, period: Period, tz: str) -> pd.DataFrame:
    """Black and grey accounts at the end of each ISO week in the period (the row of its
    Sunday in `rpt_tier_counts_daily`; for the week of T, and any later, the day of T: the
    state at T). Weeks or tiers with no account have no row. `tz` is the snapshot's
    reporting time zone, in which the mart's days already are."""
    del tz  # the mart's report_date is already local
    return _query(
        snapshot,
        """
        with weeks as (
            select cast(w as date) as week_start
            from range(
                cast(date_trunc('week', cast(? as date)) as timestamp),
                cast(? as date) + interval 1 day,
                interval 7 day
            ) as r(w)
        ),
        last_day as (select max(report_date) as report_date from marts.rpt_tier_counts_daily)
        select weeks.week_start, c.tier, c.users
        from weeks
        cross join last_day
        inner join marts.rpt_tier_counts_daily as c
            on c.report_date = least(weeks.week_start + 6, last_day.report_date)
            and c.tier in ('black', 'grey')
            and c.users > 0
        order by weeks.week_start, c.tier
        """,
        [period.first_day, period.last_day],
    )


_OFFENDER_FILTER = """
    from marts.rpt_repeat_offenders
    where list_contains(?, tier) and (? = '' or contains(lower(user_ref), lower(?)))
"""


def repeat_offender_count(snapshot: SnapshotIdentity, tiers: tuple[str, ...], search: str) -> int:
    """How many listed accounts the list's filter matches (the pager's total)."""
    _require_individuals()
    rows = _query(
        snapshot, f"select count(*) as n {_OFFENDER_FILTER}", [list(tiers), search, search]
    )
    return int(rows.iloc[0]["n"])


def repeat_offenders(
    snapshot: SnapshotIdentity,
    tiers: tuple[str, ...],
    search: str = "",
    *,
    limit: int,
    offset: int = 0,
) -> pd.DataFrame:
    """One page of the list: pseudonymous references. Operations and admin only."""
    _require_individuals()
    return _query(
        snapshot,
        f"""
        select offender_rank, user_ref, tier, tier_reason, violations_total, violations_180d,
            zero_tolerance_violations, reports_30d, top_category_code, last_violation_at,
            tier_since
        {_OFFENDER_FILTER}
        order by offender_rank
        limit ? offset ?
        """,
        [list(tiers), search, search, limit, offset],
    )


def tier_history(snapshot: SnapshotIdentity, user_ref: str) -> pd.DataFrame:
    """One account's tier over time, newest first. Operations and admin only."""
    _require_individuals()
    return _query(
        snapshot,
        """
        select * exclude (user_ref)
        from marts.fct_user_tier_history
        where user_ref = ?
        order by valid_from desc
        """,
        [user_ref],
    )


def account_takedowns(snapshot: SnapshotIdentity, user_ref: str) -> pd.DataFrame:
    """The account's violations at T: its content taken down. Operations and admin only."""
    _require_individuals()
    return _query(
        snapshot,
        """
        select taken_down_at, content_id, category_code, trigger
        from marts.fct_content_takedowns
        where user_ref = ?
        order by taken_down_at desc
        """,
        [user_ref],
    )


# --- cases and victim support ------------------------------------------------------------


def case_outcomes_monthly(snapshot: SnapshotIdentity, period: Period) -> pd.DataFrame:
    """Months that overlap the period."""
    return _query(
        snapshot,
        """
        select
            month_start,
            cast(sum(cases_opened) as bigint) as cases_opened,
            cast(sum(confirmed) as bigint) as confirmed,
            cast(sum(referred) as bigint) as referred,
            sum(referral_on_time) / nullif(sum(referral_decided), 0)
                as referral_compliance_rate,
            cast(sum(authority_accepted) as bigint) as authority_accepted,
            cast(sum(prosecuted) as bigint) as prosecuted,
            cast(sum(convicted) as bigint) as convicted,
            cast(sum(victims) as bigint) as victims,
            cast(sum(support_offered) as bigint) as support_offered,
            cast(sum(support_accepted) as bigint) as support_accepted
        from marts.rpt_case_outcomes_monthly
        where month_start between cast(date_trunc('month', cast(? as date)) as date) and ?
            and list_contains(?, category_code)
        group by month_start
        order by month_start
        """,
        period.params(),
    )


def case_funnel(snapshot: SnapshotIdentity, period: Period, tz: str) -> dict[str, object]:
    return _one_row(
        _query(
            snapshot,
            """
            select
                count(*) as opened,
                count(confirmed_at) as confirmed,
                count(referred_at) as referred,
                count(authority_accepted_at) as authority_accepted,
                count(*) filter (where outcome in ('prosecuted', 'convicted')) as prosecuted,
                count(*) filter (where outcome = 'convicted') as convicted,
                quantile_cont(hours_to_referral, 0.5) as median_hours_to_referral
            from marts.fct_cases
            where cast(timezone(?, opened_at) as date) between ? and ?
                and list_contains(?, category_code)
            """,
            [tz, *period.params()],
        )
    )


def victim_support(snapshot: SnapshotIdentity, period: Period, tz: str) -> pd.DataFrame:
    """Cases with victims, by youngest victim's age band and support given."""
    return _query(
        snapshot,
        """
        select
            coalesce(youngest_victim_age_band, 'unknown') as age_band,
            coalesce(victim_support, 'unknown') as victim_support,
            count(*) as cases,
            cast(sum(victims_count) as bigint) as victims
        from marts.fct_cases
        where victims_count > 0
            and cast(timezone(?, opened_at) as date) between ? and ?
            and list_contains(?, category_code)
        group by all
        order by age_band, victim_support
        """,
        [tz, *period.params()],
    )


# --- operations queue --------------------------------------------------------------------


def open_clocks(snapshot: SnapshotIdentity, clocks: tuple[str, ...]) -> pd.DataFrame:
    """Running clocks past 75% of target, worst first. Operations and admin only."""
    _require_individuals()
    return _open_clocks(snapshot, clocks)


def open_clocks_display(snapshot: SnapshotIdentity, clocks: tuple[str, ...]) -> pd.DataFrame:
    """The queue of `open_clocks` without the subject ids, for a wall display: which clock,
    category, how late; nothing that identifies content, a report or a case."""
    return _open_clocks(snapshot, clocks).drop(columns=["subject_id"])


def _open_clocks(snapshot: SnapshotIdentity, clocks: tuple[str, ...]) -> pd.DataFrame:
    return _query(
        snapshot,
        """
        select b.clock, b.subject_id, b.category_code, b.status, b.clock_started_at,
            b.deadline_at, b.target_minutes, b.elapsed_minutes,
            b.elapsed_minutes / b.target_minutes as used_share,
            coalesce(c.is_csam, false) as is_csam
        from marts.fct_open_sla_breaches as b
        left join marts.dim_categories as c on b.category_code = c.category_code
        where list_contains(?, b.clock)
        order by (b.status = 'breach') desc, b.elapsed_minutes / b.target_minutes desc,
            b.subject_id
        """,
        [list(clocks)],
    )


def open_clock_counts(snapshot: SnapshotIdentity) -> pd.DataFrame:
    return _query(
        snapshot,
        """
        select clock, status, count(*) as clocks
        from marts.fct_open_sla_breaches
        group by all
        order by clock, status
        """,
    )


def subject_events(snapshot: SnapshotIdentity, subject_id: str) -> pd.DataFrame:
    """Everything known at T about one content, report or case. Operations and admin only."""
    _require_individuals()
    return _query(
        snapshot,
        """
        select event_at, event, source_id, detail, category_code, user_ref
        from marts.fct_subject_events
        where subject_id = ?
        order by event_at, event, source_id
        """,
        [subject_id],
    )


def subject_clocks(snapshot: SnapshotIdentity, subject_id: str) -> pd.DataFrame:
    """Every SLA clock of one subject, decided or running. Operations and admin only."""
    _require_individuals()
    return _query(
        snapshot,
        """
        select clock, state, clock_started_at, deadline_at, stopped_at, elapsed_minutes,
            target_minutes
        from marts.fct_sla_clocks
        where subject_id = ?
        order by clock_started_at, clock
        """,
        [subject_id],
    )


def alert_history(
    snapshot: SnapshotIdentity, limit: int = 200, subject_id: str | None = None
) -> pd.DataFrame:
    """Alerts raised, newest first, with how each channel's delivery went; all of them or
    those about one subject. Operations only."""
    _require_individuals()
    return _query(
        snapshot,
        """
        with per_alert as (
            select
                alert_key,
                string_agg(channel || ': ' || state, ', ' order by channel) as deliveries,
                max(last_error) as last_error
            from alerts.deliveries
            group by alert_key
        )
        select
            o.raised_at, o.alert_type, o.status, o.severity, o.subject_id, o.category_code,
            o.title, cast(o.payload as varchar) as payload, o.resolved_at, d.deliveries,
            d.last_error
        from alerts.outbox as o
        left join per_alert as d on o.alert_key = d.alert_key
        where ? is null or o.subject_id = ?
        order by o.raised_at desc, o.alert_key
        limit ?
        """,
        [subject_id, subject_id, limit],
    )


# --- methodology -------------------------------------------------------------------------


def definitions(snapshot: SnapshotIdentity) -> pd.DataFrame:
    return _query(
        snapshot,
        """
        select table_name, column_name, data_type, description, ordinal
        from meta.definitions
        order by table_name, ordinal
        """,
    )


def policy_versions(snapshot: SnapshotIdentity) -> pd.DataFrame:
    return _query(
        snapshot,
        """
        select policy_version, valid_from, valid_to, near_breach_share, approved_by, description
        from marts.dim_policy_versions
        order by policy_version desc
        """,
    )


def tier_rules(snapshot: SnapshotIdentity) -> pd.DataFrame:
    return _query(
        snapshot,
        "select * from marts.dim_policy_tier_rules where valid_to is null order by 1, 2",
    )


# --- the rows behind a KPI ------------------------------------------------------------------
# Each KPI group has two views of its rows: the published rpt_* rows (every role that sees
# the KPI) and, for roles that see individuals, the fct_* rows themselves, a page at a time.

ROWS_BEHIND = {
    # group -> (rpt table and its columns, fct table, its columns, its local-day expression)
    "takedowns": (
        "marts.rpt_takedown_sla_daily",
        "report_date, category_code, takedowns, prevented, within_sla, breached, "
        "compliance_rate, median_exposure_minutes, p90_exposure_minutes, evidence_on_time_rate",
        "marts.fct_content_takedowns",
        "content_id, category_code, trigger, posted_at, taken_down_at, exposure_minutes, "
        "sla_target_minutes, is_within_sla, is_evidence_on_time",
        "report_date",
    ),
    "reports": (
        "marts.rpt_report_handling_daily",
        "report_date, channel, category_code, received, ack_decided, ack_on_time, "
        "resolution_decided, resolution_on_time, resolved, feedback_sent",
        "marts.fct_reports",
        "report_id, category_code, channel, received_at, acknowledged_at, resolved_at, "
        "is_ack_within_target, is_resolution_within_target, feedback_sent_at",
        "report_date",
    ),
    "cases": (
        "marts.rpt_case_outcomes_monthly",
        "month_start, category_code, cases_opened, confirmed, referred, referral_decided, "
        "referral_on_time, prosecuted, convicted, victims, support_offered",
        "marts.fct_cases",
        "case_id, category_code, opened_at, confirmed_at, referred_at, "
        "is_referral_within_target, victims_count, victim_support, outcome",
        "cast(timezone(?, opened_at) as date)",
    ),
}


_NEWEST_FIRST = {"takedowns": "taken_down_at", "reports": "received_at", "cases": "opened_at"}


def published_rows(snapshot: SnapshotIdentity, group: str, period: Period) -> pd.DataFrame:
    """The rpt_* rows a KPI group sums over the period (monthly marts: months overlapping)."""
    table, columns, *_ = ROWS_BEHIND[group]
    day = "month_start" if group == "cases" else "report_date"
    low = "cast(date_trunc('month', cast(? as date)) as date)" if group == "cases" else "?"
    return _query(
        snapshot,
        f"""
        select {columns} from {table}
        where {day} between {low} and ? and list_contains(?, category_code)
        order by {day}, category_code
        """,
        period.params(),
    )


def individual_rows(
    snapshot: SnapshotIdentity, group: str, period: Period, tz: str, *, limit: int, offset: int
) -> pd.DataFrame:
    """One page of the fct_* rows behind a KPI group, newest first. Operations and admin."""
    _require_individuals()
    _, _, table, columns, day = ROWS_BEHIND[group]
    zone = [tz] if "?" in day else []
    return _query(
        snapshot,
        f"select {columns} from {table} "
        f"where {day} between ? and ? and list_contains(?, category_code) "
        f"order by {_NEWEST_FIRST[group]} desc, 1 limit ? offset ?",
        [*zone, *period.params(), limit, offset],
    )


def individual_row_count(snapshot: SnapshotIdentity, group: str, period: Period, tz: str) -> int:
    """How many fct_* rows are behind a KPI group (the pager's total). Operations and admin."""
    _require_individuals()
    _, _, table, _, day = ROWS_BEHIND[group]
    zone = [tz] if "?" in day else []
    rows = _query(
        snapshot,
        f"select count(*) as n from {table} "
        f"where {day} between ? and ? and list_contains(?, category_code)",
        [*zone, *period.params()],
    )
    return int(rows.iloc[0]["n"])
