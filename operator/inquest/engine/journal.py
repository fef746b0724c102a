"""The change journal: what changed in the spec of which object, when; bounded, and honest about what it lost."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from inquest.engine.diff import FieldChange, diff_fields, spec_fields
from inquest.engine.objects import Job, Projection, Workload
from inquest.engine.refs import ObjectRef
from inquest.engine.timeutil import short_time


class ChangeType(StrEnum):
    CREATED = "Created"
    UPDATED = "Updated"
    DELETED = "Deleted"
    SCALED = "Scaled"


class ChangeSource(StrEnum):
    WATCH = "watch"
    REPLICASET_REVISION = "replicaset-revision"
    EVENT = "event"
    USER = "user"


# Fields whose change alone is a scale, not a rollout.
SCALE_FIELDS = frozenset({"replicas"})


@dataclass(frozen=True, slots=True)
class ChangeRecord:
    time: datetime
    kind: str
    namespace: str
    name: str
    change: ChangeType
    fields: tuple[FieldChange, ...] = ()
    reconstructed: bool = False
    source: ChangeSource = ChangeSource.WATCH
    note: str = ""

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(self.kind, self.namespace, self.name)

    def field(self, path: str) -> FieldChange | None:
        return next((change for change in self.fields if change.path == path), None)

    def fields_under(self, prefix: str) -> list[FieldChange]:
        return [change for change in self.fields if change.path.startswith(prefix)]

    @property
    def is_template_change(self) -> bool:
        return any(change.path.startswith("template.") for change in self.fields)

    def describe(self, limit: int = 3) -> str:
        """`Deployment shop/payments updated at 10:05:00Z: template.containers[app].image: a -> b`."""
        what = f"{self.kind} {self.namespace + '/' if self.namespace else ''}{self.name}"
        text = f"{what} {self.change.value.lower()} at {short_time(self.time)}"
        shown = [change.describe() for change in self.fields if change.path != "data"][:limit]
        if shown:
            more = f" (+{len(self.fields) - len(shown)} more)" if len(self.fields) > len(shown) else ""
            text += ": " + "; ".join(shown) + more
        if self.note:
            text += f" [{self.note}]"
        return text


@dataclass(frozen=True, slots=True)
class JournalGap:
    """A period the journal did not watch (the operator was down); changes then are reconstructed at best."""

    start: datetime
    end: datetime


def _is_tracked(projection: Projection) -> bool:
    """Pods come and go with every rollout; ReplicaSets and Jobs under a controller are that controller's change."""
    if isinstance(projection, Workload | Job) and projection.meta.kind in ("ReplicaSet", "Job"):
        return projection.meta.controller is None
    return spec_fields(projection) is not None


def change_between(old: Projection | None, new: Projection | None, time: datetime) -> ChangeRecord | None:
    """The spec change from `old` to `new` (either None for created/deleted); None when only status moved."""
    subject = new or old
    if subject is None or not _is_tracked(subject):
        return None
    old_fields = spec_fields(old) if old is not None else {}
    new_fields = spec_fields(new) if new is not None else {}
    changes = diff_fields(old_fields or {}, new_fields or {})
    ref = subject.ref
    if old is None:
        change = ChangeType.CREATED
    elif new is None:
        change = ChangeType.DELETED
    elif not changes:
        return None
    elif all(item.path in SCALE_FIELDS for item in changes):
        change = ChangeType.SCALED
    else:
        change = ChangeType.UPDATED
    return ChangeRecord(time, ref.kind, ref.namespace, ref.name, change, tuple(changes))


