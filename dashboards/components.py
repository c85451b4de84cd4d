"""What the metric pages share: the page opening (guard, snapshot, title), the period and
category filter, KPIs with period-over-period change, and table display."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd
import streamlit as st

from dashboards import auth, frame, mart_queries, queries
from dashboards.formatting import format_count, format_rate
from dashboards.i18n import category_label, words

CHART_CONFIG = {"displayModeBar": False, "responsive": True}
DEFAULT_RANGE_DAYS = 28

TEXT = {
    "en": {
        "filter_period": "Period",
        "filter_period_help": "Whole days in the reporting time zone ({tz}). KPIs compare "
        "with the period of the same length just before.",
        "filter_categories": "Categories",
        "all_categories": "All categories",
        "no_category": "Choose at least one category.",
        "no_data_yet": "The snapshot has no takedowns or reports yet.",
        "vs_previous": "vs previous {days} days",
        "pp": "{sign}{value:.1f} pp",
        "pct": "{sign}{value:.0%}",
        "partial_previous": "⚠ data start on {first}, so the earlier period is only partly covered",
    },
    "zh": {
        "filter_period": "时间段",
        "filter_period_help": "按报告时区（{tz}）的整日计算。指标与紧邻的等长上一时段比较。",
        "filter_categories": "类别",
        "all_categories": "全部类别",
        "no_category": "请至少选择一个类别。",
        "no_data_yet": "快照中尚无下架或举报数据。",
        "vs_previous": "与前 {days} 天相比",
        "pp": "{sign}{value:.1f} 个百分点",
        "pct": "{sign}{value:.0%}",
        "partial_previous": "⚠ 数据始于 {first}，上一时段的数据不完整",
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
    snapshot = frame.require_snapshot()
    frame.require_tables(snapshot, ("dim_categories", *tables))
    info = frame.snapshot_info_or_stop(snapshot)
    text = words(page_text)
    st.title(text["title"])
    st.caption(text["intro"])
    labels = mart_queries.category_labels(snapshot)
    return PageContext(viewer, snapshot, info, text, labels)


def period_filter(
    ctx: PageContext, *, with_categories: bool = True, default_days: int = DEFAULT_RANGE_DAYS
) -> mart_queries.Period:
    """Date range (bounded by the data) and categories; stops the page when unusable."""
    text = words(TEXT)
    bounds = mart_queries.data_days(ctx.snapshot)
    if bounds is None:
        st.info(text["no_data_yet"], icon=":material/hourglass_empty:")
        st.stop()
    first, last = bounds
    default_first = max(first, last - timedelta(days=default_days - 1))
    left, right = st.columns([1, 2])
    with left:
        chosen = st.date_input(
            text["filter_period"],
            value=(default_first, last),
            min_value=first - timedelta(days=366),
            max_value=last,
            key="filter_period",
            help=text["filter_period_help"].format(tz=ctx.tz),
        )
    start, end = _date_range(chosen, default_first, last)
    codes = list(ctx.labels)
    if with_categories:
        with right:
            picked = st.multiselect(
                text["filter_categories"],
                options=codes,
                default=[],
                format_func=ctx.category,
                placeholder=text["all_categories"],
                key="filter_categories",
            )
        codes = [code for code in picked if code in ctx.labels] or codes
    st.session_state["ocse_data_first_day"] = first
    return mart_queries.Period(start, end, tuple(codes))


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
    if minutes is None or pd.isna(minutes):
        return "–"
    if minutes < 90:
        return f"{minutes:.0f} min"
    if minutes < 48 * 60:
        return f"{minutes / 60:.1f} h"
    return f"{minutes / 1440:.1f} d"


def count_or_dash(value: object) -> str:
    if value is None or pd.isna(value):
        return "–"
    return format_count(int(value))


def rate_or_dash(value: object) -> str:
    if value is None or pd.isna(value):
        return format_rate(None)
    return format_rate(float(value))


def previous_caption(period: mart_queries.Period, data_first_day: date | None = None) -> None:
    """Which period the KPI changes compare with; warns when data does not cover all of it
    (the change then mostly says the data starts later, not that the platform changed)."""
    text = words(TEXT)
    before = period.previous()
    caption = text["vs_previous"].format(days=period.days) + (
        f" ({before.first_day} – {before.last_day})"
    )
    data_first_day = data_first_day or st.session_state.get("ocse_data_first_day")
    if data_first_day is not None and before.first_day < data_first_day:
        caption += " · " + text["partial_previous"].format(first=data_first_day)
    st.caption(caption)


def show_table(frame: pd.DataFrame, columns: Mapping[str, object], **kwargs) -> None:
    """A read-only table; `columns` maps column -> header or st.column_config.*.
    Values are shown as text by the grid, never interpreted as HTML or Markdown."""
    config = {
        name: (st.column_config.Column(spec) if isinstance(spec, str) else spec)
        for name, spec in columns.items()
    }
    st.dataframe(
        frame[list(columns)],
        column_config=config,
        hide_index=True,
        width="stretch",
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
