"""What detectors return: candidate causes with their evidence, before ranking."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from inquest.categories import Category, EvidenceSource
from inquest.engine.journal import ChangeRecord
from inquest.engine.refs import ObjectRef

# Categories that name how something failed; when a change caused the failure, the change's category wins.
MECHANISM_CATEGORIES = frozenset(
    {
        Category.IMAGE_PULL,
        Category.CRASH_LOOP,
        Category.OOM_KILLED,
        Category.PROBE_FAILURE,
        Category.CPU_THROTTLING,
        Category.APPLICATION_ERROR,
    }
)


@dataclass(frozen=True, slots=True)
class Evidence:
    source: EvidenceSource
    time: datetime | None
    ref: ObjectRef
    detail: str
    query: str | None = None


@dataclass(slots=True)
class Candidate:
    ref: ObjectRef
    category: Category
    base_score: float  # the detector's prior for this pattern, 0..100, before ranking
    summary: str
    evidence: list[Evidence] = field(default_factory=list)
    explains: set[ObjectRef] = field(default_factory=set)
    onset_time: datetime | None = None  # when the cause began: the change, the transition
    counter_evidence: list[Evidence] = field(default_factory=list)
    change: ChangeRecord | None = None  # set when the cause is a change
    symptom_onset: datetime | None = None  # earliest failure it is tied to directly
    has_failure_evidence: bool = False  # something actually failed (not only a change or a guess)
    notes: list[str] = field(default_factory=list)  # contradictions and caveats for the report's unknowns
    # Where the failure shows, not what changed (a restart whose pods now fail on what they read): never identified.
    indirect: bool = False

    @property
    def is_mechanism(self) -> bool:
        return self.category in MECHANISM_CATEGORIES

    @property
    def has_trigger(self) -> bool:
        """A dated cause: a change, or a state transition with a time."""
        return self.change is not None or self.onset_time is not None
