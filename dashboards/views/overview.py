"""Leadership overview: is CSAM gone within the hour, how long was harmful content visible,
how much is found proactively, how long is the black/grey list, what happened to cases and
did victims get help. Every KPI compares with the period of the same length just before.

Reads fct_content_takedowns, rpt_takedown_sla_daily, rpt_report_handling_daily, fct_cases,
dim_user_tiers and rpt_tier_counts_daily.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from functools import partial

import streamlit as st

from dashboards import mart_queries as mq
from dashboards import metric_charts
from dashboards.components import (
    CHART_CONFIG,
    compared,
    count_or_dash,
    format_minutes,
    kpi,
    open_page,
    period_filter,
    rate_delta,
    rate_or_dash,
    relative_delta,
    rows_behind,
)

TEXT = {
    "en": {
        "title": "Leadership overview",
        "intro": "Takedowns against the one-hour rule, exposure, proactive detection, the "
        "repeat-offender list, cases and victim support, for the period chosen.",
        "csam_heading": "CSAM: gone within one hour?",
        "csam_rate": "CSAM taken down within 1 h",
        "csam_rate_help": "Share of CSAM takedowns in the period whose exposure (posting to "
        "takedown) was within the category's target (one hour). Prevented uploads count as "
        "within.",
        "csam_p90": "CSAM exposure, p90",
        "csam_p90_help": "90th percentile of minutes CSAM was visible, over CSAM that was "
        "visible at all.",
        "all_heading": "All categories",
        "takedowns": "Takedowns",
        "takedowns_help": "Content taken down in the period (first qualifying action).",
        "compliance": "Within SLA",
        "compliance_help": "Takedowns within their category's target / takedowns.",
        "median_exposure": "Median exposure",
        "median_exposure_help": "Median minutes from posting to takedown, over content that "
        "was visible.",
        "p90_exposure": "p90 exposure",
        "p90_exposure_help": "90th percentile of the same.",
        "proactive": "Found proactively",
        "proactive_help": "Share of takedowns whose first action came from proactive "
        "detection rather than a report.",
        "list_heading": "Repeat-offender list and reports",
        "black": "Black list",
        "black_help": "Accounts on the black list at the data's as-of time; the change is "
        "since the start of the period.",
        "grey": "Grey list",
        "grey_help": "Accounts on the grey list at the as-of time; change since the start of "
        "the period.",
        "reports": "Reports received",
        "reports_help": "User reports received in the period.",
        "ack": "Acknowledged on time",
        "ack_help": "Reports acknowledged within target / acknowledgement clocks decided.",
        "cases_heading": "Cases and victim support",
        "cases": "Cases opened",
        "cases_help": "Cases opened in the period.",
        "referral": "Referred on time",
        "referral_help": "Confirmed cases referred to the authorities within target / "
        "referral clocks decided.",
        "victims": "Victims",
        "victims_help": "Victims identified in the cases opened in the period.",
        "support": "Support offered",
        "support_help": "Cases with victims where support was offered (accepted or declined "
        "included) / cases with victims.",
        "daily_heading": "Takedowns per day and share within SLA",
        "takedowns_series": "Takedowns",
        "compliance_series": "Within SLA",
        "target": "Target 100%",
        "partial": "partial day",
        "by_category_heading": "Takedowns by category",
        "by_category_x": "Takedowns",
    },
    "zh": {
        "title": "领导总览",
        "intro": "所选时段内对照一小时规则的下架情况、暴露时长"
        "、主动发现、重复违规名单、案件与被害人救助。",
        "csam_heading": "儿童性剥削材料：一小时内清除了吗？",
        "csam_rate": "CSAM 1 小时内下架",
        "csam_rate_help": "时段内 CSAM 下架中，暴露时长（发布至下架）在类别时限（一小时）内的比例。"
        "被拦截的上传计为达标。",
        "csam_p90": "CSAM 暴露时长 P90",
        "csam_p90_help": "曾可见的 CSAM 的可见分钟数的第 90 百分位。",
        "all_heading": "全部类别",
        "takedowns": "下架数",
        "takedowns_help": "时段内下架的内容（首次有效处置）。",
        "compliance": "时限内下架",
        "compliance_help": "在类别时限内的下架 / 全部下架。",
        "median_exposure": "暴露时长中位数",
        "median_exposure_help": "曾可见内容从发布到下架的分钟数中位数。",
        "p90_exposure": "暴露时长 P90",
        "p90_exposure_help": "同上的第 90 百分位。",
        "proactive": "主动发现占比",
        "proactive_help": "首次处置来自主动检测而非举报的下架占比。",
        "list_heading": "重复违规名单与举报",
        "black": "黑名单",
        "black_help": "数据截至时点在黑名单上的账号；变化为相对时段开始时。",
        "grey": "灰名单",
        "grey_help": "数据截至时点在灰名单上的账号；变化为相对时段开始时。",
        "reports": "收到举报",
        "reports_help": "时段内收到的用户举报。",
        "ack": "按时受理",
        "ack_help": "在时限内受理的举报 / 已判定的受理时钟。",
        "cases_heading": "案件与被害人救助",
        "cases": "新立案件",
        "cases_help": "时段内新立的案件。",
        "referral": "按时移送",
        "referral_help": "在时限内移送主管机关的已确认案件 / 已判定的移送时钟。",
        "victims": "被害人",
        "victims_help": "时段内新立案件中识别的被害人。",
        "support": "已提供救助",
        "support_help": "提供了救助（含接受或拒绝）的有被害人案件 / 有被害人的案件。",
        "daily_heading": "每日下架数与时限内比例",
        "takedowns_series": "下架数",
        "compliance_series": "时限内",
        "target": "目标 100%",
        "partial": "不完整日",
        "by_category_heading": "各类别下架数",
        "by_category_x": "时段内下架数",
    },
}

ctx = open_page(
    "overview",
    TEXT,
    (
        "fct_content_takedowns",
        "rpt_takedown_sla_daily",
        "rpt_report_handling_daily",
        "fct_cases",
        "dim_user_tiers",
        "rpt_tier_counts_daily",
        # the rows behind the KPIs (on demand)
        "rpt_case_outcomes_monthly",
        "fct_reports",
    ),
)
text = ctx.text
period = period_filter(ctx)

csam, csam_before = compared(partial(mq.csam_takedown_summary, ctx.snapshot), period)
now, before = compared(partial(mq.takedown_summary, ctx.snapshot), period)
reports, reports_before = compared(partial(mq.report_summary, ctx.snapshot), period)
cases, cases_before = compared(partial(mq.case_summary, ctx.snapshot), period, ctx.tz)
tiers = mq.tier_counts(ctx.snapshot)
# The list's change since the period began (the end of the day before it), when covered.
tiers_at_start = (
    mq.tier_counts_at(ctx.snapshot, period.first_day - timedelta(days=1), ctx.tz)
    if period.comparison is not None
    else defaultdict(lambda: None)
)

st.subheader(text["csam_heading"])
left, middle, right = st.columns(3)
with left:
    kpi(
        text["csam_rate"],
        rate_or_dash(csam["compliance_rate"]),
        delta=rate_delta(csam["compliance_rate"], csam_before["compliance_rate"]),
        help=text["csam_rate_help"],
    )
with middle:
    kpi(
        text["csam_p90"],
        format_minutes(csam["p90_exposure_minutes"]),
        delta=relative_delta(csam["p90_exposure_minutes"], csam_before["p90_exposure_minutes"]),
        help=text["csam_p90_help"],
        lower_is_better=True,
    )
with right:
    kpi(
        text["takedowns"] + " (CSAM)",
        count_or_dash(csam["takedowns"]),
        delta=relative_delta(csam["takedowns"], csam_before["takedowns"]),
        help=text["takedowns_help"],
        neutral=True,
    )

st.subheader(text["all_heading"])
columns = st.columns(5)
cards = (
    ("takedowns", count_or_dash(now["takedowns"]), "takedowns", "relative", False, True),
    ("compliance", rate_or_dash(now["compliance_rate"]), "compliance_rate", "rate", False, False),
    (
        "median_exposure",
        format_minutes(now["median_exposure_minutes"]),
        "median_exposure_minutes",
        "relative",
        True,
        False,
    ),
    (
        "p90_exposure",
        format_minutes(now["p90_exposure_minutes"]),
        "p90_exposure_minutes",
        "relative",
        True,
        False,
    ),
    ("proactive", rate_or_dash(now["proactive_share"]), "proactive_share", "rate", False, False),
)
for column, (key, value, field, kind, lower, neutral) in zip(columns, cards, strict=True):
    change = rate_delta if kind == "rate" else relative_delta
    with column:
        kpi(
            text[key],
            value,
            delta=change(now[field], before[field]),
            help=text[f"{key}_help"],
            lower_is_better=lower,
            neutral=neutral,
        )

st.subheader(text["list_heading"])
columns = st.columns(4)
with columns[0]:
    kpi(
        text["black"],
        count_or_dash(tiers["black"]),
        delta=relative_delta(tiers["black"], tiers_at_start["black"]),
        help=text["black_help"],
        neutral=True,
    )
with columns[1]:
    kpi(
        text["grey"],
        count_or_dash(tiers["grey"]),
        delta=relative_delta(tiers["grey"], tiers_at_start["grey"]),
        help=text["grey_help"],
        neutral=True,
    )
with columns[2]:
    kpi(
        text["reports"],
        count_or_dash(reports["received"]),
        delta=relative_delta(reports["received"], reports_before["received"]),
        help=text["reports_help"],
        neutral=True,
    )
with columns[3]:
    kpi(
        text["ack"],
        rate_or_dash(reports["ack_compliance_rate"]),
        delta=rate_delta(reports["ack_compliance_rate"], reports_before["ack_compliance_rate"]),
        help=text["ack_help"],
    )

st.subheader(text["cases_heading"])
columns = st.columns(4)
case_cards = (
    ("cases", count_or_dash(cases["cases_opened"]), "cases_opened", relative_delta, True),
    (
        "referral",
        rate_or_dash(cases["referral_compliance_rate"]),
        "referral_compliance_rate",
        rate_delta,
        False,
    ),
    ("victims", count_or_dash(cases["victims"]), "victims", relative_delta, True),
    (
        "support",
        rate_or_dash(cases["support_offered_rate"]),
        "support_offered_rate",
        rate_delta,
        False,
    ),
)
for column, (key, value, field, change, neutral) in zip(columns, case_cards, strict=True):
    with column:
        kpi(
            text[key],
            value,
            delta=change(cases[field], cases_before[field]),
            help=text[f"{key}_help"],
            neutral=neutral,
        )

rows_behind(ctx, period, ("takedowns", "reports", "cases"))

left, right = st.columns([3, 2])
with left:
    st.subheader(text["daily_heading"])
    daily = mq.takedowns_daily(ctx.snapshot, period)
    st.plotly_chart(
        metric_charts.counts_and_rate(
            daily,
            x="report_date",
            count="takedowns",
            rate="compliance_rate",
            count_label=text["takedowns_series"],
            rate_label=text["compliance_series"],
            target=1.0,
            target_label=text["target"],
            # the day of T is not over: its bar is drawn paler
            partial_from=period.last_day if period.last_day == ctx.info.as_of_day else None,
            partial_label=text["partial"],
        ),
        config=CHART_CONFIG,
        key="overview_daily",
    )
with right:
    st.subheader(text["by_category_heading"])
    by_category = mq.takedowns_by_category(ctx.snapshot, period)
    st.plotly_chart(
        metric_charts.horizontal_bars(
            by_category,
            category="category_code",
            value="takedowns",
            labels={code: ctx.category(code) for code in ctx.labels},
            x_title=text["by_category_x"],
        ),
        config=CHART_CONFIG,
        key="overview_by_category",
    )
