"""The benchmark's scale sets and their cache.

A scale set is the landing folder `ocse generate` writes for a year (S: two weeks) ending at a
fixed time, so every run of the benchmark measures the same files. It is generated once into
`bench/.cache/<scale>-<key>/landing`, where the key hashes the scale's parameters and the
generator's source: a change to the generator makes a new set, an unchanged one is reused.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
CACHE_DIR = BENCH_DIR / ".cache"
# Data ends here; the full run's as-of time T.
END = datetime(2025, 6, 30, 16, 0, tzinfo=UTC)
SEED = 42


@dataclass(frozen=True)
class Scale:
    name: str
    hits: int  # screening hits over the period (reports, actions, cases follow from it)
    days: int
    note: str
    # step 6 (the live loop, sensor and schedule on) runs this long at this scale; 0: not run
    live_seconds: int = 0


SCALES = {
    "S": Scale("S", 5_000, 14, "smoke test of the harness"),
    "demo": Scale(
        "demo", 20_000, 30, "the demo's data: 20 thousand hits over 30 days", live_seconds=600
    ),
    "M": Scale("M", 1_000_000, 365, "1 million screening hits over a year", live_seconds=600),
    "L": Scale(
        "L",
        10_000_000,
        365,
        "10 million hits over a year (about 1 million reports, 2.5 million actions, "
        "100 thousand cases)",
    ),
    "XL": Scale("XL", 100_000_000, 365, "100 million hits over a year"),
}


def generator_version() -> str:
    """Hash of the generator's source: the cache is keyed by it."""
    digest = hashlib.sha256()
    for path in sorted((PROJECT_ROOT / "sample_data").glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def cache_key(scale: Scale) -> str:
    params = json.dumps({**asdict(scale), "seed": SEED, "end": END.isoformat()}, sort_keys=True)
    return hashlib.sha256((params + generator_version()).encode()).hexdigest()[:12]


def scale_dir(scale: Scale) -> Path:
    return CACHE_DIR / f"{scale.name}-{cache_key(scale)}"


def ensure_scale_set(scale: Scale, say=print) -> tuple[Path, dict]:
    """The cached landing folder of `scale` (generated now if missing) and its generation
    record (summary, seconds it took)."""
    from sample_data.generator import generate

    folder = scale_dir(scale)
    landing, record_path = folder / "landing", folder / "generation.json"
    if record_path.exists() and landing.is_dir():
        say(f"scale {scale.name}: cached set {folder.name}")
        return landing, json.loads(record_path.read_text())
    # Generated into a temporary folder, renamed when complete: an interrupted generation
    # never leaves a half set that a later run would take as cached.
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    say(f"scale {scale.name}: generating {scale.hits:,} hits over {scale.days} days (once)")
    started = time.perf_counter()
    summary = generate(
        tmp / "landing",
        seed=SEED,
        days=scale.days,
        scale=scale.hits,
        end=END,
        progress=lambda line: say("  " + line) if "done" in line else None,
    )
    record = {
        "scale": asdict(scale),
        "generator_version": generator_version(),
        "generate_seconds": round(time.perf_counter() - started, 2),
        "files": summary["files"],
        "rows": summary["rows"],
        "bad_files": summary["bad_files"],
        "ignored_files": summary["ignored_files"],
    }
    (tmp / "generation.json").write_text(json.dumps(record, indent=2) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return landing, record


def working_copy(landing: Path, dest: Path) -> Path:
    """A copy of the cached landing folder that a run may add files to, made of hard links.

    Landed files are never changed in place (new files are written and renamed), so links
    are safe; the two files the generator appends to in place are real copies."""
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(landing, dest, copy_function=_link)
    for name in ("_bad_rows.csv",):
        if (landing / name).exists():
            (dest / name).unlink()
            shutil.copy2(landing / name, dest / name)
    return dest


def _link(src: str, dst: str) -> None:
    try:
        Path(dst).hardlink_to(src)
    except OSError:  # another file system
        shutil.copy2(src, dst)
