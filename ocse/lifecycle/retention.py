"""Retention: what is older than its period (retention.yaml) is purged, with an audit row per
table and run (`lifecycle.audit`), zeros included.

The cutoff of a table is the start of the day the job runs on, in OCSE_REPORTING_TZ, minus
its period: every run of one day has the same cutoffs, so a second run that day removes
nothing (and records that it removed 0).

Rules, per table (why: README, "Operating the warehouse"):
- `raw.<feed>`: a record goes as a whole, every version at once, and only when its current
  version (greatest `updated_at`) is older than the cutoff. A record whose current version is
  within the period keeps every version, so staging (the current version of each record as
  of T) never changes for a record that stays. Records that something kept refers to stay
  too: the hits and actions of one content go together (a takedown's posted and detected
  times come from all of them), the hit and the report an action names, the action a case
  names; and every action of an account that is black in `marts.dim_user_tiers` stays
  (black does not expire: purging its grounds would take the account off the list). Before
  the first successful run (no `dim_user_tiers`) raw history is not purged at all.
  The records purged are also deleted from staging, and the watermarks of the incremental
  marts (`intermediate.incremental_state`) are cleared so the next run rebuilds them in full:
  the marts equal a full build from what raw history now holds.
- `ingest.quarantine`: rows quarantined before the cutoff lose their record (the refused
  row's values, pseudonyms included, become `{}`); the file, row number and reason codes
  stay, so the quarantine still itemises exactly the rows the ledger counts (dbt test
  assert_quarantine_matches_ledger), as the ledger keeps each file's counts forever (it is
  never purged: it is what makes a file be processed once).
- `alerts.outbox` (with `alerts.deliveries`): an alert resolved (a state alert) or raised
  (an event) before the cutoff, none of whose deliveries is pending or being sent.
- `alerts.delivery_rounds`, `alerts.requeues`: rows older than the cutoff;
  `alerts.evaluations` too, except the newest live evaluation (alerts follow the newest T).
- `access.access_log`: entries older than the cutoff. The log is append-only by SQLite
  triggers; this job alone lifts the delete trigger, inside the transaction that deletes
  and puts it back.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb

from ocse.lifecycle import guard
from ocse.lifecycle.audit import AuditRow, ensure_lifecycle_schema, write_audit, write_sqlite_audit
from ocse.lifecycle.config import RetentionConfig, load_retention_config

RAW_FEEDS = ("screening_hits", "reports", "enforcement_actions", "cases")
RECORD_KEYS = {
    "screening_hits": "hit_id",
    "reports": "report_id",
    "enforcement_actions": "action_id",
    "cases": "case_id",
}
# What a quarantine row's record becomes past its period.
CLEARED_RECORD = "{}"
_SHORT = {"screening_hits": "hits", "reports": "reports", "enforcement_actions": "actions",
          "cases": "cases"}  # fmt: skip


@dataclass
class Purge:
    store: str
    table: str
    cutoff: datetime | None
    rows: int  # removed (or, in a dry run, that would be)
    detail: dict = field(default_factory=dict)
    cleared: int = 0  # rows kept with their personal content cleared (quarantine records)


@dataclass
class RetentionResult:
    run_id: str
    dry_run: bool
    purges: list[Purge] = field(default_factory=list)
    seal: str = ""

    @property
    def rows_removed(self) -> int:
        return sum(p.rows for p in self.purges)

    @property
    def rows_cleared(self) -> int:
        return sum(p.cleared for p in self.purges)


def cutoff(days: int, now: datetime, tz: str) -> datetime:
    """Start of `now`'s day in `tz`, minus `days` days, in UTC."""
    local = now.astimezone(ZoneInfo(tz))
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return (start - timedelta(days=days)).astimezone(UTC)


