"""When things happen: daily and weekly rhythm, category spikes, and the day windows.

Times are integer epoch seconds (UTC) throughout the generator; only the writer turns them
into ISO strings. Days and weeks are taken in Asia/Shanghai, the platform's and the
reporting time zone, so the evening peak and the folder dates line up with what the
dashboards show.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sample_data.schema import CATEGORY_CODES

TZ_OFFSET = 8 * 3600  # Asia/Shanghai has no daylight saving time: a fixed offset is exact.
DAY = 86400
WEEK = 7 * DAY

# Relative activity by local hour: quiet before dawn, busiest 20:00-23:00 (after school and
# work, when children and offenders are online).
HOURLY = np.array(
    [
        0.90,
        0.60,
        0.40,
        0.30,
        0.25,
        0.25,
        0.35,
        0.55,
        0.75,
        0.85,
        0.90,
        0.95,
        1.05,
        1.00,
        0.95,
        0.95,
        1.00,
        1.10,
        1.25,
        1.50,
        1.80,
        2.00,
        1.85,
        1.35,
    ]
)
# Monday..Sunday: weekends are busier.
WEEKDAY = np.array([0.92, 0.90, 0.93, 0.96, 1.05, 1.20, 1.14])

# Share of screened content per category (order of CATEGORY_CODES). CSAM dominates hash
# screening; the contact offences are rarer but zero-tolerance.
CATEGORY_MIX = np.array([0.02, 0.03, 0.07, 0.13, 0.13, 0.30, 0.14, 0.18])
# Categories that spike (a campaign, a viral trend, a new grooming script) are weighted here.
SPIKE_WEIGHT = np.array([0.02, 0.05, 0.25, 0.15, 0.15, 0.13, 0.05, 0.20])


def local_day(t):
    """Day number (days since 1970-01-01) in Asia/Shanghai, for an int or an array."""
    return (t + TZ_OFFSET) // DAY


def week_number(t: np.ndarray) -> np.ndarray:
    """ISO-week number in Asia/Shanghai (weeks start on Monday; 1970-01-01 was a Thursday)."""
    return (local_day(t) + 3) // 7


def base_intensity(minute_starts: np.ndarray) -> np.ndarray:
    """Relative rate of events at the given minute starts (epoch seconds)."""
    local = minute_starts + TZ_OFFSET
    hour = (local // 3600) % 24
    weekday = ((local // DAY) + 3) % 7
    return HOURLY[hour] * WEEKDAY[weekday]


@dataclass(frozen=True)
class Spike:
    week: int
    category: int
    multiplier: float


# The weekly-trend mart flags a week whose takedowns exceed the mean plus three standard
# deviations of the 8 weeks before it, given at least 4 of them.
BASELINE_WEEKS = 8
MIN_BASELINE_WEEKS = 4


def plan_spikes(rng: np.random.Generator, start: int, end: int) -> tuple[Spike, ...]:
    """A few weeks where one category genuinely surges, placed so the weekly trend can flag
    every one of them.

    A spike takes a whole week inside the period (a one-day remnant of a week would carry it
    and no weekly total would show it), with a full baseline of 8 whole weeks before it
    where the period allows (at least 4 otherwise: a partial first week in the baseline
    inflates its spread). About one spike per 8 weeks, one in each equal stretch of the
    eligible weeks, so the last stretch always has one. A category never spikes twice
    within 8 weeks: an earlier surge inside the baseline would raise its spread so much
    that the later one would not stand out.
    """
    first, last = int(week_number(np.array([start]))[0]), int(week_number(np.array([end]))[0])
    weeks = np.arange(first, last + 1)
    # Monday 00:00 local of each week.
    monday = weeks * 7 - 3
    whole = weeks[(monday * DAY - TZ_OFFSET >= start) & ((monday + 7) * DAY - TZ_OFFSET <= end)]
    eligible = whole[BASELINE_WEEKS:]
    if eligible.size == 0:
        eligible = whole[MIN_BASELINE_WEEKS:]
    if eligible.size == 0:
        eligible = whole if whole.size else weeks
    count = min(max(1, weeks.size // 8), eligible.size)
    chosen = [int(rng.choice(stretch)) for stretch in np.array_split(eligible, count)]
    spikes: list[Spike] = []
    for week in chosen:
        weight = SPIKE_WEIGHT.copy()
        for earlier in spikes:
            if week - earlier.week <= BASELINE_WEEKS:
                weight[earlier.category] = 0.0
        category = int(rng.choice(len(CATEGORY_CODES), p=weight / weight.sum()))
        spikes.append(Spike(week, category, float(rng.uniform(3.5, 6.0))))
    return tuple(spikes)


def category_weights(t: np.ndarray, spikes: tuple[Spike, ...]) -> np.ndarray:
    """Per-event category weights (n x 8): the base mix, boosted in spike weeks."""
    weights = np.broadcast_to(CATEGORY_MIX, (t.size, CATEGORY_MIX.size)).copy()
    if spikes:
        weeks = week_number(t)
        for spike in spikes:
            weights[weeks == spike.week, spike.category] *= spike.multiplier
    return weights


def spike_factor(t: np.ndarray, spikes: tuple[Spike, ...]) -> np.ndarray:
    """How much more content there is at time t than the base rhythm says."""
    return category_weights(t, spikes).sum(axis=1) / CATEGORY_MIX.sum()


def day_windows(start: int, end: int) -> list[tuple[int, int]]:
    """Half-open windows (a, b] split at Asia/Shanghai midnights."""
    windows = []
    a = start
    while a < end:
        next_midnight = (local_day(a) + 1) * DAY - TZ_OFFSET
        b = min(end, next_midnight)
        windows.append((a, b))
        a = b
    return windows


def _segments(a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
    """Segment starts and lengths covering (a, b], cut at minute boundaries."""
    first = (a // 60 + 1) * 60
    inner = np.arange(first, b, 60, dtype=np.int64)
    starts = np.concatenate([[a], inner]).astype(np.int64)
    lengths = np.diff(np.concatenate([starts, [b]]))
    return starts, lengths


def window_weight(a: int, b: int, spikes: tuple[Spike, ...], with_spikes: bool = True) -> float:
    """Integral of the rate over (a, b], in minutes of base rate."""
    starts, lengths = _segments(a, b)
    rate = base_intensity(starts - starts % 60)
    if with_spikes:
        rate = rate * spike_factor(starts, spikes)
    return float((rate * lengths).sum() / 60.0)


def sample_times(
    rng: np.random.Generator,
    a: int,
    b: int,
    n: int,
    spikes: tuple[Spike, ...],
    with_spikes: bool = True,
) -> np.ndarray:
    """n event times in (a, b] following the rhythm (integer seconds, unsorted)."""
    if n == 0 or b <= a:
        return np.zeros(0, dtype=np.float64)
    starts, lengths = _segments(a, b)
    rate = base_intensity(starts - starts % 60)
    if with_spikes:
        rate = rate * spike_factor(starts, spikes)
    cum = np.cumsum(rate * lengths)
    seg = np.searchsorted(cum, rng.random(n) * cum[-1], side="right")
    seg = np.minimum(seg, starts.size - 1)
    t = np.floor(starts[seg] + rng.random(n) * lengths[seg]) + 1
    return np.minimum(t, b).astype(np.float64)


def allocate(expected: np.ndarray, total: int) -> np.ndarray:
    """Integer counts summing exactly to total, proportional to expected (largest remainder)."""
    if total <= 0 or expected.sum() <= 0:
        return np.zeros(expected.size, dtype=np.int64)
    share = expected / expected.sum() * total
    counts = np.floor(share).astype(np.int64)
    remainder = total - counts.sum()
    order = np.argsort(-(share - counts), kind="stable")
    counts[order[:remainder]] += 1
    return counts


MEAN_DAY_WEIGHT = float((HOURLY.mean() * 24 * 60) * WEEKDAY.mean())
