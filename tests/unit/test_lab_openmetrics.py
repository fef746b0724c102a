"""OpenMetrics history for backfill, promtool's blocks from it, and the lab Prometheus configuration."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from inquest.lab.errors import LabError
from inquest.lab.openmetrics import backfill, sample_times, write_openmetrics
from inquest.lab.prometheus_config import LAB_INSTANCE, LAB_JOB, prometheus_config
from inquest.lab.shapes import SeriesSpec, value_at

REFERENCE = 1_700_000_000.0
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
needs_promtool = pytest.mark.skipif(not Path(PROMTOOL).exists(), reason="promtool is not installed")

SAMPLE_LINE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+) (?P<ts>\S+)$")
LABEL_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?')

Sample = tuple[str, tuple[tuple[str, str], ...], float, float]


def make_spec(**overrides: Any) -> SeriesSpec:
    fields: dict[str, Any] = {
        "name": "http_requests_total",
        "type": "counter",
        "labels": {"service": "checkout"},
        "points": [{"at": "-10m", "value": 1.0}, {"at": "-5m", "value": 5.0}],
        "reference_time": REFERENCE,
    }
    fields.update(overrides)
    return SeriesSpec.model_validate(fields)


def unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda match: {"n": "\n"}.get(match.group(1), match.group(1)), value)


def parse_openmetrics(text: str) -> tuple[list[tuple[str, str]], list[Sample]]:
    """A strict little reader: TYPE lines, samples with labels and timestamps, and # EOF last."""
    lines = text.split("\n")
    assert lines[-2:] == ["# EOF", ""], "must end with '# EOF' and a newline"
    types: list[tuple[str, str]] = []
    samples: list[Sample] = []
    for line in lines[:-2]:
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types.append((name, kind))
            continue
        match = SAMPLE_LINE.match(line)
        assert match, f"not a sample line: {line!r}"
        label_text = match.group("labels") or ""
        pairs = LABEL_PAIR.findall(label_text)
        assert "".join(f'{key}="{value}",' for key, value in pairs).rstrip(",") == label_text
        labels = tuple((key, unescape(value)) for key, value in pairs)
        samples.append((match.group("name"), labels, float(match.group("value")), float(match.group("ts"))))
    return types, samples


def render(specs: list[SeriesSpec], start: float, end: float, step: float) -> tuple[str, int]:
    out = io.StringIO()
    count = write_openmetrics(specs, start, end, step, out, job=LAB_JOB, instance=LAB_INSTANCE)
    return out.getvalue(), count


def test_history_parses_back_with_families_labels_and_values() -> None:
    counter = make_spec(labels={"service": 'check"out', "path": "C:\\tmp\nx"})
    other_counter = make_spec(labels={"service": "payments"})
    gauge = make_spec(name="queue_depth", type="gauge", labels={}, points=[{"at": "-2m", "value": 7.5}])
    text, count = render([counter, gauge, other_counter], REFERENCE - 900, REFERENCE, 30)
    types, samples = parse_openmetrics(text)

    # Counters: TYPE names the family without '_total'; the two counter series share one family block.
    assert types == [("http_requests", "counter"), ("queue_depth", "gauge")]
    names_in_order = [name for name, _, _, _ in samples]
    counters = names_in_order.count("http_requests_total")
    assert names_in_order == ["http_requests_total"] * counters + ["queue_depth"] * (len(samples) - counters)
    assert count == len(samples)

    by_series: dict[tuple[str, tuple[tuple[str, str], ...]], list[tuple[float, float]]] = {}
    for name, labels, value, ts in samples:
        by_series.setdefault((name, labels), []).append((ts, value))
    counter_key = (
        "http_requests_total",
        (("job", LAB_JOB), ("instance", LAB_INSTANCE), ("service", 'check"out'), ("path", "C:\\tmp\nx")),
    )
    assert counter_key in by_series
    history = by_series[counter_key]
    # No samples before the first point (-10m); 30 s grid from there to the end.
    assert history[0][0] == REFERENCE - 600
    assert history[-1][0] == REFERENCE
    assert len(history) == 21
    for ts, value in history:
        assert value == pytest.approx(value_at(counter, ts))
    assert [value for _, value in history] == sorted(value for _, value in history)
    gauge_history = by_series[("queue_depth", (("job", LAB_JOB), ("instance", LAB_INSTANCE)))]
    assert [ts for ts, _ in gauge_history] == [REFERENCE - 120 + 30 * index for index in range(5)]
    assert {value for _, value in gauge_history} == {7.5}


