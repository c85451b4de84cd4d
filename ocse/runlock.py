"""The warehouse lease: at most one pipeline run works on a warehouse at a time, whoever
started it (the landing sensor, the schedule, the Dagster UI or `ocse run`).

The lease is an exclusive `flock` on `<warehouse>.lease`. The kernel drops it when the
holding process dies, however it dies (`kill -9` included), so a dead holder can never keep
the warehouse locked; there is no timeout to tune. The file also says who holds it (pid,
run id, trigger, since when) for the message a refused run prints, and who held it last:
the next holder uses that to mark a run whose process died as failed (see
`dagster_project/defs/resources.py`).

flock is local to one machine (and unreliable on some network file systems): the warehouse
file lives on local disk, as DuckDB itself requires.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path


class WarehouseBusyError(RuntimeError):
    """Another run holds the warehouse lease; the message says which and since when."""


@dataclass
class Lease:
    path: Path
    fd: int
    holder: dict
    previous: dict | None = None  # what the file said before we took it (a dead holder's)
    depth: int = field(default=1)


# One lease per warehouse per process: `ocse run` takes it before it executes the job
# in-process, and the job's resource takes it again; the second take is re-entrant.
_HELD: dict[Path, Lease] = {}


def lease_path(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.name + ".lease")


def _read(fd: int) -> dict | None:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = os.read(fd, 65536)
    try:
        return json.loads(raw) if raw.strip() else None
    except ValueError:
        return None


def describe(holder: dict | None) -> str:
    if not holder:
        return "another process"
    what = f"run {holder.get('run_id') or '(starting)'}"
    trigger = holder.get("trigger")
    return (
        f"{what}{f' ({trigger})' if trigger else ''}, pid {holder.get('pid')} on "
        f"{holder.get('host')}, since {holder.get('acquired_at')}"
    )


def acquire(
    warehouse: Path,
    *,
    run_id: str | None = None,
    trigger: str | None = None,
    wait_seconds: float = 0.0,
    poll_seconds: float = 0.5,
) -> Lease:
    """Take the lease of `warehouse`, waiting up to `wait_seconds` for it; raise
    WarehouseBusyError naming the holder otherwise."""
    path = lease_path(warehouse.resolve())
    held = _HELD.get(path)
    if held is not None:
        held.depth += 1
        if run_id and not held.holder.get("run_id"):
            held.holder["run_id"] = run_id
            _write(held)
        return held
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                holder = _read(fd)
                os.close(fd)
                raise WarehouseBusyError(
                    f"The warehouse {warehouse} is in use by {describe(holder)}. Only one "
                    "pipeline run works on a warehouse at a time; this one did nothing. "
                    "Wait for that run to finish (the landing sensor and the schedule will "
                    "pick up any new files), or stop it."
                ) from None
            time.sleep(poll_seconds)
    previous = _read(fd)
    lease = Lease(
        path=path,
        fd=fd,
        holder={
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "run_id": run_id,
            "trigger": trigger,
            "acquired_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "released_at": None,
        },
        previous=previous,
    )
    _write(lease)
    _HELD[path] = lease
    return lease


def _write(lease: Lease) -> None:
    data = json.dumps(lease.holder).encode()
    os.ftruncate(lease.fd, 0)
    os.lseek(lease.fd, 0, os.SEEK_SET)
    os.write(lease.fd, data)
    os.fsync(lease.fd)


def release(lease: Lease) -> None:
    """Give the lease back (re-entrant takes are counted). The file keeps the last holder,
    marked released, so the next holder can tell a clean end from a death."""
    lease.depth -= 1
    if lease.depth > 0:
        return
    _HELD.pop(lease.path, None)
    lease.holder["released_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        _write(lease)
    finally:
        fcntl.flock(lease.fd, fcntl.LOCK_UN)
        os.close(lease.fd)


def held_by_this_process(warehouse: Path) -> Lease | None:
    return _HELD.get(lease_path(warehouse.resolve()))


def current_holder(warehouse: Path) -> dict | None:
    """Who holds the lease now (None when nobody does), without taking it."""
    path = lease_path(warehouse.resolve())
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDWR)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read(fd) or {}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
