"""The entry point: from an EvidenceContext and the user's question to a Report."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from inquest.categories import Category, ConcludedReason
from inquest.engine.candidates import Candidate, Evidence
from inquest.engine.context import EvidenceContext
from inquest.engine.detectors import run_detectors
from inquest.engine.detectors.common import label
from inquest.engine.hints import Hints, parse_hints, question_target
from inquest.engine.hypotheses import judge
from inquest.engine.journal import ChangeRecord, ChangeSource, ChangeType
from inquest.engine.objects import Pod
from inquest.engine.ranker import Ranked, rank
from inquest.engine.refs import ObjectRef
from inquest.engine.report import MAX_EVIDENCE, MAX_FINDINGS, Finding, Report
from inquest.engine.scope import Scope, build_scope
from inquest.engine.symptoms import Symptom, collect_symptoms
from inquest.engine.timeutil import iso
from inquest.engine.unknowns import data_gaps

IDENTIFIED_THRESHOLD = 60
MIN_REPORTED_CONFIDENCE = 10
AMBIGUITY_MARGIN = 5
# A spec update with no visible failure scores 20; creations (10) and restart-only rollouts (5) score less. An
# update is a risk that only request metrics could clear.
UNCONFIRMED_RISK_SCORE = 20
_STATED_CHANGE_MATCH = timedelta(minutes=10)

_ACTIONS: dict[Category, str] = {
    Category.BAD_ROLLOUT: "roll it back (kubectl rollout undo) or fix the change",
    Category.CONFIG_CHANGE: "revert the configuration change, then restart its consumers",
    Category.SERVICE_MISCONFIG: "fix the selector or targetPort so it routes to ready pods",
    Category.NETWORK_POLICY: "allow the blocked traffic in the policy or remove it",
    Category.QUOTA: "raise the quota or lower the requests of the refused pods",
    Category.SCALED_TO_ZERO: "scale it back up",
    Category.IMAGE_PULL: "check the image name, tag and pull credentials",
    Category.CRASH_LOOP: "read the previous container logs (kubectl logs --previous)",
    Category.OOM_KILLED: "raise the memory limit or find what grew",
    Category.PROBE_FAILURE: "check the probe endpoint and its timing",
    Category.CPU_THROTTLING: "raise or remove the CPU limit",
    Category.SCHEDULING: "free capacity or relax the scheduling constraints",
    Category.STORAGE: "check the claim's storage class and provisioner",
    Category.NODE_FAILURE: "check the node; its pods need to run elsewhere",
    Category.CAPACITY: "add capacity (raise the HPA maximum or the replicas)",
    Category.NETWORK_DEGRADATION: "check the network path between the affected workloads",
    Category.APPLICATION_ERROR: "read the application's logs and traces",
}


def _apply_stated_changes(ctx: EvidenceContext, hints: Hints) -> tuple[EvidenceContext, set[ObjectRef], list[str]]:
    """Boosts journal records matching what the user says they changed; adds the change when the journal lacks it."""
    boosted: set[ObjectRef] = set()
    notes: list[str] = []
    added: list[ChangeRecord] = []
    for stated in hints.stated_changes:
        start = stated.time - _STATED_CHANGE_MATCH if stated.time else ctx.window_start - ctx.change_lookback
        end = stated.time + _STATED_CHANGE_MATCH if stated.time else ctx.window_end
        recorded = [ref for ref in stated.candidates if ctx.journal.query(ref=ref, start=start, end=end)]
        if recorded:
            boosted.update(recorded)
            continue
        boosted.add(stated.subject)
        if stated.time is None:
            notes.append(f'The journal has no record of the change described as "{stated.text}", and it names no time.')
            continue
        notes.append(f'The journal has no record of "{stated.text}"; it is taken from the user\'s context, unverified.')
        added.append(
            ChangeRecord(
                time=stated.time,
                kind=stated.subject.kind,
                namespace=stated.subject.namespace,
                name=stated.subject.name,
                change=ChangeType.UPDATED,
                reconstructed=True,
                source=ChangeSource.USER,
                note=f'stated by the user: "{stated.text}"',
            )
        )
    if not added:
        return ctx, boosted, notes
    journal = ctx.journal.copy()
    for record in added:
        journal.add(record)
    return ctx.with_journal(journal), boosted, notes


def _excluded_nodes_pods(ctx: EvidenceContext, hints: Hints) -> set[ObjectRef]:
    nodes = {ref.name for ref in hints.excluded if ref.kind == "Node"}
    return {pod.ref for pod in ctx.snapshot.all(Pod) if pod.node_name in nodes}


def _finding(rank_number: int, ranked: Ranked) -> Finding:
    candidate = ranked.candidate
    against = [
        Evidence(item.source, item.time, item.ref, f"Against: {item.detail}", item.query)
        for item in ranked.counter_evidence[:2]
    ]
    evidence = candidate.evidence[: MAX_EVIDENCE - len(against)] + against
    return Finding(
        rank=rank_number,
        ref=candidate.ref,
        category=candidate.category,
        confidence=ranked.confidence,
        summary=candidate.summary,
        path=tuple(ranked.path),
        evidence=tuple(evidence),
    )


def _summary(
    verdict: ConcludedReason,
    findings: list[Finding],
    symptoms: list[Symptom],
    target: ObjectRef | None,
    ctx: EvidenceContext,
) -> str:
    subject = label(target) if target is not None else "the cluster"
    if verdict == ConcludedReason.NO_FAULT_FOUND:
        return (
            f"No abnormal state or failing change was found for {subject} between "
            f"{iso(ctx.window_start)} and {iso(ctx.window_end)}."
        )
    if verdict == ConcludedReason.ROOT_CAUSE_IDENTIFIED:
        top = findings[0]
        action = _ACTIONS.get(top.category, "investigate it")
        return f"Most likely cause ({top.confidence}% confidence): {top.summary}; {action}."
    if not symptoms:
        lead = f": {findings[0].summary}" if findings else ""
        return f"No failure was observed for {subject}, but a risky change could not be checked without metrics{lead}."
    seen = "; ".join(f"{label(symptom.ref)} {symptom.detail}" for symptom in symptoms[:2])
    if findings:
        top = findings[0]
        return f"No cause confirmed for {subject} ({seen}); strongest lead ({top.confidence}%): {top.summary}."
    return f"No cause found for {subject} ({seen}); see the unknowns for what could not be checked."


def _ambiguity(ranked: list[Ranked]) -> str | None:
    if len(ranked) < 2:
        return None
    first, second = ranked[0], ranked[1]
    if first.candidate.ref == second.candidate.ref or first.confidence - second.confidence > AMBIGUITY_MARGIN:
        return None
    if second.candidate.ref in first.candidate.explains or first.candidate.ref in second.candidate.explains:
        return None
    return (
        f"Two causes are about equally likely: {label(first.candidate.ref)} ({first.candidate.category}, "
        f"{first.confidence}) and {label(second.candidate.ref)} ({second.candidate.category}, {second.confidence})."
    )


def _elsewhere_note(elsewhere: list[Candidate], target: ObjectRef | None) -> str | None:
    failing = [candidate for candidate in elsewhere if candidate.has_failure_evidence]
    if target is None or not failing:
        return None
    names = ", ".join(f"{label(c.ref)} ({c.category})" for c in failing[:3])
    more = f" and {len(failing) - 3} more" if len(failing) > 3 else ""
    return f"Also abnormal, but not on the dependency path of {label(target)}: {names}{more}."


def _unconfirmable(ctx: EvidenceContext, ranked: list[Ranked]) -> list[str]:
    """Risky changes (spec updates, not creations or restarts) whose effect only request metrics could show, when
    the Services they touch have none (no Prometheus, or a Prometheus without request series for them): then
    "no fault" would be a guess, so the verdict stays Inconclusive and says why."""
    sources = ctx.data_sources
    found = []
    for item in ranked:
        candidate = item.candidate
        if candidate.base_score < UNCONFIRMED_RISK_SCORE or candidate.change is None:
            continue
        touched = [ref for ref in sorted({candidate.ref, *candidate.explains}) if ref.kind == "Service"]
        if not all(sources.request_metrics_cover(ref) for ref in touched or [candidate.ref]):
            found.append(f"{candidate.summary}; without request metrics its effect could not be confirmed.")
    return found


def _scope(ctx: EvidenceContext, target: ObjectRef | None, unknowns: list[str]) -> Scope:
    """The target's scope; a target that is gone widens to its namespace, and the report says so."""
    if target is not None and target.kind != "Namespace" and ctx.snapshot.get(target) is None:
        unknowns.append(f"{label(target)} was not found; the whole namespace {target.namespace} was searched instead.")
        return build_scope(ctx, ObjectRef("Namespace", "", target.namespace) if target.namespace else None)
    return build_scope(ctx, target)


