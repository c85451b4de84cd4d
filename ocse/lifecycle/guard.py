"""The append-only guard: raw history, the ledger and the quarantine only ever grow, except
through retention and erasure.

DuckDB has no triggers, so the guard is a seal: per table (`raw.<feed>`, `ingest.ledger`,
`ingest.quarantine`), in `lifecycle.seal`,
- `through_file_id`: the rows of files up to this ledger file id are sealed;
- `row_count` and `checksum` of those rows: the checksum is the sum of DuckDB's 64-bit
  `hash()` of each row's columns (a HUGEINT), so it does not depend on row order and is
  extended by adding the hashes of appended rows, never by reading the table again.

Every file id is given by the gate in increasing order, so the rows of files after
`through_file_id` are exactly what was appended since the seal (the tail). `verify`:
1. counts the sealed rows (`file id <= through_file_id`): a row deleted, or a row added to a
   file already sealed, changes the count. With `full=True` it also recomputes the checksum,
   which catches a changed value (an UPDATE). A count over one BIGINT column costs
   milliseconds at millions of rows; the checksum reads every column (about 50 ms per
   million rows in memory, more from disk), so runs count and the lifecycle jobs, `ocse seal
   verify --full` and OCSE_APPEND_ONLY_VERIFY=full recompute;
2. checks the tail against the ledger: each new file's rows in `raw.<feed>` must be its
   ledger `rows_loaded`, its quarantine rows its `rows_quarantined` (not itemised for a
   rejected file), and no row may name a file the ledger does not know;
3. seals the tail: the counts and checksums grow by the tail's, `through_file_id` becomes
   the ledger's last file id.

Any failure raises AppendOnlyViolation, one line naming the table, before anything is
changed. Retention and erasure verify in full first (so they never adopt a change made
behind their back), make their deletions, then `reseal` the tables they changed in the
same transaction. `ocse seal accept --reason TEXT` re-seals the current state after an
operator has investigated a violation (an audit row records who and why).

The gate calls `seal_appended(conn)` at the end of `ingest_landing` (after its last
commit), and `verify(conn)` at its start; a run calls `verify` before anything else.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb

from ocse.lifecycle.audit import AuditRow, ensure_lifecycle_schema, write_audit

# Tables outside raw.* that are sealed, and the column naming their file.
SEALED_INGEST_TABLES = {"ingest.ledger": "file_id", "ingest.quarantine": "file_id"}
RAW_FILE_COLUMN = "_file_id"
HASH_VERSION = duckdb.__version__
HOW_TO_RECOVER = (
    "Nothing was done. Find out what changed it (README: 'Append-only'), restore the rows "
    "or accept the change with `ocse seal accept --reason TEXT`."
)


class AppendOnlyViolation(RuntimeError):
    """A sealed table lost or changed rows outside the gate, retention and erasure."""


@dataclass(frozen=True)
class Seal:
    table_name: str
    through_file_id: int
    row_count: int
    checksum: int
    columns: tuple[str, ...]
    hash_version: str


@dataclass
class SealReport:
    tables: dict[str, int] = field(default_factory=dict)  # table -> rows sealed now
    appended: dict[str, int] = field(default_factory=dict)  # table -> tail rows sealed now
    initialised: list[str] = field(default_factory=list)  # tables sealed for the first time
    through_file_id: int = 0
    full: bool = False

    def line(self) -> str:
        how = "counts and checksums" if self.full else "counts"
        new = sum(self.appended.values())
        first = f"; first sealed: {', '.join(self.initialised)}" if self.initialised else ""
        return (
            f"Append-only check ({how}): {len(self.tables)} tables intact through file "
            f"{self.through_file_id}, {new:,} appended row(s) sealed{first}"
        )


def sealed_tables(conn: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Every sealed table that exists, with the column naming its file."""
    rows = conn.execute(
        "select schema_name || '.' || table_name from duckdb_tables() "
        "where database_name = current_database() and not temporary "
        "and (schema_name = 'raw' or schema_name || '.' || table_name in "
        "('ingest.ledger', 'ingest.quarantine')) order by 1"
    ).fetchall()
    tables = {}
    for (name,) in rows:
        if name in SEALED_INGEST_TABLES:
            tables[name] = SEALED_INGEST_TABLES[name]
        elif RAW_FILE_COLUMN in _columns(conn, name):
            tables[name] = RAW_FILE_COLUMN
    return tables


