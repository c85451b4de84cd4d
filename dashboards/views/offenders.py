"""Repeat offenders: the black and grey list (policy.md).

Everyone allowed here sees the counts: accounts per tier, per rule, and the list's length
week by week. Only operations and admin see the list itself (pseudonymous references,
never a raw identifier) and one account's tier history; for other roles that section is
not drawn and its queries refuse them (`mart_queries._require_individuals`).

Reads dim_user_tiers, rpt_tier_counts_daily, fct_user_tier_history and rpt_repeat_offenders.
"""

from __future__ import annotations

import streamlit as st

from dashboards import deep_links, metric_charts
from dashboards import mart_queries as mq
from dashboards.components import (
    CHART_CONFIG,
    count_or_dash,
    datetime_column,
    kpi,
    open_page,
    period_filter,
    show_table,
)
from dashboards.labels import TRIGGERS, labels

PAGE_SIZE = 50

TEXT = {
    "en": {
        "title": "Repeat offenders",
        "intro": "The black and grey list at the data's as-of time, the rule behind each "
        "entry, and how the list has grown.",
        "tiers": {"black": "Black", "grey": "Grey", "white": "White", "none": "Not listed"},
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
        "history_heading": "Tier history of the selected account",
        "history_caption": "Select a row of the list to open its account (the first row "
        "is shown until you do). Each stretch: the tier, the rule that put the account there "
        "and the counts it saw when the stretch began.",
        "search": "Search references",
        "search_help": "Part of a reference (p1:…); case does not matter.",
        "page": "Page",
        "showing": "Accounts {first}–{last} of {total} (page {page} of {pages}).",
        "list_empty": "No listed account matches.",
        "violations_heading": "Its violations (content taken down, as known at T)",
        "violations_none": "No violation known at T (a reversed takedown no longer counts).",
        "col_taken_down": "Taken down",
        "col_content": "Content",
        "col_trigger": "Found by",
        "col_from": "From",
        "col_to": "Until",
    },
    "zh": {
        "title": "重复违规者",
        "intro": "数据截至时点的黑名单与灰名单、每个条目所依据的规则，以及名单的变化。",
        "tiers": {"black": "黑名单", "grey": "灰名单", "white": "白名单", "none": "未列入"},
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
        "history_heading": "所选账号的名单历史",
        "history_caption": "在名单中选择一行以打开该账号（未选择时显示第一行）。每一段：名单、"
        "列入所依据的规则，以及该段开始时规则所见的计数。",
        "search": "搜索标识",
        "search_help": "标识的一部分（p1:…），不区分大小写。",
        "page": "页码",
        "showing": "第 {first}–{last} 个账号，共 {total} 个（第 {page} / {pages} 页）。",
        "list_empty": "没有符合条件的名单账号。",
        "violations_heading": "其违规记录（截至 T 已知的被下架内容）",
        "violations_none": "截至 T 无已知违规（被撤销的下架不再计入）。",
        "col_taken_down": "下架时间",
        "col_content": "内容",
        "col_trigger": "发现方式",
        "col_from": "起",
        "col_to": "止",
    },
}

ctx = open_page(
    "offenders",
    TEXT,
    (
        "dim_user_tiers",
        "rpt_tier_counts_daily",
        "fct_user_tier_history",
        "rpt_repeat_offenders",
        "fct_content_takedowns",  # the selected account's violations
    ),
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
    period = period_filter(ctx, with_categories=False)
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
left, middle, right = st.columns([2, 2, 1])
# tiers and page are in the URL; the search is not (it can name an account, and URLs end
# up in browser history and proxy logs)
restored = deep_links.restore("offenders_tiers", "tiers", deep_links.some_of(["black", "grey"]))
with left:
    shown_tiers = st.multiselect(
        text["show_tiers"],
        options=["black", "grey"],
        default=None if restored else ["black", "grey"],
        format_func=tier_names.__getitem__,
        key="offenders_tiers",
    )
deep_links.publish("offenders_tiers", "tiers", shown_tiers, ["black", "grey"], deep_links.join)
with middle:
    search = st.text_input(
        text["search"], key="offenders_search", max_chars=200, help=text["search_help"]
    ).strip()
tiers = tuple(shown_tiers) or ("black", "grey")
total = mq.repeat_offender_count(ctx.snapshot, tiers, search)
pages = max(1, -(-total // PAGE_SIZE))
restored = deep_links.restore("offenders_page", "page", deep_links.integer(1, pages))
with right:
    page = st.number_input(
        text["page"],
        min_value=1,
        max_value=pages,
        value=None if restored else 1,
        step=1,
        key="offenders_page",
    )
page = min(int(page or 1), pages)
deep_links.publish("offenders_page", "page", page, 1)
offenders = mq.repeat_offenders(
    ctx.snapshot, tiers, search, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
)
if offenders.empty:
    st.info(text["list_empty"], icon=":material/search_off:")
    st.stop()
first = (page - 1) * PAGE_SIZE + 1
st.caption(
    text["showing"].format(
        first=count_or_dash(first),
        last=count_or_dash(first + len(offenders) - 1),
        total=count_or_dash(total),
        page=page,
        pages=pages,
    )
)
offenders["tier_label"] = [tier_names.get(t, t) for t in offenders["tier"]]
offenders["reason_label"] = [reason_names.get(r, r) for r in offenders["tier_reason"]]
offenders["top_category"] = [ctx.category(c) for c in offenders["top_category_code"]]
picked = show_table(
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
    on_select="rerun",
    selection_mode="single-row",
    key="offenders_list",
)
rows = picked.selection.rows if picked is not None else []
reference = offenders["user_ref"].iloc[rows[0] if rows else 0]

st.subheader(text["history_heading"])
st.caption(text["history_caption"])
st.text(reference)  # data: shown as text, never Markdown
history = mq.tier_history(ctx.snapshot, reference)
history["tier_label"] = [tier_names.get(t, t) for t in history["tier"]]
history["reason_label"] = [reason_names.get(r, "–") for r in history["tier_reason"]]
history_columns = {
    "tier_label": text["col_tier"],
    "reason_label": text["col_reason"],
    "valid_from": datetime_column(text["col_from"], ctx.tz),
    "valid_to": datetime_column(text["col_to"], ctx.tz),
}
# The counts the rule saw when each stretch began (columns of fct_user_tier_history).
for column, header in (
    ("violations_180d", "col_180d"),
    ("zero_tolerance_violations", "col_zero"),
    ("reports_30d", "col_reports"),
):
    if column in history.columns:
        history_columns[column] = text[header]
show_table(history, history_columns)
st.subheader(text["violations_heading"])
violations = mq.account_takedowns(ctx.snapshot, reference)
if violations.empty:
    st.caption(text["violations_none"])
else:
    violations["category"] = [ctx.category(c) for c in violations["category_code"]]
    violations["trigger"] = labels(TRIGGERS, violations["trigger"])
    show_table(
        violations,
        {
            "taken_down_at": datetime_column(text["col_taken_down"], ctx.tz),
            "content_id": text["col_content"],
            "category": text["col_top"],
            "trigger": text["col_trigger"],
        },
    )
