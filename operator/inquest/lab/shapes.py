"""Metric series defined as shapes over time, evaluated the same way for backfilled history and live scrapes.

A series is a list of points relative to a reference time (a scenario's fault time, t=0). For a gauge the
points are levels; for a counter they are per-second rates and the exposed value is their integral since
the first point. Everything here is a pure function of (spec, t), so any two processes agree on every sample.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, field_validator, model_validator

# Jitter changes smoothly from one bucket boundary to the next; 60 s keeps it visible in rate(...[1m]).
NOISE_BUCKET_SECONDS = 60.0

METRIC_NAME_PATTERN = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME_PATTERN = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# Prometheus attaches these at scrape time; a series that set them would no longer match its backfill.
RESERVED_LABELS = frozenset({"job", "instance"})
# Counters proper end in _total; histogram and summary parts are counters too, exposed without a counter TYPE.
COUNTER_SUFFIXES = ("_total", "_sum", "_count", "_bucket")

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h|d|w)")
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+(?:\.\d*)?|\.\d+)$")


def parse_duration(raw: object) -> float:
    """Seconds from '-6h', '90s', '1h30m', '250ms', '-1.5d', a plain number string or an int/float."""
    if isinstance(raw, bool):
        raise ValueError(f"expected a duration like '-6h', '90s' or a number of seconds, got {raw!r}")
    if isinstance(raw, int | float):
        seconds = float(raw)
        if not math.isfinite(seconds):
            raise ValueError(f"duration must be finite, got {raw!r}")
        return seconds
    if not isinstance(raw, str):
        raise ValueError(f"expected a duration like '-6h', '90s' or a number of seconds, got {raw!r}")
    text = raw.strip()
    if _PLAIN_NUMBER.match(text):
        return float(text)
    sign = 1.0
    body = text
    if body and body[0] in "+-":
        sign = -1.0 if body[0] == "-" else 1.0
        body = body[1:]
    total = 0.0
    position = 0
    for match in _DURATION_PART.finditer(body):
        if match.start() != position:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        position = match.end()
    if not body or position != len(body):
        raise ValueError(f"not a duration: {raw!r} (use e.g. '-6h', '-30m', '0s', '90s', '1h30m' or seconds)")
    return sign * total


class SeriesPoint(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    at: float  # seconds relative to the series' reference time
    value: FiniteFloat

    @field_validator("at", mode="before")
    @classmethod
    def _parse_at(cls, raw: object) -> float:
        return parse_duration(raw)


class SeriesSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    type: Literal["counter", "gauge"]
    labels: dict[str, str] = Field(default_factory=dict)
    points: Annotated[list[SeriesPoint], Field(min_length=1)]
    shape: Literal["step", "linear"] = "step"
    noise: float = Field(default=0.0, ge=0.0, lt=1.0)
    reference_time: float  # epoch seconds of t=0

    @field_validator("name")
    @classmethod
    def _check_name(cls, name: str) -> str:
        if not METRIC_NAME_PATTERN.match(name):
            raise ValueError(f"not a valid Prometheus metric name: {name!r}")
        return name

    @field_validator("labels", mode="before")
    @classmethod
    def _stringify_label_values(cls, raw: object) -> object:
        # YAML reads `code: 500` as an int; label values are always strings.
        if isinstance(raw, dict):
            return {
                key: str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
                for key, value in raw.items()
            }
        return raw

    @field_validator("labels")
    @classmethod
    def _check_labels(cls, labels: dict[str, str]) -> dict[str, str]:
        for key in labels:
            if not LABEL_NAME_PATTERN.match(key) or key.startswith("__"):
                raise ValueError(f"not a valid label name: {key!r}")
            if key in RESERVED_LABELS:
                raise ValueError(f"label {key!r} is reserved: Prometheus attaches job and instance at scrape time")
        return labels

    @field_validator("points")
    @classmethod
    def _check_points_sorted(cls, points: list[SeriesPoint]) -> list[SeriesPoint]:
        for index in range(1, len(points)):
            if points[index].at <= points[index - 1].at:
                raise ValueError(
                    f"points must be in strictly increasing order of 'at': points[{index}].at={points[index].at:g}s"
                    f" is not after points[{index - 1}].at={points[index - 1].at:g}s"
                )
        return points

    @field_validator("reference_time")
    @classmethod
    def _check_reference_time(cls, reference_time: float) -> float:
        if not math.isfinite(reference_time):
            raise ValueError("reference_time must be finite epoch seconds")
        return reference_time

    @model_validator(mode="after")
    def _check_counter(self) -> SeriesSpec:
        if self.type != "counter":
            return self
        if not self.name.endswith(COUNTER_SUFFIXES):
            raise ValueError(
                f"name: a counter's name must end with '_total', or '_sum', '_count' or '_bucket' for the parts of a"
                f" histogram or summary, got {self.name!r}"
            )
        for index, point in enumerate(self.points):
            if point.value < 0:
                raise ValueError(
                    f"points[{index}].value: a counter's points are per-second rates and must be"
                    f" >= 0, got {point.value:g}"
                )
        return self


def exposition_type(spec: SeriesSpec) -> str:
    """The OpenMetrics TYPE: histogram and summary parts given one by one can only be 'unknown'."""
    if spec.type == "counter":
        return "counter" if spec.name.endswith("_total") else "unknown"
    return "gauge"


def series_key(spec: SeriesSpec) -> str:
    """Identity of a series (name and labels), stable across processes."""
    labels = ",".join(f"{key}={value}" for key, value in sorted(spec.labels.items()))
    return f"{spec.name}{{{labels}}}"


def start_time(spec: SeriesSpec) -> float:
    """Epoch seconds of the first point: the series has no samples before it."""
    return spec.reference_time + spec.points[0].at


def level_at(spec: SeriesSpec, t: float) -> float | None:
    """The noiseless shape at epoch t: the per-second rate of a counter, the level of a gauge; None before start."""
    if t < start_time(spec):
        return None
    return _level(spec, t)


def value_at(spec: SeriesSpec, t: float) -> float | None:
    """The exposed sample at epoch t (noise included); None before the series starts."""
    if t < start_time(spec):
        return None
    key = series_key(spec)
    if spec.type == "gauge":
        level = _level(spec, t)
        if spec.noise == 0.0:
            return level
        return level * (1.0 + spec.noise * _interpolated_unit_jitter(key, t))
    total = _integral(spec, t)
    if spec.noise == 0.0:
        return total
    # Jitter J(t) moves linearly between per-boundary values j_k = noise * u_k * W/2 * (min rate on the two
    # buckets around boundary k), |u_k| <= 1. Within bucket k, |dJ/dt| <= (|j_k| + |j_k+1|) / W
    # <= noise * (min rate in bucket k) <= noise * r(t), so d(I + J)/dt >= (1 - noise) * r(t) >= 0: monotonic.
    # Before the start the rate counts as 0, so J is 0 at the start and the counter begins at 0.
    bucket = math.floor(t / NOISE_BUCKET_SECONDS)
    fraction = t / NOISE_BUCKET_SECONDS - bucket
    jitter_low = _boundary_jitter(spec, key, bucket)
    jitter_high = _boundary_jitter(spec, key, bucket + 1)
    jitter = jitter_low + (jitter_high - jitter_low) * fraction
    return max(0.0, total + jitter)


def _absolute_points(spec: SeriesSpec) -> list[tuple[float, float]]:
    return [(spec.reference_time + point.at, point.value) for point in spec.points]


def _level(spec: SeriesSpec, t: float) -> float:
    """The shape at t, for t at or after the start."""
    points = _absolute_points(spec)
    for index in range(len(points) - 1, -1, -1):
        point_time, point_value = points[index]
        if t < point_time:
            continue
        if spec.shape == "step" or index == len(points) - 1:
            return point_value
        next_time, next_value = points[index + 1]
        return point_value + (next_value - point_value) * (t - point_time) / (next_time - point_time)
    return points[0][1]


def _integral(spec: SeriesSpec, t: float) -> float:
    """Exact integral of the rate from the start to t: sums whole segments, O(number of points)."""
    points = _absolute_points(spec)
    total = 0.0
    for index, (segment_start, rate_start) in enumerate(points):
        if t <= segment_start:
            break
        is_last = index == len(points) - 1
        segment_end = t if is_last else min(t, points[index + 1][0])
        width = segment_end - segment_start
        if spec.shape == "step" or is_last:
            total += rate_start * width
        else:
            next_time, next_rate = points[index + 1]
            rate_end = rate_start + (next_rate - rate_start) * width / (next_time - segment_start)
            total += (rate_start + rate_end) / 2.0 * width
    return total


def _min_rate(spec: SeriesSpec, low: float, high: float) -> float:
    """Lowest rate on [low, high], counting time before the start as rate 0; extremes lie at ends or points."""
    if low < start_time(spec):
        return 0.0
    candidates = [_level(spec, low), _level(spec, high)]
    candidates.extend(value for point_time, value in _absolute_points(spec) if low < point_time < high)
    return min(candidates)


def _boundary_jitter(spec: SeriesSpec, key: str, boundary: int) -> float:
    boundary_time = boundary * NOISE_BUCKET_SECONDS
    floor_rate = _min_rate(spec, boundary_time - NOISE_BUCKET_SECONDS, boundary_time + NOISE_BUCKET_SECONDS)
    return spec.noise * _unit_jitter(key, boundary) * floor_rate * NOISE_BUCKET_SECONDS / 2.0


def _interpolated_unit_jitter(key: str, t: float) -> float:
    bucket = math.floor(t / NOISE_BUCKET_SECONDS)
    fraction = t / NOISE_BUCKET_SECONDS - bucket
    low = _unit_jitter(key, bucket)
    return low + (_unit_jitter(key, bucket + 1) - low) * fraction


def _unit_jitter(key: str, bucket: int) -> float:
    """A value in [-1, 1] fixed by (series, bucket): a hash, not random, so every process agrees."""
    digest = hashlib.blake2b(f"{key}\x00{bucket}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / float(2**64 - 1) * 2.0 - 1.0
