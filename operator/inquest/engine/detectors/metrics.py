"""Detectors that mostly read metric signals: CPU throttling, network degradation, application errors."""

from __future__ import annotations

from collections import defaultdict

from inquest.categories import Category, EvidenceSource
from inquest.engine.candidates import Candidate, Evidence
from inquest.engine.context import Direction, EvidenceContext, MetricSignal, Signal
from inquest.engine.detectors.common import (
    CLOCK_TOLERANCE,
    affected_by_workload,
    earliest,
    event_evidence,
    label,
    services_selecting,
    signal_evidence,
    signals_on,
)
from inquest.engine.graph import EdgeType
from inquest.engine.objects import Workload
from inquest.engine.refs import ObjectRef
from inquest.engine.timeutil import short_time, since


def _rising(ctx: EvidenceContext, names: tuple[str, ...]) -> list[MetricSignal]:
    return [signal for signal in ctx.signals(names) if signal.direction == Direction.UP]


def _owner(ctx: EvidenceContext, ref: ObjectRef) -> ObjectRef:
    """Pods report for their workload; a Service reports for the single workload behind it, if there is one."""
    if ref.kind == "Service":
        backends = {
            ctx.workload_of(edge.target) for edge in ctx.graph.edges_from(ref) if edge.type == EdgeType.ROUTES_TO
        }
        return backends.pop() if len(backends) == 1 else ref
    return ctx.workload_of(ref)


def _cpu_limits(ctx: EvidenceContext, ref: ObjectRef) -> str:
    workload = ctx.snapshot.get_as(ref, Workload)
    if workload is None:
        return ""
    limits = [f"{c.name}={c.limits['cpu']}" for c in workload.template.containers if "cpu" in c.limits]
    return f"; cpu limits {', '.join(limits)}" if limits else ""


def detect_cpu_throttling(ctx: EvidenceContext) -> list[Candidate]:
    grouped: dict[ObjectRef, list[MetricSignal]] = defaultdict(list)
    for signal in _rising(ctx, (Signal.CPU_THROTTLING,)):
        grouped[_owner(ctx, signal.ref)].append(signal)
    candidates = []
    for workload, signals in grouped.items():
        affected = affected_by_workload(ctx, workload)
        onset = earliest(signal.onset_time for signal in signals)
        slow = signals_on(ctx, affected, (Signal.LATENCY, Signal.ERROR_RATE))
        worst = max(signal.magnitude for signal in signals)
        summary = f"{label(workload)}: CPU throttled (x{worst:g}) {since(onset)}{_cpu_limits(ctx, workload)}"
        candidates.append(
            Candidate(
                ref=workload,
                category=Category.CPU_THROTTLING,
                base_score=50.0 if slow else 40.0,
                summary=summary,
                evidence=[signal_evidence(signal) for signal in (signals[:3] + slow[:2])],
                explains=affected,
                onset_time=onset,
                symptom_onset=earliest(signal.onset_time for signal in slow) or onset,
                has_failure_evidence=bool(slow),
            )
        )
    return candidates


def detect_network_degradation(ctx: EvidenceContext) -> list[Candidate]:
    grouped: dict[ObjectRef, list[MetricSignal]] = defaultdict(list)
    for signal in _rising(ctx, (Signal.NETWORK_ERRORS, Signal.NETWORK_LATENCY)):
        grouped[signal.ref if signal.ref.kind in ("Node", "Service") else ctx.workload_of(signal.ref)].append(signal)
    candidates = []
    for ref, signals in grouped.items():
        onset = earliest(signal.onset_time for signal in signals)
        dependents = set(ctx.graph.dependents_of(ref, max_depth=2)) if ref.kind == "Node" else set()
        candidates.append(
            Candidate(
                ref=ref,
                category=Category.NETWORK_DEGRADATION,
                base_score=45.0,
                summary=f"{label(ref)}: network errors/latency rose {since(onset)}",
                evidence=[signal_evidence(signal) for signal in signals[:4]],
                explains={ref, *dependents},
                onset_time=onset,
                symptom_onset=onset,
                has_failure_evidence=True,
            )
        )
    sandbox_failures = ctx.events(reasons=("FailedCreatePodSandBox",), warning_only=True)
    by_workload: dict[ObjectRef, list[Evidence]] = defaultdict(list)
    for event in sandbox_failures:
        if "network" in event.message.lower() or "cni" in event.message.lower():
            by_workload[ctx.workload_of(event.involved)].append(event_evidence(event))
    for workload, evidence in by_workload.items():
        onset = earliest(item.time for item in evidence)
        candidates.append(
            Candidate(
                ref=workload,
                category=Category.NETWORK_DEGRADATION,
                base_score=40.0,
                summary=f"{label(workload)}: pod network setup fails (CNI) {since(onset)}",
                evidence=evidence[:4],
                explains=affected_by_workload(ctx, workload),
                onset_time=onset,
                symptom_onset=onset,
                has_failure_evidence=True,
            )
        )
    return candidates


