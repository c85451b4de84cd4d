"""Dashboard accounts and the access log, in one small SQLite file (`OCSE_ACCESS_DB`).

Why SQLite and not the warehouse: the dashboards and the CLI write here (a login, a page
view, an export) while the pipeline holds DuckDB's single writer lock on the warehouse;
SQLite lets many processes append safely. Passwords are stored only as salted argon2id
hashes. The access log is append-only: this module has no way to edit or delete an entry.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ocse.access.roles import Role, parse_role

_SCHEMA = """
create table if not exists users (
    username      text primary key,
    role          text not null,
    password_hash text,            -- null: signs in through OIDC only (username = e-mail)
    created_at    text not null
);
create table if not exists access_log (
    entry_id  integer primary key autoincrement,
    at        text not null,       -- UTC, ISO-8601
    username  text not null,
    role      text not null,
    event     text not null,       -- one of EVENTS below
    target    text not null,       -- page id, file or export name
    detail    text not null        -- JSON: filters, period, rows; never a data value
);
create trigger if not exists access_log_is_append_only_u before update on access_log
begin select raise(abort, 'the access log is append-only'); end;
create trigger if not exists access_log_is_append_only_d before delete on access_log
begin select raise(abort, 'the access log is append-only'); end;
"""

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{1,63}$")
MIN_PASSWORD_LENGTH = 10
EVENTS = ("login", "login_failed", "logout", "page_view", "denied", "download", "export")

_hasher = PasswordHasher()
# Verifying against this when the user does not exist keeps a wrong name as slow as a wrong
# password, so timing does not tell which usernames exist.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


class AccessStoreError(ValueError):
    """A user-facing problem with an account command (message says what to do)."""


@dataclass(frozen=True)
class User:
    username: str
    role: Role
    has_password: bool
    created_at: str


@dataclass(frozen=True)
class AccessEntry:
    entry_id: int
    at: str
    username: str
    role: str
    event: str
    target: str
    detail: dict


class AccessStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            conn.execute("pragma journal_mode=wal")
            conn.executescript(_SCHEMA)
            yield conn
        finally:
            conn.close()

    # --- accounts ------------------------------------------------------------------------

    def add_user(
        self, username: str, role: Role | str, password: str | None, *, replace: bool = False
    ) -> User:
        if not USERNAME.match(username):
            raise AccessStoreError(
                f"username {username!r} is not allowed: 2-64 letters, digits or . _ @ + -, "
                "starting with a letter or digit"
            )
        role = parse_role(str(role)) if not isinstance(role, Role) else role
        if password is not None and len(password) < MIN_PASSWORD_LENGTH:
            raise AccessStoreError(
                f"the password must be at least {MIN_PASSWORD_LENGTH} characters long"
            )
        password_hash = _hasher.hash(password) if password is not None else None
        created_at = _now()
        with self._connect() as conn:
            exists = conn.execute("select 1 from users where username = ?", [username]).fetchone()
            if exists and not replace:
                raise AccessStoreError(
                    f"user {username!r} already exists (remove it first, or use --replace)"
                )
            conn.execute(
                "insert or replace into users (username, role, password_hash, created_at) "
                "values (?, ?, ?, ?)",
                [username, role.value, password_hash, created_at],
            )
        return User(username, role, password_hash is not None, created_at)

    def remove_user(self, username: str) -> None:
        with self._connect() as conn:
            deleted = conn.execute("delete from users where username = ?", [username]).rowcount
        if not deleted:
            raise AccessStoreError(f"no user {username!r}")

    def users(self) -> list[User]:
        with self._connect() as conn:
            rows = conn.execute(
                "select username, role, password_hash is not null, created_at "
                "from users order by username"
            ).fetchall()
        return [User(name, Role(role), bool(has), created) for name, role, has, created in rows]

    def user(self, username: str) -> User | None:
        return next((user for user in self.users() if user.username == username), None)

    def authenticate(self, username: str, password: str) -> User | None:
        """The user when the password matches, else None (same cost either way)."""
        with self._connect() as conn:
            row = conn.execute(
                "select role, password_hash, created_at from users where username = ?",
                [username],
            ).fetchone()
        stored = row[1] if row and row[1] else _DUMMY_HASH
        try:
            _hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if row is None or row[1] is None:
            return None
        if _hasher.check_needs_rehash(stored):
            with self._connect() as conn:
                conn.execute(
                    "update users set password_hash = ? where username = ?",
                    [_hasher.hash(password), username],
                )
        return User(username, Role(row[0]), True, row[2])

    # --- access log ----------------------------------------------------------------------

    def log(
        self,
        username: str,
        role: Role | str,
        event: str,
        target: str,
        detail: dict | None = None,
    ) -> None:
        if event not in EVENTS:
            raise ValueError(f"unknown access-log event {event!r}")
        with self._connect() as conn:
            conn.execute(
                "insert into access_log (at, username, role, event, target, detail) "
                "values (?, ?, ?, ?, ?, ?)",
                [
                    _now(),
                    username,
                    str(role),
                    event,
                    target,
                    json.dumps(detail or {}, sort_keys=True, default=str),
                ],
            )

    def entries(
        self,
        *,
        limit: int = 1000,
        username: str | None = None,
        event: str | None = None,
    ) -> list[AccessEntry]:
        """Newest first."""
        with self._connect() as conn:
            rows = conn.execute(
                "select entry_id, at, username, role, event, target, detail from access_log "
                "where (? is null or username = ?) and (? is null or event = ?) "
                "order by entry_id desc limit ?",
                [username, username, event, event, limit],
            ).fetchall()
        return [AccessEntry(*row[:6], json.loads(row[6])) for row in rows]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def access_store(settings=None) -> AccessStore:
    """The store at `OCSE_ACCESS_DB`."""
    from ocse.settings import get_settings

    return AccessStore((settings or get_settings()).access_db)
