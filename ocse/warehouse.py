"""The embedded warehouse: connections and the tables the ingestion gate owns.

Layout of the DuckDB file:
- `raw.<feed>`: every valid version of every record, personal identifiers pseudonymised,
  with the file and row it came from (written only by the gate).
- `ingest.ledger`, `ingest.quarantine`: the gate's bookkeeping.
- `ingest.key_versions`, `ingest.pseudonym_links`: which key made which refs, and the links
  that keep a person one ref across a key rotation (ocse/keys.py).
- `staging`, `marts`: built by dbt from the above.
Timestamps are TIMESTAMPTZ and every connection runs in UTC.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from ocse.contracts import LINEAGE_COLUMNS, FeedContract, Field, all_contracts
from ocse.keys import ensure_key_tables

SQL_TYPES = {
    "string": "varchar",
    "timestamp": "timestamptz",
    "number": "double",
    "integer": "bigint",
    "array": "varchar[]",
}
LINEAGE_TYPES = {"_file_id": "bigint", "_row_number": "bigint", "_ingested_at": "timestamptz"}


def connect(path: Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection in UTC. DuckDB's default memory limit is 80 % of RAM per process, and a
    run has two processes on the warehouse at once (its own, and dbt's):
    OCSE_DUCKDB_MEMORY_LIMIT bounds each; beyond it DuckDB spills to disk."""
    from ocse.settings import get_settings

    path.parent.mkdir(parents=True, exist_ok=True)
    memory_limit = get_settings().duckdb_memory_limit
    try:
        conn = duckdb.connect(str(path), read_only=read_only, config={"memory_limit": memory_limit})
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise RuntimeError(
                f"The warehouse {path} is open in another process (DuckDB allows one writer). "
                "Wait for the running pipeline to finish, or stop the other process."
            ) from None
        raise
    conn.execute("set TimeZone = 'UTC'")
    return conn


def sql_type(f: Field) -> str:
    return SQL_TYPES[f.logical_type]


def raw_columns(contract: FeedContract) -> list[tuple[str, str]]:
    cols = [(f.stored_name, sql_type(f)) for f in contract.fields]
    return cols + [(name, LINEAGE_TYPES[name]) for name, _ in LINEAGE_COLUMNS]


LEDGER_DDL = """
create table if not exists ingest.ledger (
    file_id bigint primary key,
    file_name varchar not null,
    feed varchar not null,
    content_sha256 varchar not null,
    outcome varchar not null,
    rows_read bigint not null,
    rows_loaded bigint not null,
    rows_quarantined bigint not null,
    columns_dropped bigint not null,
    dropped_column_names varchar[],
    error varchar,
    duplicate_of_file_id bigint,
    received_at timestamptz not null,
    ingested_at timestamptz not null,
    size_bytes bigint,
    supersedes_file_id bigint,
    replay_of_file_id bigint
)
"""
# Columns added to the ledger after its first version, in order (an older warehouse gains them).
_LEDGER_ADDED = (("size_bytes", "bigint"), ("supersedes_file_id", "bigint"),
                 ("replay_of_file_id", "bigint"))  # fmt: skip

QUARANTINE_DDL = """
create table if not exists ingest.quarantine (
    feed varchar not null,
    file_id bigint not null,
    file_name varchar not null,
    row_number bigint not null,
    reason_codes varchar[] not null,
    record varchar not null,
    quarantined_at timestamptz not null
)
"""

# The watermarks of the dbt models maintained incrementally by entity (dbt source dbt_state,
# written by their post-hooks: dbt/macros/incremental_changes.sql). Created here, with the
# warehouse, so that dbt can read it as a declared source before the first build.
INCREMENTAL_STATE_DDL = """
create table if not exists intermediate.incremental_state (
    model varchar primary key,
    built_as_of timestamptz not null,
    built_through_file_id bigint not null,
    fingerprint varchar not null
)
"""


def _migrate_ledger(conn: duckdb.DuckDBPyConnection) -> None:
    """A warehouse from before files were identified by content: its ledger had a unique file
    name (a corrected file re-sent under its name was skipped) and lacked the later columns.
    DuckDB cannot drop a constraint, so the table is copied once, rows unchanged."""
    unique_name = conn.execute(
        "select count(*) from duckdb_constraints() where schema_name = 'ingest' "
        "and table_name = 'ledger' and constraint_type = 'UNIQUE' "
        "and constraint_column_names = ['file_name']"
    ).fetchone()[0]
    have = {
        name
        for (name,) in conn.execute(
            "select column_name from information_schema.columns "
            "where table_schema = 'ingest' and table_name = 'ledger'"
        ).fetchall()
    }
    if not unique_name and all(name in have for name, _ in _LEDGER_ADDED):
        return
    conn.execute("begin transaction")
    try:
        for name, typ in _LEDGER_ADDED:
            if name not in have:
                conn.execute(f"alter table ingest.ledger add column {name} {typ}")
        if unique_name:
            conn.execute("alter table ingest.ledger rename to ledger_before_content_identity")
            conn.execute(LEDGER_DDL)
            conn.execute(
                "insert into ingest.ledger by name "
                "select * from ingest.ledger_before_content_identity"
            )
            conn.execute("drop table ingest.ledger_before_content_identity")
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise


def ensure_schema(conn: duckdb.DuckDBPyConnection) -> None:
    """Create the gate's schemas and tables if they do not exist (idempotent)."""
    conn.execute("create schema if not exists raw")
    conn.execute("create schema if not exists ingest")
    conn.execute(LEDGER_DDL)
    _migrate_ledger(conn)
    conn.execute(QUARANTINE_DDL)
    conn.execute("create schema if not exists intermediate")
    conn.execute(INCREMENTAL_STATE_DDL)
    ensure_key_tables(conn)
    for contract in all_contracts():
        cols = ",\n    ".join(f"{name} {typ}" for name, typ in raw_columns(contract))
        conn.execute(f"create table if not exists raw.{contract.feed} (\n    {cols}\n)")
