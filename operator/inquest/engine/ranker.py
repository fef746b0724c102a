"""Ranks candidates into calibrated confidences. A cause ranks higher when it explains more of the symptoms,
when it began before them, and when it is close to the target in the graph. Confidence is conservative: 70 or
more needs a dated trigger (a change, a node transition), failure evidence, agreeing timing and a graph path."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from inquest.categories import Category, EvidenceSource
from inquest.engine.candidates import MECHANISM_CATEGORIES, Candidate, Evidence
from inquest.engine.context import EvidenceContext
from inquest.engine.detectors.common import CLOCK_TOLERANCE, label
from inquest.engine.refs import ObjectRef
from inquest.engine.scope import MAX_SCOPE_DEPTH, Scope, path_to
from inquest.engine.symptoms import Symptom
from inquest.engine.timeutil import short_time

NO_EVIDENCE_CAP = 30
NO_FAILURE_CAP = 45
NO_SYMPTOM_CAP = 25
UNGATED_CAP = 65
# A finding that only restates the symptom (the target's own errors, nothing behind them) is a diagnosis by
# exclusion: kept below the threshold at which a root cause counts as identified.
BY_EXCLUSION_CAP = 55
BY_EXCLUSION_CATEGORIES = frozenset({Category.APPLICATION_ERROR})
EXPLAINED_AWAY_PENALTY = 18
DOWNSTREAM_PENALTY = 25
# Certainty is never total: the journal, metrics or Events may all miss something.
MAX_CONFIDENCE = 95
# Categories whose onset is a dated state transition, which counts as a trigger like a change does.
_TRANSITION_CATEGORIES = frozenset({Category.NODE_FAILURE})
# Candidates a change can be the cause of; a failing change candidate that explains them absorbs them. Network
# degradation counts: errors or latency on a Service after a failing change to it are how that change shows.
_ABSORBABLE = MECHANISM_CATEGORIES | {Category.SCHEDULING, Category.NETWORK_DEGRADATION}


@dataclass(frozen=True, slots=True)
class DataGaps:
    events_missing: bool = False
    metrics_missing: bool = False
    journal_incomplete: bool = False
    unavailable_kinds: int = 0


@dataclass(slots=True)
class Ranked:
    candidate: Candidate
    confidence: int
    path: list[str]
    explained: list[Symptom]
    distance: int | None
    reasons: list[str] = field(default_factory=list)
    counter_evidence: list[Evidence] = field(default_factory=list)
    # When it began after the symptoms it could explain: the first of them (it explains none of them).
    late_after: datetime | None = None


def _dedupe(candidates: list[Candidate]) -> list[Candidate]:
    best: dict[tuple[ObjectRef, Category], Candidate] = {}
    for candidate in candidates:
        key = (candidate.ref, candidate.category)
        known = best.get(key)
        if known is None or (candidate.has_failure_evidence, candidate.base_score) > (
            known.has_failure_evidence,
            known.base_score,
        ):
            best[key] = candidate
    return list(best.values())


def _pods(candidate: Candidate) -> set[ObjectRef]:
    return {ref for ref in candidate.explains if ref.kind == "Pod"}


def _absorbs(trigger: Candidate, candidate: Candidate) -> bool:
    """Whether a dated, failing cause (a change, a node going down) accounts for a mechanism candidate: it
    explains the same workload and all its failing pods, and came no later than their failures."""
    if trigger is candidate or candidate.ref not in trigger.explains or not _pods(candidate) <= trigger.explains:
        return False
    trigger_time = trigger.change.time if trigger.change is not None else trigger.onset_time
    onset = candidate.symptom_onset
    return trigger_time is None or onset is None or onset >= trigger_time - CLOCK_TOLERANCE


def _absorb(candidates: list[Candidate]) -> list[Candidate]:
    """Drops mechanism candidates (a crash, an OOM) that a failing trigger candidate accounts for: the trigger is
    the root cause and already carries the mechanism in its evidence."""
    triggers = [c for c in candidates if _is_triggered(c) and c.has_failure_evidence]
    return [
        candidate
        for candidate in candidates
        if not (
            candidate.category in _ABSORBABLE
            and candidate.change is None
            and any(_absorbs(trigger, candidate) for trigger in triggers)
        )
    ]


def _is_triggered(candidate: Candidate) -> bool:
    return candidate.change is not None or (
        candidate.category in _TRANSITION_CATEGORIES and candidate.onset_time is not None
    )


def _is_relevant(candidate: Candidate, scope: Scope) -> bool:
    return scope.contains(candidate.ref) or any(scope.contains(ref) for ref in candidate.explains)


def _distance(candidate: Candidate, scope: Scope) -> int | None:
    direct = scope.distance(candidate.ref)
    if direct is not None or scope.is_open:
        return direct
    through = [d for ref in candidate.explains if (d := scope.distance(ref)) is not None]
    return min(through) + 1 if through else None


def _distance_bonus(distance: int | None, scope: Scope) -> float:
    if scope.is_open or distance is None:
        return 0.0
    if distance == 0:
        return 6.0
    return 4.0 if distance <= 2 else (2.0 if distance <= 4 else 0.0)


def _timing(candidate: Candidate, reachable: list[Symptom]) -> tuple[list[Symptom], bool, Evidence | None]:
    """(the symptoms it can explain, whether its start precedes dated ones, evidence that it came too late).
    A cause cannot explain what was already failing before it began."""
    cause_time = candidate.change.time if candidate.change is not None else candidate.onset_time
    if cause_time is None:
        return reachable, False, None
    earlier = [s for s in reachable if s.onset is not None and s.onset < cause_time - CLOCK_TOLERANCE]
    explained = [symptom for symptom in reachable if symptom not in earlier]
    dated = [s.onset for s in explained if s.onset is not None]
    own = candidate.symptom_onset
    if own is not None and own >= cause_time - CLOCK_TOLERANCE:
        dated.append(own)
    if dated or not earlier:
        return explained, bool(dated), None
    first = min(s.onset for s in earlier if s.onset is not None)
    late = Evidence(
        EvidenceSource.JOURNAL if candidate.change else EvidenceSource.KUBERNETES,
        cause_time,
        candidate.ref,
        f"began at {short_time(cause_time)}, after the first symptom at {short_time(first)}",
    )
    return explained, False, late


@dataclass(slots=True)
class _Scored:
    candidate: Candidate
    score: float
    explained: list[Symptom]
    reach: set[ObjectRef]
    timing_ok: bool
    distance: int | None
    reasons: list[str]
    counter: list[Evidence]
    late_after: datetime | None = None


def _score(
    ctx: EvidenceContext,
    candidate: Candidate,
    symptoms: list[Symptom],
    scope: Scope,
    gaps: DataGaps,
    boosted: set[ObjectRef],
) -> _Scored:
    reasons: list[str] = [f"base {candidate.base_score:g}"]
    reach = {candidate.ref, *candidate.explains, *ctx.graph.dependents_of(candidate.ref, max_depth=MAX_SCOPE_DEPTH)}
    reachable = [symptom for symptom in symptoms if symptom.ref in reach]
    explained, timing_ok, late = _timing(candidate, reachable)
    score = candidate.base_score
    if symptoms:
        weight = 15.0 if candidate.has_failure_evidence else 7.5
        score += weight * len(explained) / len(symptoms)
        reasons.append(f"explains {len(explained)}/{len(symptoms)} symptoms")
    counter = list(candidate.counter_evidence)
    late_after = None
    if timing_ok:
        score += 8
        reasons.append("precedes the symptoms")
    elif late is not None:
        score -= 20
        reasons.append("began after the symptoms")
        counter.append(late)
        late_after = min(s.onset for s in reachable if s.onset is not None)
    distance = _distance(candidate, scope)
    score += _distance_bonus(distance, scope)
    score -= min(25.0, 10.0 * len(candidate.counter_evidence))
    if gaps.events_missing:
        score -= 10
    if gaps.metrics_missing:
        score -= 5
    if gaps.journal_incomplete and candidate.change is None:
        score -= 10
        reasons.append("journal incomplete: a change may be missing")
    if candidate.change is not None and candidate.change.reconstructed:
        score -= 5
    score -= min(9, 3 * gaps.unavailable_kinds)
    if candidate.ref in boosted:
        score += 8
        reasons.append("matches the user's context")
    return _Scored(candidate, score, explained, reach, timing_ok, distance, reasons, counter, late_after)


def _explain_away(scored: list[_Scored]) -> None:
    """Two dated changes that both precede the same symptoms: the later one, closer before them, accounts for
    them; the earlier one, after which nothing went wrong until the later one came, loses its timing credit.
    Only a change tied to the symptoms by time alone can be explained away: one whose own pods fail (Kubernetes
    evidence) is tied to them directly."""
    triggered = [
        item
        for item in scored
        if item.candidate.change is not None and item.timing_ok and item.candidate.has_failure_evidence
    ]
    for item in triggered:
        if any(evidence.source == EvidenceSource.KUBERNETES for evidence in item.candidate.evidence):
            continue
        assert item.candidate.change is not None
        mine = item.candidate.change.time
        dated = [s for s in item.explained if s.onset is not None]
        for other in triggered:
            assert other.candidate.change is not None
            theirs = other.candidate.change.time
            if other is item or other.candidate.ref == item.candidate.ref or theirs <= mine + CLOCK_TOLERANCE:
                continue
            shared = [s for s in dated if s in other.explained]
            if not shared or len(shared) < len(dated):
                continue
            if any(s.onset is not None and s.onset < theirs - CLOCK_TOLERANCE for s in shared):
                continue
            item.score -= EXPLAINED_AWAY_PENALTY
            item.timing_ok = False
            item.reasons.append(f"explained away by the later change to {label(other.candidate.ref)}")
            item.counter.append(
                Evidence(
                    EvidenceSource.JOURNAL,
                    theirs,
                    other.candidate.ref,
                    f"the symptoms began after a later change, to {label(other.candidate.ref)} at "
                    f"{short_time(theirs)}; nothing went wrong between this change at {short_time(mine)} and that one",
                )
            )
            break


def _penalise_downstream(scored: list[_Scored]) -> None:
    """A failing thing that depends on another failing thing that started no later is its consequence."""
    for item in scored:
        for other in scored:
            if other is item or other.candidate.ref == item.candidate.ref or not other.candidate.has_failure_evidence:
                continue
            if item.candidate.ref not in other.reach or other.candidate.ref in item.reach:
                continue
            mine, theirs = item.candidate.symptom_onset, other.candidate.symptom_onset or other.candidate.onset_time
            if mine is None or theirs is None or theirs <= mine + CLOCK_TOLERANCE:
                item.score -= DOWNSTREAM_PENALTY
                item.reasons.append(f"downstream of {label(other.candidate.ref)}")
                break


def _cap(item: _Scored, symptoms: list[Symptom], scope: Scope) -> int:
    candidate, score = item.candidate, item.score
    if not candidate.evidence:
        score = min(score, NO_EVIDENCE_CAP)
    if not candidate.has_failure_evidence:
        score = min(score, NO_FAILURE_CAP)
    if not symptoms:
        score = min(score, NO_SYMPTOM_CAP)
    strong = (
        _is_triggered(candidate)
        and candidate.has_failure_evidence
        and item.timing_ok
        and bool(item.explained)
        and (scope.is_open or item.distance is not None)
    )
    if not strong:
        score = min(score, UNGATED_CAP)
        if candidate.category in BY_EXCLUSION_CATEGORIES:
            score = min(score, BY_EXCLUSION_CAP)
    if candidate.indirect:
        score = min(score, BY_EXCLUSION_CAP)
    return max(0, min(MAX_CONFIDENCE, round(score)))


def rank(
    ctx: EvidenceContext,
    candidates: list[Candidate],
    symptoms: list[Symptom],
    scope: Scope,
    gaps: DataGaps,
    boosted: set[ObjectRef] | None = None,
) -> tuple[list[Ranked], list[Candidate]]:
    """(ranked candidates relevant to the scope, best first; candidates outside the scope)."""
    unique = _absorb(_dedupe(candidates))
    relevant = [candidate for candidate in unique if _is_relevant(candidate, scope)]
    elsewhere = [candidate for candidate in unique if not _is_relevant(candidate, scope)]
    in_scope = [symptom for symptom in symptoms if scope.contains(symptom.ref)]
    scored = [_score(ctx, candidate, in_scope, scope, gaps, boosted or set()) for candidate in relevant]
    _explain_away(scored)
    _penalise_downstream(scored)
    ranked = []
    for item in scored:
        start = item.explained[0].ref if item.explained else item.candidate.ref
        ranked.append(
            Ranked(
                candidate=item.candidate,
                confidence=_cap(item, in_scope, scope),
                path=path_to(ctx, scope, start, item.candidate.ref),
                explained=item.explained,
                distance=item.distance,
                reasons=item.reasons,
                counter_evidence=item.counter,
                late_after=item.late_after,
            )
        )
    ranked.sort(
        key=lambda r: (
            -r.confidence,
            r.candidate.change is None,
            -len(r.explained),
            str(r.candidate.ref),
            r.candidate.category,
        )
    )
    return ranked, elsewhere
