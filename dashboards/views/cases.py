"""Cases and victim support: are crimes referred to the authorities in time, what became of
them, and did the children involved get help.

Reads fct_cases (day-level filters, funnel, victims) and rpt_case_outcomes_monthly.
"""

from __future__ import annotations

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
    show_table,
)
from dashboards.labels import AGE_BANDS, VICTIM_SUPPORT, label, labels, order

TEXT = {
    "en": {
        "title": "Cases and victim support",
        "intro": "Cases opened in the period: confirmation, referral to the authorities, "
        "outcome, and the support offered to child victims.",
        "opened": "Cases opened",
        "referral": "Referred on time",
        "referral_help": "Referral clocks decided within target / decided.",
        "median_referral": "Median time to referral",
        "median_referral_help": "Hours from confirmation to referral, over referred cases.",
        "victims": "Victims",
        "support": "Support offered",
        "support_help": "Cases with victims where support was offered (then accepted or "
        "declined) / cases with victims.",
        "funnel_heading": "From report to conviction",
        "stages": {
            "opened": "Opened",
            "confirmed": "Confirmed",
            "referred": "Referred",
            "authority_accepted": "Accepted by authority",
            "prosecuted": "Prosecuted",
            "convicted": "Convicted",
        },
        "monthly_heading": "By month opened",
        "col_month": "Month",
        "col_opened": "Opened",
        "col_confirmed": "Confirmed",
        "col_referred": "Referred",
        "col_referral_rate": "Referred on time",
        "col_accepted": "Accepted",
        "col_prosecuted": "Prosecuted",
        "col_convicted": "Convicted",
        "col_victims": "Victims",
        "col_support_offered": "Support offered",
        "col_support_accepted": "Support accepted",
        "support_heading": "Victim support by age of the youngest victim",
        "support_y": "Cases",
        "no_data": "No case was opened in this period.",
        "no_outcome_yet": "Prosecutions and convictions usually come months after the "
        "referral: no case opened in this period has reached one yet, which does not mean "
        "there were none. Choose an earlier or longer period to see them.",
    },
    "zh": {
        "title": "案件与被害人救助",
        "intro": "时段内新立案件：确认、移送主管机关、处理结果，以及向未成年被害人提供的救助。",
        "opened": "新立案件",
        "referral": "按时移送",
        "referral_help": "在时限内移送的已判定移送时钟 / 已判定时钟。",
        "median_referral": "移送用时中位数",
        "median_referral_help": "已移送案件从确认到移送的小时数中位数。",
        "victims": "被害人",
        "support": "已提供救助",
        "support_help": "提供了救助（之后接受或拒绝）的有被害人案件 / 有被害人的案件。",
        "funnel_heading": "从立案到定罪",
        "stages": {
            "opened": "立案",
            "confirmed": "确认",
            "referred": "移送",
            "authority_accepted": "主管机关受理",
            "prosecuted": "起诉",
            "convicted": "定罪",
        },
        "monthly_heading": "按立案月份",
        "col_month": "月份",
        "col_opened": "立案",
        "col_confirmed": "确认",
        "col_referred": "移送",
        "col_referral_rate": "按时移送",
        "col_accepted": "受理",
        "col_prosecuted": "起诉",
        "col_convicted": "定罪",
        "col_victims": "被害人",
        "col_support_offered": "已提供救助",
        "col_support_accepted": "接受救助",
        "support_heading": "按最年幼被害人年龄段的救助情况",
        "support_y": "案件数",
        "no_data": "该时段内没有新立案件。",
        "no_outcome_yet": "起诉和定罪通常在移送数月后才有结果：该时段立案的案件尚无此类结果，"
        "不代表没有起诉。可选择更早或更长的时段查看。",
    },
}
SUPPORT_COLOURS = {
    "accepted": "#3E8E63",
    "offered": "#8FBF9F",
    "declined": "#D9A13B",
    "not_offered": "#C0504D",
    "not_applicable": "#9AA1A9",
    "unknown": "#CBD2D9",
}