def _exists(conn: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(
        conn.execute(
            "select count(*) from duckdb_tables() where database_name = current_database() "
            "and schema_name = ? and table_name = ?",
            [schema, table],
        ).fetchone()[0]
    )


def staging_tables(conn: duckdb.DuckDBPyConnection, feed: str) -> list[str]:
    """The staging models of a feed (`staging.stg_<feed>__*`) that hold its record key."""
    key = RECORD_KEYS[feed]
    return [
        f"staging.{name}"
        for (name,) in conn.execute(
            "select t.table_name from duckdb_tables() as t "
            "where t.database_name = current_database() and t.schema_name = 'staging' "
            "and starts_with(t.table_name, ?) and exists (select 1 from duckdb_columns() as c "
            "where c.database_name = t.database_name and c.schema_name = 'staging' "
            "and c.table_name = t.table_name and c.column_name = ?) order by 1",
            [f"stg_{feed}__", key],
        ).fetchall()
    ]


def reset_incremental_marts(conn: duckdb.DuckDBPyConnection) -> int:
    """Clear the watermarks of the incremental marts: the next run rebuilds them in full
    (dbt/macros/incremental_changes.sql). Returns the watermarks cleared."""
    if not _exists(conn, "intermediate", "incremental_state"):
        return 0
    (n,) = conn.execute("select count(*) from intermediate.incremental_state").fetchone()
    conn.execute("delete from intermediate.incremental_state")
    return n


def _keep_sets(conn: duckdb.DuckDBPyConnection, cutoffs: dict[str, datetime]) -> dict:
    """Temp tables `_rt_keep_<short>(k)`: the records of each feed that stay."""
    for feed in RAW_FEEDS:
        conn.execute(
            f"create or replace temp table _rt_young_{_SHORT[feed]} as "
            f"select {RECORD_KEYS[feed]} as k from raw.{feed} group by 1 "
            "having max(updated_at) >= $cutoff",
            {"cutoff": cutoffs[feed]},
        )
    conn.execute(
        "create or replace temp table _rt_black as "
        "select distinct user_ref as ref from marts.dim_user_tiers where tier = 'black'"
    )
    conn.execute(
        """
        create or replace temp table _rt_keep_actions as
        select k from _rt_young_actions
        union
        select action_id from raw.enforcement_actions
        where user_id_ref in (select ref from _rt_black)
        union
        select action_id from raw.cases
        where action_id is not null and case_id in (select k from _rt_young_cases)
        """
    )
    conn.execute(
        """
        create or replace temp table _rt_keep_contents as
        select content_id from raw.enforcement_actions
        where content_id is not null and action_id in (select k from _rt_keep_actions)
        union
        select content_id from raw.screening_hits
        where content_id is not null and hit_id in (select k from _rt_young_hits)
        """
    )
    conn.execute(
        """
        insert into _rt_keep_actions
        select distinct action_id from raw.enforcement_actions
        where content_id in (select content_id from _rt_keep_contents)
            and action_id not in (select k from _rt_keep_actions)
        """
    )
    conn.execute(
        """
        create or replace temp table _rt_keep_hits as
        select k from _rt_young_hits
        union
        select hit_id from raw.screening_hits
        where content_id in (select content_id from _rt_keep_contents)
        union
        select hit_id from raw.enforcement_actions
        where hit_id is not null and action_id in (select k from _rt_keep_actions)
        """
    )
    conn.execute(
        """
        create or replace temp table _rt_keep_reports as
        select k from _rt_young_reports
        union
        select report_id from raw.enforcement_actions
        where report_id is not null and action_id in (select k from _rt_keep_actions)
        union
        select report_id from raw.reports
        where content_id in (select content_id from _rt_keep_contents)
        """
    )
    conn.execute(
        """
        create or replace temp table _rt_keep_cases as
        select k from _rt_young_cases
        union
        select case_id from raw.cases
        where action_id in (select k from _rt_keep_actions)
        """
    )
    (black,) = conn.execute("select count(*) from _rt_black").fetchone()
    return {"black_accounts_held": black}


def _purge_raw(conn, cutoffs: dict[str, datetime | None]) -> list[Purge]:
    purges: list[Purge] = []
    active = {f: c for f, c in cutoffs.items() if c is not None}
    if not active:
        return [Purge("warehouse", f"raw.{f}", None, 0, {"kept": "forever"}) for f in RAW_FEEDS]
    if not _exists(conn, "marts", "dim_user_tiers"):
        note = "not purged: no marts.dim_user_tiers yet (the black list decides what stays)"
        return [Purge("warehouse", f"raw.{f}", cutoffs[f], 0, {"note": note}) for f in RAW_FEEDS]
    far_past = datetime(1, 1, 1, tzinfo=UTC)
    # A feed kept forever has every record young: cutoff at the beginning of time.
    holds = _keep_sets(conn, {f: c if c is not None else far_past for f, c in cutoffs.items()})
    for feed in RAW_FEEDS:
        key, short = RECORD_KEYS[feed], _SHORT[feed]
        conn.execute(
            f"create or replace temp table _rt_purge_{short} as "
            f"select distinct {key} as k from raw.{feed} "
            f"where {key} not in (select k from _rt_keep_{short})"
        )
        records, rows, young, held = conn.execute(
            f"select (select count(*) from _rt_purge_{short}), "
            f"(select count(*) from raw.{feed} where {key} in (select k from _rt_purge_{short})), "
            f"(select count(*) from _rt_young_{short}), "
            f"(select count(distinct {key}) from raw.{feed} where {key} in "
            f"(select k from _rt_keep_{short}) and {key} not in (select k from _rt_young_{short}))"
        ).fetchone()
        detail = {
            "records_removed": records,
            "records_within_period": young,
            "records_held_by_links": held,
            "rule": "whole records whose current version is older than the cutoff and that "
            "nothing kept refers to",
            "marts": "unchanged for the period kept; rows of days, weeks and months before "
            "the cutoff and all-time counts lose the records removed",
        }
        if feed == "enforcement_actions":
            detail.update(holds)
        if rows:
            conn.execute(f"delete from raw.{feed} where {key} in (select k from _rt_purge_{short})")
            staged = 0
            for table in staging_tables(conn, feed):
                where = f"{key} in (select k from _rt_purge_{short})"
                (n,) = conn.execute(f"select count(*) from {table} where {where}").fetchone()
                conn.execute(f"delete from {table} where {where}")
                staged += n
            detail["staging_rows_removed"] = staged
        purges.append(Purge("warehouse", f"raw.{feed}", cutoffs[feed], rows, detail))
    return purges


def _purge_quarantine(conn, cut: datetime | None) -> Purge:
    if cut is None:
        return Purge("warehouse", "ingest.quarantine", None, 0, {"kept": "forever"})
    where = f"quarantined_at < ? and record <> '{CLEARED_RECORD}'"
    (n,) = conn.execute(f"select count(*) from ingest.quarantine where {where}", [cut]).fetchone()
    if n:
        conn.execute(
            f"update ingest.quarantine set record = '{CLEARED_RECORD}' where {where}", [cut]
        )
    rule = "quarantined before cutoff: record cleared; file, row and reason codes kept"
    return Purge("warehouse", "ingest.quarantine", cut, 0, {"rule": rule}, cleared=n)


def _sqlite_ts(value: datetime) -> str:
    from ocse.alerts.store import ts

    return ts(value)


def purge_alert_store(conn: sqlite3.Connection, cutoffs: dict[str, datetime | None]) -> list[Purge]:
    """In the caller's transaction on the alert store."""
    purges: list[Purge] = []
    cut = cutoffs.get("alerts.outbox")
    if cut is None:
        purges += [
            Purge("alerts", "alerts.outbox", None, 0, {"kept": "forever"}),
            Purge("alerts", "alerts.deliveries", None, 0, {"kept": "forever"}),
        ]
    else:
        c = _sqlite_ts(cut)
        conn.execute("drop table if exists temp._rt_alerts")
        conn.execute(
            """
            create temp table _rt_alerts as
            select alert_key from outbox as o
            where (case when o.is_state = 1 then o.resolved_at else o.raised_at end) < ?
                and not exists (
                    select 1 from deliveries as d
                    where d.alert_key = o.alert_key and d.state in ('pending', 'sending')
                )
            """,
            (c,),
        )
        deliveries = conn.execute(
            "delete from deliveries where alert_key in (select alert_key from temp._rt_alerts)"
        ).rowcount
        outbox = conn.execute(
            "delete from outbox where alert_key in (select alert_key from temp._rt_alerts)"
        ).rowcount
        conn.execute("drop table temp._rt_alerts")
        rule = "resolved (state) or raised (event) before cutoff, no delivery waiting"
        purges += [
            Purge("alerts", "alerts.outbox", cut, outbox, {"rule": rule}),
            Purge("alerts", "alerts.deliveries", cut, deliveries, {"rule": "with their alert"}),
        ]
    simple = {
        "alerts.delivery_rounds": ("delivery_rounds", "started_at", ""),
        "alerts.requeues": ("requeues", "requeued_at", ""),
        "alerts.evaluations": (
            "evaluations",
            "evaluated_at",
            " and evaluation_id not in (select evaluation_id from evaluations where mode = "
            "'live' and as_of = (select max(as_of) from evaluations where mode = 'live'))",
        ),
    }
    for name, (table, column, extra) in simple.items():
        cut = cutoffs.get(name)
        if cut is None:
            purges.append(Purge("alerts", name, None, 0, {"kept": "forever"}))
            continue
        n = conn.execute(
            f"delete from {table} where {column} < ?{extra}", (_sqlite_ts(cut),)
        ).rowcount
        purges.append(Purge("alerts", name, cut, n, {"rule": f"{column} before cutoff"}))
    return purges


def purge_access_log(conn: sqlite3.Connection, cut: datetime | None) -> Purge:
    """In the caller's transaction on the access store: lift the delete trigger, delete,
    put the trigger back exactly as it was."""
    if cut is None:
        return Purge("access", "access.access_log", None, 0, {"kept": "forever"})
    triggers = conn.execute(
        "select name, sql from sqlite_master where type = 'trigger' and tbl_name = 'access_log' "
        "and sql like '%before delete%'"
    ).fetchall()
    for name, _ in triggers:
        conn.execute(f'drop trigger "{name}"')
    n = conn.execute(
        "delete from access_log where at < ?", (cut.astimezone(UTC).isoformat("T", "milliseconds"),)
    ).rowcount
    for _, sql in triggers:
        conn.execute(sql)
    return Purge("access", "access.access_log", cut, n, {"rule": "entries before cutoff"})


def sqlite_connect(path, store: str) -> sqlite3.Connection:
    """A connection to the alert store or the access store (`store`), its tables created if
    missing (the store's own schema), in auto-commit: the caller opens its transaction."""
    if store == "alerts":
        from ocse.alerts.store import SCHEMA
    else:
        from ocse.access.store import _SCHEMA as SCHEMA
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    conn.execute("pragma busy_timeout = 30000")
    conn.executescript(SCHEMA)
    return conn


def _run_sqlite(path, store, body: Callable[[sqlite3.Connection], list[Purge]], audit, dry_run):
    conn = sqlite_connect(path, store)
    try:
        conn.execute("begin immediate")
        try:
            purges = body(conn)
            if dry_run:
                conn.execute("rollback")
            else:
                write_sqlite_audit(conn, audit(purges))
                conn.execute("commit")
        except BaseException:
            if conn.in_transaction:
                conn.execute("rollback")
            raise
    finally:
        conn.close()
    return purges


def run_retention(
    settings=None,
    *,
    dry_run: bool = False,
    requested_by: str,
    run_id: str | None = None,
    trigger: str = "retention",
    wait_seconds: float = 0.0,
    now: datetime | None = None,
    config: RetentionConfig | None = None,
    log: Callable[[str], None] | None = None,
) -> RetentionResult:
    """Purge every table of the retention config older than its period, holding the
    warehouse lease (raises runlock.WarehouseBusyError when another run holds it, having
    done nothing) after a full append-only check (raises guard.AppendOnlyViolation).
    `dry_run` computes what would go and changes and records nothing."""
    from ocse import runlock
    from ocse.settings import get_settings
    from ocse.warehouse import connect, ensure_schema

    settings = settings or get_settings()
    config = config or load_retention_config(settings.retention_config)
    now = now or datetime.now(UTC)
    run_id = run_id or f"retention-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    say = log or (lambda _line: None)
    cutoffs = {
        table: (cutoff(days, now, settings.reporting_tz) if days is not None else None)
        for table, days in config.days.items()
    }
    result = RetentionResult(run_id=run_id, dry_run=dry_run)

    def audit_rows(purges: list[Purge]) -> list[AuditRow]:
        return [
            AuditRow(
                "retention",
                p.store,
                p.table,
                p.rows,
                run_id,
                requested_by,
                cutoff=p.cutoff,
                values_cleared=p.cleared,
                detail=p.detail,
            )
            for p in purges
        ]

    lease = runlock.acquire(
        settings.warehouse, run_id=run_id, trigger=trigger, wait_seconds=wait_seconds
    )
    try:
        conn = connect(settings.warehouse)
        try:
            ensure_schema(conn)
            ensure_lifecycle_schema(conn)
            # One transaction: the check, the purges and the new seal (a dry run rolls all
            # of it back, also what the check sealed).
            conn.execute("begin transaction")
            try:
                result.seal = guard.verify(conn, full=True, by=run_id).line()
                say(result.seal)
                purges = _purge_raw(conn, {f: cutoffs.get(f"raw.{f}") for f in RAW_FEEDS})
                purges.append(_purge_quarantine(conn, cutoffs.get("ingest.quarantine")))
                if any(p.rows for p in purges if p.table.startswith("raw.")):
                    cleared = reset_incremental_marts(conn)
                    for p in purges:
                        if p.table.startswith("raw.") and p.rows:
                            p.detail["incremental_marts_reset"] = cleared
                changed = [p.table for p in purges if p.rows or p.cleared]
                if changed:
                    guard.reseal(conn, changed, by=run_id)
                if dry_run:
                    conn.execute("rollback")
                else:
                    write_audit(conn, audit_rows(purges))
                    conn.execute("commit")
            except BaseException:
                guard.rollback_quietly(conn)
                raise
            result.purges += purges
            sqlite_purges: list[Purge] = []
            if settings.alerts_store.exists():
                sqlite_purges += _run_sqlite(
                    settings.alerts_store,
                    "alerts",
                    lambda c: purge_alert_store(c, cutoffs),
                    audit_rows,
                    dry_run,
                )
            else:
                sqlite_purges += [
                    Purge("alerts", t, cutoffs.get(t, cutoffs.get("alerts.outbox")), 0,
                          {"note": "no alert store"})
                    for t in ("alerts.outbox", "alerts.deliveries", "alerts.delivery_rounds",
                              "alerts.evaluations", "alerts.requeues")
                ]  # fmt: skip
            if settings.access_db.exists():
                sqlite_purges += _run_sqlite(
                    settings.access_db,
                    "access",
                    lambda c: [purge_access_log(c, cutoffs.get("access.access_log"))],
                    audit_rows,
                    dry_run,
                )
            else:
                sqlite_purges.append(
                    Purge("access", "access.access_log", cutoffs.get("access.access_log"), 0,
                          {"note": "no access log"})
                )  # fmt: skip
            if not dry_run:
                write_audit(conn, audit_rows(sqlite_purges))
            result.purges += sqlite_purges
        finally:
            conn.close()
    finally:
        runlock.release(lease)
    for p in result.purges:
        when = p.cutoff.isoformat() if p.cutoff else "kept forever"
        verb = "would remove" if dry_run else "removed"
        cleared = f", {'would clear' if dry_run else 'cleared'} {p.cleared:,}" if p.cleared else ""
        say(f"{p.table:<26} cutoff {when:<27} {verb} {p.rows:,}{cleared}")
    return result
