"""The operator's own metrics, served as Prometheus text at `GET /metrics` (`--metrics-port`).

Everything lives in one dedicated CollectorRegistry (never prometheus_client's global one), so tests and several
operators in one process do not share counters. The parts of inquest that produce figures get small callbacks
from here; none of them imports prometheus_client:

- the service: `answered(verdict, seconds)` for every generation it answers (or fails);
- the Prometheus client: `prometheus_query(...)`, its optional `on_query` callback, once per request;
- the notifier: `notification(result)`, its optional `on_outcome` callback, for every delivery outcome;
- the intake: `intake_answered(status, result)`, its optional `on_answer` callback, for every answer;
- the cache: read at scrape time from `ClusterCache.statistics()` (a custom collector, nothing is copied);
- the informers: `informer_restarted(...)` and `informer_stalled(...)`, from their threads;
- kopf's watches: counted from kopf's own log records (see WatchRestartCounter).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from inquest.cache import ClusterCache

if TYPE_CHECKING:
    from inquest.notify.dispatcher import DeliveryResult

logger = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
# generate_latest writes the classic text format (names escaped to underscores), which every Prometheus reads.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
QUERY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# kopf's watch-streams log through this logger (kopf._cogs.clients.watching), including the API requests they make.
KOPF_WATCH_LOGGER = "kopf._cogs.clients.watching"


class Observability:
    """The registry and every metric in it."""

    def __init__(self, cache: ClusterCache | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.investigations = Counter(
            "inquest_investigations_answered",
            "Investigation generations answered, by verdict (Failed included).",
            ["verdict"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "inquest_investigation_duration_seconds",
            "Time to answer one generation: metric collection, engine and status write.",
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.watch_restarts = Counter(
            "inquest_kopf_watch_restarts",
            "kopf watch-stream restarts and errors, counted from kopf's log records, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.informer_restarts = Counter(
            "inquest_informer_restarts",
            "Relists of a watched resource after its watch expired (410 Gone) or failed, by resource and reason.",
            ["resource", "reason"],
            registry=self.registry,
        )
        self.informer_stalls = Counter(
            "inquest_informer_stalls",
            "Times an informer waited because the cache had too many of its deliveries still to apply, by resource.",
            ["resource"],
            registry=self.registry,
        )
        self.query_duration = Histogram(
            "inquest_prometheus_query_duration_seconds",
            "Duration of the requests sent to Prometheus (failed ones included).",
            buckets=QUERY_BUCKETS,
            registry=self.registry,
        )
        self.query_errors = Counter(
            "inquest_prometheus_query_errors",
            "Prometheus requests that failed, by kind: timeout, http, connection or other.",
            ["kind"],
            registry=self.registry,
        )
        self.notifications = Counter(
            "inquest_notifications",
            "Notification delivery outcomes, by notifier and state (Sent, Retrying, Failed).",
            ["notifier", "state"],
            registry=self.registry,
        )
        self.intake_requests = Counter(
            "inquest_intake_requests",
            "Answers of the Alertmanager intake, by HTTP status and result: created, updated, unchanged, ignored, "
            "rejected (4xx), throttled (the creation cap, 503), busy (too many at once, 503) or failed (Kubernetes, "
            "503).",
            ["code", "result"],
            registry=self.registry,
        )
        if cache is not None:
            self.registry.register(CacheCollector(cache))

    # --- the callbacks ---------------------------------------------------------------------------------------------

    def answered(self, verdict: str, seconds: float) -> None:
        self.investigations.labels(verdict=str(verdict)).inc()
        self.duration.observe(max(0.0, seconds))

    def prometheus_query(self, elapsed_seconds: float, error: str | None, timed_out: bool, sent: bool) -> None:
        """The PrometheusClient's `on_query` callback: one call per request, with what its figures() record."""
        if sent:
            self.query_duration.observe(max(0.0, elapsed_seconds))
        if error is not None or timed_out:
            self.query_errors.labels(kind=query_error_kind(error, timed_out)).inc()

    def informer_restarted(self, resource: str, reason: str) -> None:
        """The informers' restart hook; called from their threads (prometheus_client is thread-safe)."""
        self.informer_restarts.labels(resource=resource, reason=reason).inc()

    def informer_stalled(self, resource: str) -> None:
        """The informers' back-pressure hook; called from their threads."""
        self.informer_stalls.labels(resource=resource).inc()

    def notification(self, result: DeliveryResult) -> None:
        """The Notifier's `on_outcome` callback."""
        self.notifications.labels(notifier=result.delivery.notifier, state=str(result.state)).inc()

    def intake_answered(self, status: int, result: str) -> None:
        """The intake's `on_answer` callback."""
        self.intake_requests.labels(code=str(status), result=result).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    # --- kopf's watches --------------------------------------------------------------------------------------------

    def count_watch_restarts(self, logger_name: str = KOPF_WATCH_LOGGER) -> WatchRestartCounter:
        """Attaches a WatchRestartCounter to kopf's watcher logger; `remove()` on it detaches it."""
        return WatchRestartCounter.install(self.watch_restarts, logger_name)


def query_error_kind(error: str | None, timed_out: bool) -> str:
    """timeout, http, connection or other, from what the Prometheus client reports (its error texts)."""
    if timed_out or (error or "").startswith("timeout"):
        return "timeout"
    text = error or ""
    if text.startswith(("HTTP ", "query failed")):
        return "http"
    if text.startswith(("connection ", "TLS error")):
        return "connection"
    return "other"


