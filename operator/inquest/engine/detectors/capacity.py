"""Capacity: demand outgrew what a workload may scale to (an HPA pinned at its maximum, or traffic growth
with saturation)."""

from __future__ import annotations

from collections import defaultdict

from inquest.categories import Category, EvidenceSource
from inquest.engine.candidates import Candidate, Evidence
from inquest.engine.context import Direction, EvidenceContext, MetricSignal, Signal
from inquest.engine.detectors.common import (
    affected_by_workload,
    change_evidence,
    earliest,
    label,
    signal_evidence,
    signals_on,
)
from inquest.engine.journal import ChangeRecord
from inquest.engine.objects import HorizontalPodAutoscaler
from inquest.engine.refs import ObjectRef
from inquest.engine.timeutil import short_time, since

_PRESSURE = (Signal.CPU_SATURATION, Signal.MEMORY_SATURATION, Signal.LATENCY, Signal.ERROR_RATE, Signal.REQUEST_RATE)
_HARM = (Signal.LATENCY, Signal.ERROR_RATE)


def _lowered_max(record: ChangeRecord | None) -> bool:
    change = record.field("maxReplicas") if record is not None else None
    if change is None or change.old is None or change.new is None:
        return False
    return change.old.isdigit() and change.new.isdigit() and int(change.new) < int(change.old)


def _hpa_candidate(ctx: EvidenceContext, hpa: HorizontalPodAutoscaler, record: ChangeRecord | None) -> Candidate | None:
    limited = hpa.condition("ScalingLimited")
    at_max = hpa.max_replicas is not None and (hpa.current_replicas or 0) >= hpa.max_replicas
    if limited is None or not limited.is_true or not (limited.reason == "TooManyReplicas" or at_max):
        return None
    dated = ctx.in_window(limited.last_transition)
    if not dated and not ctx.window_is_current:
        return None
    target = ObjectRef(hpa.target_kind, hpa.meta.namespace, hpa.target_name)
    affected = affected_by_workload(ctx, target) | {hpa.ref}
    pressure = [signal for signal in signals_on(ctx, affected, _PRESSURE) if signal.direction == Direction.UP]
    harmed = [signal for signal in pressure if signal.signal_name in _HARM]
    lowered = _lowered_max(record)
    onset = limited.last_transition if dated else None
    summary = f"{label(target)} is pinned at its HPA maximum ({hpa.current_replicas}/{hpa.max_replicas} replicas)"
    if onset is not None:
        summary += f" {since(onset)}"
    if lowered and record is not None:
        summary += f" after maxReplicas was lowered at {short_time(record.time)}"
    evidence = [Evidence(EvidenceSource.KUBERNETES, onset, hpa.ref, f"ScalingLimited: {limited.message}")]
    if lowered and record is not None:
        evidence.insert(0, change_evidence(record))
    evidence += [signal_evidence(signal) for signal in pressure[:3]]
    return Candidate(
        ref=hpa.ref if lowered else target,
        category=Category.CAPACITY,
        base_score=(60.0 if lowered else 50.0) if harmed else 35.0,
        summary=summary,
        evidence=evidence,
        explains=affected,
        onset_time=record.time if (lowered and record is not None) else onset,
        change=record if lowered else None,
        symptom_onset=earliest(signal.onset_time for signal in harmed),
        has_failure_evidence=bool(harmed),
    )


def _growth_candidates(ctx: EvidenceContext, covered: set[ObjectRef]) -> list[Candidate]:
    """Traffic grew and the same object saturated or slowed, without an HPA to blame."""
    by_ref: dict[ObjectRef, list[MetricSignal]] = defaultdict(list)
    for signal in ctx.signals(_PRESSURE):
        if signal.direction == Direction.UP:
            by_ref[ctx.workload_of(signal.ref)].append(signal)
    candidates = []
    for ref, signals in by_ref.items():
        growth = [signal for signal in signals if signal.signal_name == Signal.REQUEST_RATE and signal.magnitude >= 1.5]
        strain = [signal for signal in signals if signal.signal_name != Signal.REQUEST_RATE]
        if ref in covered or not growth or not strain:
            continue
        onset = earliest(signal.onset_time for signal in growth)
        candidates.append(
            Candidate(
                ref=ref,
                category=Category.CAPACITY,
                base_score=40.0,
                summary=f"{label(ref)}: traffic grew x{max(s.magnitude for s in growth):g} {since(onset)} "
                f"and it saturated ({', '.join(sorted({s.signal_name for s in strain}))})",
                evidence=[signal_evidence(signal) for signal in (growth[:2] + strain[:2])],
                explains=affected_by_workload(ctx, ref),
                onset_time=onset,
                symptom_onset=earliest(signal.onset_time for signal in strain),
                has_failure_evidence=True,
            )
        )
    return candidates


def detect_capacity(ctx: EvidenceContext) -> list[Candidate]:
    records = {record.ref: record for record in ctx.changes(kinds=("HorizontalPodAutoscaler",))}
    candidates = [
        found for hpa in ctx.snapshot.hpas() if (found := _hpa_candidate(ctx, hpa, records.get(hpa.ref))) is not None
    ]
    covered = {ObjectRef(h.target_kind, h.meta.namespace, h.target_name) for h in ctx.snapshot.hpas()}
    return candidates + _growth_candidates(ctx, covered)
