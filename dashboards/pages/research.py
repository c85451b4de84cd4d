"""Research data: the anonymised aggregate tables research partners may take away, exactly
as `ocse export research` writes them (disclosure control applied: counts under k and the
cells that would reveal them withheld), and the export itself as a download.

Everything shown here comes from `ocse.exports.research`, never from the marts directly:
a researcher sees only what has passed disclosure control. The export is recorded in the
access log by the export module, the download by this page.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboards import auth
from dashboards.components import open_page
from dashboards.settings import get_dashboard_settings
from ocse.exports.publication import ExportError
from ocse.exports.research import (
    RESEARCH_GRAINS,
    build_research_publication,
    research_export_zip,
)
from ocse.serving import open_snapshot

TEXT = {
    "en": {
        "title": "Research data",
        "intro": "Anonymised aggregates by week or month and category, with small cells "
        "withheld. No account, content, report or case identifier and no time finer than a "
        "day is ever included.",
        "from": "From",
        "to": "To",
        "grain": "Grain",
        "grains": {"week": "Week", "month": "Month"},
        "k": "Threshold k",
        "k_help": "Counts below k are withheld, with further cells withheld so that none "
        "can be worked out from totals. Never below 5.",
        "summary": "{tables} tables, {periods} to {end}, k = {k}: {suppressed} of {cells} "
        "cells withheld.",
        "suppressed_note": "Withheld cells are empty; the `suppressed` column names them.",
        "prepare": "Prepare the export (CSV, Parquet, data dictionary, manifest)",
        "download": "Download {name}",
        "prepared": "Export ready: {files} files, sha256 of each in its manifest.",
        "tables": {
            "category_trends": "Category trends",
            "takedown_sla": "Takedown SLA compliance",
            "report_handling": "Report handling",
            "case_outcomes": "Case outcomes and victim support",
            "detection_quality": "Detection quality",
        },
    },
    "zh": {
        "title": "研究数据",
        "intro": "按周或月及类别汇总的匿名数据，小单元格已隐藏。"
        "绝不包含账号、内容、举报或案件标识，时间最细到日。",
        "from": "起",
        "to": "止",
        "grain": "粒度",
        "grains": {"week": "周", "month": "月"},
        "k": "阈值 k",
        "k_help": "小于 k 的计数被隐藏，并隐藏其他必要单元格，使其无法由合计推算。不低于 5。",
        "summary": "{tables} 张表，{periods} 至 {end}，k = {k}：{cells} 个单元格中隐藏 "
        "{suppressed} 个。",
        "suppressed_note": "被隐藏的单元格为空；`suppressed` 列列出其名称。",
        "prepare": "生成导出文件（CSV、Parquet、数据字典、清单）",
        "download": "下载 {name}",
        "prepared": "导出已就绪：{files} 个文件，各文件的 sha256 见清单。",
        "tables": {
            "category_trends": "类别趋势",
            "takedown_sla": "下架时效达标",
            "report_handling": "举报处理",
            "case_outcomes": "案件结果与被害人救助",
            "detection_quality": "检测质量",
        },
    },
}

ctx = open_page("research", TEXT, ())
text = ctx.text
settings = get_dashboard_settings()
as_of_day = (ctx.info.as_of.date() if ctx.info.as_of else date.today()) - timedelta(days=1)

columns = st.columns([1, 1, 1, 1])
with columns[0]:
    start = st.date_input(
        text["from"], value=as_of_day.replace(day=1) - timedelta(days=90), key="research_from"
    )
with columns[1]:
    end = st.date_input(text["to"], value=as_of_day, key="research_to")
with columns[2]:
    grain = (
        st.segmented_control(
            text["grain"],
            options=list(RESEARCH_GRAINS),
            default="month",
            format_func=text["grains"].__getitem__,
            key="research_grain",
        )
        or "month"
    )
with columns[3]:
    k = st.number_input(
        text["k"],
        min_value=5,
        max_value=1000,
        value=max(5, settings.disclosure_k),
        step=1,
        help=text["k_help"],
        key="research_k",
    )


@st.cache_data(max_entries=32, show_spinner=False)
def protected_tables(
    snapshot: tuple, role: str, start: date, end: date, grain: str, k: int
) -> tuple[dict[str, pd.DataFrame], dict[str, int]] | str:
    """The export's tables as shown; `role` keys the cache like every dashboard query."""
    conn = open_snapshot(Path(snapshot[0]))
    try:
        publication = build_research_publication(conn, start, end, grain=grain, k=k)
    except ExportError as exc:
        return str(exc)
    finally:
        conn.close()
    frames = {
        table.name: pd.DataFrame(list(table.rows()), columns=table.columns())
        for table in publication.tables
    }
    counts = {
        "cells": sum(t.published_cells + t.suppressed_cells for t in publication.tables),
        "suppressed": sum(t.suppressed_cells for t in publication.tables),
        "periods": str(publication.covered[0]),
        "end": str(publication.covered[1]),
    }
    return frames, counts


result = protected_tables(tuple(ctx.snapshot), ctx.viewer.role, start, end, grain, int(k))
if isinstance(result, str):
    st.warning(result, icon=":material/info:")
    st.stop()
frames, counts = result
st.success(text["summary"].format(tables=len(frames), k=int(k), **counts), icon=":material/shield:")
st.caption(text["suppressed_note"])
names: dict = text["tables"]
tabs = st.tabs([names.get(name, name) for name in frames])
for tab, (name, frame) in zip(tabs, frames.items(), strict=True):
    with tab:
        st.dataframe(frame, hide_index=True, width="stretch", key=f"research_{name}")

if st.button(text["prepare"], icon=":material/inventory_2:", key="research_prepare"):
    zipped = research_export_zip(
        Path(ctx.snapshot.path),
        start,
        end,
        grain=grain,
        k=int(k),
        username=ctx.viewer.username,
        role=ctx.viewer.role,
    )
    st.session_state["research_zip"] = zipped
zipped = st.session_state.get("research_zip")
if zipped is not None:
    st.caption(text["prepared"].format(files=len(zipped.result.files) + 1))
    st.download_button(
        text["download"].format(name=zipped.file_name),
        data=zipped.data,
        file_name=zipped.file_name,
        mime="application/zip",
        icon=":material/download:",
        on_click=auth.log_download,
        args=(
            ctx.viewer,
            zipped.file_name,
            {"from": str(start), "to": str(end), "grain": grain, "k": int(k)},
        ),
        key="research_download",
    )
