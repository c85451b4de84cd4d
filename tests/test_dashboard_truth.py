"""The dashboards tell the truth: every KPI a page shows equals the published mart's figure
for the same filters, every page reads exactly the tables it declares (and dbt's exposures
are generated from those declarations), every code a mart holds has a label in both
languages, and a change is shown only against a period the data fully covers.

The world is one real pipeline run on generated data (tests/dashboard_world.py), shared with
tests/test_dashboards.py.
"""

from __future__ import annotations

import math
import re
from datetime import date, timedelta

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dashboards import exposures, labels, queries
from dashboards import mart_queries as mq
from dashboards.components import format_minutes, preset_period
from dashboards.formatting import format_rate
from ocse.access import PAGE_ACCESS
from ocse.serving import open_snapshot
from tests.dashboard_world import PAGE_FILES, ROOT, sign_in, world_env

PAGES = [page for page in PAGE_ACCESS if (ROOT / "dashboards" / PAGE_FILES[page]).exists()]


@pytest.fixture(scope="module")
def world(dashboard_world_built):
    with pytest.MonkeyPatch.context() as mp:
        world_env(dashboard_world_built, mp)
        yield dashboard_world_built
        queries.close()


@pytest.fixture(scope="module")
def con(world):
    connection = open_snapshot(world.serving)
    yield connection
    connection.close()


def run_page(page: str, role: str, *, language: str = "en", state: dict | None = None):
    at = AppTest.from_file(str(ROOT / "dashboards" / PAGE_FILES[page]), default_timeout=180)
    sign_in(at, role)
    at.session_state["ocse_language"] = language
    for key, value in (state or {}).items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def one(con, sql: str, params: list | None = None):
    return con.execute(sql, params or []).fetchone()[0]


def data_bounds(con) -> tuple[date, date]:
    first, last = con.execute(
        "select min(d), max(d) from (select report_date as d from marts.rpt_takedown_sla_daily "
        "union all select report_date from marts.rpt_report_handling_daily)"
    ).fetchone()
    return first, last


def default_period(con) -> tuple[date, date]:
    return preset_period("30d", data_bounds(con)[1])


def csam_codes(con) -> list[str]:
    return [
        r[0]
        for r in con.execute(
            "select category_code from marts.dim_categories where is_csam"
        ).fetchall()
    ]


def rate(numerator, denominator) -> str:
    return format_rate(None if not denominator else numerator / denominator)


# --- every KPI equals the mart -------------------------------------------------------------


def test_overview_kpis_equal_the_rpt_marts(world, con) -> None:
    first, last = default_period(con)
    shown = metrics(run_page("overview", "leadership"))
    takedowns, within = con.execute(
        "select sum(takedowns), sum(within_sla) from marts.rpt_takedown_sla_daily "
        "where report_date between ? and ?",
        [first, last],
    ).fetchone()
    csam, csam_within = con.execute(
        "select sum(takedowns), sum(within_sla) from marts.rpt_takedown_sla_daily "
        "where report_date between ? and ? and list_contains(?, category_code)",
        [first, last, csam_codes(con)],
    ).fetchone()
    received, ack_on_time, ack_decided = con.execute(
        "select sum(received), sum(ack_on_time), sum(ack_decided) "
        "from marts.rpt_report_handling_daily where report_date between ? and ?",
        [first, last],
    ).fetchone()
    tiers = dict(
        con.execute(
            "select tier, users from marts.rpt_tier_counts_daily "
            "where report_date = (select max(report_date) from marts.rpt_tier_counts_daily)"
        ).fetchall()
    )
    assert shown["Takedowns"] == f"{takedowns:,}"
    assert shown["Within SLA"] == rate(within, takedowns)
    assert shown["Takedowns (CSAM)"] == f"{csam:,}"
    assert shown["CSAM taken down within 1 h"] == rate(csam_within, csam)
    assert shown["Reports received"] == f"{received:,}"
    assert shown["Acknowledged on time"] == rate(ack_on_time, ack_decided)
    assert shown["Black list"] == f"{tiers.get('black', 0):,}"
    assert shown["Grey list"] == f"{tiers.get('grey', 0):,}"
    # Quantiles do not add up across days: the page takes them over fct_content_takedowns
    # (the documented aggregation), which the cell test below ties to the rpt mart.
    exposure = con.execute(
        "select exposure_minutes from marts.fct_content_takedowns "
        "where report_date between ? and ? and not is_prevented",
        [first, last],
    ).df()["exposure_minutes"]
    assert shown["Median exposure"] == format_minutes(exposure.quantile(0.5))
    assert shown["p90 exposure"] == format_minutes(exposure.quantile(0.9))


