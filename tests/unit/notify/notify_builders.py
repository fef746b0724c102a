"""Investigation statuses and notifier configs for the notification tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from inquest.api import models
from inquest.categories import Category, ConcludedReason, EvidenceSource
from inquest.notify.payloads import InvestigationRef

CONCLUDED_AT = datetime(2026, 11, 25, 14, 39, 12, tzinfo=UTC)
UID = "6f1c2a9e-2b1d-4c55-9d0e-5a7f3c1b2e44"
INVESTIGATION = InvestigationRef("shop", "checkout-failing", UID, "Deployment/shop/checkout")


def ref(kind: str, name: str, namespace: str | None = "shop") -> models.ObjectRef:
    return models.ObjectRef(kind=kind, namespace=namespace, name=name)


def evidence(index: int, detail: str | None = None) -> models.Evidence:
    return models.Evidence(
        source=EvidenceSource.KUBERNETES if index % 2 else EvidenceSource.JOURNAL,
        time=CONCLUDED_AT - timedelta(seconds=10 - index),
        ref=ref("Pod", f"payments-{index}"),
        detail=detail if detail is not None else f"evidence item {index}: container app terminated (exit code 1)",
    )


def finding(
    rank: int = 1,
    confidence: int = 82,
    category: Category = Category.BAD_ROLLOUT,
    name: str = "payments",
    evidence_items: int = 4,
    summary: str | None = None,
    detail: str | None = None,
) -> models.Finding:
    return models.Finding(
        rank=rank,
        ref=ref("Deployment", name),
        category=category,
        confidence=confidence,
        summary=summary or f"Deployment shop/{name} rollout was followed by crashes",
        path=["Deployment/shop/checkout", f"Service/shop/{name}", f"Deployment/shop/{name}"],
        evidence=[evidence(index, detail) for index in range(evidence_items)],
    )


def status(
    verdict: ConcludedReason = ConcludedReason.ROOT_CAUSE_IDENTIFIED,
    findings: list[models.Finding] | None = None,
    summary: str = "Most likely cause (82% confidence): Deployment shop/payments rollout -> crashes.",
    unknowns: list[str] | None = None,
    resolved: bool | None = None,
) -> models.InvestigationStatus:
    found = [finding()] if findings is None else findings
    top = found[0] if found else None
    result = models.InvestigationStatus(
        observed_generation=1,
        summary=summary,
        root_cause=(
            models.RootCause(ref=top.ref, category=top.category, confidence=top.confidence)
            if top is not None and verdict == ConcludedReason.ROOT_CAUSE_IDENTIFIED
            else None
        ),
        findings=found,
        unknowns=["Prometheus is not configured: error rates were not checked."] if unknowns is None else unknowns,
        started_time=CONCLUDED_AT - timedelta(milliseconds=9),
        concluded_time=CONCLUDED_AT,
        duration_millis=9,
    )
    result.set_condition(
        models.Condition(
            type=models.CONCLUDED,
            status=models.ConditionStatus.TRUE,
            reason=verdict,
            message=summary,
            last_transition_time=CONCLUDED_AT,
        )
    )
    if resolved is not None:
        result.set_condition(
            models.Condition(
                type="SymptomsResolved",
                status=models.ConditionStatus.TRUE if resolved else models.ConditionStatus.FALSE,
                reason="SymptomsResolved" if resolved else "SymptomsReturned",
                last_transition_time=CONCLUDED_AT,
            )
        )
    return result


def healthy(resolved: bool | None = True) -> models.InvestigationStatus:
    return status(ConcludedReason.NO_FAULT_FOUND, findings=[], summary="No symptoms remain.", resolved=resolved)


def secret_ref(key: str, name: str = "inquest-notifiers", namespace: str = "inquest-system") -> dict[str, str]:
    return {"namespace": namespace, "name": name, "key": key}


def config_document(**delivery: Any) -> dict[str, Any]:
    return {
        "clusterName": "prod-eu-1",
        "notifiers": [
            {"name": "oncall-slack", "type": "Slack", "secretRef": secret_ref("slack-url")},
            {"name": "pagerduty", "type": "PagerDuty", "secretRef": secret_ref("pagerduty-key")},
            {
                "name": "servicenow",
                "type": "Webhook",
                "secretRef": secret_ref("servicenow-url"),
                "headers": [{"name": "Authorization", "secretRef": secret_ref("servicenow-auth")}],
            },
        ],
        "routes": [
            {"notifiers": ["oncall-slack", "servicenow"], "namespaces": ["shop", "pay-*"]},
            {
                "notifiers": ["pagerduty"],
                "namespaces": ["shop"],
                "verdicts": ["RootCauseIdentified"],
                "minConfidence": 70,
            },
        ],
        "delivery": delivery,
    }
