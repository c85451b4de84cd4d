"""The external assessment report: one self-contained HTML file and its PDF, for a quarter.

    write_assessment_report(snapshot, "2025Q1", out_dir, k=..., username=..., role=...)

The report reads only the serving snapshot and applies the research exports' disclosure
control (`ocse.exports`) at quarter grain, to the assessed quarter and the three before it.
Each quarter is protected on its own, so a quarter shows the same cells in every report
that includes it. Every number sits in a table cell that names its table, period, group and
measure (`data-*` attributes), which is how the tests compare it with the marts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from ocse.exports import sources
from ocse.exports.dictionary import disclosure_rules, load_definitions
from ocse.exports.periods import Period, parse_quarter, previous
from ocse.exports.publication import (
    MANIFEST,
    ExportError,
    Progress,
    Publication,
    check_replaceable,
    discard,
    log_export,
    publish_dir,
    resolve_k,
    sha256_file,
    staging_dir,
    write_json,
)
from ocse.exports.tables import ALL, protect_tables
from ocse.report.html import render_report
from ocse.report.pdf import print_pdf

QUARTERS_SHOWN = 4


@dataclass(frozen=True)
class ReportResult:
    out_dir: Path
    html: Path
    pdf: Path | None
    period: str
    k: int
    files: dict[str, str]  # file name -> sha256
    cells_suppressed: dict[str, int]  # table -> cells withheld


@dataclass
class Assessment:
    publication: Publication
    quarter: Period
    quarters: list[Period]
    scopes: list[Period]  # data quality: the quarter, and every file up to T
    categories: sources.Categories
    definitions: dict
    provisional: bool


def build_assessment(conn, quarter: Period, k: int, progress: Progress | None = None):
    say = progress or (lambda _line: None)
    info = sources.snapshot_info(conn)
    quarters = previous(quarter, QUARTERS_SHOWN)
    cats = sources.categories(conn)
    say(f"computing {quarters[0].label} .. {quarter.label}")
    tables = [
        sources.load_takedown_sla(conn, quarters, cats),
        sources.load_report_handling(conn, quarters, cats),
        sources.load_case_outcomes(conn, quarters, cats, info.reporting_tz),
        sources.load_list_statistics(conn, quarters, info),
    ]
    if not any(t.values[(quarter.label, ALL)][m] for t in tables[:3] for m in t.spec.counts):
        raise ExportError(
            f"the snapshot holds no takedowns, reports or cases in {quarter.label} "
            f"({quarter.start} .. {quarter.end})"
        )
    as_of_day = info.as_of.astimezone(ZoneInfo(info.reporting_tz)).date()
    span = sources.ingestion_span(conn, info)
    scopes = [quarter]
    if span is not None:
        scopes.append(Period(span[0], span[1], "span"))
    tables.append(sources.load_data_quality(conn, scopes, info))
    say(f"disclosure control (k={k}) over {len(tables)} tables")
    protected, _ = protect_tables(tables, k)
    publication = Publication(
        kind="assessment",
        title=f"OCSE external assessment report {quarter.label}",
        requested=(quarter.start, quarter.end),
        periods=quarters,
        k=k,
        info=info,
        policy_versions=sources.policy_versions(
            conn, quarter.start, quarter.end, info.reporting_tz
        ),
        tables=protected,
    )
    return Assessment(
        publication=publication,
        quarter=quarter,
        quarters=quarters,
        scopes=scopes,
        categories=cats,
        definitions=load_definitions(conn),
        provisional=quarter.end >= as_of_day,
    )


def write_assessment_report(
    snapshot_path: Path,
    period: str,
    out_dir: Path,
    *,
    k: int | None = None,
    username: str,
    role: str,
    pdf: bool = True,
    progress: Progress | None = None,
) -> ReportResult:
    """Write `assessment_<period>.html` (and `.pdf`) and a manifest into `out_dir`, replaced
    atomically, and record the export in the access log."""
    say = progress or (lambda _line: None)
    quarter = parse_quarter(period)
    k = resolve_k(k)
    out_dir = Path(out_dir)
    check_replaceable(out_dir, "assessment")
    conn = sources.open_published(Path(snapshot_path))
    try:
        assessment = build_assessment(conn, quarter, k, progress)
    finally:
        conn.close()
    tmp = staging_dir(out_dir)
    try:
        stem = f"assessment_{quarter.label}"
        html_path = tmp / f"{stem}.html"
        html_path.write_text(render_report(assessment), encoding="utf-8")
        say(f"rendered {html_path.name}")
        if pdf:
            say("printing the PDF with headless Chromium")
            print_pdf(html_path, tmp / f"{stem}.pdf")
        files = {p.name: sha256_file(p) for p in sorted(tmp.iterdir())}
        suppressed = {t.name: t.suppressed_cells for t in assessment.publication.tables}
        write_json(
            tmp / MANIFEST,
            {
                **assessment.publication.describe(),
                "period": quarter.label,
                "provisional": assessment.provisional,
                "disclosure_control": disclosure_rules(k),
                "tables": [
                    {
                        "name": t.name,
                        "cells": t.published_cells + t.suppressed_cells,
                        "cells_suppressed": t.suppressed_cells,
                    }
                    for t in assessment.publication.tables
                ],
                "files": files,
                "note": f"sha256 of every file of the report except {MANIFEST} itself",
            },
        )
        log_export(
            username,
            role,
            f"assessment_report_{quarter.label}",
            {
                "kind": "assessment",
                "period": quarter.label,
                "from": str(quarter.start),
                "to": str(quarter.end),
                "k": k,
                "tables": [t.name for t in assessment.publication.tables],
                "files": sorted([*files, MANIFEST]),
                "destination": str(out_dir),
                "snapshot_run_id": assessment.publication.info.run_id,
            },
        )
        publish_dir(tmp, out_dir, "assessment")
    except BaseException:
        discard(tmp)
        raise
    return ReportResult(
        out_dir=out_dir,
        html=out_dir / f"{stem}.html",
        pdf=out_dir / f"{stem}.pdf" if pdf else None,
        period=quarter.label,
        k=k,
        files=files,
        cells_suppressed=suppressed,
    )
