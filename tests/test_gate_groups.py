"""The gate reads many files of a feed in one scan (ocse/ingest/groups.py) for speed. If that
ever changed an outcome, operators would see rows on the wrong file or row number, a bad file
poisoning good ones, or reason codes that differ from the file read alone: these tests compare
grouped ingestion with one file at a time on generated data full of defects."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import ocse.ingest.groups as groups
from ocse.contracts import FEEDS
from ocse.ingest.gate import ingest_landing
from ocse.warehouse import connect
from sample_data.generator import generate

AS_OF = datetime(2025, 3, 31, 16, 0, tzinfo=UTC)


def _state(conn) -> dict[str, list]:
    """Everything the gate wrote, without the wall-clock columns."""
    state = {
        "ledger": conn.execute(
            "select file_id, file_name, feed, content_sha256, outcome, rows_read, rows_loaded, "
            "rows_quarantined, columns_dropped, dropped_column_names, error, "
            "duplicate_of_file_id from ingest.ledger order by file_id"
        ).fetchall(),
        "quarantine": conn.execute(
            "select feed, file_id, file_name, row_number, reason_codes, record "
            "from ingest.quarantine order by file_id, row_number"
        ).fetchall(),
    }
    for feed in FEEDS:
        state[feed] = conn.execute(
            f"select * exclude (_ingested_at) from raw.{feed} order by _file_id, _row_number"
        ).fetchall()
    return state


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    landing = tmp_path_factory.mktemp("groups") / "landing"
    generate(landing, seed=11, days=6, scale=3000, end=AS_OF, bad_share=0.03, progress=None)
    return landing


def test_grouped_ingestion_writes_exactly_what_file_by_file_does(
    generated, tmp_path, key, monkeypatch
):
    assert max(len(g) for g in groups.plan_groups(_members(generated))) > 1
    grouped = connect(tmp_path / "grouped.duckdb")
    summary = ingest_landing(grouped, generated, key)
    monkeypatch.setattr(groups, "MAX_GROUP_FILES", 1)
    alone = connect(tmp_path / "alone.duckdb")
    ingest_landing(alone, generated, key)

    expected, got = _state(alone), _state(grouped)
    assert got["ledger"] == expected["ledger"]
    assert got["quarantine"] == expected["quarantine"]
    for feed in FEEDS:
        assert got[feed] == expected[feed], feed
    # the generated landing has every kind of file: grouped reads and the fallback both ran
    outcomes = summary.outcomes()
    assert {"loaded", "partially_quarantined", "rejected", "duplicate"} <= set(outcomes)
    grouped.close()
    alone.close()


def test_a_bad_file_in_a_group_does_not_hold_back_the_good_ones(landing, conn, key):
    from tests.feeds import row, write_csv

    for n in range(3):
        write_csv(landing / "reports" / f"good{n}.csv", [row("reports", report_id=f"rpt-{n}")])
    bad = landing / "reports" / "bad.csv"
    write_csv(bad, [row("reports", report_id="rpt-bad", category_code="儿童")])
    bad.write_bytes(bad.read_text(encoding="utf-8").encode("gb18030"))  # same header, not UTF-8

    assert len(groups.plan_groups(_members(landing))) == 1  # one group: the same header

    summary = ingest_landing(conn, landing, key)
    outcomes = {f.file_name: f.outcome for f in summary.files}
    assert outcomes == {
        "reports/bad.csv": "rejected",
        "reports/good0.csv": "loaded",
        "reports/good1.csv": "loaded",
        "reports/good2.csv": "loaded",
    }
    assert conn.execute("select count(*) from raw.reports").fetchone()[0] == 3


def _members(landing):
    from ocse.ingest.discovery import discover

    return [groups.Member(f, f.file_name, i) for i, f in enumerate(discover(landing), start=1)]
