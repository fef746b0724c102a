"""The lab exporter serves current values, re-reads its series file when replaced, and never sets job/instance."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from inquest.lab import procs
from inquest.lab.exporter import create_app, render_exposition, write_series_file
from inquest.lab.shapes import SeriesSpec, value_at

REFERENCE = 1_700_000_000.0


def make_spec(**overrides: Any) -> SeriesSpec:
    fields: dict[str, Any] = {
        "name": "http_requests_total",
        "type": "counter",
        "labels": {"service": "checkout"},
        "points": [{"at": "-10m", "value": 2.0}],
        "reference_time": REFERENCE,
    }
    fields.update(overrides)
    return SeriesSpec.model_validate(fields)


def parse_exposition(text: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            values[series] = float(value)
    return values


def test_exposition_names_counters_in_full_and_skips_series_not_started() -> None:
    counter = make_spec(labels={"service": 'a"b'})
    later = make_spec(name="queue_depth", type="gauge", labels={}, points=[{"at": "1h", "value": 3.0}])
    text = render_exposition([counter, later], REFERENCE)
    assert text.splitlines() == [
        "# TYPE http_requests_total counter",
        f'http_requests_total{{service="a\\"b"}} {value_at(counter, REFERENCE)!r}',
    ]
    assert "job=" not in text
    assert "instance=" not in text


async def test_metrics_follow_the_clock_and_the_series_file(tmp_path: Path) -> None:
    series_file = tmp_path / "series.json"
    now = [REFERENCE]
    write_series_file(series_file, [make_spec()])
    async with TestClient(TestServer(create_app(series_file, clock=lambda: now[0]))) as client:
        response = await client.get("/metrics")
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        assert parse_exposition(await response.text()) == {'http_requests_total{service="checkout"}': 1200.0}

        now[0] = REFERENCE + 10
        values = parse_exposition(await (await client.get("/metrics")).text())
        assert values == {'http_requests_total{service="checkout"}': 1220.0}

        gauge = make_spec(
            name="queue_depth", type="gauge", labels={"queue": "orders"}, points=[{"at": "-1m", "value": 4.0}]
        )
        write_series_file(series_file, [make_spec(), gauge])
        values = parse_exposition(await (await client.get("/metrics")).text())
        assert values == {'http_requests_total{service="checkout"}': 1220.0, 'queue_depth{queue="orders"}': 4.0}

        health = await (await client.get("/healthz")).json()
        assert health == {"status": "ok", "series": 2, "series_file_error": None}


async def test_a_broken_series_file_keeps_the_last_good_series(tmp_path: Path) -> None:
    series_file = tmp_path / "series.json"
    write_series_file(series_file, [make_spec()])
    async with TestClient(TestServer(create_app(series_file, clock=lambda: REFERENCE))) as client:
        assert len(parse_exposition(await (await client.get("/metrics")).text())) == 1
        broken = tmp_path / "broken.json"
        broken.write_text(json.dumps([{"name": "x_total", "type": "counter", "points": []}]))
        os.replace(broken, series_file)
        assert len(parse_exposition(await (await client.get("/metrics")).text())) == 1
        health = await (await client.get("/healthz")).json()
        assert health["series"] == 1
        assert "points" in health["series_file_error"]


async def test_a_missing_series_file_serves_no_series(tmp_path: Path) -> None:
    async with TestClient(TestServer(create_app(tmp_path / "absent.json"))) as client:
        response = await client.get("/metrics")
        assert response.status == 200
        assert await response.text() == ""


def test_series_file_is_written_atomically_and_round_trips(tmp_path: Path) -> None:
    series_file = tmp_path / "nested" / "series.json"
    spec = make_spec(points=[{"at": "-1h30m", "value": 0.5}, {"at": 0, "value": 3}], shape="linear", noise=0.2)
    write_series_file(series_file, [spec])
    assert [path.name for path in series_file.parent.iterdir()] == ["series.json"]
    assert [SeriesSpec.model_validate(raw) for raw in json.loads(series_file.read_text())] == [spec]


def test_entry_point_serves_on_loopback(tmp_path: Path) -> None:
    series_file = tmp_path / "series.json"
    write_series_file(series_file, [make_spec(reference_time=time.time())])
    port = procs.free_port()
    process = procs.start(
        "exporter",
        [sys.executable, "-m", "inquest.lab.exporter", "--port", str(port), "--series-file", str(series_file)],
        tmp_path / "exporter.log",
    )
    try:
        procs.wait_until(
            process,
            str(series_file),
            lambda: procs.http_ok(f"http://127.0.0.1:{port}/healthz"),
            timeout_seconds=30,
            what="serving /healthz",
        )
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            body = response.read().decode()
        assert 'http_requests_total{service="checkout"}' in body
        listening = subprocess.run(
            ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=False
        ).stdout
        assert [line.split()[3] for line in listening.splitlines()] == [f"127.0.0.1:{port}"]
    finally:
        procs.stop(process, str(series_file))
