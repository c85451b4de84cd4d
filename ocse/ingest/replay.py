"""Re-processing what the gate refused, after a contract or policy fix (`ocse replay`).

- `replay_rejected`: every file whose latest outcome is `rejected` (and that no newer version
  of its name has superseded) is read again from the landing folder, whole.
- `replay_quarantine`: the quarantined rows that carry a reason code are read again from
  their file, those rows only.

Each replay of a file is a ledger row of its own (`replay_of_file_id` = the file as first
ingested; the earlier rows keep their outcome). The bytes must still be in the landing folder
and unchanged: the warehouse never keeps raw personal identifiers, so it cannot rebuild a row
from the quarantine (its personal fields are pseudonyms, and a non-personal field that looked
like personal data is redacted there). Nothing is loaded twice: a row is a candidate only
while no attempt at its file has loaded it, and the latest attempt decides its reasons.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb

from ocse.contracts import FEEDS
from ocse.ingest.discovery import LandedFile
from ocse.ingest.gate import FileResult, Links, _next_file_id, _process_file, _verified_key
from ocse.ingest.groups import Member
from ocse.lifecycle import guard
from ocse.pseudonymise import PseudonymKey
from ocse.warehouse import ensure_schema


@dataclass
class ReplaySummary:
    kind: str  # rejected | quarantine
    files: list[FileResult] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # no longer in the landing folder
    changed: list[str] = field(default_factory=list)  # other bytes now: a new version
    rows_considered: int = 0

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files)

    @property
    def rows_still_quarantined(self) -> int:
        return sum(f.rows_quarantined for f in self.files)


# Per file as first ingested (the root of its attempts): its latest attempt.
_ATTEMPTS = """
    with attempts as (
        select coalesce(replay_of_file_id, file_id) as root_id, *
        from ingest.ledger
        where outcome <> 'duplicate'
    )
    select
        root_id,
        arg_max(outcome, file_id) as latest_outcome,
        max(file_id) as latest_id
    from attempts
    group by root_id
