"""Finding landed files: which are complete, which feed they belong to, their content hash."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ocse.contracts import FEEDS

SUPPORTED_SUFFIXES = (".csv", ".jsonl", ".parquet")


@dataclass(frozen=True)
class LandedFile:
    feed: str
    path: Path
    file_name: str  # path relative to the landing folder, the file's name in the ledger
    received_at: datetime
    size: int

    @classmethod
    def at(cls, landing_dir: Path, path: Path, feed: str) -> LandedFile:
        """The file at `path` as it is now (its name relative to the landing folder)."""
        stat = path.stat()
        return cls(
            feed=feed,
            path=path,
            file_name=path.relative_to(landing_dir).as_posix(),
            received_at=datetime.fromtimestamp(stat.st_mtime, UTC),
            size=stat.st_size,
        )

    def sha256(self) -> str:
        digest = hashlib.sha256()
        with self.path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()


def is_in_flight(path: Path) -> bool:
    """Upstream writes `name.tmp` or `.name` and renames when complete: not ours yet."""
    return any(part.startswith(".") for part in path.parts) or path.suffix == ".tmp"


def discover(landing_dir: Path) -> list[LandedFile]:
    """Every complete file under the four feed folders, oldest first (the order they arrived)."""
    found = []
    for feed in FEEDS:
        root = landing_dir / feed
        if not root.is_dir():
            continue
        for path in root.rglob("*"):
            if not path.is_file() or is_in_flight(path.relative_to(landing_dir)):
                continue
            found.append(LandedFile.at(landing_dir, path, feed))
    return sorted(found, key=lambda f: (f.received_at, f.file_name))
