"""The engine's result types; a thin mapping elsewhere turns them into the Investigation's status."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from inquest.categories import Category, ConcludedReason, HypothesisVerdict
from inquest.engine.candidates import Evidence
from inquest.engine.refs import ObjectRef

MAX_FINDINGS = 10
MAX_EVIDENCE = 8


@dataclass(frozen=True, slots=True)
class Finding:
    rank: int
    ref: ObjectRef
    category: Category
    confidence: int  # 0..100
    summary: str
    path: tuple[str, ...]  # `Kind/namespace/name` from the symptom to this cause
    evidence: tuple[Evidence, ...]


@dataclass(frozen=True, slots=True)
class HypothesisResult:
    hypothesis: str
    verdict: HypothesisVerdict
    reason: str


@dataclass(frozen=True, slots=True)
class Report:
    verdict: ConcludedReason  # RootCauseIdentified, Inconclusive or NoFaultFound
    summary: str
    findings: tuple[Finding, ...] = ()
    unknowns: tuple[str, ...] = ()
    hypotheses: tuple[HypothesisResult, ...] = ()
    target: ObjectRef | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    symptoms: tuple[str, ...] = field(default=())  # what was seen wrong, for the status and the Events
