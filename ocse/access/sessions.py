"""Dashboard sessions and sign-in throttling, server-side, in the access store's SQLite file.

Why server-side: a lockout or a session kept in the browser's memory is gone with a reload,
so guessing was unlimited by reconnecting and a reload signed the user out. Here:

- **Sessions.** Signing in creates a record; the browser holds only a cookie
  `<session id>.<HMAC>` (HttpOnly, SameSite=Strict, set by `dashboards/server.py`). The
  HMAC key is a random secret in a file beside the access store (mode 600), so a cookie
  cannot be forged or edited; the store keeps only the SHA-256 of the session id, so a
  copy of the store does not yield usable cookies. A session ends after the idle limit
  without a user action, at the absolute limit after sign-in, on sign-out, or when an
  administrator revokes it (`ocse users revoke NAME`). Every end is logged once.
- **Throttling.** Failed sign-ins are counted per account and per source (the client
  address, stored as a keyed hash, never in clear). After `MAX_FAILURES` in a row (5 for
  an account, 20 for a source) a key is locked for `BASE_LOCK_SECONDS`, doubling with each
  further lockout up to `MAX_LOCK_SECONDS`; while locked, attempts are refused without
  checking the password (and logged). A successful sign-in clears the account's count and
  the source's.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ocse.access.store import AccessStore

_SCHEMA = """
create table if not exists sessions (
    session_hash  text primary key,   -- sha256 of the session id; the id is only in the cookie
    username      text not null,
    role          text not null,
    via           text not null,      -- password | oidc
    source        text not null,      -- keyed hash of the client address
    created_at    text not null,      -- UTC ISO-8601
    last_seen_at  text not null,      -- the last user action
    ended_at      text,               -- null while active
    end_reason    text                -- signed_out | expired | revoked
);
create index if not exists sessions_by_user on sessions (username, ended_at);
create table if not exists sign_in_throttle (
    scope         text not null,      -- account | source
    key           text not null,      -- username (lower case) or keyed hash of the address
    failures      integer not null,   -- failed attempts since the last success or lockout
    lockouts      integer not null,   -- lockouts in a row (the back-off's exponent)
    locked_until  text,               -- UTC ISO-8601, null when not locked
    last_at       text not null,
    primary key (scope, key)
);
"""

COOKIE_NAME = "ocse_session"
# Failures in a row before a lock: an account after 5; a source (one address, perhaps an
# office behind one proxy) after 20, so one person's typos do not lock out colleagues.
MAX_FAILURES = {"account": 5, "source": 20}
BASE_LOCK_SECONDS = 60
MAX_LOCK_SECONDS = 3600
END_REASONS = ("signed_out", "expired", "revoked")


@dataclass(frozen=True)
class Session:
    session_hash: str
    username: str
    role: str
    via: str
    source: str
    created_at: datetime
    last_seen_at: datetime
    ended_at: datetime | None
    end_reason: str | None


@dataclass(frozen=True)
class Limits:
    """When a session ends without sign-out. A display account's screen refreshes itself
    and nobody touches it, so its sessions have no idle limit, only the absolute one."""

    idle: timedelta
    absolute: timedelta
    display_absolute: timedelta

    def expiry(self, session: Session) -> datetime:
        if session.role == "display":
            return session.created_at + self.display_absolute
        return min(session.last_seen_at + self.idle, session.created_at + self.absolute)


@dataclass(frozen=True)
class Lockout:
    """Why a sign-in attempt may not even be checked: which key is locked, until when."""

    scope: str
    until: datetime

    def seconds_left(self, now: datetime) -> int:
        return max(1, int((self.until - now).total_seconds() + 0.999))


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _parse(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class SessionStore:
    """Sessions and throttling beside the accounts (`AccessStore`), logging to its log."""

    def __init__(self, access: AccessStore, limits: Limits, secret_file: Path | None = None):
        self.access = access
        self.limits = limits
        self.secret_file = Path(secret_file or access.path.with_name("session.secret"))
        self._key: bytes | None = None

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # the access store's connection (same file, WAL, its accounts and log), and ours
        with self.access._connect() as conn:
            conn.executescript(_SCHEMA)
            yield conn

    # --- the signing key -------------------------------------------------------------------

    def _secret(self) -> bytes:
        """The HMAC key: created once (mode 600, never in git), then read (once per store)."""
        if self._key is None:
            self._key = self._read_or_create_secret()
        return self._key

    def _read_or_create_secret(self) -> bytes:
        try:
            return bytes.fromhex(self.secret_file.read_text().strip())
        except FileNotFoundError:
            pass
        self.secret_file.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            return bytes.fromhex(self.secret_file.read_text().strip())
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")
        return bytes.fromhex(self.secret_file.read_text().strip())

    def _sign(self, value: str) -> str:
        return hmac.new(self._secret(), value.encode(), hashlib.sha256).hexdigest()

    def source_key(self, address: str | None) -> str:
        """The client address as stored: a keyed hash (an address is personal data)."""
        return self._sign(f"source:{address or '-'}")[:32]

    # --- sessions --------------------------------------------------------------------------

    def create(
        self, username: str, role: str, via: str, source: str, *, session_id: str | None = None
    ) -> str:
        """A new session; returns the cookie value (the only place the id exists).
        `session_id`: derived by the caller (single sign-on), else random."""
        session_id = session_id or secrets.token_urlsafe(32)
        now = _iso(_now())
        with self._connect() as conn:
            conn.execute(
                "insert into sessions (session_hash, username, role, via, source, created_at, "
                "last_seen_at) values (?, ?, ?, ?, ?, ?, ?)",
                [_hash(session_id), username, role, via, source, now, now],
            )
        return self.cookie_for(session_id)

    def cookie_for(self, session_id: str) -> str:
        return f"{session_id}.{self._sign(session_id)}"

    def _session_id(self, cookie: str | None) -> str | None:
        """The id in a cookie whose signature is right, else None (forged or edited)."""
        if not cookie or cookie.count(".") != 1:
            return None
        session_id, signature = cookie.split(".")
        if not hmac.compare_digest(signature, self._sign(session_id)):
            return None
        return session_id

    def is_forged(self, cookie: str | None) -> bool:
        return bool(cookie) and self._session_id(cookie) is None

    def resolve(self, cookie: str | None, *, touch: bool = False) -> Session | None:
        """The active session a cookie names, or None. An expired one is ended (and its
        expiry logged) here, the first time it is seen past its limit. `touch`: this is
        a user action, which keeps the session from going idle."""
        session_id = self._session_id(cookie)
        if session_id is None:
            return None
        session = self._get(_hash(session_id))
        if session is None or session.ended_at is not None:
            return None
        now = _now()
        if now >= self.limits.expiry(session):
            self._end(session, "expired", by=None)
            return None
        if touch:
            with self._connect() as conn:
                conn.execute(
                    "update sessions set last_seen_at = ? where session_hash = ?",
                    [_iso(now), session.session_hash],
                )
        return session

    def ended(self, cookie: str | None) -> Session | None:
        """The session a valid cookie names if it has ended (to say why to the user)."""
        session_id = self._session_id(cookie)
        session = self._get(_hash(session_id)) if session_id else None
        return session if session and session.ended_at is not None else None

    def sign_out(self, cookie: str | None) -> Session | None:
        session = self.resolve(cookie)
        if session is not None:
            self._end(session, "signed_out", by=None)
        return session

    def revoke(self, username: str, *, by: str) -> int:
        """End every active session of `username` (an administrator's command)."""
        ended = [s for s in self.active() if s.username == username]
        for session in ended:
            self._end(session, "revoked", by=by)
        return len(ended)

    def active(self) -> list[Session]:
        """Active sessions, expired ones ended (and logged) on the way."""
        with self._connect() as conn:
            rows = conn.execute(
                f"select {_COLUMNS} from sessions where ended_at is null "
                "order by username, created_at"
            ).fetchall()
        out = []
        now = _now()
        for session in map(_session, rows):
            if now >= self.limits.expiry(session):
                self._end(session, "expired", by=None)
            else:
                out.append(session)
        return out

    def _get(self, session_hash: str) -> Session | None:
        with self._connect() as conn:
            row = conn.execute(
                f"select {_COLUMNS} from sessions where session_hash = ?", [session_hash]
            ).fetchone()
        return _session(row) if row else None

    def _end(self, session: Session, reason: str, *, by: str | None) -> None:
        with self._connect() as conn:
            changed = conn.execute(
                "update sessions set ended_at = ?, end_reason = ? "
                "where session_hash = ? and ended_at is null",
                [_iso(_now()), reason, session.session_hash],
            ).rowcount
        if changed:  # another process may have ended it first: log it once
            detail = {"reason": reason, "session": session.session_hash[:12]}
            if by:
                detail["by"] = by
            self.access.log(session.username, session.role, "logout", "session", detail)

    # --- throttling ------------------------------------------------------------------------

    def lockout(self, username: str, source: str) -> Lockout | None:
        """The lock that refuses an attempt now (account first), or None."""
        now = _now()
        with self._connect() as conn:
            for scope, key in (("account", username.lower()), ("source", source)):
                row = conn.execute(
                    "select locked_until from sign_in_throttle where scope = ? and key = ?",
                    [scope, key],
                ).fetchone()
                until = _parse(row[0]) if row else None
                if until and until > now:
                    return Lockout(scope, until)
        return None

    def record_failure(self, username: str, source: str) -> Lockout | None:
        """Count a failed attempt on both keys; the lockout it starts, if any."""
        now = _now()
        started = None
        with self._connect() as conn:
            conn.execute("begin immediate")
            for scope, key in (("account", username.lower()), ("source", source)):
                row = conn.execute(
                    "select failures, lockouts from sign_in_throttle where scope = ? and key = ?",
                    [scope, key],
                ).fetchone()
                failures, lockouts = (row[0] + 1, row[1]) if row else (1, 0)
                locked_until = None
                if failures >= MAX_FAILURES[scope]:
                    seconds = min(MAX_LOCK_SECONDS, BASE_LOCK_SECONDS * 2**lockouts)
                    until = now + timedelta(seconds=seconds)
                    locked_until, failures, lockouts = _iso(until), 0, lockouts + 1
                    started = started or Lockout(scope, until)
                conn.execute(
                    "insert or replace into sign_in_throttle "
                    "(scope, key, failures, lockouts, locked_until, last_at) "
                    "values (?, ?, ?, ?, ?, ?)",
                    [scope, key, failures, lockouts, locked_until, _iso(now)],
                )
            conn.execute("commit")
        return started

    def record_success(self, username: str, source: str) -> None:
        with self._connect() as conn:
            conn.execute(
                "delete from sign_in_throttle where (scope = 'account' and key = ?) "
                "or (scope = 'source' and key = ?)",
                [username.lower(), source],
            )


_COLUMNS = (
    "session_hash, username, role, via, source, created_at, last_seen_at, ended_at, end_reason"
)


def _session(row) -> Session:
    return Session(
        row[0], row[1], row[2], row[3], row[4],
        _parse(row[5]), _parse(row[6]), _parse(row[7]), row[8],
    )  # fmt: skip


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def session_store(settings=None) -> SessionStore:
    """The store at `OCSE_ACCESS_DB`, with the session limits of the settings."""
    from ocse.settings import get_settings

    settings = settings or get_settings()
    limits = Limits(
        idle=timedelta(minutes=settings.session_idle_minutes),
        absolute=timedelta(hours=settings.session_max_hours),
        display_absolute=timedelta(days=settings.display_session_max_days),
    )
    return SessionStore(AccessStore(settings.access_db), limits)
