"""ScaledToZero: a workload was scaled to zero replicas while something still depends on it."""

from __future__ import annotations

from inquest.categories import Category, EvidenceSource
from inquest.engine.candidates import Candidate, Evidence
from inquest.engine.context import EvidenceContext, Signal
from inquest.engine.detectors.common import (
    after,
    change_evidence,
    earliest,
    event_evidence,
    label,
    services_selecting,
    signal_evidence,
    signals_on,
)
from inquest.engine.graph import EdgeType
from inquest.engine.journal import ChangeRecord
from inquest.engine.objects import Event, Workload
from inquest.engine.refs import ObjectRef
from inquest.engine.timeutil import short_time

_SCALABLE = ("Deployment", "StatefulSet")


def _dependents(ctx: EvidenceContext, services: set[ObjectRef]) -> set[ObjectRef]:
    return {
        ctx.workload_of(edge.source)
        for service in services
        for edge in ctx.graph.edges_to(service)
        if edge.type != EdgeType.OWNED_BY and not edge.via_pods
    }


def _candidate(
    ctx: EvidenceContext, workload: ObjectRef, record: ChangeRecord | None, scale_event: Event | None
) -> Candidate:
    services = services_selecting(ctx, workload)
    dependents = _dependents(ctx, services)
    dependent_services = {ref for dependent in dependents for ref in services_selecting(ctx, dependent)}
    when = record.time if record is not None else (scale_event.last_seen if scale_event is not None else None)
    signals = [
        signal
        for signal in signals_on(ctx, services | dependents | dependent_services, (Signal.ERROR_RATE, Signal.LATENCY))
        if when is None or after(signal.onset_time, when)
    ]
    evidence: list[Evidence] = []
    if record is not None:
        evidence.append(change_evidence(record))
    if scale_event is not None:
        evidence.append(event_evidence(scale_event))
    for service in sorted(services):
        evidence.append(Evidence(EvidenceSource.KUBERNETES, ctx.now, service, "selects no running pods (0 replicas)"))
    evidence += [signal_evidence(signal) for signal in signals[:2]]
    used = bool(dependents or signals)
    base = 60.0 if used else (40.0 if services else 25.0)
    if record is None:
        base -= 10 if scale_event is not None else 20
    summary = f"{label(workload)} was scaled to 0 replicas" + (f" at {short_time(when)}" if when else "")
    if dependents:
        verb = "depends" if len(dependents) == 1 else "depend"
        summary += f"; {', '.join(label(ref) for ref in sorted(dependents)[:3])} {verb} on it"
    return Candidate(
        ref=workload,
        category=Category.SCALED_TO_ZERO,
        base_score=base,
        summary=summary,
        evidence=evidence,
        explains={workload, *services, *dependents, *dependent_services},
        onset_time=when,
        change=record,
        symptom_onset=earliest(signal.onset_time for signal in signals),
        has_failure_evidence=bool(services) and used,
    )


def detect_scaled_to_zero(ctx: EvidenceContext) -> list[Candidate]:
    candidates = []
    recorded = set()
    for record in ctx.changes(kinds=_SCALABLE):
        replicas = record.field("replicas")
        if replicas is not None and replicas.new == "0":
            recorded.add(record.ref)
            candidates.append(_candidate(ctx, record.ref, record, None))
    scale_events = {
        event.involved: event
        for event in ctx.events(reasons=("ScalingReplicaSet",))
        if event.message.rstrip().endswith(" to 0") or " to 0 from " in event.message
    }
    for workload in ctx.snapshot.all(Workload):
        if workload.meta.kind not in _SCALABLE or workload.desired_replicas != 0 or workload.ref in recorded:
            continue
        event = scale_events.get(workload.ref)
        if event is None and not ctx.window_is_current:
            continue
        candidates.append(_candidate(ctx, workload.ref, None, event))
    return candidates
