"""Symptoms: what is observably wrong inside the window, independent of any theory of why."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from inquest.engine.context import Direction, EvidenceContext, Signal
from inquest.engine.objects import EndpointSlice, Workload
from inquest.engine.refs import ObjectRef

_BAD_WHEN_UP = frozenset({Signal.ERROR_RATE, Signal.LATENCY, Signal.NETWORK_ERRORS, Signal.NETWORK_LATENCY})


@dataclass(frozen=True, slots=True)
class Symptom:
    ref: ObjectRef
    onset: datetime | None
    detail: str


def _workload_symptom(ctx: EvidenceContext, workload: Workload) -> Symptom | None:
    if workload.meta.kind == "ReplicaSet" or not workload.desired_replicas:
        return None
    stalled = workload.condition("Progressing")
    if (
        stalled is not None
        and stalled.reason == "ProgressDeadlineExceeded"
        and ctx.holds_in_window(stalled.last_transition)
    ):
        return Symptom(workload.ref, stalled.last_transition, "rollout stalled (ProgressDeadlineExceeded)")
    available = workload.condition("Available")
    if available is not None and not available.is_true and ctx.holds_in_window(available.last_transition):
        return Symptom(workload.ref, available.last_transition, f"unavailable: {available.message}")
    if ctx.window_is_current and workload.ready_replicas == 0:
        return Symptom(workload.ref, None, f"0/{workload.desired_replicas} replicas ready")
    return None


def _service_symptoms(ctx: EvidenceContext) -> list[Symptom]:
    if not ctx.window_is_current:
        return []
    slices: dict[ObjectRef, list[EndpointSlice]] = {}
    for endpoint_slice in ctx.snapshot.endpoint_slices():
        slices.setdefault(ObjectRef("Service", endpoint_slice.meta.namespace, endpoint_slice.service_name), []).append(
            endpoint_slice
        )
    found = []
    for service in ctx.snapshot.services():
        if not service.selector or service.ref not in slices:
            continue
        if not any(item.ready_pods for item in slices[service.ref]):
            found.append(Symptom(service.ref, None, "no ready endpoints"))
    return found


def collect_symptoms(ctx: EvidenceContext) -> list[Symptom]:
    earliest: dict[ObjectRef, Symptom] = {}

    def add(symptom: Symptom) -> None:
        known = earliest.get(symptom.ref)
        if known is None or (symptom.onset is not None and (known.onset is None or symptom.onset < known.onset)):
            earliest[symptom.ref] = symptom

    for pod_ref, problems in ctx.pod_problems().items():
        onsets = [problem.onset for problem in problems if problem.onset is not None]
        onset = min(onsets) if onsets else None
        add(Symptom(pod_ref, onset, problems[0].detail))
        workload = ctx.workload_of(pod_ref)
        if workload != pod_ref:
            add(Symptom(workload, onset, f"pod {pod_ref.name}: {problems[0].detail}"))
    for controller in ctx.snapshot.all(Workload):
        found = _workload_symptom(ctx, controller)
        if found is not None:
            add(found)
    for service_symptom in _service_symptoms(ctx):
        add(service_symptom)
    for signal in ctx.signals():
        bad = (signal.signal_name in _BAD_WHEN_UP and signal.direction == Direction.UP) or (
            signal.signal_name == Signal.REQUEST_RATE and signal.direction == Direction.DOWN
        )
        if bad:
            add(
                Symptom(
                    signal.ref,
                    signal.onset_time,
                    f"{signal.signal_name} {signal.direction.value} x{signal.magnitude:g}",
                )
            )
    for event in ctx.events(reasons=("FailedCreate",), warning_only=True):
        add(Symptom(ctx.workload_of(event.involved), event.first_seen, f"cannot create pods: {event.message}"))
    for node in ctx.snapshot.nodes():
        ready = node.condition("Ready")
        if ready is not None and not ready.is_true and ctx.holds_in_window(ready.last_transition):
            add(Symptom(node.ref, ready.last_transition, f"Ready={ready.status}"))
    for job in ctx.snapshot.jobs():
        failed = next((c for c in job.conditions if c.type == "Failed" and c.is_true), None)
        if failed is not None and ctx.in_window(failed.last_transition):
            add(Symptom(job.ref, failed.last_transition, f"failed: {failed.reason}"))
    return sorted(
        earliest.values(),
        key=lambda symptom: (symptom.onset is None, symptom.onset or ctx.window_start, str(symptom.ref)),
    )
