"""Scores of scenario answers: pure functions of the expectation and the Investigation's status.

For a no-fault control (`none: true`) the right answer is to blame nothing: top1 and top3 count as right when no
finding reaches NO_FAULT_THRESHOLD, and every finding's confidence is a claim that is wrong.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from inquest.lab import stats
from inquest.lab.scenarios.model import Expectation

CONFIDENT = 70
NO_FAULT_THRESHOLD = 50
CALIBRATION_BINS = 5


@dataclass(frozen=True, slots=True)
class RankedFinding:
    kind: str
    namespace: str | None
    name: str
    category: str
    confidence: int

    @property
    def label(self) -> str:
        return f"{self.kind}/{self.name}"


def findings_of(status: dict[str, Any]) -> list[RankedFinding]:
    """The status's findings in rank order."""
    ranked = sorted(status.get("findings") or [], key=lambda finding: int(finding.get("rank", 0)))
    return [
        RankedFinding(
            kind=str(finding["ref"]["kind"]),
            namespace=finding["ref"].get("namespace"),
            name=str(finding["ref"]["name"]),
            category=str(finding["category"]),
            confidence=int(finding["confidence"]),
        )
        for finding in ranked
    ]


def concluded_reason(status: dict[str, Any]) -> str | None:
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Concluded":
            return str(condition.get("reason"))
    return None


@dataclass(slots=True)
class ScenarioScore:
    name: str
    top1: bool
    top3: bool
    category: bool
    verdict: bool
    confident_wrong: bool
    no_fault_false_positive: bool
    must_not_blame_hit: list[str]
    expected_verdict: str
    actual_verdict: str | None
    top_finding: str | None
    top_category: str | None
    top_confidence: int | None
    # For calibration: the top finding's confidence as a probability, and whether it was right (None: no finding).
    calibration_point: tuple[float, bool] | None
    unknowns: int
    latency_millis: float | None = None
    operator_millis: float | None = None
    prometheus_millis: float | None = None
    prometheus_queries: int | None = None
    error: str | None = None
    tags: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    unknown_lines: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "tags": self.tags,
            "top1": self.top1,
            "top3": self.top3,
            "category": self.category,
            "verdict": self.verdict,
            "confidentWrong": self.confident_wrong,
            "noFaultFalsePositive": self.no_fault_false_positive,
            "mustNotBlameHits": self.must_not_blame_hit,
            "expectedVerdict": self.expected_verdict,
            "actualVerdict": self.actual_verdict,
            "topFinding": self.top_finding,
            "topCategory": self.top_category,
            "topConfidence": self.top_confidence,
            "unknowns": self.unknowns,
            "latencyMillis": self.latency_millis,
            "operatorMillis": self.operator_millis,
            "prometheusMillis": self.prometheus_millis,
            "prometheusQueries": self.prometheus_queries,
            "error": self.error,
            "notes": self.notes,
            "findings": self.findings,
            "unknownLines": self.unknown_lines,
        }


def score(name: str, expect: Expectation, namespace: str, status: dict[str, Any]) -> ScenarioScore:
    findings = findings_of(status)
    verdict = concluded_reason(status)

    def is_expected(finding: RankedFinding) -> bool:
        in_scope = finding.namespace in (None, namespace)
        return in_scope and expect.blames_expected(finding.kind, finding.name)

    top = findings[0] if findings else None
    blamed = [
        finding.label
        for finding in findings
        if finding.confidence >= CONFIDENT
        and finding.namespace in (None, namespace)
        and any(match.matches(finding.kind, finding.name) for match in expect.must_not_blame)
    ]
    if expect.none:
        false_positive = any(finding.confidence >= NO_FAULT_THRESHOLD for finding in findings)
        top1 = top3 = category = not false_positive
        top_right = False
    else:
        false_positive = False
        top_right = top is not None and is_expected(top)
        top1 = top_right
        top3 = any(is_expected(finding) for finding in findings[:3])
        category = top_right and top is not None and top.category in {str(value) for value in expect.categories}
    confident_wrong = (top is not None and not top_right and top.confidence >= CONFIDENT) or bool(blamed)
    return ScenarioScore(
        name=name,
        top1=top1,
        top3=top3,
        category=category,
        verdict=verdict == str(expect.verdict),
        confident_wrong=confident_wrong,
        no_fault_false_positive=false_positive,
        must_not_blame_hit=blamed,
        expected_verdict=str(expect.verdict),
        actual_verdict=verdict,
        top_finding=top.label if top else None,
        top_category=top.category if top else None,
        top_confidence=top.confidence if top else None,
        calibration_point=(top.confidence / 100.0, top_right) if top else None,
        unknowns=len(status.get("unknowns") or []),
        findings=[f"{f.label} {f.category} {f.confidence}%" for f in findings],
        unknown_lines=[str(line) for line in status.get("unknowns") or []],
    )


