"""Reading one landed file into a temporary all-VARCHAR table `_batch` with `_row_number`.

Everything is read as text so that a bad value becomes a row-level reason code, not a failed
file. DuckDB's own error messages quote the offending line, which may hold raw personal
identifiers: they are never stored or logged; a `FileRejected` carries our own wording only.

When DuckDB cannot read a file, the file is scanned again here, in Python, to say what is
wrong with it and how many records it holds (`rows_read`, so that a rejected file still has
rows read = rows loaded + rows quarantined). File-level reason codes and what their message
gives (line numbers, byte offsets, field counts, delimiter names; never a value):

- `empty_file`: no bytes.
- `unsupported_format`: not .csv, .jsonl or .parquet.
- `wrong_encoding`: bytes that are not UTF-8 (offset and line of the first).
- `line_too_long`: a line (or a quoted CSV record) over MAX_LINE_BYTES (its line and size).
- `wrong_delimiter`: the CSV header splits into the contract's columns on ';', tab or '|',
  not on ','.
- `truncated_record`: the file ends inside its last record (an unterminated quote, a last
  CSV record with fewer fields than the header, a last JSON line cut inside its object).
- `wrong_field_count`: a CSV record other than the last has more or fewer fields than the
  header.
- `unreadable_file`: anything else, with the cause as far as it is known (not JSON, a JSON
  array, not Parquet, a Parquet file without footer, ...).
- `missing_required_columns` is raised by the gate once a file is read (ocse/ingest/gate.py).

How `rows_read` counts a rejected file: CSV, records after the header, quote-aware (a quoted
field may span lines; empty lines are not records, as DuckDB skips them); where the quoting
itself is broken (an unterminated quote, a field beyond Python's csv field limit) the
remaining non-empty lines are counted instead. JSON Lines: non-blank lines. Parquet: the row
count in the footer when the footer can be read, else 0. Empty and unsupported files: 0.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ocse.contracts import FeedContract
from ocse.ingest.discovery import LandedFile

# The longest line a CSV or JSON Lines file may have, line feed not counted. A record of any
# feed is well under 2 KB (ids, codes, timestamps), so only a broken file comes near it (line
# breaks lost, a blob pasted into a field). It is DuckDB's own default CSV `max_line_size`,
# made explicit: valid files are read exactly as before, and a file read alone or in a group
# (ocse/ingest/groups.py) meets the same limit.
MAX_LINE_BYTES = 2_000_000

# read_csv options for one file and for a group of files alike. `skip = 0`: DuckDB would
# otherwise guess leading lines to skip, and a malformed file (a semicolon-separated one) then
# loses its header and first records without an error; the feed's header is its first line.
CSV_READ_OPTIONS = (
    "header = true, all_varchar = true, delim = ',', quote = '\"', escape = '\"', "
    "strict_mode = true, null_padding = false, encoding = 'utf-8', skip = 0, "
    f"max_line_size = {MAX_LINE_BYTES + 1}"  # DuckDB counts the line feed
)

# Delimiters a CSV file sent with the wrong one most likely uses: (character, name, plural).
_OTHER_DELIMITERS = (
    (";", "semicolon", "semicolons"),
    ("\t", "tab", "tabs"),
    ("|", "pipe", "pipes"),
)


class FileRejected(Exception):  # noqa: N818 - it is an outcome, not a bug
    """A file-level problem: the whole file is quarantined and nothing of it is loaded."""

    def __init__(self, code: str, detail: str, rows_read: int = 0):
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.rows_read = rows_read


# What a DuckDB error is about, for the last-resort message when our own scan finds nothing:
# fixed phrases only, DuckDB's text quotes the file.
_DUCKDB_HINTS = (
    ("maximum line size", "a line is longer than the reader's limit"),
    ("unterminated quote", "a quoted value is never closed"),
    ("expected number of columns", "a record's field count differs from the header's"),
    # before the UTF-8 phrases: a sniffing error always names the encoding it tried
    ("sniffing", "its lines do not fit one comma-separated layout with a header"),
    ("invalid unicode", "invalid UTF-8"),
    ("invalid utf-8", "invalid UTF-8"),
    ("malformed json", "malformed JSON"),
    ("magic", "no Parquet magic bytes"),
    ("parquet", "invalid Parquet"),
)


def _duckdb_hint(exc: duckdb.Error) -> str:
    text = str(exc).lower()
    for needle, hint in _DUCKDB_HINTS:
        if needle in text:
            return f"DuckDB: {hint}"
    return f"DuckDB {type(exc).__name__}"


def _n(count: int, word: str, plural: str | None = None) -> str:
    return f"{count:,} {word if count == 1 else plural or word + 's'}"


class _Lines:
    """The physical lines of a file as text for the csv module, noting on the way the first
    byte that is not UTF-8 and the first line over MAX_LINE_BYTES."""

    def __init__(self, fh):
        self.fh = fh
        self.line_no = 0
        self.offset = 0  # bytes consumed
        self.nonempty = 0  # lines with something before their line break
        self.last_nonempty = 0
        self.first_text: str | None = None  # the first non-empty line (the header)
        self.bad_utf8: tuple[int, int] | None = None  # (byte offset, line)
        self.utf8_cut_at_end = False  # the file ends inside a multi-byte character
        self.long_line: tuple[int, int] | None = None  # (line, bytes)
        self.ends_with_newline = True

    def __iter__(self) -> Iterator[str]:
        for raw in self.fh:
            self.line_no += 1
            size = len(raw) - raw.endswith(b"\n")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                if self.bad_utf8 is None:
                    self.bad_utf8 = (self.offset + exc.start, self.line_no)
                    self.utf8_cut_at_end = (
                        exc.reason == "unexpected end of data" and exc.end == len(raw)
                    )
                text = raw.decode("utf-8", "replace")
            if size > MAX_LINE_BYTES and self.long_line is None:
                self.long_line = (self.line_no, size)
            if raw.rstrip(b"\r\n"):
                self.nonempty += 1
                self.last_nonempty = self.line_no
                if self.first_text is None:
                    self.first_text = text
            self.ends_with_newline = raw.endswith(b"\n")
            self.offset += len(raw)
            yield text


@dataclass
class _CsvScan:
    lines: _Lines
    header: list[str] | None = None
    records: int = 0  # after the header
    long_record: tuple[int, int, int] | None = None  # (first line, bytes, lines) of a record
    unterminated: int | None = None  # first line of the record whose quote never closes
    mismatch: tuple[int, int] | None = None  # (line, fields) of the first odd record
    mismatches: int = 0
    last: tuple[int, int] | None = None  # (line, fields) of the last record
    stray_quote: int | None = None  # a line where a closing quote is not followed by ','


def _scan_csv(path: Path, delimiter: str = ",") -> _CsvScan:
    """One pass over a CSV file: its header, records and what is wrong with them."""
    with open(path, "rb") as fh:
        lines = _Lines(fh)
        scan = _CsvScan(lines)
        source = iter(lines)
        reader = csv.reader(source, delimiter=delimiter, quotechar='"', strict=True)
        by_lines = False  # the quote-aware count gave up: count the remaining lines
        while True:
            start_line, start_offset, nonempty_before = (
                lines.line_no + 1,
                lines.offset,
                lines.nonempty,
            )
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                if "expected after" in str(exc) and scan.header is not None:
                    # `"a"b`: this record is malformed, the reader goes on with the next line
                    scan.stray_quote = scan.stray_quote or lines.line_no
                    scan.records += 1
                    continue
                if "end of data" in str(exc) and scan.header is not None:
                    scan.unterminated = start_line
                by_lines = True
                break
            if not fields:
                continue  # an empty line
            size = lines.offset - start_offset - lines.ends_with_newline
            if size > MAX_LINE_BYTES and scan.long_record is None:
                scan.long_record = (start_line, size, lines.line_no - start_line + 1)
            if scan.header is None:
                scan.header = fields
                continue
            scan.records += 1
            scan.last = (start_line, len(fields))
            if len(fields) != len(scan.header):
                scan.mismatches += 1
                scan.mismatch = scan.mismatch or scan.last
        for _ in source:  # the per-line checks see the whole file
            pass
        if by_lines:
            after = lines.nonempty - nonempty_before
            if scan.header is None:
                scan.records = max(lines.nonempty - 1, 0)
            else:
                scan.records += after
    return scan


def _other_delimiter(first_line: str | None, contract: FeedContract) -> tuple[str, str, int] | None:
    """(name, plural, columns found) when the header line splits into more of the contract's
    columns on ';', tab or '|' than on ',' (at least two, and the ',' split lacks a required
    column)."""
    if first_line is None:
        return None
    text = first_line.lstrip("\ufeff").rstrip("\r\n")
    names = set(contract.names)

    def found(delimiter: str) -> set[str]:
        try:
            return set(next(csv.reader([text], delimiter=delimiter), [])) & names
        except csv.Error:
            return set()

    on_comma = found(",")
    if set(contract.required_names) <= on_comma:
        return None
    best = max(
        ((len(found(d)), name, plural) for d, name, plural in _OTHER_DELIMITERS),
        key=lambda t: t[0],
    )
    if best[0] >= 2 and best[0] > len(on_comma):
        return best[1], best[2], best[0]
    return None


def _wrong_delimiter(file: LandedFile, contract: FeedContract, found) -> FileRejected:
    name, plural, columns = found
    delimiter = next(d for d, n, _ in _OTHER_DELIMITERS if n == name)
    rows = _scan_csv(file.path, delimiter).records
    return FileRejected(
        "wrong_delimiter",
        f"the header is separated by {plural}, not commas (split on {plural} it has "
        f"{columns} of the feed's {len(contract.names)} columns); the feed's CSV must be "
        "comma-separated",
        rows,
    )


def _utf8_problem(lines: _Lines) -> str:
    offset, line = lines.bad_utf8
    detail = f"the byte at offset {offset:,} (line {line:,}) is not UTF-8; the feed must be UTF-8"
    if lines.first_text is not None and "\x00" in lines.first_text:
        detail += " (the file looks like UTF-16)"
    return detail


def _diagnose_csv(file: LandedFile, contract: FeedContract, hint: str) -> FileRejected:
    scan = _scan_csv(file.path)
    lines, rows = scan.lines, scan.records
    if lines.bad_utf8 and not lines.utf8_cut_at_end:
        detail = _utf8_problem(lines)
        found = _other_delimiter(lines.first_text, contract)
        if found:
            detail += f"; its header is also separated by {found[1]}, not commas"
        return FileRejected("wrong_encoding", detail, rows)
    longs = [t for t in (lines.long_line and (*lines.long_line, 1), scan.long_record) if t]
    if longs:
        line, size, span = min(longs)
        where = (
            f"line {line:,}" if span == 1 else f"the record on lines {line:,}-{line + span - 1:,}"
        )
        return FileRejected(
            "line_too_long",
            f"{where} holds {size:,} bytes; the limit is {MAX_LINE_BYTES:,} bytes per line",
            rows,
        )
    found = _other_delimiter(lines.first_text, contract)
    if found:
        return _wrong_delimiter(file, contract, found)
    if scan.unterminated is not None:
        start, end = scan.unterminated, lines.last_nonempty
        if start == end:
            detail = f"the last record (line {start:,}) is cut off inside a quoted field"
        else:
            detail = (
                f"a quoted field in the record on line {start:,} is never closed: the file "
                f"ends inside it, {_n(end - start, 'line')} later"
            )
        return FileRejected("truncated_record", detail, rows)
    if lines.utf8_cut_at_end:
        return FileRejected(
            "truncated_record",
            "the file ends inside a multi-byte UTF-8 character: its last record is cut off",
            rows,
        )
    if scan.header is None:
        return FileRejected("unreadable_file", "the file has no header line", rows)
    width = len(scan.header)
    if scan.mismatch is not None:
        line, fields = scan.mismatch
        if scan.mismatches == 1 and scan.mismatch == scan.last and fields < width:
            ending = "" if lines.ends_with_newline else " and no line break"
            return FileRejected(
                "truncated_record",
                f"the last record (line {line:,}) has {fields} of the header's {width} "
                f"fields{ending}: the file is cut off mid-record",
                rows,
            )
        others = scan.mismatches - 1
        return FileRejected(
            "wrong_field_count",
            f"line {line:,} has {_n(fields, 'field')} where the header has {width}"
            + (f" ({_n(others, 'other record')} too)" if others else ""),
            rows,
        )
    if scan.stray_quote is not None:
        return FileRejected(
            "unreadable_file",
            f"line {scan.stray_quote:,} is not valid CSV: a closing quote is followed by "
            "something other than a comma or a line break",
            rows,
        )
    return FileRejected("unreadable_file", f"the file cannot be read as CSV ({hint})", rows)


_CUT = "ends inside a JSON value"


def _json_problem(text: str) -> str | None:
    """What is wrong with one line of JSON Lines, None when it is a JSON object."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":
            return "holds more than one JSON value"
        if exc.pos >= len(text) or exc.msg.startswith("Unterminated string"):
            return _CUT
        return "is not valid JSON"
    except RecursionError:
        return "is nested too deeply"
    if isinstance(value, dict):
        return None
    kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )
    return f"is {kind}, not a JSON object"


