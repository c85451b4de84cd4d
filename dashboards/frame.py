"""What every page shares: the snapshot guard, the sidebar and the periodic refresh."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import duckdb
import streamlit as st
from pydantic import ValidationError

from dashboards import queries
from dashboards.formatting import format_age, format_timestamp, minutes_between

REFRESH_SECONDS = 60

TEXT = {
    "app_title": "OCSE Warehouse",
    "section_operations": "Operations",
    "page_pipeline_health": "Pipeline health",
    "no_snapshot_title": "No data published yet",
    "no_snapshot": (
        "No data published yet: run `ocse run` to ingest the landing folder and publish the "
        "serving snapshot the dashboards read. This page shows the data as soon as the first "
        "snapshot exists. The dashboard looks for it here (set `OCSE_SERVING` to change it):"
    ),
    "bad_config": "The dashboard's configuration (`OCSE_*` variables or `.env`) needs fixing:",
    "unreadable_snapshot": (
        "The published snapshot could not be opened. The next successful `ocse run` "
        "replaces it. Details for the operator:"
    ),
    "missing_tables": (
        "This snapshot does not contain the tables this page needs yet. Run `ocse run` with "
        "the current release to publish them. Missing:"
    ),
    "sidebar_heading": "Serving snapshot",
    "as_of": "**Data as of** {as_of}",
    "published": "**Published** {published} ({age} ago)",
    "time_zone": "Times in {tz}",
    "run_id": "Run {run_id}",
    "auto_refresh": "Refresh every minute",
    "auto_refresh_help": (
        "Re-reads the snapshot every minute, so new data and the freshness clocks stay current "
        "on a screen left open."
    ),
}


def require_snapshot() -> queries.SnapshotIdentity:
    """The snapshot to read; when there is none yet, a friendly message and the run stops."""
    try:
        snapshot = queries.snapshot_identity()
    except (queries.SnapshotConfigError, ValidationError) as exc:
        st.error(TEXT["bad_config"], icon=":material/block:")
        st.code(str(exc), language=None)
        st.stop()
    if snapshot is None:
        st.title(TEXT["no_snapshot_title"])
        st.info(TEXT["no_snapshot"], icon=":material/hourglass_empty:")
        st.code(str(queries.serving_path()), language=None)
        _refresh_later(time.monotonic())
        st.stop()
    return snapshot


def require_tables(snapshot: queries.SnapshotIdentity, names: tuple[str, ...]) -> None:
    missing = queries.missing_tables(snapshot, names)
    if missing:
        st.warning(TEXT["missing_tables"], icon=":material/table_view:")
        st.code("\n".join(missing), language=None)
        st.stop()


def snapshot_info_or_stop(snapshot: queries.SnapshotIdentity) -> queries.SnapshotInfo:
    try:
        return queries.snapshot_info(snapshot)
    except duckdb.Error as exc:
        st.error(TEXT["unreadable_snapshot"], icon=":material/error:")
        st.code(f"{snapshot.path}\n{type(exc).__name__}: {exc}", language=None)
        st.stop()


def sidebar(info: queries.SnapshotInfo) -> None:
    """As-of and publication time of the snapshot on screen, and the refresh switch."""
    with st.sidebar:
        st.subheader(TEXT["sidebar_heading"])
        tz = info.reporting_tz
        st.markdown(TEXT["as_of"].format(as_of=format_timestamp(info.as_of, tz)))
        age = minutes_between(info.published_at, datetime.now(UTC))
        st.markdown(
            TEXT["published"].format(
                published=format_timestamp(info.published_at, tz), age=format_age(age)
            )
        )
        st.caption(TEXT["time_zone"].format(tz=tz))
        if info.run_id:
            # The run id is data, so it goes through st.text (never interpreted as Markdown).
            st.text(TEXT["run_id"].format(run_id=info.run_id))
        if st.toggle(
            TEXT["auto_refresh"], value=True, key="auto_refresh", help=TEXT["auto_refresh_help"]
        ):
            _refresh_later(time.monotonic())


@st.fragment(run_every=REFRESH_SECONDS)
def _refresh_later(rendered_at: float) -> None:
    # The fragment also runs once inside the full run that draws it; only the timed runs
    # that come later rerun the app (new snapshot, freshness clocks moving on).
    if time.monotonic() - rendered_at >= REFRESH_SECONDS / 2:
        st.rerun()
