"""Research data: the anonymised aggregate tables research partners may take away, exactly
as `ocse export research` writes them (disclosure control applied: counts under k and the
cells that would reveal them withheld), and the export itself as a download.

Everything shown here comes from `ocse.exports.research`, never from the marts directly:
a researcher sees only what has passed disclosure control. The export is recorded in the
access log by the export module, the download by this page.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import partial
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboards import auth, deep_links
from dashboards import mart_queries as mq
from dashboards.components import open_page
from dashboards.labels import DETECTION_METHODS, label
from dashboards.settings import get_dashboard_settings
from ocse.access import ReleaseRefused, release_register
from ocse.exports.publication import ExportError
from ocse.exports.research import (
    build_research_publication,
    record_download,
    record_view,
    research_export_zip,
)
from ocse.serving import open_snapshot

MEASURES = {
    # measure / column -> (English, Chinese)
    "period_start": ("From", "起"),
    "period_end": ("To", "止"),
    "category_code": ("Category", "类别"),
    "detection_method": ("Detection method", "检测方式"),
    "reports_received": ("Reports received", "收到举报"),
    "received": ("Reports received", "收到举报"),
    "takedowns": ("Takedowns", "下架数"),
    "proactive_takedowns": ("Found proactively", "主动发现"),
    "proactive_share": ("Proactive share", "主动发现占比"),
    "prevented": ("Prevented uploads", "拦截上传"),
    "exposed": ("Visible before takedown", "下架前可见"),
    "within_sla": ("Within SLA", "时限内"),
    "breached": ("Breached", "超时"),
    "evidence_on_time": ("Evidence on time", "证据按时保全"),
    "compliance_rate": ("Compliance", "达标率"),
    "evidence_on_time_rate": ("Evidence on time (rate)", "证据按时率"),
    "median_exposure_minutes": ("Median exposure (min)", "暴露时长中位数（分钟）"),
    "p90_exposure_minutes": ("p90 exposure (min)", "暴露时长 P90（分钟）"),
    "ack_decided": ("Acknowledgements decided", "已判定受理"),
    "ack_on_time": ("Acknowledged on time", "按时受理"),
    "resolution_decided": ("Resolutions decided", "已判定处理"),
    "resolution_on_time": ("Resolved on time", "按时处理"),
    "resolved": ("Resolved", "已处理"),
    "feedback_sent": ("Feedback sent", "已反馈"),
    "ack_compliance_rate": ("Acknowledgement compliance", "受理达标率"),
    "resolution_compliance_rate": ("Resolution compliance", "处理达标率"),
    "feedback_rate": ("Feedback rate", "反馈率"),
    "cases_opened": ("Cases opened", "立案"),
    "confirmed": ("Confirmed", "确认"),
    "referred": ("Referred", "移送"),
    "referral_decided": ("Referrals decided", "已判定移送"),
    "referral_on_time": ("Referred on time", "按时移送"),
    "authority_accepted": ("Accepted by the authority", "主管机关受理"),
    "prosecuted": ("Prosecuted", "起诉"),
    "convicted": ("Convicted", "定罪"),
    "victims": ("Victims", "被害人"),
    "support_offered": ("Support offered", "已提供救助"),
    "support_accepted": ("Support accepted", "接受救助"),
    "referral_compliance_rate": ("Referral compliance", "移送达标率"),
    "median_hours_to_referral": ("Median hours to referral", "移送用时中位数（小时）"),
    "hits": ("Hits", "命中"),
    "reviewed": ("Reviewed", "已复核"),
    "false_positives": ("False positives", "误报"),
    "pending": ("Pending review", "待复核"),
    "precision": ("Precision", "准确率"),
    "median_minutes_to_review": ("Median minutes to review", "复核用时中位数（分钟）"),
    "suppressed": ("Withheld", "已隐藏"),
}
# Row groups that are not categories or methods: the total and the CSAM subtotal.
GROUPS = {"all": ("All", "合计"), "csam": ("CSAM (both categories)", "CSAM（两类合计）")}

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
        "grain_nouns": {"week": "week", "month": "month"},
        "k": "Threshold k",
        "k_help": "Counts below k are withheld, with further cells withheld so that none "
        "can be worked out from totals. Never below 5.",
        "periods": "Periods",
        "partner": "Research partner",
        "no_partner": "Your account is not registered to a research partner, so no release "
        "is open to it. The data steward registers partners and their members: "
        "`ocse releases assign USERNAME PARTNER`.",
        "periods_help": "Whole weeks or months with data, up to the last complete one before "
        "the data's as-of day.",
        "no_periods": "The data holds no complete {grain} yet (it starts {first}).",
        "summary": "{tables} tables, {periods} to {end}, k = {k}: {suppressed} of {cells} "
        "cells withheld.",
        "suppressed_note": "Why cells are withheld: {primary} are counts below k = {k} (too few "
        "to publish); {secondary} more are withheld so that none of those can be worked out "
        "from a total or a neighbouring cell, or are rates and medians computed from a "
        "withheld count. A withheld cell is empty; the Withheld column names it.",
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
        "grain_nouns": {"week": "周", "month": "月"},
        "k": "阈值 k",
        "k_help": "小于 k 的计数被隐藏，并隐藏其他必要单元格，使其无法由合计推算。不低于 5。",
        "periods": "时段",
        "partner": "研究合作方",
        "no_partner": "您的账号尚未登记到任何研究合作方，因此没有可发布的数据。"
        "数据管理员负责登记合作方及其成员：`ocse releases assign USERNAME PARTNER`。",
        "periods_help": "有数据的整周或整月，截至数据截至日前最后一个完整周期。",
        "no_periods": "数据中尚无完整的{grain}（数据始于 {first}）。",
        "summary": "{tables} 张表，{periods} 至 {end}，k = {k}：{cells} 个单元格中隐藏 "
        "{suppressed} 个。",
        "suppressed_note": "隐藏原因：{primary} 个为小于 k = {k} 的计数（过少，不可发布）；另有 "
        "{secondary} 个被隐藏，使前者无法由合计或相邻单元格推算，或为基于被隐藏计数的比率和中位数。"
        "被隐藏的单元格为空，“已隐藏”列列出其名称。",
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


def group_label(ctx, code: str) -> str:
    if code in GROUPS:
        return label(GROUPS, code)
    if code in DETECTION_METHODS:
        return label(DETECTION_METHODS, code)
    return ctx.category(code)


def whole_periods(first: date, as_of_day: date, grain: str) -> list[tuple[date, date]]:
    """(start, end) of every whole week or month from the first that starts on or after the
    data's first day to the last that ends by `as_of_day`."""
    out = []
    if grain == "week":
        start = first + timedelta(days=(7 - first.weekday()) % 7)
        while start + timedelta(days=6) <= as_of_day:
            out.append((start, start + timedelta(days=6)))
            start += timedelta(days=7)
        return out
    start = first if first.day == 1 else (first.replace(day=1) + timedelta(days=32)).replace(day=1)
    while True:
        end = (start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        if end > as_of_day:
            return out
        out.append((start, end))
        start = end + timedelta(days=1)


def below_k_cells(table) -> int:
    """Withheld count cells whose own value is below k (the primary suppressions); the rest
    were withheld to protect them. Only the number of cells leaves this function."""
    return sum(
        1
        for (period, group, measure), cell in table.cells.items()
        if cell.status == "suppressed"
        and measure in table.data.counts
        and (table.data.values[(period, group)][measure] or 0) < table.k
    )


def _periods_from_url(choices: list[tuple[date, date]], raw: str):
    """`2026-09-01_2026-11-30` -> the slider's (first period, last period), or None when the
    dates are not the start and end of whole periods on offer."""
    first, last = deep_links.date_range(choices[0][0], choices[-1][1])(raw) or (None, None)
    starts = [p for p in choices if p[0] == first]
    ends = [p for p in choices if p[1] == last]
    return (starts[0], ends[0]) if starts and ends else None


# The tables themselves come from ocse.exports.research (ocse/exports/sources.py), which
# reads these marts.
ctx = open_page(
    "research",
    TEXT,
    (
        "fct_content_takedowns",
        "fct_cases",
        "fct_user_tier_history",
        "ops_ingest_ledger",
        "dim_policy_versions",
        "rpt_category_trends_weekly",
        "rpt_detection_quality_weekly",
    ),
)
text = ctx.text
settings = get_dashboard_settings()
as_of_day = (ctx.info.as_of.date() if ctx.info.as_of else date.today()) - timedelta(days=1)

# What may be released is the data steward's decision (the release register, `ocse releases`):
# a researcher gets their partner's grains and k; an administrator previews any partner's.
register = release_register(settings)
if ctx.viewer.role == "researcher":
    partner = register.partner_of(ctx.viewer.username)
else:
    partners = register.partners()
    by_name = {p.name: p for p in partners}
    deep_links.restore("research_partner", "partner", by_name.get)
    partner = (
        st.selectbox(
            text["partner"], partners, format_func=lambda p: p.name, key="research_partner"
        )
        if partners
        else None
    )
    if partners:
        deep_links.publish("research_partner", "partner", partner, partners[0], lambda p: p.name)
if partner is None:
    auth.log_refusal("release", "research", {"reason": "no_partner"})
    st.info(text["no_partner"], icon=":material/how_to_reg:")
    st.stop()

bounds = mq.data_days(ctx.snapshot)
columns = st.columns([1, 3, 1])
with columns[0]:
    # Grain, periods and k are in the URL like every filter; a link that asks for what
    # the register does not allow is refused below like a choice made on screen.
    default_grain = "month" if "month" in partner.grains else partner.grains[0]
    restored = deep_links.restore("research_grain", "grain", deep_links.one_of(partner.grains))
    grain = (
        st.segmented_control(
            text["grain"],
            options=list(partner.grains),
            default=None if restored else default_grain,
            format_func=text["grains"].__getitem__,
            key="research_grain",
        )
        or partner.grains[0]
    )
    deep_links.publish("research_grain", "grain", grain, default_grain)
# Only whole periods the data covers: a period before the data starts would publish a wall
# of withheld zeros, and a partial one a count that is not the period's.
choices = whole_periods(bounds[0], as_of_day, grain) if bounds else []
if not choices:
    st.info(
        text["no_periods"].format(
            grain=text["grain_nouns"][grain], first=bounds[0] if bounds else "–"
        ),
        icon=":material/hourglass_empty:",
    )
    st.stop()
with columns[1]:
    if len(choices) == 1:
        first_period = last_period = choices[0]
        st.caption(f"{text['periods']}: {choices[0][0]} – {choices[0][1]}")
    else:
        restored = deep_links.restore(
            f"research_periods_{grain}", "periods", partial(_periods_from_url, choices)
        )
        first_period, last_period = st.select_slider(
            text["periods"],
            options=choices,
            value=None if restored else (choices[0], choices[-1]),
            format_func=lambda p: f"{p[0]:%Y-%m-%d}" if grain == "week" else f"{p[0]:%Y-%m}",
            help=text["periods_help"],
            key=f"research_periods_{grain}",
        )
start, end = first_period[0], last_period[1]
deep_links.publish(
    f"research_periods_{grain}",
    "periods",
    (start, end),
    (choices[0][0], choices[-1][1]),
    deep_links.format_range,
)
with columns[2]:
    restored = deep_links.restore("research_k", "k", deep_links.integer(5, 1000))
    k = st.number_input(
        text["k"],
        min_value=5,
        max_value=1000,
        value=None if restored else partner.k,
        step=1,
        help=text["k_help"],
        key="research_k",
    )
    k = partner.k if k is None else int(k)
deep_links.publish("research_k", "k", k, partner.k)


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
        "primary": sum(below_k_cells(t) for t in publication.tables),
        "periods": str(publication.covered[0]),
        "end": str(publication.covered[1]),
    }
    return frames, counts


