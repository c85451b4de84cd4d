"""Reading one landed file into a temporary all-VARCHAR table `_batch` with `_row_number`.

Everything is read as text so that a bad value becomes a row-level reason code, not a failed
file. DuckDB's own error messages quote the offending line, which may hold raw personal
identifiers: they are never stored or logged; a `FileRejected` carries our own wording only.
"""

from __future__ import annotations

import duckdb

from ocse.contracts import FeedContract
from ocse.ingest.discovery import LandedFile


class FileRejected(Exception):  # noqa: N818 - it is an outcome, not a bug
    """A file-level problem: the whole file is quarantined and nothing of it is loaded."""

    def __init__(self, code: str, detail: str, rows_read: int = 0):
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.rows_read = rows_read


def _describe_read_error(exc: duckdb.Error, fmt: str) -> FileRejected:
    text = str(exc).lower()
    if "unicode" in text or "utf-8" in text or "utf8" in text or "encoding" in text:
        return FileRejected("wrong_encoding", "the file is not valid UTF-8")
    return FileRejected("unreadable_file", f"the file cannot be read as {fmt}")


def _read_csv(conn: duckdb.DuckDBPyConnection, file: LandedFile) -> None:
    conn.execute(
        """
        create or replace temp table _batch_src as
        select * from read_csv(
            $path, header = true, all_varchar = true, delim = ',', quote = '"', escape = '"',
            strict_mode = true, null_padding = false, encoding = 'utf-8'
        )
        """,
        {"path": str(file.path)},
    )
    # rowid follows insertion order, which is the order of records in the file.
    conn.execute(
        "create or replace temp table _batch as "
        "select row_number() over (order by rowid) as _row_number, * from _batch_src"
    )


def _read_jsonl(
    conn: duckdb.DuckDBPyConnection, file: LandedFile, contract: FeedContract
) -> list[str]:
    conn.execute(
        "create or replace temp table _batch_src as select json from read_ndjson_objects($path)",
        {"path": str(file.path)},
    )
    if conn.execute("select count(*) from _batch_src where json_type(json) <> 'OBJECT'").fetchone()[
        0
    ]:
        raise FileRejected("unreadable_file", "a line is not a JSON object")
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
    """
    suffix = file.path.suffix.lower()
    if file.size == 0:
        raise FileRejected("empty_file", "the file has no bytes")
    readers = {
        ".csv": ("CSV", lambda: _read_csv(conn, file)),
        ".jsonl": ("JSON Lines", lambda: _read_jsonl(conn, file, contract)),
        ".parquet": ("Parquet", lambda: _read_parquet(conn, file)),
    }
    if suffix not in readers:
        raise FileRejected("unsupported_format", f"'{suffix}' is not one of .csv, .jsonl, .parquet")
    fmt, read = readers[suffix]
    try:
        json_keys = read()
    except duckdb.Error as exc:
        raise _describe_read_error(exc, fmt) from None
    if json_keys is not None:
        return json_keys
    described = conn.execute("describe _batch").fetchall()
    return [name for name, *_ in described if name != "_row_number"]
