"""The published marts on generated data, through the real pipeline (Dagster in-process, dbt,
DuckDB): what the committee, the assessors and operations would see go wrong if the marts
disagreed with each other, drifted from metrics.md, or depended on how often we ran."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from ocse.pipeline import run_pipeline
from ocse.serving import open_snapshot
from sample_data.generator import generate
from tests.dbt_cli import run_dbt
from tests.dbt_logs import dbt_build_log
from tests.feeds import TEST_KEY

AS_OF = datetime(2025, 6, 30, 16, 0, tzinfo=UTC)
EARLIER = AS_OF - timedelta(days=4)
# Files delivered up to this folder (day) land before the first of the incremental runs;
# those up to the second cut before the third run (the second lands nothing: T moves only).
FIRST_DELIVERY_CUT = (AS_OF - timedelta(days=6)).date().isoformat()
SECOND_DELIVERY_CUT = (AS_OF - timedelta(days=2)).date().isoformat()

# metrics.md: the public interface, transcribed. A mart may have more columns, never fewer.
METRICS_MD_COLUMNS = {
    "fct_content_takedowns": [
        "content_id",
        "first_action_id",
        "category_code",
        "trigger",
        "user_ref",
        "posted_at",
        "detected_at",
        "taken_down_at",
        "is_prevented",
        "exposure_minutes",
        "detection_to_takedown_minutes",
        "sla_target_minutes",
        "is_within_sla",
        "is_evidence_on_time",
    ],
    "rpt_takedown_sla_daily": [
        "report_date",
        "category_code",
        "takedowns",
        "prevented",
        "within_sla",
        "breached",
        "compliance_rate",
        "median_exposure_minutes",
        "p90_exposure_minutes",
        "evidence_on_time_rate",
    ],
    "fct_open_sla_breaches": [
        "clock",
        "subject_id",
        "category_code",
        "clock_started_at",
        "target_minutes",
        "elapsed_minutes",
        "status",
    ],
    "fct_reports": [
        "report_id",
        "minutes_to_acknowledge",
        "minutes_to_resolve",
        "is_ack_within_target",
        "is_resolution_within_target",
    ],
    "rpt_report_handling_daily": [
        "report_date",
        "channel",
        "category_code",
        "received",
        "ack_decided",
        "ack_on_time",
        "ack_compliance_rate",
        "resolution_decided",
        "resolution_on_time",
        "resolution_compliance_rate",
        "resolved",
        "feedback_sent",
        "feedback_rate",
    ],
    "dim_user_tiers": [
        "user_ref",
        "tier",
        "tier_reason",
        "violations_total",
        "violations_180d",
        "zero_tolerance_violations",
        "reports_30d",
        "last_violation_at",
        "tier_since",
    ],
    "fct_user_tier_history": ["user_ref", "tier", "tier_reason", "valid_from", "valid_to"],
    "rpt_repeat_offenders": ["user_ref", "tier", "tier_reason", "violations_total"],
    "rpt_category_trends_weekly": [
        "week_start",
        "category_code",
        "confirmed_hits",
        "reports_received",
        "takedowns",
        "proactive_takedowns",
        "proactive_share",
        "takedowns_prev_week",
        "is_spike",
    ],
    "rpt_detection_quality_weekly": [
        "week_start",
        "detection_method",
        "hits",
        "reviewed",
        "confirmed",
        "false_positives",
        "pending",
        "precision",
        "median_minutes_to_review",
    ],
    "rpt_case_outcomes_monthly": [
        "month_start",
        "category_code",
        "cases_opened",
        "confirmed",
        "referred",
        "referral_decided",
        "referral_on_time",
        "referral_compliance_rate",
        "authority_accepted",
        "prosecuted",
        "convicted",
        "victims",
        "support_offered",
        "support_accepted",
        "median_hours_to_referral",
    ],
    "ops_ingest_ledger": [
        "file_name",
        "feed",
        "content_sha256",
        "outcome",
        "rows_read",
        "rows_loaded",
        "rows_quarantined",
        "columns_dropped",
        "error",
        "ingested_at",
    ],
    "ops_quarantine": ["feed", "file_name", "row_number", "reason_codes"],
}

pytestmark = pytest.mark.integration


def _copy_deliveries(source: Path, target: Path, *, up_to: str | None, after: str | None) -> None:
    """Copy the feed files of the delivery days (one folder per day) in the given range,
    keeping their modification times (the gate processes files in mtime order)."""
    for path in sorted(source.rglob("*")):
        if not path.is_file() or path.parent == source:
            continue
        day = path.parent.name
        if (up_to and day > up_to) or (after and day <= after):
            continue
        dest = target / path.relative_to(source)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest)


def _run(mp: pytest.MonkeyPatch, root: Path, as_of: datetime, **kwargs):
    mp.setenv("OCSE_LANDING_DIR", str(root / "landing"))
    mp.setenv("OCSE_WAREHOUSE", str(root / "ocse.duckdb"))
    mp.setenv("OCSE_SERVING", str(root / "serving.duckdb"))
    result = run_pipeline(as_of, **kwargs)
    assert result.success, result.failure
    return result


def _plant_window_expiry(generated: Path) -> None:
    """An account made grey by two reports within 30 days, and nothing else: the first
    report leaves its window between the first incremental run's T and the second's, with
    no record changing then. Only the window's end changes its tier (grey, then none); an
    incremental run that looked at changed records alone would keep it grey."""
    first = EARLIER + timedelta(hours=12) - timedelta(days=30)
    second = EARLIER - timedelta(days=5)
    iso = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    rows = [
        f"{report_id},{iso(at)},web_form,anonymous,,cnt-plantedexp{n},acct-plantedexp,grooming,"
        f"{iso(at + timedelta(hours=1))},,pending,,{iso(at + timedelta(hours=1))}"
        for n, (report_id, at) in enumerate(
            [("rpt-plantedexp1", first), ("rpt-plantedexp2", second)]
        )
    ]
    folder = generated / "reports" / second.date().isoformat()
    assert folder.is_dir() and second.date().isoformat() <= FIRST_DELIVERY_CUT
    header = (
        "report_id,received_at,channel,reporter_type,reporter_id,content_id,reported_user_id,"
        "category_code,acknowledged_at,resolved_at,resolution,feedback_sent_at,updated_at"
    )
    # (the gate would quarantine the file's rows, not reject it: the test checks they load)
    (folder / "reports_planted_window_expiry.csv").write_text("\n".join([header, *rows]) + "\n")


@pytest.fixture(scope="module")
def marts(tmp_path_factory):
    """One generated landing, and two warehouses built from it:
    - `incremental`: the deliveries up to FIRST_DELIVERY_CUT ingested and built at EARLIER;
      a day later, built again with nothing new (only T moves: reviews, windows and clocks
      cross it); then those up to SECOND_DELIVERY_CUT, built a day before AS_OF; then the
      rest, built at AS_OF (each run after the first incremental);
    - `full`: everything ingested and built once, from scratch, at AS_OF."""
    root = tmp_path_factory.mktemp("marts")
    generated = root / "generated"
    generate(generated, seed=11, days=45, scale=5000, end=AS_OF, bad_share=0.01, progress=None)
    _plant_window_expiry(generated)
    worlds = {name: root / name for name in ("incremental", "full")}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OCSE_PSEUDONYM_KEY", TEST_KEY)
        mp.delenv("OCSE_PSEUDONYM_KEY_FILE", raising=False)
        mp.delenv("OCSE_AS_OF", raising=False)
        dagster_home = root / "dagster_home"
        dagster_home.mkdir()
        mp.setenv("DAGSTER_HOME", str(dagster_home))

        inc = worlds["incremental"]
        _copy_deliveries(generated, inc / "landing", up_to=FIRST_DELIVERY_CUT, after=None)
        incremental_logs = []
        _run(mp, inc, EARLIER)
        incremental_logs.append(dbt_build_log(_run(mp, inc, EARLIER + timedelta(days=1)).run_id))
        _copy_deliveries(
            generated, inc / "landing", up_to=SECOND_DELIVERY_CUT, after=FIRST_DELIVERY_CUT
        )
        incremental_logs.append(dbt_build_log(_run(mp, inc, AS_OF - timedelta(days=1)).run_id))
        _copy_deliveries(generated, inc / "landing", up_to=None, after=SECOND_DELIVERY_CUT)
        incremental_logs.append(dbt_build_log(_run(mp, inc, AS_OF).run_id))

        full = worlds["full"]
        _copy_deliveries(generated, full / "landing", up_to=None, after=None)
        summary = _run(mp, full, AS_OF)
        yield {
            "worlds": worlds,
            "mp": mp,
            "summary": summary,
            "incremental_logs": incremental_logs,
        }


def _connect(world: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(world / "ocse.duckdb"), read_only=True)


def _tables(conn, schema: str) -> list[str]:
    return [
        name
        for (name,) in conn.execute(
            "select table_name from information_schema.tables where table_schema = ? order by 1",
            [schema],
        ).fetchall()
    ]


def _rows(conn, relation: str, exclude: tuple[str, ...] = ()) -> list[tuple]:
    columns = [
        c
        for (c,) in conn.execute(
            "select column_name from information_schema.columns "
            "where table_schema || '.' || table_name = ? order by ordinal_position",
            [relation],
        ).fetchall()
        if c not in exclude
    ]
    select = ", ".join(f'"{c}"' for c in columns)
    return conn.execute(f"select {select} from {relation} order by all").fetchall()


def test_every_table_and_column_of_metrics_md_is_published(marts):
    snap = open_snapshot(marts["worlds"]["full"] / "serving.duckdb")
    try:
        for table, columns in METRICS_MD_COLUMNS.items():
            published = {
                c
                for (c,) in snap.execute(
                    "select column_name from information_schema.columns "
                    "where table_schema = 'marts' and table_name = ?",
                    [table],
                ).fetchall()
            }
            assert published, f"marts.{table} is not in the serving snapshot"
            assert set(columns) <= published, f"marts.{table} lacks {set(columns) - published}"
            (rows,) = snap.execute(f"select count(*) from marts.{table}").fetchone()
            assert rows > 0, f"marts.{table} is empty on generated data"
    finally:
        snap.close()


def test_incremental_runs_give_exactly_what_a_full_build_gives(marts):
    """Two runs (a first batch at an earlier T, then the rest) versus one build from scratch:
    the staging tables and every mart hold the same values. The ingestion ledger differs
    only in run bookkeeping, so the pipeline-health marts are compared by file."""
    inc, full = (_connect(marts["worlds"][name]) for name in ("incremental", "full"))
    try:
        watermarks = ("_staged_as_of", "_staged_through_file_id", "source_file_id")
        # the staged records; the base views (every version, with its file id and load time)
        # and the views of the gate's and dbt's bookkeeping differ by ingestion order
        staged = [t for t in _tables(full, "staging") if t.startswith("stg_")]
        for table in [t for t in staged if not t.startswith(("stg_ingest__", "stg_dbt_state__"))]:
            assert _rows(inc, f"staging.{table}", watermarks) == _rows(
                full, f"staging.{table}", watermarks
            ), f"staging.{table} differs"
        compared = 0
        for table in _tables(full, "marts"):
            if table.startswith("ops_"):
                continue
            assert _rows(inc, f"marts.{table}") == _rows(full, f"marts.{table}"), (
                f"marts.{table} differs between incremental and full builds"
            )
            compared += 1
        assert compared >= 15
        ledger = "select file_name, outcome, rows_read, rows_loaded from marts.ops_ingest_ledger"
        assert sorted(inc.execute(ledger).fetchall()) == sorted(full.execute(ledger).fetchall())
    finally:
        inc.close()
        full.close()


INCREMENTAL_BY_ENTITY = (
    "fct_content_takedowns",
    "int_user_tier_intervals",
    "fct_user_tier_history",
)


def test_incremental_runs_recompute_only_the_changed_entities(marts):
    """The equality above would hold as well if every run rebuilt these models in full: the
    runs after the first replaced the rows of the changed accounts and contents only, and
    those were a part of all of them."""
    for log in marts["incremental_logs"]:
        for model in INCREMENTAL_BY_ENTITY:
            assert f"{model}: replacing the rows of the changed" in log, model
            assert f"{model}: rebuilt in full" not in log, model
    with _connect(marts["worlds"]["incremental"]) as wh:
        changed, everyone = wh.execute(
            "select (select count(*) from intermediate.int_changed_entities "
            "where entity = 'account'), (select count(distinct user_ref) from "
            "marts.fct_user_tier_history)"
        ).fetchone()
        assert 0 < changed < everyone
        built = wh.execute(
            "select model, built_as_of from intermediate.incremental_state order by 1"
        ).fetchall()
        assert built == [(m, AS_OF) for m in sorted(INCREMENTAL_BY_ENTITY)]


def test_a_window_ending_between_runs_changes_the_tier(marts):
    """The planted account (_plant_window_expiry): grey while its two reports are in the
    window, none from the moment the first leaves it, in both builds."""
    for world in ("incremental", "full"):
        with _connect(marts["worlds"][world]) as wh:
            history = wh.execute(
                "select h.tier, h.valid_from from marts.fct_user_tier_history h "
                "join raw.reports r on r.reported_user_id_ref = h.user_ref "
                "where r.report_id = 'rpt-plantedexp1' order by h.valid_from"
            ).fetchall()
        ended = EARLIER + timedelta(hours=12)
        assert [tier for tier, _ in history][-2:] == ["grey", "none"], world
        assert history[-1][1] == ended, world


def test_takedown_marts_agree(marts):
    with _connect(marts["worlds"]["full"]) as wh:
        (facts,) = wh.execute("select count(*) from marts.fct_content_takedowns").fetchone()
        daily = wh.execute(
            "select sum(takedowns), sum(within_sla), sum(breached), sum(prevented) "
            "from marts.rpt_takedown_sla_daily"
        ).fetchone()
        (within, prevented) = wh.execute(
            "select count(*) filter (where is_within_sla), count(*) filter (where is_prevented) "
            "from marts.fct_content_takedowns"
        ).fetchone()
        (weekly,) = wh.execute(
            "select sum(takedowns) from marts.rpt_category_trends_weekly"
        ).fetchone()
        (violations,) = wh.execute(
            "select sum(violations_total) from marts.dim_user_tiers"
        ).fetchone()
    assert facts > 0
    assert daily == (facts, within, facts - within, prevented)
    assert weekly == facts
    # the end-of-run summary of `ocse run` reads the same marts
    assert marts["summary"].headline["takedowns"] == facts
    # every takedown is a violation of exactly one account on the list
    assert violations == facts
    # the generator stops most CSAM at upload and misses some SLAs: both must show
    assert 0 < prevented < facts
    assert within < facts


def test_report_and_case_marts_agree(marts):
    with _connect(marts["worlds"]["full"]) as wh:
        (reports,) = wh.execute("select count(*) from marts.fct_reports").fetchone()
        (daily,) = wh.execute(
            "select sum(received) from marts.rpt_report_handling_daily"
        ).fetchone()
        (weekly,) = wh.execute(
            "select sum(reports_received) from marts.rpt_category_trends_weekly"
        ).fetchone()
        (cases,) = wh.execute("select count(*) from marts.fct_cases").fetchone()
        (monthly,) = wh.execute(
            "select sum(cases_opened) from marts.rpt_case_outcomes_monthly"
        ).fetchone()
        (hits, confirmed) = wh.execute(
            "select count(*), count(*) filter (where review_status = 'confirmed') "
            "from intermediate.int_hits_known_at_t"
        ).fetchone()
        quality = wh.execute(
            "select sum(hits), sum(confirmed) from marts.rpt_detection_quality_weekly"
        ).fetchone()
        (trend_confirmed,) = wh.execute(
            "select sum(confirmed_hits) from marts.rpt_category_trends_weekly"
        ).fetchone()
    assert reports > 0 and cases > 0
    assert daily == weekly == reports
    assert monthly == cases
    assert quality == (hits, confirmed)
    assert trend_confirmed == confirmed


def test_repeat_offender_list_is_the_black_and_grey_tiers(marts):
    with _connect(marts["worlds"]["full"]) as wh:
        listed = wh.execute(
            "select user_ref, tier, tier_reason from marts.rpt_repeat_offenders"
        ).fetchall()
        tiers = wh.execute(
            "select user_ref, tier, tier_reason from marts.dim_user_tiers "
            "where tier in ('black', 'grey')"
        ).fetchall()
        current = wh.execute(
            "select user_ref, tier, tier_reason from marts.fct_user_tier_history "
            "where valid_to is null"
        ).fetchall()
        every_tier = wh.execute(
            "select user_ref, tier, tier_reason from marts.dim_user_tiers"
        ).fetchall()
        ranks = [
            r
            for (r,) in wh.execute(
                "select violations_total from marts.rpt_repeat_offenders order by offender_rank"
            ).fetchall()
        ]
        seen = {
            t for (t,) in wh.execute("select distinct tier from marts.dim_user_tiers").fetchall()
        }
    assert sorted(listed) == sorted(tiers) and listed
    assert sorted(current) == sorted(every_tier)
    assert ranks == sorted(ranks, reverse=True)
    assert {"black", "grey", "white", "none"} <= seen


def test_daily_tier_counts_are_the_history_at_each_day_end(marts):
    """rpt_tier_counts_daily (a running sum of +1/-1 per local day) equals its definition, a
    range join over fct_user_tier_history at the end of every local day, for every tier (zeros
    included), from the first day of the history to the local day of T; the last day is the
    state at T (dim_user_tiers). Read from the serving snapshot: the mart is published."""
    with open_snapshot(marts["worlds"]["full"] / "serving.duckdb") as wh:
        (tz,) = wh.execute("select reporting_tz from meta.snapshot").fetchone()
        mart = wh.execute(
            "select report_date, tier, users from marts.rpt_tier_counts_daily order by all"
        ).fetchall()
        expected = wh.execute(
            """
            with bounds as (
                select min(cast(timezone($tz, valid_from) as date)) as first_day,
                    cast(timezone($tz, $t) as date) as last_day
                from marts.fct_user_tier_history
            ),
            days as (
                select cast(d as date) as report_date,
                    timezone($tz, cast(d as date) + interval 1 day) as day_end
                from bounds, range(
                    cast(bounds.first_day as timestamp),
                    cast(bounds.last_day as timestamp) + interval 1 day,
                    interval 1 day
                ) as r(d)
            ),
            tiers as (select unnest(['black', 'grey', 'white', 'none']) as tier)
            select days.report_date, tiers.tier, count(h.user_ref) as users
            from days
            cross join tiers
            left join marts.fct_user_tier_history as h
                on h.tier = tiers.tier
                and h.valid_from < days.day_end
                and (h.valid_to is null or h.valid_to >= days.day_end)
            group by all
            order by all
            """,
            {"tz": tz, "t": AS_OF},
        ).fetchall()
        at_t = dict(
            wh.execute("select tier, count(*) from marts.dim_user_tiers group by tier").fetchall()
        )
    assert len(mart) > 4 * 30
    assert mart == expected
    last_day = max(day for day, _, _ in mart)
    assert {tier: users for day, tier, users in mart if day == last_day} == {
        tier: at_t.get(tier, 0) for tier in ("black", "grey", "white", "none")
    }


def test_open_clocks_are_running_and_past_three_quarters(marts):
    with _connect(marts["worlds"]["full"]) as wh:
        clocks = wh.execute(
            "select clock, status, count(*) from marts.fct_open_sla_breaches group by all"
        ).fetchall()
        taken_down_but_open = wh.execute(
            "select count(*) from marts.fct_open_sla_breaches b "
            "join marts.fct_content_takedowns t on b.subject_id = t.content_id "
            "where b.clock = 'takedown'"
        ).fetchone()[0]
        acknowledged_but_open = wh.execute(
            "select count(*) from marts.fct_open_sla_breaches b "
            "join marts.fct_reports r on b.subject_id = r.report_id "
            "where b.clock = 'report_acknowledgement' and r.acknowledged_at is not null"
        ).fetchone()[0]
        bad_share = wh.execute(
            "select count(*) from marts.fct_open_sla_breaches "
            "where elapsed_minutes < 0.75 * target_minutes or as_of != ?",
            [AS_OF],
        ).fetchone()[0]
    assert {clock for clock, _, _ in clocks} >= {"takedown", "report_resolution"}
    assert taken_down_but_open == acknowledged_but_open == bad_share == 0


def test_sla_clocks_give_the_sla_pages_numbers_and_every_running_clock(marts):
    """fct_sla_clocks, read from the serving snapshot: its decided clocks per (clock, local
    day, category) are exactly those the SLA page computes today from the facts
    (the union below), and it holds every running clock, not only
    the queue's: running takedown clocks under 75% of their target too."""
    # The union the SLA page computed before it read fct_sla_clocks: one row per decided
    # clock from the facts (the reference this mart must reproduce).
    _DECIDED_CLOCKS = """
        select 'takedown' as clock, report_date as day, category_code, is_within_sla as on_time
        from marts.fct_content_takedowns
        union all
        select 'evidence', report_date, category_code, is_evidence_on_time
        from marts.fct_content_takedowns
        union all
        select 'report_acknowledgement', report_date, category_code, is_ack_within_target
        from marts.fct_reports where is_ack_within_target is not null
        union all
        select 'report_resolution', report_date, category_code, is_resolution_within_target
        from marts.fct_reports where is_resolution_within_target is not null
        union all
        select 'referral', cast(timezone(?, opened_at) as date), category_code,
            is_referral_within_target
        from marts.fct_cases where is_referral_within_target is not null
    """

    with open_snapshot(marts["worlds"]["full"] / "serving.duckdb") as snap:
        (tz,) = snap.execute("select reporting_tz from meta.snapshot").fetchone()
        page = snap.execute(
            f"select clock, day, category_code, count(*), count(*) filter (where on_time) "
            f"from ({_DECIDED_CLOCKS}) group by all order by all",
            [tz],
        ).fetchall()
        mart = snap.execute(
            "select clock, report_date, category_code, count(*), "
            "count(*) filter (where is_on_time) from marts.fct_sla_clocks "
            "where is_decided and report_date is not null group by all order by all"
        ).fetchall()
        states = dict(
            snap.execute(
                "select clock || ':' || state, count(*) from marts.fct_sla_clocks group by all"
            ).fetchall()
        )
        (queue, under_75, not_in_clocks) = snap.execute(
            "select (select count(*) from marts.fct_open_sla_breaches where clock = 'takedown'), "
            "(select count(*) from marts.fct_sla_clocks where clock = 'takedown' "
            "and state = 'running' and elapsed_minutes < 0.75 * target_minutes), "
            "(select count(*) from marts.fct_open_sla_breaches b anti join marts.fct_sla_clocks c "
            "on b.clock = c.clock and b.subject_id = c.subject_id "
            "and c.state = case b.status when 'breach' then 'missed' else 'running' end)"
        ).fetchone()
    assert page and mart == page
    for state in ("takedown:on_time", "takedown:late", "takedown:running", "evidence:on_time"):
        assert states.get(state, 0) > 0, state
    assert {"report_acknowledgement:running", "report_resolution:missed"} <= set(states)
    assert queue > 0 and under_75 > 0 and not_in_clocks == 0


