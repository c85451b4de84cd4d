"""The quarterly assessment report, downloadable from the dashboard (methodology page).

The report is the one `ocse report assessment` writes (ocse/report/assessment.py): built
from the serving snapshot on screen, under the research exports' disclosure control, and
recorded in the access log by the report module when it is prepared; each download is
recorded again by the button (who took which file). Offered to the governance roles (the
assessment panel first); researchers take aggregates through the research page instead.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from datetime import date
from pathlib import Path

import streamlit as st

from dashboards import auth
from dashboards import mart_queries as mq
from ocse.access import Role

REPORT_ROLES = frozenset({Role.ASSESSOR, Role.LEADERSHIP, Role.ADMIN})


def quarters(first: date, last: date) -> list[str]:
    """`YYYYQn` of every quarter from the one holding `first` to the one holding `last`,
    newest first."""
    out = []
    year, quarter = first.year, (first.month - 1) // 3 + 1
    while (year, quarter) <= (last.year, (last.month - 1) // 3 + 1):
        out.append(f"{year}Q{quarter}")
        year, quarter = (year + 1, 1) if quarter == 4 else (year, quarter + 1)
    return out[::-1]


@st.cache_data(max_entries=8, show_spinner=False)
def _prepare(snapshot: tuple, quarter: str, username: str, role: str) -> dict:
    """Builds the report once per (snapshot, quarter, user); the bytes stay in this cache
    only, never on disk after the call."""
    from ocse.report.assessment import write_assessment_report
    from ocse.report.pdf import PdfError

    with tempfile.TemporaryDirectory(prefix="ocse-assessment-") as tmp:
        out = Path(tmp) / "report"
        pdf_error = None
        try:
            result = write_assessment_report(
                Path(snapshot[0]), quarter, out, username=username, role=role, pdf=True
            )
        except PdfError as exc:
            pdf_error = str(exc)
            result = write_assessment_report(
                Path(snapshot[0]), quarter, out, username=username, role=role, pdf=False
            )
        return {
            "html": result.html.read_bytes(),
            "html_name": result.html.name,
            "pdf": result.pdf.read_bytes() if result.pdf else None,
            "pdf_name": result.pdf.name if result.pdf else None,
            "pdf_error": pdf_error,
            "k": result.k,
            "sha256": result.files,
        }


def section(ctx, text: Mapping[str, object]) -> None:
    if ctx.viewer.role not in REPORT_ROLES:
        return
    from ocse.exports.publication import resolve_k

    bounds = mq.data_days(ctx.snapshot)
    if bounds is None:
        return
    st.subheader(text["report_heading"])
    st.caption(text["report_caption"].format(k=resolve_k(None)))
    left, right = st.columns([1, 3])
    with left:
        quarter = st.selectbox(text["report_quarter"], quarters(*bounds), key="assessment_quarter")
    with right:
        st.write("")
        prepare = st.button(
            text["report_prepare"], icon=":material/description:", key="assessment_prepare"
        )
    key = ("assessment_report", tuple(ctx.snapshot), quarter)
    if prepare:
        with st.spinner(text["report_preparing"].format(quarter=quarter)):
            st.session_state[key] = _prepare(
                tuple(ctx.snapshot), quarter, ctx.viewer.username, ctx.viewer.role
            )
    report = st.session_state.get(key)
    if report is None:
        return
    st.success(text["report_ready"].format(quarter=quarter, k=report["k"]), icon=":material/check:")
    html, pdf = st.columns(2)
    with html:
        _download(ctx, text, report, quarter, "html", "text/html", ":material/download:")
    with pdf:
        if report["pdf"] is not None:
            _download(
                ctx, text, report, quarter, "pdf", "application/pdf", ":material/picture_as_pdf:"
            )
        else:
            st.caption(text["report_no_pdf"].format(error=report["pdf_error"]))


def _download(ctx, text, report: dict, quarter: str, kind: str, mime: str, icon: str) -> None:
    """One of the report's files as a logged download (who, which file, quarter, k, sha256)."""
    name = report[f"{kind}_name"]
    st.download_button(
        text[f"report_{kind}"],
        data=report[kind],
        file_name=name,
        mime=mime,
        icon=icon,
        on_click=auth.log_download,
        args=(
            ctx.viewer,
            name,
            {"quarter": quarter, "k": report["k"], "sha256": report["sha256"].get(name)},
        ),
        key=f"assessment_{kind}",
    )
