"""Pure mapping from the engine's Report to the Investigation's status, Events and one-line answers."""

from __future__ import annotations

from datetime import datetime

from inquest.api import models
from inquest.categories import ConcludedReason
from inquest.engine import report as engine_report
from inquest.engine.candidates import Evidence as EngineEvidence
from inquest.engine.refs import ObjectRef as EngineRef

# Event reasons on the Investigation, one per Concluded reason; Investigating posts none.
EVENT_REASONS = {
    ConcludedReason.ROOT_CAUSE_IDENTIFIED: "RootCauseIdentified",
    ConcludedReason.INCONCLUSIVE: "Inconclusive",
    ConcludedReason.NO_FAULT_FOUND: "NoFaultFound",
    ConcludedReason.FAILED: "InvestigationFailed",
}


def api_ref(ref: EngineRef) -> models.ObjectRef:
    return models.ObjectRef(kind=ref.kind, namespace=ref.namespace or None, name=ref.name)


def api_evidence(evidence: EngineEvidence) -> models.Evidence:
    return models.Evidence(
        source=evidence.source,
        time=evidence.time,
        ref=api_ref(evidence.ref) if evidence.ref.name else None,
        detail=evidence.detail[:1024],
        query=evidence.query,
    )


def api_finding(finding: engine_report.Finding) -> models.Finding:
    return models.Finding(
        rank=finding.rank,
        ref=api_ref(finding.ref),
        category=finding.category,
        confidence=finding.confidence,
        summary=finding.summary[:1024],
        path=list(finding.path),
        evidence=[api_evidence(item) for item in finding.evidence[: models.MAX_EVIDENCE]],
    )


def concluded_status(
    previous: models.InvestigationStatus | None,
    report: engine_report.Report,
    generation: int,
    started: datetime,
    concluded: datetime,
) -> models.InvestigationStatus:
    """The status after a round: the report's answer, plus the rounds and conditions carried over."""
    status = models.InvestigationStatus(
        observed_generation=generation,
        conditions=list(previous.conditions) if previous else [],
        summary=report.summary[:1024],
        root_cause=_root_cause(report),
        findings=[api_finding(finding) for finding in report.findings[: models.MAX_FINDINGS]],
        unknowns=capped_unknowns(report.unknowns),
        hypotheses=[
            models.HypothesisResult(text=item.hypothesis[:256], verdict=item.verdict, reason=item.reason[:1024])
            for item in report.hypotheses
        ],
        rounds=list(previous.rounds) if previous else [],
        # Delivery records belong to the Investigation, not to one answer: a new round keeps them.
        notifications=list(previous.notifications) if previous else [],
        started_time=started,
        concluded_time=concluded,
        duration_millis=max(0, round((concluded - started).total_seconds() * 1000)),
    )
    status.set_condition(
        models.Condition(
            type=models.CONCLUDED,
            status=models.ConditionStatus.TRUE,
            reason=report.verdict,
            message=report.summary[:1024],
            last_transition_time=concluded,
            observed_generation=generation,
        )
    )
    status.record_round(
        models.Round(
            generation=generation,
            started_time=started,
            concluded_time=concluded,
            answer=one_line(report.summary),
            reason=report.verdict,
        )
    )
    return status.fit_within()


def failed_status(
    previous: models.InvestigationStatus | None, message: str, generation: int, started: datetime, now: datetime
) -> models.InvestigationStatus:
    status = (previous or models.InvestigationStatus()).model_copy(deep=True)
    status.observed_generation = generation
    status.summary = message[:1024]
    status.started_time = started
    status.concluded_time = now
    status.duration_millis = max(0, round((now - started).total_seconds() * 1000))
    status.set_condition(
        models.Condition(
            type=models.CONCLUDED,
            status=models.ConditionStatus.TRUE,
            reason=ConcludedReason.FAILED,
            message=message[:1024],
            last_transition_time=now,
            observed_generation=generation,
        )
    )
    status.record_round(
        models.Round(
            generation=generation,
            started_time=started,
            concluded_time=now,
            answer=one_line(message),
            reason=ConcludedReason.FAILED,
        )
    )
    return status.fit_within()


