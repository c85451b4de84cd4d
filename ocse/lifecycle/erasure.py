"""Erasure: one person's pseudonym (`--ref`) removed from everything the warehouse keeps,
once per request id.

What goes, in one warehouse transaction under the warehouse lease, after a full
append-only check:
- raw history: a record (every version) in which the ref is a *required* personal field
  (`uploader_id_ref` of a hit, `user_id_ref` of an action) is deleted: it cannot exist
  without its subject, and a placeholder would merge different people into one. Where the
  ref is an *optional* personal field (`reviewer_id_ref`, `reporter_id_ref`,
  `reported_user_id_ref`, `subject_user_id_ref`) the field is set to null in every version
  and the record stays: the report, the review, the case happened, and the contract allows
  the field to be empty (as for an anonymous reporter). Both are applied to staging too,
  so staging stays the current version of each record in raw history;
- `ingest.quarantine`: in every row whose record mentions the ref, the ref's value becomes
  null (the record is cleared to `{}` if it still mentions it): the row stays with its
  reason codes, as the ledger counts it (dbt test assert_quarantine_matches_ledger);
- `ingest.pseudonym_links` (key rotation, ocse/keys.py: `ref -> canonical_ref`): the
  refs linked to the ref, transitively in both directions (the canonical ref and every
  later-key ref of the person), are erased exactly like the ref, and their links deleted;
- every other table of the warehouse (intermediate, marts, anything else): every row with a
  text or text-list column containing a ref; the incremental marts' watermarks are cleared,
  so the next run rebuilds them in full from what raw history now holds (the aggregates
  lose the deleted records then, not before).
The ledger is never touched (it holds no personal data). Then the alert store (alerts
mentioning the ref, with their deliveries; any other row mentioning it), the access log
(entries are redacted, not deleted: the fact that someone viewed a page stays), and the
serving snapshot is published again from the warehouse as it now is (same as-of time, run
id `erasure-<request id>`), so dashboards stop showing the ref at once. A final scan of the
warehouse, the snapshot and both stores must find the ref nowhere.

The request is recorded in `lifecycle.erasures` and `lifecycle.audit` by its request id and
the SHA-256 of the ref, never the ref: a pseudonym is personal data too, and keeping it in
the erasure log would keep what was erased. The hash lets anyone holding the ref check that
it was erased. A second erasure with the same request id changes nothing and says so (and
how many rows mention the ref now: rows that arrived since need a new request).

Not covered: files in the landing folder (upstream's; `ocse replay --rejected` re-reads
landed files) and a ref that arrives again in a new file (a new request erases it).
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb

from ocse.lifecycle import guard
from ocse.lifecycle.audit import AuditRow, ensure_lifecycle_schema, write_audit, write_sqlite_audit
from ocse.lifecycle.retention import (
    RAW_FEEDS,
    RECORD_KEYS,
    reset_incremental_marts,
    sqlite_connect,
    staging_tables,
)

# A pseudonym as the gate writes it (feeds.md): p<key version>:<HMAC-SHA256 in hex>.
REF_PATTERN = re.compile(r"^p[0-9]{1,6}:[0-9a-f]{64}$")
REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/#-]{0,127}$")
LINKS_TABLE = "ingest.pseudonym_links"
REDACTED = "[erased]"
# Tables whose rows erasure never deletes by the generic scan: handled by rule above, or
# holding no personal data by design (and sealed).
_BY_RULE = {"ingest.ledger", "ingest.quarantine", LINKS_TABLE}


class ErasureError(ValueError):
    """The request cannot be carried out; the message says why (never echoing a value that
    might be a raw identifier)."""


@dataclass
class ErasureResult:
    request_id: str
    ref_sha256: str
    run_id: str
    already_done: bool = False
    completed_at: datetime | None = None
    refs: int = 0  # the ref and the refs linked to it
    removed: dict[str, int] = field(default_factory=dict)  # table -> rows deleted
    cleared: dict[str, int] = field(default_factory=dict)  # table -> rows with a field nulled
    redacted: dict[str, int] = field(default_factory=dict)  # table -> rows redacted
    republished: bool = False
    remaining: dict[str, int] = field(default_factory=dict)  # where the ref is still found
    # --no-publish: the snapshot tables still showing it until the next run publishes
    stale_snapshot: dict[str, int] = field(default_factory=dict)

    @property
    def rows_removed(self) -> int:
        return sum(self.removed.values())

    @property
    def values_cleared(self) -> int:
        return sum(self.cleared.values())


def ref_sha256(ref: str) -> str:
    return hashlib.sha256(ref.encode()).hexdigest()


def check_ref(ref: str) -> str:
    ref = ref.strip()
    if not REF_PATTERN.match(ref):
        # Never echo the value: it may be a raw account id typed by mistake.
        raise ErasureError(
            "--ref must be a pseudonym as the warehouse stores it: p<key version>:<64 hex "
            "digits> (shown on the repeat-offenders page). Raw account ids are not accepted; "
            "the value given was not recorded."
        )
    return ref


def check_request_id(request_id: str) -> str:
    if not REQUEST_ID_PATTERN.match(request_id):
        raise ErasureError(
            "--request-id must be 1-128 letters, digits or . _ : / # - (the ticket of the "
            "request), starting with a letter or digit"
        )
    return request_id


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _table_sql(table: str) -> str:
    schema, name = table.split(".", 1)
    return f"{_q(schema)}.{_q(name)}"


# --- finding a ref -------------------------------------------------------------------------


def text_columns(conn: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, str]]]:
    """Every base table of the current database with its text columns: (column, kind),
    kind `text` (VARCHAR, JSON) or `list` (VARCHAR[])."""
    tables: dict[str, list[tuple[str, str]]] = {}
    for schema, table, column, data_type in conn.execute(
        "select c.schema_name, c.table_name, c.column_name, c.data_type "
        "from duckdb_columns() as c join duckdb_tables() as t "
        "on t.database_name = c.database_name and t.schema_name = c.schema_name "
        "and t.table_name = c.table_name "
        "where c.database_name = current_database() and not t.temporary "
        "and (c.data_type in ('VARCHAR', 'JSON') or c.data_type in ('VARCHAR[]', 'JSON[]')) "
        "order by 1, 2, c.column_index"
    ).fetchall():
        kind = "list" if data_type.endswith("[]") else "text"
        tables.setdefault(f"{schema}.{table}", []).append((column, kind))
    return tables


def mentions_sql(columns: list[tuple[str, str]], refs: Iterable[str]) -> str:
    """A predicate: some column of the row contains one of `refs` (substring)."""
    terms = []
    for ref in sorted(refs):
        lit = _lit(ref)
        for column, kind in columns:
            if kind == "list":
                terms.append(
                    f"len(list_filter({_q(column)}, lambda x: contains(x::varchar, {lit}))) > 0"
                )
            else:
                terms.append(f"contains({_q(column)}::varchar, {lit})")
    return "(" + " or ".join(terms) + ")" if terms else "false"


def find_mentions(conn: duckdb.DuckDBPyConnection, refs: Iterable[str]) -> dict[str, int]:
    """Rows per table (of the connection's database) in which a text column contains one
    of `refs`; tables with none are left out."""
    refs = list(refs)
    found = {}
    for table, columns in text_columns(conn).items():
        (n,) = conn.execute(
            f"select count(*) from {_table_sql(table)} where {mentions_sql(columns, refs)}"
        ).fetchone()
        if n:
            found[table] = n
    return found


def sqlite_text_columns(conn: sqlite3.Connection) -> dict[str, list[str]]:
    tables = {}
    for (table,) in conn.execute(
        "select name from sqlite_master where type = 'table' and name not like 'sqlite_%'"
    ).fetchall():
        cols = [
            name
            for _, name, typ, *_ in conn.execute(f'pragma table_info("{table}")').fetchall()
            if typ.lower() in ("text", "")
        ]
        if cols:
            tables[table] = cols
    return tables


def _sqlite_mentions_sql(columns: list[str], refs: Iterable[str]) -> tuple[str, list[str]]:
    refs = sorted(refs)
    terms = [f"instr(coalesce(\"{c}\", ''), ?) > 0" for _ in refs for c in columns]
    params = [r for r in refs for _ in columns]
    return "(" + " or ".join(terms) + ")", params


def find_sqlite_mentions(conn: sqlite3.Connection, refs: Iterable[str]) -> dict[str, int]:
    refs = list(refs)
    found = {}
    for table, columns in sqlite_text_columns(conn).items():
        where, params = _sqlite_mentions_sql(columns, refs)
        (n,) = conn.execute(f'select count(*) from "{table}" where {where}', params).fetchone()
        if n:
            found[table] = n
    return found


# Column pairs of ingest.pseudonym_links that link two refs of one person: the key
# rotation's `ref -> canonical_ref` (ocse/keys.py), or an `old_ref -> new_ref` layout.
LINK_COLUMNS = (("ref", "canonical_ref"), ("old_ref", "new_ref"))


def linked_refs(conn: duckdb.DuckDBPyConnection, ref: str) -> set[str]:
    """The ref and every ref linked to it through ingest.pseudonym_links, transitively in
    both directions (a canonical ref and all its later-key refs), when that table exists."""
    columns = {c for c, _ in text_columns(conn).get(LINKS_TABLE, [])}
    pair = next((p for p in LINK_COLUMNS if set(p) <= columns), None)
    if pair is None:
        return {ref}
    a, b = (_q(c) for c in pair)
    rows = conn.execute(
        f"""
        with recursive linked(ref) as (
            select $ref
            union
            select case when l.{a} = linked.ref then l.{b} else l.{a} end
            from {LINKS_TABLE} as l join linked on l.{a} = linked.ref or l.{b} = linked.ref
        )
        select distinct ref from linked where ref is not null
        """,
        {"ref": ref},
    ).fetchall()
    return {r for (r,) in rows} | {ref}


# --- the warehouse -------------------------------------------------------------------------


def _count(conn, sql: str) -> int:
    return conn.execute(sql).fetchone()[0]


def _erase_raw(conn, refs: set[str], result: ErasureResult) -> None:
    from ocse.contracts import load_contract

    in_refs = "(" + ", ".join(_lit(r) for r in sorted(refs)) + ")"
    for feed in RAW_FEEDS:
        contract = load_contract(feed)
        key = RECORD_KEYS[feed]
        required = [f.stored_name for f in contract.fields if f.personal and f.required]
        optional = [f.stored_name for f in contract.fields if f.personal and not f.required]
        targets = [f"raw.{feed}", *staging_tables(conn, feed)]
        if required:
            subject = " or ".join(f"{_q(c)} in {in_refs}" for c in required)
            conn.execute(
                f"create or replace temp table _er_keys as "
                f"select distinct {_q(key)} as k from raw.{feed} where {subject}"
            )
            for table in targets:
                where = f"{_q(key)} in (select k from _er_keys)"
                n = _count(conn, f"select count(*) from {_table_sql(table)} where {where}")
                if n:
                    conn.execute(f"delete from {_table_sql(table)} where {where}")
                    result.removed[table] = result.removed.get(table, 0) + n
            conn.execute("drop table _er_keys")
        for table in targets:
            present = {c for c, _ in text_columns(conn).get(table, [])}
            cols = [c for c in optional if c in present]
            if not cols:
                continue
            any_col = " or ".join(f"{_q(c)} in {in_refs}" for c in cols)
            n = _count(conn, f"select count(*) from {_table_sql(table)} where {any_col}")
            if not n:
                continue
            sets = ", ".join(
                f"{_q(c)} = case when {_q(c)} in {in_refs} then null else {_q(c)} end" for c in cols
            )
            conn.execute(f"update {_table_sql(table)} set {sets} where {any_col}")
            result.cleared[table] = result.cleared.get(table, 0) + n


def _erase_by_mention(conn, tables: Iterable[str], refs: set[str], result: ErasureResult):
    columns = text_columns(conn)
    for table in tables:
        if table not in columns:
            continue
        where = mentions_sql(columns[table], refs)
        n = _count(conn, f"select count(*) from {_table_sql(table)} where {where}")
        if n:
            conn.execute(f"delete from {_table_sql(table)} where {where}")
            result.removed[table] = result.removed.get(table, 0) + n


def _erase_quarantine(conn, refs: set[str], result: ErasureResult) -> None:
    where = mentions_sql([("record", "text")], refs)
    n = _count(conn, f"select count(*) from ingest.quarantine where {where}")
    if not n:
        return
    for ref in sorted(refs):  # the ref as a JSON string value -> null
        conn.execute(
            "update ingest.quarantine set record = replace(record, $quoted, 'null') "
            "where contains(record, $quoted)",
            {"quoted": f'"{ref}"'},
        )
    conn.execute(f"update ingest.quarantine set record = '{{}}' where {where}")
    result.cleared["ingest.quarantine"] = n


def _erase_warehouse(conn, refs: set[str], result: ErasureResult) -> list[str]:
    """Everything in the warehouse; returns the sealed tables changed."""
    _erase_raw(conn, refs, result)
    _erase_quarantine(conn, refs, result)
    _erase_by_mention(conn, [LINKS_TABLE], refs, result)
    others = [
        t
        for t in text_columns(conn)
        if t not in _BY_RULE and not t.startswith(("raw.", "lifecycle."))
    ]
    _erase_by_mention(conn, others, refs, result)
    if result.rows_removed or result.values_cleared:
        reset_incremental_marts(conn)
    sealed = guard.sealed_tables(conn)
    return [t for t in sealed if t in result.removed or t in result.cleared]


# --- the SQLite stores ---------------------------------------------------------------------


def erase_alert_store(conn: sqlite3.Connection, refs: set[str]) -> dict[str, int]:
    """Alerts mentioning a ref go with their deliveries; other rows mentioning one go."""
    removed: dict[str, int] = {}
    columns = sqlite_text_columns(conn)
    if "outbox" in columns:
        where, params = _sqlite_mentions_sql(columns["outbox"], refs)
        keys = [k for (k,) in conn.execute(f"select alert_key from outbox where {where}", params)]
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            marks = ", ".join("?" * len(chunk))
            n = conn.execute(f"delete from deliveries where alert_key in ({marks})", chunk)
            removed["deliveries"] = removed.get("deliveries", 0) + n.rowcount
            n = conn.execute(f"delete from outbox where alert_key in ({marks})", chunk)
            removed["outbox"] = removed.get("outbox", 0) + n.rowcount
    for table, cols in columns.items():
        if table == "lifecycle_audit":
            continue
        where, params = _sqlite_mentions_sql(cols, refs)
        n = conn.execute(f'delete from "{table}" where {where}', params).rowcount
        if n:
            removed[table] = removed.get(table, 0) + n
    return {k: v for k, v in removed.items() if v}


def redact_access_log(conn: sqlite3.Connection, refs: set[str]) -> int:
    """Access-log entries mentioning a ref keep who, when and what page, with the ref
    replaced by [erased]. The log's update trigger is lifted inside this transaction only."""
    if "access_log" not in sqlite_text_columns(conn):
        return 0
    where, params = _sqlite_mentions_sql(["target", "detail"], refs)
    (n,) = conn.execute(f"select count(*) from access_log where {where}", params).fetchone()
    if not n:
        return 0
    triggers = conn.execute(
        "select name, sql from sqlite_master where type = 'trigger' and tbl_name = 'access_log' "
        "and sql like '%before update%'"
    ).fetchall()
    for name, _ in triggers:
        conn.execute(f'drop trigger "{name}"')
    for ref in sorted(refs):
        conn.execute(
            "update access_log set target = replace(target, ?, ?), detail = replace(detail, ?, ?) "
            "where instr(target, ?) > 0 or instr(detail, ?) > 0",
            (ref, REDACTED, ref, REDACTED, ref, ref),
        )
    for _, sql in triggers:
        conn.execute(sql)
    return n


def _in_sqlite(path, store: str, body: Callable[[sqlite3.Connection], dict], audit) -> dict:
    conn = sqlite_connect(path, store)
    try:
        conn.execute("begin immediate")
        try:
            changed = body(conn)
            write_sqlite_audit(conn, audit(changed))
            conn.execute("commit")
        except BaseException:
            if conn.in_transaction:
                conn.execute("rollback")
            raise
    finally:
        conn.close()
    return changed


# --- the snapshot --------------------------------------------------------------------------


def republish(conn: duckdb.DuckDBPyConnection, settings, run_id: str) -> bool:
    """Publish the serving snapshot again from the warehouse as it is now, with the as-of
    time, time zone and definitions of the snapshot it replaces. False: no snapshot yet."""
    from ocse.catalog import Definition
    from ocse.serving import open_snapshot, publish_snapshot

    if not settings.serving.exists():
        return False
    snap = open_snapshot(settings.serving)
    try:
        as_of, reporting_tz = snap.execute(
            "select as_of, reporting_tz from meta.snapshot"
        ).fetchone()
        definitions = [
            Definition(*row)
            for row in snap.execute(
                "select table_name, column_name, data_type, description, ordinal "
                "from meta.definitions"
            ).fetchall()
        ]
    finally:
        snap.close()
    publish_snapshot(
        conn,
        settings.serving,
        as_of=as_of,
        run_id=run_id,
        reporting_tz=reporting_tz,
        definitions=definitions,
        alerts_store=settings.alerts_store,
    )
    return True


# --- the request ---------------------------------------------------------------------------


def remaining_mentions(conn, settings, refs: set[str]) -> dict[str, int]:
    """Where the refs are still found: warehouse tables, `serving:<table>`, `alerts:<table>`,
    `access:<table>`."""
    from ocse.serving import open_snapshot

    found = dict(find_mentions(conn, refs))
    if settings.serving.exists():
        snap = open_snapshot(settings.serving)
        try:
            found.update({f"serving:{t}": n for t, n in find_mentions(snap, refs).items()})
        finally:
            snap.close()
    for prefix, path in (("alerts", settings.alerts_store), ("access", settings.access_db)):
        if path.exists():
            c = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
            try:
                found.update({f"{prefix}:{t}": n for t, n in find_sqlite_mentions(c, refs).items()})
            finally:
                c.close()
    return found


def erase(
    ref: str,
    request_id: str,
    *,
    requested_by: str,
    settings=None,
    publish: bool = True,
    wait_seconds: float = 0.0,
    log: Callable[[str], None] | None = None,
) -> ErasureResult:
    """Erase `ref` (and the refs linked to it) everywhere, once per `request_id`, holding
    the warehouse lease (raises runlock.WarehouseBusyError when another run holds it)."""
    from ocse import runlock
    from ocse.settings import get_settings
    from ocse.warehouse import connect, ensure_schema

    ref = check_ref(ref)
    request_id = check_request_id(request_id)
    settings = settings or get_settings()
    say = log or (lambda _line: None)
    digest = ref_sha256(ref)
    run_id = f"erasure-{request_id}"
    result = ErasureResult(request_id=request_id, ref_sha256=digest, run_id=run_id)
    lease = runlock.acquire(
        settings.warehouse,
        run_id=f"{run_id}-{uuid.uuid4().hex[:6]}",
        trigger="erasure",
        wait_seconds=wait_seconds,
    )
    try:
        conn = connect(settings.warehouse)
        try:
            ensure_schema(conn)
            ensure_lifecycle_schema(conn)
            done = conn.execute(
                "select ref_sha256, completed_at, refs_erased from lifecycle.erasures "
                "where request_id = ?",
                [request_id],
            ).fetchone()
            if done is not None:
                if done[0] != digest:
                    raise ErasureError(
                        f"request id {request_id} was already used for another ref "
                        "(lifecycle.erasures); give this request its own id"
                    )
                result.already_done = True
                result.completed_at = done[1]
                result.refs = done[2]
                result.remaining = remaining_mentions(conn, settings, linked_refs(conn, ref))
                return result
            say(guard.verify(conn, full=True, by=run_id).line())
            refs = linked_refs(conn, ref)
            result.refs = len(refs)
            conn.execute("begin transaction")
            try:
                sealed_changed = _erase_warehouse(conn, refs, result)
                if sealed_changed:
                    guard.reseal(conn, sealed_changed, by=run_id)
                write_audit(conn, _audit_rows(result, "warehouse", requested_by))
                conn.execute("commit")
            except BaseException:
                guard.rollback_quietly(conn)
                raise
            sqlite_audit: list[AuditRow] = []
            if settings.alerts_store.exists():
                changed = _in_sqlite(
                    settings.alerts_store,
                    "alerts",
                    lambda c: erase_alert_store(c, refs),
                    lambda ch: _store_rows(ch, "alerts", result, requested_by, "removed"),
                )
                result.removed.update({f"alerts.{t}": n for t, n in changed.items()})
                sqlite_audit += _store_rows(changed, "alerts", result, requested_by, "removed")
            if settings.access_db.exists():
                changed = _in_sqlite(
                    settings.access_db,
                    "access",
                    lambda c: {"access_log": redact_access_log(c, refs)},
                    lambda ch: _store_rows(ch, "access", result, requested_by, "redacted"),
                )
                result.redacted.update({f"access.{t}": n for t, n in changed.items() if n})
                sqlite_audit += _store_rows(changed, "access", result, requested_by, "redacted")
            if sqlite_audit:
                write_audit(conn, sqlite_audit)
            if publish:
                result.republished = republish(conn, settings, run_id)
            result.remaining = remaining_mentions(conn, settings, refs)
            if not publish:
                result.stale_snapshot = {
                    t: n for t, n in result.remaining.items() if t.startswith("serving:")
                }
                for t in result.stale_snapshot:
                    del result.remaining[t]
            result.completed_at = datetime.now(UTC)
            conn.execute(
                "insert into lifecycle.erasures values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    request_id,
                    digest,
                    len(refs),
                    result.rows_removed,
                    result.values_cleared,
                    requested_by,
                    run_id,
                    result.completed_at,
                    json.dumps(
                        {
                            "removed": result.removed,
                            "cleared": result.cleared,
                            "redacted": result.redacted,
                            "republished": result.republished,
                            "remaining": result.remaining,
                            "stale_snapshot": result.stale_snapshot,
                        },
                        sort_keys=True,
                    ),
                ],
            )
        finally:
            conn.close()
    finally:
        runlock.release(lease)
    return result


