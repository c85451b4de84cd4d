"""Repeat offenders: the black and grey list (policy.md).

Everyone allowed here sees the counts: accounts per tier, per rule, and the list's length
week by week. Only operations and admin see the list itself (pseudonymous references,
never a raw identifier) and one account's tier history; for other roles that section is
not drawn and its queries refuse them (`mart_queries._require_individuals`).

Reads dim_user_tiers, rpt_tier_counts_daily, fct_user_tier_history and rpt_repeat_offenders.
"""

from __future__ import annotations

import streamlit as st

from dashboards import mart_queries as mq
from dashboards import metric_charts
from dashboards.components import (
    CHART_CONFIG,
    count_or_dash,
    datetime_column,
    kpi,
    open_page,
    period_filter,
    show_table,
)

TEXT = {
    "en": {
        "title": "Repeat offenders",
        "intro": "The black and grey list at the data's as-of time, the rule behind each "
        "entry, and how the list has grown.",
        "tiers": {"black": "Black", "grey": "Grey", "white": "White", "none": "None"},
        "tier_help": {
            "black": "Zero-tolerance violation, or repeated violations within 180 days.",
            "grey": "A violation within 180 days, or repeated reports within 30 days.",
            "white": "Appeared in the data with nothing against them in the windows.",
            "none": "Appeared only with reports or events that do not count.",
        },
        "reasons": {
            "zero_tolerance": "Zero-tolerance violation",
            "repeat_180d": "Repeated violations in 180 days",
            "violation_180d": "Violation in 180 days",
            "reports_30d": "Repeated reports in 30 days",
        },
        "reasons_heading": "Why accounts are listed",
        "col_tier": "Tier",
        "col_reason": "Rule",
        "col_users": "Accounts",
        "weekly_heading": "List length at the end of each week",
        "weekly_y": "Accounts",
        "list_heading": "The list (pseudonymous references)",
        "list_caption": "Most violations first. References are keyed pseudonyms; the raw "
        "account identifier is never stored.",
        "list_counts_only": "Individual entries are shown to operations only. Your role sees "
        "the counts above.",
        "show_tiers": "Tiers",
        "col_rank": "Rank",
        "col_ref": "Reference",
        "col_total": "Violations",
        "col_180d": "In 180 days",
        "col_zero": "Zero tolerance",
        "col_reports": "Reports 30 days",
        "col_top": "Main category",
        "col_last": "Last violation",
        "col_since": "Tier since",
        "history_heading": "Tier history of one account",
        "history_input": "Reference",
        "history_help": "Paste a reference from the list (p1:…).",
        "history_none": "No account with this reference.",
        "col_from": "From",
        "col_to": "Until",
    },
    "zh": {
        "title": "重复违规者",
        "intro": "数据截至时点的黑名单与灰名单、每个条目所依据的规则，以及名单的变化。",
        "tiers": {"black": "黑名单", "grey": "灰名单", "white": "白名单", "none": "无"},
        "tier_help": {
            "black": "零容忍违规，或 180 天内多次违规。",
            "grey": "180 天内有违规，或 30 天内多次被举报。",
            "white": "出现在数据中，但时间窗内无不利记录。",
            "none": "仅有不计入的举报或事件。",
        },
        "reasons": {
            "zero_tolerance": "零容忍违规",
            "repeat_180d": "180 天内多次违规",
            "violation_180d": "180 天内有违规",
            "reports_30d": "30 天内多次被举报",
        },
        "reasons_heading": "列入名单的原因",
        "col_tier": "名单",
        "col_reason": "规则",
        "col_users": "账号数",
        "weekly_heading": "每周末名单规模",
        "weekly_y": "账号数",
        "list_heading": "名单明细（假名化标识）",
        "list_caption": "按违规次数降序。标识为带密钥的假名，原始账号标识从不存储。",
        "list_counts_only": "名单明细仅向运营团队显示。您的角色可查看上方的统计数。",
        "show_tiers": "名单",
        "col_rank": "排名",
        "col_ref": "标识",
        "col_total": "违规次数",
        "col_180d": "180 天内",
        "col_zero": "零容忍",
        "col_reports": "30 天内举报",
        "col_top": "主要类别",
        "col_last": "最近违规",
        "col_since": "列入时间",
        "history_heading": "单个账号的名单历史",
        "history_input": "标识",
        "history_help": "粘贴名单中的标识（p1:…）。",
        "history_none": "没有该标识的账号。",
        "col_from": "起",
        "col_to": "止",
    },
}