def test_sample_grid_includes_the_end_exactly() -> None:
    assert list(sample_times(0.0, 10.0, 5.0)) == [0.0, 5.0, 10.0]
    assert list(sample_times(0.0, 12.0, 5.0)) == [0.0, 5.0, 10.0, 12.0]
    assert list(sample_times(3.0, 2.0, 5.0)) == []
    with pytest.raises(ValueError, match="step_seconds"):
        list(sample_times(0.0, 1.0, 0.0))


def test_conflicting_series_are_rejected() -> None:
    with pytest.raises(ValueError, match="defined twice"):
        render([make_spec(), make_spec()], REFERENCE - 60, REFERENCE, 30)
    with pytest.raises(ValueError, match="both a counter and a gauge"):
        render([make_spec(), make_spec(name="http_requests", type="gauge")], REFERENCE - 60, REFERENCE, 30)


@needs_promtool
def test_backfill_writes_blocks_promtool_can_read(tmp_path: Path) -> None:
    spec = make_spec(noise=0.1)
    data_dir = tmp_path / "prometheus-data"
    result = backfill([spec], REFERENCE - 900, REFERENCE, 15, data_dir, promtool=PROMTOOL)
    assert result.samples == 41
    assert result.series == 1
    assert result.blocks
    assert list(tmp_path.glob(".backfill-*")) == [], "the scratch file is removed"

    (data_dir / "wal").mkdir()  # `tsdb dump` reads the WAL too
    dump = subprocess.run([PROMTOOL, "tsdb", "dump", str(data_dir)], capture_output=True, text=True, check=True)
    rows = [line for line in dump.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == 41
    assert 'instance="lab-exporter"' in rows[0]
    assert 'job="inquest-lab"' in rows[0]
    last_value, last_ms = rows[-1].rsplit(" ", 2)[-2:]
    assert int(last_ms) == REFERENCE * 1000
    assert float(last_value) == pytest.approx(value_at(spec, REFERENCE))


def test_backfill_failure_reports_promtool_output(tmp_path: Path) -> None:
    failing = tmp_path / "promtool"
    failing.write_text("#!/bin/sh\necho 'getting min and max timestamp: next: expected label value' >&2\nexit 1\n")
    failing.chmod(0o755)
    with pytest.raises(LabError, match="backfill failed") as failure:
        backfill([make_spec()], REFERENCE - 60, REFERENCE, 15, tmp_path / "data", promtool=str(failing))
    assert failure.value.component == "promtool"
    assert "expected label value" in failure.value.log_tail
    assert list(tmp_path.glob(".backfill-*")) == []


def test_backfill_without_promtool_says_so(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="binary not found"):
        backfill([make_spec()], REFERENCE - 60, REFERENCE, 15, tmp_path / "data", promtool=str(tmp_path / "none"))


def test_prometheus_config_pins_job_and_instance() -> None:
    config = yaml.safe_load(prometheus_config("127.0.0.1:9123", scrape_interval_seconds=5))
    [job] = config["scrape_configs"]
    assert job["job_name"] == LAB_JOB == "inquest-lab"
    assert job["scrape_interval"] == "5s"
    assert job["static_configs"] == [{"targets": ["127.0.0.1:9123"]}]
    assert job["relabel_configs"] == [{"target_label": "instance", "replacement": LAB_INSTANCE}]
    assert LAB_INSTANCE == "lab-exporter"
    with pytest.raises(ValueError, match="host:port"):
        prometheus_config("127.0.0.1")


@needs_promtool
def test_prometheus_config_passes_promtool_check(tmp_path: Path) -> None:
    config_file = tmp_path / "prometheus.yml"
    config_file.write_text(prometheus_config("127.0.0.1:9123"))
    checked = subprocess.run(
        [PROMTOOL, "check", "config", str(config_file)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


@needs_promtool
def test_histogram_parts_are_counters_exported_as_unknown(tmp_path: Path) -> None:
    parts = [make_spec(name="http_request_duration_seconds_sum"), make_spec(name="http_request_duration_seconds_count")]
    text, _ = render(parts, REFERENCE - 600, REFERENCE, 60)
    types, samples = parse_openmetrics(text)
    assert types == [
        ("http_request_duration_seconds_sum", "unknown"),
        ("http_request_duration_seconds_count", "unknown"),
    ]
    values = [value for name, _, value, _ in samples if name.endswith("_sum")]
    assert values == sorted(values), "still integrated as a counter"
    result = backfill(parts, REFERENCE - 600, REFERENCE, 60, tmp_path / "data", promtool=PROMTOOL)
    assert result.series == 2
    assert result.blocks