def _audit_rows(result: ErasureResult, store: str, requested_by: str) -> list[AuditRow]:
    tables = sorted(set(result.removed) | set(result.cleared))
    rows = [
        AuditRow(
            "erasure",
            store,
            t,
            result.removed.get(t, 0),
            result.run_id,
            requested_by,
            values_cleared=result.cleared.get(t, 0),
            request_id=result.request_id,
            detail={"ref_sha256": result.ref_sha256, "refs": result.refs},
        )
        for t in tables
    ]
    # Every request leaves a row, also when the ref was found nowhere.
    return rows or [
        AuditRow(
            "erasure",
            store,
            "*",
            0,
            result.run_id,
            requested_by,
            request_id=result.request_id,
            detail={"ref_sha256": result.ref_sha256, "refs": result.refs, "found": "nowhere"},
        )
    ]


def _store_rows(changed: dict, store: str, result, requested_by: str, how: str):
    return [
        AuditRow(
            "erasure",
            store,
            f"{store}.{t}",
            n if how == "removed" else 0,
            result.run_id,
            requested_by,
            values_cleared=n if how == "redacted" else 0,
            request_id=result.request_id,
            detail={"ref_sha256": result.ref_sha256, how: n},
        )
        for t, n in changed.items()
        if n
    ]
