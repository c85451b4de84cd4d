"""Operations queue: every SLA clock running at the data's as-of time that has used at least
75% of its target, worst first, and the alerts raised about them and about the feeds.
Refreshes every minute with the snapshot (sidebar switch).

Select a row to open its subject: what happened to it (fct_subject_events), its clocks
(fct_sla_clocks) and the alerts sent about it. Filters by clock, category and severity
(the alert severity the rule gives the clock: ocse.alerts.rules.clock_severity).

Reads fct_open_sla_breaches, fct_subject_events, fct_sla_clocks, alerts.outbox and
alerts.deliveries. Operations and admin only: subject ids identify content, reports and
cases. A display account (role `display`, a wall screen) gets the display mode: the same
counts and queue without subject ids, no drill-down, no alert history, refreshed every
minute whatever the sidebar switch says.
"""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from dashboards import deep_links
from dashboards import mart_queries as mq
from dashboards.components import count_or_dash, datetime_column, kpi, open_page, show_table
from dashboards.formatting import format_duration, format_share_of_target
from dashboards.i18n import language
from dashboards.labels import (
    ALERT_TYPES,
    BREACH_STATUS,
    CHANNELS,
    CLOCK_STATES,
    CLOCKS,
    DELIVERY_STATES,
    EVENT_DETAILS,
    SEVERITIES,
    SUBJECT_EVENTS,
    formatter,
    label,
    labels,
)
from ocse.alerts.rules import clock_severity

TEXT = {
    "en": {
        "title": "Operations queue",
        "intro": "Clocks running now past 75% of their target, breaches first, then by share "
        "of target used. Act from the top; select a row to open its subject (not on a wall "
        "display).",
        "kpi_help": "{breach} breached, {near} near breach",
        "breached": "{count} breached",
        "filter": "Clocks",
        "filter_categories": "Categories",
        "filter_severity": "Severity",
        "all": "All",
        "empty": "No clock is past 75% of its target. Nothing to chase.",
        "empty_filtered": "No running clock matches these filters.",
        "queue_caption": "{shown} of {total} clocks.",
        "col_status": "Status",
        "col_severity": "Severity",
        "col_clock": "Clock",
        "col_subject": "Subject",
        "col_category": "Category",
        "col_used": "Target used",
        "col_used_help": "Elapsed time as a share of the target; shown up to 1,000 %, the "
        "exact figure is in the subject's detail.",
        "col_over": "Over target by",
        "col_elapsed": "Elapsed",
        "col_target": "Target",
        "col_started": "Started",
        "col_deadline": "Deadline",
        "detail_heading": "Subject {subject}",
        "detail_pick": "Select a row of the queue to open its subject.",
        "detail_clock": "{clock}: {status}, {elapsed} elapsed of a {target} target "
        "({share:.1%} of target), started {started}, deadline {deadline}.",
        "events_heading": "What happened to it (as known at T)",
        "no_events": "No event recorded for this subject.",
        "col_when": "When",
        "col_event": "Event",
        "col_source": "Record",
        "col_detail": "Detail",
        "col_user": "Account (reference)",
        "clocks_heading": "Its clocks",
        "col_state": "State",
        "col_stopped": "Stopped",
        "subject_alerts": "Alerts sent about it",
        "alerts_heading": "Alert history",
        "display_caption": "Display mode: counts and the queue without subject references, "
        "refreshed every minute. Open the subjects from an operations account.",
        "alerts_caption": "Alerts raised by the pipeline, newest first, with each channel's "
        "delivery state.",
        "no_alerts": "No alert raised yet.",
        "col_raised": "Raised",
        "col_type": "Type",
        "col_alert_status": "State",
        "col_title": "Alert",
        "col_deliveries": "Delivery",
        "col_error": "Last delivery error",
        "col_resolved": "Resolved",
    },
    "zh": {
        "title": "运营队列",
        "intro": "当前已用去时限 75% 以上的运行中时钟，超时优先，再按已用比例排序。"
        "请从上往下处理；选择一行可打开其对象（展示屏上不可用）。",
        "kpi_help": "已超时 {breach}，临近超时 {near}",
        "breached": "已超时 {count}",
        "filter": "时钟",
        "filter_categories": "类别",
        "filter_severity": "级别",
        "all": "全部",
        "empty": "没有时钟超过时限的 75%，无需催办。",
        "empty_filtered": "没有符合筛选条件的运行中时钟。",
        "queue_caption": "显示 {shown} / {total} 个时钟。",
        "col_status": "状态",
        "col_severity": "级别",
        "col_clock": "时钟",
        "col_subject": "对象",
        "col_category": "类别",
        "col_used": "已用时限",
        "col_used_help": "已用时间占时限的比例；最多显示到 1,000%，准确数值见对象详情。",
        "col_over": "超出时限",
        "col_elapsed": "已用时间",
        "col_target": "时限",
        "col_started": "开始",
        "col_deadline": "截止",
        "detail_heading": "对象 {subject}",
        "detail_pick": "在队列中选择一行以打开其对象。",
        "detail_clock": "{clock}：{status}，已用 {elapsed}，时限 {target}（为时限的 {share:.1%}），"
        "开始于 {started}，截止 {deadline}。",
        "events_heading": "处理经过（截至 T 已知）",
        "no_events": "该对象没有记录的事件。",
        "col_when": "时间",
        "col_event": "事件",
        "col_source": "记录",
        "col_detail": "详情",
        "col_user": "账号（假名标识）",
        "clocks_heading": "相关时钟",
        "col_state": "状态",
        "col_stopped": "停止",
        "subject_alerts": "就此发出的告警",
        "alerts_heading": "告警记录",
        "display_caption": "展示模式：仅显示计数和不含对象标识的队列，每分钟刷新。"
        "请用运营账号查看具体对象。",
        "alerts_caption": "管道发出的告警，最新在前，并显示各渠道的投递状态。",
        "no_alerts": "尚无告警。",
        "col_raised": "发出时间",
        "col_type": "类型",
        "col_alert_status": "状态",
        "col_title": "告警",
        "col_deliveries": "投递",
        "col_error": "最近投递错误",
        "col_resolved": "解除时间",
    },
}
CLOCK_ORDER = ("takedown", "report_acknowledgement", "report_resolution", "referral")
# Status marks drawn by the grid itself (no emoji: the fonts of every screen have these).
STATUS_MARK = {"breach": "●", "near_breach": "○"}
# Clock alerts rendered in Chinese from their facts (the stored title is English).
ZH_CLOCK_WORDS = {
    "takedown": "仍可见",
    "report_acknowledgement": "未受理",
    "report_resolution": "未处理完结",
    "referral": "未移送主管机关",
}


