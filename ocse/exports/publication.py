"""What every publication that leaves the platform shares: its tables after disclosure
control, the snapshot it was computed from, and atomic, logged delivery."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from ocse.access.releases import ReleaseRegisterError
from ocse.exports.disclosure import DisclosureError, check_k
from ocse.exports.periods import Period, PeriodError
from ocse.exports.sources import SnapshotError, SnapshotInfo
from ocse.exports.tables import ProtectedTable

Progress = Callable[[str], None]
MANIFEST = "manifest.json"


class ExportError(ValueError):
    """A publication that cannot be made (message says why and what to do)."""


# Everything a caller may show a user as it is (a release the register refuses included).
USER_ERRORS = (ExportError, PeriodError, SnapshotError, DisclosureError, ReleaseRegisterError)


@dataclass
class Publication:
    kind: str  # "research" | "assessment"
    title: str
    requested: tuple[date, date]
    periods: list[Period]
    k: int
    info: SnapshotInfo
    policy_versions: list[int]
    tables: list[ProtectedTable] = field(default_factory=list)

    @property
    def grain(self) -> str:
        return self.periods[0].grain

    @property
    def covered(self) -> tuple[date, date]:
        return self.periods[0].start, self.periods[-1].end

    def table(self, name: str) -> ProtectedTable:
        return next(t for t in self.tables if t.name == name)

    def as_of_date(self) -> date:
        from zoneinfo import ZoneInfo

        return self.info.as_of.astimezone(ZoneInfo(self.info.reporting_tz)).date()

    def describe(self) -> dict:
        """The publication's metadata: dates only, never a time of day."""
        return {
            "kind": self.kind,
            "title": self.title,
            "requested_period": {"from": str(self.requested[0]), "to": str(self.requested[1])},
            "covered_period": {"from": str(self.covered[0]), "to": str(self.covered[1])},
            "grain": self.grain,
            "k": self.k,
            "policy_versions": self.policy_versions,
            "snapshot": {
                "as_of_date": str(self.as_of_date()),
                "reporting_time_zone": self.info.reporting_tz,
                "run_id": self.info.run_id,
            },
        }


def resolve_k(k: int | None) -> int:
    if k is None:
        from ocse.settings import get_settings

        k = get_settings().disclosure_k
    return check_k(k)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_json(path: Path, content: dict) -> None:
    path.write_text(
        json.dumps(content, indent=2, ensure_ascii=False, sort_keys=False, default=str) + "\n",
        encoding="utf-8",
    )


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def staging_dir(target: Path) -> Path:
    """A hidden folder next to `target` (same file system, so the final rename is atomic)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex}")
    tmp.mkdir()
    return tmp


def check_replaceable(target: Path, kind: str) -> None:
    """Refuse to replace anything but an earlier publication of the same kind (or nothing)."""
    if not target.exists():
        return
    if not target.is_dir():
        raise ExportError(f"{target} exists and is not a folder")
    if not any(target.iterdir()):
        return
    manifest = target / MANIFEST
    try:
        previous = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        previous = None
    if not isinstance(previous, dict) or previous.get("kind") != kind:
        raise ExportError(
            f"{target} exists and does not hold an earlier {kind} export: refusing to "
            "replace it. Choose another --out folder or empty this one."
        )


def publish_dir(tmp: Path, target: Path, kind: str) -> None:
    """Move the complete folder `tmp` to `target`, replacing an earlier publication there.
    Readers see the old folder, briefly none, then the new one: never a partial one."""
    check_replaceable(target, kind)
    for path in tmp.iterdir():
        with path.open("rb") as fh:
            os.fsync(fh.fileno())
    _fsync_dir(tmp)
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex}")
        os.rename(target, old)
    try:
        os.rename(tmp, target)
    except BaseException:
        if old is not None:
            os.rename(old, target)
        raise
    _fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def discard(tmp: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(tmp)


def log_export(username: str, role: str, target: str, detail: dict) -> None:
    """Record the export in the access log before it becomes visible: an export that could
    not be logged is never delivered."""
    from ocse.access import access_store

    access_store().log(username, role, "export", target, detail)
