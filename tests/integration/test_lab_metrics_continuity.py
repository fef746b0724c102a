"""A real Prometheus sees backfilled history and live scrapes of a lab series as ONE continuous series."""

from __future__ import annotations

import itertools
import json
import shutil
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from inquest.lab import procs
from inquest.lab.exporter import write_series_file
from inquest.lab.openmetrics import backfill
from inquest.lab.prometheus_config import LAB_INSTANCE, LAB_JOB, prometheus_config
from inquest.lab.shapes import SeriesSpec, value_at

pytestmark = pytest.mark.lab

PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"
METRIC = "inquest_lab_continuity_requests_total"
SELECTOR = f'{METRIC}{{job="{LAB_JOB}",instance="{LAB_INSTANCE}",service="checkout"}}'
HISTORY_SECONDS = 3600
SCRAPE_SECONDS = 5


def query(prometheus_url: str, promql: str, at: float | None = None) -> list[dict[str, Any]]:
    parameters = {"query": promql}
    if at is not None:
        parameters["time"] = f"{at:.3f}"
    url = f"{prometheus_url}/api/v1/query?{urllib.parse.urlencode(parameters)}"
    with urllib.request.urlopen(url, timeout=10) as response:
        payload = json.load(response)
    assert payload["status"] == "success", payload
    result: list[dict[str, Any]] = payload["data"]["result"]
    return result


@dataclass(frozen=True)
class MetricsLab:
    prometheus_url: str
    spec: SeriesSpec
    history_end: float  # epoch seconds of the last backfilled sample


def raw_samples(prometheus_url: str, at: float) -> list[tuple[float, float]]:
    [series] = query(prometheus_url, f"{SELECTOR}[2h]", at=at)
    return [(float(ts), float(value)) for ts, value in series["values"]]


@pytest.fixture
def metrics_lab(tmp_path: Path) -> Iterator[MetricsLab]:
    """The exporter, 1 h of backfilled history ending now, then Prometheus on that history."""
    if not (Path(PROMETHEUS).exists() and Path(PROMTOOL).exists()):
        pytest.skip("needs the Debian prometheus package (/usr/bin/prometheus, /usr/bin/promtool)")
    started: list[procs.ManagedProcess] = []
    marker = str(tmp_path)
    try:
        series_start = time.time()
        spec = SeriesSpec.model_validate(
            {
                "name": METRIC,
                "type": "counter",
                "labels": {"service": "checkout"},
                "noise": 0.05,
                # Rate steps from 1/s to 5/s halfway through the history.
                "points": [{"at": -HISTORY_SECONDS, "value": 1.0}, {"at": -HISTORY_SECONDS / 2, "value": 5.0}],
                "reference_time": series_start,
            }
        )
        series_file = tmp_path / "series.json"
        write_series_file(series_file, [spec])
        exporter_port, prometheus_port = procs.free_port(), procs.free_port()
        exporter = procs.start(
            "exporter",
            [
                sys.executable,
                "-m",
                "inquest.lab.exporter",
                "--port",
                str(exporter_port),
                "--series-file",
                str(series_file),
            ],
            tmp_path / "exporter.log",
        )
        started.append(exporter)
        procs.wait_until(
            exporter,
            marker,
            lambda: procs.http_ok(f"http://127.0.0.1:{exporter_port}/healthz"),
            timeout_seconds=30,
            what="serving /healthz",
        )

        config_file = tmp_path / "prometheus.yml"
        config_file.write_text(prometheus_config(f"127.0.0.1:{exporter_port}", SCRAPE_SECONDS))
        data_dir = tmp_path / "prometheus-data"
        # History ends now and Prometheus starts right after, so the first scrape follows within seconds.
        history_end = time.time()
        backfill([spec], series_start - HISTORY_SECONDS, history_end, SCRAPE_SECONDS, data_dir, promtool=PROMTOOL)
        prometheus_url = f"http://127.0.0.1:{prometheus_port}"
        prometheus = procs.start(
            "prometheus",
            [
                PROMETHEUS,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={data_dir}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
                "--log.level=warn",
            ],
            tmp_path / "prometheus.log",
        )
        started.append(prometheus)
        procs.wait_until(
            prometheus, marker, lambda: procs.http_ok(f"{prometheus_url}/-/ready"), timeout_seconds=60, what="ready"
        )
        yield MetricsLab(prometheus_url, spec, history_end)
    finally:
        for process in reversed(started):
            procs.stop(process, marker)
        shutil.rmtree(tmp_path / "prometheus-data", ignore_errors=True)


def test_backfilled_history_and_live_scrapes_are_one_series(metrics_lab: MetricsLab) -> None:
    prometheus_url, spec = metrics_lab.prometheus_url, metrics_lab.spec
    deadline = time.monotonic() + 60
    live_samples = 0
    while live_samples < 3:
        assert time.monotonic() < deadline, f"only {live_samples} scrapes in 60 s"
        time.sleep(1)
        # The history's last timestamp is rounded to the millisecond: live samples come strictly later.
        live_samples = sum(ts > metrics_lab.history_end + 0.001 for ts, _ in raw_samples(prometheus_url, time.time()))

    now = time.time()
    # ONE series under the metric name, labelled exactly as the scrape labels it.
    [series] = query(prometheus_url, METRIC, at=now)
    assert series["metric"] == {"__name__": METRIC, "job": LAB_JOB, "instance": LAB_INSTANCE, "service": "checkout"}
    assert query(prometheus_url, f"resets({METRIC}[2h])", at=now)[0]["value"][1] == "0"

    samples = raw_samples(prometheus_url, now)
    count = int(float(query(prometheus_url, f"count_over_time({METRIC}[2h])", at=now)[0]["value"][1]))
    assert count == len(samples)
    assert count >= HISTORY_SECONDS // SCRAPE_SECONDS + 3

    earliest = samples[0][0]
    assert abs(earliest - (spec.reference_time - HISTORY_SECONDS)) < 1, "history starts ~1 h ago"
    assert samples[-1][0] > metrics_lab.history_end, "live samples follow the history"
    gaps = [later[0] - earlier[0] for earlier, later in itertools.pairwise(samples)]
    assert max(gaps) < 3 * SCRAPE_SECONDS, f"gap of {max(gaps):.1f}s between samples"
    values = [value for _, value in samples]
    assert values == sorted(values), "the counter never goes down"
    for ts, value in samples:
        # History timestamps are rounded to the ms; a live value is computed when the request arrives, a
        # little after the scrape's timestamp (more on a busy machine): the counter lies between the two.
        low, high = value_at(spec, ts - 0.001) or 0.0, value_at(spec, ts + 2.0)
        assert high is not None
        assert low <= value <= high, f"sample {value} at {ts} is not the shape's value ({low}..{high})"

    # The step from 1/s to 5/s shows in the rates on both sides of it.
    halfway = spec.reference_time - HISTORY_SECONDS / 2
    before = float(query(prometheus_url, f"rate({SELECTOR}[5m])", at=halfway - 60)[0]["value"][1])
    after = float(query(prometheus_url, f"rate({SELECTOR}[5m])", at=now)[0]["value"][1])
    assert before == pytest.approx(1.0, rel=0.1)
    assert after == pytest.approx(5.0, rel=0.1)
