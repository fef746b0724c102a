"""Onset detection on plain (t, v) lists: steps, ramps, spikes, noise, zero baselines, daily peaks, bad values."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import UTC

import pytest

from inquest.engine.context import Direction
from inquest.metrics.onset import DAY_SECONDS, Onset, OnsetPolicy, clean, detect_onset

STEP = 15.0
POINTS = 240
WINDOW_START = 120 * STEP  # the first half is the baseline lookback
CHANGE = 150 * STEP


def series(shape: Callable[[float], float], points: int = POINTS, offset: float = 0.0) -> list[tuple[float, float]]:
    return [(offset + index * STEP, shape(offset + index * STEP)) for index in range(points)]


def step_to(before: float, after: float, at: float = CHANGE) -> Callable[[float], float]:
    return lambda moment: before if moment < at else after


DEFAULT = OnsetPolicy()


def found(samples: list[tuple[float, float]], policy: OnsetPolicy = DEFAULT) -> Onset:
    onset = detect_onset(samples, WINDOW_START, policy=policy)
    assert onset is not None
    return onset


def test_step_up_is_dated_at_the_step_with_its_ratio() -> None:
    onset = found(series(step_to(100, 300)))
    assert onset.time == CHANGE
    assert onset.direction == Direction.UP
    assert onset.magnitude == pytest.approx(3.0)
    assert (onset.baseline, onset.current) == (100, 300)
    assert onset.moment.tzinfo == UTC


def test_drop_to_zero_is_a_downward_onset_with_ratio_zero() -> None:
    onset = found(series(step_to(12, 0)))
    assert onset.direction == Direction.DOWN
    assert onset.time == CHANGE
    assert onset.magnitude == 0


def test_allowed_directions_limit_what_counts() -> None:
    assert detect_onset(series(step_to(12, 0)), WINDOW_START, policy=OnsetPolicy(directions=(Direction.UP,))) is None


def test_ramp_is_dated_near_where_it_starts_not_where_it_crosses_the_threshold() -> None:
    onset = found(series(lambda moment: 100 + max(0.0, moment - CHANGE) / STEP * 5))
    assert CHANGE <= onset.time <= CHANGE + STEP
    assert onset.magnitude > 4


def test_rate_smoothed_step_is_dated_at_its_foot() -> None:
    # rate() over 8 steps turns a step into an 8-point ramp.
    onset = found(series(lambda moment: 10 + min(max(0.0, moment - CHANGE) / (8 * STEP), 1.0) * 40))
    assert CHANGE <= onset.time <= CHANGE + 2 * STEP
    assert onset.current == pytest.approx(50)


@pytest.mark.parametrize("width", [1, 2])
def test_short_spikes_are_not_onsets(width: int) -> None:
    spike = series(lambda moment: 1000.0 if CHANGE <= moment < CHANGE + width * STEP else 100.0)
    assert detect_onset(spike, WINDOW_START) is None


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("relative_noise", [0.05, 0.2])
def test_noise_alone_never_makes_an_onset(seed: int, relative_noise: float) -> None:
    rng = random.Random(seed)
    noisy = series(lambda _: 100 * (1 + rng.gauss(0, relative_noise)))
    assert detect_onset(noisy, WINDOW_START) is None


@pytest.mark.parametrize("seed", range(8))
def test_sporadic_bursts_over_a_zero_baseline_are_not_an_onset(seed: int) -> None:
    # A low-traffic error ratio: mostly 0, now and then a few points of errors, before and inside the window.
    rng = random.Random(seed)
    bursts = {index for index in range(POINTS) if rng.random() < 0.15}
    samples = [(index * STEP, 0.05 if index in bursts else 0.0) for index in range(POINTS)]
    assert detect_onset(samples, WINDOW_START, policy=OnsetPolicy(floor=0.01, min_level=0.02)) is None


@pytest.mark.parametrize("seed", range(4))
def test_a_real_step_is_found_through_noise(seed: int) -> None:
    rng = random.Random(seed)
    noisy = series(lambda moment: (100 if moment < CHANGE else 250) * (1 + rng.gauss(0, 0.05)))
    onset = found(noisy)
    assert abs(onset.time - CHANGE) <= 2 * STEP
    assert 2.0 < onset.magnitude < 3.2


def test_errors_from_zero_use_the_floor_as_divisor() -> None:
    policy = OnsetPolicy(floor=0.01, min_level=0.02)
    onset = found(series(step_to(0.0, 5.0)), policy)
    assert onset.baseline == 0
    assert onset.magnitude == pytest.approx(500)


def test_ratio_over_zero_is_capped() -> None:
    onset = found(series(step_to(0.0, 5.0)), OnsetPolicy(max_magnitude=100))
    assert onset.magnitude == 100


def test_tiny_rise_from_zero_below_min_level_is_ignored() -> None:
    assert (
        detect_onset(series(step_to(0.0, 0.001)), WINDOW_START, policy=OnsetPolicy(floor=0.0005, min_level=0.02))
        is None
    )


def test_drop_from_an_insignificant_baseline_is_ignored() -> None:
    assert detect_onset(series(step_to(0.1, 0.0)), WINDOW_START, policy=OnsetPolicy(min_level=0.2)) is None


@pytest.mark.parametrize("level", [0.0, 1.0, 1e6])
def test_flat_series_has_no_onset(level: float) -> None:
    assert detect_onset(series(lambda _: level), WINDOW_START) is None


def test_too_few_baseline_points() -> None:
    samples = [point for point in series(step_to(100, 300)) if point[0] >= WINDOW_START - 3 * STEP]
    assert detect_onset(samples, WINDOW_START) is None


def test_too_few_window_points() -> None:
    samples = series(step_to(100, 300, at=WINDOW_START), points=122)
    assert detect_onset(samples, WINDOW_START) is None


def test_empty_series() -> None:
    assert detect_onset([], WINDOW_START) is None


def test_nan_and_inf_are_dropped_not_read_as_values() -> None:
    samples = series(step_to(100, 300))
    for index in range(0, POINTS, 7):
        samples[index] = (samples[index][0], math.nan if index % 2 else math.inf)
    onset = found(samples)
    assert abs(onset.time - CHANGE) <= STEP
    assert detect_onset([(moment, math.nan) for moment, _ in samples], WINDOW_START) is None


def test_unsorted_and_duplicate_samples_are_cleaned() -> None:
    samples = series(step_to(100, 300))
    shuffled = list(reversed(samples)) + samples[:10]
    assert clean(shuffled) == samples
    assert found(shuffled).time == CHANGE


def test_window_end_cuts_later_samples() -> None:
    samples = series(step_to(100, 300))
    assert detect_onset(samples, WINDOW_START, window_end=CHANGE - STEP) is None


def test_change_just_before_the_window_is_dated_before_it() -> None:
    at = WINDOW_START - 2 * STEP
    onset = found(series(step_to(100, 300, at=at)))
    assert onset.time == at


def test_level_already_changed_in_the_baseline_is_not_an_onset() -> None:
    assert detect_onset(series(step_to(100, 300, at=30 * STEP)), WINDOW_START) is None


def _daily_peak(moment: float) -> float:
    """Quiet at 100, a peak of 300 at the same time every day."""
    return 300.0 if CHANGE <= moment % DAY_SECONDS < CHANGE + 60 * STEP else 100.0


def test_daily_peak_seen_yesterday_is_suppressed() -> None:
    today = series(_daily_peak, offset=DAY_SECONDS)
    yesterday = series(_daily_peak)
    assert detect_onset(today, DAY_SECONDS + WINDOW_START) is not None
    assert detect_onset(today, DAY_SECONDS + WINDOW_START, previous=yesterday) is None


def test_peak_far_above_yesterdays_is_still_an_onset() -> None:
    today = series(lambda moment: 900.0 if _daily_peak(moment) > 100 else 100.0, offset=DAY_SECONDS)
    yesterday = series(_daily_peak)
    onset = detect_onset(today, DAY_SECONDS + WINDOW_START, previous=yesterday)
    assert onset is not None
    assert onset.magnitude == pytest.approx(9)


def test_yesterday_flat_keeps_the_onset() -> None:
    today = series(_daily_peak, offset=DAY_SECONDS)
    yesterday = series(lambda _: 100.0)
    assert detect_onset(today, DAY_SECONDS + WINDOW_START, previous=yesterday) is not None


def test_sparse_history_yesterday_does_not_suppress() -> None:
    today = series(_daily_peak, offset=DAY_SECONDS)
    yesterday = series(_daily_peak)[:10]
    assert detect_onset(today, DAY_SECONDS + WINDOW_START, previous=yesterday) is not None


def test_daily_drop_seen_yesterday_is_suppressed() -> None:
    def nightly(moment: float) -> float:
        return 5.0 if moment % DAY_SECONDS >= CHANGE else 50.0

    today = series(nightly, offset=DAY_SECONDS)
    assert detect_onset(today, DAY_SECONDS + WINDOW_START) is not None
    assert detect_onset(today, DAY_SECONDS + WINDOW_START, previous=series(nightly)) is None


def test_recovered_incident_reports_its_peak() -> None:
    onset = found(series(lambda moment: 400.0 if CHANGE <= moment < CHANGE + 20 * STEP else 100.0))
    assert onset.current == 400
    assert onset.magnitude == pytest.approx(4)