def _diagnose_jsonl(file: LandedFile, hint: str) -> FileRejected:
    records = objects = 0
    last_line = 0
    bad_utf8 = long_line = first_bad = None
    bad_lines = 0
    offset = line_no = 0
    with open(file.path, "rb") as fh:
        for raw in fh:
            line_no += 1
            body = raw.strip(b" \t\r\n")
            start = offset + len(raw) - len(raw.lstrip(b" \t\r\n"))
            offset += len(raw)
            if not body:
                continue  # DuckDB skips blank lines too
            records += 1
            last_line = line_no
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                bad_utf8 = bad_utf8 or (start + exc.start, line_no)
                text = body.decode("utf-8", "replace")
            if len(body) > MAX_LINE_BYTES:
                long_line = long_line or (line_no, len(body))
                continue
            problem = _json_problem(text)
            if problem is None:
                objects += 1
            else:
                bad_lines += 1
                first_bad = first_bad or (line_no, problem)
    if bad_utf8:
        at, line = bad_utf8
        return FileRejected(
            "wrong_encoding",
            f"the byte at offset {at:,} (line {line:,}) is not UTF-8; the feed must be UTF-8",
            records,
        )
    if long_line:
        line, size = long_line
        return FileRejected(
            "line_too_long",
            f"line {line:,} holds {size:,} bytes; the limit is {MAX_LINE_BYTES:,} bytes per line",
            records,
        )
    if first_bad:
        line, problem = first_bad
        if problem == _CUT and line == last_line and bad_lines == 1:
            return FileRejected(
                "truncated_record",
                f"the last line ({line:,}) ends inside its JSON object: the record is cut off",
                records,
            )
        if problem == _CUT:
            problem = "is not valid JSON (it ends inside a value)"
        detail = f"line {line:,} {problem}"
        if objects == 0:
            detail += "; no line of the file is a JSON object: it is not JSON Lines"
        elif bad_lines > 1:
            detail += f" ({_n(bad_lines - 1, 'other line')} too)"
        return FileRejected("unreadable_file", detail, records)
    return FileRejected(
        "unreadable_file", f"the file cannot be read as JSON Lines ({hint})", records
    )


