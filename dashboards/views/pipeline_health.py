"""Pipeline health, for operations: is every feed delivering, what did the ingestion gate load,
and what did it hold back (quarantined rows, rejected files, duplicate deliveries)?

Reads `marts.ops_ingest_ledger` and `marts.ops_quarantine` of the serving snapshot, and the
alert channels' state (`alerts.channels`, `alerts.deliveries`, `alerts.delivery_rounds`).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

from dashboards import auth, charts, deep_links, frame, queries
from dashboards.formatting import (
    format_age,
    format_count,
    format_rate,
    format_timestamp,
    minutes_between,
)
from dashboards.i18n import words
from dashboards.settings import get_dashboard_settings
from ocse.contracts import FEEDS

DEFAULT_RANGE_DAYS = 7
# Read when the snapshot has them (the alert delivery section); a snapshot without an alert
# store still shows the rest of the page. Declared for dashboards.exposures.
OPTIONAL_READS = ("alerts_channels", "alerts_deliveries", "alerts_delivery_rounds")
QUARANTINED_ROWS_SHOWN = 200
CHART_CONFIG = {"displayModeBar": False}

EN = {
    "title": "Pipeline health",
    "intro": (
        "Files the feeds delivered, what the ingestion gate did with them, and how fresh "
        "each feed is."
    ),
    "no_files": "The snapshot is published but no file has been ingested yet.",
    "filter_feeds": "Feeds",
    "filter_dates": "Ingested between",
    "filter_dates_help": "Whole days in the reporting time zone ({tz}).",
    "no_feed_selected": "Choose at least one feed.",
    "kpi_files": "Files processed",
    "kpi_files_help": "Files the gate processed in the selection, whatever the outcome.",
    "kpi_rows_loaded": "Rows loaded",
    "kpi_rows_loaded_help": "Rows that passed their feed's contract and reached the warehouse.",
    "kpi_rows_quarantined": "Rows quarantined",
    "kpi_rows_quarantined_help": (
        "Rows held back: rows that broke the contract, plus every row read from a rejected "
        "file. The rate is rows quarantined / rows read."
    ),
    "kpi_quarantine_rate": "{rate} of rows read",
    "kpi_files_rejected": "Files rejected",
    "kpi_files_rejected_help": "Files with a file-level problem; nothing of them was loaded.",
    "kpi_duplicates": "Duplicate deliveries",
    "kpi_duplicates_help": "Files whose bytes had already been processed; skipped.",
    "freshness_heading": "Data freshness",
    "freshness_caption": (
        "Per feed, now (the date range does not apply). A feed is stale when its last file "
        "that loaded rows is more than {minutes} minutes old "
        "(`OCSE_FRESHNESS_WARN_MINUTES`)."
    ),
    "freshness_stale": (
        "{count} of {total} feeds have loaded no new file for more than {minutes} minutes."
    ),
    "freshness_all_fresh": "Every feed loaded a file in the last {minutes} minutes.",
    "status_fresh": "🟢 Fresh",
    "status_stale": "🟠 Stale",
    "status_never": "⚪ No file yet",
    "col_feed": "Feed",
    "col_status": "Status",
    "col_last_loaded": "Last file loaded",
    "col_since_loaded": "Since last load",
    "col_last_ingested": "Last file ingested",
    "col_files": "Files (all time)",
    "outcomes_heading": "Files by outcome",
    "outcomes_y": "Files",
    "outcomes_caption": {
        "hour": "Files per hour of ingestion.",
        "day": "Files per day of ingestion.",
        "week": "Files per week of ingestion (weeks start on Monday).",
    },
    "reasons_heading": "Quarantine reasons",
    "reasons_x": "Quarantined rows",
    "reasons_caption": "Rows itemised in quarantine, by kind of contract breach; a row counts "
    "once for each kind it breaks.",
    "no_data": "Nothing in this selection.",
    "problems_heading": "Rejected and duplicate files",
    "problems_caption": "Rejected files stay in the landing folder; fix and re-deliver them.",
    "no_problems": "No rejected or duplicate file in this selection.",
    "col_ingested_at": "Ingested",
    "col_file": "File",
    "col_outcome": "Outcome",
    "col_error": "Error",
    "quarantine_heading": "Recent quarantined rows",
    "quarantine_caption": (
        "The {limit} most recent rows in the selection. Identifiers in the records are "
        "pseudonymised. Click a record cell to expand it, or select a row to see it below."
    ),
    "no_quarantine": "No quarantined row in this selection.",
    "col_quarantined_at": "Quarantined",
    "col_row": "Row",
    "col_reasons": "Reasons",
    "col_record": "Record",
    "record_heading": "**Record of the selected row**",
    "record_source": "{file}, row {row}",
    "record_not_json": "This record is not valid JSON; shown as stored:",
    "channels_heading": "Alert delivery",
    "channels_caption": (
        "Each alert channel as of this snapshot. A channel that fails is probed with backoff; "
        "its alerts wait, and severe ones are copied to the dead-letter channel. "
        "`ocse alerts retry [--failed]` re-queues."
    ),
    "channels_down": "Alert channel(s) down: {channels}. Their alerts are queued, not lost.",
    "channels_failed": "{count} deliveries failed for good (copied to the dead-letter channel).",
    "channels_ok": "Every alert channel took its last delivery.",
    "no_channels": "No alert has been raised yet.",
    "col_channel": "Channel",
    "col_state": "State",
    "state_up": "🟢 Up",
    "state_down": "🔴 Down",
    "col_down_since": "Down since",
    "col_last_error": "Last error",
    "col_delivered": "Delivered",
    "col_waiting": "Waiting",
    "col_failed": "Failed",
    "col_last_round": "Last round",
}
ZH = {
    "title": "数据管道健康",
    "intro": "各数据源交付的文件、入库闸门的处理结果，以及各数据源的新鲜度。",
    "no_files": "快照已发布，但尚未导入任何文件。",
    "filter_feeds": "数据源",
    "filter_dates": "导入日期",
    "filter_dates_help": "按报告时区（{tz}）的整日计算。",
    "no_feed_selected": "请至少选择一个数据源。",
    "kpi_files": "已处理文件",
    "kpi_files_help": "所选范围内闸门处理的文件（不论结果）。",
    "kpi_rows_loaded": "已入库行数",
    "kpi_rows_loaded_help": "符合数据契约并进入仓库的行。",
    "kpi_rows_quarantined": "隔离行数",
    "kpi_rows_quarantined_help": "被扣留的行：违反契约的行，加上被拒文件中的"
    "所有行。比率 = 隔离行数 / 读取行数。",
    "kpi_quarantine_rate": "占读取行数 {rate}",
    "kpi_files_rejected": "被拒文件",
    "kpi_files_rejected_help": "存在文件级问题的文件，其内容均未入库。",
    "kpi_duplicates": "重复交付",
    "kpi_duplicates_help": "内容已处理过的文件，已跳过。",
    "freshness_heading": "数据新鲜度",
    "freshness_caption": "按数据源，以当前时间计（不受日期范围影响）。若最近一次有行入库的文件早于 "
    "{minutes} 分钟，则该数据源视为过时（`OCSE_FRESHNESS_WARN_MINUTES`）。",
    "freshness_stale": "{total} 个数据源中有 {count} 个超过 {minutes} 分钟没有新文件入库。",
    "freshness_all_fresh": "所有数据源在最近 {minutes} 分钟内都有文件入库。",
    "status_fresh": "🟢 新鲜",
    "status_stale": "🟠 过时",
    "status_never": "⚪ 尚无文件",
    "col_feed": "数据源",
    "col_status": "状态",
    "col_last_loaded": "最近入库文件",
    "col_since_loaded": "距最近入库",
    "col_last_ingested": "最近导入文件",
    "col_files": "文件数（累计）",
    "outcomes_heading": "按结果统计文件",
    "outcomes_y": "文件数",
    "outcomes_caption": {
        "hour": "按导入小时统计的文件数。",
        "day": "按导入日期统计的文件数。",
        "week": "按导入周统计的文件数（周一起算）。",
    },
    "reasons_heading": "隔离原因",
    "reasons_x": "隔离行数",
    "reasons_caption": "隔离区中逐行记录的行，按违反契约的类型统计；一行违反几类就计几次。",
    "no_data": "所选范围内没有数据。",
    "problems_heading": "被拒和重复的文件",
    "problems_caption": "被拒文件保留在落地目录中；请修正后重新交付。",
    "no_problems": "所选范围内没有被拒或重复的文件。",
    "col_ingested_at": "导入时间",
    "col_file": "文件",
    "col_outcome": "结果",
    "col_error": "错误",
    "quarantine_heading": "最近隔离的行",
    "quarantine_caption": "所选范围内最近的 {limit} 行。记录中的标识符"
    "均已假名化。点击记录单元格展开，或选中一行在下方查看。",
    "no_quarantine": "所选范围内没有隔离的行。",
    "col_quarantined_at": "隔离时间",
    "col_row": "行号",
    "col_reasons": "原因",
    "col_record": "记录",
    "record_heading": "**所选行的记录**",
    "record_source": "{file}，第 {row} 行",
    "record_not_json": "该记录不是有效的 JSON，按存储原样显示：",
    "channels_heading": "告警投递",
    "channels_caption": "截至本快照的各告警渠道。失败的渠道会按退避间隔探测；其告警排队等待，"
    "严重告警另发至死信渠道。`ocse alerts retry [--failed]` 可重新排队。",
    "channels_down": "告警渠道不可用：{channels}。其告警已排队，不会丢失。",
    "channels_failed": "{count} 条投递最终失败（已转发至死信渠道）。",
    "channels_ok": "所有告警渠道都已接收最近一次投递。",
    "no_channels": "尚未产生告警。",
    "col_channel": "渠道",
    "col_state": "状态",
    "state_up": "🟢 正常",
    "state_down": "🔴 不可用",
    "col_down_since": "不可用起始",
    "col_last_error": "最近错误",
    "col_delivered": "已投递",
    "col_waiting": "等待中",
    "col_failed": "失败",
    "col_last_round": "最近一轮",
}
TEXTS = {"en": EN, "zh": ZH}
TEXT = EN  # the language of this run; set in main()
OUTCOME_LABELS_BY_LANGUAGE = {
    "en": {
        "loaded": "Loaded",
        "partially_quarantined": "Partially quarantined",
        "rejected": "Rejected",
        "duplicate": "Duplicate",
    },
    "zh": {
        "loaded": "已入库",
        "partially_quarantined": "部分隔离",
        "rejected": "被拒",
        "duplicate": "重复",
    },
}
OUTCOME_LABELS = OUTCOME_LABELS_BY_LANGUAGE["en"]


def feed_options(snapshot: queries.SnapshotIdentity) -> list[str]:
    """The contract feeds first, then any other feed the ledger knows."""
    delivered = queries.ingest_feeds(snapshot)
    return list(FEEDS) + sorted(feed for feed in delivered if feed not in FEEDS)


def chart_period(first_day: date, last_day: date) -> str:
    days = (last_day - first_day).days + 1
    if days <= 3:
        return "hour"
    if days <= 120:
        return "day"
    return "week"


def freshness_table(
    latest: pd.DataFrame, feeds: list[str], now: datetime, warn_minutes: float, tz: str
) -> pd.DataFrame:
    by_feed = latest.set_index("feed")
    rows = []
    for feed in feeds:
        known = feed in by_feed.index
        last_loaded = _as_datetime(by_feed.at[feed, "last_loaded_at"]) if known else None
        last_ingested = _as_datetime(by_feed.at[feed, "last_ingested_at"]) if known else None
        since = minutes_between(last_loaded, now)
        if since is None:
            status = TEXT["status_never"]
        elif since > warn_minutes:
            status = TEXT["status_stale"]
        else:
            status = TEXT["status_fresh"]
        rows.append(
            {
                TEXT["col_feed"]: feed,
                TEXT["col_status"]: status,
                TEXT["col_last_loaded"]: format_timestamp(last_loaded, tz),
                TEXT["col_since_loaded"]: format_age(since),
                TEXT["col_last_ingested"]: format_timestamp(last_ingested, tz),
                TEXT["col_files"]: int(by_feed.at[feed, "files"]) if known else 0,
            }
        )
    return pd.DataFrame(rows)


def _as_datetime(value: object) -> datetime | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).to_pydatetime()


def _in_tz(data: pd.DataFrame, columns: list[str], tz: str) -> pd.DataFrame:
    data = data.copy()
    for column in columns:
        data[column] = pd.to_datetime(data[column], utc=True).dt.tz_convert(tz)
    return data


def _datetime_column(label: str) -> st.column_config.Column:
    return st.column_config.DatetimeColumn(label, format="YYYY-MM-DD HH:mm")


# --- page sections ---------------------------------------------------------------------


def filters(
    snapshot: queries.SnapshotIdentity, info: queries.SnapshotInfo
) -> queries.IngestSelection:
    tz = info.reporting_tz
    bounds = queries.ingest_time_bounds(snapshot)
    if bounds is None:
        st.info(TEXT["no_files"], icon=":material/inbox:")
        st.stop()
    zone = ZoneInfo(tz)
    first_day, last_day = (moment.astimezone(zone).date() for moment in bounds)
    today = datetime.now(zone).date()
    default_first = max(first_day, last_day - timedelta(days=DEFAULT_RANGE_DAYS - 1))

    with st.container(border=True):
        feeds_col, dates_col = st.columns([3, 2])
        options = feed_options(snapshot)
        feeds = feeds_col.multiselect(
            TEXT["filter_feeds"], options, default=options, key="feed", bind="query-params"
        )
        picked = dates_col.date_input(
            TEXT["filter_dates"],
            value=(default_first, last_day),
            min_value=first_day,
            max_value=max(last_day, today),
            key="ingested",
            help=TEXT["filter_dates_help"].format(tz=tz),
            format="YYYY-MM-DD",
        )
    if not feeds:
        st.info(TEXT["no_feed_selected"], icon=":material/filter_alt:")
        st.stop()
    # While a range is being picked the widget holds only its first day.
    days = tuple(picked) if isinstance(picked, tuple | list) else (picked,)
    start_day, end_day = days[0], days[-1]
    return queries.IngestSelection.for_days(feeds, start_day, end_day, tz)


def kpi_row(snapshot: queries.SnapshotIdentity, selection: queries.IngestSelection) -> None:
    kpis = queries.ingest_kpis(snapshot, selection)
    files, loaded, quarantined, rejected, duplicates = st.columns(5)
    files.metric(
        TEXT["kpi_files"],
        format_count(kpis.files),
        help=TEXT["kpi_files_help"],
        border=True,
        height="stretch",
    )
    loaded.metric(
        TEXT["kpi_rows_loaded"],
        format_count(kpis.rows_loaded),
        help=TEXT["kpi_rows_loaded_help"],
        border=True,
        height="stretch",
    )
    quarantined.metric(
        TEXT["kpi_rows_quarantined"],
        format_count(kpis.rows_quarantined),
        delta=TEXT["kpi_quarantine_rate"].format(rate=format_rate(kpis.quarantine_rate)),
        delta_color="orange" if kpis.rows_quarantined else "gray",
        delta_arrow="off",
        help=TEXT["kpi_rows_quarantined_help"],
        border=True,
        height="stretch",
    )
    rejected.metric(
        TEXT["kpi_files_rejected"],
        format_count(kpis.files_rejected),
        help=TEXT["kpi_files_rejected_help"],
        border=True,
        height="stretch",
    )
    duplicates.metric(
        TEXT["kpi_duplicates"],
        format_count(kpis.files_duplicate),
        help=TEXT["kpi_duplicates_help"],
        border=True,
        height="stretch",
    )


def freshness(snapshot: queries.SnapshotIdentity, feeds: tuple[str, ...], tz: str) -> None:
    warn_minutes = get_dashboard_settings().freshness_warn_minutes
    minutes_text = f"{warn_minutes:g}"
    st.subheader(TEXT["freshness_heading"])
    st.caption(TEXT["freshness_caption"].format(minutes=minutes_text))
    table = freshness_table(
        queries.feed_freshness(snapshot, feeds), list(feeds), datetime.now(UTC), warn_minutes, tz
    )
    stale = int((table[TEXT["col_status"]] != TEXT["status_fresh"]).sum())
    if stale:
        st.warning(
            TEXT["freshness_stale"].format(count=stale, total=len(table), minutes=minutes_text),
            icon=":material/schedule:",
        )
    else:
        st.success(
            TEXT["freshness_all_fresh"].format(minutes=minutes_text), icon=":material/check:"
        )
    st.dataframe(table, hide_index=True, placeholder="–", key="freshness_table")


def outcome_and_reason_charts(
    snapshot: queries.SnapshotIdentity, selection: queries.IngestSelection, tz: str
) -> None:
    first_day = selection.start.date()
    last_day = (selection.end - timedelta(days=1)).date()
    period = chart_period(first_day, last_day)
    st.subheader(TEXT["outcomes_heading"])
    st.caption(TEXT["outcomes_caption"][period])
    outcomes = queries.files_by_outcome(snapshot, selection, period, tz)
    if outcomes.empty:
        st.info(TEXT["no_data"])
    else:
        st.plotly_chart(
            charts.files_by_outcome_figure(
                outcomes, period=period, outcome_labels=OUTCOME_LABELS, y_title=TEXT["outcomes_y"]
            ),
            key="outcomes_chart",
            config=CHART_CONFIG,
        )

    st.subheader(TEXT["reasons_heading"])
    st.caption(TEXT["reasons_caption"])
    reasons = queries.quarantine_reasons(snapshot, selection)
    if reasons.empty:
        st.info(TEXT["no_data"])
    else:
        st.plotly_chart(
            charts.quarantine_reasons_figure(reasons, x_title=TEXT["reasons_x"]),
            key="reasons_chart",
            config=CHART_CONFIG,
        )


def problem_files(
    snapshot: queries.SnapshotIdentity, selection: queries.IngestSelection, tz: str
) -> None:
    st.subheader(TEXT["problems_heading"])
    files = queries.problem_files(snapshot, selection)
    if files.empty:
        st.info(TEXT["no_problems"], icon=":material/check:")
        return
    st.caption(TEXT["problems_caption"])
    files = _in_tz(files, ["ingested_at"], tz)
    files["outcome"] = files["outcome"].map(lambda value: OUTCOME_LABELS.get(value, value))
    st.dataframe(
        files,
        placeholder="–",
        hide_index=True,
        key="problem_files_table",
        column_order=["ingested_at", "feed", "outcome", "error", "file_name"],
        column_config={
            "ingested_at": _datetime_column(TEXT["col_ingested_at"]),
            "feed": st.column_config.TextColumn(TEXT["col_feed"]),
            "outcome": st.column_config.TextColumn(TEXT["col_outcome"]),
            "error": st.column_config.TextColumn(TEXT["col_error"]),
            "file_name": st.column_config.TextColumn(TEXT["col_file"]),
        },
    )


def quarantined_rows(
    snapshot: queries.SnapshotIdentity, selection: queries.IngestSelection, tz: str
) -> None:
    st.subheader(TEXT["quarantine_heading"])
    rows = queries.quarantined_rows(snapshot, selection, limit=QUARANTINED_ROWS_SHOWN)
    if rows.empty:
        st.info(TEXT["no_quarantine"], icon=":material/check:")
        return
    st.caption(TEXT["quarantine_caption"].format(limit=QUARANTINED_ROWS_SHOWN))
    rows = _in_tz(rows, ["quarantined_at"], tz)
    rows["reason_codes"] = rows["reason_codes"].map(list)
    picked = st.dataframe(
        rows,
        placeholder="–",
        hide_index=True,
        key="quarantined_rows_table",
        on_select="rerun",
        selection_mode="single-row",
        column_config={
            "quarantined_at": _datetime_column(TEXT["col_quarantined_at"]),
            "feed": st.column_config.TextColumn(TEXT["col_feed"]),
            "file_name": st.column_config.TextColumn(TEXT["col_file"], width="medium"),
            "row_number": st.column_config.NumberColumn(
                TEXT["col_row"], format="%d", width="small"
            ),
            "reason_codes": st.column_config.ListColumn(TEXT["col_reasons"], width="medium"),
            "record": st.column_config.JsonColumn(TEXT["col_record"]),
        },
    )
    if picked.selection.rows:
        chosen = rows.iloc[picked.selection.rows[0]]
        with st.container(border=True):
            st.markdown(TEXT["record_heading"])
            # The file name is data: st.text shows it verbatim, never as Markdown.
            st.text(
                TEXT["record_source"].format(file=chosen["file_name"], row=chosen["row_number"])
            )
            try:
                st.json(json.loads(chosen["record"]), expanded=True)
            except (TypeError, ValueError):
                st.caption(TEXT["record_not_json"])
                st.code(str(chosen["record"]), language=None)


def alert_channels(snapshot: queries.SnapshotIdentity, tz: str) -> None:
    st.subheader(TEXT["channels_heading"])
    st.caption(TEXT["channels_caption"])
    alert_tables = ("alerts_channels", "alerts_deliveries", "alerts_delivery_rounds")
    if queries.missing_tables(snapshot, alert_tables):
        st.info(TEXT["no_channels"])
        return
    data = queries.alert_channel_health(snapshot)
    if data.empty:
        st.info(TEXT["no_channels"])
        return
    # down with alerts waiting: a channel last seen down with nothing to send is not news
    down = data.loc[(data["state"] == "down") & (data["waiting"] > 0), "channel"].tolist()
    failed = int(data["failed"].sum())
    if down:
        st.error(TEXT["channels_down"].format(channels=", ".join(down)), icon=":material/error:")
    elif failed:
        st.warning(TEXT["channels_failed"].format(count=failed), icon=":material/warning:")
    else:
        st.success(TEXT["channels_ok"], icon=":material/check:")
    data = _in_tz(data, ["down_since", "last_round_at"], tz)
    table = pd.DataFrame(
        {
            TEXT["col_channel"]: data["channel"],
            TEXT["col_state"]: data["state"].map(
                {"up": TEXT["state_up"], "down": TEXT["state_down"]}
            ),
            TEXT["col_delivered"]: data["delivered"],
            TEXT["col_waiting"]: data["waiting"],
            TEXT["col_failed"]: data["failed"],
            # blank for a channel that is up (a null datetime cell reads "None")
            TEXT["col_down_since"]: data["down_since"].dt.strftime("%Y-%m-%d %H:%M").fillna(""),
            TEXT["col_last_error"]: data["last_error"].where(data["state"] == "down", ""),
            TEXT["col_last_round"]: data["last_round_at"],
        }
    )
    st.dataframe(
        table,
        placeholder="–",
        hide_index=True,
        key="alert_channels_table",
        column_config={
            TEXT["col_last_round"]: _datetime_column(TEXT["col_last_round"]),
        },
    )


def main() -> None:
    global TEXT, OUTCOME_LABELS
    auth.require_page("pipeline_health")
    # its own filters are bound to the URL; entering it still tells the other pages that
    # they are left, so the period is restored when one is entered again
    deep_links.enter("pipeline_health")
    TEXT = words(TEXTS)
    OUTCOME_LABELS = words(OUTCOME_LABELS_BY_LANGUAGE)
    snapshot = frame.require_snapshot()
    frame.require_tables(snapshot, ("ops_ingest_ledger", "ops_quarantine"))
    info = frame.snapshot_info_or_stop(snapshot)
    tz = info.reporting_tz

    st.title(TEXT["title"])
    st.caption(TEXT["intro"])
    selection = filters(snapshot, info)
    kpi_row(snapshot, selection)
    freshness(snapshot, selection.feeds, tz)
    alert_channels(snapshot, tz)
    outcome_and_reason_charts(snapshot, selection, tz)
    problem_files(snapshot, selection, tz)
    quarantined_rows(snapshot, selection, tz)


main()