try:
    record_view(partner.name, grain, int(k), start, end, ctx.viewer.username, ctx.viewer.role)
except ReleaseRefused as refused:  # logged as denied by the register
    st.error(str(refused), icon=":material/block:")
    st.stop()
result = protected_tables(tuple(ctx.snapshot), ctx.viewer.role, start, end, grain, int(k))
if isinstance(result, str):
    st.warning(result, icon=":material/info:")
    st.stop()
frames, counts = result
primary = counts.pop("primary")
st.success(text["summary"].format(tables=len(frames), k=int(k), **counts), icon=":material/shield:")
st.caption(
    text["suppressed_note"].format(
        primary=f"{primary:,}", secondary=f"{counts['suppressed'] - primary:,}", k=int(k)
    )
)
names: dict = text["tables"]
tabs = st.tabs([names.get(name, name) for name in frames])
for tab, (name, frame) in zip(tabs, frames.items(), strict=True):
    with tab:
        shown = frame.copy()
        for column in ("category_code", "detection_method"):
            if column in shown.columns:
                shown[column] = [group_label(ctx, v) for v in shown[column]]
        shown["suppressed"] = [
            ", ".join(label(MEASURES, m) for m in v.split("|")) if v else ""
            for v in shown["suppressed"]
        ]
        config = {
            column: st.column_config.NumberColumn(label(MEASURES, column), format="percent")
            if column.endswith(("_rate", "_share")) or column == "precision"
            else st.column_config.Column(label(MEASURES, column))
            for column in shown.columns
        }
        st.dataframe(
            shown,
            hide_index=True,
            width="stretch",
            column_config=config,
            placeholder="–",
            key=f"research_{name}",
        )

if st.button(text["prepare"], icon=":material/inventory_2:", key="research_prepare"):
    zipped = research_export_zip(
        Path(ctx.snapshot.path),
        start,
        end,
        partner=partner.name,
        grain=grain,
        k=int(k),
        username=ctx.viewer.username,
        role=ctx.viewer.role,
    )
    st.session_state["research_zip"] = zipped
zipped = st.session_state.get("research_zip")
# A zip prepared for other choices is not offered for these (it would be logged as them).
chosen = (partner.name, grain, k, (start, end))
if (
    zipped is not None
    and (zipped.partner, zipped.grain, zipped.k, zipped.result.requested) != chosen
):
    st.session_state.pop("research_zip")
    zipped = None
if zipped is not None:
    st.caption(text["prepared"].format(files=len(zipped.result.files) + 1))
    st.download_button(
        text["download"].format(name=zipped.file_name),
        data=zipped.data,
        file_name=zipped.file_name,
        mime="application/zip",
        icon=":material/download:",
        # The release and its sha256 are recorded from the zip itself (what the bytes are).
        on_click=record_download,
        args=(zipped, ctx.viewer.username, ctx.viewer.role),
        key="research_download",
    )
