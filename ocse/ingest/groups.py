"""Reading many landed files of one feed in one DuckDB scan.

At a year of a large platform the landing holds thousands of files, and a transaction with a
dozen statements per file costs more than the rows in it. Files of the same feed, format and
shape (CSV: the same header line; Parquet: the same schema; JSON Lines: any) are therefore
read together into one temp table `_batch` with `_file_id` and `_row_number` (1-based per
file), validated, pseudonymised and loaded in one transaction. Anything unusual about a group
(a read error, a file missing a required column, a JSON line that is not an object or is
over the line limit) raises `SplitGroup`: the gate then processes those files one by one,
with the exact file-level outcome each deserves (ocse/ingest/readers.py says why). The
grouping is a performance choice only: every file still gets its own ledger row, row numbers
and reason codes, exactly as if it were read alone.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass

import duckdb

from ocse.contracts import FeedContract
from ocse.ingest.discovery import LandedFile
from ocse.ingest.readers import CSV_READ_OPTIONS, json_field_selects, jsonl_misfit_sql

MAX_GROUP_FILES = 400
# Bytes of landed files per group: bounds the memory of a group's temp tables (DuckDB spills
# beyond its memory limit, but a spill is slower than a smaller group).
MAX_GROUP_BYTES = 192 << 20
# Names DuckDB gives its virtual columns: a file with a column so named is read alone.
_VIRTUAL = {"filename", "file_index", "file_row_number", "rowid", "_file_index"}


class SplitGroup(Exception):  # noqa: N818 - a signal to the gate, not an error
    """This group cannot be read as one: process its files one by one."""


@dataclass(frozen=True)
class Member:
    file: LandedFile
    sha: str
    file_id: int


def _shape(file: LandedFile) -> tuple | None:
    """What files must share to be read together; None: read this file alone."""
    suffix = file.path.suffix.lower()
    if file.size == 0 or suffix not in (".csv", ".jsonl", ".parquet"):
        return None
    try:
        if suffix == ".csv":
            with open(file.path, "rb") as fh:
                header = next(csv.reader([fh.readline().decode("utf-8")]), None)
            if not header or _VIRTUAL & set(header):
                return None
            return (suffix, tuple(header))
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            schema = pq.read_schema(file.path)
            if _VIRTUAL & set(schema.names):
                return None
            return (suffix, tuple((f.name, str(f.type)) for f in schema))
    except (OSError, UnicodeDecodeError, ValueError, csv.Error, Exception):  # noqa: BLE001
        return None  # whatever is wrong with it, the single-file path says so
    return (suffix,)


def plan_groups(members: Iterable[Member]) -> list[list[Member]]:
    """Members grouped by feed and shape, in order of their first file id, each group at most
    MAX_GROUP_FILES files and MAX_GROUP_BYTES bytes; files that must be read alone are
    groups of one."""
    open_groups: dict[tuple, list[Member]] = {}
    sizes: dict[tuple, int] = {}
    done: list[list[Member]] = []
    for member in members:
        shape = _shape(member.file)
        if shape is None:
            done.append([member])
            continue
        key = (member.file.feed, *shape)
        group = open_groups.setdefault(key, [])
        if group and (
            len(group) >= MAX_GROUP_FILES or sizes[key] + member.file.size > MAX_GROUP_BYTES
        ):
            done.append(group)
            group = open_groups[key] = []
            sizes[key] = 0
        group.append(member)
        sizes[key] = sizes.get(key, 0) + member.file.size
    done.extend(g for g in open_groups.values() if g)
    return sorted(done, key=lambda g: g[0].file_id)


def _register_files(conn: duckdb.DuckDBPyConnection, members: list[Member]) -> None:
    conn.execute(
        "create or replace temp table _group_files as "
        "select unnest($idx)::bigint as _file_index, unnest($ids)::bigint as _file_id",
        {"idx": list(range(len(members))), "ids": [m.file_id for m in members]},
    )


def _batch_view(conn: duckdb.DuckDBPyConnection, selects: str) -> None:
    """`_batch`: the group's rows with the file id and 1-based row number in the file. A scan
    of many files keeps each file's rows together and in order (insertion order), so a row's
    number is its rowid minus its file's first rowid; checked, not assumed."""
    conn.execute(
        "create or replace temp table _group_offsets as "
        "select _file_index, min(rowid) as first_rowid, max(rowid) as last_rowid, "
        "count(*) as n from _batch_src group by 1"
    )
    (scattered,) = conn.execute(
        "select count(*) from _group_offsets where last_rowid - first_rowid + 1 <> n"
    ).fetchone()
    if scattered:
        raise SplitGroup("rows of a file are not contiguous")
    conn.execute(
        f"""
        create or replace temp view _batch as
        select g._file_id, s.rowid - o.first_rowid + 1 as _row_number, {selects}
        from _batch_src as s
        join _group_offsets as o using (_file_index)
        join _group_files as g using (_file_index)
        """
    )


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def read_group(
    conn: duckdb.DuckDBPyConnection, members: list[Member], contract: FeedContract
) -> dict[int, list[str]]:
    """Read the group into view `_batch` (`_file_id`, `_row_number`, the contract's columns
    as VARCHAR); return every column or JSON key name of each file, by file id."""
    paths = [str(m.file.path) for m in members]
    suffix = members[0].file.path.suffix.lower()
    _register_files(conn, members)
    try:
        if suffix == ".csv":
            return _read_csv(conn, members, paths)
        if suffix == ".jsonl":
            return _read_jsonl(conn, members, paths, contract)
        return _read_parquet(conn, members, paths)
    except duckdb.Error as exc:
        # DuckDB's message may quote a line of a file: not kept, the single path rereads.
        raise SplitGroup(type(exc).__name__) from None


