"""Scheduling (pods that no node accepts) and Storage (claims that do not bind, volumes that do not mount)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from inquest.categories import Category, EvidenceSource
from inquest.engine.candidates import Candidate, Evidence
from inquest.engine.context import EvidenceContext
from inquest.engine.detectors.common import (
    CLOCK_TOLERANCE,
    affected_by_workload,
    change_evidence,
    change_headline,
    earliest,
    event_evidence,
    label,
    onset_of,
    problem_evidence,
    problems_by_workload,
)
from inquest.engine.journal import ChangeRecord, ChangeType
from inquest.engine.objects import PersistentVolumeClaim, Pod
from inquest.engine.podstate import Mechanism, PodProblem
from inquest.engine.refs import ObjectRef
from inquest.engine.timeutil import short_time, since

_VOLUME_WORDS = ("persistentvolumeclaim", "volume binding", "unbound")
# The scheduler's words for "no node has room left" (as opposed to taints, selectors or volumes).
_ROOM_WORDS = ("insufficient", "too many pods")


def _is_storage(problem: PodProblem) -> bool:
    detail = problem.detail.lower()
    return problem.mechanism == Mechanism.MOUNT or (
        problem.mechanism == Mechanism.UNSCHEDULABLE and any(word in detail for word in _VOLUME_WORDS)
    )


def _reason_digest(problems: list[PodProblem]) -> str:
    """`0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: ...` ->
    `3 Insufficient cpu` (the scheduler's verdict on preemption repeats the count and adds nothing)."""
    detail = problems[-1].detail
    _, _, reasons = detail.partition("available: ")
    reasons = (reasons or detail).partition(" preemption: ")[0]
    return reasons.strip().rstrip(".")[:160]


def _cordons_or_taints(record: ChangeRecord) -> bool:
    cordon = record.field("unschedulable")
    return (cordon is not None and cordon.new == "true") or record.field("taints") is not None


def _node_change(ctx: EvidenceContext) -> ChangeRecord | None:
    """The one node cordon/taint change in the window, if there is exactly one."""
    records = [record for record in ctx.changes(kinds=("Node",)) if _cordons_or_taints(record)]
    return records[0] if len(records) == 1 else None


def _scale_up(ctx: EvidenceContext, workload: ObjectRef, onset: datetime | None) -> ChangeRecord | None:
    """The workload's latest scale-up (by a person or an HPA) before its pods stopped fitting: the pods it added
    are the ones asking for room the nodes no longer have."""
    found = None
    for record in ctx.changes(ref=workload):
        replicas = record.field("replicas")
        if record.change != ChangeType.SCALED or replicas is None or not (replicas.old or "").isdigit():
            continue
        grew = (replicas.new or "").isdigit() and int(replicas.new or 0) > int(replicas.old or 0)
        if grew and (onset is None or record.time <= onset + CLOCK_TOLERANCE):
            found = record
    return found


def detect_scheduling(ctx: EvidenceContext) -> list[Candidate]:
    node_record = _node_change(ctx)
    candidates = []
    for workload, problems in problems_by_workload(ctx, {Mechanism.UNSCHEDULABLE}).items():
        problems = [problem for problem in problems if not _is_storage(problem)]
        if not problems:
            continue
        onset = onset_of(problems)
        digest = _reason_digest(problems)
        pods = {problem.pod for problem in problems}
        about_nodes = any(word in digest.lower() for word in ("taint", "unschedulable"))
        record = node_record if about_nodes and node_record is not None else None
        failing = f"{len(pods)} pod(s) unschedulable {since(onset)} ({digest})"
        summary = f"{label(workload)}: {failing}"
        if record is None and any(word in digest.lower() for word in _ROOM_WORDS):
            record = _scale_up(ctx, workload, onset)
            if record is not None:
                headline = f"{change_headline(record)} at {short_time(record.time)}"
                summary = f"{label(workload)} was scaled ({headline}); then {failing}"
        evidence = [problem_evidence(problem) for problem in problems[:4]]
        if record is not None:
            evidence.insert(0, change_evidence(record))
        candidates.append(
            Candidate(
                ref=record.ref if record is not None else workload,
                category=Category.SCHEDULING,
                base_score=55.0 if record is not None else 50.0,
                summary=summary,
                evidence=evidence,
                explains=affected_by_workload(ctx, workload, pods),
                onset_time=record.time if record is not None else None,
                change=record,
                symptom_onset=onset,
                has_failure_evidence=True,
            )
        )
    return candidates


def _claim_for(ctx: EvidenceContext, problem: PodProblem) -> ObjectRef | None:
    pod = ctx.snapshot.get_as(problem.pod, Pod)
    if pod is None:
        return None
    claims = [v.source_name for v in pod.spec.volumes if v.source_kind == "PersistentVolumeClaim"]
    named = [claim for claim in claims if claim in problem.detail]
    unbound = [
        claim
        for claim in claims
        if (
            pvc := ctx.snapshot.get_as(
                ObjectRef("PersistentVolumeClaim", pod.meta.namespace, claim), PersistentVolumeClaim
            )
        )
        is None
        or pvc.phase != "Bound"
    ]
    chosen = named or unbound or claims
    return ObjectRef("PersistentVolumeClaim", pod.meta.namespace, chosen[0]) if chosen else None


def detect_storage(ctx: EvidenceContext) -> list[Candidate]:
    by_claim: dict[ObjectRef, list[PodProblem]] = defaultdict(list)
    for problems in ctx.pod_problems().values():
        for problem in problems:
            if _is_storage(problem) and (claim := _claim_for(ctx, problem)) is not None:
                by_claim[claim].append(problem)
    provisioning = ctx.events(reasons=("ProvisioningFailed", "FailedBinding"), warning_only=True)
    for event in provisioning:
        if event.involved.kind == "PersistentVolumeClaim":
            by_claim.setdefault(event.involved, [])
    records = {record.ref: record for record in ctx.changes(kinds=("PersistentVolumeClaim",))}
    candidates = []
    for claim, problems in by_claim.items():
        events = [event for event in provisioning if event.involved == claim]
        pvc = ctx.snapshot.get_as(claim, PersistentVolumeClaim)
        state = f"phase {pvc.phase}" if pvc is not None else "missing"
        onset = earliest([onset_of(problems), *(event.first_seen for event in events)])
        explains: set[ObjectRef] = {claim}
        for problem in problems:
            explains |= affected_by_workload(ctx, ctx.workload_of(problem.pod), {problem.pod})
        evidence = [event_evidence(event) for event in events[:2]] + [problem_evidence(p) for p in problems[:3]]
        evidence.append(Evidence(EvidenceSource.KUBERNETES, ctx.now, claim, f"claim is {state}"))
        record = records.get(claim)
        if record is not None:
            evidence.insert(0, change_evidence(record))
        candidates.append(
            Candidate(
                ref=claim,
                category=Category.STORAGE,
                base_score=55.0 if problems else 40.0,
                summary=f"{label(claim)} ({state}): "
                + (f"{len({p.pod for p in problems})} pod(s) wait on it" if problems else "provisioning fails")
                + f" {since(onset)}",
                evidence=evidence,
                explains=explains,
                onset_time=record.time if record is not None else onset,
                change=record,
                symptom_onset=onset,
                has_failure_evidence=True,
            )
        )
    return candidates