class CacheCollector(Collector):
    """The cache's sizes, read from `ClusterCache.statistics()` when scraped."""

    def __init__(self, cache: ClusterCache) -> None:
        self._cache = cache

    def describe(self) -> list[Metric]:
        # Declared up front, so the registry rejects a clash of names at registration, not at a scrape.
        return [
            GaugeMetricFamily("inquest_cache_objects", "Objects held in the cache, by kind.", labels=["kind"]),
            GaugeMetricFamily("inquest_cache_events", "Kubernetes Events held in the cache's rings."),
            CounterMetricFamily("inquest_cache_events_evicted", "Events dropped from full or expired rings."),
            GaugeMetricFamily("inquest_cache_namespaces", "Namespaces the cache holds objects or Events for."),
            CounterMetricFamily(
                "inquest_cache_updates_observed", "Watch updates of objects already cached, by kind.", labels=["kind"]
            ),
            GaugeMetricFamily("inquest_journal_records", "Records in the change journal."),
            CounterMetricFamily("inquest_journal_records_evicted", "Journal records dropped for its age or count cap."),
        ]

    def collect(self) -> Iterator[Metric]:
        statistics = self._cache.statistics()
        objects = GaugeMetricFamily("inquest_cache_objects", "Objects held in the cache, by kind.", labels=["kind"])
        for kind, count in sorted(statistics.objects_by_kind.items()):
            objects.add_metric([kind], count)
        yield objects
        yield GaugeMetricFamily(
            "inquest_cache_events", "Kubernetes Events held in the cache's rings.", value=statistics.events
        )
        yield CounterMetricFamily(
            "inquest_cache_events_evicted",
            "Events dropped from full or expired rings.",
            value=statistics.events_evicted,
        )
        yield GaugeMetricFamily(
            "inquest_cache_namespaces",
            "Namespaces the cache holds objects or Events for.",
            value=statistics.namespaces,
        )
        updates = CounterMetricFamily(
            "inquest_cache_updates_observed", "Watch updates of objects already cached, by kind.", labels=["kind"]
        )
        for kind, count in sorted(statistics.updates_by_kind.items()):
            updates.add_metric([kind], count)
        yield updates
        yield GaugeMetricFamily(
            "inquest_journal_records", "Records in the change journal.", value=statistics.journal_records
        )
        yield CounterMetricFamily(
            "inquest_journal_records_evicted",
            "Journal records dropped for its age or count cap.",
            value=statistics.journal_evicted,
        )


class WatchRestartCounter(logging.Handler):
    """Counts kopf's watch-stream restarts and errors from its log records.

    kopf exposes no metric or hook for its watches, so this handler sits on kopf's watcher logger
    (`kopf._cogs.clients.watching`) and counts what kopf logs there: a 410 Gone restart ("Restarting the
    watch-stream", DEBUG) as `expired`, an inactivity reconnect ("is inactive, reconnecting", DEBUG) as
    `inactive`, and any WARNING or worse (a failed request kopf retries, an unsupported event) as `error`.
    The texts are kopf's own and may change between kopf versions; the lab tests pin kopf's major version.
    A watch that the server simply closes at its timeout is re-opened silently by kopf and is not counted.

    The restart records are DEBUG, so the logger is lowered to DEBUG; a filter on it keeps the records below
    the former level away from the other handlers (the console stays as quiet as before).
    """

    def __init__(self, counter: Counter) -> None:
        super().__init__(level=logging.DEBUG)
        self._counter = counter
        self._logger: logging.Logger | None = None
        self._quiet: _BelowLevel | None = None
        self._former_level = logging.NOTSET

    @classmethod
    def install(cls, counter: Counter, logger_name: str = KOPF_WATCH_LOGGER) -> WatchRestartCounter:
        handler = cls(counter)
        target = logging.getLogger(logger_name)
        threshold = target.getEffectiveLevel()
        handler._logger, handler._former_level = target, target.level
        target.addHandler(handler)
        if threshold > logging.DEBUG:
            handler._quiet = _BelowLevel(threshold, handler)
            target.addFilter(handler._quiet)
            target.setLevel(logging.DEBUG)
        return handler

    def remove(self) -> None:
        if self._logger is None:
            return
        self._logger.removeHandler(self)
        if self._quiet is not None:
            self._logger.removeFilter(self._quiet)
            self._logger.setLevel(self._former_level)
        self._logger = None

    def emit(self, record: logging.LogRecord) -> None:
        reason = watch_restart_reason(record)
        if reason is not None:
            self._counter.labels(reason=reason).inc()


def watch_restart_reason(record: logging.LogRecord) -> str | None:
    if record.levelno >= logging.WARNING:
        return "error"
    message = record.getMessage()
    if message.startswith("Restarting the watch-stream"):
        return "expired"
    if "is inactive, reconnecting" in message:
        return "inactive"
    return None


class _BelowLevel(logging.Filter):
    """On the watcher logger: hands records below `level` to the counter only, and stops them there."""

    def __init__(self, level: int, handler: WatchRestartCounter) -> None:
        super().__init__()
        self._level = level
        self._handler = handler

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= self._level:
            return True
        self._handler.handle(record)
        return False


def create_app(observability: Observability) -> web.Application:
    async def metrics(_request: web.Request) -> web.Response:
        response = web.Response(body=observability.exposition())
        response.headers["Content-Type"] = CONTENT_TYPE
        return response

    app = web.Application()
    app.router.add_get(METRICS_PATH, metrics)
    return app


async def start_metrics_server(observability: Observability, port: int, host: str = "0.0.0.0") -> web.AppRunner:
    """Serves `GET /metrics` on host:port; `await runner.cleanup()` stops it."""
    runner = web.AppRunner(create_app(observability), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    logger.info("metrics listening on %s:%d%s", host, port, METRICS_PATH)
    return runner
