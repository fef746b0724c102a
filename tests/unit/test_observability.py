"""The operator's own metrics: what moves them, and that /metrics serves an exposition Prometheus parses."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from inquest.api import models
from inquest.cache import ClusterCache
from inquest.clients.prometheus import (
    PrometheusClient,
    PrometheusSettings,
    describe_request_error,
    parse_query_response,
)
from inquest.lab import procs
from inquest.notify.dispatcher import Delivery, DeliveryResult, HttpRequest
from inquest.observability import (
    KOPF_WATCH_LOGGER,
    Observability,
    WatchRestartCounter,
    query_error_kind,
    start_metrics_server,
)
from inquest.service import InvestigationService

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def samples(observability: Observability) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition, parsed as Prometheus would, keyed by name and sorted labels."""
    text = observability.exposition().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def pod(name: str, namespace: str = "shop") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}"},
        "spec": {},
        "status": {},
    }


class FakeWriter:
    def __init__(self) -> None:
        self.patches: list[dict[str, Any]] = []

    async def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self.patches.append(patch)

    async def post_event(self, involved: Any, reason: str, message: str, warning: bool = False) -> None:
        pass


def test_recording_an_answer_moves_the_counter_and_the_histogram() -> None:
    observability = Observability()
    observability.answered("RootCauseFound", 0.2)
    observability.answered("RootCauseFound", 3.0)
    observability.answered("Failed", 0.01)
    values = samples(observability)
    assert values[("inquest_investigations_answered_total", (("verdict", "RootCauseFound"),))] == 2
    assert values[("inquest_investigations_answered_total", (("verdict", "Failed"),))] == 1
    assert values[("inquest_investigation_duration_seconds_count", ())] == 3
    assert values[("inquest_investigation_duration_seconds_bucket", (("le", "0.25"),))] == 2
    assert values[("inquest_investigation_duration_seconds_bucket", (("le", "10.0"),))] == 3


async def test_the_service_records_each_answered_generation() -> None:
    cache = ClusterCache()
    observability = Observability(cache)
    service = InvestigationService(cache, FakeWriter(), observability=observability)  # type: ignore[arg-type]
    try:
        good = {"metadata": {"namespace": "shop", "name": "a", "uid": "u1", "generation": 1}, "spec": {}}
        invalid = {"metadata": {"namespace": "shop", "name": "b", "uid": "u2", "generation": 1}, "spec": {"window": 5}}
        await service.handle(good)
        await service.handle(invalid)
        answered_again = {**good, "status": {"observedGeneration": 1}}
        await service.handle(answered_again)  # already answered: not counted again
    finally:
        await service.close()
    values = samples(observability)
    assert values[("inquest_investigations_answered_total", (("verdict", "NoFaultFound"),))] == 1
    assert values[("inquest_investigations_answered_total", (("verdict", "Failed"),))] == 1
    assert values[("inquest_investigation_duration_seconds_count", ())] == 2


def test_cache_gauges_reflect_the_statistics_at_scrape_time() -> None:
    cache = ClusterCache()
    observability = Observability(cache)
    assert ("inquest_cache_objects", (("kind", "Pod"),)) not in samples(observability)
    for name in ("a", "b", "c"):
        cache.observe(pod(name), NOW)
    cache.go_live()
    cache.forget(pod("c"), NOW)
    values = samples(observability)
    statistics = cache.statistics()
    assert values[("inquest_cache_objects", (("kind", "Pod"),))] == statistics.objects_by_kind["Pod"] == 2
    for kind, count in statistics.objects_by_kind.items():
        assert values[("inquest_cache_objects", (("kind", kind),))] == count
    assert values[("inquest_cache_events", ())] == statistics.events
    assert values[("inquest_cache_events_evicted_total", ())] == statistics.events_evicted
    assert values[("inquest_journal_records", ())] == statistics.journal_records


def test_the_exposition_parses_and_names_every_metric() -> None:
    observability = Observability(ClusterCache())
    observability.answered("NoFaultFound", 0.05)
    observability.prometheus_query(0.03, None, timed_out=False, sent=True)
    observability.prometheus_query(2.0, "timeout after 2s", timed_out=True, sent=True)
    observability.watch_restarts.labels(reason="expired").inc()
    observability.informer_restarted("pods.core", "expired")
    families = {family.name: family for family in text_string_to_metric_families(observability.exposition().decode())}
    assert {name: family.type for name, family in families.items() if not name.endswith("_created")} == {
        "inquest_investigations_answered": "counter",
        "inquest_investigation_duration_seconds": "histogram",
        "inquest_cache_objects": "gauge",
        "inquest_cache_events": "gauge",
        "inquest_cache_events_evicted": "counter",
        "inquest_cache_namespaces": "gauge",
        "inquest_cache_updates_observed": "counter",
        "inquest_informer_restarts": "counter",
        "inquest_informer_stalls": "counter",
        "inquest_journal_records": "gauge",
        "inquest_journal_records_evicted": "counter",
        "inquest_kopf_watch_restarts": "counter",
        "inquest_prometheus_query_duration_seconds": "histogram",
        "inquest_prometheus_query_errors": "counter",
        "inquest_notifications": "counter",
        "inquest_intake_requests": "counter",
    }


