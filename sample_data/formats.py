"""Typed version rows -> bytes of a CSV, JSON Lines or Parquet landing file.

Upstream systems differ in how they print a timestamp: one in UTC with `Z`, one in Beijing
time with `+08:00`, one mixing both, JSON exporters with milliseconds. All carry an explicit
offset; only a deliberate defect drops it.
"""

from __future__ import annotations

import io
import os
import re
from functools import lru_cache
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from sample_data.schema import Feed

TZ_SECONDS = 8 * 3600
CST_FLAG = "_cst"  # per-row: print this row's timestamps in +08:00 instead of Z


def timestamp_expr(column: str, millis: bool) -> pl.Expr:
    frac = ".000" if millis else ""
    utc = pl.from_epoch(pl.col(column), time_unit="s").dt.strftime(f"%Y-%m-%dT%H:%M:%S{frac}Z")
    local = pl.from_epoch(pl.col(column) + TZ_SECONDS, time_unit="s").dt.strftime(
        f"%Y-%m-%dT%H:%M:%S{frac}+08:00"
    )
    return pl.when(pl.col(CST_FLAG)).then(local).otherwise(utc).alias(column)


def to_output(rows: pl.DataFrame, feed: Feed, fmt: str, millis: bool) -> pl.DataFrame:
    """The landing columns of one file. CSV: all text. JSON Lines and Parquet: text with a
    numeric score and victims_count and a list of support_types."""
    return rows.select(_output_exprs(feed, fmt, millis))


@lru_cache(maxsize=64)
def _output_exprs(feed: Feed, fmt: str, millis: bool) -> tuple[pl.Expr, ...]:
    # Built once per kind of file: building expressions costs more than running them on a
    # small batch.
    exprs: list[pl.Expr] = []
    for name in feed.fields:
        if name in feed.timestamps:
            exprs.append(timestamp_expr(name, millis))
        elif fmt == "csv" and name == "support_types":
            exprs.append(
                pl.when(pl.col(name).list.len() > 0).then(pl.col(name).list.join("|")).alias(name)
            )
        elif fmt == "csv" and name in ("score", "victims_count"):
            exprs.append(pl.col(name).cast(pl.String))
        else:
            exprs.append(pl.col(name))
    return tuple(exprs)


@lru_cache(maxsize=8)
def _optional_null_key(feed: Feed) -> re.Pattern[bytes]:
    optional = "|".join(f for f in feed.fields if f not in feed.required)
    return re.compile(f',"(?:{optional})":null'.encode())


def encode(frame: pl.DataFrame, feed: Feed, fmt: str, drop_null_keys: bool = False) -> bytes:
    buffer = io.BytesIO()
    if fmt == "csv":
        frame.write_csv(buffer)
    elif fmt == "jsonl":
        frame.write_ndjson(buffer)
        if drop_null_keys:
            # Some exporters leave an empty optional field out instead of writing null
            # ("missing key = null"). Required keys stay: a key absent from a whole file
            # reads as a missing column.
            return _optional_null_key(feed).sub(b"", buffer.getvalue())
    else:
        table = frame.to_arrow()
        # Plain string columns (not string views) read everywhere, and Parquet with the
        # default compression is what upstream exporters produce.
        schema = pa.schema(
            [
                pa.field(
                    f.name,
                    pa.large_string()
                    if pa.types.is_string_view(f.type)
                    else pa.large_list(pa.large_string())
                    if pa.types.is_list(f.type) or pa.types.is_large_list(f.type)
                    else f.type,
                )
                for f in table.schema
            ]
        )
        pq.write_table(table.cast(schema), buffer, compression="snappy")
    return buffer.getvalue()


def write_atomic(path: Path, data: bytes) -> None:
    """Write as `<name>.tmp`, then rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)