def investigate(
    context: EvidenceContext,
    target: ObjectRef | None,
    question: str,
    hypotheses: Sequence[str],
    user_context: Sequence[str],
) -> Report:
    hints = parse_hints(question, user_context, context.snapshot, context.now)
    if target is None:
        target = question_target(question, context.snapshot)
    ctx, boosted, stated_notes = _apply_stated_changes(context, hints)
    gaps, unknowns = data_gaps(ctx)
    unknowns += hints.notes + stated_notes
    ignored = hints.excluded | _excluded_nodes_pods(ctx, hints)
    if hints.excluded:
        unknowns.append("Excluded as the user asked: " + ", ".join(label(ref) for ref in sorted(hints.excluded)) + ".")
    candidates = [candidate for candidate in run_detectors(ctx) if candidate.ref not in ignored]
    symptoms = [symptom for symptom in collect_symptoms(ctx) if symptom.ref not in ignored]
    scope = _scope(ctx, target, unknowns)
    ranked, elsewhere = rank(ctx, candidates, symptoms, scope, gaps, boosted)
    in_scope = [symptom for symptom in symptoms if scope.contains(symptom.ref)]
    abnormal = bool(in_scope) or any(item.candidate.has_failure_evidence for item in ranked)
    unconfirmable = _unconfirmable(ctx, ranked) if not abnormal else []
    unknowns += unconfirmable
    reported = [item for item in ranked if item.confidence >= MIN_REPORTED_CONFIDENCE][:MAX_FINDINGS]
    for note in (_ambiguity(reported), _elsewhere_note(elsewhere, target)):
        if note:
            unknowns.append(note)
    for item in reported:
        unknowns.extend(note for note in item.candidate.notes if note not in unknowns)
    findings = [_finding(number, item) for number, item in enumerate(reported, start=1)]
    if not abnormal and not unconfirmable:
        verdict, findings = ConcludedReason.NO_FAULT_FOUND, []
    elif findings and findings[0].confidence >= IDENTIFIED_THRESHOLD:
        verdict = ConcludedReason.ROOT_CAUSE_IDENTIFIED
    else:
        verdict = ConcludedReason.INCONCLUSIVE
    return Report(
        verdict=verdict,
        summary=_summary(verdict, findings, in_scope, target, ctx),
        findings=tuple(findings),
        unknowns=tuple(unknowns),
        hypotheses=tuple(judge(hypothesis, ctx, ranked, in_scope) for hypothesis in hypotheses),
        target=target,
        window_start=ctx.window_start,
        window_end=ctx.window_end,
        symptoms=tuple(f"{label(symptom.ref)}: {symptom.detail}" for symptom in in_scope[:20]),
    )
