"""Delivering version rows into the landing folder the way upstream systems do.

One writer per run. It cuts a feed's rows into batch files, picks each file's format and
timestamp style, injects row defects, delivers some files late (into a later day's folder)
or twice (byte-identical under another name), and plants the bad files, stray `.tmp` files
and a dotfile the ingestion gate must handle. Every choice comes from a random stream keyed
by the seed and the file's own coordinates, so the output does not depend on run order or
the wall clock.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from sample_data import defects
from sample_data.formats import CST_FLAG, encode, to_output, write_atomic
from sample_data.rhythm import DAY, TZ_OFFSET, local_day
from sample_data.schema import ACTIONS, CASES, FEEDS, HITS, REPORTS, Feed

MAX_ROWS_PER_FILE = 250_000
MANIFEST = "_bad_rows.csv"
SUMMARY = "_generation_summary.json"
FILE_TAG = 0xF11E
FEED_INDEX = {feed.name: i for i, feed in enumerate(FEEDS)}

# Which feed each bad file is planted in.
BAD_FILE_PLAN = (
    ("wrong_encoding", HITS),
    ("missing_required_column", ACTIONS),
    ("not_feed_format", CASES),  # binary garbage with a .parquet name
    ("not_feed_format", REPORTS),  # a text error page with a .jsonl name
    ("zero_byte", HITS),
    ("extra_unknown_column", REPORTS),
)
DUPLICATES = (HITS, ACTIONS, REPORTS)


def day_folder(day_number: int) -> str:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=int(day_number))).strftime("%Y-%m-%d")


def local_stamp(t: int, seconds: bool = False) -> str:
    fmt = "%Y%m%dT%H%M%S" if seconds else "%Y%m%dT%H%M"
    return (datetime.fromtimestamp(t + TZ_OFFSET, UTC)).strftime(fmt)


@dataclass
class Stats:
    files: Counter = field(default_factory=Counter)
    rows: Counter = field(default_factory=Counter)
    formats: Counter = field(default_factory=Counter)
    bad_rows: Counter = field(default_factory=Counter)
    bad_rows_by_feed: dict = field(default_factory=lambda: defaultdict(Counter))
    bad_files: dict = field(default_factory=lambda: defaultdict(list))
    ignored: list = field(default_factory=list)
    duplicates: list = field(default_factory=list)
    late: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "files": {f.name: self.files[f.name] for f in FEEDS},
            "rows": {f.name: self.rows[f.name] for f in FEEDS},
            "formats": dict(sorted(self.formats.items())),
            "bad_rows": dict(sorted(self.bad_rows.items())),
            "bad_rows_by_feed": {
                f.name: dict(sorted(self.bad_rows_by_feed[f.name].items())) for f in FEEDS
            },
            "bad_rows_manifest": MANIFEST,
            "bad_files": {k: v for k, v in sorted(self.bad_files.items())},
            "ignored_files": self.ignored,
            "duplicate_deliveries": self.duplicates,
            "late_deliveries": self.late,
        }


class LandingWriter:
    def __init__(
        self,
        out: Path,
        seed: int,
        bad_share: float,
        first_day: int,
        last_day: int,
        *,
        follow: bool = False,
        stats: Stats | None = None,
    ) -> None:
        self.out = out
        self.seed = seed
        self.bad_share = bad_share
        self.first_day, self.last_day = first_day, last_day
        self.follow = follow
        self.stats = stats or Stats()
        plan_rng = np.random.default_rng([seed, FILE_TAG, first_day, last_day])
        self.cyclers = {f.name: defects.KindCycler(f, plan_rng) for f in FEEDS}
        span = max(1, last_day - first_day)
        self.bad_files: list[tuple[str, Feed, int]] = []
        if bad_share > 0 and not follow:
            days = plan_rng.integers(0, span, size=len(BAD_FILE_PLAN))
            self.bad_files = [
                (k, f, first_day + int(d)) for (k, f), d in zip(BAD_FILE_PLAN, days, strict=True)
            ]
        self.duplicates: list[tuple[Feed, int]] = []
        if not follow:
            days = plan_rng.integers(0, span, size=len(DUPLICATES))
            self.duplicates = [
                (f, first_day + int(d)) for f, d in zip(DUPLICATES, days, strict=True)
            ]
        self.last_written: dict[str, tuple[Path, bytes]] = {}
        self._manifest_rows: list[list] = []

    # -- batches -----------------------------------------------------------------------

    def write_window(self, feed: Feed, rows: pl.DataFrame, a: int, b: int) -> None:
        """Deliver the rows of a day window (a, b] as batch files on the feed's rhythm."""
        if rows.height == 0:
            return
        length = feed.batch_hours * 3600
        midnight = local_day(a) * DAY - TZ_OFFSET
        rows = rows.with_columns(
            _batch=(
                (pl.max_horizontal(pl.col("updated_at"), pl.lit(a + 1)) - midnight - 1) // length
            ).cast(pl.Int64)
        )
        rows = rows.sort(["updated_at", feed.key]).unique(
            [feed.key, "_batch"], keep="last", maintain_order=True
        )
        for batch, part in rows.partition_by("_batch", as_dict=True, maintain_order=True).items():
            start = midnight + int(batch[0]) * length
            name = f"{feed.file_prefix}_{local_stamp(start)}"
            self.write_file(feed, part.drop("_batch"), name, local_day(a), start)

    def write_follow(self, feed: Feed, rows: pl.DataFrame, b: int, batch_no: int) -> None:
        if rows.height == 0:
            return
        rows = rows.sort(["updated_at", feed.key]).unique(
            [feed.key], keep="last", maintain_order=True
        )
        name = f"{feed.file_prefix}_{local_stamp(b, seconds=True)}_f{batch_no:05d}"
        self.write_file(feed, rows, name, local_day(b - 1), b)

    def write_file(self, feed: Feed, rows: pl.DataFrame, name: str, day: int, key: int) -> None:
        rng = np.random.default_rng([self.seed, FILE_TAG, FEED_INDEX[feed.name], key])
        fmt = str(
            rng.choice(
                ["csv", "jsonl", "parquet"],
                p=[0.85, 0.10, 0.05] if self.follow else [0.78, 0.13, 0.09],
            )
        )
        bad_file = self._due_bad_file(feed, day)
        if bad_file == "extra_unknown_column":
            fmt = "csv"
        folder_day = day
        if not self.follow and rng.random() < 0.03:
            folder_day = min(self.last_day, day + int(rng.integers(1, 4)))
        style = str(rng.choice(["utc", "local", "mixed"], p=[0.5, 0.3, 0.2]))
        millis = fmt == "jsonl" and rng.random() < 0.7
        n_parts = -(-rows.height // MAX_ROWS_PER_FILE)
        for p in range(n_parts):
            part = rows.slice(p * MAX_ROWS_PER_FILE, MAX_ROWS_PER_FILE)
            suffix = f"_p{p + 1}" if n_parts > 1 else ""
            rel = Path(feed.name) / day_folder(folder_day) / f"{name}{suffix}.{fmt}"
            cst = (
                np.full(part.height, style == "local")
                if style != "mixed"
                else rng.random(part.height) < 0.5
            )
            part = part.with_columns(pl.Series(CST_FLAG, cst))
            typed, text, found = defects.plan(
                part,
                feed,
                fmt,
                self.bad_share,
                self.cyclers[feed.name],
                rng,
                force_coverage=not self.follow,
            )
            part = defects.apply_typed(part, typed)
            frame = to_output(part, feed, fmt, millis)
            frame = defects.apply_text(frame, text, rng)
            if bad_file == "extra_unknown_column":
                frame = _with_phone_column(frame, rng)
                self.stats.bad_files[bad_file].append(
                    {"path": rel.as_posix(), "feed": feed.name, "column": "reporter_phone"}
                )
                bad_file = None
            data = encode(frame, feed, fmt, drop_null_keys=fmt == "jsonl" and rng.random() < 0.5)
            write_atomic(self.out / rel, data)
            self._record(feed, rel, fmt, part.height, found, late=folder_day != day)
            self.last_written[feed.name] = (rel, data)
            if bad_file is not None:
                self._plant_bad_file(bad_file, feed, rel, frame, rng)
                bad_file = None
            self._maybe_duplicate(feed, day, rel, data)

    def _record(self, feed: Feed, rel: Path, fmt: str, n: int, found: list, late: bool) -> None:
        self.stats.files[feed.name] += 1
        self.stats.rows[feed.name] += n
        self.stats.formats[fmt] += 1
        if late:
            self.stats.late.append(rel.as_posix())
        for d in found:
            self.stats.bad_rows[d.kind] += 1
            self.stats.bad_rows_by_feed[feed.name][d.kind] += 1
            self._manifest_rows.append(
                [rel.as_posix(), feed.name, d.row + 1, d.kind, d.field, defects.expected_reason(d)]
            )

    # -- duplicates, bad files, strays -------------------------------------------------------

    def _maybe_duplicate(self, feed: Feed, day: int, rel: Path, data: bytes) -> None:
        for i, (target, target_day) in enumerate(self.duplicates):
            if target is feed and day >= target_day:
                del self.duplicates[i]
                folder = day + 1 if day + 1 <= self.last_day else max(self.first_day, day - 1)
                copy = rel.parent.parent / day_folder(folder) / f"{rel.stem}_resend{rel.suffix}"
                if copy.parent == rel.parent:
                    copy = rel.parent / "resend" / rel.name
                write_atomic(self.out / copy, data)
                self.stats.duplicates.append(
                    {
                        "original": rel.as_posix(),
                        "copy": copy.as_posix(),
                        "sha256": hashlib.sha256(data).hexdigest(),
                    }
                )
                return

    def _due_bad_file(self, feed: Feed, day: int) -> str | None:
        for i, (kind, target, target_day) in enumerate(self.bad_files):
            if target is feed and day >= target_day:
                del self.bad_files[i]
                return kind
        return None

    def _plant_bad_file(
        self, kind: str, feed: Feed, rel: Path, frame: pl.DataFrame, rng: np.random.Generator
    ) -> None:
        stem = rel.with_suffix("").name
        if kind == "wrong_encoding":
            # A re-export from a Windows tool in GB18030: a keyword list with a Chinese name.
            text = frame.with_columns(
                matched_list=pl.when(pl.col("matched_list").is_not_null())
                .then(pl.lit("kw-诱导-v7"))
                .otherwise(pl.lit("关键词-诱导"))
            )
            data = _csv_text(text).encode("gb18030")
            target = rel.with_name(f"{stem}_export.csv")
            detail = {"encoding": "gb18030"}
        elif kind == "missing_required_column":
            data = _csv_text(frame.drop("category_code")).encode()
            target = rel.with_name(f"{stem}_v2.csv")
            detail = {"missing_column": "category_code"}
        elif kind == "not_feed_format" and feed is CASES:
            data = b"\x89GARBAGE\x00" + rng.bytes(2048)
            target = rel.with_name(f"{stem}_archive.parquet")
            detail = {"content": "binary garbage"}
        elif kind == "not_feed_format":
            data = (
                b"<html><head><title>502 Bad Gateway</title></head>\n"
                b"<body>upstream export service unavailable, retry later</body></html>\n"
            )
            target = rel.with_name(f"{stem}_export.jsonl")
            detail = {"content": "html error page"}
        elif kind == "zero_byte":
            data = b""
            target = rel.with_name(f"{stem}_empty.csv")
            detail = {"content": "empty"}
        else:
            raise ValueError(kind)
        write_atomic(self.out / target, data)
        self.stats.bad_files[kind].append({"path": target.as_posix(), "feed": feed.name, **detail})

    def finish(self) -> None:
        """Plant what never found its batch, then the stray files a real landing folder has."""
        rng = np.random.default_rng([self.seed, FILE_TAG, 0x57A7])
        for kind, feed, _ in list(self.bad_files):
            if kind in ("not_feed_format", "zero_byte") and feed.name in self.last_written:
                rel, _data = self.last_written[feed.name]
                self._plant_bad_file(kind, feed, rel, pl.DataFrame(), rng)
        self.bad_files.clear()
        # An upload in progress at the end time, and an abandoned one.
        for feed, suffix in ((HITS, "_inflight"), (REPORTS, "_abandoned")):
            if feed.name not in self.last_written:
                continue
            rel, data = self.last_written[feed.name]
            stray = rel.with_name(f"{rel.stem}{suffix}{rel.suffix}.tmp")
            (self.out / stray).write_bytes(data[: len(data) // 2])
            self.stats.ignored.append(stray.as_posix())
        if ACTIONS.name in self.last_written:
            rel, data = self.last_written[ACTIONS.name]
            dot = rel.with_name(".partial_upload.csv")
            (self.out / dot).write_bytes(data[: len(data) // 3])
            self.stats.ignored.append(dot.as_posix())

    def write_manifest(self, append: bool = False) -> None:
        path = self.out / MANIFEST
        exists = append and path.exists()
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        if not exists:
            writer.writerow(["file", "feed", "row_number", "kind", "field", "expected_reason"])
        writer.writerows(self._manifest_rows)
        if exists:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(buffer.getvalue())
        else:
            write_atomic(path, buffer.getvalue().encode())
        self._manifest_rows.clear()


def _csv_text(frame: pl.DataFrame) -> str:
    text_frame = frame.with_columns(
        [
            pl.col(c).cast(pl.String)
            for c, t in frame.schema.items()
            if t != pl.String and not isinstance(t, pl.List)
        ]
        + [pl.col(c).list.join("|") for c, t in frame.schema.items() if isinstance(t, pl.List)]
    )
    return text_frame.write_csv()


def _with_phone_column(frame: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """A reporter phone number an upstream form started exporting: personal data the
    contract does not know. It must be dropped at ingestion; the rest of the file is valid."""
    numbers = rng.integers(0, 10**8, size=frame.height)
    prefixes = rng.choice(["138", "139", "150", "186", "177"], size=frame.height)
    phones = pl.Series(
        [
            f"+86-{p}-{n // 10**4:04d}-{n % 10**4:04d}"
            for p, n in zip(prefixes, numbers, strict=True)
        ]
    )
    position = frame.columns.index("reporter_id") + 1
    return frame.insert_column(position, phones.alias("reporter_phone"))
