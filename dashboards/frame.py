"""What every page shares: the snapshot guard, the sidebar and the periodic refresh."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import duckdb
import streamlit as st
from pydantic import ValidationError

from dashboards import auth, queries
from dashboards.formatting import format_age, format_timestamp, minutes_between
from dashboards.i18n import words

REFRESH_SECONDS = 60

TEXT = {
    "en": {
        "app_title": "OCSE Warehouse",
        "no_snapshot_title": "No data published yet",
        "no_snapshot": (
            "No data published yet: run `ocse run` to ingest the landing folder and publish "
            "the serving snapshot the dashboards read. This page shows the data as soon as "
            "the first snapshot exists. The dashboard looks for it here (set `OCSE_SERVING` "
            "to change it):"
        ),
        "bad_config": "The dashboard's configuration (`OCSE_*` variables or `.env`) needs fixing:",
        "unreadable_snapshot": (
            "The published snapshot could not be opened. The next successful `ocse run` "
            "replaces it. Details for the operator:"
        ),
        "missing_tables": (
            "This snapshot does not contain the tables this page needs yet. Run `ocse run` "
            "with the current release to publish them. Missing:"
        ),
        "sidebar_heading": "Serving snapshot",
        "as_of": "**Data as of** {as_of}",
        "published": "**Published** {published} ({age} ago)",
        "time_zone": "Times in {tz}",
        "run_id": "Run {run_id}",
        "auto_refresh": "Refresh every minute",
        "auto_refresh_help": (
            "Re-reads the snapshot every minute, so new data and the freshness clocks stay "
            "current on a screen left open."
        ),
    },
    "zh": {
        "app_title": "OCSE 数据仓库",
        "no_snapshot_title": "尚未发布数据",
        "no_snapshot": (
            "尚未发布数据：运行 `ocse run` 导入落地目录并发布看板读取的服务快照。首个快照生成后，"
            "本页即显示数据。看板在此路径查找快照（用 `OCSE_SERVING` 修改）："
        ),
        "bad_config": "看板配置（`OCSE_*` 变量或 `.env`）需要修正：",
        "unreadable_snapshot": "无法打开已发布的快照。下一次成功的 `ocse run` 会替换它。运维详情：",
        "missing_tables": "此快照尚不包含本页所需的表。请用当前版本运行 `ocse run` 发布。缺少：",
        "sidebar_heading": "服务快照",
        "as_of": "**数据截至** {as_of}",
        "published": "**发布于** {published}（{age}前）",
        "time_zone": "时间以 {tz} 显示",
        "run_id": "运行 {run_id}",
        "auto_refresh": "每分钟刷新",
        "auto_refresh_help": "每分钟重新读取快照，使长时间打开的屏幕上的数据和时效时钟保持最新。",
    },
}


def require_valid_settings() -> None:
    """A wrong `OCSE_*` value is shown to the operator, not raised as a traceback."""
    from dashboards.settings import get_dashboard_settings

    try:
        get_dashboard_settings()
    except ValidationError as exc:
        st.error(words(TEXT)["bad_config"], icon=":material/block:")
        st.code(str(exc), language=None)
        st.stop()


def require_snapshot() -> queries.SnapshotIdentity:
    """The snapshot to read; when there is none yet, a friendly message and the run stops."""
    try:
        snapshot = queries.snapshot_identity()
    except (queries.SnapshotConfigError, ValidationError) as exc:
        st.error(words(TEXT)["bad_config"], icon=":material/block:")
        st.code(str(exc), language=None)
        st.stop()
    if snapshot is None:
        st.title(words(TEXT)["no_snapshot_title"])
        st.info(words(TEXT)["no_snapshot"], icon=":material/hourglass_empty:")
        st.code(str(queries.serving_path()), language=None)
        _refresh_later(time.monotonic())
        st.stop()
    return snapshot


def require_tables(snapshot: queries.SnapshotIdentity, names: tuple[str, ...]) -> None:
    try:
        missing = queries.missing_tables(snapshot, names)
    except duckdb.Error as exc:
        st.error(words(TEXT)["unreadable_snapshot"], icon=":material/error:")
        st.code(f"{snapshot.path}\n{type(exc).__name__}: {exc}", language=None)
        st.stop()
    if missing:
        st.warning(words(TEXT)["missing_tables"], icon=":material/table_view:")
        st.code("\n".join(missing), language=None)
        st.stop()


def snapshot_info_or_stop(snapshot: queries.SnapshotIdentity) -> queries.SnapshotInfo:
    try:
        return queries.snapshot_info(snapshot)
    except duckdb.Error as exc:
        st.error(words(TEXT)["unreadable_snapshot"], icon=":material/error:")
        st.code(f"{snapshot.path}\n{type(exc).__name__}: {exc}", language=None)
        st.stop()


def sidebar(info: queries.SnapshotInfo) -> None:
    """As-of and publication time of the snapshot on screen, and the refresh switch."""
    text = words(TEXT)
    with st.sidebar:
        st.subheader(text["sidebar_heading"])
        tz = info.reporting_tz
        st.markdown(text["as_of"].format(as_of=format_timestamp(info.as_of, tz)))
        age = minutes_between(info.published_at, datetime.now(UTC))
        st.markdown(
            text["published"].format(
                published=format_timestamp(info.published_at, tz), age=format_age(age)
            )
        )
        st.caption(text["time_zone"].format(tz=tz))
        if info.run_id:
            # The run id is data, so it goes through st.text (never interpreted as Markdown).
            st.text(text["run_id"].format(run_id=info.run_id))
        # A display account's wall screen always refreshes (nobody is there to switch it on).
        if auth.current_role() == "display" or st.toggle(
            text["auto_refresh"], value=True, key="auto_refresh", help=text["auto_refresh_help"]
        ):
            _refresh_later(time.monotonic())


@st.fragment(run_every=REFRESH_SECONDS)
def _refresh_later(rendered_at: float) -> None:
    # The fragment also runs once inside the full run that draws it; only the timed runs
    # that come later rerun the app (new snapshot, freshness clocks moving on).
    if time.monotonic() - rendered_at >= REFRESH_SECONDS / 2:
        auth.mark_timed_rerun()  # a screen left open does not keep an idle session alive
        st.rerun()