ctx = open_page("cases", TEXT, ("fct_cases", "rpt_case_outcomes_monthly"))
text = ctx.text
period = period_filter(ctx)

now, before = compared(partial(mq.case_summary, ctx.snapshot), period, ctx.tz)
funnel_now, funnel_before = compared(partial(mq.case_funnel, ctx.snapshot), period, ctx.tz)

columns = st.columns(5)
with columns[0]:
    kpi(
        text["opened"],
        count_or_dash(now["cases_opened"]),
        delta=relative_delta(now["cases_opened"], before["cases_opened"]),
        neutral=True,
    )
with columns[1]:
    kpi(
        text["referral"],
        rate_or_dash(now["referral_compliance_rate"]),
        delta=rate_delta(now["referral_compliance_rate"], before["referral_compliance_rate"]),
        help=text["referral_help"],
    )
with columns[2]:
    hours = funnel_now["median_hours_to_referral"]
    kpi(
        text["median_referral"],
        format_minutes(None if hours is None else hours * 60),
        delta=relative_delta(hours, funnel_before["median_hours_to_referral"]),
        help=text["median_referral_help"],
        lower_is_better=True,
    )
with columns[3]:
    kpi(
        text["victims"],
        count_or_dash(now["victims"]),
        delta=relative_delta(now["victims"], before["victims"]),
        neutral=True,
    )
with columns[4]:
    kpi(
        text["support"],
        rate_or_dash(now["support_offered_rate"]),
        delta=rate_delta(now["support_offered_rate"], before["support_offered_rate"]),
        help=text["support_help"],
    )

rows_behind(ctx, period, ("cases",))

if not funnel_now["opened"]:
    st.info(text["no_data"], icon=":material/info:")
    st.stop()
if not funnel_now["prosecuted"]:
    # Courts take months: a period of recent cases usually has no outcome yet, which is
    # not the same as no prosecutions.
    st.caption(text["no_outcome_yet"])

left, right = st.columns(2)
stages: dict = text["stages"]
with left:
    st.subheader(text["funnel_heading"])
    st.plotly_chart(
        metric_charts.funnel([(label, int(funnel_now[key] or 0)) for key, label in stages.items()]),
        config=CHART_CONFIG,
        key="cases_funnel",
    )
with right:
    st.subheader(text["support_heading"])
    support = mq.victim_support(ctx.snapshot, period, ctx.tz)
    support = support.sort_values(
        "age_band", key=lambda bands: bands.map(partial(order, AGE_BANDS)), kind="stable"
    )
    support["age_label"] = labels(AGE_BANDS, support["age_band"])
    st.plotly_chart(
        metric_charts.stacked_bars(
            support,
            x="age_label",
            stack="victim_support",
            value="cases",
            labels={code: label(VICTIM_SUPPORT, code) for code in VICTIM_SUPPORT},
            y_title=text["support_y"],
            colours=SUPPORT_COLOURS,
            order=list(SUPPORT_COLOURS),
        ),
        config=CHART_CONFIG,
        key="cases_support",
    )

st.subheader(text["monthly_heading"])
monthly = mq.case_outcomes_monthly(ctx.snapshot, period)
show_table(
    monthly,
    {
        "month_start": st.column_config.DateColumn(text["col_month"], format="YYYY-MM"),
        "cases_opened": text["col_opened"],
        "confirmed": text["col_confirmed"],
        "referred": text["col_referred"],
        "referral_compliance_rate": st.column_config.NumberColumn(
            text["col_referral_rate"], format="percent"
        ),
        "authority_accepted": text["col_accepted"],
        "prosecuted": text["col_prosecuted"],
        "convicted": text["col_convicted"],
        "victims": text["col_victims"],
        "support_offered": text["col_support_offered"],
        "support_accepted": text["col_support_accepted"],
    },
)
