"""File-level behaviour of the gate: rejects, duplicate deliveries, in-flight files,
idempotence, atomicity per file, the ledger's arithmetic, dropped columns."""

from __future__ import annotations

import shutil

import pytest

import ocse.ingest.gate as gate
from ocse.ingest.gate import ingest_landing
from tests.feeds import contract_fields, row, write_csv


def _ledger(conn):
    return conn.execute(
        "select file_name, outcome, rows_read, rows_loaded, rows_quarantined, columns_dropped, "
        "dropped_column_names, error from ingest.ledger order by file_id"
    ).fetchall()


@pytest.mark.parametrize(
    ("name", "content", "code"),
    [
        ("empty.csv", b"", "empty_file"),
        ("hits.xlsx", b"PK\x03\x04 not for us", "unsupported_format"),
        ("latin1.csv", None, "wrong_encoding"),
        ("garbage.parquet", b"this is not parquet at all\n", "unreadable_file"),
        ("garbage.jsonl", b'{"hit_id": "h1"\nnot json at all\n', "unreadable_file"),
        ("array.jsonl", b'["hit_id", "h1"]\n', "unreadable_file"),
    ],
)
def test_file_level_problems_reject_the_whole_file(landing, conn, key, name, content, code):
    path = landing / "screening_hits" / name
    path.parent.mkdir(parents=True)
    if content is None:  # a valid file, but in GB18030 rather than UTF-8
        write_csv(path, [row("screening_hits", matched_list="儿童保护-列表")])
        path.write_bytes(path.read_text(encoding="utf-8").encode("gb18030"))
    else:
        path.write_bytes(content)

    summary = ingest_landing(conn, landing, key)

    ((file_name, outcome, read, loaded, quarantined, _, _, error),) = _ledger(conn)
    assert (outcome, loaded) == ("rejected", 0)
    assert error.startswith(code + ":")
    assert read == loaded + quarantined
    assert conn.execute("select count(*) from raw.screening_hits").fetchone()[0] == 0
    assert summary.files[0].outcome == "rejected"


def test_missing_required_column_rejects_file_and_names_the_column(landing, conn, key):
    columns = [c for c in contract_fields("reports") if c != "channel"]
    write_csv(landing / "reports" / "r.csv", [row("reports")] * 3, columns=columns)
    ingest_landing(conn, landing, key)
    ((_, outcome, read, loaded, quarantined, _, _, error),) = _ledger(conn)
    assert (outcome, read, loaded, quarantined) == ("rejected", 3, 0, 3)
    assert error == "missing_required_columns: required column(s) missing: channel"


def test_rejection_error_never_quotes_file_content(landing, conn, key):
    # DuckDB's own message would quote the offending line, raw identifier included.
    path = landing / "reports" / "bad.csv"
    write_csv(path, [row("reports")])
    path.write_bytes(path.read_bytes() + b'"acct-99999999ff,unterminated\n')
    ingest_landing(conn, landing, key)
    ((*_, error),) = _ledger(conn)
    assert "acct-" not in (error or "")


def test_missing_optional_column_is_fine(landing, conn, key):
    columns = [c for c in contract_fields("reports") if c != "feedback_sent_at"]
    write_csv(landing / "reports" / "r.csv", [row("reports")], columns=columns)
    ingest_landing(conn, landing, key)
    assert _ledger(conn)[0][1] == "loaded"


def test_unknown_columns_are_dropped_counted_and_never_stored(landing, conn, key):
    columns = contract_fields("reports") + ["reporter_phone", "notes"]
    write_csv(
        landing / "reports" / "r.csv",
        [row("reports", reporter_phone="+86-13800000000", notes="secret-note-xyz")],
        columns=columns,
    )
    ingest_landing(conn, landing, key)
    (ledger,) = _ledger(conn)
    assert ledger[1] == "loaded"
    assert ledger[5] == 2 and sorted(ledger[6]) == ["notes", "reporter_phone"]
    raw_columns = {r[0] for r in conn.execute("describe raw.reports").fetchall()}
    assert "reporter_phone" not in raw_columns
    dump = str(conn.execute("select * from raw.reports").fetchall())
    assert "13800000000" not in dump and "secret-note-xyz" not in dump