class ChangeJournal:
    """Records in time order, bounded by age and count. Evictions are counted and `covers_since` says from when
    the journal is complete, so the engine can report what it cannot know instead of assuming nothing changed."""

    def __init__(
        self,
        max_age: timedelta = timedelta(hours=24),
        max_records: int = 10_000,
        started_at: datetime | None = None,
    ) -> None:
        self.max_age = max_age
        self.max_records = max_records
        self.started_at = started_at
        self.evicted_count = 0
        self.gaps: list[JournalGap] = []
        self._records: list[ChangeRecord] = []
        # Records by (kind, namespace, name), built on the first query for one object after a change: detectors
        # ask about every workload of a namespace, and a scan of 10,000 records each was most of an answer's time.
        self._by_object: dict[tuple[str, str, str], list[ChangeRecord]] | None = None
        self._evicted_until: datetime | None = None
        self._latest: datetime | None = None

    def __len__(self) -> int:
        return len(self._records)

    def __bool__(self) -> bool:
        return True  # an empty journal is still a journal (`journal or default` must not replace it)

    def __iter__(self) -> Iterator[ChangeRecord]:
        return iter(list(self._records))

    def record(self, old: Projection | None, new: Projection | None, time: datetime) -> ChangeRecord | None:
        """Diffs a watch update and keeps the record, if it is a spec change."""
        record = change_between(old, new, time)
        if record is not None:
            self.add(record)
        return record

    def add(self, record: ChangeRecord) -> None:
        bisect.insort(self._records, record, key=lambda item: item.time)
        self._by_object = None
        if self._latest is None or record.time > self._latest:
            self._latest = record.time
        self.prune()

    def seed(
        self,
        records: Iterable[ChangeRecord],
        gap_start: datetime | None = None,
        gap_end: datetime | None = None,
    ) -> None:
        """Adds records reconstructed after a restart (marked as such) and the unwatched period they stand for."""
        for record in records:
            self.add(replace(record, reconstructed=True))
        if gap_start is not None and gap_end is not None and gap_start < gap_end:
            self.gaps.append(JournalGap(gap_start, gap_end))

    def prune(self, now: datetime | None = None) -> int:
        """Evicts what is older than max_age (measured from `now` or the newest record) or beyond max_records."""
        reference = max(filter(None, (now, self._latest)), default=None)
        evicted = 0
        while self._records and (
            len(self._records) > self.max_records
            or (reference is not None and self._records[0].time < reference - self.max_age)
        ):
            dropped = self._records.pop(0)
            evicted += 1
            if self._evicted_until is None or dropped.time > self._evicted_until:
                self._evicted_until = dropped.time
        self.evicted_count += evicted
        if evicted:
            self._by_object = None
        return evicted

    @property
    def oldest_time(self) -> datetime | None:
        return self._records[0].time if self._records else None

    @property
    def covers_since(self) -> datetime | None:
        """From when the journal is complete (apart from gaps); None means since forever (nothing lost)."""
        bounds = [moment for moment in (self.started_at, self._evicted_until) if moment is not None]
        return max(bounds) if bounds else None

    @property
    def gap(self) -> JournalGap | None:
        return self.gaps[-1] if self.gaps else None

    def gaps_overlapping(self, start: datetime, end: datetime) -> list[JournalGap]:
        return [gap for gap in self.gaps if gap.start <= end and gap.end >= start]

    def query(
        self,
        ref: ObjectRef | None = None,
        namespace: str | None = None,
        kinds: Iterable[str] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[ChangeRecord]:
        wanted_kinds = set(kinds) if kinds is not None else None
        records = self._records if ref is None else self._of_object(ref)
        low = 0 if start is None else bisect.bisect_left(records, start, key=lambda item: item.time)
        high = len(records) if end is None else bisect.bisect_right(records, end, key=lambda item: item.time)
        return [
            record
            for record in records[low:high]
            if (namespace is None or record.namespace == namespace)
            and (wanted_kinds is None or record.kind in wanted_kinds)
        ]

    def _of_object(self, ref: ObjectRef) -> list[ChangeRecord]:
        """The object's records, in time order."""
        if self._by_object is None:
            index: dict[tuple[str, str, str], list[ChangeRecord]] = {}
            for record in self._records:
                index.setdefault((record.kind, record.namespace, record.name), []).append(record)
            self._by_object = index
        return self._by_object.get((ref.kind, ref.namespace, ref.name), [])

    def for_object(self, ref: ObjectRef) -> list[ChangeRecord]:
        return self.query(ref=ref)

    def between(self, start: datetime, end: datetime) -> list[ChangeRecord]:
        return self.query(start=start, end=end)

    def in_namespace(self, namespace: str) -> list[ChangeRecord]:
        return self.query(namespace=namespace)

    def copy(self) -> ChangeJournal:
        """An independent journal with the same records, bounds and counters (for per-investigation additions)."""
        clone = ChangeJournal(self.max_age, self.max_records, self.started_at)
        clone.evicted_count = self.evicted_count
        clone.gaps = list(self.gaps)
        clone._records = list(self._records)
        clone._evicted_until = self._evicted_until
        clone._latest = self._latest
        return clone
