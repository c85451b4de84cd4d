"""File-level reasons say what is actually wrong with a rejected file, and its ledger row still
counts the records it holds (rows read = rows quarantined), read alone or in a group."""

from __future__ import annotations

import csv
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import ocse.ingest.groups as groups
from ocse.ingest.discovery import discover
from ocse.ingest.gate import ingest_landing
from ocse.ingest.readers import MAX_LINE_BYTES
from ocse.warehouse import connect
from tests.feeds import VALID_ROWS, row, write_csv, write_jsonl

# A raw identifier in every bad file: no message may ever repeat it.
SECRET = "acct-5ecre7000042"


def _csv(rows: list[dict], delimiter: str = ",", columns: list[str] | None = None) -> bytes:
    columns = columns or list(VALID_ROWS["reports"])
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow(["" if r.get(c) is None else r[c] for c in columns])
    return buffer.getvalue().encode()


def _reports(n: int, **changes) -> list[dict]:
    return [row("reports", report_id=f"rpt-{i}", reporter_id=SECRET, **changes) for i in range(n)]


def _jsonl(rows: list[dict]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def _ledger(conn) -> dict[str, tuple]:
    return {
        name: rest
        for name, *rest in conn.execute(
            "select file_name, outcome, rows_read, rows_loaded, rows_quarantined, error "
            "from ingest.ledger order by file_id"
        ).fetchall()
    }


def _one_rejected(conn, landing, key, name: str, data: bytes) -> tuple[int, str]:
    """Land one reports file, run the gate; assert it was rejected whole; (rows_read, error)."""
    path = landing / "reports" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    summary = ingest_landing(conn, landing, key)
    ((outcome, read, loaded, quarantined, error),) = _ledger(conn).values()
    assert (outcome, loaded, quarantined) == ("rejected", 0, read)
    assert summary.files[0].rows_read == read
    assert conn.execute("select count(*) from raw.reports").fetchone()[0] == 0
    assert conn.execute("select count(*) from ingest.quarantine").fetchone()[0] == 0
    assert SECRET not in error
    return read, error


def test_csv_cut_off_mid_record_is_truncated_and_its_records_counted(landing, conn, key):
    data = _csv(_reports(5))[:-40]  # the last record loses its last fields and line break
    read, error = _one_rejected(conn, landing, key, "cut.csv", data)
    assert read == 5
    assert error == (
        "truncated_record: the last record (line 6) has 12 of the header's 13 fields and no "
        "line break: the file is cut off mid-record"
    )


def test_csv_last_record_with_fewer_fields_is_truncated(landing, conn, key):
    data = _csv(_reports(4)) + f"rpt-9,2025-03-01T09:00:00Z,{SECRET}\n".encode()
    read, error = _one_rejected(conn, landing, key, "short.csv", data)
    assert read == 5
    assert error.startswith("truncated_record: the last record (line 6) has 3 of the header's 13")


def test_csv_ending_inside_a_quoted_field_is_truncated(landing, conn, key):
    data = _csv(_reports(3)) + f'rpt-9,2025-03-01T09:00:00Z,in_app,user,"{SECRET}'.encode()
    read, error = _one_rejected(conn, landing, key, "unterminated.csv", data)
    assert read == 4
    assert error == "truncated_record: the last record (line 5) is cut off inside a quoted field"


def test_a_record_with_the_wrong_field_count_is_named_by_line(landing, conn, key):
    lines = _csv(_reports(4)).split(b"\n")
    lines.insert(2, f"rpt-x,{SECRET}".encode())  # line 3 of 6, not the last
    read, error = _one_rejected(conn, landing, key, "odd.csv", b"\n".join(lines))
    assert read == 5
    assert error == "wrong_field_count: line 3 has 2 fields where the header has 13"


def test_a_ten_megabyte_line_is_line_too_long_with_the_limit_and_line(landing, conn, key):
    first, *records = _csv(_reports(3)).splitlines(keepends=True)
    huge = f'rpt-big,"{SECRET}'.encode() + b"x" * (10 << 20) + b'"\n'
    data = first + records[0] + records[1] + huge + records[2]
    read, error = _one_rejected(conn, landing, key, "huge.csv", data)
    assert read == 4  # counted by lines: the huge field is beyond the csv module's field limit
    assert error == (
        f"line_too_long: line 4 holds {len(huge) - 1:,} bytes; "
        f"the limit is {MAX_LINE_BYTES:,} bytes per line"
    )


def test_semicolon_separated_csv_is_wrong_delimiter_not_missing_columns(landing, conn, key):
    read, error = _one_rejected(conn, landing, key, "semi.csv", _csv(_reports(4), ";"))
    assert read == 4
    assert error == (
        "wrong_delimiter: the header is separated by semicolons, not commas (split on "
        "semicolons it has 13 of the feed's 13 columns); the feed's CSV must be comma-separated"
    )


@pytest.mark.parametrize(("delimiter", "plural"), [(";", "semicolons"), ("\t", "tabs")])
def test_wrong_delimiter_with_commas_in_values_still_counts_every_record(
    landing, conn, key, delimiter, plural
):
    # DuckDB once guessed rows to skip for such a file and read it as 0 records.
    data = _csv(_reports(5, content_id="cnt-1,cnt-2"), delimiter)
    read, error = _one_rejected(conn, landing, key, "semi.csv", data)
    assert read == 5
    assert error.startswith(f"wrong_delimiter: the header is separated by {plural}, not commas")


def test_latin1_bytes_are_wrong_encoding_with_offset_and_line(landing, conn, key):
    data = _csv(_reports(3, category_code="catégorie")).replace("é".encode(), "é".encode("latin-1"))
    read, error = _one_rejected(conn, landing, key, "latin1.csv", data)
    assert read == 3
    offset = data.index(b"\xe9")
    assert error == (
        f"wrong_encoding: the byte at offset {offset:,} (line 2) is not UTF-8; "
        "the feed must be UTF-8"
    )


def test_jsonl_with_a_truncated_last_object(landing, conn, key):
    data = _jsonl(_reports(3))
    data += f'{{"report_id": "rpt-9", "reporter_id": "{SECRET}", "chan'.encode()
    read, error = _one_rejected(conn, landing, key, "cut.jsonl", data)
    assert read == 4
    assert (
        error
        == "truncated_record: the last line (4) ends inside its JSON object: the record is cut off"
    )


def test_jsonl_line_over_the_limit(landing, conn, key):
    big = row("reports", report_id="rpt-big", reporter_id=SECRET, content_id="x" * MAX_LINE_BYTES)
    data = _jsonl([*_reports(2), big, *_reports(1)])
    read, error = _one_rejected(conn, landing, key, "big.jsonl", data)
    assert read == 4
    assert error.startswith("line_too_long: line 3 holds ")


def test_jsonl_that_is_not_json_lines_at_all(landing, conn, key):
    data = b"<html><head><title>502 Bad Gateway</title></head>\n<body>retry later</body>\n"
    read, error = _one_rejected(conn, landing, key, "page.jsonl", data)
    assert read == 2
    assert error == (
        "unreadable_file: line 1 is not valid JSON; no line of the file is a JSON object: "
        "it is not JSON Lines"
    )


def test_jsonl_with_one_line_that_is_not_an_object(landing, conn, key):
    data = _jsonl(_reports(2)) + f'["{SECRET}"]\n'.encode() + _jsonl(_reports(1))
    read, error = _one_rejected(conn, landing, key, "array.jsonl", data)
    assert read == 4
    assert error == "unreadable_file: line 3 is an array, not a JSON object"


def test_parquet_cut_off_says_so(landing, conn, key, tmp_path):
    whole = tmp_path / "whole.parquet"
    pq.write_table(pa.table({c: [v] * 3 for c, v in row("reports").items()}), whole)
    read, error = _one_rejected(conn, landing, key, "cut.parquet", whole.read_bytes()[:-100])
    assert read == 0  # the row count is in the footer, which is gone
    assert error == (
        "unreadable_file: the file begins as Parquet but has no footer (no closing PAR1): "
        "it is cut off"
    )


def test_parquet_missing_a_column_counts_its_rows(landing, conn, key, tmp_path):
    columns = {c: [v] * 6 for c, v in row("reports").items() if c != "channel"}
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table(columns), path)
    read, error = _one_rejected(conn, landing, key, "nochannel.parquet", path.read_bytes())
    assert read == 6
    assert error == "missing_required_columns: required column(s) missing: channel"


