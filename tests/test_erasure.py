"""Erasure (ocse/lifecycle/erasure.py): one person's pseudonym leaves every table of the
warehouse, the serving snapshot, the alert store and the access log; a second erasure with
the same request id changes nothing and says so.

Every check here scans with its own SQL (every VARCHAR, VARCHAR[] and JSON column of every
table and view, and every column of every SQLite table), not with erasure's own search."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from ocse.alerts.store import AlertStore, ts
from ocse.cli import main
from ocse.ingest.gate import ingest_landing
from ocse.lifecycle import guard
from ocse.lifecycle.erasure import ErasureError, erase, ref_sha256
from ocse.pipeline import run_pipeline
from ocse.serving import open_snapshot
from ocse.settings import get_settings
from ocse.warehouse import connect
from tests.feeds import row, write_csv

PERSON = "acct-00000000a1"  # uploader, reported user, acted-on user, case subject in feeds.py
OTHER = "acct-00000000d1"


def scan_duckdb(conn: duckdb.DuckDBPyConnection, needle: str) -> dict[str, int]:
    """Rows per table.column whose text contains `needle`, over every table and view."""
    found = {}
    columns = conn.execute(
        "select table_schema, table_name, column_name from information_schema.columns "
        "where table_catalog = current_database() "
        "and (data_type in ('VARCHAR', 'JSON') or data_type like 'VARCHAR[%' "
        "or data_type like 'JSON[%')"
    ).fetchall()
    for schema, table, column in columns:
        (n,) = conn.execute(
            f'select count(*) from "{schema}"."{table}" where "{column}"::varchar like ?',
            [f"%{needle}%"],
        ).fetchone()
        if n:
            found[f"{schema}.{table}.{column}"] = n
    return found


def scan_sqlite(path: Path, needle: str) -> dict[str, int]:
    found = {}
    with sqlite3.connect(path) as db:
        for (table,) in db.execute("select name from sqlite_master where type = 'table'"):
            for column in [c[1] for c in db.execute(f'pragma table_info("{table}")')]:
                (n,) = db.execute(
                    f'select count(*) from "{table}" where instr(cast("{column}" as text), ?)',
                    (needle,),
                ).fetchone()
                if n:
                    found[f"{table}.{column}"] = n
    return found


def _snapshot_of(conn: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows of every table of the warehouse: what a no-op must leave as it was."""
    tables = conn.execute(
        "select schema_name || '.' || table_name from duckdb_tables() "
        "where database_name = current_database() order by 1"
    ).fetchall()
    return {t: conn.execute(f"select count(*) from {t}").fetchone()[0] for (t,) in tables}


