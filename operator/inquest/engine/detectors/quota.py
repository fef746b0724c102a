"""Quota: pods could not be created because a ResourceQuota (or a LimitRange) refused them."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from inquest.categories import Category, EvidenceSource
from inquest.engine.candidates import Candidate, Evidence
from inquest.engine.context import EvidenceContext
from inquest.engine.detectors.common import (
    affected_by_workload,
    change_evidence,
    change_headline,
    earliest,
    label,
)
from inquest.engine.journal import ChangeType
from inquest.engine.objects import Workload
from inquest.engine.refs import ObjectRef
from inquest.engine.timeutil import short_time, since

_QUOTA_NAME = re.compile(r"(?:exceeded|failed) quota: (?P<name>[a-z0-9][a-z0-9.-]*)")
_LIMIT_RANGE_WORDS = ("per container", "per pod", "per persistentvolumeclaim")


@dataclass(frozen=True, slots=True)
class _Refusal:
    workload: ObjectRef
    admission: ObjectRef
    time: datetime | None
    message: str


def _admission_object(ctx: EvidenceContext, namespace: str, message: str) -> ObjectRef | None:
    named = _QUOTA_NAME.search(message)
    if named:
        return ObjectRef("ResourceQuota", namespace, named["name"])
    if "forbidden" in message and any(word in message.lower() for word in _LIMIT_RANGE_WORDS):
        ranges = sorted(item.meta.name for item in ctx.snapshot.limit_ranges(namespace))
        return ObjectRef("LimitRange", namespace, ranges[0] if ranges else "<unknown>")
    return None


def _refusals(ctx: EvidenceContext) -> list[_Refusal]:
    found = []
    for event in ctx.events(reasons=("FailedCreate",), warning_only=True):
        admission = _admission_object(ctx, event.involved.namespace, event.message)
        if admission is not None:
            found.append(_Refusal(ctx.workload_of(event.involved), admission, event.first_seen, event.message))
    for workload in ctx.snapshot.all(Workload):
        failure = workload.condition("ReplicaFailure")
        if failure is None or not failure.is_true:
            continue
        if not ctx.holds_in_window(failure.last_transition):
            continue
        admission = _admission_object(ctx, workload.meta.namespace, failure.message)
        if admission is not None:
            found.append(_Refusal(ctx.workload_of(workload.ref), admission, failure.last_transition, failure.message))
    return found


def detect_quota(ctx: EvidenceContext) -> list[Candidate]:
    by_admission: dict[ObjectRef, list[_Refusal]] = defaultdict(list)
    for refusal in _refusals(ctx):
        by_admission[refusal.admission].append(refusal)
    records = {
        record.ref: record
        for record in ctx.changes(kinds=("ResourceQuota", "LimitRange"))
        if record.change in (ChangeType.CREATED, ChangeType.UPDATED)
    }
    candidates = []
    for admission, refusals in by_admission.items():
        record = records.get(admission)
        onset = earliest(refusal.time for refusal in refusals)
        workloads = sorted({refusal.workload for refusal in refusals})
        explains: set[ObjectRef] = {admission}
        for workload in workloads:
            explains |= affected_by_workload(ctx, workload)
        evidence = [
            Evidence(EvidenceSource.KUBERNETES, refusal.time, refusal.workload, f"FailedCreate: {refusal.message}")
            for refusal in refusals[:4]
        ]
        blocked = ", ".join(label(workload) for workload in workloads[:3])
        summary = f"{label(admission)} refuses new pods of {blocked} {since(onset)}"
        if record is not None:
            evidence.insert(0, change_evidence(record))
            verb = "created" if record.change == ChangeType.CREATED else f"changed ({change_headline(record)})"
            summary = f"{label(admission)} {verb} at {short_time(record.time)}; it refuses new pods of {blocked}"
        candidates.append(
            Candidate(
                ref=admission,
                category=Category.QUOTA,
                base_score=65.0 if record is not None else 55.0,
                summary=summary,
                evidence=evidence,
                explains=explains,
                onset_time=record.time if record is not None else onset,
                change=record,
                symptom_onset=onset,
                has_failure_evidence=True,
            )
        )
    return candidates
