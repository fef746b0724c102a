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
from inquest.metrics.collector import MetricsCollector

END = datetime(2024, 5, 1, 10, 30, tzinfo=UTC)
START = END - timedelta(minutes=10)
# Generous slack for a shared 2-core machine: what matters is "about the budget", not "forever".
SLACK_SECONDS = 0.75


@dataclass
class FakePrometheus:
    url: str = ""
    names: list[str] = field(default_factory=lambda: ["up"])
    stall: bool = False
    paths: list[str] = field(default_factory=list)


@pytest.fixture
async def prometheus() -> AsyncIterator[FakePrometheus]:
    fake = FakePrometheus()

    async def answer(request: web.Request) -> web.StreamResponse:
        fake.paths.append(request.path)
        if fake.stall:
            await asyncio.sleep(5)
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