@pytest.fixture
def world(ocse_env, key):
    landing = ocse_env["landing"]
    write_csv(landing / "reports" / "r.csv", [row("reports"), row("reports", report_id="rpt-2",
              reported_user_id=OTHER)])  # fmt: skip
    write_csv(
        landing / "screening_hits" / "h.csv",
        [row("screening_hits"), row("screening_hits", hit_id="hit-2", uploader_id=OTHER)],
    )
    write_csv(landing / "enforcement_actions" / "a.csv", [row("enforcement_actions")])
    write_csv(landing / "cases" / "c.csv", [row("cases")])
    write_csv(landing / "reports" / "bad.csv", [row("reports", report_id="rpt-3", channel="x")])
    conn = connect(ocse_env["warehouse"])
    ingest_landing(conn, landing, key)
    (ref,) = conn.execute(
        "select uploader_id_ref from raw.screening_hits where hit_id = 'hit-1'"
    ).fetchone()
    (other,) = conn.execute(
        "select uploader_id_ref from raw.screening_hits where hit_id = 'hit-2'"
    ).fetchone()
    rotated, rotated_again = "p2:" + "ab" * 32, "p3:" + "cd" * 32
    # key rotation (ocse/keys.py): the same person's refs under the next keys, linked to
    # their canonical ref (the one raw history holds)
    from ocse.keys import ensure_key_tables

    ensure_key_tables(conn)
    conn.execute(
        "insert into ingest.pseudonym_links (ref, canonical_ref, linked_at) "
        "values (?, ?, now()), (?, ?, now()), ('p2:' || repeat('ef', 32), ?, now())",
        [rotated, ref, rotated_again, ref, other],
    )
    # dbt-built tables: a staging copy, a mart row, an incremental watermark
    conn.execute("create schema staging")
    conn.execute(
        "create table staging.stg_screening_hits__hits as select * from raw.screening_hits"
    )
    conn.execute("create schema marts")
    conn.execute(
        "create table marts.dim_user_tiers as "
        "select ?::varchar as user_ref, 'black' as tier, [?]::varchar[] as aliases "
        "union all select ?, 'grey', []",
        [ref, rotated_again, other],
    )
    guard.verify(conn)
    conn.close()
    settings = get_settings()
    with AlertStore(settings.alerts_store) as store:
        now = ts(datetime.now(UTC))
        for key_, payload in (("a1", f'{{"account": "{ref}"}}'), ("a2", '{"content": "c"}')):
            store.execute(
                "insert into outbox (alert_key, episode_key, alert_type, status, severity, "
                "severity_rank, subject_id, title, payload, is_state, delivery_mode, "
                "raised_at) values (?, ?, 'rejected_file', 'event', 'low', 1, 'x', 't', ?, 0, "
                "'individual', ?)",
                (key_, key_, payload, now),
            )
            store.execute(
                "insert into deliveries (alert_key, channel, state, next_attempt_at, "
                "idempotency_key) values (?, 'ops', 'delivered', ?, ?)",
                (key_, now, key_),
            )
    from ocse.access import access_store

    access_store().log("ops1", "operations", "page_view", "offenders", {"account": ref})
    access_store().log("ops1", "operations", "page_view", "overview", {})
    # a published snapshot of those marts and alerts, as a run leaves it
    from ocse.serving import publish_snapshot

    conn = connect(settings.warehouse)
    publish_snapshot(
        conn,
        settings.serving,
        as_of=datetime(2025, 3, 31, 16, 0, tzinfo=UTC),
        run_id="first-run",
        reporting_tz=settings.reporting_tz,
        alerts_store=settings.alerts_store,
    )
    conn.close()
    return {
        "settings": settings,
        "ref": ref,
        "other": other,
        "linked": [rotated, rotated_again],
    }


