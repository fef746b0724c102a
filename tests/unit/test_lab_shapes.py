"""Series shapes: exact counter integrals, deterministic noise that keeps counters monotonic, clear validation."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from inquest.lab.shapes import SeriesSpec, level_at, parse_duration, start_time, value_at

REFERENCE = 1_700_000_000.0


def make_spec(**overrides: Any) -> SeriesSpec:
    fields: dict[str, Any] = {
        "name": "http_requests_total",
        "type": "counter",
        "labels": {"service": "checkout"},
        "points": [{"at": "-1h", "value": 1.0}, {"at": "-30m", "value": 5.0}, {"at": "0s", "value": 0.5}],
        "reference_time": REFERENCE,
    }
    fields.update(overrides)
    return SeriesSpec.model_validate(fields)


def brute_force_integral(spec: SeriesSpec, t: float, slices: int = 100_000) -> float:
    """Midpoint rule over the noiseless rate: slow but obviously right."""
    begin = start_time(spec)
    width = (t - begin) / slices
    total = 0.0
    for index in range(slices):
        rate = level_at(spec, begin + (index + 0.5) * width)
        assert rate is not None
        total += rate * width
    return total


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("-6h", -21600.0),
        ("-30m", -1800.0),
        ("0s", 0.0),
        ("90s", 90.0),
        ("1h30m", 5400.0),
        ("250ms", 0.25),
        ("1.5h", 5400.0),
        ("+2d", 172800.0),
        ("45", 45.0),
        ("-12.5", -12.5),
        (30, 30.0),
        (-0.5, -0.5),
    ],
)
def test_durations_parse_to_seconds(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "h", "6x", "1h 30m", "--1h", "1h-30m", "abc", "1.2.3s"])
def test_bad_durations_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


@pytest.mark.parametrize("shape", ["step", "linear"])
@pytest.mark.parametrize("offset", [-3600.0, -2000.0, -1800.0, -1.0, 0.0, 777.7])
def test_counter_is_the_exact_integral_of_its_rate(shape: str, offset: float) -> None:
    spec = make_spec(shape=shape)
    t = REFERENCE + offset
    assert value_at(spec, t) == pytest.approx(brute_force_integral(spec, t), rel=1e-5, abs=1e-3)


def test_step_counter_values_by_hand() -> None:
    spec = make_spec()
    assert value_at(spec, REFERENCE - 3600) == 0.0
    assert value_at(spec, REFERENCE - 1800) == pytest.approx(1800.0)
    assert value_at(spec, REFERENCE) == pytest.approx(1800.0 + 5 * 1800)
    assert value_at(spec, REFERENCE + 100) == pytest.approx(1800.0 + 5 * 1800 + 50)  # last rate continues


def test_linear_counter_values_by_hand() -> None:
    spec = make_spec(shape="linear", points=[{"at": 0, "value": 0.0}, {"at": 10, "value": 2.0}])
    assert level_at(spec, REFERENCE + 5) == pytest.approx(1.0)
    assert value_at(spec, REFERENCE + 10) == pytest.approx(10.0)  # triangle 10 s x 2/s / 2
    assert value_at(spec, REFERENCE + 15) == pytest.approx(20.0)  # then 2/s flat


def test_series_does_not_exist_before_its_first_point() -> None:
    spec = make_spec()
    assert value_at(spec, REFERENCE - 3600.001) is None
    assert level_at(spec, REFERENCE - 7200) is None
    assert value_at(spec, REFERENCE - 3600) == 0.0


def test_gauge_step_and_linear_levels() -> None:
    points = [{"at": "-10m", "value": 10.0}, {"at": "0s", "value": -20.0}]
    step = make_spec(name="queue_depth", type="gauge", points=points)
    linear = make_spec(name="queue_depth", type="gauge", points=points, shape="linear")
    assert value_at(step, REFERENCE - 1) == 10.0
    assert value_at(step, REFERENCE) == -20.0
    assert value_at(linear, REFERENCE - 300) == pytest.approx(-5.0)
    assert value_at(linear, REFERENCE + 3600) == -20.0


@pytest.mark.parametrize("shape", ["step", "linear"])
def test_noisy_counter_is_monotonic_and_stays_near_the_exact_value(shape: str) -> None:
    points = [
        {"at": "-1h", "value": 0.1},
        {"at": "-20m", "value": 0.0},
        {"at": "-10m", "value": 25.0},
        {"at": "0s", "value": 2.0},
    ]
    noisy = make_spec(points=points, shape=shape, noise=0.9)
    exact = make_spec(points=points, shape=shape)
    previous = 0.0
    moved = 0
    for second in range(0, 3700, 1):
        t = REFERENCE - 3600 + second + 0.25
        value = value_at(noisy, t)
        exact_value = value_at(exact, t)
        assert value is not None
        assert exact_value is not None
        assert value >= previous, f"counter went down at t={t}: {previous} -> {value}"
        # Bounded: at most noise * (highest rate) * bucket / 2 away from the noiseless integral.
        assert abs(value - exact_value) <= 0.9 * 25.0 * 30.0 + 1e-9
        moved += value != pytest.approx(exact_value)
        previous = value
    assert moved > 1000, "noise should be visible"


def test_noise_is_deterministic_and_depends_on_the_series() -> None:
    first = make_spec(noise=0.3)
    again = make_spec(noise=0.3)
    other = make_spec(noise=0.3, labels={"service": "payments"})
    times = [REFERENCE - 1000 + 7.3 * index for index in range(50)]
    assert [value_at(first, t) for t in times] == [value_at(again, t) for t in times]
    assert [value_at(first, t) for t in times] != [value_at(other, t) for t in times]


def test_noisy_gauge_jitters_within_its_relative_bound() -> None:
    spec = make_spec(name="cpu_usage", type="gauge", points=[{"at": "-1h", "value": 100.0}], noise=0.05)
    values = [value_at(spec, REFERENCE - 3000 + 13 * index) for index in range(200)]
    assert all(value is not None and 95.0 <= value <= 105.0 for value in values)
    assert len(set(values)) > 100


def test_yaml_style_input_parses() -> None:
    spec = SeriesSpec.model_validate(
        {
            "name": "http_requests_total",
            "type": "counter",
            "labels": {"service": "checkout", "code": 500},
            "points": [{"at": "-6h", "value": 0.1}, {"at": "0s", "value": 25}],
            "shape": "step",
            "noise": 0.05,
            "reference_time": REFERENCE,
        }
    )
    assert spec.labels["code"] == "500"
    assert [point.at for point in spec.points] == [-21600.0, 0.0]
    assert SeriesSpec.model_validate(spec.model_dump(mode="json")) == spec


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"type": "histogram"}, "type", "'counter' or 'gauge'"),
        ({"shape": "cubic"}, "shape", "'step' or 'linear'"),
        ({"points": []}, "points", "at least 1"),
        ({"points": [{"at": "0s", "value": 1}, {"at": "-1h", "value": 2}]}, "points", "increasing order"),
        ({"points": [{"at": "-1h", "value": 1}, {"at": "0s", "value": -2}]}, "points[1].value", "must be >= 0"),
        ({"points": [{"at": "soon", "value": 1}]}, "points.0.at", "not a duration"),
        ({"noise": 1.0}, "noise", "less than 1"),
        ({"noise": -0.1}, "noise", "greater than or equal to 0"),
        ({"name": "http requests"}, "name", "metric name"),
        ({"name": "http_requests"}, "name", "must end with '_total'"),
        ({"labels": {"job": "x"}}, "labels", "reserved"),
        ({"labels": {"bad-label": "x"}}, "labels", "label name"),
        ({"colour": "red"}, "colour", "Extra inputs"),
    ],
)
def test_invalid_specs_are_rejected_naming_the_field(overrides: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(ValidationError) as failure:
        make_spec(**overrides)
    text = str(failure.value)
    assert field in text
    assert message in text


def test_negative_gauge_levels_are_fine() -> None:
    assert make_spec(name="temperature", type="gauge", points=[{"at": 0, "value": -3}]).points[0].value == -3
