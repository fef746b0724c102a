"""ConfigChange: a ConfigMap or Secret was edited or deleted and then the workloads that read it failed."""

from __future__ import annotations

import re

from inquest.categories import Category
from inquest.engine.candidates import Candidate
from inquest.engine.context import EvidenceContext, Signal
from inquest.engine.detectors.common import (
    affected_by_workload,
    after,
    change_evidence,
    describe_problems,
    earliest,
    label,
    onset_of,
    problem_evidence,
    signal_evidence,
    signals_on,
)
from inquest.engine.graph import EdgeType
from inquest.engine.journal import ChangeRecord, ChangeType
from inquest.engine.podstate import Mechanism, PodProblem
from inquest.engine.refs import ObjectRef
from inquest.engine.timeutil import short_time, since

CONFIG_KINDS = ("ConfigMap", "Secret")
_MISSING = re.compile(r"\b(configmap|secret)s? \"?(?P<name>[a-z0-9][a-z0-9.-]*)\"? not found", re.IGNORECASE)
_MISSING_KEY = re.compile(r"couldn't find key \S+ in (?P<kind>ConfigMap|Secret) (?P<namespace>[^/\s]+)/(?P<name>\S+)")
_CONSUMING_EDGES = (EdgeType.MOUNTS, EdgeType.ENV_FROM)


def _consumers(ctx: EvidenceContext, ref: ObjectRef) -> set[ObjectRef]:
    """The workloads (or bare pods) that mount or read env from a ConfigMap/Secret."""
    return {
        ctx.workload_of(edge.source)
        for edge in ctx.graph.edges_to(ref)
        if edge.type in _CONSUMING_EDGES and not edge.via_pods
    }


def _describe_config_change(record: ChangeRecord) -> str:
    if record.change == ChangeType.DELETED:
        return "was deleted"
    keys: dict[str, list[str]] = {"added": [], "removed": [], "changed": []}
    for change in record.fields:
        if not change.path.startswith("data["):
            continue
        key = change.path[len("data[") : -1]
        keys["added" if change.old is None else "removed" if change.new is None else "changed"].append(key)
    parts = [
        f"{verb} key{'s' if len(names) > 1 else ''} {', '.join(sorted(names))}" for verb, names in keys.items() if names
    ]
    return ("changed (" + "; ".join(parts) + ")") if parts else "changed"


# Failures that what a ConfigMap or Secret says cannot cause: pulling an image, finding room on a node.
_NOT_FROM_CONTENT = frozenset({Mechanism.IMAGE_PULL, Mechanism.UNSCHEDULABLE, Mechanism.EVICTED})


def _change_candidate(ctx: EvidenceContext, record: ChangeRecord) -> Candidate:
    consumers = _consumers(ctx, record.ref)
    problems: list[PodProblem] = []
    for pod_ref, pod_problems in ctx.pod_problems().items():
        if ctx.workload_of(pod_ref) in consumers:
            problems += [
                problem
                for problem in pod_problems
                if after(problem.onset, record.time) and problem.mechanism not in _NOT_FROM_CONTENT
            ]
    affected: set[ObjectRef] = {record.ref}
    for consumer in consumers:
        affected |= affected_by_workload(ctx, consumer, {problem.pod for problem in problems})
    signals = [
        signal
        for signal in signals_on(ctx, affected, (Signal.ERROR_RATE, Signal.LATENCY))
        if after(signal.onset_time, record.time)
    ]
    failing = bool(problems or signals)
    evidence = [change_evidence(record)]
    evidence += [problem_evidence(problem) for problem in problems[:4]]
    evidence += [signal_evidence(signal) for signal in signals[:2]]
    readers = ", ".join(label(consumer) for consumer in sorted(consumers)[:3]) or "no known consumer"
    outcome = describe_problems(problems) if problems else ("error rate rose" if signals else "")
    summary = f"{label(record.ref)} {_describe_config_change(record)} at {short_time(record.time)}; read by {readers}"
    if outcome:
        summary += f"; then {outcome}"
    return Candidate(
        ref=record.ref,
        category=Category.CONFIG_CHANGE,
        base_score=60.0 if problems else (50.0 if failing else 20.0),
        summary=summary,
        evidence=evidence,
        explains=affected if failing else {record.ref},
        onset_time=record.time,
        change=record,
        symptom_onset=earliest([onset_of(problems), *(signal.onset_time for signal in signals)]),
        has_failure_evidence=failing,
    )


def _missing_reference(problem: PodProblem) -> ObjectRef | None:
    keyed = _MISSING_KEY.search(problem.detail)
    if keyed:
        return ObjectRef(keyed["kind"], keyed["namespace"], keyed["name"])
    missing = _MISSING.search(problem.detail)
    if missing:
        kind = "ConfigMap" if missing.group(1).lower() == "configmap" else "Secret"
        return ObjectRef(kind, problem.pod.namespace, missing["name"])
    return None


def _missing_reference_candidates(ctx: EvidenceContext, covered: set[ObjectRef]) -> list[Candidate]:
    """Pods that cannot start because a ConfigMap/Secret (or a key in it) is missing, with no recorded change."""
    by_reference: dict[ObjectRef, list[PodProblem]] = {}
    for problems in ctx.pod_problems().values():
        for problem in problems:
            if problem.mechanism != Mechanism.CONFIG_ERROR:
                continue
            reference = _missing_reference(problem)
            if reference is not None and reference not in covered:
                by_reference.setdefault(reference, []).append(problem)
    candidates = []
    for reference, problems in by_reference.items():
        onset = onset_of(problems)
        affected: set[ObjectRef] = {reference}
        for problem in problems:
            affected |= affected_by_workload(ctx, ctx.workload_of(problem.pod), {problem.pod})
        state = "is missing" if ctx.snapshot.get(reference) is None else "lacks a key its consumers read"
        candidates.append(
            Candidate(
                ref=reference,
                category=Category.CONFIG_CHANGE,
                base_score=45.0,
                summary=f"{label(reference)} {state}: {describe_problems(problems)} {since(onset)}",
                evidence=[problem_evidence(problem) for problem in problems[:5]],
                explains=affected,
                symptom_onset=onset,
                has_failure_evidence=True,
            )
        )
    return candidates


def detect_config_change(ctx: EvidenceContext) -> list[Candidate]:
    records = [record for record in ctx.changes(kinds=CONFIG_KINDS) if record.change != ChangeType.CREATED]
    candidates = [_change_candidate(ctx, record) for record in records]
    candidates += _missing_reference_candidates(ctx, {record.ref for record in records})
    return candidates
