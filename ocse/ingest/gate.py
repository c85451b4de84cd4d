"""The ingestion gate: each landed file is validated, pseudonymised and loaded in one
transaction, exactly once.

Per file: duplicate delivery (same bytes already processed) → ledger `duplicate`;
file-level problem → ledger `rejected`, nothing loaded; otherwise valid rows → `raw.<feed>`,
invalid rows → `ingest.quarantine` with reason codes, and a ledger row. A crash part-way
rolls the file back entirely, so the next run loads it whole.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb

from ocse.contracts import FeedContract, load_contract
from ocse.ingest.discovery import LandedFile, discover
from ocse.ingest.readers import FileRejected, read_into_batch
from ocse.ingest.validation import checked_table_sql
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


def _next_file_id(conn: duckdb.DuckDBPyConnection) -> int:
    return conn.execute("select coalesce(max(file_id), 0) + 1 from ingest.ledger").fetchone()[0]


def _insert_ledger(conn, file: LandedFile, sha: str, result: FileResult, dropped_names, dup_of):
    conn.execute(
        """
        insert into ingest.ledger values (
            $file_id, $file_name, $feed, $sha, $outcome, $rows_read, $rows_loaded,
            $rows_quarantined, $columns_dropped, $dropped_names, $error, $dup_of,
            $received_at, $ingested_at
        )
        """,
        {
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
        },
    )


def _load_rows(
    conn: duckdb.DuckDBPyConnection,
    contract: FeedContract,
    key: PseudonymKey,
    file: LandedFile,
    file_id: int,
    ingested_at: datetime,
) -> None:
    """Write the valid rows of `_checked` to raw history (personal fields as pseudonyms)."""
    targets, values = [], []
    for f in contract.fields:
        targets.append(f.stored_name)
        values.append(pseudonym_sql(f.name) if f.personal else f.name)
    conn.execute(
        f"""
        insert into raw.{contract.feed} ({", ".join(targets)}, _file_id, _row_number, _ingested_at)
        select {", ".join(values)}, $file_id, _row_number, $ingested_at
        from _checked
        where len(reason_codes) = 0
        order by _row_number
        """,
        {**sql_params(key), "file_id": file_id, "ingested_at": ingested_at},
    )


def _write_quarantine(
    conn: duckdb.DuckDBPyConnection,
    contract: FeedContract,
    key: PseudonymKey,
    file: LandedFile,
    file_id: int,
    ingested_at: datetime,
) -> None:
    """Write the invalid rows as they arrived (text), personal fields already pseudonymised."""
    pairs = []
    for f in contract.fields:
        value = pseudonym_sql(f"s_{f.name}") if f.personal else f"s_{f.name}"
        pairs.append(f"'{f.stored_name}', {value}")
    conn.execute(
        f"""
        insert into ingest.quarantine
        select $feed, $file_id, $file_name, _row_number, reason_codes,
               json_object({", ".join(pairs)})::varchar, $ingested_at
        from _checked
        where len(reason_codes) > 0
        order by _row_number
        """,
        {
            **sql_params(key),
            "feed": contract.feed,
            "file_id": file_id,
            "file_name": file.file_name,
            "ingested_at": ingested_at,
        },
    )


def _process_file(conn, file: LandedFile, sha: str, file_id: int, key: PseudonymKey) -> FileResult:
    contract = load_contract(file.feed)
    result = FileResult(file_id=file_id, file_name=file.file_name, feed=file.feed, outcome="loaded")
    ingested_at = datetime.now(UTC)
    conn.execute("begin transaction")
    try:
        columns = read_into_batch(conn, file, contract)
        present = set(columns) & set(contract.names)
        rows_read = conn.execute("select count(*) from _batch").fetchone()[0]
        missing = [c for c in contract.required_names if c not in present]
        if missing:
            raise FileRejected(
                "missing_required_columns",
                f"required column(s) missing: {', '.join(missing)}",
                rows_read=rows_read,
            )
        extra = [c for c in columns if c not in contract.names]
        conn.execute(checked_table_sql(contract, present))
        _load_rows(conn, contract, key, file, file_id, ingested_at)
        _write_quarantine(conn, contract, key, file, file_id, ingested_at)
        reasons = conn.execute(
            "select r, count(*) from (select unnest(reason_codes) as r from _checked) group by r"
        ).fetchall()
        result.rows_read = rows_read
        result.rows_quarantined = conn.execute(
            "select count(*) from _checked where len(reason_codes) > 0"
        ).fetchone()[0]
        result.rows_loaded = rows_read - result.rows_quarantined
        result.columns_dropped = len(extra)
        result.reasons = Counter(dict(reasons))
        if result.rows_quarantined:
            result.outcome = "partially_quarantined"
        dropped_names = [c if _SAFE_COLUMN_NAME.match(c) else "<unnamed>" for c in extra]
        _insert_ledger(conn, file, sha, result, dropped_names, None)
        conn.execute("drop table if exists _checked; drop table if exists _batch")
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
        _insert_ledger(conn, file, sha, result, [], None)
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise
    return result


def ingest_landing(
    conn: duckdb.DuckDBPyConnection,
    landing_dir,
    key: PseudonymKey,
    progress: Callable[[str], None] | None = None,
) -> IngestSummary:
    """Ingest every complete file under `landing_dir` not yet in the ledger (idempotent)."""
    ensure_schema(conn)
    summary = IngestSummary()
    seen_names = {n for (n,) in conn.execute("select file_name from ingest.ledger").fetchall()}
    first_by_sha = dict(
        conn.execute(
            "select content_sha256, min(file_id) from ingest.ledger "
            "where outcome <> 'duplicate' group by all"
        ).fetchall()
    )
    pending = [f for f in discover(landing_dir) if f.file_name not in seen_names]
    summary.skipped_already_processed = len(seen_names)
    # Every pass of the loop writes exactly one ledger row (or raises), so ids follow on.
    first_id = _next_file_id(conn)
    for n, file in enumerate(pending, start=1):
        sha = file.sha256()
        file_id = first_id + n - 1
        if sha in first_by_sha:
            result = FileResult(
                file_id=file_id,
                file_name=file.file_name,
                feed=file.feed,
                outcome="duplicate",
                error=f"duplicate_delivery: same content as file {first_by_sha[sha]}",
            )
            conn.execute("begin transaction")
            _insert_ledger(conn, file, sha, result, [], first_by_sha[sha])
            conn.execute("commit")
        else:
            result = _process_file(conn, file, sha, file_id, key)
            first_by_sha[sha] = file_id
        summary.files.append(result)
        if progress and (n % 25 == 0 or n == len(pending) or result.outcome != "loaded"):
            progress(
                f"[{n}/{len(pending)}] {file.file_name}: {result.outcome}, "
                f"{result.rows_loaded} loaded, {result.rows_quarantined} quarantined"
                + (f" ({result.error})" if result.error else "")
            )
    return summary
