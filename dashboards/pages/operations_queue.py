"""Operations queue: every SLA clock running at the data's as-of time that has used at least
75% of its target, worst first, and the alerts raised about them and about the feeds.
Refreshes every minute with the snapshot (sidebar switch).

Reads fct_open_sla_breaches, alerts.outbox and alerts.deliveries. Operations and admin only:
subject ids identify content, reports and cases.
"""

from __future__ import annotations

import streamlit as st

from dashboards import mart_queries as mq
from dashboards.components import count_or_dash, datetime_column, kpi, open_page, show_table

TEXT = {
    "en": {
        "title": "Operations queue",
        "intro": "Clocks running now past 75% of their target, breaches first, then by share "
        "of target used. Act from the top.",
        "clocks": {
            "takedown": "Takedown",
            "report_acknowledgement": "Report acknowledgement",
            "report_resolution": "Report resolution",
            "referral": "Referral",
        },
        "breach": "Breached",
        "near_breach": "Near breach",
        "kpi_help": "{breach} breached, {near} near breach",
        "filter": "Clocks",
        "empty": "No clock is past 75% of its target. Nothing to chase.",
        "col_status": "Status",
        "col_clock": "Clock",
        "col_subject": "Subject",
        "col_category": "Category",
        "col_used": "Target used",
        "col_elapsed": "Elapsed (min)",
        "col_target": "Target (min)",
        "col_started": "Started",
        "col_deadline": "Deadline",
        "alerts_heading": "Alert history",
        "alerts_caption": "Alerts raised by the pipeline, newest first, with each channel's "
        "delivery state.",
        "no_alerts": "No alert raised yet.",
        "col_raised": "Raised",
        "col_type": "Type",
        "col_severity": "Severity",
        "col_alert_status": "State",
        "col_title": "Alert",
        "col_deliveries": "Delivery",
        "col_error": "Last delivery error",
        "col_resolved": "Resolved",
    },
    "zh": {
        "title": "运营队列",
        "intro": "当前已用去时限 75% 以上的运行中时钟，"
        "超时优先，再按已用比例排序。请从上往下处理。",
        "clocks": {
            "takedown": "下架",
            "report_acknowledgement": "举报受理",
            "report_resolution": "举报处理",
            "referral": "移送",
        },
        "breach": "已超时",
        "near_breach": "临近超时",
        "kpi_help": "已超时 {breach}，临近超时 {near}",
        "filter": "时钟",
        "empty": "没有时钟超过时限的 75%，无需催办。",
        "col_status": "状态",
        "col_clock": "时钟",
        "col_subject": "对象",
        "col_category": "类别",
        "col_used": "已用时限",
        "col_elapsed": "已用（分钟）",
        "col_target": "时限（分钟）",
        "col_started": "开始",
        "col_deadline": "截止",
        "alerts_heading": "告警记录",
        "alerts_caption": "管道发出的告警，最新在前，并显示各渠道的投递状态。",
        "no_alerts": "尚无告警。",
        "col_raised": "发出时间",
        "col_type": "类型",
        "col_severity": "级别",
        "col_alert_status": "状态",
        "col_title": "告警",
        "col_deliveries": "投递",
        "col_error": "最近投递错误",
        "col_resolved": "解除时间",
    },
}
CLOCK_ORDER = ("takedown", "report_acknowledgement", "report_resolution", "referral")

ctx = open_page(
    "operations_queue", TEXT, ("fct_open_sla_breaches", "alerts_outbox", "alerts_deliveries")
)
text = ctx.text
clock_names: dict = text["clocks"]

counts = mq.open_clock_counts(ctx.snapshot)
for column, clock in zip(st.columns(len(CLOCK_ORDER)), CLOCK_ORDER, strict=True):
    rows = counts[counts["clock"] == clock].set_index("status")["clocks"]
    breach, near = int(rows.get("breach", 0)), int(rows.get("near_breach", 0))
    with column:
        kpi(
            clock_names[clock],
            count_or_dash(breach + near),
            help=text["kpi_help"].format(breach=breach, near=near),
            delta=f"{breach} {text['breach'].lower()}" if breach else None,
            alarm=True,
        )

chosen = st.pills(
    text["filter"],
    options=list(CLOCK_ORDER),
    selection_mode="multi",
    default=list(CLOCK_ORDER),
    format_func=clock_names.__getitem__,
    key="queue_clocks",
)
queue = mq.open_clocks(ctx.snapshot, tuple(chosen or CLOCK_ORDER))
if queue.empty:
    st.success(text["empty"], icon=":material/check_circle:")
else:
    queue["status_label"] = [
        ("🔴 " + text["breach"]) if s == "breach" else ("🟠 " + text["near_breach"])
        for s in queue["status"]
    ]
    queue["clock_label"] = [clock_names.get(c, c) for c in queue["clock"]]
    queue["category"] = [ctx.category(c) for c in queue["category_code"]]
    show_table(
        queue,
        {
            "status_label": text["col_status"],
            "clock_label": text["col_clock"],
            "subject_id": text["col_subject"],
            "category": text["col_category"],
            "used_share": st.column_config.NumberColumn(text["col_used"], format="percent"),
            "elapsed_minutes": st.column_config.NumberColumn(text["col_elapsed"], format="%.0f"),
            "target_minutes": text["col_target"],
            "clock_started_at": datetime_column(text["col_started"], ctx.tz),
            "deadline_at": datetime_column(text["col_deadline"], ctx.tz),
        },
        height=460,
    )

st.subheader(text["alerts_heading"])
alerts = mq.alert_history(ctx.snapshot)
if alerts.empty:
    st.caption(text["no_alerts"])
else:
    st.caption(text["alerts_caption"])
    show_table(
        alerts,
        {
            "raised_at": datetime_column(text["col_raised"], ctx.tz),
            "severity": text["col_severity"],
            "alert_type": text["col_type"],
            "status": text["col_alert_status"],
            "title": text["col_title"],
            "deliveries": text["col_deliveries"],
            "last_error": text["col_error"],
            "resolved_at": datetime_column(text["col_resolved"], ctx.tz),
        },
        height=360,
    )
