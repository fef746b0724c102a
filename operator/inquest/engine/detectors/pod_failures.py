"""Mechanism detectors: pods that cannot pull, crash, are OOMKilled or fail probes, grouped by workload.

These name how something fails. When a change caused it, the change detectors name the change instead and the
ranker folds these candidates into theirs."""

from __future__ import annotations

from inquest.categories import Category, EvidenceSource
from inquest.engine.candidates import Candidate, Evidence
from inquest.engine.context import EvidenceContext, Signal
from inquest.engine.detectors.common import (
    affected_by_workload,
    describe_problems,
    event_evidence,
    label,
    onset_of,
    problem_evidence,
    problems_by_workload,
    signal_evidence,
    signals_on,
)
from inquest.engine.podstate import Mechanism, PodProblem
from inquest.engine.refs import ObjectRef
from inquest.engine.timeutil import short_time, since

_MAX_PROBLEMS_AS_EVIDENCE = 4


def _pod_failure_candidates(
    ctx: EvidenceContext, mechanisms: set[Mechanism], category: Category, base_score: float
) -> list[Candidate]:
    candidates = []
    for workload, problems in problems_by_workload(ctx, mechanisms).items():
        candidates.append(_candidate(ctx, workload, problems, category, base_score))
    return candidates


def _candidate(
    ctx: EvidenceContext, workload: ObjectRef, problems: list[PodProblem], category: Category, base_score: float
) -> Candidate:
    onset = onset_of(problems)
    evidence: list[Evidence] = [problem_evidence(problem) for problem in problems[:_MAX_PROBLEMS_AS_EVIDENCE]]
    seen_events = set()
    for problem in problems:
        for event in problem.events[:1]:
            if (event.reason, event.involved) not in seen_events:
                seen_events.add((event.reason, event.involved))
                evidence.append(event_evidence(event))
    pods = {problem.pod for problem in problems}
    candidate = Candidate(
        ref=workload,
        category=category,
        base_score=base_score,
        summary=f"{label(workload)}: {describe_problems(problems)} {since(onset)}",
        evidence=evidence,
        explains=affected_by_workload(ctx, workload, pods),
        onset_time=onset,
        symptom_onset=onset,
        has_failure_evidence=True,
    )
    if onset is not None and onset < ctx.window_start:
        candidate.counter_evidence.append(
            Evidence(
                EvidenceSource.KUBERNETES, onset, workload, f"already failing at {short_time(onset)}, before the window"
            )
        )
    return candidate


def detect_image_pull(ctx: EvidenceContext) -> list[Candidate]:
    return _pod_failure_candidates(ctx, {Mechanism.IMAGE_PULL}, Category.IMAGE_PULL, 55)


def detect_crash_loop(ctx: EvidenceContext) -> list[Candidate]:
    return _pod_failure_candidates(ctx, {Mechanism.CRASH}, Category.CRASH_LOOP, 45)


def detect_oom_killed(ctx: EvidenceContext) -> list[Candidate]:
    candidates = _pod_failure_candidates(ctx, {Mechanism.OOM}, Category.OOM_KILLED, 55)
    for candidate in candidates:
        pressure = signals_on(ctx, candidate.explains, [Signal.MEMORY_SATURATION])
        candidate.evidence.extend(signal_evidence(signal) for signal in pressure[:2])
        if pressure:
            candidate.base_score += 5
    return candidates


def detect_probe_failure(ctx: EvidenceContext) -> list[Candidate]:
    return _pod_failure_candidates(ctx, {Mechanism.PROBE}, Category.PROBE_FAILURE, 45)
