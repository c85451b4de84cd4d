"""The lifecycle audit: one row per table a retention run, an erasure or a seal decision
touched, in the warehouse (`lifecycle.audit`), zeros included.

Purges of the SQLite stores (the alert store, the dashboards' access log) are recorded there
too, so one table answers "what was removed, when, by whom, under which cutoff"; each store
also keeps its own copy (`lifecycle_audit` in that file), so a store moved or inspected on
its own still explains its gaps. No audit row ever holds a personal identifier or a
pseudonym: an erasure is recorded by its request id and the SHA-256 of the ref.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb

LIFECYCLE_DDL = """
create schema if not exists lifecycle;
create sequence if not exists lifecycle.audit_id_seq;
create table if not exists lifecycle.audit (
    audit_id bigint primary key default nextval('lifecycle.audit_id_seq'),
    recorded_at timestamptz not null,
    action varchar not null,          -- retention | erasure | seal_init | seal_accept | seal_rebase
    store varchar not null,           -- warehouse | alerts | access
    table_name varchar not null,      -- e.g. raw.reports, alerts.outbox, access.access_log
    cutoff timestamptz,               -- retention: rows older than this were eligible
    rows_removed bigint not null,
    values_cleared bigint not null,   -- erasure: personal fields set to null in kept rows
    run_id varchar not null,
    requested_by varchar not null,
    request_id varchar,               -- erasure: the request id
    detail varchar                    -- JSON: the rule applied, holds, notes
);
create table if not exists lifecycle.seal (
    table_name varchar primary key,
    through_file_id bigint not null,  -- the rows of files up to this one are sealed
    row_count bigint not null,
    checksum hugeint not null,        -- sum of hash(columns) over the sealed rows
    columns varchar[] not null,       -- the columns the checksum covers, in order
    hash_version varchar not null,    -- DuckDB's version: hash() may differ between versions
    sealed_at timestamptz not null,
    sealed_by varchar not null
);
create table if not exists lifecycle.erasures (
    request_id varchar primary key,
    ref_sha256 varchar not null,      -- SHA-256 of the ref as given, never the ref itself
    refs_erased bigint not null,      -- the ref and the refs linked to it (key rotation)
    rows_removed bigint not null,
    values_cleared bigint not null,
    requested_by varchar not null,
    run_id varchar not null,
    completed_at timestamptz not null,
    detail varchar                    -- JSON: rows per table
);
"""

SQLITE_AUDIT_DDL = """
create table if not exists lifecycle_audit (
    recorded_at text not null,
    action text not null,
    table_name text not null,
    cutoff text,
    rows_removed integer not null,
    values_cleared integer not null default 0,
    run_id text not null,
    requested_by text not null,
    request_id text,
    detail text
);
"""


def ensure_lifecycle_schema(conn: duckdb.DuckDBPyConnection) -> None:
    for statement in LIFECYCLE_DDL.split(";"):
        if statement.strip():
            conn.execute(statement)


@dataclass
class AuditRow:
    action: str
    store: str
    table_name: str
    rows_removed: int
    run_id: str
    requested_by: str
    cutoff: datetime | None = None
    values_cleared: int = 0
    request_id: str | None = None
    detail: dict = field(default_factory=dict)
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


def write_audit(conn: duckdb.DuckDBPyConnection, rows: list[AuditRow]) -> None:
    """Append `rows` to lifecycle.audit (in the caller's transaction, if any)."""
    ensure_lifecycle_schema(conn)
    for r in rows:
        conn.execute(
            "insert into lifecycle.audit (recorded_at, action, store, table_name, cutoff, "
            "rows_removed, values_cleared, run_id, requested_by, request_id, detail) "
            "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                r.at,
                r.action,
                r.store,
                r.table_name,
                r.cutoff,
                r.rows_removed,
                r.values_cleared,
                r.run_id,
                r.requested_by,
                r.request_id,
                json.dumps(r.detail, sort_keys=True, default=str),
            ],
        )


def write_sqlite_audit(conn: sqlite3.Connection, rows: list[AuditRow]) -> None:
    """The store's own copy of its audit rows (in the caller's SQLite transaction)."""
    conn.execute(SQLITE_AUDIT_DDL.strip().rstrip(";"))
    conn.executemany(
        "insert into lifecycle_audit (recorded_at, action, table_name, cutoff, rows_removed, "
        "values_cleared, run_id, requested_by, request_id, detail) "
        "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                r.at.astimezone(UTC).isoformat(timespec="milliseconds"),
                r.action,
                r.table_name,
                r.cutoff.astimezone(UTC).isoformat() if r.cutoff else None,
                r.rows_removed,
                r.values_cleared,
                r.run_id,
                r.requested_by,
                r.request_id,
                json.dumps(r.detail, sort_keys=True, default=str),
            )
            for r in rows
        ],
    )
