"""Plotly figure builders: a DataFrame in, a `go.Figure` out, no Streamlit.

Colours are fixed per value so that an outcome or a feed looks the same on every chart and
every page. User-facing words (axis titles, legend labels) are passed in by the page, which
keeps its strings in one place.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd
import plotly.graph_objects as go

OUTCOME_ORDER = ("loaded", "partially_quarantined", "rejected", "duplicate")
OUTCOME_COLOURS = {
    "loaded": "#3E8E63",
    "partially_quarantined": "#D9A13B",
    "rejected": "#C0504D",
    "duplicate": "#9AA1A9",
}
# Feeds get calm hues that cannot be mistaken for an outcome's green, amber or red.
FEED_COLOURS = {
    "screening_hits": "#4C78A8",
    "reports": "#5BA3A0",
    "enforcement_actions": "#8E7CC3",
    "cases": "#C9A66B",
}
FALLBACK_COLOURS = ("#7F8FA6", "#A3B18A", "#B5838D", "#6D6875")
NEUTRAL_COLOUR = "#7F8FA6"

_PERIOD_HOVER = {"hour": "%Y-%m-%d %H:00", "day": "%Y-%m-%d", "week": "week of %Y-%m-%d"}


def outcome_colour(outcome: str) -> str:
    return OUTCOME_COLOURS.get(outcome, NEUTRAL_COLOUR)


def feed_colour(feed: str, position: int = 0) -> str:
    """A feed's colour; feeds not known yet cycle through the fallback hues."""
    return FEED_COLOURS.get(feed, FALLBACK_COLOURS[position % len(FALLBACK_COLOURS)])


def _in_preferred_order(values: Iterable[str], preferred: Iterable[str]) -> list[str]:
    present = list(dict.fromkeys(values))
    ordered = [value for value in preferred if value in present]
    return ordered + sorted(value for value in present if value not in ordered)


def _label(labels: Mapping[str, str] | None, value: str) -> str:
    return (labels or {}).get(value, value)


def _apply_house_layout(fig: go.Figure, *, x_title: str, y_title: str) -> go.Figure:
    fig.update_layout(
        barmode="stack",
        bargap=0.25,
        height=340,
        margin={"l": 8, "r": 8, "t": 32, "b": 8},
        # Stacked bars list their legend bottom-up by default; read it in drawing order.
        legend={
            "orientation": "h",
            "yanchor": "bottom",
            "y": 1.0,
            "x": 0,
            "title": None,
            "traceorder": "normal",
        },
        hovermode="closest",
    )
    fig.update_xaxes(title_text=x_title or None)
    fig.update_yaxes(title_text=y_title or None)
    return fig


def files_by_outcome_figure(
    data: pd.DataFrame,
    *,
    period: str = "day",
    outcome_labels: Mapping[str, str] | None = None,
    x_title: str = "",
    y_title: str = "",
) -> go.Figure:
    """Stacked bars of files per period, one trace per outcome.

    `data` has columns `period_start`, `outcome`, `files` (as from
    `queries.files_by_outcome`).
    """
    fig = go.Figure()
    for outcome in _in_preferred_order(data["outcome"], OUTCOME_ORDER):
        part = data[data["outcome"] == outcome].sort_values("period_start")
        fig.add_trace(
            go.Bar(
                x=part["period_start"],
                y=part["files"],
                name=_label(outcome_labels, outcome),
                marker_color=outcome_colour(outcome),
                hovertemplate=f"%{{x|{_PERIOD_HOVER.get(period, '%Y-%m-%d %H:%M')}}}"
                "<br>%{y} files<extra>%{fullData.name}</extra>",
            )
        )
    _apply_house_layout(fig, x_title=x_title, y_title=y_title)
    fig.update_xaxes(type="date")
    fig.update_yaxes(rangemode="tozero", tickformat=",d")
    return fig


def quarantine_reasons_figure(
    data: pd.DataFrame,
    *,
    x_title: str = "",
    y_title: str = "",
) -> go.Figure:
    """Horizontal stacked bars of quarantined rows per reason kind, one trace per feed.

    `data` has columns `reason_kind`, `feed`, `quarantined_rows` (as from
    `queries.quarantine_reasons`). The most frequent reason is on top.
    """
    totals = data.groupby("reason_kind")["quarantined_rows"].sum().sort_values()
    # Plotly draws the first category at the bottom, so ascending totals put the largest on top.
    kinds = [str(kind) for kind in totals.index]
    fig = go.Figure()
    feeds = _in_preferred_order(data["feed"], FEED_COLOURS)
    for position, feed in enumerate(feeds):
        part = data[data["feed"] == feed].set_index("reason_kind")["quarantined_rows"]
        fig.add_trace(
            go.Bar(
                x=[int(part.get(kind, 0)) for kind in kinds],
                y=kinds,
                orientation="h",
                name=feed,
                marker_color=feed_colour(feed, position),
                hovertemplate="%{y}<br>%{x} rows<extra>%{fullData.name}</extra>",
            )
        )
    _apply_house_layout(fig, x_title=x_title, y_title=y_title)
    fig.update_layout(height=max(240, 80 + 36 * len(kinds)))
    fig.update_xaxes(rangemode="tozero", tickformat=",d")
    fig.update_yaxes(type="category", categoryorder="array", categoryarray=kinds)
    return fig