def _read_csv(conn, members: list[Member], paths: list[str]) -> dict[int, list[str]]:
    # The options of a single file's read (ocse/ingest/readers.py): a file reads the same
    # alone or in a group.
    conn.execute(
        "create or replace temp table _batch_src as "
        f"select file_index as _file_index, * from read_csv($paths, {CSV_READ_OPTIONS})",
        {"paths": paths},
    )
    columns = [
        name for name, *_ in conn.execute("describe _batch_src").fetchall() if name != "_file_index"
    ]
    _batch_view(conn, ", ".join(f"s.{_quoted(c)}" for c in columns))
    return {m.file_id: columns for m in members}


def _read_parquet(conn, members: list[Member], paths: list[str]) -> dict[int, list[str]]:
    described = conn.execute(
        "describe select * from read_parquet($paths)", {"paths": paths}
    ).fetchall()
    selects = []
    for name, typ, *_ in described:
        quoted = _quoted(name)
        if typ.endswith("[]"):
            selects.append(f"array_to_string({quoted}, '|') as {quoted}")
        else:
            selects.append(f"cast({quoted} as varchar) as {quoted}")
    # Parquet numbers its rows itself, so no view over rowids is needed.
    conn.execute(
        f"""
        create or replace temp table _batch_src as
        select g._file_id, file_row_number + 1 as _row_number, {", ".join(selects)}
        from read_parquet($paths, file_row_number = true) as p
        join _group_files as g on g._file_index = p.file_index
        """,
        {"paths": paths},
    )
    conn.execute("create or replace temp view _batch as select * from _batch_src")
    columns = [name for name, *_ in described]
    return {m.file_id: columns for m in members}


def _read_jsonl(
    conn, members: list[Member], paths: list[str], contract: FeedContract
) -> dict[int, list[str]]:
    conn.execute(
        "create or replace temp table _batch_src as "
        "select file_index as _file_index, json from read_ndjson_objects($paths)",
        {"paths": paths},
    )
    (misfits,) = conn.execute(
        f"select count(*) from _batch_src where {jsonl_misfit_sql('json')}"
    ).fetchone()
    if misfits:
        raise SplitGroup("a line is not a JSON object, or is too long")
    keys_by_index = dict(
        conn.execute(
            "select _file_index, list(distinct k order by k) from "
            "(select _file_index, unnest(json_keys(json)) as k from _batch_src) group by 1"
        ).fetchall()
    )
    keys: dict[int, list[str]] = {}
    for i, m in enumerate(members):
        file_keys = keys_by_index.get(i, [])
        if not set(contract.required_names) <= set(file_keys):
            raise SplitGroup("a file lacks a required key")
        keys[m.file_id] = file_keys
    every_key = set().union(*keys.values())
    selects = json_field_selects(contract, every_key, "s.json")
    _batch_view(conn, ", ".join(selects) if selects else "null as _none")
    return keys