def test_every_open_clock_has_its_history_in_the_subject_events(marts):
    """The operations queue's drill-down (fct_subject_events, from the serving snapshot: it
    is published): every clock of fct_open_sla_breaches opens onto its subject's events,
    which start it at clock_started_at (the content's posting, the report's receipt, the
    case's confirmation) and hold nothing that would have stopped it; nothing is after T."""
    with open_snapshot(marts["worlds"]["full"] / "serving.duckdb") as snap:
        kinds = dict(
            snap.execute(
                "select subject_kind, count(*) from marts.fct_subject_events group by all"
            ).fetchall()
        )
        (late,) = snap.execute(
            "select count(*) from marts.fct_subject_events where event_at > ?", [AS_OF]
        ).fetchone()
        clocks, not_started, stopped = snap.execute(
            """
            with clocks as (
                select
                    clock,
                    subject_id,
                    clock_started_at,
                    case clock when 'takedown' then 'content' when 'referral' then 'case'
                        else 'report' end as subject_kind
                from marts.fct_open_sla_breaches
            ),
            events as (
                select e.*, not exists (
                        select 1 from marts.fct_subject_events as r
                        where r.subject_kind = e.subject_kind and r.subject_id = e.subject_id
                            and r.event = 'action_reversed' and r.source_id = e.source_id
                    ) as is_standing
                from marts.fct_subject_events as e
                semi join clocks
                    on e.subject_kind = clocks.subject_kind and e.subject_id = clocks.subject_id
            )
            select
                count(*),
                count(*) filter (where not exists (
                    select 1 from events as e
                    where e.subject_kind = c.subject_kind and e.subject_id = c.subject_id
                        and e.event_at = c.clock_started_at
                        and e.event = case c.clock when 'takedown' then 'posted'
                            when 'referral' then 'case_confirmed' else 'report_received' end
                )),
                count(*) filter (where exists (
                    select 1 from events as e
                    where e.subject_kind = c.subject_kind and e.subject_id = c.subject_id
                        and case c.clock
                            when 'takedown' then e.event = 'action_taken' and e.is_standing
                                and e.detail in (
                                    'content_removed', 'upload_blocked', 'transmission_blocked'
                                )
                            when 'report_acknowledgement'
                                then e.event in ('report_acknowledged', 'report_resolved')
                            when 'report_resolution' then e.event = 'report_resolved'
                            else e.event = 'case_referred'
                        end
                ))
            from clocks as c
            """
        ).fetchone()
    assert set(kinds) == {"content", "report", "case"}
    assert late == 0
    assert clocks > 0 and not_started == 0 and stopped == 0