def test_the_pages_aggregations_equal_the_rpt_mart_cell_by_cell(world, con) -> None:
    """Over one (day, category) the page's figures are exactly the rpt row's: the same
    definition, not a second one that happens to agree on totals."""
    cells = con.execute(
        "select report_date, category_code, takedowns, within_sla, compliance_rate, "
        "median_exposure_minutes, p90_exposure_minutes, evidence_on_time_rate "
        "from marts.rpt_takedown_sla_daily order by takedowns desc, report_date limit 25"
    ).df()
    snapshot = queries.snapshot_identity(world.serving)
    with queries.acting_as("assessor"):
        for row in cells.itertuples(index=False):
            day = pd.Timestamp(row.report_date).date()
            got = mq.takedown_summary(snapshot, mq.Period(day, day, (row.category_code,)))
            assert got["takedowns"] == row.takedowns
            assert got["within_sla"] == row.within_sla
            assert math.isclose(got["compliance_rate"], row.compliance_rate, rel_tol=1e-12)
            assert math.isclose(
                got["evidence_on_time_rate"], row.evidence_on_time_rate, rel_tol=1e-12
            )
            for mine, theirs in (
                (got["median_exposure_minutes"], row.median_exposure_minutes),
                (got["p90_exposure_minutes"], row.p90_exposure_minutes),
            ):
                if pd.isna(theirs):
                    assert mine is None
                else:
                    assert math.isclose(mine, theirs, rel_tol=1e-9)


