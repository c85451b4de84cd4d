"""The alert outbox in the warehouse (schema `alerts`): one row per alert ever raised, keyed
by its dedupe key, and one row per (alert, channel) delivery with its state. Raising is
idempotent: a key already in the outbox is never raised again, so re-running a pipeline
run, or evaluating the same breach on ten later runs, sends nothing new."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import duckdb
import polars as pl

from ocse.alerts.config import AlertingConfig
from ocse.alerts.render import alert_json
from ocse.alerts.rules import AlertCandidate

SCHEMA_SQL = """
create schema if not exists alerts;
create table if not exists alerts.outbox (
    alert_key varchar primary key,
    episode_key varchar not null,
    alert_type varchar not null,
    status varchar not null,
    severity varchar not null,
    severity_rank integer not null,
    subject_id varchar not null,
    category_code varchar,
    title varchar not null,
    payload json not null,
    is_state boolean not null,
    raised_at timestamptz not null,
    resolved_at timestamptz
);
create table if not exists alerts.deliveries (
    alert_key varchar not null,
    channel varchar not null,
    state varchar not null,          -- pending, delivered, failed
    attempts integer not null default 0,
    next_attempt_at timestamptz not null,
    last_error varchar,
    delivered_at timestamptz,
    primary key (alert_key, channel)
);
"""


OUTBOX_FRAME_SCHEMA = {
    "alert_key": pl.String,
    "episode_key": pl.String,
    "alert_type": pl.String,
    "status": pl.String,
    "severity": pl.String,
    "severity_rank": pl.Int32,
    "subject_id": pl.String,
    "category_code": pl.String,
    "title": pl.String,
    "payload": pl.String,
    "is_state": pl.Boolean,
}


def ensure_alert_schema(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(SCHEMA_SQL)


@dataclass
class RaiseResult:
    raised: list[str]
    resolved: list[str]
    deliveries: int


def raise_alerts(
    conn: duckdb.DuckDBPyConnection,
    candidates: Iterable[AlertCandidate],
    config: AlertingConfig,
    now: datetime,
    *,
    resolve_missing_types: Iterable[str] = (),
) -> RaiseResult:
    """Record new alerts (unknown dedupe keys) with a pending delivery per routed channel,
    and mark resolved every open state alert of `resolve_missing_types` whose episode is no
    longer among the candidates. One transaction."""
    candidates = sorted(candidates, key=lambda c: (-c.severity_rank, c.alert_key))
    resolve_types = list(resolve_missing_types)
    ensure_alert_schema(conn)
    conn.execute("begin transaction")
    try:
        known = {
            k
            for (k,) in conn.execute(
                "select alert_key from alerts.outbox where alert_key in (select unnest(?))",
                [[c.alert_key for c in candidates]],
            ).fetchall()
        }
        new = [c for c in candidates if c.alert_key not in known]
        at = now.isoformat()
        # One insert per table from a frame: a full build at the end of a year raises tens of
        # thousands of alerts, and a statement per row cost minutes.
        outbox_rows = pl.DataFrame(
            [
                (
                    c.alert_key,
                    c.episode_key,
                    c.alert_type,
                    c.status,
                    c.severity,
                    c.severity_rank,
                    c.subject_id,
                    c.category_code,
                    c.title,
                    json.dumps(alert_json(c, at), ensure_ascii=False),
                    c.is_state,
                )
                for c in new
            ],
            schema=OUTBOX_FRAME_SCHEMA,
            orient="row",
        )
        routed = [
            (c.alert_key, channel)
            for c in new
            for channel in config.channels_for(c.alert_type, c.severity)
        ]
        delivery_rows = pl.DataFrame(
            routed, schema={"alert_key": pl.String, "channel": pl.String}, orient="row"
        )
        conn.register("outbox_rows", outbox_rows.to_arrow())
        conn.register("delivery_rows", delivery_rows.to_arrow())
        conn.execute(
            "insert into alerts.outbox select alert_key, episode_key, alert_type, status, "
            "severity, severity_rank, subject_id, category_code, title, payload, is_state, "
            "?::timestamptz, null from outbox_rows",
            [now],
        )
        conn.execute(
            "insert into alerts.deliveries (alert_key, channel, state, next_attempt_at) "
            "select alert_key, channel, 'pending', ?::timestamptz from delivery_rows",
            [now],
        )
        conn.unregister("outbox_rows")
        conn.unregister("delivery_rows")
        raised, deliveries = [c.alert_key for c in new], len(routed)
        resolved = []
        if resolve_types:
            open_episodes = {c.episode_key for c in candidates}
            resolved = [
                k
                for (k,) in conn.execute(
                    """
                    update alerts.outbox set resolved_at = ?
                    where is_state and resolved_at is null
                        and alert_type in (select unnest(?))
                        and episode_key not in (select unnest(?))
                    returning alert_key
                    """,
                    [now, resolve_types, sorted(open_episodes) or [""]],
                ).fetchall()
            ]
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise
    return RaiseResult(raised=raised, resolved=resolved, deliveries=deliveries)
