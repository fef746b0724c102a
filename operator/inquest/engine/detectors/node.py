"""NodeFailure: a node went NotReady or under pressure, taking the pods on it down."""

from __future__ import annotations

from inquest.categories import Category, EvidenceSource
from inquest.engine.candidates import Candidate, Evidence
from inquest.engine.context import EvidenceContext
from inquest.engine.detectors.common import (
    affected_by_workload,
    earliest,
    event_evidence,
    label,
    onset_of,
    problem_evidence,
)
from inquest.engine.objects import Node
from inquest.engine.objects.cluster import NODE_PRESSURE_CONDITIONS
from inquest.engine.refs import ObjectRef
from inquest.engine.timeutil import since

_NODE_EVENT_REASONS = (
    "NodeNotReady",
    "NodeHasDiskPressure",
    "NodeHasInsufficientMemory",
    "NodeHasInsufficientPID",
    "EvictionThresholdMet",
    "SystemOOM",
    "Rebooted",
    "NodeNotSchedulable",
)


def _node_candidate(ctx: EvidenceContext, node: Node) -> Candidate | None:
    findings: list[Evidence] = []
    ready = node.condition("Ready")
    not_ready = ready is not None and not ready.is_true
    if not_ready and ready is not None and ctx.holds_in_window(ready.last_transition):
        findings.append(
            Evidence(
                EvidenceSource.KUBERNETES,
                ready.last_transition,
                node.ref,
                f"Ready={ready.status}: {ready.reason} {ready.message}",
            )
        )
    for condition_type in NODE_PRESSURE_CONDITIONS:
        condition = node.condition(condition_type)
        if condition is not None and condition.is_true and ctx.holds_in_window(condition.last_transition):
            findings.append(
                Evidence(
                    EvidenceSource.KUBERNETES,
                    condition.last_transition,
                    node.ref,
                    f"{condition_type}=True: {condition.message}",
                )
            )
    node_events = [
        event for event in ctx.events(ref=node.ref, reasons=_NODE_EVENT_REASONS) if event.reason != "NodeNotSchedulable"
    ]
    pod_refs = [pod.ref for pod in ctx.snapshot.pods() if pod.node_name == node.meta.name]
    if not findings and not any(event.is_warning or event.reason == "NodeNotReady" for event in node_events):
        return None
    problems = [problem for ref in pod_refs for problem in ctx.pod_problems().get(ref, [])]
    onset = earliest([*(item.time for item in findings), *(event.first_seen for event in node_events)])
    explains: set[ObjectRef] = {node.ref, *pod_refs}
    for pod_ref in pod_refs:
        explains |= affected_by_workload(ctx, ctx.workload_of(pod_ref), {pod_ref})
    evidence = (
        findings + [event_evidence(event) for event in node_events[:2]] + [problem_evidence(p) for p in problems[:3]]
    )
    state = "NotReady" if not_ready else "under pressure"
    candidate = Candidate(
        ref=node.ref,
        category=Category.NODE_FAILURE,
        base_score=(55.0 if not_ready else 45.0) + (5.0 if problems else 0.0),
        summary=f"{label(node.ref)} is {state} {since(onset)}; {len(pod_refs)} pod(s) run on it"
        + (f", {len({p.pod for p in problems})} failing" if problems else ""),
        evidence=evidence,
        explains=explains,
        onset_time=onset,
        symptom_onset=onset_of(problems),
        has_failure_evidence=bool(findings) or bool(problems),
    )
    if onset is not None and onset < ctx.window_start:
        candidate.counter_evidence.append(
            Evidence(EvidenceSource.KUBERNETES, onset, node.ref, f"{state} {since(onset)}, before the window")
        )
    return candidate


def detect_node_failure(ctx: EvidenceContext) -> list[Candidate]:
    return [found for node in ctx.snapshot.nodes() if (found := _node_candidate(ctx, node)) is not None]