def _bad_files() -> dict[str, bytes]:
    """Bad reports files that share a shape with good ones, so that they are planned into
    groups: CSV with the good files' header, JSON Lines (any)."""
    good_csv = _csv(_reports(2))
    first, *records = good_csv.splitlines(keepends=True)
    return {
        "cut.csv": _csv(_reports(5))[:-40],
        "unterminated.csv": _csv(_reports(3)) + b'rpt-9,"2025-03-01',
        "huge.csv": first + records[0] + b"rpt-big," + b"x" * (3 << 20) + b"\n" + records[1],
        "latin1.csv": _csv(_reports(3, category_code="é")).replace("é".encode(), b"\xe9"),
        "semi_a.csv": _csv(_reports(4), ";"),
        "semi_b.csv": _csv(_reports(2), ";"),
        "cut.jsonl": _jsonl(_reports(3)) + b'{"report_id": "rpt-9", "chan',
        "big.jsonl": _jsonl([*_reports(1), row("reports", content_id="x" * (MAX_LINE_BYTES + 1))]),
        "array.jsonl": _jsonl(_reports(2)) + b'["a"]\n',
    }


def _land_groupable(landing) -> None:
    for n in range(3):
        write_csv(landing / "reports" / f"good{n}.csv", _reports(2, content_id=f"cnt-{n}"))
        write_jsonl(landing / "reports" / f"good{n}.jsonl", [row("reports", report_id=f"j{n}")])
    for name, data in _bad_files().items():
        (landing / "reports" / name).write_bytes(data)


