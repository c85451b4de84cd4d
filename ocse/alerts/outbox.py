"""Raising alerts into the alert store (ocse/alerts/store.py): one row per alert identity,
ever, and one row per (alert, channel) delivery, written before anything is sent.

The rules, for every sequence of runs:
- An alert key already in the store is never raised again (rebuilds, full refreshes and
  repeated runs send nothing new: the store is not part of the warehouse).
- Alerts follow the newest T. A run whose T is earlier than the newest T alerts were
  evaluated at is a backfill: it raises and resolves nothing (its evaluation is recorded as
  `backfill`), so a backfill followed by the current T sends nothing twice and nothing late.
- A state alert whose clock stopped is marked resolved; if the same clock (same subject and
  start, see rules.py) runs again it is reopened, not raised again.
- Backlog, not a flood: clock alerts that crossed long before T (AlertingConfig.backlog) are
  recorded, and their channels get one digest per channel instead of a message each.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ocse.alerts.config import SEVERITIES, AlertingConfig
from ocse.alerts.render import alert_json
from ocse.alerts.rules import CLOCK_WORDS, AlertCandidate
from ocse.alerts.store import AlertStore, parse_ts, ts


@dataclass
class RaiseResult:
    mode: str  # live | backfill
    raised: list[str] = field(default_factory=list)
    backlog: list[str] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    reopened: list[str] = field(default_factory=list)
    deliveries: int = 0
    newest_as_of: datetime | None = None


def idempotency_key(alert_key: str, channel: str) -> str:
    """The same for every send of one delivery (Idempotency-Key header, e-mail Message-ID):
    a resend after a crash is recognisable as a repeat by the receiver."""
    return f"{alert_key}/{channel}"


def _insert_alert(
    conn, c: AlertCandidate, mode: str, at: str, run_id: str | None, as_of: datetime
) -> None:
    conn.execute(
        "insert into outbox (alert_key, episode_key, alert_type, status, severity, "
        "severity_rank, subject_id, category_code, title, payload, is_state, delivery_mode, "
        "transition_at, raised_at, raised_run_id, raised_as_of) "
        "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
            int(c.is_state),
            mode,
            ts(c.transition_at) if c.transition_at else None,
            at,
            run_id,
            ts(as_of),
        ),
    )


def _insert_delivery(
    conn, alert_key: str, channel: str, at: str, *, state="pending", digest_key=None
) -> None:
    conn.execute(
        "insert or ignore into deliveries (alert_key, channel, state, next_attempt_at, "
        "idempotency_key, digest_key) values (?, ?, ?, ?, ?, ?)",
        (alert_key, channel, state, at, idempotency_key(alert_key, channel), digest_key),
    )


def is_backlog(c: AlertCandidate, as_of: datetime, config: AlertingConfig) -> bool:
    window = timedelta(minutes=config.backlog.live_window_minutes)
    return (
        c.alert_type in CLOCK_WORDS
        and c.transition_at is not None
        and (c.transition_at < as_of - window)
    )


def backlog_digest(
    evaluation_id: int,
    channel: str,
    alerts: list[AlertCandidate],
    as_of: datetime,
    config: AlertingConfig,
) -> AlertCandidate:
    """One message for a channel's backlog: counts by clock and category, the worst few
    (most severe, then longest past their target), a link to the queue."""
    counts = Counter((c.alert_type, c.status, c.category_code or "-") for c in alerts)

    def overdue(c: AlertCandidate) -> float:
        target = c.facts.get("target_minutes") or 1
        return c.facts.get("elapsed_minutes", 0) / target

    worst = sorted(alerts, key=lambda c: (-c.severity_rank, -overdue(c), c.alert_key))
    worst = worst[: config.backlog.worst]
    lines = [
        f"{n:,} {clock} {status} ({category})"
        for (clock, status, category), n in sorted(counts.items(), key=lambda kv: -kv[1])
    ]
    lines.append(f"Worst {len(worst)}:")
    lines += [f"[{c.severity.upper()}] {c.title}" for c in worst]
    severity = max((c.severity for c in alerts), key=SEVERITIES.index)
    key = f"backlog_digest:{evaluation_id}:{channel}"
    return AlertCandidate(
        alert_key=key,
        episode_key=key,
        alert_type="backlog_digest",
        status="event",
        severity=severity,
        subject_id=channel,
        category_code=None,
        title=(
            f"Backlog: {len(alerts):,} SLA clocks crossed their threshold more than "
            f"{config.backlog.live_window_minutes:g} min before {as_of:%Y-%m-%d %H:%M} UTC"
        ),
        facts={
            "lines": lines,
            "counts": [
                {"clock": k[0], "status": k[1], "category_code": k[2], "alerts": n}
                for k, n in sorted(counts.items())
            ],
            "worst": [c.alert_key for c in worst],
            "as_of": as_of.isoformat(),
            "link": f"{config.dashboard_url}/operations_queue",
        },
        is_state=False,
    )


def raise_alerts(
    store: AlertStore,
    candidates: Iterable[AlertCandidate],
    config: AlertingConfig,
    now: datetime,
    *,
    as_of: datetime | None = None,
    run_id: str | None = None,
    resolve_missing_types: Iterable[str] = (),
) -> RaiseResult:
    """Record new alerts with their deliveries, resolve and reopen state alerts, in one
    transaction. `as_of` is the T the candidates were evaluated at (None: an event outside
    the pipeline's clock, such as a failed run or the daily digest, always live)."""
    candidates = sorted(candidates, key=lambda c: (-c.severity_rank, c.alert_key))
    resolve_types = list(resolve_missing_types)
    at = ts(now)
    with store.transaction() as conn:
        newest = conn.execute("select max(as_of) from evaluations where mode = 'live'").fetchone()
        newest_as_of = newest[0]
        if as_of is not None and newest_as_of is not None and ts(as_of) < newest_as_of:
            conn.execute(
                "insert into evaluations (run_id, as_of, evaluated_at, mode, note) "
                "values (?, ?, ?, 'backfill', ?)",
                (run_id, ts(as_of), at, f"alerts follow the newest T ({newest_as_of})"),
            )
            return RaiseResult(mode="backfill", newest_as_of=parse_ts(newest_as_of))
        evaluation_id = conn.execute(
            "insert into evaluations (run_id, as_of, evaluated_at, mode) values (?, ?, ?, ?) "
            "returning evaluation_id",
            (run_id, ts(as_of or now), at, "live" if as_of is not None else "event"),
        ).fetchone()[0]
        keys = [c.alert_key for c in candidates]
        known: set[str] = set()
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            marks = ",".join("?" * len(chunk))
            known.update(
                k
                for (k,) in conn.execute(
                    f"select alert_key from outbox where alert_key in ({marks})", chunk
                )
            )
        result = RaiseResult(mode="live")
        backlog_by_channel: dict[str, list[AlertCandidate]] = {}
        for c in candidates:
            if c.alert_key in known:
                continue
            channels = config.channels_for(c.alert_type, c.severity)
            backlog = as_of is not None and is_backlog(c, as_of, config)
            _insert_alert(conn, c, "backlog" if backlog else "individual", at, run_id, as_of or now)
            (result.backlog if backlog else result.raised).append(c.alert_key)
            for channel in channels:
                if backlog:
                    backlog_by_channel.setdefault(channel, []).append(c)
                    digest_key = f"backlog_digest:{evaluation_id}:{channel}"
                    _insert_delivery(
                        conn, c.alert_key, channel, at, state="digested", digest_key=digest_key
                    )
                else:
                    _insert_delivery(conn, c.alert_key, channel, at)
                    result.deliveries += 1
        for channel, alerts in sorted(backlog_by_channel.items()):
            digest = backlog_digest(evaluation_id, channel, alerts, as_of, config)
            _insert_alert(conn, digest, "digest", at, run_id, as_of)
            _insert_delivery(conn, digest.alert_key, channel, at)
            result.digests.append(digest.alert_key)
            result.deliveries += 1
        if resolve_types:
            open_episodes = sorted({c.episode_key for c in candidates if c.is_state})
            conn.execute("create temp table if not exists open_episodes (episode_key text)")
            conn.execute("delete from open_episodes")
            conn.executemany("insert into open_episodes values (?)", [(e,) for e in open_episodes])
            types = ",".join("?" * len(resolve_types))
            result.resolved = [
                k
                for (k,) in conn.execute(
                    f"update outbox set resolved_at = ? where is_state = 1 and resolved_at is null "
                    f"and alert_type in ({types}) "
                    "and episode_key not in (select episode_key from open_episodes) "
                    "returning alert_key",
                    (at, *resolve_types),
                )
            ]
            result.reopened = [
                k
                for (k,) in conn.execute(
                    f"update outbox set resolved_at = null, reopened_at = ? "
                    f"where is_state = 1 and resolved_at is not null and alert_type in ({types}) "
                    "and episode_key in (select episode_key from open_episodes) "
                    "returning alert_key",
                    (at, *resolve_types),
                )
            ]
        conn.execute(
            "update evaluations set raised = ?, backlog = ?, resolved = ?, reopened = ? "
            "where evaluation_id = ?",
            (
                len(result.raised),
                len(result.backlog),
                len(result.resolved),
                len(result.reopened),
                evaluation_id,
            ),
        )
    return result


def import_warehouse_outbox(store: AlertStore, warehouse_conn) -> int:
    """Once, for a warehouse from before the alert store: its `alerts` schema (outbox and
    deliveries) is copied into the store, so no alert sent then is sent again, and dropped
    from the warehouse. Returns the alerts imported."""
    has = warehouse_conn.execute(
        "select count(*) from duckdb_tables() where schema_name = 'alerts' "
        "and table_name in ('outbox', 'deliveries') and database_name = current_database()"
    ).fetchone()[0]
    if has < 2:
        return 0
    outbox = warehouse_conn.execute(
        "select alert_key, episode_key, alert_type, status, severity, severity_rank, "
        "subject_id, category_code, title, payload::varchar, is_state, raised_at, resolved_at "
        "from alerts.outbox"
    ).fetchall()
    deliveries = warehouse_conn.execute(
        "select alert_key, channel, state, attempts, next_attempt_at, last_error, delivered_at "
        "from alerts.deliveries"
    ).fetchall()
    with store.transaction() as conn:
        conn.executemany(
            "insert or ignore into outbox (alert_key, episode_key, alert_type, status, severity, "
            "severity_rank, subject_id, category_code, title, payload, is_state, delivery_mode, "
            "raised_at, resolved_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'individual', ?, ?)",
            [
                (*row[:10], int(row[10]), ts(row[11]), ts(row[12]) if row[12] else None)
                for row in outbox
            ],
        )
        conn.executemany(
            "insert or ignore into deliveries (alert_key, channel, state, attempts, "
            "next_attempt_at, last_error, delivered_at, idempotency_key) "
            "values (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    key,
                    channel,
                    state,
                    attempts,
                    ts(next_at),
                    error,
                    ts(done) if done else None,
                    idempotency_key(key, channel),
                )
                for key, channel, state, attempts, next_at, error, done in deliveries
            ],
        )
    warehouse_conn.execute("drop schema alerts cascade")
    return len(outbox)
