"""Pseudonymisation keys over the warehouse's life: which key made which refs, and rotation.

- `ingest.key_versions`: one row per key version the warehouse has used, with the key's
  fingerprint (a keyed hash of a fixed label, never the key). A run whose key does not match
  the fingerprint recorded for its version is refused: its refs would silently not join the
  stored ones. A new version is accepted only with the key it replaces (a rotation).
- `ingest.pseudonym_links`: during a rotation's transition window the gate computes both the
  old and the new pseudonym of every identifier it sees and records `new ref -> canonical
  ref` (the person's first ref, never the raw value). The gate stores the canonical ref in
  raw history, so a person is one ref in every mart whatever key version saw them
  (tiers, counts, history); a person first seen under the new key keeps the new ref.

Rotation (`ocse keys rotate`, README "Operating the warehouse"): a new key file and version
are registered with a transition window; the pipeline then runs with the new key as current
and the old one as previous until the window ends; afterwards the old key is not used (and
should be destroyed). A person not seen at all during the window becomes a new ref after it:
the window should cover the longest look-back of the policy (180 days), hence the default.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import duckdb

from ocse.pseudonymise import PseudonymKey

KEY_VERSIONS_DDL = """
create table if not exists ingest.key_versions (
    version bigint primary key,
    fingerprint varchar not null,
    registered_at timestamptz not null,
    replaces_version bigint,
    transition_until timestamptz
)
"""

LINKS_DDL = """
create table if not exists ingest.pseudonym_links (
    ref varchar primary key,
    canonical_ref varchar not null,
    linked_at timestamptz not null
)
"""

DEFAULT_TRANSITION_DAYS = 200  # longer than the longest policy window (180 days)


class KeyMismatchError(RuntimeError):
    """The configured key is not the one the warehouse knows under its version."""


@dataclass(frozen=True)
class KeyVersion:
    version: int
    fingerprint: str
    registered_at: datetime
    replaces_version: int | None
    transition_until: datetime | None


def ensure_key_tables(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute("create schema if not exists ingest")
    conn.execute(KEY_VERSIONS_DDL)
    conn.execute(LINKS_DDL)


def has_key_tables(conn: duckdb.DuckDBPyConnection) -> bool:
    return bool(
        conn.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = 'ingest' and table_name = 'key_versions'"
        ).fetchone()[0]
    )


def registered(conn: duckdb.DuckDBPyConnection) -> dict[int, KeyVersion]:
    if not has_key_tables(conn):
        return {}
    rows = conn.execute(
        "select version, fingerprint, registered_at, replaces_version, transition_until "
        "from ingest.key_versions order by version"
    ).fetchall()
    return {r[0]: KeyVersion(*r) for r in rows}


def _mismatch(key: PseudonymKey, known: KeyVersion, role: str) -> KeyMismatchError:
    return KeyMismatchError(
        f"The {role} pseudonymisation key is not the key this warehouse recorded as version "
        f"{key.version} (fingerprint {known.fingerprint}; this key's is {key.fingerprint}). "
        "Its refs would not join the stored ones. Configure the right key file, or give a new "
        "key a new version with `ocse keys rotate`."
    )


def verify(
    conn: duckdb.DuckDBPyConnection, key: PseudonymKey, now: datetime | None = None
) -> tuple[PseudonymKey, list[str]]:
    """Check `key` (and the key it replaces, if configured) against the registry, registering
    a version the first time it is used. Returns the key to use (without its previous key
    once the transition window is over) and warnings for the operator."""
    now = now or datetime.now(UTC)
    ensure_key_tables(conn)
    known = registered(conn)
    warnings: list[str] = []
    newest = max(known, default=0)
    previous = key.previous
    if previous is not None:
        if previous.version in known:
            if known[previous.version].fingerprint != previous.fingerprint:
                raise _mismatch(previous, known[previous.version], "previous")
        elif known:
            raise KeyMismatchError(
                f"The previous key is version {previous.version}, which this warehouse never "
                f"used (it knows {', '.join(map(str, known))}). Set "
                "OCSE_PSEUDONYM_PREVIOUS_KEY_FILE to the key the warehouse ran with last."
            )
    if key.version in known:
        entry = known[key.version]
        if entry.fingerprint != key.fingerprint:
            raise _mismatch(key, entry, "current")
        if key.version < newest:
            raise KeyMismatchError(
                f"Key version {key.version} was replaced by version {newest}: configure the "
                f"current key (OCSE_PSEUDONYM_KEY_FILE, OCSE_PSEUDONYM_KEY_VERSION={newest})."
            )
        if previous is not None:
            until = entry.transition_until
            if until is None or now > until:
                warnings.append(
                    f"The transition window of key version {key.version} "
                    + (f"ended at {until.isoformat()}" if until else "is not set")
                    + f": the previous key (version {previous.version}) is no longer used. "
                    "Unset OCSE_PSEUDONYM_PREVIOUS_KEY_FILE and destroy that key file."
                )
                key = key.with_previous(None)
        elif entry.transition_until is not None and now <= entry.transition_until:
            warnings.append(
                f"Key version {key.version} is in its transition window (until "
                f"{entry.transition_until.isoformat()}) but the previous key is not configured: "
                "people seen now are not linked to their earlier refs. Set "
                "OCSE_PSEUDONYM_PREVIOUS_KEY_FILE (see `ocse keys status`)."
            )
        return key, warnings
    # A version this warehouse has not used yet.
    if key.version < newest:
        raise KeyMismatchError(
            f"Key version {key.version} is older than version {newest}, the newest this "
            "warehouse used, and unknown to it."
        )
    if known and previous is None:
        raise KeyMismatchError(
            f"Key version {key.version} is new to this warehouse, whose refs were made with "
            f"version {newest}. Without the previous key every person seen before would become "
            "a second person: rotate with `ocse keys rotate` (or set "
            "OCSE_PSEUDONYM_PREVIOUS_KEY_FILE to the version-"
            f"{newest} key for the transition window)."
        )
    if previous is not None and previous.version not in known:
        _register(conn, previous, now, None, None)
    _register(
        conn,
        key,
        now,
        previous.version if previous else None,
        now + timedelta(days=DEFAULT_TRANSITION_DAYS) if previous else None,
    )
    if previous is not None:
        warnings.append(
            f"Key version {key.version} registered, replacing version {previous.version}; "
            f"transition window {DEFAULT_TRANSITION_DAYS} days."
        )
    return key, warnings


def _register(conn, key: PseudonymKey, now, replaces: int | None, until) -> None:
    conn.execute(
        "insert into ingest.key_versions values (?, ?, ?, ?, ?)",
        [key.version, key.fingerprint, now, replaces, until],
    )


def rotate(
    conn: duckdb.DuckDBPyConnection,
    current: PseudonymKey,
    new: PseudonymKey,
    window: timedelta,
    now: datetime | None = None,
) -> KeyVersion:
    """Register `new` as the version after `current`, with a transition window."""
    now = now or datetime.now(UTC)
    if new.version <= current.version:
        raise ValueError("the new key's version must be higher than the current one")
    if new.fingerprint == current.fingerprint:
        raise ValueError("the new key is the current key")
    verify(conn, current, now)  # the current key must be the one in use
    known = registered(conn)
    if new.version in known:
        if known[new.version].fingerprint != new.fingerprint:
            raise _mismatch(new, known[new.version], "new")
        return known[new.version]
    if max(known) != current.version:
        raise KeyMismatchError(
            f"Version {max(known)} is already registered after version {current.version}."
        )
    _register(conn, new, now, current.version, now + window)
    return registered(conn)[new.version]


def link_count(conn: duckdb.DuckDBPyConnection) -> int:
    if not has_key_tables(conn):
        return 0
    return conn.execute("select count(*) from ingest.pseudonym_links").fetchone()[0]