def test_proactive_share_and_cases_equal_their_rpt_marts(world, con) -> None:
    snapshot = queries.snapshot_identity(world.serving)
    weeks = con.execute(
        "select week_start, category_code, takedowns, proactive_share "
        "from marts.rpt_category_trends_weekly where takedowns > 0 order by takedowns desc limit 10"
    ).df()
    months = con.execute(
        "select month_start, category_code, cases_opened, referral_decided, referral_on_time, "
        "victims, support_offered, median_hours_to_referral "
        "from marts.rpt_case_outcomes_monthly where cases_opened > 0"
    ).df()
    assert not weeks.empty and not months.empty
    with queries.acting_as("leadership"):
        for row in weeks.itertuples(index=False):
            monday = pd.Timestamp(row.week_start).date()
            period = mq.Period(monday, monday + timedelta(days=6), (row.category_code,))
            got = mq.takedown_summary(snapshot, period)
            assert got["takedowns"] == row.takedowns
            assert math.isclose(got["proactive_share"], row.proactive_share, rel_tol=1e-12)
        tz = queries.snapshot_info(snapshot).reporting_tz
        for row in months.itertuples(index=False):
            start = pd.Timestamp(row.month_start).date()
            end = (start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
            period = mq.Period(start, end, (row.category_code,))
            got = mq.case_summary(snapshot, period, tz)
            assert got["cases_opened"] == row.cases_opened
            assert got["victims"] == row.victims
            assert got["support_offered"] == row.support_offered
            if row.referral_decided:
                expected = row.referral_on_time / row.referral_decided
                assert math.isclose(got["referral_compliance_rate"], expected, rel_tol=1e-12)
            funnel = mq.case_funnel(snapshot, period, tz)
            if pd.isna(row.median_hours_to_referral):
                assert funnel["median_hours_to_referral"] is None
            else:
                assert math.isclose(
                    funnel["median_hours_to_referral"], row.median_hours_to_referral, rel_tol=1e-9
                )


def test_sla_page_kpis_equal_the_rpt_marts(world, con) -> None:
    first, last = default_period(con)
    shown = metrics(run_page("sla", "assessor"))
    takedowns, within, evidence = con.execute(
        "select sum(takedowns), sum(within_sla), sum(round(evidence_on_time_rate * takedowns)) "
        "from marts.rpt_takedown_sla_daily where report_date between ? and ?",
        [first, last],
    ).fetchone()
    reports = con.execute(
        "select sum(ack_on_time), sum(ack_decided), sum(resolution_on_time), "
        "sum(resolution_decided) from marts.rpt_report_handling_daily "
        "where report_date between ? and ?",
        [first, last],
    ).fetchone()
    assert shown["Takedown"] == rate(within, takedowns)
    assert shown["Evidence preserved by takedown"] == rate(evidence, takedowns)
    assert shown["Report acknowledged"] == rate(reports[0], reports[1])
    assert shown["Report resolved"] == rate(reports[2], reports[3])
    # Referral: rpt_case_outcomes_monthly is monthly, so compare over whole months.
    snapshot = queries.snapshot_identity(world.serving)
    month = con.execute(
        "select month_start, sum(referral_decided), sum(referral_on_time) "
        "from marts.rpt_case_outcomes_monthly group by 1 having sum(referral_decided) > 0 "
        "order by 1 limit 1"
    ).fetchone()
    start = month[0]
    end = (start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    with queries.acting_as("assessor"):
        categories = tuple(mq.category_labels(snapshot))
        frame = mq.sla_compliance_by_category(snapshot, mq.Period(start, end, categories), "UTC")
    referral = frame[frame["clock"] == "referral"]
    assert int(referral["decided"].sum()) == month[1]
    assert int(referral["on_time"].sum()) == month[2]


def test_offender_and_queue_counts_equal_their_marts(world, con) -> None:
    shown = metrics(run_page("offenders", "assessor"))
    for tier, heading in (("black", "Black"), ("grey", "Grey"), ("white", "White")):
        users = one(con, "select count(*) from marts.dim_user_tiers where tier = ?", [tier])
        assert shown[heading] == f"{users:,}"
    at = run_page("operations_queue", "operations")
    queue = metrics(at)
    open_clocks = dict(
        con.execute("select clock, count(*) from marts.fct_open_sla_breaches group by 1").fetchall()
    )
    assert queue["Takedown"] == f"{open_clocks.get('takedown', 0):,}"
    assert queue["Referral to the authority"] == f"{open_clocks.get('referral', 0):,}"


def test_the_offender_list_pages_and_searches_instead_of_a_silent_cap(world, con) -> None:
    listed = one(con, "select count(*) from marts.rpt_repeat_offenders")
    at = run_page("offenders", "operations")
    captions = " ".join(c.value for c in at.caption)
    assert f"of {listed:,}" in captions
    (shown,) = [f.value for f in at.dataframe if "user_ref" in f.value.columns]
    assert len(shown) == min(listed, 50)  # the first page of the list
    reference = one(
        con, "select user_ref from marts.rpt_repeat_offenders order by offender_rank desc"
    )
    at.text_input(key="offenders_search").set_value(reference[3:12]).run()
    assert not at.exception
    (shown,) = [f.value for f in at.dataframe if "user_ref" in f.value.columns]
    assert reference in set(shown["user_ref"])


# --- what a page reads -----------------------------------------------------------------------


def test_exposures_are_generated_from_the_pages() -> None:
    assert exposures.main(["--check"]) == 0, "run: python -m dashboards.exposures"


@pytest.mark.parametrize("page", PAGES)
def test_each_page_reads_exactly_the_tables_it_declares(world, page: str) -> None:
    role = "admin"
    declared = exposures.declared_reads(ROOT / "dashboards" / PAGE_FILES[page])
    assert declared is not None and declared[0] == page
    queries.sql_log = []
    try:
        run_page(page, role)
        log = list(queries.sql_log)
    finally:
        queries.sql_log = None
    read = {
        name
        for name, qualified in queries.TABLES.items()
        for sql in log
        if re.search(rf"\b{re.escape(qualified)}\b", sql)
    }
    read.discard("snapshot")  # the frame's as-of line, on every page
    assert read <= set(declared[1]), f"{page} reads undeclared {read - set(declared[1])}"
    # Tables only a selected row, a chosen view or a button reads, and the research
    # export's own reads.
    rows_behind = {
        table.split(".")[1] for spec in mq.ROWS_BEHIND.values() for table in (spec[0], spec[2])
    }
    on_demand = {
        "operations_queue": {"fct_subject_events", "fct_sla_clocks"},
        "overview": rows_behind | {"rpt_tier_counts_daily"},  # the list at the period's start
        "sla": rows_behind,
        "cases": rows_behind,
        "research": set(declared[1]) - {"dim_categories"},
    }.get(page, set())
    unread = set(declared[1]) - read - on_demand
    assert not unread, f"{page} declares {unread} but does not read them"


# --- labels --------------------------------------------------------------------------------

CODED_COLUMNS = [
    ("marts.fct_open_sla_breaches", "clock", labels.CLOCKS),
    ("marts.fct_open_sla_breaches", "status", labels.BREACH_STATUS),
    ("marts.fct_sla_clocks", "clock", labels.CLOCKS),
    ("marts.fct_sla_clocks", "state", labels.CLOCK_STATES),
    ("marts.fct_subject_events", "event", labels.SUBJECT_EVENTS),
    ("marts.fct_subject_events", "detail", labels.EVENT_DETAILS),
    ("alerts.outbox", "alert_type", labels.ALERT_TYPES),
    ("alerts.outbox", "severity", labels.SEVERITIES),
    ("alerts.outbox", "status", labels.BREACH_STATUS),
    ("marts.dim_user_tiers", "tier", labels.TIERS),
    ("marts.dim_user_tiers", "tier_reason", labels.TIER_REASONS),
    ("marts.fct_cases", "youngest_victim_age_band", labels.AGE_BANDS),
    ("marts.fct_cases", "victim_support", labels.VICTIM_SUPPORT),
    ("marts.fct_cases", "outcome", labels.CASE_OUTCOMES),
    ("marts.rpt_detection_quality_weekly", "detection_method", labels.DETECTION_METHODS),
    ("marts.fct_content_takedowns", "trigger", labels.TRIGGERS),
    ("marts.fct_reports", "channel", labels.REPORT_CHANNELS),
    ("marts.fct_reports", "resolution", labels.REPORT_RESOLUTIONS),
    ("marts.dim_policy_sla_targets", "clock", labels.CLOCKS),
]


@pytest.mark.parametrize(
    ("table", "column", "vocabulary"), CODED_COLUMNS, ids=lambda v: str(v)[:40]
)
def test_every_code_a_mart_holds_has_a_label(con, table: str, column: str, vocabulary) -> None:
    values = {r[0] for r in con.execute(f"select distinct {column} from {table}").fetchall()}
    values.discard(None)
    assert values, f"{table}.{column} is empty on the generated data: the test proves nothing"
    assert values <= set(vocabulary), f"no label for {values - set(vocabulary)}"


def test_every_label_exists_in_both_languages() -> None:
    for kind, vocabulary in labels.ALL.items():
        for code, (english, chinese) in vocabulary.items():
            assert english.strip() and chinese.strip(), (kind, code)
            assert "_" not in english, (kind, code)


def test_every_alert_channel_and_delivery_state_has_a_label() -> None:
    """The test world routes alerts nowhere, so these come from their definitions: the
    channels of the shipped alerting.yaml and the states the alert store allows."""
    from ocse.alerts.config import ALERT_TYPES, SEVERITIES, load_alerting_config

    config = load_alerting_config(ROOT / "alerting.yaml")
    assert set(config.channels) <= set(labels.CHANNELS)
    store = (ROOT / "ocse" / "alerts" / "store.py").read_text(encoding="utf-8")
    states = re.search(r"check \(state in \(([^)]*)\)\)", store).group(1)
    assert {s.strip(" '") for s in states.split(",")} <= set(labels.DELIVERY_STATES)
    assert set(ALERT_TYPES) <= set(labels.ALERT_TYPES)
    assert set(SEVERITIES) <= set(labels.SEVERITIES)


def test_every_policy_setting_and_published_table_has_a_title(con) -> None:
    settings = {r[0] for r in con.execute("describe marts.dim_policy_tier_rules").fetchall()}
    assert settings - {"valid_from", "valid_to"} <= set(labels.RULE_SETTINGS)
    marts = {
        r[0]
        for r in con.execute(
            "select table_name from duckdb_tables() where schema_name = 'marts'"
        ).fetchall()
    }
    assert marts <= set(labels.MART_TITLES), marts - set(labels.MART_TITLES)


# --- comparisons ---------------------------------------------------------------------------


def test_no_change_is_shown_against_a_period_the_data_does_not_cover(world, con) -> None:
    first_day, last = data_bounds(con)
    at = run_page("overview", "leadership")
    # 30 days shown; the 30 before are not all in the data (it starts first_day)
    assert preset_period("30d", last)[0] - timedelta(days=30) < first_day
    assert all(not m.delta for m in at.metric), [m.delta for m in at.metric]
    assert any(f"no comparison: data starts {first_day}" in c.value for c in at.caption)
    # 7 days: the week before is covered, so changes are shown
    at.selectbox(key="filter_preset").set_value("7d").run()
    assert not at.exception
    assert any(m.delta for m in at.metric)
    assert not any("no comparison" in c.value for c in at.caption)


def test_the_chosen_period_is_the_same_on_every_page(world) -> None:
    at = run_page("overview", "leadership", state={"ocse_keep_filter_preset": "7d"})
    assert at.selectbox(key="filter_preset").value == "7d"
    at = run_page("cases", "leadership", state={"ocse_keep_filter_preset": "90d"})
    assert at.selectbox(key="filter_preset").value == "90d"


def test_presets_name_whole_months_quarters_and_years() -> None:
    day = date(2025, 6, 30)
    assert preset_period("7d", day) == (date(2025, 6, 24), day)
    assert preset_period("last_month", day) == (date(2025, 5, 1), date(2025, 5, 31))
    assert preset_period("last_quarter", day) == (date(2025, 1, 1), date(2025, 3, 31))
    assert preset_period("last_quarter", date(2025, 1, 5)) == (
        date(2024, 10, 1),
        date(2024, 12, 31),
    )
    assert preset_period("ytd", day) == (date(2025, 1, 1), day)
    leap = mq.Period(date(2024, 2, 29), date(2024, 3, 31), ())
    assert leap.year_before().first_day == date(2023, 2, 28)


def test_the_spike_test_says_when_it_cannot_judge(world, con) -> None:
    first_day, _ = data_bounds(con)
    state = {
        "ocse_keep_filter_preset": "custom",
        "ocse_keep_filter_dates": (first_day, first_day + timedelta(days=20)),
    }
    at = run_page("trends", "assessor", state=state)
    notes = " ".join(i.value for i in at.info)
    assert "needs 4 earlier weeks" in notes
    assert not any("No spike" in c.value for c in at.caption)