def alert_title(row) -> str:
    """The alert's title in the page's language: English as stored; Chinese composed from
    the alert's facts for clock alerts, and type plus subject for the others."""
    if language() != "zh":
        return row.title
    if row.alert_type in ZH_CLOCK_WORDS:
        facts = json.loads(row.payload).get("facts", {}) if row.payload else {}
        what = (
            "CSAM"
            if (row.alert_type == "takedown" and facts.get("is_csam"))
            else (facts.get("category_label_zh") or ctx.category(row.category_code))
        )
        state = "已超过截止时间" if row.status == "breach" else "临近截止时间"
        elapsed = facts.get("elapsed_minutes")
        target = facts.get("target_minutes")
        used = f"：已用 {elapsed:,.0f} / {target:,} 分钟" if elapsed and target else ""
        return (
            f"{what}{ZH_CLOCK_WORDS[row.alert_type]}，{state}{used}"
            f"（{label(CLOCKS, row.alert_type)} {row.subject_id}）"
        )
    return f"{label(ALERT_TYPES, row.alert_type)}：{row.subject_id or ''}"


def deliveries_label(value: object) -> str:
    """'ops_webhook:delivered, ...' as channel and state labels."""
    if not isinstance(value, str) or not value:
        return "–"
    parts = []
    for item in value.split(", "):
        channel, _, state = item.partition(": ")
        parts.append(f"{label(CHANNELS, channel)}: {label(DELIVERY_STATES, state)}")
    return ", ".join(parts)


def _alert_rows(alerts: pd.DataFrame) -> pd.DataFrame:
    alerts = alerts.copy()
    alerts["severity_label"] = labels(SEVERITIES, alerts["severity"])
    alerts["type_label"] = labels(ALERT_TYPES, alerts["alert_type"])
    alerts["status_label"] = labels(BREACH_STATUS, alerts["status"])
    alerts["title_label"] = [alert_title(row) for row in alerts.itertuples(index=False)]
    alerts["deliveries_label"] = [deliveries_label(d) for d in alerts["deliveries"]]
    return alerts


