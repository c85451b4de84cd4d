"""The serving snapshot: what dashboards and exports read.

After a successful run the published tables (schema `marts`) are copied into a new DuckDB
file next to the serving path, which then replaces the old one with an atomic rename. A
reader holding the old file keeps a consistent view; a failed run never reaches this step,
so the previous snapshot stays as it was. Readers never open the warehouse the pipeline
writes (DuckDB allows one writer, and a reader in another process would block it).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from ocse.catalog import Definition

# marts: the public interface. The schema `alerts` of the snapshot (the outbox, deliveries,
# channel state and delivery rounds, for operations) comes from the alert store.
PUBLISHED_SCHEMAS = ("marts",)
ALERT_TABLES = ("outbox", "deliveries", "channels", "delivery_rounds", "evaluations")
BOOLEAN_COLUMNS = {"is_state"}


def _copy_alert_store(conn: duckdb.DuckDBPyConnection, store_path: Path | None) -> dict[str, int]:
    """The alert store's tables into snapshot.alerts, its ISO text times as TIMESTAMPTZ."""
    import sqlite3

    import polars as pl

    from ocse.alerts.store import SCHEMA

    if store_path is not None and store_path.exists():
        source = sqlite3.connect(f"file:{store_path}?mode=ro", uri=True, timeout=30)
    else:
        source = sqlite3.connect(":memory:")
        source.executescript(SCHEMA)
    conn.execute("create schema snapshot.alerts")
    counts = {}
    try:
        for table in ALERT_TABLES:
            cursor = source.execute(f"select * from {table}")
            columns = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
            frame = pl.DataFrame(
                {c: [r[i] for r in rows] for i, c in enumerate(columns)}, strict=False
            )
            if not rows:
                frame = pl.DataFrame({c: pl.Series(c, [], dtype=pl.String) for c in columns})
            conn.register("alert_rows", frame.to_arrow())
            casts = ", ".join(
                f"{c}::timestamptz as {c}"
                if c.endswith("_at") or c == "as_of"
                else f"({c})::boolean as {c}"
                if c in BOOLEAN_COLUMNS
                else c
                for c in columns
            )
            conn.execute(f"create table snapshot.alerts.{table} as select {casts} from alert_rows")
            conn.unregister("alert_rows")
            counts[f"alerts.{table}"] = len(rows)
    finally:
        source.close()
    return counts


@dataclass(frozen=True)
class PublishedSnapshot:
    path: Path
    tables: dict[str, int]  # "<schema>.<table>" -> rows
    published_at: datetime


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish_snapshot(
    conn: duckdb.DuckDBPyConnection,
    serving_path: Path,
    *,
    as_of: datetime,
    run_id: str,
    reporting_tz: str,
    definitions: list[Definition] | None = None,
    alerts_store: Path | None = None,
) -> PublishedSnapshot:
    """Copy the published schemas of the warehouse (`conn`) into `serving_path`, atomically."""
    serving_path.parent.mkdir(parents=True, exist_ok=True)
    # A publish killed half-way leaves its temporary file: the caller holds the warehouse
    # lease (the only publisher), so any such file is a leftover.
    for stale in serving_path.parent.glob(f".{serving_path.name}.*.tmp"):
        stale.unlink(missing_ok=True)
    tmp = serving_path.with_name(f".{serving_path.name}.{uuid.uuid4().hex}.tmp")
    published_at = datetime.now(UTC)
    tables: dict[str, int] = {}
    # The path is ours (settings), not user input; ATTACH takes no parameters.
    conn.execute(f"attach '{tmp.as_posix().replace(chr(39), chr(39) * 2)}' as snapshot")
    try:
        for schema in PUBLISHED_SCHEMAS:
            conn.execute(f"create schema snapshot.{schema}")
            names = conn.execute(
                "select table_name from duckdb_tables() "
                "where database_name = current_database() and schema_name = ? order by 1",
                [schema],
            ).fetchall()
            for (name,) in names:
                conn.execute(
                    f"create table snapshot.{schema}.{name} as select * from {schema}.{name}"
                )
                tables[f"{schema}.{name}"] = conn.execute(
                    f"select count(*) from snapshot.{schema}.{name}"
                ).fetchone()[0]
        tables.update(_copy_alert_store(conn, alerts_store))
        conn.execute("create schema snapshot.meta")
        conn.execute(
            "create table snapshot.meta.snapshot as select "
            "?::timestamptz as published_at, ?::timestamptz as as_of, "
            "?::varchar as run_id, ?::varchar as reporting_tz",
            [published_at, as_of, run_id, reporting_tz],
        )
        # The dbt docs of the marts, so every reader quotes the definitions of this release.
        conn.execute(
            "create table snapshot.meta.definitions (table_name varchar not null, "
            "column_name varchar, data_type varchar, description varchar not null, "
            "ordinal integer not null)"
        )
        if definitions:
            conn.executemany(
                "insert into snapshot.meta.definitions values (?, ?, ?, ?, ?)",
                [
                    [d.table_name, d.column_name, d.data_type, d.description, d.ordinal]
                    for d in definitions
                ],
            )
        conn.execute("detach snapshot")
        _fsync(tmp)
        os.replace(tmp, serving_path)
        _fsync(serving_path.parent)
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            conn.execute("detach snapshot")
        tmp.unlink(missing_ok=True)
        raise
    return PublishedSnapshot(path=serving_path, tables=tables, published_at=published_at)


def open_snapshot(path: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the serving snapshot, with no access to other files."""
    conn = duckdb.connect(str(path), read_only=True, config={"enable_external_access": False})
    conn.execute("set TimeZone = 'UTC'")
    return conn
