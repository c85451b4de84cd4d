"""A consistent backup of everything the warehouse cannot rebuild (`ocse backup`).

The DuckDB warehouse, the alert store (alert identity and delivery history: without it a
restored warehouse would send every alert again) and the access store (dashboard accounts
and the append-only access log). Taken under the warehouse lease, so no run writes while it
is copied: the warehouse is checkpointed (its write-ahead log folded in) and copied whole;
the SQLite stores are copied with SQLite's online backup, consistent even while a dashboard
writes the access log. A manifest records what was copied, with sizes and SHA-256.

The serving snapshot is not backed up: the next run publishes it again from the warehouse.
The pseudonymisation key is not either, on purpose: keep it apart from the data it protects
(the backup is useless without it, and harmless to anyone who holds only the backup).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from ocse import runlock
from ocse.settings import OcseSettings


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _copy_sqlite(source: Path, target: Path) -> None:
    with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


def backup(settings: OcseSettings, out: Path, progress=print) -> dict:
    """Copy the warehouse and the stores into the new folder `out`; return the manifest."""
    from ocse.warehouse import connect

    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty: a backup goes into a new folder")
    if not settings.warehouse.exists():
        raise FileNotFoundError(f"No warehouse at {settings.warehouse}")
    out.mkdir(parents=True, exist_ok=True)
    lease = runlock.acquire(settings.warehouse, trigger="backup")
    try:
        conn = connect(settings.warehouse)
        try:
            conn.execute("checkpoint")
            key_versions = conn.execute(
                "select version, fingerprint from ingest.key_versions order by version"
            ).fetchall()
        finally:
            conn.close()
        files = []
        progress(f"copying {settings.warehouse} ...")
        shutil.copy2(settings.warehouse, out / "ocse.duckdb")
        files.append(("warehouse", settings.warehouse, out / "ocse.duckdb"))
        for role, path in (("alerts", settings.alerts_store), ("access", settings.access_db)):
            if path.exists():
                progress(f"copying {path} ...")
                _copy_sqlite(path, out / path.name)
                files.append((role, path, out / path.name))
    finally:
        runlock.release(lease)
    manifest = {
        "taken_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "key_versions": [{"version": v, "fingerprint": f} for v, f in key_versions],
        "files": [
            {
                "role": role,
                "source": str(source),
                "file": copy.name,
                "bytes": copy.stat().st_size,
                "sha256": _sha256(copy),
            }
            for role, source, copy in files
        ],
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
