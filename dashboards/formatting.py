"""Numbers and times as the dashboards show them (pure functions, no Streamlit)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo


def format_count(value: int) -> str:
    return f"{value:,}"


def format_rate(rate: float | None) -> str:
    """A fraction in [0, 1] as a percentage; a dash when undefined (no denominator)."""
    return "–" if rate is None else f"{rate:.1%}"


def format_timestamp(moment: datetime | None, tz: str) -> str:
    """A UTC instant as wall-clock time in the reporting time zone."""
    if moment is None:
        return "–"
    return moment.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")


def format_age(minutes: float | None) -> str:
    """How long ago, coarse enough to read at a glance: `12 min`, `3 h 05 min`, `2 d 4 h`."""
    if minutes is None:
        return "–"
    whole = max(0, int(minutes))
    if whole < 60:
        return f"{whole} min"
    hours, mins = divmod(whole, 60)
    if hours < 24:
        return f"{hours} h {mins:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def format_duration(minutes: float | None) -> str:
    """A duration: `42 min`, `8 h 30 min`, `27 d 19 h` (a negative one with a minus)."""
    if minutes is None:
        return "–"
    if minutes < 0:
        return "-" + format_age(-minutes)
    return format_age(minutes)


# Shares of a target above this are shown as "> 1,000 %": a clock 600 times over its target
# is simply far over; its exact figure is in the tooltip and the subject's detail.
SHARE_OF_TARGET_CAP = 10.0


def format_share_of_target(share: float | None) -> str:
    if share is None or share != share:
        return "–"
    if share > SHARE_OF_TARGET_CAP:
        return f"> {SHARE_OF_TARGET_CAP:,.0%}"
    return f"{share:.0%}"


def minutes_between(earlier: datetime | None, later: datetime) -> float | None:
    if earlier is None:
        return None
    return (later - earlier).total_seconds() / 60