def test_erasure_removes_every_row_of_the_ref_and_its_linked_refs(world):
    settings, ref = world["settings"], world["ref"]
    snap = open_snapshot(settings.serving)
    assert scan_duckdb(snap, ref)  # marts.dim_user_tiers, alerts.outbox
    snap.close()
    result = erase(ref, "REQ-1", requested_by="dpo", settings=settings)
    assert result.refs == 3
    assert result.remaining == {}
    assert result.republished
    snap = open_snapshot(settings.serving)
    try:
        for needle in [ref, *world["linked"]]:
            assert scan_duckdb(snap, needle) == {}
        assert snap.execute("select as_of, run_id from meta.snapshot").fetchone() == (
            datetime(2025, 3, 31, 16, 0, tzinfo=UTC),
            "erasure-REQ-1",
        )
        assert scan_duckdb(snap, world["other"])  # the other person is still published
    finally:
        snap.close()
    conn = connect(settings.warehouse)
    try:
        for needle in [ref, *world["linked"]]:
            assert scan_duckdb(conn, needle) == {}
        # a record of which the person is the subject is gone, every version...
        assert conn.execute("select hit_id from raw.screening_hits").fetchall() == [("hit-2",)]
        assert conn.execute("select count(*) from raw.enforcement_actions").fetchone() == (0,)
        assert conn.execute("select hit_id from staging.stg_screening_hits__hits").fetchall() == [
            ("hit-2",)
        ]
        # ...a record in which they are an optional party stays, without them
        reports = conn.execute(
            "select report_id, reporter_id_ref is not null, reported_user_id_ref "
            "from raw.reports order by 1"
        ).fetchall()
        assert reports == [("rpt-1", True, None), ("rpt-2", True, world["other"])]
        assert conn.execute("select subject_user_id_ref from raw.cases").fetchall() == [(None,)]
        # another person is untouched, their links too
        assert scan_duckdb(conn, world["other"])
        assert conn.execute("select count(*) from ingest.pseudonym_links").fetchone() == (1,)
        # the quarantined row stays (the ledger counts it), without the ref
        (record,) = conn.execute("select record from ingest.quarantine").fetchone()
        assert '"reported_user_id_ref":null' in record.replace(" ", "")
        # logged by request id and the ref's hash, never the ref
        erasures = conn.execute(
            "select request_id, ref_sha256, refs_erased, requested_by from lifecycle.erasures"
        ).fetchall()
        assert erasures == [("REQ-1", ref_sha256(ref), 3, "dpo")]
        tables = {
            t
            for (t,) in conn.execute(
                "select table_name from lifecycle.audit where action = 'erasure'"
            ).fetchall()
        }
        assert {"raw.screening_hits", "raw.reports", "alerts.outbox", "access.access_log"} <= (
            tables
        )
        guard.verify(conn, full=True)  # the seal follows the erasure
    finally:
        conn.close()
    for path in (settings.alerts_store, settings.access_db):
        for needle in [ref, *world["linked"]]:
            assert scan_sqlite(path, needle) == {}
    with AlertStore(settings.alerts_store) as store:
        assert store.rows("select alert_key from outbox") == [("a2",)]
        assert store.rows("select alert_key from deliveries") == [("a2",)]
    with sqlite3.connect(settings.access_db) as db:
        targets = db.execute("select target, detail from access_log order by entry_id").fetchall()
    assert targets == [("offenders", '{"account": "[erased]"}'), ("overview", "{}")]


def test_a_second_erasure_with_the_same_request_id_changes_nothing(world):
    settings, ref = world["settings"], world["ref"]
    erase(ref, "REQ-1", requested_by="dpo", settings=settings)
    conn = connect(settings.warehouse)
    before = _snapshot_of(conn)
    seal = conn.execute("select * from lifecycle.seal order by 1").fetchall()
    conn.close()
    alerts_before = scan_sqlite(settings.alerts_store, "a")

    again = erase(ref, "REQ-1", requested_by="dpo", settings=settings)
    assert again.already_done and again.remaining == {}
    assert again.rows_removed == 0
    conn = connect(settings.warehouse)
    try:
        assert _snapshot_of(conn) == before
        assert conn.execute("select * from lifecycle.seal order by 1").fetchall() == seal
    finally:
        conn.close()
    assert scan_sqlite(settings.alerts_store, "a") == alerts_before

    result = CliRunner().invoke(main, ["erase", "--ref", ref, "--request-id", "REQ-1"])
    assert result.exit_code == 0, result.output
    assert "Already erased: request REQ-1" in result.output
    assert "nothing changed" in result.output
    assert ref not in result.output


def test_a_request_id_is_one_ref_and_a_raw_id_is_refused_unechoed(world):
    settings, ref = world["settings"], world["ref"]
    erase(ref, "REQ-1", requested_by="dpo", settings=settings)
    with pytest.raises(ErasureError, match="already used for another ref"):
        erase(world["other"], "REQ-1", requested_by="dpo", settings=settings)
    result = CliRunner().invoke(main, ["erase", "--ref", PERSON, "--request-id", "REQ-2"])
    assert result.exit_code == 1
    assert "must be a pseudonym" in result.output
    assert PERSON not in result.output
    conn = connect(settings.warehouse)
    try:
        assert scan_duckdb(conn, PERSON) == {}
    finally:
        conn.close()


