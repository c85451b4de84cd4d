"""The append-only guard (ocse/lifecycle/guard.py): raw history, the ledger and the
quarantine only grow outside retention and erasure; a deletion or a change behind their
back is found, and the next run refuses with one line naming the table."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from ocse.cli import main
from ocse.ingest.gate import ingest_landing
from ocse.lifecycle import guard
from ocse.pipeline import run_pipeline
from ocse.warehouse import connect
from tests.feeds import row, write_csv


def _land(landing, name: str, feed: str, rows: list[dict]) -> None:
    write_csv(landing / feed / name, rows)


@pytest.fixture
def sealed(landing, conn, key):
    """Two feeds ingested, one bad row quarantined, everything sealed."""
    _land(landing, "a.csv", "reports", [row("reports"), row("reports", report_id="rpt-2")])
    _land(landing, "b.csv", "reports", [row("reports", report_id="rpt-3", channel="bogus")])
    _land(landing, "h.csv", "screening_hits", [row("screening_hits")])
    ingest_landing(conn, landing, key)  # verifies first (sealing the empty tables), seals after
    report = guard.verify(conn)
    assert report.initialised == [] and report.appended.get("raw.reports", 0) == 0
    return conn


def test_first_verify_seals_and_records_it(sealed):
    rows = dict(
        sealed.execute(
            "select table_name, row_count from lifecycle.seal where table_name in "
            "('ingest.ledger', 'ingest.quarantine', 'raw.reports', 'raw.screening_hits')"
        ).fetchall()
    )
    assert rows == {
        "ingest.ledger": 3,
        "ingest.quarantine": 1,
        "raw.reports": 2,
        "raw.screening_hits": 1,
    }
    actions = sealed.execute("select distinct action from lifecycle.audit").fetchall()
    assert actions == [("seal_init",)]
    # Intact: counts and checksums agree.
    assert guard.verify(sealed, full=True).tables["raw.reports"] == 2


def test_appended_rows_are_sealed_incrementally(sealed, landing, key, monkeypatch):
    _land(landing, "c.csv", "reports", [row("reports", report_id="rpt-4")])
    reports = []
    real = guard.seal_appended
    monkeypatch.setattr(guard, "seal_appended", lambda c, **kw: reports.append(real(c, **kw)))
    ingest_landing(sealed, landing, key)  # the gate seals what it appended
    (report,) = reports
    assert report.appended["raw.reports"] == 1
    assert report.appended["ingest.ledger"] == 1
    assert report.through_file_id == 4
    assert guard.verify(sealed, full=True).tables["raw.reports"] == 3


@pytest.mark.parametrize(
    ("tamper", "table", "words"),
    [
        ("delete from ingest.ledger where file_id = 1", "ingest.ledger", "1 row(s)"),
        ("delete from raw.reports where report_id = 'rpt-2'", "raw.reports", "are gone"),
        ("delete from ingest.quarantine", "ingest.quarantine", "are gone"),
        (
            "insert into raw.reports select * replace (1 as _row_number) from raw.reports limit 1",
            "raw.reports",
            "appeared in files sealed before",
        ),
        ("drop table raw.screening_hits", "raw.screening_hits", "the table is gone"),
    ],
)
def test_rows_removed_or_added_behind_the_gate_are_refused(sealed, tamper, table, words):
    sealed.execute(tamper)
    with pytest.raises(guard.AppendOnlyViolation) as refused:
        guard.verify(sealed)
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"Append-only check failed: {table}: ")
    assert words in message
    assert "ocse seal accept" in message
    # Nothing was sealed over it: the next check refuses again.
    with pytest.raises(guard.AppendOnlyViolation):
        guard.verify(sealed)


def test_a_changed_value_is_found_by_the_full_check(sealed):
    sealed.execute("update raw.reports set channel = 'email' where report_id = 'rpt-2'")
    guard.verify(sealed)  # counts agree: the cheap check cannot see an update
    with pytest.raises(guard.AppendOnlyViolation, match=r"raw\.reports: rows of files up to 3 "):
        guard.verify(sealed, full=True)


def test_appended_rows_must_match_the_ledger(sealed, landing, key, monkeypatch):
    _land(landing, "c.csv", "reports", [row("reports", report_id="rpt-4"), row("reports")])
    with monkeypatch.context() as m:  # a gate that crashed after its commit, before sealing
        m.setattr(guard, "seal_appended", lambda c, **kw: None)
        ingest_landing(sealed, landing, key)
    sealed.execute("delete from raw.reports where report_id = 'rpt-4'")  # before it was sealed
    with pytest.raises(guard.AppendOnlyViolation, match="file 4 has 1 row.* the ledger says 2"):
        guard.seal_appended(sealed)


def test_rows_of_a_file_the_ledger_does_not_know_are_refused(sealed):
    sealed.execute("insert into raw.reports select * replace (99 as _file_id) from raw.reports")
    with pytest.raises(guard.AppendOnlyViolation, match="name file 99, which the ledger"):
        guard.verify(sealed)


def test_a_new_column_is_taken_into_the_seal(sealed):
    sealed.execute("alter table ingest.ledger add column note varchar")
    report = guard.verify(sealed)
    assert report.tables["ingest.ledger"] == 3
    (columns,) = sealed.execute(
        "select columns from lifecycle.seal where table_name = 'ingest.ledger'"
    ).fetchone()
    assert columns[-1] == "note"
    guard.verify(sealed, full=True)


def test_accept_reseals_and_records_who_and_why(sealed):
    sealed.execute("delete from ingest.ledger where file_id = 1")
    with pytest.raises(guard.AppendOnlyViolation):
        guard.verify(sealed)
    guard.accept(sealed, reason="restored from backup, file 1 re-sent", requested_by="alice")
    guard.verify(sealed, full=True)
    row_ = sealed.execute(
        "select rows_removed, requested_by, detail from lifecycle.audit "
        "where action = 'seal_accept' and table_name = 'ingest.ledger'"
    ).fetchone()
    assert row_[0] == 1 and row_[1] == "alice"
    assert "restored from backup" in row_[2]
    with pytest.raises(ValueError):
        guard.accept(sealed, reason="  ", requested_by="alice")


def test_the_next_run_refuses_with_the_table_named(ocse_env, key, tmp_path):
    """`ocse run` after a manual `delete from ingest.ledger`: refused before anything runs
    (exit 1, one line naming the table); `ocse seal verify` says the same."""
    landing = ocse_env["landing"]
    _land(landing, "a.csv", "reports", [row("reports")])
    conn = connect(ocse_env["warehouse"])
    ingest_landing(conn, landing, key)
    guard.verify(conn)
    conn.execute("delete from ingest.ledger")
    conn.close()

    summary = run_pipeline(guard_as_of())
    assert not summary.success
    assert summary.failure.startswith("Append-only check failed: ingest.ledger: 1 row(s)")

    result = CliRunner().invoke(main, ["run"])
    assert result.exit_code == 1, result.output
    assert "Failure: Append-only check failed: ingest.ledger:" in result.output
    result = CliRunner().invoke(main, ["seal", "verify"])
    assert result.exit_code == 1
    assert "ingest.ledger" in result.output

    result = CliRunner().invoke(
        main, ["seal", "accept", "--reason", "test: ledger emptied", "--as-user", "ops1"]
    )
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["seal", "verify", "--full"])
    assert result.exit_code == 0, result.output
    assert "intact" in result.output


def guard_as_of():
    from datetime import UTC, datetime

    return datetime(2025, 3, 31, 16, 0, tzinfo=UTC)
