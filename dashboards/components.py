"""What the metric pages share: the page opening (guard, snapshot, title), the period and
category filter, KPIs with period-over-period change, and table display."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta

import pandas as pd
import streamlit as st

from dashboards import auth, deep_links, frame, mart_queries, queries
from dashboards.formatting import format_count, format_duration, format_rate, format_timestamp
from dashboards.i18n import category_label, words

CHART_CONFIG = {"displayModeBar": False, "responsive": True}

# One default period for every page: the 30 days up to the data's as-of day.
PRESETS = ("7d", "30d", "90d", "last_month", "last_quarter", "ytd", "custom")
DEFAULT_PRESET = "30d"
COMPARISONS = ("previous", "year")

TEXT = {
    "en": {
        "filter_period": "Period",
        "filter_period_help": "Whole days in the reporting time zone ({tz}), up to the data's "
        "as-of day. The same choice applies on every page.",
        "presets": {
            "7d": "Last 7 days",
            "30d": "Last 30 days",
            "90d": "Last 90 days",
            "last_month": "Last full month",
            "last_quarter": "Last full quarter",
            "ytd": "Year to date",
            "custom": "Custom range",
        },
        "filter_dates": "From – to",
        "filter_compare": "Compare with",
        "compare": {"previous": "Previous period", "year": "Same period a year earlier"},
        "filter_categories": "Categories",
        "all_categories": "All categories",
        "no_category": "Choose at least one category.",
        "no_data_yet": "The snapshot has no takedowns or reports yet.",
        "period_line": "{first} – {last} ({days} days)",
        "vs": "compared with {first} – {last}",
        "no_comparison": "no comparison: data starts {first}",
        "partial_day": "{last} is partial: data to {as_of}",
        "pp": "{sign}{value:.1f} pp",
        "pct": "{sign}{value:.0%}",
    },
    "zh": {
        "filter_period": "时间段",
        "filter_period_help": "按报告时区（{tz}）的整日计算，截至数据截至日。"
        "所选时段在每个页面通用。",
        "presets": {
            "7d": "最近 7 天",
            "30d": "最近 30 天",
            "90d": "最近 90 天",
            "last_month": "上一个完整月",
            "last_quarter": "上一个完整季度",
            "ytd": "年初至今",
            "custom": "自定义",
        },
        "filter_dates": "起止日期",
        "filter_compare": "对比",
        "compare": {"previous": "上一时段", "year": "上年同期"},
        "filter_categories": "类别",
        "all_categories": "全部类别",
        "no_category": "请至少选择一个类别。",
        "no_data_yet": "快照中尚无下架或举报数据。",
        "period_line": "{first} – {last}（{days} 天）",
        "vs": "对比 {first} – {last}",
        "no_comparison": "不作对比：数据始于 {first}",
        "partial_day": "{last} 为不完整日：数据截至 {as_of}",
        "pp": "{sign}{value:.1f} 个百分点",
        "pct": "{sign}{value:.0%}",
    },
}


@dataclass(frozen=True)
class PageContext:
    viewer: auth.Viewer
    snapshot: queries.SnapshotIdentity
    info: queries.SnapshotInfo
    text: Mapping[str, object]
    labels: dict[str, tuple[str, str]]

    @property
    def tz(self) -> str:
        return self.info.reporting_tz

    def category(self, code: str | None) -> str:
        return category_label(self.labels, code)


def open_page(page_id: str, page_text: Mapping, tables: tuple[str, ...]) -> PageContext:
    """The guard first (nothing is queried for a refused role), then the snapshot."""
    viewer = auth.require_page(page_id)
    deep_links.enter(page_id)  # a page just entered restores its filters from the URL
    snapshot = frame.require_snapshot()
    frame.require_tables(snapshot, ("dim_categories", *tables))
    info = frame.snapshot_info_or_stop(snapshot)
    text = words(page_text)
    st.title(text["title"])
    st.caption(text["intro"])
    labels = mart_queries.category_labels(snapshot)
    return PageContext(viewer, snapshot, info, text, labels)


def preset_period(preset: str, last: date) -> tuple[date, date]:
    """The days a preset names, with `last` the data's as-of day (the day of T)."""
    if preset in ("7d", "30d", "90d"):
        return last - timedelta(days=int(preset[:-1]) - 1), last
    if preset == "last_month":
        end = last.replace(day=1) - timedelta(days=1)
        return end.replace(day=1), end
    if preset == "last_quarter":
        quarter_start = last.replace(month=3 * ((last.month - 1) // 3) + 1, day=1)
        end = quarter_start - timedelta(days=1)
        return end.replace(month=3 * ((end.month - 1) // 3) + 1, day=1), end
    if preset == "ytd":
        return last.replace(month=1, day=1), last
    raise ValueError(f"unknown preset {preset!r}")


def comparison_period(
    period: mart_queries.Period, preset: str, compare: str
) -> mart_queries.Period:
    """What a period is compared with: a year earlier, or the period just before it (the
    previous month or quarter for those presets, else the same number of days)."""
    if compare == "year":
        return period.year_before()
    if preset in ("last_month", "last_quarter"):
        first, last = preset_period(preset, period.first_day)
        return mart_queries.Period(first, last, period.categories)
    return period.previous()


def period_filter(ctx: PageContext, *, with_categories: bool = True) -> mart_queries.Period:
    """Preset or custom range (bounded by the data), comparison, categories. The returned
    period's `comparison` is None when the data does not cover the comparison period.
    Stops the page when there is no data at all."""
    text = words(TEXT)
    bounds = mart_queries.data_days(ctx.snapshot)
    if bounds is None:
        st.info(text["no_data_yet"], icon=":material/hourglass_empty:")
        st.stop()
    data_first, last = bounds
    columns = st.columns([1, 1, 1, 2] if with_categories else [1, 1, 1])
    presets: dict = text["presets"]
    # Each filter: restored on entering the page (from the URL, else the last page's
    # choice), and written back to the URL (`deep_links`).
    with columns[0]:
        restored = deep_links.restore(
            "filter_preset", "period", deep_links.one_of(PRESETS), carry=True
        )
        preset = st.selectbox(
            text["filter_period"],
            options=list(PRESETS),
            index=0 if restored else PRESETS.index(DEFAULT_PRESET),
            format_func=presets.__getitem__,
            key="filter_preset",
            help=text["filter_period_help"].format(tz=ctx.tz),
        )
    deep_links.publish("filter_preset", "period", preset, DEFAULT_PRESET, carry=True)
    default_range = preset_period(DEFAULT_PRESET, last)
    if preset == "custom":
        low = data_first - timedelta(days=366)
        with columns[1]:
            value = deep_links.initial(
                "filter_dates", "dates", deep_links.date_range(low, last), default_range
            )
            chosen = st.date_input(
                text["filter_dates"],
                value=value,
                min_value=low,
                max_value=last,
                key="filter_dates",
            )
        start, end = _date_range(chosen, *default_range)
        deep_links.publish(
            "filter_dates", "dates", (start, end), None, deep_links.format_range, carry=True
        )
    else:
        start, end = preset_period(preset, last)
        deep_links.publish("filter_dates", "dates", None, None)
    compares: dict = text["compare"]
    with columns[2]:
        # index 0 is also the default, so a restored value needs no other index
        deep_links.restore("filter_compare", "compare", deep_links.one_of(COMPARISONS), carry=True)
        compare = st.selectbox(
            text["filter_compare"],
            options=list(COMPARISONS),
            index=0,
            format_func=compares.__getitem__,
            key="filter_compare",
        )
    deep_links.publish("filter_compare", "compare", compare, COMPARISONS[0], carry=True)
    codes = list(ctx.labels)
    if with_categories:
        with columns[3]:
            deep_links.restore(
                "filter_categories", "categories", deep_links.some_of(codes), carry=True
            )
            picked = st.multiselect(
                text["filter_categories"],
                options=codes,
                default=None,
                format_func=ctx.category,
                placeholder=text["all_categories"],
                key="filter_categories",
            )
        deep_links.publish(
            "filter_categories", "categories", picked, [], deep_links.join, carry=True
        )
        codes = [code for code in picked if code in ctx.labels] or codes
    period = mart_queries.Period(start, end, tuple(codes))
    against = comparison_period(period, preset, compare)
    covered = against.covered_by(data_first)
    period = replace(period, comparison=against if covered else None)
    st.session_state["ocse_data_first_day"] = data_first
    _period_caption(ctx, period, against, data_first, last)
    return period


def _period_caption(
    ctx: PageContext,
    period: mart_queries.Period,
    against: mart_queries.Period,
    data_first: date,
    last: date,
) -> None:
    text = words(TEXT)
    parts = [
        text["period_line"].format(first=period.first_day, last=period.last_day, days=period.days)
    ]
    if period.comparison is not None:
        parts.append(text["vs"].format(first=against.first_day, last=against.last_day))
    else:
        parts.append(text["no_comparison"].format(first=data_first))
    if period.last_day == last:
        as_of = format_timestamp(ctx.info.as_of, ctx.tz)
        parts.append(text["partial_day"].format(last=last, as_of=as_of))
    st.caption(" · ".join(parts))


def _date_range(chosen: object, default_first: date, last: date) -> tuple[date, date]:
    # While the user is picking, the widget holds one date; use it as a one-day range.
    if isinstance(chosen, tuple | list):
        if len(chosen) == 2:
            return chosen[0], chosen[1]
        if len(chosen) == 1:
            return chosen[0], chosen[0]
        return default_first, last
    if isinstance(chosen, date):
        return chosen, chosen
    return default_first, last


def compared(fetch, period: mart_queries.Period, *args) -> tuple[dict, dict]:
    """`fetch(snapshot, period, *args)` for the period and for its comparison; without a
    comparison the second is a mapping of every figure to None (so no delta is drawn)."""
    now = fetch(period, *args)
    if period.comparison is None:
        return now, defaultdict(lambda: None)
    return now, fetch(period.comparison, *args)


# --- KPIs ----------------------------------------------------------------------------------


def rate_delta(current: float | None, previous: float | None) -> str | None:
    """Change of a rate, in percentage points."""
    if current is None or previous is None:
        return None
    change = (current - previous) * 100
    return words(TEXT)["pp"].format(sign="+" if change >= 0 else "-", value=abs(change))


def relative_delta(current: float | None, previous: float | None) -> str | None:
    """Relative change of a count or duration; none when the previous value was zero."""
    if current is None or not previous:
        return None
    change = current / previous - 1
    return words(TEXT)["pct"].format(sign="+" if change >= 0 else "-", value=abs(change))


def kpi(
    label: str,
    value: str,
    *,
    delta: str | None = None,
    help: str | None = None,
    lower_is_better: bool = False,
    neutral: bool = False,
    alarm: bool = False,
) -> None:
    """`alarm`: the delta is a warning to read (red, no arrow), not a change."""
    if alarm:
        st.metric(
            label, value, delta=delta, help=help, delta_color="red", delta_arrow="off", border=True
        )
        return
    st.metric(
        label,
        value,
        delta=delta,
        help=help,
        delta_color="off" if neutral else ("inverse" if lower_is_better else "normal"),
        border=True,
    )


def format_minutes(minutes: float | None) -> str:
    """A duration as people read it: `42 min`, `8 h 30 min`, `27 d 19 h`."""
    if minutes is None or pd.isna(minutes):
        return "–"
    return format_duration(float(minutes))


def count_or_dash(value: object) -> str:
    if value is None or pd.isna(value):
        return "–"
    return format_count(int(value))


def rate_or_dash(value: object) -> str:
    if value is None or pd.isna(value):
        return format_rate(None)
    return format_rate(float(value))


def show_table(frame: pd.DataFrame, columns: Mapping[str, object], **kwargs) -> object:
    """A read-only table; `columns` maps column -> header or st.column_config.*.
    Values are shown as text by the grid, never interpreted as HTML or Markdown. With
    `on_select="rerun"` (and a key) it returns the selection state."""
    config = {
        name: (st.column_config.Column(spec) if isinstance(spec, str) else spec)
        for name, spec in columns.items()
    }
    return st.dataframe(
        frame[list(columns)],
        column_config=config,
        hide_index=True,
        width="stretch",
        placeholder="–",  # an empty cell reads as a dash, not the grid's default "None"
        **kwargs,
    )


def datetime_column(label: str, tz: str) -> st.column_config.DatetimeColumn:
    """A UTC timestamp shown as wall-clock minutes in the reporting time zone."""
    return st.column_config.DatetimeColumn(label, format="YYYY-MM-DD HH:mm", timezone=tz)


def with_category_labels(ctx: PageContext, frame: pd.DataFrame) -> pd.DataFrame:
    """Adds `category`: the label of `category_code` in the page's language (blank when the
    row applies to every category)."""
    frame = frame.copy()
    frame["category"] = [
        ctx.category(code) if isinstance(code, str) else "" for code in frame["category_code"]
    ]
    return frame


# --- the rows behind the KPIs ----------------------------------------------------------------

ROWS_TEXT = {
    "en": {
        "heading": "The rows behind these figures",
        "caption": "The published rows the figures above add up, for the period and categories "
        "chosen.",
        "caption_individuals": "Your role also sees the records themselves, newest first.",
        "groups": {"takedowns": "Takedowns", "reports": "Reports", "cases": "Cases"},
        "view": "Show",
        "views": {"published": "Published rows (per day or month)", "records": "Records"},
        "page": "Page",
        "showing": "{first}–{last} of {total}",
        "none": "No row in this period.",
    },
    "zh": {
        "heading": "这些数字背后的数据行",
        "caption": "上方数字所汇总的已发布数据行（所选时段和类别）。",
        "caption_individuals": "您的角色还可查看记录本身，最新在前。",
        "groups": {"takedowns": "下架", "reports": "举报", "cases": "案件"},
        "view": "显示",
        "views": {"published": "已发布数据行（按日或月）", "records": "记录"},
        "page": "页码",
        "showing": "第 {first}–{last} 条，共 {total} 条",
        "none": "该时段内没有数据行。",
    },
}
ROWS_PAGE_SIZE = 100


def rows_behind(ctx: PageContext, period: mart_queries.Period, groups: tuple[str, ...]) -> None:
    """An expander under a page's KPIs: the rpt_* rows they sum, and for operations and
    admin the fct_* records, paged (never a silent cap)."""
    text = words(ROWS_TEXT)
    with st.expander(text["heading"], icon=":material/table_rows:"):
        st.caption(
            text["caption"]
            + (" " + text["caption_individuals"] if ctx.viewer.sees_individuals else "")
        )
        names: dict = text["groups"]
        left, middle, right = st.columns([2, 2, 1])
        with left:
            group = (
                st.segmented_control(
                    text["view"],
                    options=list(groups),
                    default=groups[0],
                    format_func=names.__getitem__,
                    key="rows_group",
                )
                or groups[0]
            )
        views = ["published", "records"] if ctx.viewer.sees_individuals else ["published"]
        with middle:
            view = (
                st.segmented_control(
                    " ",
                    options=views,
                    default="published",
                    format_func=text["views"].__getitem__,
                    key="rows_view",
                )
                or "published"
            )
        if view == "published":
            rows = mart_queries.published_rows(ctx.snapshot, group, period)
        else:
            total = mart_queries.individual_row_count(ctx.snapshot, group, period, ctx.tz)
            pages = max(1, -(-total // ROWS_PAGE_SIZE))
            with right:
                page = int(
                    st.number_input(
                        text["page"], min_value=1, max_value=pages, value=1, key="rows_page"
                    )
                )
            page = min(page, pages)
            rows = mart_queries.individual_rows(
                ctx.snapshot,
                group,
                period,
                ctx.tz,
                limit=ROWS_PAGE_SIZE,
                offset=(page - 1) * ROWS_PAGE_SIZE,
            )
            first = (page - 1) * ROWS_PAGE_SIZE + 1
            st.caption(
                text["showing"].format(
                    first=f"{first:,}", last=f"{first + len(rows) - 1:,}", total=f"{total:,}"
                )
            )
        if rows.empty:
            st.caption(text["none"])
            return
        show_table(labelled_rows(ctx, rows), column_headers(rows.columns, ctx.tz), height=320)


def labelled_rows(ctx: PageContext, rows: pd.DataFrame) -> pd.DataFrame:
    """Codes replaced by their labels (categories from the data, the rest from labels)."""
    from dashboards import labels

    rows = rows.copy()
    vocabularies = {
        "channel": labels.REPORT_CHANNELS,
        "trigger": labels.TRIGGERS,
        "victim_support": labels.VICTIM_SUPPORT,
        "outcome": labels.CASE_OUTCOMES,
    }
    if "category_code" in rows.columns:
        rows["category_code"] = [ctx.category(c) for c in rows["category_code"]]
    for column, vocabulary in vocabularies.items():
        if column in rows.columns:
            rows[column] = labels.labels(vocabulary, rows[column])
    for column in rows.columns:
        if column.startswith("is_"):
            rows[column] = rows[column].astype("boolean")
    return rows


COLUMN_HEADERS = {
    "en": {
        "report_date": "Day",
        "month_start": "Month",
        "category_code": "Category",
        "channel": "Channel",
        "trigger": "Found by",
        "content_id": "Content",
        "report_id": "Report",
        "case_id": "Case",
        "posted_at": "Posted",
        "taken_down_at": "Taken down",
        "exposure_minutes": "Exposure (min)",
        "sla_target_minutes": "Target (min)",
        "is_within_sla": "Within SLA",
        "is_evidence_on_time": "Evidence on time",
        "received_at": "Received",
        "acknowledged_at": "Acknowledged",
        "resolved_at": "Resolved",
        "feedback_sent_at": "Feedback sent",
        "is_ack_within_target": "Acknowledged on time",
        "is_resolution_within_target": "Resolved on time",
        "opened_at": "Opened",
        "confirmed_at": "Confirmed",
        "referred_at": "Referred",
        "is_referral_within_target": "Referred on time",
        "victims_count": "Victims",
        "victim_support": "Support",
        "outcome": "Outcome",
        "takedowns": "Takedowns",
        "prevented": "Prevented",
        "within_sla": "Within SLA",
        "breached": "Breached",
        "compliance_rate": "Compliance",
        "median_exposure_minutes": "Median exposure (min)",
        "p90_exposure_minutes": "p90 exposure (min)",
        "evidence_on_time_rate": "Evidence on time",
        "received": "Received",
        "ack_decided": "Ack. decided",
        "ack_on_time": "Ack. on time",
        "resolution_decided": "Resolution decided",
        "resolution_on_time": "Resolved on time",
        "resolved": "Resolved",
        "feedback_sent": "Feedback sent",
        "cases_opened": "Opened",
        "confirmed": "Confirmed",
        "referred": "Referred",
        "referral_decided": "Referral decided",
        "referral_on_time": "Referred on time",
        "prosecuted": "Prosecuted",
        "convicted": "Convicted",
        "victims": "Victims",
        "support_offered": "Support offered",
    },
    "zh": {
        "report_date": "日期",
        "month_start": "月份",
        "category_code": "类别",
        "channel": "渠道",
        "trigger": "发现方式",
        "content_id": "内容",
        "report_id": "举报",
        "case_id": "案件",
        "posted_at": "发布",
        "taken_down_at": "下架",
        "exposure_minutes": "暴露时长（分钟）",
        "sla_target_minutes": "时限（分钟）",
        "is_within_sla": "时限内",
        "is_evidence_on_time": "证据按时",
        "received_at": "收到",
        "acknowledged_at": "受理",
        "resolved_at": "处理完结",
        "feedback_sent_at": "已反馈",
        "is_ack_within_target": "按时受理",
        "is_resolution_within_target": "按时处理",
        "opened_at": "立案",
        "confirmed_at": "确认",
        "referred_at": "移送",
        "is_referral_within_target": "按时移送",
        "victims_count": "被害人",
        "victim_support": "救助",
        "outcome": "结果",
        "takedowns": "下架数",
        "prevented": "拦截",
        "within_sla": "时限内",
        "breached": "超时",
        "compliance_rate": "达标率",
        "median_exposure_minutes": "暴露时长中位数（分钟）",
        "p90_exposure_minutes": "暴露时长 P90（分钟）",
        "evidence_on_time_rate": "证据按时率",
        "received": "收到",
        "ack_decided": "已判定受理",
        "ack_on_time": "按时受理",
        "resolution_decided": "已判定处理",
        "resolution_on_time": "按时处理",
        "resolved": "已处理",
        "feedback_sent": "已反馈",
        "cases_opened": "立案",
        "confirmed": "确认",
        "referred": "移送",
        "referral_decided": "已判定移送",
        "referral_on_time": "按时移送",
        "prosecuted": "起诉",
        "convicted": "定罪",
        "victims": "被害人",
        "support_offered": "已提供救助",
    },
}


def column_headers(columns, tz: str) -> dict[str, object]:
    headers = words(COLUMN_HEADERS)
    out: dict[str, object] = {}
    for column in columns:
        header = headers.get(column, column)
        if column.endswith("_at"):
            out[column] = datetime_column(header, tz)
        elif column.endswith(("_rate", "_share")):
            out[column] = st.column_config.NumberColumn(header, format="percent")
        elif column.endswith("_minutes"):
            out[column] = st.column_config.NumberColumn(header, format="%.0f")
        elif column == "month_start":
            out[column] = st.column_config.DateColumn(header, format="YYYY-MM")
        else:
            out[column] = header
    return out
