"""Onset detection: when a series left its baseline, in which direction and by how much.

Pure Python on purpose: series are a few hundred points (the plan keeps range queries near 240 steps), so a
median/MAD baseline and a linear scan cost microseconds and need no numpy.

The method, per series:
1. Baseline: median and MAD of the samples before the window (the lookback). The noise scale is the MAD
   (scaled to a standard deviation), never below a relative floor (5% of the median) or the caller's absolute
   floor, so a flat series does not make every wiggle "infinitely" significant.
2. Departure: a point departs when it is k noise scales away from the median, beyond the baseline's own 95th
   (5th) percentile (sporadic bursts in the baseline raise the bar), at least `min_ratio` times (or 1/min_ratio
   times) the baseline, and past `min_level` (UP: the value reaches it; DOWN: the baseline had it).
3. Onset: the first departing point inside the window followed by a sustained run (3 of the next 4 points):
   single spikes and noise never qualify. From there the start is walked back while points stay beyond the
   baseline's observed noise and extremes, so a ramp is dated where it began rather than where it crossed the
   hard threshold.
4. Daily pattern: when samples from a day earlier are given, an onset whose level was also reached (at least
   halfway) at the same time of day yesterday is a daily peak, not a change, and is suppressed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from statistics import median

from inquest.engine.context import Direction

Sample = tuple[float, float]

# MAD times this estimates the standard deviation of normally distributed noise.
_MAD_TO_SIGMA = 1.4826
# Below this a baseline counts as zero when dividing (the caller's floor usually dominates).
_TINY = 1e-12
DAY_SECONDS = 86400.0


@dataclass(frozen=True, slots=True)
class OnsetPolicy:
    """How sure a departure must be before it is an onset; the catalog tunes the levels per signal."""

    k: float = 4.0  # noise scales a point must be away from the baseline median
    soft_k: float = 2.0  # noise scales the walk-back still accepts as "already departing"
    min_ratio: float = 1.5  # relative change that matters (UP: >= x1.5; DOWN: <= /1.5)
    floor: float = 0.0  # smallest meaningful absolute value: noise floor and zero-baseline divisor
    relative_floor: float = 0.05  # the noise scale is at least this fraction of the baseline median
    min_level: float = 0.0  # UP: the value must reach it; DOWN: the baseline must have had it
    sustain: int = 4  # a departure must hold in `sustain_fraction` of this many points from the onset on
    sustain_fraction: float = 0.75
    min_baseline_points: int = 6
    directions: tuple[Direction, ...] = (Direction.UP, Direction.DOWN)
    daily_tolerance: float = 0.5  # yesterday reached at least this fraction of today's change: a daily peak
    max_magnitude: float = 1000.0  # caps ratios over a zero baseline


DEFAULT_POLICY = OnsetPolicy()


@dataclass(frozen=True, slots=True)
class Onset:
    """`magnitude` is current/baseline (below 1 for a drop); `current` is the peak (or trough) level reached."""

    time: float  # unix seconds, in the series' own clock
    direction: Direction
    magnitude: float
    baseline: float
    current: float

    @property
    def moment(self) -> datetime:
        return datetime.fromtimestamp(self.time, tz=UTC)


def clean(samples: Iterable[Sample]) -> list[Sample]:
    """Finite samples sorted by time, one per timestamp (the last wins): NaN/Inf come from divisions by zero."""
    by_time: dict[float, float] = {}
    for moment, value in samples:
        if math.isfinite(moment) and math.isfinite(value):
            by_time[float(moment)] = float(value)
    return sorted(by_time.items())


@dataclass(frozen=True, slots=True)
class Baseline:
    median: float
    sigma: float  # the noise scale with its floors: what a departure must clear
    noise: float  # the observed noise alone (MAD): what the walk-back must clear
    high: float  # the 95th percentile: a departure must exceed what the baseline itself did
    low: float  # the 5th percentile


def baseline_of(values: Sequence[float], policy: OnsetPolicy = DEFAULT_POLICY) -> Baseline:
    center = median(values)
    spread = _MAD_TO_SIGMA * median(abs(value - center) for value in values)
    ordered = sorted(values)
    last = len(ordered) - 1
    return Baseline(
        center,
        max(spread, policy.relative_floor * abs(center), policy.floor, _TINY),
        noise=spread,
        high=ordered[round(0.95 * last)],
        low=ordered[round(0.05 * last)],
    )


def _ratio(value: float, base: float, policy: OnsetPolicy) -> float:
    return value / max(abs(base), policy.floor, _TINY)


def _departs(value: float, base: Baseline, direction: Direction, policy: OnsetPolicy) -> bool:
    """The hard test: far from the median in noise terms, past the baseline's own extremes, and meaningful."""
    if direction == Direction.UP:
        return (
            value - base.median > policy.k * base.sigma
            and value > base.high
            and _ratio(value, base.median, policy) >= policy.min_ratio
            and value >= policy.min_level
        )
    return (
        base.median - value > policy.k * base.sigma
        and value < base.low
        and _ratio(value, base.median, policy) <= 1.0 / policy.min_ratio
        and base.median >= policy.min_level
    )


