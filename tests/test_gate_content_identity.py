"""A file is identified by its bytes (feeds.md), not its name: a corrected file re-sent under
its name loads and supersedes the earlier one; `ocse replay` re-processes what was refused
after a fix, recorded in the ledger, nothing loaded twice."""

from __future__ import annotations

import json
import os
import time

import pytest
from click.testing import CliRunner

import ocse.ingest.gate as gate
from ocse.ingest.gate import ingest_landing
from ocse.ingest.readers import FileRejected
from ocse.ingest.replay import replay_quarantine, replay_rejected
from tests.feeds import row, write_csv


def _ledger(conn):
    return conn.execute(
        "select file_id, file_name, outcome, rows_read, rows_loaded, supersedes_file_id, "
        "replay_of_file_id from ingest.ledger order by file_id"
    ).fetchall()


def _raw(conn, feed="reports"):
    return conn.execute(f"select count(*) from raw.{feed}").fetchone()[0]


def _touch_later(path):
    """A new modification time (file systems with coarse clocks: a second later)."""
    later = time.time() + 2
    os.utime(path, (later, later))


def test_a_corrected_file_resent_under_its_name_loads_and_supersedes(landing, conn, key):
    path = landing / "reports" / "day1.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text('{"report_id": "rpt-1"\nnot json\n')  # one broken line: rejected
    ingest_landing(conn, landing, key)
    ((first_id, _, outcome, read, *_),) = _ledger(conn)
    assert outcome == "rejected"

    path.write_text(json.dumps(row("reports")) + "\n")  # fixed, under the same name
    _touch_later(path)
    summary = ingest_landing(conn, landing, key)

    assert [f.outcome for f in summary.files] == ["loaded"]
    assert _ledger(conn) == [
        (first_id, "reports/day1.jsonl", "rejected", read, 0, None, None),  # outcome unchanged
        (first_id + 1, "reports/day1.jsonl", "loaded", 1, 1, first_id, None),
    ]
    assert _raw(conn) == 1
    # and nothing happens a second time
    assert ingest_landing(conn, landing, key).files == []
    assert len(_ledger(conn)) == 2


def test_a_file_changed_in_place_is_a_new_version(landing, conn, key):
    path = landing / "reports" / "r.csv"
    write_csv(path, [row("reports")])
    ingest_landing(conn, landing, key)
    write_csv(path, [row("reports"), row("reports", report_id="rpt-2")])
    _touch_later(path)
    ingest_landing(conn, landing, key)
    assert [(r[2], r[4], r[5]) for r in _ledger(conn)] == [
        ("loaded", 1, None),
        ("loaded", 2, _ledger(conn)[0][0]),
    ]
    # Every version is history: rpt-1 twice (staging keeps the latest), rpt-2 once.
    assert _raw(conn) == 3


def test_a_touched_file_and_a_renamed_copy(landing, conn, key):
    path = landing / "reports" / "r.csv"
    write_csv(path, [row("reports")])
    ingest_landing(conn, landing, key)
    _touch_later(path)  # same bytes, new time: not a new file, no ledger row
    assert ingest_landing(conn, landing, key).files == []
    (landing / "reports" / "copy.csv").write_bytes(path.read_bytes())
    (dup,) = ingest_landing(conn, landing, key).files
    assert dup.outcome == "duplicate"
    assert _raw(conn) == 1


