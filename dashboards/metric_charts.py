"""Plotly figures of the metric pages: a DataFrame in, a `go.Figure` out, no Streamlit.

Words (titles, legend labels) are passed in by the page, in the page's language.
Compliance is always drawn on a 0–100% axis with the target as a dashed line, so a dip
reads the same on every page.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import plotly.graph_objects as go

BLUE = "#2F6690"
TEAL = "#3A7D7C"
AMBER = "#D9A13B"
RED = "#C0504D"
GREY = "#9AA1A9"
PALETTE = (
    "#2F6690",
    "#3A7D7C",
    "#8E7CC3",
    "#C9A66B",
    "#5BA3A0",
    "#B5838D",
    "#6D6875",
    "#A3B18A",
    "#7F8FA6",
)
TIER_COLOURS = {"black": "#2B2D42", "grey": "#8D99AE", "white": "#D8E2DC", "none": "#EDF2F4"}
CLOCK_COLOURS = {
    "takedown": "#2F6690",
    "evidence": "#8E7CC3",
    "report_acknowledgement": "#3A7D7C",
    "report_resolution": "#5BA3A0",
    "referral": "#C9A66B",
}


def _layout(fig: go.Figure, *, height: int = 340, y_title: str | None = None) -> go.Figure:
    fig.update_layout(
        height=height,
        margin={"l": 8, "r": 8, "t": 36, "b": 8},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0, "title": None},
        hovermode="x unified",
        plot_bgcolor="white",
    )
    fig.update_xaxes(showgrid=False)
    fig.update_yaxes(title_text=y_title, gridcolor="#ECEFF3", zeroline=False)
    return fig


def colour_for(position: int) -> str:
    return PALETTE[position % len(PALETTE)]


def compliance_figure(
    data: pd.DataFrame,
    *,
    x: str,
    series: str | None,
    rate: str,
    labels: Mapping[str, str],
    target: float | None = None,
    target_label: str = "",
    y_title: str = "",
    colours: Mapping[str, str] | None = None,
) -> go.Figure:
    """Compliance over time, one line per `series` value (or one line)."""
    fig = go.Figure()
    groups = [(None, data)] if series is None else list(data.groupby(series, sort=False))
    for position, (key, rows) in enumerate(groups):
        name = labels.get(key, key) if key is not None else y_title
        fig.add_trace(
            go.Scatter(
                x=rows[x],
                y=rows[rate],
                name=str(name),
                mode="lines+markers",
                line={"width": 2.5, "color": (colours or {}).get(key, colour_for(position))},
                marker={"size": 5},
                hovertemplate="%{y:.1%}",
            )
        )
    if target is not None:
        fig.add_hline(
            y=target,
            line_dash="dash",
            line_color=RED,
            annotation_text=target_label,
            annotation_position="bottom right",
        )
    fig.update_yaxes(tickformat=".0%", range=[0, 1.02])
    return _layout(fig, y_title=y_title)


def counts_and_rate(
    data: pd.DataFrame,
    *,
    x: str,
    count: str,
    rate: str,
    count_label: str,
    rate_label: str,
    target: float | None = None,
    target_label: str = "",
    partial_from: object | None = None,
    partial_label: str = "",
) -> go.Figure:
    """Counts as bars (left axis) and a rate as a line on 0–100% (right axis). Buckets at or
    after `partial_from` are drawn paler: they are not complete yet."""
    fig = go.Figure()
    partial = [partial_from is not None and value >= partial_from for value in data[x]]
    fig.add_trace(
        go.Bar(
            x=data[x],
            y=data[count],
            name=count_label,
            marker_color=[GREY if p else "#B7C9D9" for p in partial],
            hovertemplate="%{y:,}",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=data[x],
            y=data[rate],
            name=rate_label,
            yaxis="y2",
            mode="lines+markers",
            line={"width": 2.5, "color": BLUE},
            marker={"size": 5},
            hovertemplate="%{y:.1%}",
        )
    )
    if target is not None:
        fig.add_hline(
            y=target,
            yref="y2",
            line_dash="dash",
            line_color=RED,
            annotation_text=target_label,
            annotation_position="bottom right",
        )
    if partial_from is not None and any(partial):
        fig.add_annotation(
            x=data[x][partial.index(True)],
            y=1.0,
            yref="paper",
            text=partial_label,
            showarrow=False,
            font={"size": 11, "color": GREY},
        )
    fig.update_layout(
        yaxis={"title": count_label, "rangemode": "tozero"},
        yaxis2={
            "title": rate_label,
            "overlaying": "y",
            "side": "right",
            "tickformat": ".0%",
            "range": [0, 1.02],
            "showgrid": False,
        },
    )
    return _layout(fig, y_title=count_label)


def stacked_bars(
    data: pd.DataFrame,
    *,
    x: str,
    stack: str,
    value: str,
    labels: Mapping[str, str],
    y_title: str = "",
    colours: Mapping[str, str] | None = None,
    order: list[str] | None = None,
) -> go.Figure:
    fig = go.Figure()
    keys = order or list(dict.fromkeys(data[stack]))
    for position, key in enumerate(keys):
        rows = data[data[stack] == key]
        if rows.empty:
            continue
        fig.add_trace(
            go.Bar(
                x=rows[x],
                y=rows[value],
                name=str(labels.get(key, key)),
                marker_color=(colours or {}).get(key, colour_for(position)),
                hovertemplate="%{y:,}",
            )
        )
    fig.update_layout(barmode="stack", bargap=0.2)
    return _layout(fig, y_title=y_title)


def horizontal_bars(
    data: pd.DataFrame, *, category: str, value: str, labels: Mapping[str, str], x_title: str
) -> go.Figure:
    rows = data.sort_values(value)
    fig = go.Figure(
        go.Bar(
            x=rows[value],
            y=[labels.get(code, code) for code in rows[category]],
            orientation="h",
            marker_color=BLUE,
            hovertemplate="%{x:,}<extra></extra>",
            text=rows[value],
            textposition="auto",
        )
    )
    fig = _layout(fig, height=max(220, 36 * len(rows) + 60))
    fig.update_layout(hovermode="closest")
    fig.update_xaxes(title_text=x_title)
    return fig


def trend_with_spikes(
    data: pd.DataFrame,
    *,
    labels: Mapping[str, str],
    spike_label: str,
    y_title: str,
) -> go.Figure:
    """Weekly takedowns per category; weeks flagged `is_spike` get a red ring."""
    fig = go.Figure()
    for position, (code, rows) in enumerate(data.groupby("category_code", sort=False)):
        fig.add_trace(
            go.Scatter(
                x=rows["week_start"],
                y=rows["takedowns"],
                name=labels.get(code, code),
                mode="lines+markers",
                line={"width": 2, "color": colour_for(position)},
                marker={"size": 5},
            )
        )
    spikes = data[data["is_spike"].fillna(False).astype(bool)]
    if not spikes.empty:
        fig.add_trace(
            go.Scatter(
                x=spikes["week_start"],
                y=spikes["takedowns"],
                name=spike_label,
                mode="markers",
                marker={
                    "size": 16,
                    "color": "rgba(0,0,0,0)",
                    "line": {"color": RED, "width": 3},
                    "symbol": "circle",
                },
                customdata=[labels.get(code, code) for code in spikes["category_code"]],
                hovertemplate="%{customdata}: %{y:,}<extra>" + spike_label + "</extra>",
            )
        )
    return _layout(fig, height=380, y_title=y_title)


def funnel(stages: list[tuple[str, int]]) -> go.Figure:
    fig = go.Figure(
        go.Funnel(
            y=[name for name, _ in stages],
            x=[value for _, value in stages],
            textinfo="value+percent initial",
            marker={"color": [colour_for(i) for i in range(len(stages))]},
        )
    )
    fig = _layout(fig, height=320)
    fig.update_layout(hovermode="closest")
    return fig


def tier_lines(data: pd.DataFrame, *, labels: Mapping[str, str], y_title: str) -> go.Figure:
    fig = go.Figure()
    for tier in ("black", "grey"):
        rows = data[data["tier"] == tier]
        fig.add_trace(
            go.Scatter(
                x=rows["week_start"],
                y=rows["users"],
                name=labels.get(tier, tier),
                mode="lines+markers",
                line={"width": 2.5, "color": "#2B2D42" if tier == "black" else "#8D99AE"},
            )
        )
    return _layout(fig, y_title=y_title)