def _still_departing(value: float, base: Baseline, direction: Direction, policy: OnsetPolicy) -> bool:
    """The walk-back test: beyond the baseline's extremes and its observed noise, nothing more (a ramp's foot
    is below min_ratio, min_level and the floors, yet it is where the change began)."""
    if direction == Direction.UP:
        return value > base.high and value - base.median > policy.soft_k * base.noise
    return value < base.low and base.median - value > policy.soft_k * base.noise


def _first_sustained(flags: Sequence[bool], policy: OnsetPolicy) -> int | None:
    needed = max(1, math.ceil(policy.sustain * policy.sustain_fraction))
    for index, flag in enumerate(flags):
        if not flag:
            continue
        run = flags[index : index + policy.sustain]
        if len(run) >= needed and sum(run) >= math.ceil(len(run) * policy.sustain_fraction):
            return index
    return None


def _rolling_medians(values: Sequence[float], size: int = 3) -> list[float]:
    if len(values) <= size:
        return [median(values)] if values else []
    return [median(values[index : index + size]) for index in range(len(values) - size + 1)]


def _step_of(points: Sequence[Sample]) -> float:
    gaps = [later[0] - earlier[0] for earlier, later in pairwise(points)]
    return median(gaps) if gaps else 0.0


def _is_daily_pattern(
    segment: Sequence[Sample],
    base: Baseline,
    direction: Direction,
    previous: Sequence[Sample],
    step: float,
    policy: OnsetPolicy,
) -> bool:
    """Whether yesterday, at the same times, was at least `daily_tolerance` as far from today's baseline."""
    if not previous or not segment:
        return False
    shifted = [(moment + DAY_SECONDS, value) for moment, value in previous]
    tolerance = max(step * 1.5, 1.0)
    today: list[float] = []
    yesterday: list[float] = []
    cursor = 0
    for moment, value in segment:
        while cursor + 1 < len(shifted) and abs(shifted[cursor + 1][0] - moment) <= abs(shifted[cursor][0] - moment):
            cursor += 1
        if abs(shifted[cursor][0] - moment) <= tolerance:
            today.append(value)
            yesterday.append(shifted[cursor][1])
    if len(today) * 2 < len(segment):
        return False  # too little history at these times to call it a pattern
    change = median(today) - base.median
    unexplained = median(today) - median(yesterday)
    if direction == Direction.DOWN:
        change, unexplained = -change, -unexplained
    return change > 0 and unexplained <= policy.daily_tolerance * change


def detect_onset(
    samples: Iterable[Sample],
    window_start: float,
    window_end: float | None = None,
    policy: OnsetPolicy = DEFAULT_POLICY,
    previous: Iterable[Sample] = (),
) -> Onset | None:
    """The onset of a change inside [window_start, window_end], judged against the samples before it.

    `previous` are the same series' samples a day earlier (their own timestamps); None when there is too
    little baseline, no sustained departure, or the departure repeats yesterday's pattern.
    """
    points = clean(samples)
    if window_end is not None:
        points = [point for point in points if point[0] <= window_end]
    split = next((index for index, point in enumerate(points) if point[0] >= window_start), len(points))
    before = [value for _, value in points[:split]]
    after = points[split:]
    needed = max(1, math.ceil(policy.sustain * policy.sustain_fraction))
    if len(before) < policy.min_baseline_points or len(after) < needed:
        return None
    base = baseline_of(before, policy)
    found: list[tuple[int, Direction]] = []
    for direction in policy.directions:
        flags = [_departs(value, base, direction, policy) for _, value in after]
        index = _first_sustained(flags, policy)
        if index is not None:
            found.append((split + index, direction))
    if not found:
        return None
    start, direction = min(found, key=lambda item: item[0])
    # Walk back over the softer threshold: a ramp starts before it crosses the hard one.
    while start > 0 and _still_departing(points[start - 1][1], base, direction, policy):
        start -= 1
    segment = points[max(start, split) :]
    levels = _rolling_medians([value for _, value in segment])
    current = max(levels) if direction == Direction.UP else min(levels)
    if _is_daily_pattern(segment, base, direction, clean(previous), _step_of(points), policy):
        return None
    magnitude = min(_ratio(current, base.median, policy), policy.max_magnitude)
    return Onset(points[start][0], direction, magnitude, base.median, current)