def test_the_cli_erases_and_reports_per_table(world):
    ref = world["ref"]
    result = CliRunner().invoke(
        main, ["erase", "--ref", ref, "--request-id", "T-42", "--as-user", "dpo"]
    )
    assert result.exit_code == 0, result.output
    assert "Erased request T-42" in result.output
    assert "raw.screening_hits" in result.output
    assert ref not in result.output
    assert ref_sha256(ref)[:16] in result.output


# --- on the real pipeline ------------------------------------------------------------------

AS_OF = datetime(2025, 3, 31, 16, 0, tzinfo=UTC)


@pytest.mark.integration
def test_erasure_on_a_published_warehouse_and_the_runs_after_it(ocse_env, tmp_path):
    """Generated data, a run, an erasure: the ref is in no table of the warehouse, the
    republished snapshot and the alert store; the next run keeps it out and its marts equal
    a full rebuild from raw history."""
    from sample_data.generator import generate

    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    generate(ocse_env["landing"], seed=11, days=10, scale=2000, end=AS_OF, progress=None)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_HOME", str(dagster_home))
        first = run_pipeline(AS_OF)
        assert first.success, first.failure
        settings = get_settings()
        wh = connect(settings.warehouse)
        try:
            # the account with the most rows: a repeat offender, reported, with cases
            (ref,) = wh.execute(
                "select user_id_ref from raw.enforcement_actions group by 1 "
                "order by count(*) desc, 1 limit 1"
            ).fetchone()
            before = scan_duckdb(wh, ref)
        finally:
            wh.close()
        assert any(t.startswith("raw.") for t in before)
        assert any(t.startswith("marts.") for t in before)
        snap = open_snapshot(settings.serving)
        assert scan_duckdb(snap, ref)
        snap.close()
        with AlertStore(settings.alerts_store) as store:  # an alert naming the account
            store.execute(
                "insert into outbox (alert_key, episode_key, alert_type, status, severity, "
                "severity_rank, subject_id, title, payload, is_state, delivery_mode, "
                "raised_at) values ('named', 'named', 'rejected_file', 'event', 'low', 1, "
                "'x', 't', ?, 0, 'individual', ?)",
                (f'{{"account": "{ref}"}}', ts(datetime.now(UTC))),
            )

        result = erase(ref, "REQ-INT", requested_by="dpo", settings=settings)
        assert result.republished
        assert result.remaining == {}
        wh = connect(settings.warehouse, read_only=True)
        try:
            assert scan_duckdb(wh, ref) == {}
        finally:
            wh.close()
        snap = open_snapshot(settings.serving)
        try:
            assert scan_duckdb(snap, ref) == {}
            assert snap.execute("select run_id from meta.snapshot").fetchone() == (
                "erasure-REQ-INT",
            )
        finally:
            snap.close()
        assert scan_sqlite(settings.alerts_store, ref) == {}

        again = erase(ref, "REQ-INT", requested_by="dpo", settings=settings)
        assert again.already_done and again.remaining == {}

        second = run_pipeline(AS_OF)
        assert second.success, second.failure
        incremental = _marts(settings)
        snap = open_snapshot(settings.serving)
        try:
            assert scan_duckdb(snap, ref) == {}
        finally:
            snap.close()
        full = run_pipeline(AS_OF, full_refresh=True)
        assert full.success, full.failure
        assert _marts(settings) == incremental


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


def test_without_publishing_the_snapshot_is_named_stale_until_the_next_run(world):
    ref = world["ref"]
    result = CliRunner().invoke(
        main, ["erase", "--ref", ref, "--request-id", "T-43", "--no-publish"]
    )
    assert result.exit_code == 0, result.output
    assert "The serving snapshot still shows it in" in result.output
    snap = open_snapshot(world["settings"].serving)
    try:
        assert scan_duckdb(snap, ref)  # until the next run publishes
    finally:
        snap.close()