def _columns(conn: duckdb.DuckDBPyConnection, table: str) -> tuple[str, ...]:
    schema, name = table.split(".")
    return tuple(
        c
        for (c,) in conn.execute(
            "select column_name from duckdb_columns() where database_name = current_database() "
            "and schema_name = ? and table_name = ? order by column_index",
            [schema, name],
        ).fetchall()
    )


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _table_sql(table: str) -> str:
    schema, name = table.split(".")
    return f"{_q(schema)}.{_q(name)}"


def _hash_sql(columns: tuple[str, ...]) -> str:
    return f"coalesce(sum(hash({', '.join(_q(c) for c in columns)})), 0)::hugeint"


@contextlib.contextmanager
def _transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """A transaction of our own, or the caller's if one is open (then theirs to commit)."""
    if in_transaction(conn):
        yield
        return
    conn.execute("begin transaction")
    try:
        yield
    except BaseException:
        rollback_quietly(conn)
        raise
    conn.execute("commit")


def in_transaction(conn: duckdb.DuckDBPyConnection) -> bool:
    """Whether `conn` has an explicit transaction open: in auto-commit every statement is a
    transaction of its own, so two statements see different transaction ids. (Trying BEGIN
    and catching the error would abort the caller's transaction in DuckDB.)"""
    first = conn.execute("select txid_current()").fetchone()[0]
    return conn.execute("select txid_current()").fetchone()[0] == first


def rollback_quietly(conn: duckdb.DuckDBPyConnection) -> None:
    """Roll back the open transaction, if any (also one a failed statement aborted)."""
    with contextlib.suppress(duckdb.Error):
        conn.execute("rollback")


def _load_seals(conn: duckdb.DuckDBPyConnection) -> dict[str, Seal]:
    return {
        row[0]: Seal(row[0], row[1], row[2], int(row[3]), tuple(row[4]), row[5])
        for row in conn.execute(
            "select table_name, through_file_id, row_count, checksum, columns, hash_version "
            "from lifecycle.seal"
        ).fetchall()
    }


def _ledger_through(conn: duckdb.DuckDBPyConnection) -> int:
    return conn.execute("select coalesce(max(file_id), 0) from ingest.ledger").fetchone()[0]


def _save(conn, seal: Seal, by: str) -> None:
    conn.execute(
        "insert or replace into lifecycle.seal values (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            seal.table_name,
            seal.through_file_id,
            seal.row_count,
            seal.checksum,
            list(seal.columns),
            seal.hash_version,
            datetime.now(UTC),
            by,
        ],
    )


