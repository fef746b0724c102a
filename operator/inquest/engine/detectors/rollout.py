"""BadRollout: a workload's template changed and then its new pods failed, or its metrics turned bad."""

from __future__ import annotations

from inquest.categories import Category, EvidenceSource
from inquest.engine.candidates import Candidate, Evidence
from inquest.engine.context import EvidenceContext, Signal
from inquest.engine.detectors.common import (
    CLOCK_TOLERANCE,
    affected_by_workload,
    after,
    change_evidence,
    change_headline,
    describe_problems,
    earliest,
    label,
    problem_evidence,
    signal_evidence,
    signals_on,
)
from inquest.engine.journal import ChangeRecord, ChangeSource, ChangeType
from inquest.engine.objects import Workload
from inquest.engine.objects.meta import RESTARTED_AT_ANNOTATION
from inquest.engine.podstate import PodProblem
from inquest.engine.timeutil import short_time

ROLLOUT_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
_ROLLOUT_SIGNALS = (Signal.ERROR_RATE, Signal.LATENCY, Signal.CPU_THROTTLING, Signal.MEMORY_SATURATION)
_RESTART_ONLY_PATH = f"template.annotations[{RESTARTED_AT_ANNOTATION}]"


def _is_rollout(record: ChangeRecord) -> bool:
    if record.change not in (ChangeType.UPDATED, ChangeType.CREATED):
        return False
    return record.is_template_change or record.source == ChangeSource.USER or record.field("revision") is not None


def _is_restart_only(record: ChangeRecord) -> bool:
    paths = {change.path for change in record.fields} - {"revision"}
    return paths == {_RESTART_ONLY_PATH}


def _problems_after(ctx: EvidenceContext, record: ChangeRecord) -> tuple[list[PodProblem], list[PodProblem]]:
    """(problems of pods started by this rollout, problems that began before it)."""
    new, before = [], []
    for pod_ref, problems in ctx.pod_problems().items():
        if ctx.workload_of(pod_ref) != record.ref:
            continue
        pod = ctx.snapshot.get(pod_ref)
        created = pod.meta.created if pod is not None else None
        started_by_rollout = created is None or created >= record.time - CLOCK_TOLERANCE
        for problem in problems:
            if problem.onset is not None and problem.onset < record.time - CLOCK_TOLERANCE:
                before.append(problem)
            elif started_by_rollout and (problem.onset is None or after(problem.onset, record.time)):
                new.append(problem)
    return new, before


def _rollout_candidate(ctx: EvidenceContext, record: ChangeRecord) -> Candidate:
    workload_ref = record.ref
    workload = ctx.snapshot.get_as(workload_ref, Workload)
    new_problems, earlier_problems = _problems_after(ctx, record)
    affected = affected_by_workload(ctx, workload_ref, {problem.pod for problem in new_problems})
    signals = [
        signal for signal in signals_on(ctx, affected, _ROLLOUT_SIGNALS) if after(signal.onset_time, record.time)
    ]
    evidence = [change_evidence(record)]
    evidence += [problem_evidence(problem) for problem in new_problems[:4]]
    evidence += [signal_evidence(signal) for signal in signals[:2]]
    stalled = workload.condition("Progressing") if workload is not None else None
    if stalled is not None and stalled.reason == "ProgressDeadlineExceeded":
        evidence.append(
            Evidence(
                EvidenceSource.KUBERNETES,
                stalled.last_transition,
                workload_ref,
                f"Progressing=False: {stalled.message}",
            )
        )
    else:
        stalled = None
    failing = bool(new_problems or signals or stalled)
    base = 60.0 if new_problems else (50.0 if failing else 20.0)
    if record.change == ChangeType.CREATED:
        base -= 10
    what = f"rollout at {short_time(record.time)} ({change_headline(record)})"
    outcome = describe_problems(new_problems) if new_problems else ""
    if not outcome and signals:
        outcome = ", ".join(
            f"{signal.signal_name} {signal.direction.value} x{signal.magnitude:g}" for signal in signals[:2]
        )
    if not outcome and stalled:
        outcome = "the rollout stalled (ProgressDeadlineExceeded)"
    summary = f"{label(workload_ref)} {what}" + (f" was followed by: {outcome}" if outcome else "")
    candidate = Candidate(
        ref=workload_ref,
        category=Category.BAD_ROLLOUT,
        base_score=base,
        summary=summary,
        evidence=evidence,
        explains=affected if failing else {workload_ref},
        onset_time=record.time,
        change=record,
        symptom_onset=earliest(
            [*(problem.onset for problem in new_problems), *(signal.onset_time for signal in signals)]
        ),
        has_failure_evidence=failing,
    )
    if earlier_problems:
        first = min((problem for problem in earlier_problems), key=lambda problem: problem.onset or record.time)
        candidate.counter_evidence.append(
            Evidence(
                EvidenceSource.KUBERNETES,
                first.onset,
                first.pod,
                f"pods were already failing before the rollout ({first.detail})",
            )
        )
    if _is_restart_only(record):
        candidate.base_score -= 15
        candidate.notes.append(f"The rollout of {label(workload_ref)} only restarted its pods (no spec change).")
    return candidate


def detect_bad_rollout(ctx: EvidenceContext) -> list[Candidate]:
    return [_rollout_candidate(ctx, record) for record in ctx.changes(kinds=ROLLOUT_KINDS) if _is_rollout(record)]
