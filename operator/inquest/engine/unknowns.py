"""What the engine could not see, said plainly: missing data sources, journal gaps, expired Events."""

from __future__ import annotations

from datetime import datetime, timedelta

from inquest.engine.context import EvidenceContext
from inquest.engine.detectors.common import label
from inquest.engine.ranker import DataGaps
from inquest.engine.timeutil import iso

# The API server's default --event-ttl.
EVENT_TTL = timedelta(hours=1)


def _existed_before(ctx: EvidenceContext, moment: datetime) -> bool:
    """Whether any namespaced object in view is older than `moment`. A journal that is blind before it misses
    nothing about objects created after it: the watch saw their whole life. (Nodes are judged by their own
    condition transitions, not the journal.)"""
    return any(
        item.ref.namespace and (item.meta.created is None or item.meta.created < moment) for item in ctx.snapshot
    )


def data_gaps(ctx: EvidenceContext) -> tuple[DataGaps, list[str]]:
    sources = ctx.data_sources
    unknowns: list[str] = []
    if not sources.prometheus_configured:
        unknowns.append(
            "Prometheus is not configured: error rates, latency, CPU throttling and network metrics were not checked."
        )
    elif not sources.prometheus_reachable:
        unknowns.append(
            "Prometheus was unreachable: error rates, latency, CPU throttling and network metrics were not checked."
        )
    if not sources.events_available:
        unknowns.append("Kubernetes Events could not be read: pod failures are judged from object status alone.")
    elif ctx.window_start < ctx.now - EVENT_TTL:
        unknowns.append(
            f"Kubernetes keeps Events for about an hour by default: Events before {iso(ctx.now - EVENT_TTL)} "
            "may have expired."
        )
    for kind in sources.unavailable_kinds:
        unknowns.append(f"{kind} objects could not be read: causes involving them were not checked.")
    for service in sources.services_without_request_metrics:
        unknowns.append(f"No request metrics for {label(service)}: its error rate and latency are unknown.")
    unknowns.extend(sources.notes)
    journal = ctx.journal
    change_start = ctx.window_start - ctx.change_lookback
    incomplete = False
    covers_since = journal.covers_since
    if covers_since is not None and covers_since > change_start and _existed_before(ctx, covers_since):
        evicted = f" ({journal.evicted_count} older records evicted)" if journal.evicted_count else ""
        unknowns.append(
            f"The change journal only covers since {iso(covers_since)}{evicted}: earlier changes are unknown."
        )
        incomplete = True
    for gap in journal.gaps_overlapping(change_start, ctx.window_end):
        if not _existed_before(ctx, gap.end):
            continue
        unknowns.append(
            f"The change journal has a gap from {iso(gap.start)} to {iso(gap.end)} (the operator was not watching); "
            "changes then are reconstructed from ReplicaSet revisions and Events where possible."
        )
        incomplete = True
    gaps = DataGaps(
        events_missing=not sources.events_available,
        # A Prometheus that answers but holds no request series for the namespace shows no more than none; one
        # that failed some queries or warned of partial data may hide the very signal that matters.
        metrics_missing=not sources.metrics_available
        or bool(sources.namespaces_without_request_metrics)
        or sources.metrics_incomplete,
        journal_incomplete=incomplete,
        unavailable_kinds=len(sources.unavailable_kinds),
    )
    return gaps, unknowns