def _alerts_table(alerts: pd.DataFrame, height: int | str = "auto") -> None:
    show_table(
        _alert_rows(alerts),
        {
            "raised_at": datetime_column(text["col_raised"], ctx.tz),
            "severity_label": text["col_severity"],
            "type_label": text["col_type"],
            "status_label": text["col_alert_status"],
            "title_label": st.column_config.TextColumn(text["col_title"], width="large"),
            "deliveries_label": text["col_deliveries"],
            "last_error": text["col_error"],
            "resolved_at": datetime_column(text["col_resolved"], ctx.tz),
        },
        height=height,
    )


ctx = open_page(
    "operations_queue",
    TEXT,
    (
        "fct_open_sla_breaches",
        "fct_subject_events",
        "fct_sla_clocks",
        "alerts_outbox",
        "alerts_deliveries",
    ),
)
text = ctx.text
# The wall screen: read-only, nothing individual-level, always refreshing.
display = not ctx.viewer.sees_individuals

counts = mq.open_clock_counts(ctx.snapshot)
for column, clock in zip(st.columns(len(CLOCK_ORDER)), CLOCK_ORDER, strict=True):
    rows = counts[counts["clock"] == clock].set_index("status")["clocks"]
    breach, near = int(rows.get("breach", 0)), int(rows.get("near_breach", 0))
    with column:
        kpi(
            label(CLOCKS, clock),
            count_or_dash(breach + near),
            help=text["kpi_help"].format(breach=breach, near=near),
            delta=text["breached"].format(count=breach) if breach else None,
            alarm=True,
        )

if display:
    st.caption(text["display_caption"])
    queue = mq.open_clocks_display(ctx.snapshot, CLOCK_ORDER)
else:
    queue = mq.open_clocks(ctx.snapshot, CLOCK_ORDER)
queue["severity"] = [
    clock_severity(clock, status, bool(is_csam))
    for clock, status, is_csam in zip(
        queue["clock"], queue["status"], queue["is_csam"], strict=True
    )
]
left, middle, right = st.columns([2, 2, 1])
# the filters are in the URL (a bookmark of "my queue"); subject ids never are
restored = deep_links.restore("queue_clocks", "clocks", deep_links.some_of(CLOCK_ORDER))
with left:
    chosen = st.pills(
        text["filter"],
        options=list(CLOCK_ORDER),
        selection_mode="multi",
        default=None if restored else list(CLOCK_ORDER),
        format_func=formatter(CLOCKS),
        key="queue_clocks",
    )
deep_links.restore("queue_categories", "categories", deep_links.some_of(ctx.labels))
deep_links.restore("queue_severity", "severity", deep_links.some_of(SEVERITIES))
with middle:
    categories = st.multiselect(
        text["filter_categories"],
        options=list(ctx.labels),
        format_func=ctx.category,
        placeholder=text["all"],
        key="queue_categories",
    )
with right:
    severities = st.multiselect(
        text["filter_severity"],
        options=list(SEVERITIES),
        format_func=formatter(SEVERITIES),
        placeholder=text["all"],
        key="queue_severity",
    )
deep_links.publish("queue_clocks", "clocks", chosen, list(CLOCK_ORDER), deep_links.join)
deep_links.publish("queue_categories", "categories", categories, [], deep_links.join)
deep_links.publish("queue_severity", "severity", severities, [], deep_links.join)
total = len(queue)
shown = queue[
    queue["clock"].isin(chosen or CLOCK_ORDER)
    & (queue["category_code"].isin(categories) if categories else True)
    & (queue["severity"].isin(severities) if severities else True)
].reset_index(drop=True)
if queue.empty:
    st.success(text["empty"], icon=":material/check_circle:")
elif shown.empty:
    st.info(text["empty_filtered"], icon=":material/filter_alt_off:")