def test_nothing_after_t_counts(marts):
    with _connect(marts["worlds"]["full"]) as wh:
        late = wh.execute(
            """
            select
                (select count(*) from marts.fct_content_takedowns where taken_down_at > $t
                    or posted_at > $t or detected_at > $t),
                (select count(*) from marts.fct_reports where received_at > $t
                    or acknowledged_at > $t or resolved_at > $t or feedback_sent_at > $t),
                (select count(*) from marts.fct_cases where opened_at > $t
                    or confirmed_at > $t or referred_at > $t),
                (select count(*) from marts.fct_user_tier_history
                    where valid_from > $t or valid_to > $t)
            """,
            {"t": AS_OF},
        ).fetchone()
    assert late == (0, 0, 0, 0)


def test_going_back_in_time_rebuilds_staging(marts):
    """A backfill at an earlier T than the last run cannot be incremental: the pipeline
    notices and rebuilds staging from raw history, so nothing known only after T leaks in."""
    world = marts["worlds"]["incremental"]
    _run(marts["mp"], world, EARLIER)
    with _connect(world) as wh:
        staged_tables = wh.execute(
            "select table_name from information_schema.tables where table_schema = 'staging' "
            "and table_type = 'BASE TABLE'"
        ).fetchall()
        assert len(staged_tables) == 4
        for (table,) in staged_tables:
            (latest_version, staged) = wh.execute(
                f"select max(updated_at), max(_staged_as_of) from staging.{table}"
            ).fetchone()
            assert latest_version <= EARLIER and staged == EARLIER, table
        (late,) = wh.execute(
            "select count(*) from marts.fct_content_takedowns where taken_down_at > ?",
            [EARLIER],
        ).fetchone()
    assert late == 0


