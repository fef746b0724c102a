"""Judges the user's hypotheses ("the 10:05 deploy", "node-b", "the database") against the findings.

A hypothesis is Supported when a credible finding names what it names, RuledOut only when the data to check it
exists and shows nothing wrong, and Unknown otherwise."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from inquest.categories import Category, HypothesisVerdict
from inquest.engine.context import EvidenceContext
from inquest.engine.detectors.common import label
from inquest.engine.hints import clock_times, named_objects
from inquest.engine.journal import ChangeRecord
from inquest.engine.objects import Node, Service, Workload
from inquest.engine.ranker import Ranked
from inquest.engine.refs import ObjectRef
from inquest.engine.report import HypothesisResult
from inquest.engine.symptoms import Symptom
from inquest.engine.timeutil import short_time

SUPPORT_THRESHOLD = 40
_NEAR = timedelta(minutes=5)
_DATABASE_WORDS = re.compile(
    r"\b(database|databases|db|datastore|data store|postgres\w*|mysql|mariadb|redis|mongo\w*|sql)\b", re.I
)
_DATABASE_NAME = re.compile(r"(postgres|mysql|mariadb|redis|mongo|cassandra|memcache|sql|database|(^|-)db(-|$))", re.I)
_METRIC_CATEGORIES = frozenset(
    {Category.APPLICATION_ERROR, Category.NETWORK_DEGRADATION, Category.CPU_THROTTLING, Category.CAPACITY}
)
# Hypotheses that blame a change: only a change can support or clear them.
_CHANGE_CATEGORIES = frozenset({Category.BAD_ROLLOUT, Category.CONFIG_CHANGE})
_CATEGORY_WORDS: tuple[tuple[re.Pattern[str], Category], ...] = tuple(
    (re.compile(pattern, re.I), category)
    for pattern, category in (
        (r"\b(deploy\w*|roll(ed)? ?out|release\w*|upgrade\w*|new version)\b", Category.BAD_ROLLOUT),
        (r"\b(config\w*|secret\w*)\b", Category.CONFIG_CHANGE),
        (r"\b(network ?polic\w*|netpol|firewall)\b", Category.NETWORK_POLICY),
        (r"\bquota\w*\b", Category.QUOTA),
        (r"\b(oom\w*|out of memory|memory)\b", Category.OOM_KILLED),
        (r"\b(cpu|throttl\w*)\b", Category.CPU_THROTTLING),
        (r"\bnodes?\b", Category.NODE_FAILURE),
        (r"\b(image|registry|pull)\b", Category.IMAGE_PULL),
        (r"\bcrash\w*\b", Category.CRASH_LOOP),
        (r"\b(probe\w*|health ?checks?|readiness|liveness)\b", Category.PROBE_FAILURE),
        (r"\b(dns|network(?! ?polic)|packet loss|latency)\b", Category.NETWORK_DEGRADATION),
        (r"\b(disk|volume|pvc|storage)\b", Category.STORAGE),
        (r"\b(schedul\w*|pending)\b", Category.SCHEDULING),
        (r"\b(scaled? (to|down)|zero replicas)\b", Category.SCALED_TO_ZERO),
        (r"\b(capacity|traffic|load|hpa|autoscal\w*)\b", Category.CAPACITY),
        (r"\b(selector|endpoints?|target ?port)\b", Category.SERVICE_MISCONFIG),
        (r"\b(bug|exception|5\d\d|errors?)\b", Category.APPLICATION_ERROR),
    )
)


def _categories(text: str) -> set[Category]:
    return {category for pattern, category in _CATEGORY_WORDS if pattern.search(text)}


def _database_objects(ctx: EvidenceContext) -> list[ObjectRef]:
    return [
        ref
        for ref in ctx.snapshot.objects
        if ref.kind in ("Service", "Deployment", "StatefulSet") and _DATABASE_NAME.search(ref.name)
    ]


def _timed_changes(ctx: EvidenceContext, moment: datetime, categories: set[Category]) -> list[ChangeRecord]:
    kinds: tuple[str, ...] | None = None
    if Category.BAD_ROLLOUT in categories:
        kinds = ("Deployment", "StatefulSet", "DaemonSet")
    elif Category.CONFIG_CHANGE in categories:
        kinds = ("ConfigMap", "Secret")
    return ctx.journal.query(kinds=kinds, start=moment - _NEAR, end=moment + _NEAR)


def _journal_covers(ctx: EvidenceContext, moment: datetime) -> bool:
    since = ctx.journal.covers_since
    return (since is None or since <= moment) and not ctx.journal.gaps_overlapping(moment, moment)


def _state(ctx: EvidenceContext, ref: ObjectRef) -> str:
    projection = ctx.snapshot.get(ref)
    if isinstance(projection, Node):
        return "Ready" if projection.ready else f"Ready={projection.ready}"
    if isinstance(projection, Workload):
        return f"{projection.ready_replicas}/{projection.desired_replicas} replicas ready"
    if isinstance(projection, Service):
        ready = sum(
            len(item.ready_pods)
            for item in ctx.snapshot.endpoint_slices(ref.namespace)
            if item.service_name == ref.name
        )
        return f"{ready} ready endpoints"
    return "no change recorded"


_CATEGORY_KINDS = {
    Category.NODE_FAILURE: "Node",
    Category.NETWORK_POLICY: "NetworkPolicy",
    Category.QUOTA: "ResourceQuota",
    Category.STORAGE: "PersistentVolumeClaim",
    Category.CONFIG_CHANGE: "ConfigMap",
}


def _unchecked(ctx: EvidenceContext, category: Category) -> str | None:
    """Why a category could not be checked in this context, or None when it could."""
    if category in _METRIC_CATEGORIES and not ctx.data_sources.metrics_available:
        return f"checking {category} needs metrics and Prometheus is not available"
    kind = _CATEGORY_KINDS.get(category)
    if kind is not None and kind in ctx.data_sources.unavailable_kinds:
        return f"{kind} objects could not be read"
    if category == Category.NODE_FAILURE and not ctx.snapshot.nodes():
        return "no Node objects were seen"
    if category in (Category.BAD_ROLLOUT, Category.CONFIG_CHANGE) and not _journal_covers(ctx, ctx.window_start):
        return "the change journal does not cover the whole window"
    return None


def _matching(
    ranked: list[Ranked], subjects: list[ObjectRef], categories: set[Category], changes_only: bool = False
) -> Ranked | None:
    """The best finding about what the hypothesis names; one that blames a change is judged by changes only
    (another finding on the same object, an application error say, neither supports nor clears the change)."""
    names = {subject.name for subject in subjects}
    for item in ranked:  # best first
        candidate = item.candidate
        if changes_only and candidate.change is None:
            continue
        if subjects and (candidate.ref in subjects or (candidate.ref.name in names and candidate.ref.kind != "Node")):
            return item
        if subjects and candidate.change is not None and candidate.change.ref in subjects:
            return item
        if not subjects and candidate.category in categories:
            return item
    return None


def judge(
    hypothesis: str,
    ctx: EvidenceContext,
    ranked: list[Ranked],
    symptoms: list[Symptom],
) -> HypothesisResult:
    def result(verdict: HypothesisVerdict, reason: str) -> HypothesisResult:
        return HypothesisResult(hypothesis, verdict, reason)

    categories = _categories(hypothesis)
    subjects = named_objects(hypothesis, ctx.snapshot)
    if _DATABASE_WORDS.search(hypothesis):
        subjects += [ref for ref in _database_objects(ctx) if ref not in subjects]
    timed: list[ChangeRecord] = []
    for text, moment in clock_times(hypothesis, ctx.now):
        found = _timed_changes(ctx, moment, categories)
        if not found:
            if not _journal_covers(ctx, moment):
                return result(
                    HypothesisVerdict.UNKNOWN, f"the change journal does not cover {text}, so it cannot be checked"
                )
            return result(HypothesisVerdict.RULED_OUT, f"no matching change was recorded within 5 minutes of {text}")
        timed += found
        subjects += [record.ref for record in found if record.ref not in subjects]
    blames_change = bool(subjects) and bool(categories & _CHANGE_CATEGORIES)
    match = _matching(ranked, subjects, categories, changes_only=blames_change)
    if blames_change and match is not None and match.late_after is not None and match.candidate.change is not None:
        change = match.candidate.change
        return result(
            HypothesisVerdict.RULED_OUT,
            f"symptoms began at {short_time(match.late_after)}, before {label(change.ref)} changed at "
            f"{short_time(change.time)}",
        )
    if match is not None and match.confidence >= SUPPORT_THRESHOLD:
        return result(
            HypothesisVerdict.SUPPORTED,
            f"{match.candidate.summary} ({match.candidate.category}, confidence {match.confidence})",
        )
    if match is not None:
        return result(
            HypothesisVerdict.UNKNOWN, f"only weak evidence: {match.candidate.summary} (confidence {match.confidence})"
        )
    if categories & _METRIC_CATEGORIES and not ctx.data_sources.metrics_available and not subjects:
        return result(HypothesisVerdict.UNKNOWN, "it needs metrics and Prometheus is not available")
    failing = {symptom.ref for symptom in symptoms}
    if timed and symptoms:
        first = min((s.onset for s in symptoms if s.onset is not None), default=None)
        change = min(timed, key=lambda record: record.time)
        if first is not None and first < change.time:
            changed = f"{label(change.ref)} changed at {short_time(change.time)}"
            return result(HypothesisVerdict.RULED_OUT, f"symptoms began at {short_time(first)}, before {changed}")
    if subjects:
        if any(subject in failing for subject in subjects):
            return result(HypothesisVerdict.UNKNOWN, "it shows symptoms, but no cause involving it could be confirmed")
        if categories & _METRIC_CATEGORIES and not ctx.data_sources.metrics_available:
            return result(HypothesisVerdict.UNKNOWN, "checking it needs metrics and Prometheus is not available")
        states = "; ".join(f"{label(subject)}: {_state(ctx, subject)}" for subject in subjects[:3])
        return result(HypothesisVerdict.RULED_OUT, f"no failure or change found for it in the window ({states})")
    if categories:
        blind = [reason for category in sorted(categories) if (reason := _unchecked(ctx, category))]
        if blind:
            return result(HypothesisVerdict.UNKNOWN, blind[0])
        return result(HypothesisVerdict.RULED_OUT, "no evidence of " + ", ".join(sorted(categories)) + " in the window")
    return result(HypothesisVerdict.UNKNOWN, "could not relate it to any object, change or category")