def failed(name: str, expect: Expectation, error: str) -> ScenarioScore:
    """A scenario that could not be run or did not conclude: wrong on every count, never silently dropped."""
    return ScenarioScore(
        name=name,
        top1=False,
        top3=False,
        category=False,
        verdict=False,
        confident_wrong=False,
        no_fault_false_positive=False,
        must_not_blame_hit=[],
        expected_verdict=str(expect.verdict),
        actual_verdict=None,
        top_finding=None,
        top_category=None,
        top_confidence=None,
        calibration_point=None,
        unknowns=0,
        error=error,
    )


def brier(points: list[tuple[float, bool]]) -> float | None:
    if not points:
        return None
    return sum((probability - (1.0 if right else 0.0)) ** 2 for probability, right in points) / len(points)


def calibration_bins(points: list[tuple[float, bool]], bins: int = CALIBRATION_BINS) -> list[tuple[int, float, float]]:
    """Per equal-width bin of confidence: (count, mean confidence, accuracy); empty bins have count 0."""
    grouped: list[list[tuple[float, bool]]] = [[] for _ in range(bins)]
    for probability, right in points:
        index = min(bins - 1, max(0, math.floor(probability * bins)))
        grouped[index].append((probability, right))
    result = []
    for members in grouped:
        if not members:
            result.append((0, 0.0, 0.0))
            continue
        mean = sum(probability for probability, _ in members) / len(members)
        accuracy = sum(1 for _, right in members if right) / len(members)
        result.append((len(members), mean, accuracy))
    return result


def expected_calibration_error(points: list[tuple[float, bool]], bins: int = CALIBRATION_BINS) -> float | None:
    if not points:
        return None
    return sum(
        count / len(points) * abs(accuracy - mean) for count, mean, accuracy in calibration_bins(points, bins) if count
    )


def percentile(values: list[float], fraction: float) -> float | None:
    return stats.percentile(values, fraction) if values else None


def summarize(scores: list[ScenarioScore]) -> dict[str, Any]:
    count = len(scores)

    def rate(attribute: str) -> float | None:
        return round(sum(1 for s in scores if getattr(s, attribute)) / count, 4) if count else None

    points = [s.calibration_point for s in scores if s.calibration_point is not None]
    latencies = [s.latency_millis for s in scores if s.latency_millis is not None]
    brier_score = brier(points)
    ece = expected_calibration_error(points)

    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 1)

    return {
        "scenarios": count,
        "top1": rate("top1"),
        "top3": rate("top3"),
        "category": rate("category"),
        "verdict": rate("verdict"),
        "confidentWrong": sum(1 for s in scores if s.confident_wrong),
        "noFaultFalsePositive": sum(1 for s in scores if s.no_fault_false_positive),
        "brier": None if brier_score is None else round(brier_score, 4),
        "ece": None if ece is None else round(ece, 4),
        "latencyP50Millis": rounded(percentile(latencies, 0.5)),
        "latencyP95Millis": rounded(percentile(latencies, 0.95)),
        "latencyMaxMillis": rounded(max(latencies) if latencies else None),
    }


def prometheus_share(scores: list[ScenarioScore]) -> float | None:
    """The Prometheus part of the operator's own answer time (from its log), over all answered scenarios."""
    pairs = [
        (s.prometheus_millis, s.operator_millis)
        for s in scores
        if s.prometheus_millis is not None and s.operator_millis is not None
    ]
    total = sum(latency for _, latency in pairs)
    return sum(prometheus for prometheus, _ in pairs) / total if total else None
