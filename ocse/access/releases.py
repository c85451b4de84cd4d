"""The release register: which grains and which k each research partner receives, and every
release made to it. The data steward (an administrator) keeps it; requesters do not choose.

Why: disclosure control protects one publication at a time. A partner holding two releases
of overlapping periods at different grains (a month and its weeks) or at different k (cells
withheld at k=10 but published at k=5, or the other way round) can subtract one from the
other and recover cells each release withheld: a differencing attack. So a partner gets
the grains and the k the steward registered, and nothing that overlaps what it already holds
at another grain or k.

The rules every release obeys (`ReleaseRegister.check`, again atomically in `record`):

1. the partner is registered (`unknown_partner`);
2. a requester with the researcher role is a member of that partner (`not_partner_member`);
   the command line and the pipeline act for the steward;
3. the grain is one of the partner's grains (`grain_not_registered`);
4. k is at least the partner's k (`k_below_register`);
5. no earlier release to the partner, on any channel (a table shown on the research page
   counts as much as a file), covers a day of [start, end] at another grain or another k
   (`overlaps_earlier_release`). The same grain and k again is allowed: each period is
   protected on its own, so an overlap shows the same cells.

Every refusal is written to the access log as `denied` (target the export or file name,
detail {partner, grain, k, from, to, reason}) by the register itself, so no caller can
forget it. The tables live in the access store's SQLite file (`OCSE_ACCESS_DB`); `releases`
is append-only (triggers refuse updates and deletes). A partner is removed only once it has
no members; its releases stay, and a partner registered again under the same name is held
to them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from ocse.access.roles import Role
from ocse.access.store import USERNAME, AccessStore, _now
from ocse.exports.disclosure import MIN_K

_SCHEMA = """
create table if not exists partners (
    partner    text primary key,
    grains     text not null,        -- comma list of week, month
    k          integer not null check (k >= 5),
    created_at text not null,
    updated_at text not null
);
create table if not exists partner_members (
    username text primary key,       -- an account belongs to at most one partner
    partner  text not null
);
create table if not exists releases (
    release_id   integer primary key autoincrement,
    at           text not null,      -- UTC, ISO-8601
    partner      text not null,
    username     text not null,
    role         text not null,
    channel      text not null,      -- download | export | view
    name         text not null,      -- file or export name; '' for a view
    grain        text not null,
    k            integer not null,
    period_start text not null,      -- ISO date, inclusive
    period_end   text not null,      -- ISO date, inclusive
    sha256       text not null,      -- the zip; an export's manifest.json; '' for a view
    size_bytes   integer not null
);
create index if not exists releases_by_partner on releases (partner, period_start);
create trigger if not exists releases_are_append_only_u before update on releases
begin select raise(abort, 'the release register is append-only'); end;
create trigger if not exists releases_are_append_only_d before delete on releases
begin select raise(abort, 'the release register is append-only'); end;
"""

RELEASE_GRAINS = ("week", "month")
CHANNELS = ("download", "export", "view")
REASONS = (
    "unknown_partner",
    "not_partner_member",
    "grain_not_registered",
    "k_below_register",
    "overlaps_earlier_release",
)
_RELEASE_COLUMNS = (
    "release_id, at, partner, username, role, channel, name, grain, k, period_start, "
    "period_end, sha256, size_bytes"
)


class ReleaseRegisterError(ValueError):
    """A user-facing problem with a register command (message says what to do)."""


class ReleaseRefused(ReleaseRegisterError):
    """A release the register does not allow; `reason` is one of REASONS."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Partner:
    name: str
    grains: tuple[str, ...]
    k: int
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class Release:
    release_id: int
    at: str
    partner: str
    username: str
    role: str
    channel: str
    name: str
    grain: str
    k: int
    period_start: date
    period_end: date
    sha256: str
    size_bytes: int