def test_a_bad_file_in_a_group_gets_the_same_reason_and_count_as_alone(tmp_path, key, monkeypatch):
    landing = tmp_path / "landing"
    _land_groupable(landing)
    members = [groups.Member(f, f.file_name, i) for i, f in enumerate(discover(landing), 1)]
    planned = groups.plan_groups(members)
    grouped_names = {m.file.file_name for g in planned if len(g) > 1 for m in g}
    assert {f"reports/{n}" for n in _bad_files()} <= grouped_names  # each is read in a group

    grouped = connect(tmp_path / "grouped.duckdb")
    ingest_landing(grouped, landing, key)
    monkeypatch.setattr(groups, "MAX_GROUP_FILES", 1)
    alone = connect(tmp_path / "alone.duckdb")
    ingest_landing(alone, landing, key)

    got, expected = _ledger(grouped), _ledger(alone)
    assert got == expected
    codes = {
        name.removeprefix("reports/"): (error.split(":")[0], read)
        for name, (outcome, read, _, _, error) in got.items()
        if outcome == "rejected"
    }
    assert codes == {
        "cut.csv": ("truncated_record", 5),
        "unterminated.csv": ("truncated_record", 4),
        "huge.csv": ("line_too_long", 3),
        "latin1.csv": ("wrong_encoding", 3),
        "semi_a.csv": ("wrong_delimiter", 4),
        "semi_b.csv": ("wrong_delimiter", 2),
        "cut.jsonl": ("truncated_record", 4),
        "big.jsonl": ("line_too_long", 2),
        "array.jsonl": ("unreadable_file", 3),
    }
    for name, (_, read, loaded, quarantined, _) in got.items():
        assert read == loaded + quarantined, name
    assert grouped.execute("select count(*) from raw.reports").fetchone()[0] == 9
    grouped.close()
    alone.close()


def test_a_line_at_the_limit_is_read_and_one_byte_more_is_not(landing, conn, key):
    first, record = _csv(_reports(1)).splitlines(keepends=True)
    at_limit = record.rstrip(b"\n") + b"x" * (MAX_LINE_BYTES - len(record) + 1) + b"\n"
    assert len(at_limit) - 1 == MAX_LINE_BYTES
    path = landing / "reports" / "at.csv"
    path.parent.mkdir(parents=True)
    path.write_bytes(first + at_limit)
    over = landing / "reports" / "over.csv"
    over.write_bytes(first + at_limit[:-1] + b"x\n")
    ingest_landing(conn, landing, key)
    ledger = _ledger(conn)
    assert ledger["reports/at.csv"][0] != "rejected"
    assert ledger["reports/over.csv"][0] == "rejected"
    assert ledger["reports/over.csv"][4].startswith("line_too_long: line 2 holds 2,000,001 bytes")
