"""Methodology: every published metric's definition, quoted from the dbt docs of the release
that built the snapshot on screen (`meta.definitions`), and the policy in force: version,
SLA targets, list rules, categories.

Definitions are written in English in the dbt project; the page's own words follow the
language switch.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboards import assessment_download
from dashboards import mart_queries as mq
from dashboards.components import open_page, show_table, with_category_labels
from dashboards.formatting import format_duration
from dashboards.labels import CLOCKS, MART_TITLES, RULE_SETTINGS, label, labels

TEXT = {
    "en": {
        "title": "Methodology",
        "intro": "How every number is defined, from the dbt documentation of the marts, and "
        "the policy version in force.",
        "policy_heading": "Policy in force",
        "policy_version": "Policy version {version}, in force since {since}",
        "since_start": "the start of the data",
        "report_heading": "Quarterly assessment report",
        "report_caption": "The external assessment panel's report for a quarter, as `ocse "
        "report assessment` writes it: every metric with its definition, under the same "
        "disclosure control as the research exports (k = {k}). A quarter not yet over is "
        "marked provisional. Preparing and downloading it are recorded in the access log.",
        "report_quarter": "Quarter",
        "report_prepare": "Prepare the report",
        "report_preparing": "Building the report for {quarter}…",
        "report_ready": "Report for {quarter} ready (k = {k}).",
        "report_no_pdf": "The PDF could not be made on this server ({error}); the HTML is "
        "complete and prints to PDF from the browser.",
        "report_html": "Download HTML",
        "report_pdf": "Download PDF",
        "policy_caption": "Approved by {approved}. {description}",
        "targets": "SLA targets",
        "rules": "Black and grey list rules",
        "categories": "Categories",
        "col_clock": "Clock",
        "col_category": "Category",
        "col_target": "Target",
        "col_code": "Code",
        "col_en": "English",
        "col_zh": "Chinese",
        "col_zero": "Zero tolerance",
        "col_csam": "CSAM",
        "rule_value": "Value",
        "rule_name": "Rule",
        "definitions_heading": "Metric definitions",
        "search": "Search definitions",
        "table": "Table",
        "col_column": "Column",
        "col_type": "Type",
        "col_definition": "Definition",
        "no_definitions": "This snapshot carries no definitions (published by an older "
        "release). The next `ocse run` adds them.",
        "common_terms": "As-of time T: only facts known by T count. Days, weeks (ISO, from "
        "Monday) and months are taken in the reporting time zone ({tz}). Rates are fractions "
        "in [0, 1], shown as percentages, and blank when nothing was decided.",
    },
    "zh": {
        "title": "方法说明",
        "intro": "每个数字的定义（取自数据集市的 dbt 文档）以及现行政策版本。",
        "policy_heading": "现行政策",
        "policy_version": "政策版本 {version}，自 {since} 起生效",
        "since_start": "数据起始",
        "report_heading": "季度评估报告",
        "report_caption": "外部评估组的季度报告，与 `ocse report assessment` 生成的相同："
        "每项指标及其定义，采用与研究导出相同的披露控制（k = {k}）。尚未结束的季度标为临时。"
        "生成与下载均记入访问日志。",
        "report_quarter": "季度",
        "report_prepare": "生成报告",
        "report_preparing": "正在生成 {quarter} 的报告…",
        "report_ready": "{quarter} 的报告已就绪（k = {k}）。",
        "report_no_pdf": "本服务器无法生成 PDF（{error}）；HTML 内容完整，可在浏览器中打印为 PDF。",
        "report_html": "下载 HTML",
        "report_pdf": "下载 PDF",
        "policy_caption": "批准方：{approved}。{description}",
        "targets": "服务时限",
        "rules": "黑名单与灰名单规则",
        "categories": "类别",
        "col_clock": "时钟",
        "col_category": "类别",
        "col_target": "时限",
        "col_code": "代码",
        "col_en": "英文",
        "col_zh": "中文",
        "col_zero": "零容忍",
        "col_csam": "儿童性剥削材料",
        "rule_value": "取值",
        "rule_name": "规则",
        "definitions_heading": "指标定义",
        "search": "搜索定义",
        "table": "表",
        "col_column": "字段",
        "col_type": "类型",
        "col_definition": "定义（英文）",
        "no_definitions": "此快照不含定义（由旧版本发布）。下一次 `ocse run` 会加入。",
        "common_terms": "截至时点 T：只计入 T 之前已知的事实。"
        "日、周（ISO 周，周一起）和月按报告时区"
        "（{tz}）划分。比率为 [0, 1] 之间的小数，以百分比显示；无已判定项时为空。",
    },
}

ctx = open_page(
    "methodology",
    TEXT,
    (
        "definitions",
        "dim_policy_versions",
        "dim_policy_sla_targets",
        "dim_policy_tier_rules",
        # the assessment report's quarters: the days the data covers
        "rpt_takedown_sla_daily",
        "rpt_report_handling_daily",
    ),
)
text = ctx.text
st.info(text["common_terms"].format(tz=ctx.tz), icon=":material/schedule:")
assessment_download.section(ctx, text)

st.subheader(text["policy_heading"])
versions = mq.policy_versions(ctx.snapshot)
current = versions[versions["valid_to"].isna()]
if not current.empty:
    row = current.iloc[0]
    st.markdown(
        "**"
        + text["policy_version"].format(
            version=int(row["policy_version"]),
            # the first version is valid from the epoch: it has applied from the start
            since=text["since_start"]
            if pd.Timestamp(row["valid_from"]).year < 2000
            else str(row["valid_from"])[:10],
        )
        + "**"
    )
    st.caption(
        text["policy_caption"].format(
            approved=row["approved_by"] or "–", description=row["description"] or ""
        )
    )
tabs = st.tabs([text["targets"], text["rules"], text["categories"]])
with tabs[0]:
    targets = mq.sla_targets(ctx.snapshot)
    targets = with_category_labels(ctx, targets)
    targets["clock_label"] = labels(CLOCKS, targets["clock"])
    targets["target_label"] = [format_duration(float(m)) for m in targets["target_minutes"]]
    show_table(
        targets,
        {
            "clock_label": text["col_clock"],
            "category": text["col_category"],
            "target_label": text["col_target"],
        },
    )
with tabs[1]:
    rules = mq.tier_rules(ctx.snapshot)
    if not rules.empty:
        settings = rules.drop(columns=["valid_from", "valid_to"]).iloc[0]
        frame = settings.rename_axis("rule").reset_index(name="value")
        frame["value"] = frame["value"].astype(str)
        frame["rule_label"] = [label(RULE_SETTINGS, r) for r in frame["rule"]]
        show_table(frame, {"rule_label": text["rule_name"], "value": text["rule_value"]})
with tabs[2]:
    categories = mq.categories(ctx.snapshot)
    show_table(
        categories,
        {
            "category_code": text["col_code"],
            "label_en": text["col_en"],
            "label_zh": text["col_zh"],
            "is_zero_tolerance": st.column_config.CheckboxColumn(text["col_zero"]),
            "is_csam": st.column_config.CheckboxColumn(text["col_csam"]),
        },
    )

st.subheader(text["definitions_heading"])
definitions = mq.definitions(ctx.snapshot)
if definitions.empty:
    st.warning(text["no_definitions"], icon=":material/menu_book:")
    st.stop()
search = st.text_input(text["search"], key="methodology_search", max_chars=100).strip().lower()
for table_name, rows in definitions.groupby("table_name", sort=True):
    described = rows[rows["column_name"].notna()]
    if search:
        haystack = (rows["column_name"].fillna("") + " " + rows["description"]).str.lower()
        if (
            search not in table_name.lower()
            and not haystack.str.contains(search, regex=False).any()
        ):
            continue
    about = rows[rows["column_name"].isna()]["description"].iloc[0]
    summary = about.split(". ")[0].replace("\n", " ").strip()
    summary = summary if len(summary) <= 110 else summary[:107] + "…"
    title = label(MART_TITLES, table_name)
    with st.expander(f"{title} · `{table_name}`", expanded=bool(search)):
        st.caption(summary)
        # dbt descriptions are our own Markdown (docs blocks), not data: render them.
        st.markdown(about)
        show_table(
            described,
            {
                "column_name": text["col_column"],
                "data_type": text["col_type"],
                "description": st.column_config.TextColumn(text["col_definition"], width="large"),
            },
        )