def _diagnose_parquet(file: LandedFile, hint: str) -> FileRejected:
    with open(file.path, "rb") as fh:
        head = fh.read(4)
        fh.seek(max(file.size - 4, 0))
        tail = fh.read(4)
    if head != b"PAR1":
        return FileRejected(
            "unreadable_file", "the file is not Parquet: it does not begin with the marker PAR1"
        )
    if tail != b"PAR1" or file.size < 12:
        return FileRejected(
            "unreadable_file",
            "the file begins as Parquet but has no footer (no closing PAR1): it is cut off",
        )
    import pyarrow.parquet as pq

    try:
        rows = pq.ParquetFile(file.path).metadata.num_rows
    except Exception:  # noqa: BLE001 - whatever pyarrow says quotes nothing we keep
        return FileRejected(
            "unreadable_file", f"the Parquet footer (metadata) cannot be read ({hint})"
        )
    return FileRejected(
        "unreadable_file",
        f"the Parquet data cannot be decoded ({hint}); its footer counts {_n(rows, 'row')}",
        rows,
    )


def _diagnose(file: LandedFile, contract: FeedContract, hint: str) -> FileRejected:
    """Why DuckDB could not read `file`, in our words, with the records it holds."""
    suffix = file.path.suffix.lower()
    try:
        if suffix == ".csv":
            return _diagnose_csv(file, contract, hint)
        if suffix == ".jsonl":
            return _diagnose_jsonl(file, hint)
        return _diagnose_parquet(file, hint)
    except OSError as exc:
        return FileRejected("unreadable_file", f"the file cannot be opened ({exc.strerror})")


