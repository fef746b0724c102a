"""Gathers one investigation's metric evidence within its Prometheus budget: discover, plan, query in parallel.

The client does the HTTP; this module decides what to ask, and turns every failure into a sentence for
`unknowns` instead of an exception: Prometheus being slow or down must never stall or fail an investigation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

from inquest.clients.prometheus import PrometheusClient, PrometheusSettings, QueryResult, RangeQuery
from inquest.engine.context import DataSources
from inquest.engine.snapshot import ClusterSnapshot
from inquest.metrics.catalog import DEFAULT_CATALOG, Catalog, Plan, PlannedQuery, plan_queries
from inquest.metrics.signals import MetricsAnalysis, build_signals


@dataclass(frozen=True)
class Collection:
    """Raw metric evidence, gathered on the event loop; `analyse` runs later, in the engine's worker thread."""

    configured: bool
    plan: Plan | None = None
    results: dict[PlannedQuery, QueryResult] = field(default_factory=dict)
    failure: str | None = None  # why nothing useful came back, when nothing did
    elapsed_seconds: float = 0.0

    @property
    def queries(self) -> int:
        return len(self.results)

    @property
    def reachable(self) -> bool:
        return self.configured and self.failure is None

    def analyse(self, snapshot: ClusterSnapshot) -> tuple[MetricsAnalysis, DataSources]:
        if not self.configured:
            return MetricsAnalysis(), DataSources(prometheus_configured=False)
        if self.plan is None or self.failure is not None:
            failure_notes: tuple[str, ...] = (self.failure,) if self.failure else ()
            sources = DataSources(prometheus_configured=True, prometheus_reachable=False, notes=failure_notes)
            return MetricsAnalysis(), sources
        analysis = build_signals(self.plan, self.results, snapshot)
        notes = analysis.notes  # it already carries the plan's gaps and notes
        sources = DataSources(
            prometheus_configured=True,
            prometheus_reachable=True,
            services_without_request_metrics=analysis.services_without_request_metrics,
            namespaces_without_request_metrics=analysis.namespaces_without_request_metrics,
            metrics_incomplete=analysis.incomplete_queries > 0,
            notes=tuple(dict.fromkeys(notes)),
        )
        return analysis, sources


def unusable_message(settings: PrometheusSettings, error: str) -> str:
    """Why no metric was checked, naming the kind of failure: the fixes differ (a timeout, a refused connection,
    an error status, an answer that is not the API's)."""
    where = settings.url
    if error.startswith(("timeout", "not run: the budget ran out")):
        timeout = f"{settings.query_timeout_seconds:g}s"
        return f"Prometheus unreachable at {where} (no answer within {timeout}): metrics not checked."
    if error.startswith(("HTTP ", "query failed")):
        return f"Prometheus at {where} answered with an error ({error}): metrics not checked."
    if error.startswith(("invalid JSON", "unexpected response shape")):
        return f"Prometheus at {where} gave an invalid answer ({error}): metrics not checked."
    return f"Prometheus unreachable at {where} ({error}): metrics not checked."


class MetricsCollector:
    def __init__(self, client: PrometheusClient | None, catalog: Catalog = DEFAULT_CATALOG) -> None:
        self._client = client
        self._catalog = catalog

    async def collect(self, namespaces: list[str], window_start: datetime, window_end: datetime) -> Collection:
        if self._client is None:
            return Collection(configured=False)
        client = self._client
        started = time.monotonic()
        budget = client.settings.budget_seconds

        def remaining() -> float:
            return max(0.05, budget - (time.monotonic() - started))

        # Every family the catalog could query: one the cached discovery lacks is looked for again, so a family
        # that appeared minutes ago is queried rather than reported "not in Prometheus".
        expected = {metric for template in self._catalog.templates if template.enabled for metric in template.metrics}
        families = await client.metric_names(budget_seconds=remaining(), expected=expected)
        if families is None:
            probe = await client.query("1", budget_seconds=remaining())
            if probe.error is not None:
                return Collection(
                    configured=True,
                    failure=unusable_message(client.settings, probe.error),
                    elapsed_seconds=time.monotonic() - started,
                )
        plan = plan_queries(self._catalog, families, namespaces, window_start, window_end)
        range_queries = [RangeQuery(q.query, q.start, q.end, q.step_seconds) for q in plan.queries]
        answers = await client.run_batch(range_queries, budget_seconds=remaining()) if range_queries else []
        results = dict(zip(plan.queries, answers, strict=True))
        failed = [result for result in answers if result.error]
        failure = None
        if answers and len(failed) == len(answers):
            failure = (
                f"Prometheus did not answer any of {len(answers)} queries ({failed[0].error}): metrics not checked."
            )
        return Collection(
            configured=True,
            plan=plan,
            results=results,
            failure=failure,
            elapsed_seconds=time.monotonic() - started,
        )
