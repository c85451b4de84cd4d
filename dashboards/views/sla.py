"""SLA compliance in detail: takedown, evidence preserved on time, report acknowledgement and
resolution, referral to the authorities; by day, week or month, and by category.

A clock counts once it is decided (stopped, or past its deadline unstopped), in the period
of its fact's local day: takedown day for takedowns and evidence, day received for
reports, day opened for cases. Reads fct_sla_clocks (one row per clock, the same rules as
the rpt_* marts) and dim_policy_sla_targets.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboards import deep_links, metric_charts
from dashboards import mart_queries as mq
from dashboards.components import (
    CHART_CONFIG,
    count_or_dash,
    kpi,
    open_page,
    period_filter,
    rate_delta,
    rate_or_dash,
    rows_behind,
    show_table,
    with_category_labels,
)

TEXT = {
    "en": {
        "title": "SLA compliance",
        "intro": "Each service-level clock: share decided within its target. A clock is "
        "decided when it stopped or its deadline passed.",
        "grain": "Grain",
        "grains": {"day": "Day", "week": "Week", "month": "Month"},
        "clocks": {
            "takedown": "Takedown",
            "evidence": "Evidence preserved by takedown",
            "report_acknowledgement": "Report acknowledged",
            "report_resolution": "Report resolved",
            "referral": "Referred to authorities",
        },
        "decided": "{count} decided",
        "over_time": "Compliance over time",
        "y": "Within target",
        "target": "Target 100%",
        "by_category": "By category, whole period",
        "category": "Category",
        "targets": "Targets in force",
        "targets_caption": "From the policy version in force at the data's as-of time. An "
        "empty category means every category.",
        "col_clock": "Clock",
        "col_target": "Target (minutes)",
        "col_near": "Near-breach share",
        "col_version": "Policy version",
        "no_data": "No clock was decided in this period.",
    },
    "zh": {
        "title": "时效达标",
        "intro": "各项服务时限：在时限内判定的比例。时钟停止或超过截止时间即视为已判定。",
        "grain": "粒度",
        "grains": {"day": "日", "week": "周", "month": "月"},
        "clocks": {
            "takedown": "下架",
            "evidence": "下架时已保全证据",
            "report_acknowledgement": "举报受理",
            "report_resolution": "举报处理完毕",
            "referral": "移送主管机关",
        },
        "decided": "已判定 {count}",
        "over_time": "达标率走势",
        "y": "时限内",
        "target": "目标 100%",
        "by_category": "按类别（整个时段）",
        "category": "类别",
        "targets": "现行时限",
        "targets_caption": "取自数据截至时点生效的政策版本。类别为空表示适用于所有类别。",
        "col_clock": "时钟",
        "col_target": "时限（分钟）",
        "col_near": "临近超时比例",
        "col_version": "政策版本",
        "no_data": "该时段内没有已判定的时钟。",
    },
}

ctx = open_page(
    "sla",
    TEXT,
    (
        "fct_sla_clocks",
        "dim_policy_sla_targets",
        # the rows behind the KPIs (on demand)
        "rpt_takedown_sla_daily",
        "rpt_report_handling_daily",
        "rpt_case_outcomes_monthly",
        "fct_content_takedowns",
        "fct_reports",
        "fct_cases",
    ),
)
text = ctx.text
clock_names: dict = text["clocks"]
period = period_filter(ctx)
restored = deep_links.restore("sla_grain", "grain", deep_links.one_of(mq.GRAINS))
grain = st.segmented_control(
    text["grain"],
    options=list(mq.GRAINS),
    format_func=text["grains"].__getitem__,
    default=None if restored else "week",
    key="sla_grain",
)
grain = grain or "week"
deep_links.publish("sla_grain", "grain", grain, "week")

now = mq.sla_compliance_by_category(ctx.snapshot, period, ctx.tz)
before = (
    mq.sla_compliance_by_category(ctx.snapshot, period.comparison, ctx.tz)
    if period.comparison is not None
    else now.iloc[0:0]
)


def _totals(frame: pd.DataFrame) -> dict[str, tuple[int, float | None]]:
    sums = frame.groupby("clock")[["decided", "on_time"]].sum()
    return {
        clock: (int(row.decided), row.on_time / row.decided if row.decided else None)
        for clock, row in sums.iterrows()
    }


totals, totals_before = _totals(now), _totals(before)
for column, clock in zip(st.columns(len(mq.CLOCKS)), mq.CLOCKS, strict=True):
    decided, rate = totals.get(clock, (0, None))
    with column:
        kpi(
            clock_names[clock],
            rate_or_dash(rate),
            delta=rate_delta(rate, totals_before.get(clock, (0, None))[1]),
            help=text["decided"].format(count=count_or_dash(decided)),
        )

rows_behind(ctx, period, ("takedowns", "reports", "cases"))

st.subheader(text["over_time"])
series = mq.sla_compliance_series(ctx.snapshot, period, grain, ctx.tz)
if series.empty:
    st.info(text["no_data"], icon=":material/info:")
else:
    st.plotly_chart(
        metric_charts.compliance_figure(
            series,
            x="period_start",
            series="clock",
            rate="compliance_rate",
            labels=clock_names,
            target=1.0,
            target_label=text["target"],
            y_title=text["y"],
            colours=metric_charts.CLOCK_COLOURS,
        ),
        config=CHART_CONFIG,
        key="sla_over_time",
    )

st.subheader(text["by_category"])
if not now.empty:
    wide = now.pivot_table(
        index="category_code", columns="clock", values="compliance_rate", aggfunc="first"
    ).reindex(columns=list(mq.CLOCKS))
    wide.insert(0, "category", [ctx.category(code) for code in wide.index])
    columns = {"category": text["category"]}
    for clock in mq.CLOCKS:
        columns[clock] = st.column_config.ProgressColumn(
            clock_names[clock], format="percent", min_value=0.0, max_value=1.0
        )
    show_table(wide.reset_index(drop=True), columns)

with st.expander(text["targets"]):
    st.caption(text["targets_caption"])
    targets = mq.sla_targets(ctx.snapshot)
    targets["clock_label"] = [clock_names.get(c, c) for c in targets["clock"]]
    targets = with_category_labels(ctx, targets)
    show_table(
        targets,
        {
            "clock_label": text["col_clock"],
            "category": text["category"],
            "target_minutes": text["col_target"],
            "near_breach_share": st.column_config.NumberColumn(text["col_near"], format="percent"),
            "policy_version": text["col_version"],
        },
    )
