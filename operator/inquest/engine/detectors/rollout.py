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
from inquest.engine.objects import Pod, Workload
from inquest.engine.objects.meta import RESTARTED_AT_ANNOTATION
from inquest.engine.podstate import Mechanism, PodProblem
from inquest.engine.refs import ObjectRef
from inquest.engine.timeutil import short_time

ROLLOUT_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
_ROLLOUT_SIGNALS = (Signal.ERROR_RATE, Signal.LATENCY, Signal.CPU_THROTTLING, Signal.MEMORY_SATURATION)
_RESTART_ONLY_PATH = f"template.annotations[{RESTARTED_AT_ANNOTATION}]"
# Failures that depend on where and when a pod was placed (the node's access to the registry, the room left on the
# nodes, the volumes it can reach, the node's pressure), each with the template fields that govern it.
_PLACEMENT_FIELDS: dict[Mechanism, tuple[str, ...]] = {
    Mechanism.IMAGE_PULL: (".image",),
    Mechanism.UNSCHEDULABLE: (".resources.requests.", ".nodeSelector", ".affinity", ".tolerations"),
    Mechanism.MOUNT: (".volumes[",),
    Mechanism.EVICTED: (".resources.",),
}


def _is_rollout(record: ChangeRecord) -> bool:
    if record.change not in (ChangeType.UPDATED, ChangeType.CREATED):
        return False
    return record.is_template_change or record.source == ChangeSource.USER or record.field("revision") is not None


def _is_restart_only(record: ChangeRecord) -> bool:
    paths = {change.path for change in record.fields} - {"revision"}
    return paths == {_RESTART_ONLY_PATH}


def _healthy_revisions(ctx: EvidenceContext, workload: ObjectRef) -> set[str]:
    """Template revisions of the workload that have a pod running ready without any problem."""
    problems = ctx.pod_problems()
    return {
        pod.template_revision
        for pod in ctx.snapshot.pods_of(workload)
        if pod.template_revision
        and pod.meta.deleted is None
        and pod.phase == "Running"
        and pod.ready
        and pod.ref not in problems
    }


def _recreated(ctx: EvidenceContext, record: ChangeRecord) -> bool:
    """Whether a creation replaced an object of the same name that the journal saw deleted before it."""
    return any(
        earlier.change == ChangeType.DELETED and earlier.time <= record.time
        for earlier in ctx.journal.for_object(record.ref)
    )


def _changed_placement(record: ChangeRecord, mechanism: Mechanism) -> bool:
    """Whether an update changed what the placement failure depends on (a creation changes all from nothing)."""
    if record.change != ChangeType.UPDATED:
        return False
    return any(fragment in change.path for change in record.fields for fragment in _PLACEMENT_FIELDS[mechanism])


def _problems_after(
    ctx: EvidenceContext, record: ChangeRecord
) -> tuple[list[PodProblem], list[PodProblem], list[PodProblem]]:
    """(problems of pods started by this rollout, problems that began before it, placement failures it is cleared of).

    A pod that cannot pull, be scheduled or mount while a pod of the same template runs healthy fails because of
    where or when it was placed (a new node, the room left after a scale-up), not because of the template: the
    healthy pod shows that the template pulls, fits and mounts. Unless the rollout changed just that (the image, the
    requests, the node constraints, the volumes), such a failure is not the rollout's effect."""
    new, before, placed = [], [], []
    healthy = _healthy_revisions(ctx, record.ref)
    # An update that left the placement fields alone keeps the constraints that its healthy older pods satisfied.
    older_proven = record.change == ChangeType.UPDATED and bool(healthy)
    for pod_ref, problems in ctx.pod_problems().items():
        if ctx.workload_of(pod_ref) != record.ref:
            continue
        pod = ctx.snapshot.get_as(pod_ref, Pod)
        created = pod.meta.created if pod is not None else None
        started_by_rollout = created is None or created >= record.time - CLOCK_TOLERANCE
        proven = pod is not None and (pod.template_revision in healthy or older_proven)
        for problem in problems:
            if problem.onset is not None and problem.onset < record.time - CLOCK_TOLERANCE:
                before.append(problem)
            elif started_by_rollout and (problem.onset is None or after(problem.onset, record.time)):
                if (
                    proven
                    and problem.mechanism in _PLACEMENT_FIELDS
                    and not _changed_placement(record, problem.mechanism)
                ):
                    placed.append(problem)
                else:
                    new.append(problem)
    return new, before, placed


def _rollout_candidate(ctx: EvidenceContext, record: ChangeRecord) -> Candidate:
    workload_ref = record.ref
    workload = ctx.snapshot.get_as(workload_ref, Workload)
    new_problems, earlier_problems, placed = _problems_after(ctx, record)
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
    if placed:
        pods = len({problem.pod for problem in placed})
        candidate.notes.append(
            f"{label(workload_ref)}: {describe_problems(placed)}, while pods of the same template run healthy; "
            f"{'that failure depends' if pods == 1 else 'those failures depend'} on where the pods were placed, "
            f"not on its rollout at {short_time(record.time)}."
        )
    if _is_restart_only(record):
        candidate.base_score -= 15
        if failing:
            # The same spec ran fine before the restart: what changed is what the new pods read or call.
            reads = sorted(
                {
                    ref
                    for pod in ctx.snapshot.pods_of(workload_ref)
                    for ref in ctx.graph.dependencies(pod.ref)
                    if ref.kind in ("ConfigMap", "Secret")
                }
            )
            candidate.indirect = True
            candidate.notes.append(
                f"The rollout of {label(workload_ref)} only restarted its pods (no spec change), and the new pods "
                "fail: what they read at start-up or call changed"
                + (f" (they read {', '.join(label(ref) for ref in reads)})." if reads else ".")
            )
        else:
            candidate.notes.append(f"The rollout of {label(workload_ref)} only restarted its pods (no spec change).")
    return candidate


def detect_bad_rollout(ctx: EvidenceContext) -> list[Candidate]:
    """Updates of a workload's template, and creations that replaced a deleted workload of the same name. A first
    creation is no rollout: there is no earlier version to roll back to, and what its pods do is told by the
    mechanism detectors (a crash, an OOM, a pull failure) under their own categories."""
    return [
        _rollout_candidate(ctx, record)
        for record in ctx.changes(kinds=ROLLOUT_KINDS)
        if _is_rollout(record) and (record.change != ChangeType.CREATED or _recreated(ctx, record))
    ]
