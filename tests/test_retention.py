"""Retention (ocse/lifecycle/retention.py): what goes, what stays and why, the audit rows
it writes (zeros included), and that a second run the same day removes nothing."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from ocse.alerts.store import AlertStore, ts
from ocse.cli import main
from ocse.contracts import load_contract
from ocse.ingest.gate import ingest_landing
from ocse.lifecycle import guard
from ocse.lifecycle.config import (
    RetentionConfig,
    RetentionConfigError,
    known_tables,
    load_retention_config,
    raw_floor_days,
)
from ocse.lifecycle.retention import cutoff, run_retention
from ocse.settings import PROJECT_ROOT, get_settings
from ocse.warehouse import connect
from tests.feeds import row, write_csv

NOW = datetime.now(UTC).replace(microsecond=0)
OLD = NOW - timedelta(days=600)  # older than the tests' 400 days
YOUNG = NOW - timedelta(days=30)
DAYS = 400


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def at(feed: str, t: datetime, **changes):
    """A valid row of `feed` with every timestamp it carries at `t`."""
    values = row(feed)
    for f in load_contract(feed).fields:
        if f.logical_type == "timestamp" and values.get(f.name) is not None:
            values[f.name] = _iso(t)
    return {**values, **changes}


def _config(days: int = DAYS) -> RetentionConfig:
    return RetentionConfig(Path("test"), {t: days for t in known_tables()})


@pytest.fixture
def world(ocse_env, key):
    """A warehouse with records old and young, linked and not, a black account, an old
    quarantine row, an alert store and an access log with old and new rows."""
    landing = ocse_env["landing"]
    reports = [
        # alone and old, two versions: goes whole
        at("reports", OLD, report_id="r-old", content_id="c-old"),
        at("reports", OLD + timedelta(days=1), report_id="r-old", content_id="c-old"),
        # an old version, but the current one is young: every version stays
        at("reports", OLD, report_id="r-young", content_id="c-y"),
        at("reports", YOUNG, report_id="r-young", content_id="c-y"),
        # old, but the black account's action names it
        at("reports", OLD, report_id="r-linked", content_id="c-z"),
    ]
    write_csv(landing / "reports" / "r.csv", reports)
    write_csv(
        landing / "screening_hits" / "h.csv",
        [
            at("screening_hits", OLD, hit_id="h-old", content_id="c-old"),
            # old hit of a content whose takedown is young: stays with it
            at("screening_hits", OLD, hit_id="h-content", content_id="c-y"),
            at("screening_hits", OLD, hit_id="h-black", content_id="c-b"),
        ],
    )
    write_csv(
        landing / "enforcement_actions" / "a.csv",
        [
            at("enforcement_actions", OLD, action_id="a-old", content_id="c-old", hit_id=None),
            at("enforcement_actions", YOUNG, action_id="a-young", content_id="c-y", hit_id=None),
            at(
                "enforcement_actions",
                OLD,
                action_id="a-black",
                content_id="c-b",
                user_id="acct-000000bb01",
                hit_id="h-black",
                report_id="r-linked",
            ),
        ],
    )
    write_csv(landing / "cases" / "c.csv", [at("cases", OLD, case_id="k-old", action_id="a-old")])
    write_csv(
        landing / "reports" / "bad.csv",
        [at("reports", YOUNG, report_id="r-bad", channel="carrier-pigeon")],
    )
    conn = connect(ocse_env["warehouse"])
    ingest_landing(conn, landing, key)
    # quarantined long ago (the gate sealed what it wrote: the world's change is sealed too)
    conn.execute("update ingest.quarantine set quarantined_at = ?", [OLD])
    guard.reseal(conn, ["ingest.quarantine"], by="test world")
    (black,) = conn.execute(
        "select user_id_ref from raw.enforcement_actions where action_id = 'a-black'"
    ).fetchone()
    conn.execute("create schema marts")
    conn.execute(
        "create table marts.dim_user_tiers as select ?::varchar as user_ref, 'black' as tier",
        [black],
    )
    conn.execute("create schema staging")
    conn.execute(
        "create table staging.stg_reports__reports as select * from raw.reports "
        "qualify row_number() over (partition by report_id order by updated_at desc) = 1"
    )
    # the warehouse's schema created intermediate.incremental_state (a dbt source): one watermark
    conn.execute(
        "insert into intermediate.incremental_state values "
        "('fct_content_takedowns', '2025-06-30 16:00:00+00', 1, 'fingerprint')"
    )
    guard.verify(conn)
    conn.close()

    settings = get_settings()
    with AlertStore(settings.alerts_store) as store:
        old, young = ts(OLD), ts(YOUNG)
        for key_, is_state, raised, resolved in [
            ("state-old", 1, old, old),  # resolved long ago: goes
            ("state-open", 1, old, None),  # still open: stays
            ("event-old", 0, old, None),  # an old event: goes
            ("event-waiting", 0, old, None),  # old, but a delivery still pending: stays
            ("event-young", 0, young, None),
        ]:
            store.execute(
                "insert into outbox (alert_key, episode_key, alert_type, status, severity, "
                "severity_rank, subject_id, title, payload, is_state, delivery_mode, "
                "raised_at, resolved_at) values (?, ?, 'rejected_file', 'event', 'low', 1, "
                "'x', 't', '{}', ?, 'individual', ?, ?)",
                (key_, key_, is_state, raised, resolved),
            )
            state = "pending" if key_ == "event-waiting" else "delivered"
            store.execute(
                "insert into deliveries (alert_key, channel, state, next_attempt_at, "
                "idempotency_key) values (?, 'ops', ?, ?, ?)",
                (key_, state, raised, key_),
            )
        for as_of in (old, ts(OLD + timedelta(days=1))):  # the newest live one stays
            store.execute(
                "insert into evaluations (run_id, as_of, evaluated_at, mode) "
                "values ('r', ?, ?, 'live')",
                (as_of, as_of),
            )
        store.execute(
            "insert into delivery_rounds (run_id, started_at, channel, channel_state) "
            "values ('r', ?, 'ops', 'up'), ('r', ?, 'ops', 'up')",
            (old, young),
        )
        store.execute(
            "insert into requeues values (?, 'alice', 'pending', 1), (?, 'bob', 'pending', 2)",
            (old, young),
        )
    from ocse.access import access_store

    access = access_store()
    access.log("admin1", "admin", "page_view", "overview")
    with sqlite3.connect(settings.access_db) as db:  # an entry from long ago
        db.execute(
            "insert into access_log (at, username, role, event, target, detail) "
            "values (?, 'admin1', 'admin', 'page_view', 'overview', '{}')",
            (OLD.isoformat(timespec="milliseconds"),),
        )
    return settings


def _keys(conn, feed: str) -> list[str]:
    key = load_contract(feed).record_key
    return [
        k for (k,) in conn.execute(f"select distinct {key} from raw.{feed} order by 1").fetchall()
    ]


def _audit(conn, run_id: str) -> dict[str, tuple]:
    return {
        table: (rows, cut)
        for table, rows, cut in conn.execute(
            "select table_name, rows_removed, cutoff from lifecycle.audit "
            "where action = 'retention' and run_id = ?",
            [run_id],
        ).fetchall()
    }


def test_retention_purges_by_the_rules_and_audits_every_table(world):
    settings = world
    result = run_retention(settings, requested_by="alice", now=NOW, config=_config())
    cut = cutoff(DAYS, NOW, settings.reporting_tz)
    conn = connect(settings.warehouse)
    try:
        assert _keys(conn, "reports") == ["r-linked", "r-young"]
        # both versions of r-young stay: its current version is within the period
        (versions,) = conn.execute(
            "select count(*) from raw.reports where report_id = 'r-young'"
        ).fetchone()
        assert versions == 2
        assert _keys(conn, "screening_hits") == ["h-black", "h-content"]
        assert _keys(conn, "enforcement_actions") == ["a-black", "a-young"]
        assert _keys(conn, "cases") == []
        # an old quarantine row keeps its file, row and reasons; its record is cleared
        assert conn.execute("select reason_codes, record from ingest.quarantine").fetchall() == [
            (["unknown_code:channel"], "{}")
        ]
        # staging follows raw history; the incremental marts rebuild in full next run
        staged = conn.execute("select report_id from staging.stg_reports__reports order by 1")
        assert staged.fetchall() == [("r-linked",), ("r-young",)]
        assert conn.execute("select count(*) from intermediate.incremental_state").fetchone() == (
            0,
        )
        audit = _audit(conn, result.run_id)
        assert set(audit) == set(known_tables()) | {"alerts.deliveries"}
        assert audit["raw.reports"] == (2, cut)  # the two versions of r-old
        assert audit["raw.screening_hits"][0] == 1
        assert audit["raw.enforcement_actions"][0] == 1
        assert audit["raw.cases"][0] == 1
        assert audit["ingest.quarantine"][0] == 0
        (cleared,) = conn.execute(
            "select values_cleared from lifecycle.audit where run_id = ? "
            "and table_name = 'ingest.quarantine'",
            [result.run_id],
        ).fetchone()
        assert cleared == 1
        assert audit["alerts.outbox"][0] == 2
        assert audit["alerts.deliveries"][0] == 2
        assert audit["alerts.evaluations"][0] == 1
        assert audit["alerts.delivery_rounds"][0] == 1
        assert audit["alerts.requeues"][0] == 1
        assert audit["access.access_log"][0] == 1
        (requested_by, detail) = conn.execute(
            "select requested_by, detail from lifecycle.audit where run_id = ? "
            "and table_name = 'raw.enforcement_actions'",
            [result.run_id],
        ).fetchone()
        assert requested_by == "alice"
        assert '"black_accounts_held": 1' in detail
        # the seal follows the purge: intact, in full
        guard.verify(conn, full=True)
    finally:
        conn.close()
    with AlertStore(settings.alerts_store) as store:
        keys = [k for (k,) in store.rows("select alert_key from outbox order by 1")]
        assert keys == ["event-waiting", "event-young", "state-open"]
        assert store.rows("select count(*) from deliveries") == [(3,)]
        assert store.rows("select count(*) from evaluations") == [(1,)]
        assert store.rows("select count(*) from lifecycle_audit") == [(5,)]
    with sqlite3.connect(settings.access_db) as db:
        assert db.execute("select count(*) from access_log").fetchone() == (1,)
        assert db.execute("select count(*) from lifecycle_audit").fetchone() == (1,)
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("delete from access_log")  # the trigger is back


def test_a_second_run_the_same_day_removes_nothing_and_says_so(world):
    settings = world
    first = run_retention(settings, requested_by="alice", now=NOW, config=_config())
    assert first.rows_removed > 0
    later = NOW.astimezone(UTC) + timedelta(minutes=1)
    if cutoff(DAYS, later, settings.reporting_tz) != cutoff(DAYS, NOW, settings.reporting_tz):
        later = NOW  # the test ran across midnight in the reporting time zone
    second = run_retention(settings, requested_by="alice", now=later, config=_config())
    assert second.rows_removed == 0
    conn = connect(settings.warehouse)
    try:
        audit = _audit(conn, second.run_id)
    finally:
        conn.close()
    assert len(audit) == len(known_tables()) + 1
    assert {rows for rows, _ in audit.values()} == {0}


def test_a_dry_run_changes_and_records_nothing(world):
    settings = world
    conn = connect(settings.warehouse)
    before = conn.execute("select count(*) from raw.reports").fetchone()
    audit_before = conn.execute("select count(*) from lifecycle.audit").fetchone()
    conn.close()
    result = run_retention(settings, requested_by="alice", now=NOW, config=_config(), dry_run=True)
    assert result.rows_removed > 0
    conn = connect(settings.warehouse)
    try:
        assert conn.execute("select count(*) from raw.reports").fetchone() == before
        assert conn.execute("select count(*) from lifecycle.audit").fetchone() == audit_before
    finally:
        conn.close()
    with AlertStore(settings.alerts_store) as store:
        assert store.rows("select count(*) from outbox") == [(5,)]


def test_nothing_is_purged_before_the_first_successful_run(world):
    settings = world
    conn = connect(settings.warehouse)
    conn.execute("drop table marts.dim_user_tiers")
    conn.close()
    run_retention(settings, requested_by="alice", now=NOW, config=_config())
    conn = connect(settings.warehouse)
    try:
        assert len(_keys(conn, "reports")) == 3
    finally:
        conn.close()


def test_a_retention_run_is_refused_while_the_pipeline_holds_the_warehouse(world, tmp_path):
    """Another process holds the lease: `ocse retention run` exits 75 having done nothing."""
    import subprocess
    import sys
    import time

    settings = world
    ready = tmp_path / "ready"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time, pathlib; from ocse import runlock; "
            "runlock.acquire(pathlib.Path(sys.argv[1]), run_id='pipeline-run', trigger='cli'); "
            "pathlib.Path(sys.argv[2]).touch(); time.sleep(60)",
            str(settings.warehouse),
            str(ready),
        ],
        cwd=PROJECT_ROOT,
    )
    try:
        for _ in range(200):
            if ready.exists():
                break
            time.sleep(0.05)
        result = CliRunner().invoke(main, ["retention", "run"])
        assert result.exit_code == 75, result.output
        assert "pipeline-run" in result.output
    finally:
        holder.kill()
        holder.wait()


def test_the_cli_runs_and_shows_retention(world):
    result = CliRunner().invoke(main, ["retention", "show"])
    assert result.exit_code == 0, result.output
    assert "raw.reports" in result.output and "730 days" in result.output
    result = CliRunner().invoke(main, ["retention", "run", "--dry-run", "--as-user", "ops1"])
    assert result.exit_code == 0, result.output
    assert "would go" in result.output
    result = CliRunner().invoke(main, ["retention", "run", "--as-user", "ops1"])
    assert result.exit_code == 0, result.output
    conn = connect(world.warehouse)
    try:
        (n,) = conn.execute(
            "select count(*) from lifecycle.audit where requested_by = 'ops1'"
        ).fetchone()
    finally:
        conn.close()
    assert n == len(known_tables()) + 1


def test_the_dagster_job_writes_its_audit_rows(world):
    import dagster as dg

    from dagster_project.definitions import defs

    result = defs.resolve_job_def("ocse_retention").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), tags={"ocse/trigger": "test"}
    )
    assert result.success
    conn = connect(world.warehouse)
    try:
        audit = _audit(conn, result.run_id)
    finally:
        conn.close()
    assert len(audit) == len(known_tables()) + 1
    assert audit["raw.reports"][1] == cutoff(730, datetime.now(UTC), world.reporting_tz)


def test_the_shipped_config_is_valid_and_floors_are_enforced(tmp_path):
    config = load_retention_config(PROJECT_ROOT / "retention.yaml")
    assert config.period("raw.reports") == 730
    assert raw_floor_days() >= 180 + 56  # the list window and the trend baseline
    assert all(
        config.period(t) is None or config.period(t) >= r.floor_days
        for t, r in known_tables().items()
    )
    bad = tmp_path / "r.yaml"
    text = (PROJECT_ROOT / "retention.yaml").read_text()
    bad.write_text(text.replace("raw.reports: {days: 730}", "raw.reports: {days: 90}"))
    with pytest.raises(RetentionConfigError, match="raw.reports: 90 days is below its floor"):
        load_retention_config(bad)
    bad.write_text(text.replace("raw.reports:", "raw.report:"))
    with pytest.raises(RetentionConfigError, match="unknown table 'raw.report'"):
        load_retention_config(bad)
    bad.write_text(text.replace("  raw.cases: {days: 3650}\n", ""))
    with pytest.raises(RetentionConfigError, match="no period for raw.cases"):
        load_retention_config(bad)
    bad.write_text(text.replace("raw.cases: {days: 3650}", "raw.cases: {days: null}"))
    assert load_retention_config(bad).period("raw.cases") is None


def test_the_cutoff_is_the_start_of_the_day_in_the_reporting_zone():
    tz = "Asia/Shanghai"
    morning = datetime(2026, 6, 10, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    evening = datetime(2026, 6, 10, 15, 59, tzinfo=UTC)  # 23:59 in Shanghai
    assert cutoff(30, morning, tz) == cutoff(30, evening, tz)
    assert cutoff(30, morning, tz) == datetime(2026, 5, 10, 16, 0, tzinfo=UTC)


# --- on the real pipeline ------------------------------------------------------------------

AS_OF = datetime(2025, 3, 31, 16, 0, tzinfo=UTC)
SHORT = 5  # days; below the floors on purpose, to purge inside 10 days of generated data


@pytest.mark.integration
def test_a_purge_leaves_the_numbers_inside_the_period_and_the_black_list(ocse_env, tmp_path):
    """Generated data, a run, a purge keeping 5 days: the daily takedown and report numbers
    of the days kept are unchanged by the next run, so is the black list, and that run's
    marts equal a full rebuild from what raw history now holds."""
    from ocse.pipeline import run_pipeline
    from sample_data.generator import generate

    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    generate(ocse_env["landing"], seed=5, days=10, scale=2000, end=AS_OF, progress=None)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_HOME", str(dagster_home))
        first = run_pipeline(AS_OF)
        assert first.success, first.failure
        settings = get_settings()
        cut = cutoff(SHORT, AS_OF, settings.reporting_tz)
        kept_from = cut.astimezone(ZoneInfo(settings.reporting_tz)).date()
        before = _kept_numbers(settings, kept_from)

        result = run_retention(settings, requested_by="test", now=AS_OF, config=_config(SHORT))
        removed = {p.table: p.rows for p in result.purges}
        assert removed["raw.reports"] > 0 and removed["raw.screening_hits"] > 0

        second = run_pipeline(AS_OF)
        assert second.success, second.failure
        assert _kept_numbers(settings, kept_from) == before
        incremental = _marts(settings)
        full = run_pipeline(AS_OF, full_refresh=True)
        assert full.success, full.failure
        assert _marts(settings) == incremental


def _kept_numbers(settings, kept_from) -> dict[str, list]:
    wh = connect(settings.warehouse)
    try:
        return {
            "takedowns": wh.execute(
                "select * from marts.rpt_takedown_sla_daily where report_date >= ? order by all",
                [kept_from],
            ).fetchall(),
            "reports": wh.execute(
                "select * from marts.rpt_report_handling_daily where report_date >= ? order by all",
                [kept_from],
            ).fetchall(),
            "black": wh.execute(
                "select user_ref, tier_reason from marts.dim_user_tiers where tier = 'black' "
                "order by all"
            ).fetchall(),
        }
    finally:
        wh.close()


def _marts(settings) -> dict[str, list]:
    """Every staging table (without its watermarks) and every mart, rows sorted."""
    watermarks = {"_staged_as_of", "_staged_through_file_id", "source_file_id"}
    wh = connect(settings.warehouse)
    try:
        built = {}
        for schema, table in wh.execute(
            "select schema_name, table_name from duckdb_tables() "
            "where schema_name in ('staging', 'marts') order by 1, 2"
        ).fetchall():
            columns = [
                c
                for (c,) in wh.execute(
                    "select column_name from duckdb_columns() where schema_name = ? "
                    "and table_name = ? order by column_index",
                    [schema, table],
                ).fetchall()
                if c not in watermarks
            ]
            select = ", ".join(f'"{c}"' for c in columns)
            built[f"{schema}.{table}"] = sorted(
                map(repr, wh.execute(f"select {select} from {schema}.{table}").fetchall())
            )
        return built
    finally:
        wh.close()
