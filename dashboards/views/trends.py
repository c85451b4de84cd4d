"""Which forms of exploitation are rising: weekly takedowns per category with spikes marked
(more than the mean plus three standard deviations of the eight weeks before), and how well
each detection method finds real abuse (precision, review time).

Reads rpt_category_trends_weekly and rpt_detection_quality_weekly.
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import streamlit as st

from dashboards import mart_queries as mq
from dashboards import metric_charts
from dashboards.components import CHART_CONFIG, open_page, period_filter, show_table

TEXT = {
    "en": {
        "title": "Category trends",
        "intro": "Weekly volumes per category (weeks start on Monday), spikes marked, and "
        "the quality of each detection method.",
        "trend_heading": "Takedowns per week",
        "spike": "Spike",
        "spikes_found": "{count} spike(s) in the period: a week's takedowns above the mean "
        "plus 3 standard deviations of the 8 weeks before.",
        "no_spikes": "No spike in the {weeks} week(s) of the period the test could judge.",
        "spike_untestable": "The spike test needs 4 earlier weeks of data; the data's first "
        "week starts {first}, so no week of this period can be judged before {testable}. "
        "Choose a later or longer period.",
        "spike_partly": "{untested} week(s) at the start of the period have fewer than 4 "
        "earlier weeks of data and are not judged.",
        "partial_week": "The week of {week} is partial (data to {last}); its count is not yet "
        "a full week's.",
        "y": "Takedowns",
        "table_heading": "Per category, whole period",
        "col_category": "Category",
        "col_hits": "Confirmed hits",
        "col_all_hits": "Hits",
        "col_reports": "Reports received",
        "col_takedowns": "Takedowns",
        "col_proactive": "Proactive share",
        "col_spikes": "Spike weeks",
        "quality_heading": "Detection quality by method",
        "quality_caption": "Precision = confirmed / reviewed hits, per week (chart) and over "
        "the whole period (table).",
        "precision_y": "Precision",
        "methods": {
            "hash_match": "Hash match",
            "classifier": "Classifier",
            "keyword_match": "Keyword match",
            "human_moderator": "Human moderator",
        },
        "col_method": "Method",
        "col_reviewed": "Reviewed",
        "col_confirmed": "Confirmed",
        "col_false": "False positives",
        "col_pending": "Pending",
        "col_precision": "Precision",
        "no_data": "No week starts in this period.",
    },
    "zh": {
        "title": "类别趋势",
        "intro": "各类别每周数量（周一起算）、异常激增标记，以及各检测方式的质量。",
        "trend_heading": "每周下架数",
        "spike": "激增",
        "spikes_found": "时段内有 {count} 个激增周：该周下架数高于前 8 周均值加 3 个标准差。",
        "no_spikes": "时段内可判定的 {weeks} 周中无激增。",
        "spike_untestable": "激增检验需要之前 4 周的数据；数据的第一周始于 {first}，"
        "因此 {testable} 之前的周无法判定。请选择更晚或更长的时段。",
        "spike_partly": "时段开头有 {untested} 周之前不足 4 周数据，未作判定。",
        "partial_week": "{week} 所在周不完整（数据截至 {last}），其数量尚非整周。",
        "y": "下架数",
        "table_heading": "按类别（整个时段）",
        "col_category": "类别",
        "col_hits": "确认命中",
        "col_all_hits": "命中",
        "col_reports": "收到举报",
        "col_takedowns": "下架数",
        "col_proactive": "主动发现占比",
        "col_spikes": "激增周数",
        "quality_heading": "各检测方式的质量",
        "quality_caption": "准确率 = 确认命中 / 已复核命中，图表为每周，表格为整个时段。",
        "precision_y": "准确率",
        "methods": {
            "hash_match": "哈希比对",
            "classifier": "分类模型",
            "keyword_match": "关键词匹配",
            "human_moderator": "人工审核",
        },
        "col_method": "方式",
        "col_reviewed": "已复核",
        "col_confirmed": "已确认",
        "col_false": "误报",
        "col_pending": "待复核",
        "col_precision": "准确率",
        "no_data": "该时段内没有以周一开始的周。",
    },
}

ctx = open_page("trends", TEXT, ("rpt_category_trends_weekly", "rpt_detection_quality_weekly"))
text = ctx.text
period = period_filter(ctx)
labels = {code: ctx.category(code) for code in ctx.labels}

trends = mq.category_trends(ctx.snapshot, period)
st.subheader(text["trend_heading"])
if trends.empty:
    st.info(text["no_data"], icon=":material/info:")
else:
    # The mart's spike rule judges a week only with 4 earlier weeks of data; say which
    # weeks it could not judge rather than report "no spike" for them.
    first_week, last_week = mq.trend_weeks(ctx.snapshot)
    testable_from = first_week + timedelta(weeks=4)
    weeks = sorted(set(trends["week_start"].map(lambda w: pd.Timestamp(w).date())))
    judged = [w for w in weeks if w >= testable_from]
    spikes = int(trends["is_spike"].fillna(False).astype(bool).sum())
    if spikes:
        st.warning(text["spikes_found"].format(count=spikes), icon=":material/trending_up:")
    elif not judged:
        st.info(
            text["spike_untestable"].format(first=first_week, testable=testable_from),
            icon=":material/info:",
        )
    else:
        st.caption(text["no_spikes"].format(weeks=len(judged)))
    if judged and len(judged) < len(weeks):
        st.caption(text["spike_partly"].format(untested=len(weeks) - len(judged)))
    as_of_day = mq.data_days(ctx.snapshot)[1]
    if weeks and weeks[-1] == last_week and as_of_day < last_week + timedelta(days=6):
        st.caption(text["partial_week"].format(week=last_week, last=as_of_day))
    st.plotly_chart(
        metric_charts.trend_with_spikes(
            trends, labels=labels, spike_label=text["spike"], y_title=text["y"]
        ),
        config=CHART_CONFIG,
        key="trends_weekly",
    )
    st.subheader(text["table_heading"])
    per_category = trends.groupby("category_code", as_index=False).agg(
        confirmed_hits=("confirmed_hits", "sum"),
        reports_received=("reports_received", "sum"),
        takedowns=("takedowns", "sum"),
        proactive_takedowns=("proactive_takedowns", "sum"),
        spike_weeks=("is_spike", "sum"),
    )
    per_category["proactive_share"] = per_category["proactive_takedowns"] / per_category[
        "takedowns"
    ].where(per_category["takedowns"] > 0)
    per_category["category"] = [labels.get(c, c) for c in per_category["category_code"]]
    show_table(
        per_category.sort_values("takedowns", ascending=False),
        {
            "category": text["col_category"],
            "confirmed_hits": text["col_hits"],
            "reports_received": text["col_reports"],
            "takedowns": text["col_takedowns"],
            "proactive_share": st.column_config.NumberColumn(
                text["col_proactive"], format="percent"
            ),
            "spike_weeks": text["col_spikes"],
        },
    )

st.subheader(text["quality_heading"])
quality = mq.detection_quality(ctx.snapshot, period)
if quality.empty:
    st.info(text["no_data"], icon=":material/info:")
else:
    st.caption(text["quality_caption"])
    methods: dict = text["methods"]
    st.plotly_chart(
        metric_charts.compliance_figure(
            quality,
            x="week_start",
            series="detection_method",
            rate="precision",
            labels=methods,
            y_title=text["precision_y"],
        ),
        config=CHART_CONFIG,
        key="trends_precision",
    )
    totals = mq.detection_quality_totals(ctx.snapshot, period)
    totals["method"] = [methods.get(m, m) for m in totals["detection_method"]]
    show_table(
        totals,
        {
            "method": text["col_method"],
            "hits": text["col_all_hits"],
            "reviewed": text["col_reviewed"],
            "confirmed": text["col_confirmed"],
            "false_positives": text["col_false"],
            "pending": text["col_pending"],
            "precision": st.column_config.ProgressColumn(
                text["col_precision"], format="percent", min_value=0.0, max_value=1.0
            ),
        },
    )
