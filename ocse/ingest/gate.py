"""The ingestion gate: each landed file is validated, pseudonymised and loaded exactly once.

A file is identified by its content (feeds.md): bytes the ledger has not seen are new,
whatever the name. A new version of a name already in the ledger is processed and its ledger
row `supersedes_file_id` the earlier one (both kept, the earlier one's outcome unchanged).
A file whose name, size and modification time match a ledger row is not read again; any
other is hashed, so a file changed in place is noticed.

Per file: duplicate delivery (same bytes already processed) → ledger `duplicate`;
file-level problem → ledger `rejected`, nothing loaded; otherwise valid rows → `raw.<feed>`,
invalid rows → `ingest.quarantine` with reason codes, and a ledger row. Files of one feed and
shape are read and loaded in groups, one transaction per group (ocse/ingest/groups.py); a
crash part-way rolls the group back entirely, so the next run loads its files whole.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb

from ocse import keys
from ocse.contracts import FeedContract, load_contract
from ocse.ingest.discovery import LandedFile, discover
from ocse.ingest.groups import Member, SplitGroup, plan_groups, read_group
from ocse.ingest.readers import FileRejected, read_into_batch
from ocse.ingest.validation import checked_table_sql
from ocse.lifecycle import guard
from ocse.pseudonymise import PseudonymKey, pseudonym_sql, sql_params
from ocse.warehouse import ensure_schema

log = logging.getLogger(__name__)

# Dropped column names are kept for operators only when they look like column names; anything
# else (a garbage header could be a value) is counted but not named.
_SAFE_COLUMN_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")


@dataclass
class FileResult:
    file_id: int
    file_name: str
    feed: str
    outcome: str
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    columns_dropped: int = 0
    error: str | None = None
    reasons: Counter = field(default_factory=Counter)


@dataclass
class IngestSummary:
    files: list[FileResult] = field(default_factory=list)
    skipped_already_processed: int = 0

    def count(self, attr: str, feed: str | None = None) -> int:
        return sum(getattr(f, attr) for f in self.files if feed is None or f.feed == feed)

    def outcomes(self) -> Counter:
        return Counter(f.outcome for f in self.files)

    def reasons(self) -> Counter:
        total: Counter = Counter()
        for f in self.files:
            total.update(f.reasons)
        return total


@dataclass
class Known:
    """What the ledger knows about landed files, read once per run."""

    # (name, modification time, size) of every ledger row: such a file is not read again.
    # Rows from before the ledger kept sizes match on (name, modification time).
    stat: set[tuple]
    name_sha: set[tuple[str, str]]  # (name, content hash) pairs already recorded
    first_by_sha: dict[str, int]  # content hash -> the file that was processed for it
    latest_by_name: dict[str, int]  # name -> its latest ledger row (what a new version supersedes)

    @classmethod
    def read(cls, conn: duckdb.DuckDBPyConnection) -> Known:
        rows = conn.execute(
            "select file_id, file_name, content_sha256, received_at, size_bytes, outcome, "
            "replay_of_file_id from ingest.ledger order by file_id"
        ).fetchall()
        known = cls(set(), set(), {}, {})
        for file_id, name, sha, received_at, size, outcome, replay_of in rows:
            known.stat.add((name, received_at, size))
            known.name_sha.add((name, sha))
            if outcome != "duplicate" and replay_of is None:
                known.first_by_sha.setdefault(sha, file_id)
            if replay_of is None:
                known.latest_by_name[name] = file_id
        return known

    def unchanged(self, file: LandedFile) -> bool:
        return (file.file_name, file.received_at, file.size) in self.stat or (
            file.file_name,
            file.received_at,
            None,
        ) in self.stat


def _next_file_id(conn: duckdb.DuckDBPyConnection) -> int:
    return conn.execute("select coalesce(max(file_id), 0) + 1 from ingest.ledger").fetchone()[0]


# Ledger columns in table order (ocse/warehouse.py LEDGER_DDL).
_LEDGER_COLUMNS = (
    "file_id", "file_name", "feed", "sha", "outcome", "rows_read", "rows_loaded",
    "rows_quarantined", "columns_dropped", "dropped_names", "error", "dup_of",
    "received_at", "ingested_at", "size_bytes", "supersedes", "replay_of",
)  # fmt: skip
_LEDGER_TYPES = (
    "bigint", "varchar", "varchar", "varchar", "varchar", "bigint", "bigint", "bigint", "bigint",
    "varchar[]", "varchar", "bigint", "timestamptz", "timestamptz", "bigint", "bigint", "bigint",
)  # fmt: skip


@dataclass(frozen=True)
class Links:
    """How a ledger row relates to earlier ones: the earlier version of the same name it
    supersedes, or the file it re-processes (`ocse replay`, ocse/ingest/replay.py)."""

    supersedes: int | None = None
    replay_of: int | None = None


def _ledger_row(
    file: LandedFile, sha: str, result: FileResult, dropped_names, dup_of, links: Links | None
) -> dict:
    links = links or Links()
    return {
        "file_id": result.file_id,
        "file_name": file.file_name,
        "feed": file.feed,
        "sha": sha,
        "outcome": result.outcome,
        "rows_read": result.rows_read,
        "rows_loaded": result.rows_loaded,
        "rows_quarantined": result.rows_quarantined,
        "columns_dropped": result.columns_dropped,
        "dropped_names": dropped_names,
        "error": result.error,
        "dup_of": dup_of,
        "received_at": file.received_at,
        "ingested_at": datetime.now(UTC),
        "size_bytes": file.size,
        "supersedes": links.supersedes,
        "replay_of": links.replay_of,
    }


def _insert_ledger_rows(conn: duckdb.DuckDBPyConnection, rows: list[dict]) -> None:
    """One insert for the ledger rows of a whole group (a statement per file costs more than
    a small file's rows)."""
    if not rows:
        return
    selects = ", ".join(
        f"unnest(${name})::{typ}" for name, typ in zip(_LEDGER_COLUMNS, _LEDGER_TYPES, strict=True)
    )
    conn.execute(
        f"insert into ingest.ledger select {selects}",
        {name: [r[name] for r in rows] for name in _LEDGER_COLUMNS},
    )


def _insert_ledger(conn, file: LandedFile, sha: str, result: FileResult, links: Links | None):
    _insert_ledger_rows(conn, [_ledger_row(file, sha, result, [], None, links)])


def _pseudonym_table(conn: duckdb.DuckDBPyConnection, contract: FeedContract, key) -> None:
    """`_refs`: the ref of every distinct personal identifier of `_checked`. An account
    appears in many rows; the HMAC (two SHA-256) runs once per account, not once per row.

    The ref is the person's canonical one: the pseudonym under the current key, or, when a
    key rotation linked that pseudonym to an earlier one, the earlier one (ocse/keys.py).
    While the previous key is configured (the transition window) both pseudonyms of every
    identifier are computed and the link recorded, in the caller's transaction."""
    union = " union ".join(
        f"select s_{f.name} as v from _checked" for f in contract.fields if f.personal
    )
    params = sql_params(key)
    old = ""
    if key.previous is not None:
        old = f", {pseudonym_sql('v', '_previous')} as old_ref"
        params |= sql_params(key.previous, "_previous")
    conn.execute(
        f"create or replace temp table _refs_seen as select v, {pseudonym_sql('v')} as new_ref"
        f"{old} from (select distinct v from ({union}) where v is not null)",
        params,
    )
    if key.previous is not None:
        conn.execute(
            """
            insert into ingest.pseudonym_links
            select s.new_ref, coalesce(earlier.canonical_ref, s.old_ref), now()
            from _refs_seen as s
            left join ingest.pseudonym_links as earlier on earlier.ref = s.old_ref
            where not exists (select 1 from ingest.pseudonym_links as l where l.ref = s.new_ref)
            """
        )
    conn.execute(
        "create or replace temp table _refs as "
        "select s.v, coalesce(l.canonical_ref, s.new_ref) as ref from _refs_seen as s "
        "left join ingest.pseudonym_links as l on l.ref = s.new_ref"
    )


def _ref_joins(contract: FeedContract) -> str:
    return "".join(
        f" left join _refs as r_{f.name} on r_{f.name}.v = c.s_{f.name}"
        for f in contract.fields
        if f.personal
    )


def _load_rows(conn: duckdb.DuckDBPyConnection, contract: FeedContract, ingested_at) -> None:
    """Write the valid rows of `_checked` to raw history (personal fields as pseudonyms)."""
    targets, values = [], []
    for f in contract.fields:
        targets.append(f.stored_name)
        values.append(f"r_{f.name}.ref" if f.personal else f"c.{f.name}")
    conn.execute(
        f"""
        insert into raw.{contract.feed} ({", ".join(targets)}, _file_id, _row_number, _ingested_at)
        select {", ".join(values)}, c._file_id, c._row_number, $ingested_at
        from _checked as c{_ref_joins(contract)}
        where len(c.reason_codes) = 0
        order by c._file_id, c._row_number
        """,
        {"ingested_at": ingested_at},
    )


def _write_quarantine(
    conn: duckdb.DuckDBPyConnection, contract: FeedContract, ingested_at: datetime
) -> None:
    """Write the invalid rows as they arrived (text), personal fields already pseudonymised."""
    pairs = []
    for f in contract.fields:
        value = f"r_{f.name}.ref" if f.personal else f"c.s_{f.name}"
        pairs.append(f"'{f.stored_name}', {value}")
    conn.execute(
        f"""
        insert into ingest.quarantine
        select $feed, c._file_id, n.file_name, c._row_number, c.reason_codes,
               json_object({", ".join(pairs)})::varchar, $ingested_at
        from _checked as c
        join _file_names as n on n._file_id = c._file_id{_ref_joins(contract)}
        where len(c.reason_codes) > 0
        order by c._file_id, c._row_number
        """,
        {"feed": contract.feed, "ingested_at": ingested_at},
    )


_TEMP_OBJECTS = (
    ("view", "_batch"),
    ("table", "_batch"),
    ("table", "_batch_file"),
    ("table", "_batch_src"),
    ("table", "_checked"),
    ("table", "_refs"),
    ("table", "_refs_seen"),
    ("table", "_file_names"),
    ("table", "_group_files"),
    ("table", "_group_offsets"),
)


def _drop_temp(conn: duckdb.DuckDBPyConnection) -> None:
    existing = set(
        conn.execute(
            "select table_name, table_type from information_schema.tables "
            "where table_catalog = 'temp'"
        ).fetchall()
    )
    for kind, name in _TEMP_OBJECTS:
        if (name, "VIEW" if kind == "view" else "LOCAL TEMPORARY") in existing:
            conn.execute(f"drop {kind} {name}")


def _load_checked(
    conn: duckdb.DuckDBPyConnection,
    contract: FeedContract,
    key: PseudonymKey,
    members: list[Member],
    columns: dict[int, list[str]],
    links: dict[int, Links],
) -> list[FileResult]:
    """Validate `_batch` (rows of one or more files), load the valid rows, quarantine the
    rest, and write one ledger row per file. Runs inside the caller's transaction."""
    ingested_at = datetime.now(UTC)
    present = set().union(*columns.values()) & set(contract.names)
    conn.execute(checked_table_sql(contract, present, lineage=("_file_id", "_row_number")))
    conn.execute(
        "create or replace temp table _file_names as "
        "select unnest($ids)::bigint as _file_id, unnest($names)::varchar as file_name",
        {"ids": [m.file_id for m in members], "names": [m.file.file_name for m in members]},
    )
    _pseudonym_table(conn, contract, key)
    _load_rows(conn, contract, ingested_at)
    _write_quarantine(conn, contract, ingested_at)
    counts = {
        file_id: (read, bad)
        for file_id, read, bad in conn.execute(
            "select _file_id, count(*), count(*) filter (where len(reason_codes) > 0) "
            "from _checked group by 1"
        ).fetchall()
    }
    reasons: dict[int, Counter] = {}
    for file_id, reason, n in conn.execute(
        "select _file_id, r, count(*) from "
        "(select _file_id, unnest(reason_codes) as r from _checked) group by all"
    ).fetchall():
        reasons.setdefault(file_id, Counter())[reason] = n
    results, ledger = [], []
    for m in members:
        read, bad = counts.get(m.file_id, (0, 0))
        extra = [c for c in columns[m.file_id] if c not in contract.names]
        result = FileResult(
            file_id=m.file_id,
            file_name=m.file.file_name,
            feed=m.file.feed,
            outcome="partially_quarantined" if bad else "loaded",
            rows_read=read,
            rows_loaded=read - bad,
            rows_quarantined=bad,
            columns_dropped=len(extra),
            reasons=reasons.get(m.file_id, Counter()),
        )
        dropped_names = [c if _SAFE_COLUMN_NAME.match(c) else "<unnamed>" for c in extra]
        ledger.append(_ledger_row(m.file, m.sha, result, dropped_names, None, links.get(m.file_id)))
        results.append(result)
    _insert_ledger_rows(conn, ledger)
    _drop_temp(conn)
    return results


def _process_file(
    conn,
    member: Member,
    key: PseudonymKey,
    links: dict[int, Links],
    rows: list[int] | None = None,
) -> FileResult:
    """One file in one transaction. `rows`: only these row numbers (a replay of quarantined
    rows); the ledger row then counts only them."""
    file, sha, file_id = member.file, member.sha, member.file_id
    contract = load_contract(file.feed)
    conn.execute("begin transaction")
    try:
        columns = read_into_batch(conn, file, contract)
        if rows is not None:
            conn.execute(
                "delete from _batch where _row_number not in (select unnest($rows))",
                {"rows": rows},
            )
        present = set(columns) & set(contract.names)
        rows_read = conn.execute("select count(*) from _batch").fetchone()[0]
        missing = [c for c in contract.required_names if c not in present]
        if missing:
            raise FileRejected(
                "missing_required_columns",
                f"required column(s) missing: {', '.join(missing)}",
                rows_read=rows_read,
            )
        conn.execute("alter table _batch rename to _batch_file")
        conn.execute(
            f"create temp view _batch as select {int(file_id)}::bigint as _file_id, * "
            "from _batch_file"
        )
        (result,) = _load_checked(conn, contract, key, [member], {file_id: columns}, links)
        conn.execute("commit")
    except FileRejected as rejected:
        conn.execute("rollback")
        result = FileResult(
            file_id=file_id,
            file_name=file.file_name,
            feed=file.feed,
            outcome="rejected",
            rows_read=rejected.rows_read,
            rows_quarantined=rejected.rows_read,
            error=str(rejected),
        )
        conn.execute("begin transaction")
        _insert_ledger(conn, file, sha, result, links.get(file_id))
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise
    return result


def _process_group(
    conn, members: list[Member], key: PseudonymKey, links: dict[int, Links]
) -> list[FileResult]:
    """Files of one feed and shape in one scan and one transaction; split in halves when the
    group cannot be read as one, down to single files (see ocse.ingest.groups)."""
    if len(members) == 1:
        return [_process_file(conn, members[0], key, links)]
    contract = load_contract(members[0].file.feed)
    conn.execute("begin transaction")
    try:
        columns = read_group(conn, members, contract)
        missing = [
            m for m in members if not set(contract.required_names) <= set(columns[m.file_id])
        ]
        if missing:
            raise SplitGroup("a file lacks a required column")
        results = _load_checked(conn, contract, key, members, columns, links)
        conn.execute("commit")
    except SplitGroup:
        conn.execute("rollback")
        # Halves, recursively: one bad file among hundreds costs a few re-reads, not a
        # transaction per file for all of them.
        half = len(members) // 2
        return _process_group(conn, members[:half], key, links) + _process_group(
            conn, members[half:], key, links
        )
    except BaseException:
        conn.execute("rollback")
        raise
    return results


def _verified_key(conn, key: PseudonymKey, progress) -> PseudonymKey:
    """The key checked against the warehouse's key registry (KeyMismatchError otherwise)."""
    key, warnings = keys.verify(conn, key)
    for warning in warnings:
        log.warning(warning)
        if progress:
            progress(warning)
    return key


def ingest_landing(
    conn: duckdb.DuckDBPyConnection,
    landing_dir,
    key: PseudonymKey,
    progress: Callable[[str], None] | None = None,
) -> IngestSummary:
    """Ingest every complete file under `landing_dir` whose content is not yet in the ledger
    (idempotent)."""
    ensure_schema(conn)
    # Raw history, the ledger and the quarantine only ever grow, and only through here
    # (ocse/lifecycle/guard.py): rows that vanished or appeared behind the gate stop the run.
    guard.verify(conn, by="gate")
    key = _verified_key(conn, key, progress)
    summary = IngestSummary()
    known = Known.read(conn)
    # File ids follow discovery order; each file gets exactly one ledger row (or the run
    # raises), whatever group it is processed in.
    next_id = _next_file_id(conn)
    members: list[Member] = []
    links: dict[int, Links] = {}
    duplicates: list[tuple[LandedFile, str, FileResult, int]] = []
    for file in discover(landing_dir):
        if known.unchanged(file):
            summary.skipped_already_processed += 1
            continue
        sha = file.sha256()
        if (file.file_name, sha) in known.name_sha:  # touched, not changed
            summary.skipped_already_processed += 1
            continue
        file_id, next_id = next_id, next_id + 1
        if sha in known.first_by_sha:
            result = FileResult(
                file_id=file_id,
                file_name=file.file_name,
                feed=file.feed,
                outcome="duplicate",
                error=f"duplicate_delivery: same content as file {known.first_by_sha[sha]}",
            )
            duplicates.append((file, sha, result, known.first_by_sha[sha]))
        else:
            known.first_by_sha[sha] = file_id
            members.append(Member(file, sha, file_id))
            earlier = known.latest_by_name.get(file.file_name)
            if earlier is not None:
                links[file_id] = Links(supersedes=earlier)
                if progress:
                    progress(f"{file.file_name}: a new version (supersedes file {earlier})")
        known.latest_by_name[file.file_name] = file_id
        known.name_sha.add((file.file_name, sha))
    done = 0
    for group in plan_groups(members):
        for result in _process_group(conn, group, key, links):
            summary.files.append(result)
            done += 1
            if progress and result.outcome not in ("loaded", "partially_quarantined"):
                progress(
                    f"[{done}/{len(members)}] {result.file_name}: {result.outcome} ({result.error})"
                )
        if progress:
            progress(
                f"[{done}/{len(members)}] {group[0].file.feed}: {len(group)} file(s), "
                f"{sum(r.rows_loaded for r in summary.files[-len(group) :])} rows loaded"
            )
    # Recorded after their originals are committed: a crash before leaves the copy to be
    # found again next run, never a duplicate of a file the ledger does not have.
    if duplicates:
        conn.execute("begin transaction")
        _insert_ledger_rows(
            conn,
            [
                _ledger_row(f, sha, r, [], dup_of, links.get(r.file_id))
                for f, sha, r, dup_of in duplicates
            ],
        )
        conn.execute("commit")
        summary.files.extend(r for _, _, r, _ in duplicates)
        if progress:
            progress(f"{len(duplicates)} duplicate delivery(ies) recorded")
    guard.seal_appended(conn, by="gate")
    summary.files.sort(key=lambda r: r.file_id)
    return summary