def _read_csv(conn: duckdb.DuckDBPyConnection, file: LandedFile) -> None:
    conn.execute(
        f"create or replace temp table _batch_src as "
        f"select * from read_csv($path, {CSV_READ_OPTIONS})",
        {"path": str(file.path)},
    )
    # rowid follows insertion order, which is the order of records in the file.
    conn.execute(
        "create or replace temp table _batch as "
        "select row_number() over (order by rowid) as _row_number, * from _batch_src"
    )


def jsonl_misfit_sql(json_column: str) -> str:
    """True for a JSON Lines line the gate refuses: not an object, or over MAX_LINE_BYTES
    (DuckDB's JSON reader has no line limit of its own)."""
    return (
        f"(json_type({json_column}) <> 'OBJECT' "
        f"or strlen({json_column}::varchar) > {MAX_LINE_BYTES})"
    )


def _read_jsonl(
    conn: duckdb.DuckDBPyConnection, file: LandedFile, contract: FeedContract
) -> list[str]:
    conn.execute(
        "create or replace temp table _batch_src as select json from read_ndjson_objects($path)",
        {"path": str(file.path)},
    )
    (misfits,) = conn.execute(
        f"select count(*) from _batch_src where {jsonl_misfit_sql('json')}"
    ).fetchone()
    if misfits:
        raise _diagnose(file, contract, "a line is not a JSON object, or is too long")
    keys = [
        k
        for (k,) in conn.execute(
            "select distinct unnest(json_keys(json)) as k from _batch_src order by k"
        ).fetchall()
    ]
    # Only contract fields are extracted (their names are ours, safe in SQL); other keys are
    # only counted as dropped columns.
    selects = json_field_selects(contract, keys, "json")
    cols = "".join(", " + s for s in selects)
    conn.execute(
        "create or replace temp table _batch as "
        f"select row_number() over (order by rowid) as _row_number{cols} from _batch_src"
    )
    return keys


