"""Reporting periods: ISO weeks, calendar months and quarters, as dates (never finer).

An export covers whole periods only: the weeks (months) that lie entirely inside the
requested dates. A partial week at either end would be a different quantity from the same
week in another export, and publishing both would let a reader subtract one from the other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

GRAINS = ("week", "month", "quarter")
QUARTER = re.compile(r"^(\d{4})\s*-?\s*[Qq]([1-4])$")


class PeriodError(ValueError):
    """A period that cannot be exported (message says why)."""


@dataclass(frozen=True, order=True)
class Period:
    start: date
    end: date  # inclusive
    grain: str

    @property
    def label(self) -> str:
        if self.grain == "quarter":
            return f"{self.start.year}Q{(self.start.month - 1) // 3 + 1}"
        if self.grain == "month":
            return self.start.strftime("%Y-%m")
        if self.grain == "span":
            return f"{self.start}/{self.end}"
        return self.start.isoformat()


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def period_of(day: date, grain: str) -> Period:
    if grain == "week":
        start = day - timedelta(days=day.weekday())
        return Period(start, start + timedelta(days=6), grain)
    if grain == "month":
        start = day.replace(day=1)
        return Period(start, _add_months(start, 1) - timedelta(days=1), grain)
    if grain == "quarter":
        start = date(day.year, (day.month - 1) // 3 * 3 + 1, 1)
        return Period(start, _add_months(start, 3) - timedelta(days=1), grain)
    raise PeriodError(f"unknown grain {grain!r}; use one of {', '.join(GRAINS)}")


def whole_periods(start: date, end: date, grain: str) -> list[Period]:
    """Every period of `grain` lying entirely within [start, end] (both inclusive)."""
    if end < start:
        raise PeriodError(f"the period ends ({end}) before it starts ({start})")
    periods = []
    current = period_of(start, grain)
    if current.start < start:
        current = period_of(current.end + timedelta(days=1), grain)
    while current.end <= end:
        periods.append(current)
        current = period_of(current.end + timedelta(days=1), grain)
    if not periods:
        raise PeriodError(
            f"{start} .. {end} holds no whole {grain}: exports cover whole "
            f"{grain}s only (a {grain} runs {_grain_span(grain)})"
        )
    return periods


def _grain_span(grain: str) -> str:
    return {
        "week": "Monday to Sunday",
        "month": "from the 1st to the last day",
        "quarter": "over three calendar months",
    }[grain]


def parse_quarter(text: str) -> Period:
    match = QUARTER.match(text.strip())
    if not match:
        raise PeriodError(f"{text!r} is not a quarter; write it like 2025Q1")
    year, quarter = int(match.group(1)), int(match.group(2))
    return period_of(date(year, 3 * quarter - 2, 1), "quarter")


def previous(period: Period, count: int) -> list[Period]:
    """`count` periods ending with `period`, oldest first."""
    periods = [period]
    while len(periods) < count:
        periods.insert(0, period_of(periods[0].start - timedelta(days=1), period.grain))
    return periods


def last_complete_month(today: date) -> Period:
    return period_of(today.replace(day=1) - timedelta(days=1), "month")