def _error_origins(
    ctx: EvidenceContext, erroring: dict[ObjectRef, list[MetricSignal]]
) -> dict[ObjectRef, set[ObjectRef]]:
    """Erroring refs none of whose dependencies errored first, each with the erroring refs that depend on it."""
    onsets = {ref: min(signal.onset_time for signal in signals) for ref, signals in erroring.items()}
    upstream: dict[ObjectRef, set[ObjectRef]] = {}
    for ref in erroring:
        reachable = ctx.graph.depends_on(ref, max_depth=8)
        upstream[ref] = {
            other
            for other in erroring
            if other != ref and other in reachable and onsets[other] <= onsets[ref] + CLOCK_TOLERANCE
        }
    origins: dict[ObjectRef, set[ObjectRef]] = {}
    for ref, causes in upstream.items():
        if not causes:
            origins[ref] = {victim for victim, victim_causes in upstream.items() if ref in victim_causes}
    return origins


def detect_application_error(ctx: EvidenceContext) -> list[Candidate]:
    erroring: dict[ObjectRef, list[MetricSignal]] = defaultdict(list)
    for signal in _rising(ctx, (Signal.ERROR_RATE,)):
        erroring[signal.ref].append(signal)
    candidates = []
    for origin, victims in _error_origins(ctx, erroring).items():
        signals = erroring[origin]
        workload = _owner(ctx, origin)
        onset = earliest(signal.onset_time for signal in signals)
        worst = max(signal.magnitude for signal in signals)
        summary = f"{label(workload)}: error rate rose x{worst:g} {since(onset)}"
        if victims:
            summary += f"; {len(victims)} dependent(s) erroring after it"
        candidate = Candidate(
            ref=workload,
            category=Category.APPLICATION_ERROR,
            base_score=45.0,
            summary=summary,
            evidence=[signal_evidence(signal) for signal in signals[:3]],
            explains={origin, workload, *victims, *services_selecting(ctx, workload)},
            onset_time=onset,
            symptom_onset=onset,
            has_failure_evidence=True,
        )
        pods = ctx.snapshot.pods_of(workload)
        if pods and all(pod.ready for pod in pods) and not any(pod.ref in ctx.pod_problems() for pod in pods):
            candidate.notes.append(
                f"{label(origin)} shows an error spike while all {len(pods)} pods of {label(workload)} are Ready: "
                "the failure is in the application or something it calls, not in Kubernetes state."
            )
            candidate.evidence.append(
                Evidence(EvidenceSource.KUBERNETES, ctx.now, workload, f"all {len(pods)} pods Ready despite the errors")
            )
        candidates.append(candidate)
    candidates += _failed_jobs(ctx)
    return candidates


def _failed_jobs(ctx: EvidenceContext) -> list[Candidate]:
    candidates = []
    for job in ctx.snapshot.jobs():
        failed = next((c for c in job.conditions if c.type == "Failed" and c.is_true), None)
        if failed is None or not ctx.in_window(failed.last_transition):
            continue
        owner = ctx.workload_of(job.ref)
        when = failed.last_transition
        candidates.append(
            Candidate(
                ref=owner,
                category=Category.APPLICATION_ERROR,
                base_score=45.0,
                summary=f"{label(job.ref)} failed ({failed.reason}: {failed.message}) at {short_time(when)}",
                evidence=[
                    Evidence(EvidenceSource.KUBERNETES, failed.last_transition, job.ref, f"Failed: {failed.message}")
                ],
                explains={job.ref, owner},
                onset_time=failed.last_transition,
                symptom_onset=failed.last_transition,
                has_failure_evidence=True,
            )
        )
    return candidates