def _tail_problems(conn, table: str, file_col: str, through: int) -> list[str]:
    """The tail (files after `through`) against the ledger."""
    t = _table_sql(table)
    fc = _q(file_col)
    if table == "ingest.ledger":
        return []
    if table == "ingest.quarantine":
        want = (
            "select file_id, rows_quarantined as n from ingest.ledger where file_id > $through "
            "and outcome not in ('rejected', 'duplicate') and rows_quarantined > 0"
        )
    else:
        want = (
            "select file_id, rows_loaded as n from ingest.ledger where file_id > $through "
            "and feed = $feed and rows_loaded > 0"
        )
    rows = conn.execute(
        f"""
        with got as (select {fc} as file_id, count(*) as n from {t} where {fc} > $through
                     group by 1),
             want as ({want}),
             known as (select file_id from ingest.ledger where file_id > $through)
        select coalesce(g.file_id, w.file_id) as file_id, coalesce(g.n, 0), coalesce(w.n, 0),
               g.file_id is not null and g.file_id not in (select file_id from known)
        from got as g full join want as w on g.file_id = w.file_id
        where g.n is distinct from w.n
        order by 1
        limit 3
        """,
        {"through": through, "feed": table.split(".")[1]}
        if table != "ingest.quarantine"
        else {"through": through},
    ).fetchall()
    problems = []
    for file_id, got, want_n, unknown in rows:
        if unknown:
            problems.append(
                f"{table}: {got:,} row(s) name file {file_id}, which the ledger does not know "
                "(written outside the gate)"
            )
        else:
            problems.append(
                f"{table}: file {file_id} has {got:,} row(s) here, the ledger says {want_n:,} "
                "(changed since the gate wrote it)"
            )
    return problems


def verify(
    conn: duckdb.DuckDBPyConnection, *, full: bool = False, by: str = "pipeline"
) -> SealReport:
    """Check every sealed table (see the module docstring), then seal what was appended
    since. Raises AppendOnlyViolation, having changed nothing, when a check fails. The
    first call on a warehouse seals what is there (trust on first use; audit row
    `seal_init`)."""
    ensure_lifecycle_schema(conn)
    report = SealReport(full=full)
    with _transaction(conn):
        seals = _load_seals(conn)
        tables = sealed_tables(conn)
        ledger_through = _ledger_through(conn)
        problems: list[str] = []
        new_seals: list[Seal] = []
        rebased: list[str] = []
        for name, seal in seals.items():
            if name not in tables and seal.row_count:
                problems.append(f"{name}: the table is gone ({seal.row_count:,} rows were sealed)")
        for table, file_col in tables.items():
            t, fc = _table_sql(table), _q(file_col)
            columns = _columns(conn, table)
            seal = seals.get(table)
            through = max(ledger_through, seal.through_file_id if seal else 0)
            report.through_file_id = max(report.through_file_id, through)
            if seal is None:
                # First seal of this table: what the ledger accounts for (a row naming a file
                # the ledger does not know is refused below, not sealed).
                n, checksum = conn.execute(
                    f"select count(*), {_hash_sql(columns)} from {t} where {fc} <= $through",
                    {"through": through},
                ).fetchone()
                problems.extend(_tail_problems(conn, table, file_col, through))
                new_seals.append(Seal(table, through, n, int(checksum), columns, HASH_VERSION))
                report.initialised.append(table)
                report.tables[table] = n
                continue
            gone = [c for c in seal.columns if c not in columns]
            if gone:
                problems.append(f"{table}: column {gone[0]} was removed")
                continue
            same_hash = seal.hash_version == HASH_VERSION
            recompute = full or columns != seal.columns or not same_hash
            if recompute:
                n, old_sum, new_sum = conn.execute(
                    f"select count(*), {_hash_sql(seal.columns)}, {_hash_sql(columns)} "
                    f"from {t} where {fc} <= $through",
                    {"through": seal.through_file_id},
                ).fetchone()
            else:
                (n,) = conn.execute(
                    f"select count(*) from {t} where {fc} <= $through",
                    {"through": seal.through_file_id},
                ).fetchone()
                old_sum = new_sum = seal.checksum
            if n < seal.row_count:
                problems.append(
                    f"{table}: {seal.row_count - n:,} row(s) of files up to "
                    f"{seal.through_file_id} are gone ({seal.row_count:,} sealed, {n:,} now)"
                )
                continue
            if n > seal.row_count:
                problems.append(
                    f"{table}: {n - seal.row_count:,} row(s) appeared in files sealed before "
                    f"(up to {seal.through_file_id})"
                )
                continue
            if same_hash and int(old_sum) != seal.checksum:
                problems.append(
                    f"{table}: rows of files up to {seal.through_file_id} were changed "
                    f"(same {n:,} rows, checksum differs)"
                )
                continue
            if not same_hash:
                rebased.append(table)
            problems.extend(_tail_problems(conn, table, file_col, seal.through_file_id))
            tail_n, tail_sum = conn.execute(
                f"select count(*), {_hash_sql(columns)} from {t} where {fc} > $through",
                {"through": seal.through_file_id},
            ).fetchone()
            new_seals.append(
                Seal(
                    table,
                    through,
                    n + tail_n,
                    int(new_sum) + int(tail_sum),
                    columns,
                    HASH_VERSION,
                )
            )
            report.tables[table] = n + tail_n
            report.appended[table] = tail_n
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise AppendOnlyViolation(
                f"Append-only check failed: {problems[0]}{more}. {HOW_TO_RECOVER}"
            )
        for seal in new_seals:
            _save(conn, seal, by)
        audit = [
            AuditRow("seal_init", "warehouse", t, 0, by, by, detail={"rows": report.tables[t]})
            for t in report.initialised
        ] + [
            AuditRow(
                "seal_rebase",
                "warehouse",
                t,
                0,
                by,
                by,
                detail={"note": f"hash() of DuckDB {HASH_VERSION}: checksum recomputed"},
            )
            for t in rebased
        ]
        if audit:
            write_audit(conn, audit)
    return report