ctx = open_page(
    "offenders",
    TEXT,
    ("dim_user_tiers", "rpt_tier_counts_daily", "fct_user_tier_history", "rpt_repeat_offenders"),
)
text = ctx.text
tier_names: dict = text["tiers"]
reason_names: dict = text["reasons"]

counts = mq.tier_counts(ctx.snapshot)
for column, tier in zip(st.columns(4), mq.TIERS, strict=True):
    with column:
        kpi(tier_names[tier], count_or_dash(counts[tier]), help=text["tier_help"][tier])

left, right = st.columns([2, 3])
with left:
    st.subheader(text["reasons_heading"])
    reasons = mq.tier_reasons(ctx.snapshot)
    reasons["tier_label"] = [tier_names.get(t, t) for t in reasons["tier"]]
    reasons["reason_label"] = [reason_names.get(r, r) for r in reasons["tier_reason"]]
    show_table(
        reasons,
        {
            "tier_label": text["col_tier"],
            "reason_label": text["col_reason"],
            "users": text["col_users"],
        },
    )
with right:
    st.subheader(text["weekly_heading"])
    period = period_filter(ctx, with_categories=False, default_days=12 * 7)
    weekly = mq.tier_counts_weekly(ctx.snapshot, period, ctx.tz)
    st.plotly_chart(
        metric_charts.tier_lines(weekly, labels=tier_names, y_title=text["weekly_y"]),
        config=CHART_CONFIG,
        key="offenders_weekly",
    )

st.subheader(text["list_heading"])
if not ctx.viewer.sees_individuals:
    st.info(text["list_counts_only"], icon=":material/visibility_off:")
    st.stop()

st.caption(text["list_caption"])
shown_tiers = st.multiselect(
    text["show_tiers"],
    options=["black", "grey"],
    default=["black", "grey"],
    format_func=tier_names.__getitem__,
    key="offenders_tiers",
)
offenders = mq.repeat_offenders(ctx.snapshot, tuple(shown_tiers) or ("black", "grey"))
offenders["tier_label"] = [tier_names.get(t, t) for t in offenders["tier"]]
offenders["reason_label"] = [reason_names.get(r, r) for r in offenders["tier_reason"]]
offenders["top_category"] = [ctx.category(c) for c in offenders["top_category_code"]]
show_table(
    offenders,
    {
        "offender_rank": text["col_rank"],
        "user_ref": text["col_ref"],
        "tier_label": text["col_tier"],
        "reason_label": text["col_reason"],
        "violations_total": text["col_total"],
        "violations_180d": text["col_180d"],
        "zero_tolerance_violations": text["col_zero"],
        "reports_30d": text["col_reports"],
        "top_category": text["col_top"],
        "last_violation_at": datetime_column(text["col_last"], ctx.tz),
        "tier_since": datetime_column(text["col_since"], ctx.tz),
    },
    height=420,
)

st.subheader(text["history_heading"])
reference = st.text_input(
    text["history_input"],
    value=offenders["user_ref"].iloc[0] if not offenders.empty else "",
    help=text["history_help"],
    key="offenders_reference",
    max_chars=200,
).strip()
if reference:
    history = mq.tier_history(ctx.snapshot, reference)
    if history.empty:
        st.info(text["history_none"], icon=":material/search_off:")
    else:
        history["tier_label"] = [tier_names.get(t, t) for t in history["tier"]]
        history["reason_label"] = [reason_names.get(r, r) for r in history["tier_reason"]]
        show_table(
            history,
            {
                "tier_label": text["col_tier"],
                "reason_label": text["col_reason"],
                "valid_from": datetime_column(text["col_from"], ctx.tz),
                "valid_to": datetime_column(text["col_to"], ctx.tz),
            },
        )