def test_dbt_docs_generate_and_lineage_from_feeds_to_marts(marts, tmp_path):
    """`dbt docs generate` works against a built warehouse and the lineage reads from the
    feeds (raw sources) through staging to every mart."""
    dbt_dir = Path(__file__).resolve().parents[1] / "dbt"
    dbt = Path(shutil.which("dbt") or "dbt")
    env = {
        **dict(__import__("os").environ),
        "OCSE_WAREHOUSE": str(marts["worlds"]["full"] / "ocse.duckdb"),
    }
    subprocess.run(
        [
            str(dbt),
            "docs",
            "generate",
            "--target-path",
            str(tmp_path),
            "--vars",
            json.dumps({"as_of": AS_OF.isoformat()}),
        ],
        cwd=dbt_dir,
        env=env,
        check=True,
        capture_output=True,
    )
    catalog = json.loads((tmp_path / "catalog.json").read_text())
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    documented = {node["metadata"]["name"] for node in catalog["nodes"].values()}
    assert set(METRICS_MD_COLUMNS) <= documented
    parents = manifest["parent_map"]

    def ancestors(node: str) -> set[str]:
        seen: set[str] = set()
        stack = [node]
        while stack:
            for parent in parents.get(stack.pop(), []):
                if parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
        return seen

    for name in METRICS_MD_COLUMNS:
        node = f"model.ocse_warehouse.{name}"
        description = manifest["nodes"][node]["description"]
        assert len(description) > 80, f"{name} is not documented"
        if not name.startswith("ops_"):
            assert any(a.startswith("source.ocse_warehouse.raw.") for a in ancestors(node)), name


