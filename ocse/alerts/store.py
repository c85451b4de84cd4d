"""The alert store: every alert ever raised and every (alert, channel) delivery, in a SQLite
file of its own (OCSE_ALERTS_DB, default `alerts.sqlite` beside the warehouse).

Why not the warehouse: alert identity must outlive anything done to the warehouse (a full
refresh, a rebuild from raw history, a backfill to an earlier T), and deliveries must go out
while a pipeline run holds DuckDB's single writer lock. SQLite in WAL mode gives both: one
committed transaction per delivery state change, readers that never block the writer, and
several processes (a pipeline run, the delivery job) claiming deliveries safely.

Durability: `synchronous=NORMAL` in WAL mode survives a killed process (the case operations
meet: `kill -9`, an OOM kill, a crash); only an operating-system crash or power loss can lose
the last transactions, and a lost "delivered" mark is then resent with the same idempotency
key. Timestamps are ISO-8601 UTC strings of one fixed width, so they compare as text.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

SCHEMA = """
create table if not exists outbox (
    alert_key text primary key,          -- the alert's identity (its dedupe key)
    episode_key text not null,           -- the clock or state it belongs to
    alert_type text not null,
    status text not null,
    severity text not null,
    severity_rank integer not null,
    subject_id text not null,
    category_code text,
    title text not null,
    payload text not null,               -- the JSON sent, fixed when raised
    is_state integer not null,
    delivery_mode text not null,         -- individual | backlog | digest
    transition_at text,                  -- when the clock crossed 75 % or its deadline
    raised_at text not null,
    raised_run_id text,
    raised_as_of text,
    resolved_at text,
    reopened_at text
);
create table if not exists deliveries (
    alert_key text not null references outbox (alert_key),
    channel text not null,
    -- pending -> sending (claimed, attempt counted) -> delivered | pending | failed;
    -- digested: a backlog alert carried by its digest (digest_key)
    state text not null
        check (state in ('pending', 'sending', 'delivered', 'failed', 'digested')),
    attempts integer not null default 0,
    next_attempt_at text not null,
    claimed_at text,
    claimed_by text,
    last_error text,
    delivered_at text,
    idempotency_key text not null,
    escalated_from text,                 -- set on a dead-letter copy: the channel that failed
    escalated_at text,                   -- set on the original once a copy was made
    digest_key text,
    primary key (alert_key, channel)
);
create index if not exists deliveries_due on deliveries (state, channel, next_attempt_at);
create table if not exists channels (
    channel text primary key,
    state text not null,                 -- up | down
    failures integer not null default 0, -- consecutive failed probes
    down_since text,
    next_probe_at text,
    last_error text,
    last_success_at text
);
create table if not exists evaluations (
    evaluation_id integer primary key autoincrement,
    run_id text,
    as_of text not null,
    evaluated_at text not null,
    mode text not null,                  -- live | backfill
    raised integer not null default 0,
    backlog integer not null default 0,
    resolved integer not null default 0,
    reopened integer not null default 0,
    note text
);
create table if not exists delivery_rounds (
    round_id integer primary key autoincrement,
    run_id text,
    started_at text not null,
    channel text not null,
    channel_state text not null,         -- the channel's state after the round
    delivered integer not null default 0,
    retry_later integer not null default 0,
    failed integer not null default 0,
    escalated integer not null default 0, -- dead-letter copies made to this channel
    waiting integer not null default 0,  -- due but not tried: the channel is down
    last_error text
);
create table if not exists requeues (
    requeued_at text not null,
    requested_by text not null,
    scope text not null,
    deliveries integer not null
);
"""


def ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime(TS_FORMAT)


def parse_ts(value: str | None) -> datetime | None:
    return datetime.strptime(value, TS_FORMAT).replace(tzinfo=UTC) if value else None


class AlertStore:
    """One connection, usable from several threads one statement at a time (`lock`)."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        if read_only:
            self.conn = sqlite3.connect(
                f"file:{path}?mode=ro", uri=True, check_same_thread=False, timeout=30
            )
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(
                path, check_same_thread=False, timeout=30, isolation_level=None
            )
            self.conn.execute("pragma journal_mode = wal")
            self.conn.execute("pragma synchronous = normal")
            self.conn.executescript(SCHEMA)
        self.conn.execute("pragma busy_timeout = 30000")
        self.lock = threading.RLock()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE: the write lock is taken up front, so two processes never both
        read-then-write the same rows."""
        with self.lock:
            self.conn.execute("begin immediate")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("rollback")
                raise
            self.conn.execute("commit")

    def execute(self, sql: str, params: tuple | list = ()) -> sqlite3.Cursor:
        with self.lock:
            return self.conn.execute(sql, params)

    def rows(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        with self.lock:
            return self.conn.execute(sql, params).fetchall()

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> AlertStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_store(path: Path | None = None) -> AlertStore:
    if path is None:
        from ocse.settings import get_settings

        path = get_settings().alerts_store
    return AlertStore(path)