def test_in_flight_files_are_ignored_until_renamed(landing, conn, key):
    write_csv(landing / "reports" / "r.csv.tmp", [row("reports")])
    write_csv(landing / "reports" / ".r.csv", [row("reports", report_id="rpt-2")])
    write_csv(landing / "reports" / ".upload" / "x.csv", [row("reports", report_id="rpt-3")])
    assert ingest_landing(conn, landing, key).files == []
    (landing / "reports" / "r.csv.tmp").rename(landing / "reports" / "r.csv")
    assert [f.file_name for f in ingest_landing(conn, landing, key).files] == ["reports/r.csv"]


def test_same_file_twice_is_processed_once(landing, conn, key):
    write_csv(landing / "reports" / "r.csv", [row("reports")])
    ingest_landing(conn, landing, key)
    second = ingest_landing(conn, landing, key)
    assert second.files == []
    assert len(_ledger(conn)) == 1
    assert conn.execute("select count(*) from raw.reports").fetchone()[0] == 1


def test_same_bytes_under_another_name_is_a_recorded_duplicate(landing, conn, key):
    first = write_csv(landing / "reports" / "2025-03-01" / "r.csv", [row("reports")])
    ingest_landing(conn, landing, key)
    copy = landing / "reports" / "2025-03-04" / "r-again.csv"
    copy.parent.mkdir()
    shutil.copy(first, copy)

    ingest_landing(conn, landing, key)
    ingest_landing(conn, landing, key)  # and re-running records nothing more

    ledger = _ledger(conn)
    assert [(r[0], r[1]) for r in ledger] == [
        ("reports/2025-03-01/r.csv", "loaded"),
        ("reports/2025-03-04/r-again.csv", "duplicate"),
    ]
    assert ledger[1][7] == "duplicate_delivery: same content as file 1"
    assert conn.execute("select count(*) from raw.reports").fetchone()[0] == 1


def test_rows_read_equal_loaded_plus_quarantined_for_every_file(landing, conn, key):
    write_csv(landing / "reports" / "a.csv", [row("reports"), row("reports", channel="fax")])
    write_csv(landing / "cases" / "b.csv", [row("cases")] * 4)
    (landing / "cases" / "c.csv").write_bytes(b"")
    ingest_landing(conn, landing, key)
    for name, _, read, loaded, quarantined, *_ in _ledger(conn):
        assert read == loaded + quarantined, name


def test_crash_halfway_through_a_file_leaves_nothing_and_next_run_loads_it_whole(
    landing, conn, key, monkeypatch
):
    write_csv(landing / "reports" / "a.csv", [row("reports"), row("reports", channel="fax")])

    def explode(*args, **kwargs):
        raise OSError("disk full (injected)")

    # Raw rows are already written when the quarantine write fails.
    monkeypatch.setattr(gate, "_write_quarantine", explode)
    with pytest.raises(OSError, match="injected"):
        ingest_landing(conn, landing, key)
    assert conn.execute("select count(*) from raw.reports").fetchone()[0] == 0
    assert conn.execute("select count(*) from ingest.ledger").fetchone()[0] == 0

    monkeypatch.undo()
    summary = ingest_landing(conn, landing, key)
    assert [(f.outcome, f.rows_loaded, f.rows_quarantined) for f in summary.files] == [
        ("partially_quarantined", 1, 1)
    ]
    assert conn.execute("select count(*) from raw.reports").fetchone()[0] == 1


def test_every_version_is_kept_in_raw_history(landing, conn, key):
    write_csv(
        landing / "reports" / "d1" / "a.csv",
        [
            row(
                "reports",
                resolution="pending",
                resolved_at=None,
                feedback_sent_at=None,
                updated_at="2025-03-01T10:00:00Z",
            )
        ],
    )
    write_csv(landing / "reports" / "d2" / "b.csv", [row("reports")])
    ingest_landing(conn, landing, key)
    assert conn.execute("select resolution from raw.reports order by _file_id").fetchall() == [
        ("pending",),
        ("actioned",),
    ]