# The last commit whose tier history treated a takedown reversed by T as never a violation
# (issue 17): the "before" of the comparison below.
BEFORE_REVERSALS_AS_KNOWN = "323ee668cd50e2c595b6de551a8866984f79fa84"
TIER_MARTS = ("dim_user_tiers", "fct_user_tier_history", "rpt_repeat_offenders")


def _build_before(marts, root: Path) -> Path:
    """The full world's raw data built in full by the dbt project as it was before, into a
    copy of the warehouse."""
    repo = Path(__file__).resolve().parents[1]
    known = subprocess.run(
        ["git", "-C", str(repo), "cat-file", "-e", f"{BEFORE_REVERSALS_AS_KNOWN}^{{commit}}"],
        capture_output=True,
    )
    if known.returncode != 0:
        pytest.skip("the git history before issue 17 is not in this clone (shallow clone)")
    archive = subprocess.run(
        ["git", "-C", str(repo), "archive", BEFORE_REVERSALS_AS_KNOWN, "dbt"],
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(root)], input=archive.stdout, check=True)
    warehouse = root / "before.duckdb"
    shutil.copy2(marts["worlds"]["full"] / "ocse.duckdb", warehouse)
    built = run_dbt(
        ["build", "--full-refresh", "--exclude-resource-type", "unit_test"],
        warehouse,
        root / "target",
        project_dir=root / "dbt",
        env={"OCSE_DBT_AS_OF": AS_OF.isoformat()},
    )
    assert built.returncode == 0, built.stdout[-4000:]
    return warehouse