else:
    st.caption(text["queue_caption"].format(shown=f"{len(shown):,}", total=f"{total:,}"))
    shown["status_label"] = [
        f"{STATUS_MARK.get(s, '')} {label(BREACH_STATUS, s)}" for s in shown["status"]
    ]
    shown["severity_label"] = labels(SEVERITIES, shown["severity"])
    shown["clock_label"] = labels(CLOCKS, shown["clock"])
    shown["category"] = [ctx.category(c) for c in shown["category_code"]]
    shown["used_label"] = [format_share_of_target(v) for v in shown["used_share"]]
    shown["over_label"] = [
        format_duration(e - t) if e > t else "–"
        for e, t in zip(shown["elapsed_minutes"], shown["target_minutes"], strict=True)
    ]
    columns = {
        # Eight columns fit a laptop screen; the start, elapsed time and target are in
        # the subject's detail line.
        "status_label": st.column_config.TextColumn(text["col_status"], width="small"),
        "severity_label": st.column_config.TextColumn(text["col_severity"], width="small"),
        "clock_label": text["col_clock"],
        "subject_id": text["col_subject"],
        "category": st.column_config.TextColumn(text["col_category"], width="medium"),
        "used_label": st.column_config.TextColumn(
            text["col_used"], help=text["col_used_help"], width="small"
        ),
        "over_label": text["col_over"],
        "deadline_at": datetime_column(text["col_deadline"], ctx.tz),
    }
    if display:
        columns.pop("subject_id")
        show_table(shown, columns, height=640, key="queue_table")
        st.stop()
    picked = show_table(
        shown, columns, height=420, on_select="rerun", selection_mode="single-row",
        key="queue_table",
    )  # fmt: skip
    rows = picked.selection.rows if picked is not None else []
    if not rows:
        st.caption(text["detail_pick"])
    else:
        row = shown.iloc[rows[0]]
        st.subheader(text["detail_heading"].format(subject=row["subject_id"]))
        st.markdown(
            text["detail_clock"].format(
                clock=label(CLOCKS, row["clock"]),
                status=label(BREACH_STATUS, row["status"]),
                elapsed=format_duration(row["elapsed_minutes"]),
                target=format_duration(float(row["target_minutes"])),
                share=row["used_share"],
                started=pd.Timestamp(row["clock_started_at"])
                .tz_convert(ctx.tz)
                .strftime("%Y-%m-%d %H:%M"),
                deadline=pd.Timestamp(row["deadline_at"])
                .tz_convert(ctx.tz)
                .strftime("%Y-%m-%d %H:%M"),
            )
        )
        subject = str(row["subject_id"])
        st.markdown(f"**{text['events_heading']}**")
        events = mq.subject_events(ctx.snapshot, subject)
        if events.empty:
            st.caption(text["no_events"])
        else:
            events["event_label"] = labels(SUBJECT_EVENTS, events["event"])
            events["category"] = [ctx.category(c) for c in events["category_code"]]
            events["detail_label"] = [label(EVENT_DETAILS, d) for d in events["detail"]]
            show_table(
                events,
                {
                    "event_at": datetime_column(text["col_when"], ctx.tz),
                    "event_label": text["col_event"],
                    "source_id": text["col_source"],
                    "detail_label": text["col_detail"],
                    "category": text["col_category"],
                    "user_ref": text["col_user"],
                },
            )
        st.markdown(f"**{text['clocks_heading']}**")
        clocks = mq.subject_clocks(ctx.snapshot, subject)
        clocks["clock_label"] = labels(CLOCKS, clocks["clock"])
        clocks["state_label"] = labels(CLOCK_STATES, clocks["state"])
        clocks["elapsed_label"] = [format_duration(v) for v in clocks["elapsed_minutes"]]
        clocks["target_label"] = [
            format_duration(float(v)) if pd.notna(v) else "–" for v in clocks["target_minutes"]
        ]
        show_table(
            clocks,
            {
                "clock_label": text["col_clock"],
                "state_label": text["col_state"],
                "clock_started_at": datetime_column(text["col_started"], ctx.tz),
                "deadline_at": datetime_column(text["col_deadline"], ctx.tz),
                "stopped_at": datetime_column(text["col_stopped"], ctx.tz),
                "elapsed_label": text["col_elapsed"],
                "target_label": text["col_target"],
            },
        )
        st.markdown(f"**{text['subject_alerts']}**")
        sent = mq.alert_history(ctx.snapshot, subject_id=subject)
        if sent.empty:
            st.caption(text["no_alerts"])
        else:
            _alerts_table(sent)

if display:
    st.stop()  # the alert history names subjects
st.subheader(text["alerts_heading"])
alerts = mq.alert_history(ctx.snapshot)
if alerts.empty:
    st.caption(text["no_alerts"])
else:
    st.caption(text["alerts_caption"])
    _alerts_table(alerts, height=360)
