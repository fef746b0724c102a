"""The collector against a stub Prometheus: what it plans from discovery, and that it keeps to its budget."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web

from inquest.clients.prometheus import PrometheusClient, PrometheusSettings
from inquest.lab import procs
from inquest.metrics.collector import MetricsCollector, unusable_message

END = datetime(2024, 5, 1, 10, 30, tzinfo=UTC)
START = END - timedelta(minutes=10)
# Generous slack for a shared 2-core machine: what matters is "about the budget", not "forever".
SLACK_SECONDS = 0.75


@dataclass
class FakePrometheus:
    url: str = ""
    names: list[str] = field(default_factory=lambda: ["up"])
    stall: bool = False
    failing_status: int | None = None  # every answer an error with this status
    garbage: bool = False  # every answer a 200 that is not JSON
    paths: list[str] = field(default_factory=list)


@pytest.fixture
async def prometheus() -> AsyncIterator[FakePrometheus]:
    fake = FakePrometheus()

    async def answer(request: web.Request) -> web.StreamResponse:
        fake.paths.append(request.path)
        if fake.stall:
            await asyncio.sleep(5)
        if fake.failing_status is not None:
            return web.Response(status=fake.failing_status, text="upstream unavailable")
        if fake.garbage:
            return web.Response(status=200, text='{"status": "succ', content_type="application/json")
        if request.path.endswith("/label/__name__/values"):
            names = fake.names
            if "match[]" in request.query:
                wanted = re.fullmatch(r'\{__name__=~"(.*)"\}', request.query["match[]"])
                assert wanted is not None
                names = [name for name in names if name in wanted.group(1).split("|")]
            return web.json_response({"status": "success", "data": names})
        return web.json_response({"status": "success", "data": {"resultType": "matrix", "result": []}})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.2)
    await runner.setup()
    port = procs.free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    fake.url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        await runner.cleanup()


async def test_a_family_that_appears_after_discovery_is_queried_by_the_next_investigation(
    prometheus: FakePrometheus,
) -> None:
    client = PrometheusClient(PrometheusSettings(url=prometheus.url))
    try:
        collector = MetricsCollector(client)
        first = await collector.collect(["shop"], START, END)
        assert first.plan is not None
        assert "http_requests" not in first.plan.planned_templates()
        assert "request metrics" in first.plan.missing_summary
        prometheus.names.append("http_requests_total")  # an app with request metrics is deployed
        second = await collector.collect(["shop"], START, END)
    finally:
        client.close()
    assert second.plan is not None
    assert "http_requests" in second.plan.planned_templates()
    assert "request metrics" not in second.plan.missing_summary


async def test_an_unreachable_prometheus_costs_at_most_the_budget(prometheus: FakePrometheus) -> None:
    # Discovery and the reachability check each may take a query timeout: together they must fit the budget.
    prometheus.stall = True
    client = PrometheusClient(PrometheusSettings(url=prometheus.url, query_timeout_seconds=1, budget_seconds=1))
    try:
        started = time.monotonic()
        collection = await MetricsCollector(client).collect(["shop"], START, END)
        elapsed = time.monotonic() - started
    finally:
        client.close()
    assert elapsed <= 1 + SLACK_SECONDS, elapsed
    expected = f"Prometheus unreachable at {prometheus.url} (no answer within 1s): metrics not checked."
    assert collection.failure == expected
    assert not collection.reachable


async def test_an_error_status_is_named_as_such_not_as_a_timeout(prometheus: FakePrometheus) -> None:
    prometheus.failing_status = 503
    client = PrometheusClient(PrometheusSettings(url=prometheus.url, query_timeout_seconds=1, budget_seconds=1))
    try:
        collection = await MetricsCollector(client).collect(["shop"], START, END)
    finally:
        client.close()
    assert collection.failure == (
        f"Prometheus at {prometheus.url} answered with an error (HTTP 503: upstream unavailable): metrics not checked."
    )
    assert not collection.reachable


async def test_an_answer_that_is_not_json_is_named_an_invalid_answer(prometheus: FakePrometheus) -> None:
    prometheus.garbage = True
    client = PrometheusClient(PrometheusSettings(url=prometheus.url, query_timeout_seconds=1, budget_seconds=1))
    try:
        collection = await MetricsCollector(client).collect(["shop"], START, END)
    finally:
        client.close()
    assert collection.failure is not None
    assert collection.failure.startswith(f"Prometheus at {prometheus.url} gave an invalid answer (invalid JSON in the")
    assert collection.failure.endswith("): metrics not checked.")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ("timeout after 2s", "Prometheus unreachable at http://prometheus:9090 (no answer within 2s)"),
        ("not run: the budget ran out while it waited", "Prometheus unreachable at http://prometheus:9090 (no answer"),
        (
            "connection refused by prometheus:9090",
            "Prometheus unreachable at http://prometheus:9090 (connection refused",
        ),
        (
            "HTTP 502: bad gateway",
            "Prometheus at http://prometheus:9090 answered with an error (HTTP 502: bad gateway)",
        ),
        ("query failed: odd", "Prometheus at http://prometheus:9090 answered with an error (query failed: odd)"),
        (
            "invalid JSON in the response (x)",
            "Prometheus at http://prometheus:9090 gave an invalid answer (invalid JSON",
        ),
        ("unexpected response shape (no data)", "Prometheus at http://prometheus:9090 gave an invalid answer (unexp"),
    ],
)
def test_why_prometheus_could_not_be_used_names_the_kind_of_failure(error: str, expected: str) -> None:
    message = unusable_message(PrometheusSettings(url="http://prometheus:9090"), error)
    assert message.startswith(expected), message
    assert message.endswith(": metrics not checked.")