class ReleaseRegister:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.access = AccessStore(self.path)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # the access store's connection (same file, WAL, its accounts and log), and ours
        with self.access._connect() as conn:
            conn.executescript(_SCHEMA)
            yield conn

    # --- partners and their members ------------------------------------------------------

    def set_partner(self, name: str, grains: Iterable[str] | str, k: int) -> Partner:
        """Register a partner, or change its grains and k (earlier releases still bind it)."""
        if not USERNAME.match(name):
            raise ReleaseRegisterError(
                f"partner name {name!r} is not allowed: 2-64 letters, digits or . _ @ + -, "
                "starting with a letter or digit"
            )
        chosen = set(grains.split(",") if isinstance(grains, str) else grains)
        unknown = chosen - set(RELEASE_GRAINS)
        if unknown or not chosen:
            raise ReleaseRegisterError(
                f"grains must be one or both of {', '.join(RELEASE_GRAINS)}, "
                f"not {', '.join(sorted(unknown)) or 'none'}"
            )
        if isinstance(k, bool) or not isinstance(k, int) or k < MIN_K:
            raise ReleaseRegisterError(f"k must be an integer of at least {MIN_K}, not {k!r}")
        ordered = ",".join(g for g in RELEASE_GRAINS if g in chosen)
        now = _now()
        with self._connect() as conn:
            conn.execute(
                "insert into partners (partner, grains, k, created_at, updated_at) "
                "values (?, ?, ?, ?, ?) on conflict (partner) do update set "
                "grains = excluded.grains, k = excluded.k, updated_at = excluded.updated_at",
                [name, ordered, k, now, now],
            )
        return self.partner(name)

    def remove_partner(self, name: str) -> None:
        """Refused while accounts are assigned to it: unassign them first."""
        with self._connect() as conn:
            conn.execute("begin immediate")
            members = _members(conn, name)
            if members:
                raise ReleaseRegisterError(
                    f"partner {name!r} still has members ({', '.join(members)}): "
                    "unassign them first"
                )
            if not conn.execute("delete from partners where partner = ?", [name]).rowcount:
                raise ReleaseRegisterError(f"no partner {name!r}")
            conn.execute("commit")

    def partners(self) -> list[Partner]:
        with self._connect() as conn:
            return _partners(conn)

    def partner(self, name: str) -> Partner | None:
        with self._connect() as conn:
            return _partner(conn, name)

    def assign(self, username: str, partner: str) -> None:
        """Make an existing account a member of an existing partner (one partner at most)."""
        if self.access.user(username) is None:
            raise ReleaseRegisterError(f"no user {username!r} (add it: ocse users add)")
        with self._connect() as conn:
            conn.execute("begin immediate")
            if _partner(conn, partner) is None:
                raise ReleaseRegisterError(f"no partner {partner!r} (register it: set)")
            current = _member_of(conn, username)
            if current not in (None, partner):
                raise ReleaseRegisterError(
                    f"{username} is a member of {current}: unassign them first (an account "
                    "belongs to one partner, whose releases it receives)"
                )
            conn.execute(
                "insert or ignore into partner_members (username, partner) values (?, ?)",
                [username, partner],
            )
            conn.execute("commit")

    def unassign(self, username: str) -> None:
        with self._connect() as conn:
            deleted = conn.execute(
                "delete from partner_members where username = ?", [username]
            ).rowcount
        if not deleted:
            raise ReleaseRegisterError(f"{username!r} is not assigned to any partner")

    def partner_of(self, username: str) -> Partner | None:
        with self._connect() as conn:
            name = _member_of(conn, username)
            return _partner(conn, name) if name else None

    def members(self, partner: str) -> list[str]:
        with self._connect() as conn:
            return _members(conn, partner)

    # --- releases ------------------------------------------------------------------------

    def terms(self, partner: str, grain: str | None = None, k: int | None = None):
        """(grain, k) of a request, defaulting to the partner's only grain and its k. An
        unknown partner gives back what was asked: `check` refuses it, and logs that."""
        registered = self.partner(partner)
        if registered is None:
            return grain, k
        if grain is None:
            if len(registered.grains) > 1:
                raise ReleaseRegisterError(
                    f"partner {partner} is registered for {' and '.join(registered.grains)}: "
                    "choose the grain"
                )
            grain = registered.grains[0]
        return grain, registered.k if k is None else k

    def check(
        self,
        partner: str,
        grain: str | None,
        k: int | None,
        start: date,
        end: date,
        *,
        username: str,
        role: Role | str,
        target: str = "research",
    ) -> Partner:
        """The partner when a release of [start, end] at this grain and k is allowed; else
        ReleaseRefused, after writing the refusal to the access log."""
        try:
            with self._connect() as conn:
                return _apply_rules(conn, partner, grain, k, start, end, username, role)
        except ReleaseRefused as refusal:
            self._deny(refusal, partner, grain, k, start, end, username, role, target)
            raise

    def record(
        self,
        partner: str,
        grain: str,
        k: int,
        start: date,
        end: date,
        *,
        username: str,
        role: Role | str,
        channel: str,
        name: str = "",
        sha256: str = "",
        size_bytes: int = 0,
    ) -> Release:
        """Record a release, checking the rules again in the same transaction (two requests
        at once cannot both pass). A view already recorded for the same partner, user,
        grain, k and period is not recorded twice: the page redraws on every click."""
        if channel not in CHANNELS:
            raise ValueError(f"unknown release channel {channel!r}")
        values = [partner, username, str(role), channel, name, grain, k, str(start), str(end)]
        try:
            with self._connect() as conn:
                conn.execute("begin immediate")
                _apply_rules(conn, partner, grain, k, start, end, username, role)
                seen = None
                if channel == "view":
                    seen = conn.execute(
                        f"select {_RELEASE_COLUMNS} from releases where partner = ? "
                        "and username = ? and role = ? and channel = ? and name = ? "
                        "and grain = ? and k = ? and period_start = ? and period_end = ?",
                        values,
                    ).fetchone()
                if seen is None:
                    release_id = conn.execute(
                        f"insert into releases ({_RELEASE_COLUMNS}) "
                        "values (null, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [_now(), *values, sha256, size_bytes],
                    ).lastrowid
                    seen = conn.execute(
                        f"select {_RELEASE_COLUMNS} from releases where release_id = ?",
                        [release_id],
                    ).fetchone()
                conn.execute("commit")
        except ReleaseRefused as refusal:
            self._deny(refusal, partner, grain, k, start, end, username, role, name)
            raise
        return _release(seen)

    def history(self, partner: str | None = None, *, limit: int = 1000) -> list[Release]:
        """Newest first."""
        with self._connect() as conn:
            rows = conn.execute(
                f"select {_RELEASE_COLUMNS} from releases where (? is null or partner = ?) "
                "order by release_id desc limit ?",
                [partner, partner, limit],
            ).fetchall()
        return [_release(row) for row in rows]

    def _deny(self, refusal, partner, grain, k, start, end, username, role, target) -> None:
        detail = {
            "partner": partner,
            "grain": grain,
            "k": k,
            "from": str(start),
            "to": str(end),
            "reason": refusal.reason,
        }
        self.access.log(username, role, "denied", target or "research", detail)