def test_an_old_ledger_with_unique_names_is_migrated(tmp_path, key, landing):
    """A warehouse from before content identity: its rows are kept; re-sent files load."""
    import duckdb

    from ocse.warehouse import LEDGER_DDL, ensure_schema

    old_ddl = LEDGER_DDL.replace(
        "file_name varchar not null,", "file_name varchar not null unique,"
    )
    old_ddl = old_ddl[: old_ddl.index("size_bytes")].rstrip().rstrip(",") + "\n)"
    conn = duckdb.connect(str(tmp_path / "old.duckdb"))
    conn.execute("create schema ingest")
    conn.execute(old_ddl)
    path = landing / "reports" / "r.csv"
    write_csv(path, [row("reports")])
    conn.execute(
        "insert into ingest.ledger values (1, 'reports/r.csv', 'reports', 'old-sha', 'rejected', "
        "1, 0, 1, 0, [], 'unreadable_file: x', null, now(), now())"
    )
    ensure_schema(conn)
    summary = ingest_landing(conn, landing, key)
    assert [(f.outcome, f.rows_loaded) for f in summary.files] == [("loaded", 1)]
    assert [r[5] for r in _ledger(conn)] == [None, 1]


def test_replay_of_rejected_files_loads_them_once(landing, conn, key, monkeypatch):
    write_csv(landing / "reports" / "a.csv", [row("reports"), row("reports", report_id="rpt-2")])
    write_csv(landing / "cases" / "c.csv", [row("cases")])
    real_read = gate.read_into_batch

    def refusing_read(conn_, file, contract):  # a reader bug, fixed since
        if file.feed == "reports":
            raise FileRejected("unreadable_file", "a bug in the reader", rows_read=2)
        return real_read(conn_, file, contract)

    monkeypatch.setattr(gate, "read_into_batch", refusing_read)
    monkeypatch.setattr(gate, "plan_groups", lambda members: [[m] for m in members])
    ingest_landing(conn, landing, key)
    assert [r[2] for r in _ledger(conn)] == ["rejected", "loaded"]
    monkeypatch.setattr(gate, "read_into_batch", real_read)

    assert replay_rejected(conn, landing, key, feed="cases").files == []  # nothing rejected there
    summary = replay_rejected(conn, landing, key)
    assert [(f.outcome, f.rows_loaded) for f in summary.files] == [("loaded", 2)]
    root = _ledger(conn)[0][0]
    assert _ledger(conn)[-1][2:] == ("loaded", 2, 2, None, root)
    assert _raw(conn) == 2
    # A second replay finds nothing to do; the normal run does not load the file again either.
    assert replay_rejected(conn, landing, key).files == []
    assert ingest_landing(conn, landing, key).files == []
    assert _raw(conn) == 2


def _refuse_category(code: str):
    """The contract before a policy fix: it refused category `code`."""
    real = gate.checked_table_sql

    def checked(*args, **kwargs):
        return (
            real(*args, **kwargs)
            + "; update _checked set reason_codes = list_append(reason_codes, "
            f"'unknown_code:category_code') where category_code = '{code}'"
        )

    return checked


def test_replay_of_quarantined_rows_loads_exactly_the_rows_that_now_pass(
    landing, conn, key, monkeypatch
):
    rows = [
        row("screening_hits", hit_id="h1", category_code="grooming"),
        row("screening_hits", hit_id="h2", category_code="csam_possession"),
        row("screening_hits", hit_id="h3", category_code="grooming", detection_method="psychic"),
        row("screening_hits", hit_id="h4", category_code="grooming"),
    ]
    write_csv(landing / "screening_hits" / "h.csv", rows)
    with monkeypatch.context() as m:
        m.setattr(gate, "checked_table_sql", _refuse_category("grooming"))
        ingest_landing(conn, landing, key)
    assert _raw(conn, "screening_hits") == 1  # h2

    summary = replay_quarantine(conn, landing, key, reason="unknown_code:category_code")
    # h1 and h4 pass now; h3 still breaks another rule (and stays quarantined once more).
    assert (summary.rows_considered, summary.rows_loaded, summary.rows_still_quarantined) == (
        3,
        2,
        1,
    )
    loaded = conn.execute(
        "select hit_id, _row_number from raw.screening_hits order by hit_id"
    ).fetchall()
    assert loaded == [("h1", 1), ("h2", 2), ("h4", 4)]  # row numbers of the file itself
    root = _ledger(conn)[0][0]
    assert _ledger(conn)[1][2:] == ("partially_quarantined", 3, 2, None, root)
    # Again: h3's latest reasons no longer include the category; by kind, it is a candidate
    # (and still fails). Nothing is loaded twice.
    again = replay_quarantine(conn, landing, key, reason="unknown_code:category_code")
    assert again.rows_considered == 0
    by_kind = replay_quarantine(conn, landing, key, reason="unknown_code")
    assert (by_kind.rows_considered, by_kind.rows_loaded) == (1, 0)
    assert replay_quarantine(conn, landing, key, reason="not_a_reason").files == []
    assert _raw(conn, "screening_hits") == 3