"""


def _roots(conn, feed: str | None, since: datetime | None):
    """The files as first ingested, with their latest outcome, in ledger order."""
    return conn.execute(
        f"""
        select l.file_id, l.file_name, l.feed, l.content_sha256, a.latest_outcome
        from ingest.ledger as l
        inner join ({_ATTEMPTS}) as a on a.root_id = l.file_id
        where l.replay_of_file_id is null
            and ($feed is null or l.feed = $feed)
            and ($since is null or l.received_at >= $since)
            and not exists (
                select 1 from ingest.ledger as newer where newer.supersedes_file_id = l.file_id
            )
        order by l.file_id
        """,
        {"feed": feed, "since": since},
    ).fetchall()


def _landed(landing_dir: Path, file_name: str, feed: str, sha: str, summary: ReplaySummary):
    """The file as it is in the landing folder now, if it still holds the same bytes."""
    path = landing_dir / file_name
    if not path.is_file():
        summary.missing.append(file_name)
        return None
    file = LandedFile.at(landing_dir, path, feed)
    if file.sha256() != sha:
        summary.changed.append(file_name)
        return None
    return file


def replay_rejected(
    conn: duckdb.DuckDBPyConnection,
    landing_dir: Path,
    key: PseudonymKey,
    *,
    feed: str | None = None,
    since: datetime | None = None,
    progress: Callable[[str], None] | None = None,
) -> ReplaySummary:
    key = _prepare(conn, key, feed, progress)
    summary = ReplaySummary("rejected")
    todo = [r for r in _roots(conn, feed, since) if r[4] == "rejected"]
    for n, (root_id, name, file_feed, sha, _) in enumerate(todo, 1):
        file = _landed(landing_dir, name, file_feed, sha, summary)
        if file is None:
            continue
        file_id = _next_file_id(conn)
        result = _process_file(
            conn, Member(file, sha, file_id), key, {file_id: Links(replay_of=root_id)}
        )
        summary.files.append(result)
        summary.rows_considered += result.rows_read
        if progress:
            progress(f"[{n}/{len(todo)}] {name}: {result.outcome}" + _why(result))
    guard.seal_appended(conn, by="replay")
    return summary


def _candidate_rows(conn, reason: str, feed: str | None, since: datetime | None):
    """(root file id, row number) of every quarantined row not loaded since, whose latest
    attempt carries `reason` (a full code such as `invalid_enum:category`, or its kind)."""
    loaded_by_replay = " union all ".join(
        f"select _file_id, _row_number from raw.{f} where _file_id in (select * from replays)"
        for f in FEEDS
    )
    return conn.execute(
        f"""
        with

        ledger as (
            select file_id, coalesce(replay_of_file_id, file_id) as root_id from ingest.ledger
        ),

        replays as (select file_id from ingest.ledger where replay_of_file_id is not null),

        latest as (
            select l.root_id, q.row_number, arg_max(q.reason_codes, q.file_id) as reason_codes,
                max(q.file_id) as quarantined_by
            from ingest.quarantine as q
            inner join ledger as l on l.file_id = q.file_id
            group by all
        ),

        loaded as (
            select l.root_id, r._row_number as row_number, max(r._file_id) as loaded_by
            from ({loaded_by_replay}) as r
            inner join ledger as l on l.file_id = r._file_id
            where l.file_id <> l.root_id
            group by all
        )

        select latest.root_id, latest.row_number
        from latest
        inner join ingest.ledger as root on root.file_id = latest.root_id
        left join loaded using (root_id, row_number)
        where loaded.loaded_by is null
            and (
                list_contains(latest.reason_codes, $reason)
                or list_contains(
                    list_transform(latest.reason_codes, lambda c: split_part(c, ':', 1)), $reason
                )
            )
            and ($feed is null or root.feed = $feed)
            and ($since is null or root.received_at >= $since)
        order by 1, 2
        """,
        {"reason": reason, "feed": feed, "since": since},
    ).fetchall()


def replay_quarantine(
    conn: duckdb.DuckDBPyConnection,
    landing_dir: Path,
    key: PseudonymKey,
    *,
    reason: str,
    feed: str | None = None,
    since: datetime | None = None,
    progress: Callable[[str], None] | None = None,
) -> ReplaySummary:
    key = _prepare(conn, key, feed, progress)
    summary = ReplaySummary("quarantine")
    by_root: dict[int, list[int]] = {}
    for root_id, row_number in _candidate_rows(conn, reason, feed, since):
        by_root.setdefault(root_id, []).append(row_number)
    roots = {r[0]: r for r in _roots(conn, feed, None)}
    for n, (root_id, rows) in enumerate(by_root.items(), 1):
        if root_id not in roots:  # superseded by a newer version of its name
            continue
        _, name, file_feed, sha, _ = roots[root_id]
        file = _landed(landing_dir, name, file_feed, sha, summary)
        if file is None:
            continue
        file_id = _next_file_id(conn)
        result = _process_file(
            conn, Member(file, sha, file_id), key, {file_id: Links(replay_of=root_id)}, rows
        )
        summary.files.append(result)
        summary.rows_considered += len(rows)
        if progress:
            progress(
                f"[{n}/{len(by_root)}] {name}: {result.rows_loaded} of {len(rows)} row(s) "
                f"loaded, {result.rows_quarantined} still quarantined" + _why(result)
            )
    guard.seal_appended(conn, by="replay")
    return summary


def _prepare(conn, key: PseudonymKey, feed: str | None, progress) -> PseudonymKey:
    """What the gate checks before it writes: the feed, the append-only seal, the key."""
    ensure_schema(conn)
    _check_feed(feed)
    guard.verify(conn, by="replay")
    return _verified_key(conn, key, progress)


def _why(result: FileResult) -> str:
    return f" ({result.error})" if result.error else ""


def _check_feed(feed: str | None) -> None:
    if feed is not None and feed not in FEEDS:
        raise ValueError(f"unknown feed {feed!r}: one of {', '.join(FEEDS)}")