def seal_appended(conn: duckdb.DuckDBPyConnection, *, by: str = "gate") -> SealReport:
    """The gate's call after it appended (end of `ingest_landing`): checks the new files'
    rows against their ledger rows and seals them (cheap: reads only the appended rows and
    counts the sealed ones). Raises AppendOnlyViolation like `verify`."""
    return verify(conn, full=False, by=by)


def reseal(
    conn: duckdb.DuckDBPyConnection,
    tables: list[str] | None = None,
    *,
    by: str,
) -> dict[str, int]:
    """Recompute the seal of `tables` (default: every sealed table) from what they hold now.
    Only for retention and erasure after their own changes (they verified in full first, in
    the same lease) and for `accept`. Returns rows per table."""
    ensure_lifecycle_schema(conn)
    found = sealed_tables(conn)
    # Every row is sealed, also a row naming a file the ledger lost (after `accept`).
    through = max(
        [_ledger_through(conn)]
        + [
            conn.execute(f"select coalesce(max({_q(fc)}), 0) from {_table_sql(t)}").fetchone()[0]
            for t, fc in found.items()
        ]
    )
    counts = {}
    with _transaction(conn):
        for table in tables or list(found):
            if table not in found:
                continue
            columns = _columns(conn, table)
            n, checksum = conn.execute(
                f"select count(*), {_hash_sql(columns)} from {_table_sql(table)}"
            ).fetchone()
            _save(conn, Seal(table, through, n, int(checksum), columns, HASH_VERSION), by)
            counts[table] = n
    return counts


def accept(conn: duckdb.DuckDBPyConnection, *, reason: str, requested_by: str) -> dict:
    """After a violation was investigated: seal the tables as they are now, recording who
    accepted which change and why (audit action `seal_accept`, one row per table whose
    count changed, with the rows sealed before and now)."""
    if not reason.strip():
        raise ValueError("say why the change is accepted (--reason)")
    ensure_lifecycle_schema(conn)
    before = _load_seals(conn)
    with _transaction(conn):
        counts = reseal(conn, by=f"accept by {requested_by}")
        rows = [
            AuditRow(
                "seal_accept",
                "warehouse",
                table,
                max(0, (before[table].row_count if table in before else n) - n),
                "seal-accept",
                requested_by,
                detail={
                    "reason": reason,
                    "rows_sealed_before": before[table].row_count if table in before else None,
                    "rows_now": n,
                },
            )
            for table, n in counts.items()
        ]
        write_audit(conn, rows)
    return counts
