"""Anonymised research exports: aggregate tables under disclosure control, with a data
dictionary and a manifest, written atomically and recorded in the access log.

    write_research_export(snapshot, start, end, out_dir, partner=..., username=..., role=...)
    research_export_zip(snapshot, start, end, partner=..., username=..., role=...)
    record_download(zipped, username, role)
    record_view(partner, grain, k, start, end, username, role)

Every release goes to a research partner of the release register (`ocse.access.releases`)
and obeys it: the partner's grains, at least its k (the default), nothing overlapping what
it already holds at another grain or k. A refusal is checked before anything is computed
and logged as `denied` by the register. A folder export is recorded as released when it is
written; a zip when it is downloaded (`record_download`); tables shown on the research page
with `record_view`.

Both read only the serving snapshot. The same snapshot, dates, grain and k give
byte-identical files (no time of day is written anywhere), so re-running is safe: the
folder is replaced, atomically, by an identical one.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ocse.access import access_store
from ocse.access.releases import RELEASE_GRAINS, Release, release_register
from ocse.exports import sources
from ocse.exports.dictionary import dictionary_json, dictionary_markdown, load_definitions
from ocse.exports.periods import Period, whole_periods
from ocse.exports.publication import (
    MANIFEST,
    ExportError,
    Progress,
    Publication,
    check_replaceable,
    discard,
    log_export,
    publish_dir,
    sha256_file,
    staging_dir,
    write_json,
)
from ocse.exports.tables import (
    ALL,
    QUANTILE_DECIMALS,
    RATE_DECIMALS,
    ProtectedTable,
    protect_tables,
)

RESEARCH_GRAINS = RELEASE_GRAINS


@dataclass(frozen=True)
class TableSummary:
    name: str
    grain: str
    rows: int
    cells: int
    cells_suppressed: int
    files: tuple[str, ...]


@dataclass(frozen=True)
class ExportResult:
    name: str  # e.g. ocse_research_2025-01-01_2025-03-31_month_k10
    out_dir: Path | None  # None for an in-memory zip
    requested: tuple[date, date]
    covered: tuple[date, date]
    grain: str
    k: int
    policy_versions: tuple[int, ...]
    tables: tuple[TableSummary, ...]
    files: dict[str, str]  # file name -> sha256 (the manifest's own hash excepted)
    partner: str
    snapshot_run_id: str

    @property
    def cells_suppressed(self) -> int:
        return sum(t.cells_suppressed for t in self.tables)


@dataclass(frozen=True)
class ZippedExport:
    """The zip of an export, as it is downloaded: what its bytes are, to record them."""

    file_name: str  # <name>.zip
    data: bytes
    result: ExportResult
    sha256: str  # of data

    @property
    def partner(self) -> str:
        return self.result.partner

    @property
    def grain(self) -> str:
        return self.result.grain

    @property
    def k(self) -> int:
        return self.result.k

    @property
    def start(self) -> date:
        return self.result.covered[0]

    @property
    def end(self) -> date:
        return self.result.covered[1]


def export_name(start: date, end: date, grain: str, k: int) -> str:
    return f"ocse_research_{start}_{end}_{grain}_k{k}"


def build_research_publication(
    conn, start: date, end: date, *, grain: str, k: int, progress: Progress | None = None
) -> Publication:
    """The protected research tables for the whole periods within [start, end]."""
    say = progress or (lambda _line: None)
    if grain not in RESEARCH_GRAINS:
        raise ExportError(f"grain must be one of {', '.join(RESEARCH_GRAINS)}, not {grain!r}")
    info = sources.snapshot_info(conn)
    periods = whole_periods(start, end, grain)
    last_day = _last_complete_day(info)
    ended = [p for p in periods if p.end <= last_day]
    if not ended:
        raise ExportError(
            f"no {grain} within {start} .. {end} has ended by the snapshot's as-of date "
            f"({last_day + timedelta(days=1)}): its figures would still change"
        )
    if len(ended) < len(periods):
        say(f"leaving out {len(periods) - len(ended)} {grain}(s) not yet over at the snapshot's T")
    periods = ended
    weeks = periods if grain == "week" else _weeks_within(periods)
    cats = sources.categories(conn)
    say(f"computing {len(periods)} {grain}s, {periods[0].start} .. {periods[-1].end}")
    data = [
        sources.load_category_trends(conn, periods, cats),
        sources.load_takedown_sla(conn, periods, cats),
        sources.load_report_handling(conn, periods, cats),
        sources.load_case_outcomes(conn, periods, cats, info.reporting_tz),
    ]
    if weeks:
        data.append(sources.load_detection_quality(conn, weeks))
    if not _has_data(data):
        raise ExportError(
            f"the snapshot holds no takedowns, reports, cases or hits in "
            f"{periods[0].start} .. {periods[-1].end}"
        )
    say(f"disclosure control (k={k}) over {len(data)} tables")
    tables, _ = protect_tables(data, k)
    first, last = periods[0].start, periods[-1].end
    return Publication(
        kind="research",
        title="OCSE research export",
        requested=(start, end),
        periods=periods,
        k=k,
        info=info,
        policy_versions=sources.policy_versions(conn, first, last, info.reporting_tz),
        tables=tables,
    )


def _last_complete_day(info: sources.SnapshotInfo) -> date:
    from zoneinfo import ZoneInfo

    return info.as_of.astimezone(ZoneInfo(info.reporting_tz)).date() - timedelta(days=1)


def _weeks_within(periods: list[Period]) -> list[Period]:
    try:
        return whole_periods(periods[0].start, periods[-1].end, "week")
    except ValueError:
        return []


def _has_data(data) -> bool:
    return any(
        value
        for table in data
        for (_, group), row in table.values.items()
        if group == ALL
        for measure, value in row.items()
        if measure in table.spec.counts
    )


# --- files ----------------------------------------------------------------------------------


def _format(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def write_csv(table: ProtectedTable, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        columns = table.columns()
        writer.writerow(columns)
        for row in table.rows():
            writer.writerow([_format(row[c]) for c in columns])


def _arrow_schema(table: ProtectedTable) -> pa.Schema:
    fields = [
        pa.field("period_start", pa.date32(), nullable=False),
        pa.field("period_end", pa.date32(), nullable=False),
        pa.field(table.spec.dimension, pa.string(), nullable=False),
    ]
    for measure in table.data.measures:
        kind = pa.int64() if measure in table.spec.counts else pa.float64()
        fields.append(pa.field(measure, kind))
    fields.append(pa.field("suppressed", pa.string(), nullable=False))
    return pa.schema(fields)


def write_parquet(table: ProtectedTable, path: Path) -> None:
    schema = _arrow_schema(table)
    rows = table.rows()
    columns = {name: [row[name] for row in rows] for name in schema.names}
    pq.write_table(pa.Table.from_pydict(columns, schema=schema), path, compression="zstd")


def write_publication_files(publication: Publication, folder: Path, definitions) -> dict:
    """Every file of the export into `folder`; returns the manifest written last."""
    files: dict[str, str] = {}
    summaries = []
    for table in publication.tables:
        names = (f"{table.name}.csv", f"{table.name}.parquet")
        write_csv(table, folder / names[0])
        write_parquet(table, folder / names[1])
        summaries.append(
            {
                "name": table.name,
                "grain": table.data.periods[0].grain,
                "rows": len(table.rows()),
                "cells": table.published_cells + table.suppressed_cells,
                "cells_suppressed": table.suppressed_cells,
                "files": list(names),
            }
        )
    content = dictionary_json(publication, definitions)
    write_json(folder / "data_dictionary.json", content)
    (folder / "data_dictionary.md").write_text(dictionary_markdown(content), encoding="utf-8")
    for path in sorted(folder.iterdir()):
        files[path.name] = sha256_file(path)
    manifest = {
        **publication.describe(),
        "disclosure_control": {
            "k": publication.k,
            "rounding": {"rates": RATE_DECIMALS, "quantiles": QUANTILE_DECIMALS},
            "method": "primary suppression below k (zeros too); complementary suppression "
            "until no withheld cell is recoverable from the published equations; rates and "
            "quantiles follow their counts (see data_dictionary.md)",
        },
        "tables": summaries,
        "files": files,
        "note": f"sha256 of every file of the export except {MANIFEST} itself",
    }
    write_json(folder / MANIFEST, manifest)
    return manifest


def _result(
    publication: Publication, manifest: dict, out_dir: Path | None, partner: str
) -> ExportResult:
    start, end = publication.covered
    return ExportResult(
        name=export_name(start, end, publication.grain, publication.k),
        out_dir=out_dir,
        requested=publication.requested,
        covered=publication.covered,
        grain=publication.grain,
        k=publication.k,
        policy_versions=tuple(publication.policy_versions),
        tables=tuple(
            TableSummary(
                name=t["name"],
                grain=t["grain"],
                rows=t["rows"],
                cells=t["cells"],
                cells_suppressed=t["cells_suppressed"],
                files=tuple(t["files"]),
            )
            for t in manifest["tables"]
        ),
        files=dict(manifest["files"]),
        partner=partner,
        snapshot_run_id=publication.info.run_id,
    )


def _log_detail(result: ExportResult, destination: str, file: str, digest: str, size: int):
    """What the access log keeps: who asked for which period and which bytes were delivered
    to which partner; never a data value."""
    return {
        "kind": "research",
        "partner": result.partner,
        "from": str(result.requested[0]),
        "to": str(result.requested[1]),
        "covered_from": str(result.covered[0]),
        "covered_to": str(result.covered[1]),
        "grain": result.grain,
        "k": result.k,
        "tables": [t.name for t in result.tables],
        "files": sorted([*result.files, MANIFEST]),
        "destination": destination,
        "snapshot_run_id": result.snapshot_run_id,
        "file": file,
        "sha256": digest,
        "size_bytes": size,
    }


def _release(result: ExportResult, channel: str, file: str, digest: str, size: int, who):
    """Record the release in the register (its rules checked again, atomically) before the
    bytes leave: a release the register refuses or cannot record is never delivered."""
    username, role = who
    return release_register().record(
        result.partner,
        result.grain,
        result.k,
        *result.covered,
        username=username,
        role=role,
        channel=channel,
        name=file,
        sha256=digest,
        size_bytes=size,
    )


def _cleared(partner: str, start: date, end: date, grain: str | None, k: int | None, who):
    """The grain and k of a request (the partner's by default) once the register allows
    it for the whole periods asked for; a refusal is logged as `denied` and raised."""
    username, role = who
    register = release_register()
    grain, k = register.terms(partner, grain, k)
    first, last, target = start, end, "research"
    if grain in RESEARCH_GRAINS:
        periods = whole_periods(start, end, grain)
        first, last = periods[0].start, periods[-1].end
        if k is not None:
            target = export_name(first, last, grain, k)
    register.check(partner, grain, k, first, last, username=username, role=role, target=target)
    return grain, k


def _prepare(snapshot_path: Path, start: date, end: date, partner: str, grain, k, who, progress):
    grain, k = _cleared(partner, start, end, grain, k, who)
    conn = sources.open_published(snapshot_path)
    try:
        publication = build_research_publication(
            conn, start, end, grain=grain, k=k, progress=progress
        )
        definitions = load_definitions(conn)
    finally:
        conn.close()
    return publication, definitions


def write_research_export(
    snapshot_path: Path,
    start: date,
    end: date,
    out_dir: Path,
    *,
    partner: str,
    grain: str | None = None,
    k: int | None = None,
    username: str,
    role: str,
    progress: Progress | None = None,
) -> ExportResult:
    """Write the research export for `partner` of the whole weeks/months within [start, end]
    into `out_dir` (created or replaced atomically; a folder holding anything but an earlier
    research export is refused). The grain defaults to the partner's only one, k to its
    registered k; the register refuses what the partner may not receive."""
    say = progress or (lambda _line: None)
    out_dir = Path(out_dir)
    check_replaceable(out_dir, "research")
    who = (username, role)
    publication, definitions = _prepare(
        Path(snapshot_path), start, end, partner, grain, k, who, progress
    )
    tmp = staging_dir(out_dir)
    try:
        manifest = write_publication_files(publication, tmp, definitions)
        result = _result(publication, manifest, out_dir, partner)
        # the manifest lists every other file's sha256: its own hash stands for the folder
        digest = sha256_file(tmp / MANIFEST)
        size = sum(path.stat().st_size for path in tmp.iterdir())
        _release(result, "export", result.name, digest, size, who)
        detail = _log_detail(result, str(out_dir), result.name, digest, size)
        log_export(username, role, result.name, detail)
        publish_dir(tmp, out_dir, "research")
    except BaseException:
        discard(tmp)
        raise
    say(f"wrote {len(result.files) + 1} files to {out_dir}")
    return result


def research_export_zip(
    snapshot_path: Path,
    start: date,
    end: date,
    *,
    partner: str,
    grain: str | None = None,
    k: int | None = None,
    username: str,
    role: str,
) -> ZippedExport:
    """The same export as one zip file in memory, checked against the register and its
    preparation logged as an export. It is released when downloaded: `record_download`."""
    who = (username, role)
    publication, definitions = _prepare(
        Path(snapshot_path), start, end, partner, grain, k, who, None
    )
    with tempfile.TemporaryDirectory(prefix="ocse-export-") as folder:
        manifest = write_publication_files(publication, Path(folder), definitions)
        result = _result(publication, manifest, None, partner)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(Path(folder).iterdir()):
                # a fixed date: the same export gives the same bytes
                info = zipfile.ZipInfo(
                    f"{result.name}/{path.name}", date_time=(1980, 1, 1, 0, 0, 0)
                )
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, path.read_bytes())
    data = buffer.getvalue()
    zipped = ZippedExport(
        file_name=f"{result.name}.zip",
        data=data,
        result=result,
        sha256=hashlib.sha256(data).hexdigest(),
    )
    detail = _log_detail(result, "download", zipped.file_name, zipped.sha256, len(data))
    log_export(username, role, result.name, detail)
    return zipped


def record_download(zipped: ZippedExport, username: str, role: str) -> Release:
    """`on_click` of the download button: the zip's bytes recorded as released to its
    partner (refused, and logged as `denied`, if another release got there first), and
    the access log's `download` entry."""
    size = len(zipped.data)
    release = _release(
        zipped.result, "download", zipped.file_name, zipped.sha256, size, (username, role)
    )
    detail = _log_detail(zipped.result, "download", zipped.file_name, zipped.sha256, size)
    access_store().log(username, role, "download", zipped.file_name, detail)
    return release


def record_view(
    partner: str, grain: str, k: int, start: date, end: date, username: str, role: str
) -> Release:
    """Before the research page shows a partner's tables for [start, end] (the periods
    covered): shown is released. Refused, and logged as `denied`, as a file would be."""
    return release_register().record(
        partner, grain, k, start, end, username=username, role=role, channel="view"
    )


def read_manifest(folder: Path) -> dict:
    return json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