def test_reversals_change_only_the_tier_history_of_the_accounts_they_touch(marts, tmp_path):
    """Before and after issue 17 on the same data, built in full: every mart is unchanged,
    except the tier history (and tier_since) of the accounts with a takedown reversed by T
    on one of their contents; those accounts' tiers at T are unchanged too (policy.md: at T
    every reversal up to T is known). And the rule does change the history of some of them:
    the grey or black stretch a reversal ended is kept."""
    before = duckdb.connect(str(_build_before(marts, tmp_path)), read_only=True)
    after = _connect(marts["worlds"]["full"])
    try:
        touched = {
            ref
            for (ref,) in after.execute(
                "select distinct a.user_id_ref from intermediate.int_actions_known_at_t a "
                "where a.content_id in (select content_id from intermediate.int_actions_known_at_t"
                " where reversed_at is not null)"
            ).fetchall()
        }
        assert touched
        for table in _tables(after, "marts"):
            if table.startswith("ops_") or table in TIER_MARTS or table == "rpt_tier_counts_daily":
                continue
            assert _rows(after, f"marts.{table}") == _rows(before, f"marts.{table}"), table
        for table in ("dim_user_tiers", "rpt_repeat_offenders"):
            assert _rows(after, f"marts.{table}", ("tier_since",)) == _rows(
                before, f"marts.{table}", ("tier_since",)
            ), table
        since = "select user_ref, tier_since from marts.dim_user_tiers"
        moved = set(after.execute(since).fetchall()) ^ set(before.execute(since).fetchall())
        assert {ref for ref, _ in moved} <= touched
        # the stretches themselves: the counts behind each row came later (before has none)
        history = (
            "select user_ref, tier, tier_reason, valid_from, valid_to, tier_since "
            "from marts.fct_user_tier_history"
        )
        changed = set(after.execute(history).fetchall()) ^ set(before.execute(history).fetchall())
        assert changed, "no reversal changed any history: the data or the rule is wrong"
        assert {row[0] for row in changed} <= touched
        # what changed is a stretch kept: a tier the account held until a reversal
        kept = after.execute(
            "select count(*) from marts.fct_user_tier_history h "
            "join intermediate.int_actions_known_at_t a on a.user_id_ref = h.user_ref "
            "and a.reversed_at = h.valid_to where h.tier in ('grey', 'black')"
        ).fetchone()[0]
        assert kept > 0
    finally:
        before.close()
        after.close()

    # A warehouse built by the project before is brought up to date by an ordinary run (no
    # --full-refresh): the models whose SQL changed rebuild themselves, columns added.
    upgraded = run_dbt(
        ["build", "--exclude-resource-type", "unit_test"],
        tmp_path / "before.duckdb",
        tmp_path / "target_after",
        env={"OCSE_DBT_AS_OF": AS_OF.isoformat()},
    )
    assert upgraded.returncode == 0, upgraded.stdout[-4000:]
    with _connect(marts["worlds"]["full"]) as full:
        up = duckdb.connect(str(tmp_path / "before.duckdb"), read_only=True)
        try:
            for table in _tables(full, "marts"):
                if not table.startswith("ops_"):
                    assert _rows(up, f"marts.{table}") == _rows(full, f"marts.{table}"), table
        finally:
            up.close()