def _read_parquet(conn: duckdb.DuckDBPyConnection, file: LandedFile) -> None:
    described = conn.execute(
        "describe select * from read_parquet($path)", {"path": str(file.path)}
    ).fetchall()
    selects = []
    for name, typ, *_ in described:
        quoted = '"' + name.replace('"', '""') + '"'
        if typ.endswith("[]"):
            selects.append(f"array_to_string({quoted}, '|') as {quoted}")
        else:
            selects.append(f"cast({quoted} as varchar) as {quoted}")
    conn.execute(
        f"create or replace temp table _batch as "
        f"select file_row_number + 1 as _row_number, {', '.join(selects)} "
        f"from read_parquet($path, file_row_number = true)",
        {"path": str(file.path)},
    )


def json_field_selects(contract: FeedContract, keys, json_column: str) -> list[str]:
    """`<expression> as <field>` for every contract field among the JSON `keys`, read from
    `json_column`. A JSON array becomes the CSV form ('|'-separated) so one validator serves
    all formats."""
    selects = []
    for f in contract.fields:
        if f.name not in keys:
            continue
        path = f"$.{f.name}"
        if f.logical_type == "array":
            expr = (
                f"case when json_type({json_column}, '{path}') = 'ARRAY' "
                f"then array_to_string(json_extract_string({json_column}, '{path}[*]'), '|') "
                f"else json_extract_string({json_column}, '{path}') end"
            )
        else:
            expr = f"json_extract_string({json_column}, '{path}')"
        selects.append(f"{expr} as {f.name}")
    return selects


def read_into_batch(
    conn: duckdb.DuckDBPyConnection, file: LandedFile, contract: FeedContract
) -> list[str]:
    """Load `file` into temp table `_batch`; return every column (or JSON key) name the file has.

    `_batch` holds `_row_number` and the file's columns as VARCHAR (JSON Lines: only the
    contract's fields). Unknown columns are never copied further than this temp table.
    Raises `FileRejected` for a file-level problem (the codes are in this module's docstring).
    """
    suffix = file.path.suffix.lower()
    if file.size == 0:
        raise FileRejected("empty_file", "the file has no bytes")
    readers = {
        ".csv": lambda: _read_csv(conn, file),
        ".jsonl": lambda: _read_jsonl(conn, file, contract),
        ".parquet": lambda: _read_parquet(conn, file),
    }
    if suffix not in readers:
        raise FileRejected("unsupported_format", f"'{suffix}' is not one of .csv, .jsonl, .parquet")
    try:
        json_keys = readers[suffix]()
    except duckdb.OutOfMemoryException:
        raise  # not the file's fault: the run fails and the next one reads it again
    except duckdb.Error as exc:
        # The transaction is aborted now: the diagnosis reads the file without DuckDB.
        raise _diagnose(file, contract, _duckdb_hint(exc)) from None
    if json_keys is not None:
        return json_keys
    described = conn.execute("describe _batch").fetchall()
    columns = [name for name, *_ in described if name != "_row_number"]
    if suffix == ".csv" and not set(contract.required_names) <= set(columns):
        # A file with another delimiter may read as one wide column: say so, rather than
        # "every column missing".
        found = _other_delimiter(_first_line(file.path), contract)
        if found:
            raise _wrong_delimiter(file, contract, found)
    return columns


def _first_line(path: Path) -> str | None:
    """The first non-empty line of a file (at most MAX_LINE_BYTES of it), as text."""
    with open(path, "rb") as fh:
        for raw in iter(lambda: fh.readline(MAX_LINE_BYTES + 1), b""):
            if raw.rstrip(b"\r\n"):
                return raw.decode("utf-8", "replace")
    return None