def test_replay_needs_the_same_bytes_in_the_landing_folder(landing, conn, key, monkeypatch):
    write_csv(landing / "reports" / "a.csv", [row("reports")])
    monkeypatch.setattr(
        gate,
        "read_into_batch",
        lambda *a: (_ for _ in ()).throw(FileRejected("unreadable_file", "bug", rows_read=1)),
    )
    ingest_landing(conn, landing, key)
    monkeypatch.undo()
    (landing / "reports" / "a.csv").unlink()
    summary = replay_rejected(conn, landing, key)
    assert (summary.files, summary.missing) == ([], ["reports/a.csv"])


@pytest.mark.integration
def test_ocse_replay_command(ocse_env, monkeypatch):
    """`ocse replay` re-processes, then runs the pipeline: the marts show the replay."""
    import duckdb

    from ocse.cli import main

    landing = ocse_env["landing"]
    write_csv(
        landing / "screening_hits" / "h.csv",
        [
            row("screening_hits", hit_id="h1", category_code="grooming"),
            row("screening_hits", hit_id="h2"),
        ],
    )
    (landing / "reports").mkdir(parents=True)
    (landing / "reports" / "r.jsonl").write_text("not json\n")
    runner = CliRunner()
    with monkeypatch.context() as m:
        m.setattr(gate, "checked_table_sql", _refuse_category("grooming"))
        result = runner.invoke(main, ["run"])
    assert result.exit_code == 0, result.output
    usage = runner.invoke(main, ["replay", "--quarantine"])
    assert usage.exit_code == 2 and "--reason" in usage.output
    usage = runner.invoke(main, ["replay", "--rejected", "--feed", "nope"])
    assert usage.exit_code == 1 and "unknown feed 'nope'" in usage.output

    result = runner.invoke(main, ["replay", "--rejected", "--no-run"])
    assert result.exit_code == 0, result.output
    assert "of 1 rejected file(s): 0 loaded" in result.output  # still not JSON
    result = runner.invoke(
        main, ["replay", "--quarantine", "--reason", "unknown_code:category_code"]
    )
    assert result.exit_code == 0, result.output
    assert "1 row(s) of 1 quarantined row(s) with reason unknown_code:category_code: 1 loaded" in (
        result.output
    )
    with duckdb.connect(str(ocse_env["serving"]), read_only=True) as snap:
        ledger = snap.execute(
            "select file_id, file_name, outcome, rows_read, replay_of_file_id "
            "from marts.ops_ingest_ledger order by file_id"
        ).fetchall()
        quarantine = snap.execute(
            "select file_id, row_number, superseded_by_file_id from marts.ops_quarantine"
        ).fetchall()
    ids = {name: file_id for file_id, name, _, _, replay_of in ledger if replay_of is None}
    assert [(r[1], r[2], r[4]) for r in ledger if r[4] is not None] == [
        ("reports/r.jsonl", "rejected", ids["reports/r.jsonl"]),
        ("screening_hits/h.csv", "loaded", ids["screening_hits/h.csv"]),
    ]
    replay_id = ledger[-1][0]
    assert quarantine == [(ids["screening_hits/h.csv"], 1, replay_id)]
    with duckdb.connect(str(ocse_env["warehouse"]), read_only=True) as wh:
        assert wh.execute("select count(*) from raw.screening_hits").fetchone()[0] == 2