def _apply_rules(conn, partner, grain, k, start, end, username, role) -> Partner:
    registered = _partner(conn, partner)
    if registered is None:
        names = ", ".join(p.name for p in _partners(conn)) or "none yet"
        raise ReleaseRefused(
            "unknown_partner",
            f"{partner!r} is not a registered research partner (registered: {names}); "
            "the data steward registers one with `ocse releases set`",
        )
    if str(role) == Role.RESEARCHER and _member_of(conn, username) != partner:
        raise ReleaseRefused(
            "not_partner_member",
            f"{username} is not a member of partner {partner}: only its members receive "
            "its releases (the data steward assigns them)",
        )
    if start > end:
        raise ReleaseRegisterError(f"the period ends ({end}) before it starts ({start})")
    allowed = " or ".join(registered.grains)
    if grain not in registered.grains:
        raise ReleaseRefused(
            "grain_not_registered",
            f"partner {partner} is registered for {allowed} releases, not {grain}: "
            f"allowed grain: {allowed}",
        )
    if isinstance(k, bool) or not isinstance(k, int) or k < registered.k:
        raise ReleaseRefused(
            "k_below_register",
            f"partner {partner} is registered for k={registered.k}: k={k} is below it "
            f"(allowed: k of {registered.k} or more)",
        )
    row = conn.execute(
        f"select {_RELEASE_COLUMNS} from releases where partner = ? and period_start <= ? "
        "and period_end >= ? and (grain <> ? or k <> ?) order by release_id limit 1",
        [partner, str(end), str(start), grain, k],
    ).fetchone()
    if row is not None:
        earlier = _release(row)
        raise ReleaseRefused(
            "overlaps_earlier_release",
            f"partner {partner} already holds {earlier.period_start} .. {earlier.period_end} "
            f"at {earlier.grain} grain, k={earlier.k} ({earlier.channel} of "
            f"{earlier.at[:10]}): {start} .. {end} at {grain} grain, k={k} overlaps it, and "
            "the two could be subtracted to recover withheld cells. Allowed for an "
            f"overlapping period: {earlier.grain} grain at k={earlier.k}; any registered "
            "grain and k for periods it does not hold",
        )
    return registered


def _partners(conn, name: str | None = None) -> list[Partner]:
    rows = conn.execute(
        "select partner, grains, k, created_at, updated_at from partners "
        "where (? is null or partner = ?) order by partner",
        [name, name],
    ).fetchall()
    return [Partner(p, tuple(grains.split(",")), k, c, u) for p, grains, k, c, u in rows]


def _partner(conn, name: str) -> Partner | None:
    found = _partners(conn, name)
    return found[0] if found else None


def _members(conn, partner: str) -> list[str]:
    rows = conn.execute(
        "select username from partner_members where partner = ? order by username", [partner]
    ).fetchall()
    return [name for (name,) in rows]


def _member_of(conn, username: str) -> str | None:
    row = conn.execute(
        "select partner from partner_members where username = ?", [username]
    ).fetchone()
    return row[0] if row else None


def _release(row) -> Release:
    values = list(row)
    values[9], values[10] = date.fromisoformat(values[9]), date.fromisoformat(values[10])
    return Release(*values)


def release_register(settings=None) -> ReleaseRegister:
    """The register in the access store's file, `OCSE_ACCESS_DB`."""
    from ocse.settings import get_settings

    return ReleaseRegister((settings or get_settings()).access_db)