def capped_unknowns(unknowns: tuple[str, ...] | list[str]) -> list[str]:
    """At most MAX_UNKNOWNS entries; what does not fit is counted, never silently dropped."""
    texts = [unknown if len(unknown) <= 1024 else unknown[:1023] + "…" for unknown in unknowns]
    if len(texts) <= models.MAX_UNKNOWNS:
        return texts
    kept = texts[: models.MAX_UNKNOWNS - 1]
    return [*kept, f"{len(texts) - len(kept)} more unknowns not shown (status size limit)."]


def _root_cause(report: engine_report.Report) -> models.RootCause | None:
    if report.verdict != ConcludedReason.ROOT_CAUSE_IDENTIFIED or not report.findings:
        return None
    top = report.findings[0]
    return models.RootCause(ref=api_ref(top.ref), category=top.category, confidence=top.confidence)


def status_patch(previous: dict[str, object] | None, status: models.InvestigationStatus) -> dict[str, object]:
    """A merge patch that replaces the status: keys the new status lacks are set to None, which deletes them."""
    new = status.to_api()
    removed = {key: None for key in (previous or {}) if key not in new}
    return {**removed, **new}


def event_message(report: engine_report.Report) -> str:
    if report.findings and report.verdict == ConcludedReason.ROOT_CAUSE_IDENTIFIED:
        top = report.findings[0]
        return f"{top.category} at {top.ref} ({top.confidence}%): {report.summary}"
    return report.summary


def one_line(text: str, limit: int = 256) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


RESOLVED = "SymptomsResolved"
Fingerprint = tuple[str, tuple[tuple[str, str, int], ...]]


def fingerprint(report: engine_report.Report) -> Fingerprint:
    """What counts as a material change of findings: the verdict, and each finding's object, category and
    confidence to the nearest ten."""
    return (
        str(report.verdict),
        tuple((str(f.ref), str(f.category), f.confidence // 10) for f in report.findings),
    )


def fingerprint_of_status(status: models.InvestigationStatus) -> Fingerprint:
    concluded = status.condition(models.CONCLUDED)
    verdict = str(concluded.reason) if concluded else ""
    return (
        verdict,
        tuple(
            (str(EngineRef(f.ref.kind, f.ref.namespace or "", f.ref.name)), str(f.category), f.confidence // 10)
            for f in status.findings
        ),
    )


def refreshed_status(
    previous: models.InvestigationStatus | None,
    report: engine_report.Report,
    generation: int,
    started: datetime,
    concluded: datetime,
) -> models.InvestigationStatus:
    """A Continuous investigation's new answer for the same generation, noting when symptoms resolve or return."""
    before = previous.condition(models.CONCLUDED) if previous else None
    round_started = next(
        (r.started_time for r in (previous.rounds if previous else []) if r.generation == generation), started
    )
    status = concluded_status(previous, report, generation, round_started, concluded)
    was_faulty = before is not None and before.reason in (
        ConcludedReason.ROOT_CAUSE_IDENTIFIED,
        ConcludedReason.INCONCLUSIVE,
    )
    if was_faulty and report.verdict == ConcludedReason.NO_FAULT_FOUND:
        status.set_condition(
            models.Condition(
                type=RESOLVED,
                status=models.ConditionStatus.TRUE,
                reason=RESOLVED,
                message=f"No symptoms remain as of {models.format_timestamp(concluded)}.",
                last_transition_time=concluded,
                observed_generation=generation,
            )
        )
    elif report.verdict != ConcludedReason.NO_FAULT_FOUND and status.condition(RESOLVED) is not None:
        status.set_condition(
            models.Condition(
                type=RESOLVED,
                status=models.ConditionStatus.FALSE,
                reason="SymptomsReturned",
                message=report.summary[:1024],
                last_transition_time=concluded,
                observed_generation=generation,
            )
        )
    return status.fit_within()


def findings_changed_message(before: models.InvestigationStatus | None, after: models.InvestigationStatus) -> str:
    resolved = after.condition(RESOLVED)
    if (
        resolved is not None
        and resolved.status == models.ConditionStatus.TRUE
        and (before is None or before.condition(RESOLVED) is None or before.condition(RESOLVED) != resolved)
    ):
        return f"Symptoms resolved. {after.summary or ''}".strip()
    return f"Findings changed: {after.summary or ''}".strip()