def test_two_instances_do_not_share_counters() -> None:
    first, second = Observability(), Observability()
    first.answered("Failed", 0.1)
    assert ("inquest_investigations_answered_total", (("verdict", "Failed"),)) not in samples(second)


@pytest.fixture
def watch_counter() -> Iterator[tuple[Observability, WatchRestartCounter]]:
    observability = Observability()
    counter = observability.count_watch_restarts()
    yield observability, counter
    counter.remove()


def test_the_watch_restart_handler_counts_kopfs_restarts_and_errors(
    watch_counter: tuple[Observability, WatchRestartCounter], caplog: pytest.LogCaptureFixture
) -> None:
    observability, _ = watch_counter
    watcher = logging.getLogger(KOPF_WATCH_LOGGER)
    with caplog.at_level(logging.INFO):  # what the operator's console shows without --verbose
        watcher.debug("Restarting the watch-stream for pods.v1 cluster-wide.")
        watcher.debug("Restarting the watch-stream for events.v1 in 'shop'.")
        watcher.debug("Watch-stream for pods.v1 cluster-wide is inactive, reconnecting.")
        watcher.debug("Starting the watch-stream for pods.v1 cluster-wide.")  # not a restart
        watcher.error("Request attempt #1 failed; will retry: GET /api/v1/pods -> ClientConnectorError()")
    values = samples(observability)
    assert values[("inquest_kopf_watch_restarts_total", (("reason", "expired"),))] == 2
    assert values[("inquest_kopf_watch_restarts_total", (("reason", "inactive"),))] == 1
    assert values[("inquest_kopf_watch_restarts_total", (("reason", "error"),))] == 1
    # The DEBUG records were counted but reach no other handler; the ERROR still does.
    assert [record.levelname for record in caplog.records if record.name == KOPF_WATCH_LOGGER] == ["ERROR"]


def test_removing_the_watch_counter_restores_the_logger(
    watch_counter: tuple[Observability, WatchRestartCounter],
) -> None:
    observability, counter = watch_counter
    watcher = logging.getLogger(KOPF_WATCH_LOGGER)
    counter.remove()
    assert counter not in watcher.handlers
    assert not watcher.filters
    watcher.warning("Ignoring an unsupported event type: {}")
    assert ("inquest_kopf_watch_restarts_total", (("reason", "error"),)) not in samples(observability)


def test_query_error_kinds_follow_the_clients_own_texts() -> None:
    refused = requests.ConnectionError("refused")
    assert query_error_kind(*describe_request_error(requests.Timeout(), 2, "p:9090")) == "timeout"
    assert query_error_kind(*describe_request_error(refused, 2, "p:9090")) == "connection"
    assert query_error_kind(*describe_request_error(requests.exceptions.SSLError("bad"), 2, "p:9090")) == "connection"
    assert query_error_kind(*describe_request_error(RuntimeError("odd"), 2, "p:9090")) == "other"
    server_error = parse_query_response("up", 503, b"unavailable").error
    api_error = parse_query_response("up", 422, b'{"status":"error","errorType":"execution","error":"x"}').error
    rejected = parse_query_response("up", 200, b'{"status":"error","error":"bad query"}').error
    garbled = parse_query_response("up", 200, b"<html>").error
    assert [query_error_kind(error, False) for error in (server_error, api_error, rejected, garbled)] == [
        "http",
        "http",
        "http",
        "other",
    ]


async def test_the_prometheus_client_reports_each_request() -> None:
    observability = Observability()
    port = procs.free_port()  # nothing listens there: connection refused
    client = PrometheusClient(
        PrometheusSettings(url=f"http://127.0.0.1:{port}"), on_query=observability.prometheus_query
    )
    try:
        result = await client.query("up", NOW)
    finally:
        client.close()
    assert result.error is not None
    figures = client.figures()
    values = samples(observability)
    assert values[("inquest_prometheus_query_errors_total", (("kind", "connection"),))] == figures.errors == 1
    assert values[("inquest_prometheus_query_duration_seconds_count", ())] == 1


def test_notification_outcomes_are_counted_by_notifier_and_state() -> None:
    observability = Observability()

    async def prepare() -> HttpRequest:
        raise AssertionError("not sent in this test")

    delivery = Delivery(uid="u1", notifier="slack-oncall", digest="d", prepare=prepare)
    for state in (models.NotificationState.RETRYING, models.NotificationState.SENT):
        observability.notification(DeliveryResult(delivery, state, 1, NOW, ""))
    values = samples(observability)
    assert values[("inquest_notifications_total", (("notifier", "slack-oncall"), ("state", "Retrying")))] == 1
    assert values[("inquest_notifications_total", (("notifier", "slack-oncall"), ("state", "Sent")))] == 1


async def test_metrics_are_served_over_http() -> None:
    cache = ClusterCache()
    cache.observe(pod("a"), NOW)
    observability = Observability(cache)
    port = procs.free_port()
    runner = await start_metrics_server(observability, port, host="127.0.0.1")
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
                text = await response.text()
            async with session.get(f"http://127.0.0.1:{port}/other") as missing:
                assert missing.status == 404
    finally:
        await runner.cleanup()
    [objects] = [family for family in text_string_to_metric_families(text) if family.name == "inquest_cache_objects"]
    assert [(sample.labels, sample.value) for sample in objects.samples] == [({"kind": "Pod"}, 1.0)]
