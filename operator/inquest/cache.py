"""The in-memory picture of the cluster: slim projections, recent Events and the change journal.

Watch handlers feed it; investigations read from it, so the hot path never lists the API server.
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from inquest.engine.journal import ChangeJournal
from inquest.engine.objects import Event, Projection, Workload, project
from inquest.engine.reconstruct import records_from_events, records_from_replicasets
from inquest.engine.refs import ObjectRef

DEFAULT_EVENTS_PER_NAMESPACE = 5000
# All rings together: 20 namespaces' full rings. Without it, memory grows with the number of namespaces.
DEFAULT_MAX_EVENTS = 100_000
DEFAULT_EVENT_RETENTION = timedelta(hours=24)
# How often every ring is checked for expired Events: a ring that receives nothing (its namespace was deleted,
# or went quiet) is otherwise only pruned when its next Event arrives, that is never.
EVENT_SWEEP_INTERVAL = timedelta(minutes=1)


@dataclass
class CacheStatistics:
    objects_by_kind: dict[str, int] = field(default_factory=dict)
    events: int = 0
    # Dropped for any reason: their namespace's ring full, all rings together full, or older than the retention.
    events_evicted: int = 0
    journal_records: int = 0
    journal_evicted: int = 0
    # Namespaces the cache holds anything for (objects or Events); those emptied are let go.
    namespaces: int = 0
    # Watch updates of objects already held (not Events), by kind: the informers' traffic as the cache saw it.
    updates_by_kind: dict[str, int] = field(default_factory=dict)


class ClusterCache:
    """Projections keyed by reference, per-namespace Event rings, and the journal of spec changes."""

    def __init__(
        self,
        journal: ChangeJournal | None = None,
        events_per_namespace: int = DEFAULT_EVENTS_PER_NAMESPACE,
        event_retention: timedelta = DEFAULT_EVENT_RETENTION,
        max_events: int = DEFAULT_MAX_EVENTS,
    ) -> None:
        self.journal = journal if journal is not None else ChangeJournal()
        self.started = datetime.now(UTC)
        self._objects: dict[ObjectRef, Projection] = {}
        self._by_namespace: dict[str, set[ObjectRef]] = defaultdict(set)
        self._events: dict[str, OrderedDict[str, Event]] = defaultdict(OrderedDict)
        self._events_per_namespace = events_per_namespace
        self._event_retention = event_retention
        self._max_events = max_events
        self._event_count = 0
        self._events_evicted = 0
        self._last_sweep: datetime | None = None
        self._updates_by_kind: dict[str, int] = defaultdict(int)
        self.live = False

    def go_live(self) -> None:
        """Called once every resource's initial listing is in: from now on an object seen for the first time
        was created. What happened before inquest watched is rebuilt from ReplicaSet revisions and Events,
        and the unwatched period is recorded as a gap the investigations report."""
        if self.live:
            return
        self.live = True
        replica_sets = [
            item for item in self._objects.values() if isinstance(item, Workload) and item.ref.kind == "ReplicaSet"
        ]
        events = [event for ring in self._events.values() for event in ring.values()]
        records = [*records_from_replicasets(replica_sets), *records_from_events(events, replica_sets)]
        self.journal.seed(records, gap_start=self.started - self.journal.max_age, gap_end=self.started)

    def observe(self, body: Mapping[str, object], now: datetime | None = None) -> None:
        """An object as it now is (from the initial listing or a watch event)."""
        moment = now or datetime.now(UTC)
        projection = project(dict(body))
        if projection is None:
            return
        if isinstance(projection, Event):
            self._observe_event(body, projection, moment)
            return
        ref = projection.ref
        previous = self._objects.get(ref)
        self._objects[ref] = projection
        self._by_namespace[ref.namespace].add(ref)
        if previous is not None:
            self._updates_by_kind[ref.kind] += 1
        # Objects in the initial listing existed before inquest watched: state, not a change.
        if self.live or previous is not None:
            self.journal.record(previous, projection, moment)

    def forget(self, body: Mapping[str, object], now: datetime | None = None) -> None:
        """An object was deleted. Events are kept for the cache's own retention, past their API expiry."""
        projection = project(dict(body))
        if projection is None or isinstance(projection, Event):
            return
        ref = projection.ref
        previous = self._objects.pop(ref, None)
        self._unindex(ref)
        if previous is not None:
            self.journal.record(previous, None, now or datetime.now(UTC))

    def _unindex(self, ref: ObjectRef) -> None:
        """Drops the reference from its namespace's index, and the namespace once it is empty: namespaces come
        and go (one per CI run), and an empty set left for each would grow without end."""
        refs = self._by_namespace.get(ref.namespace)
        if refs is None:
            return
        refs.discard(ref)
        if not refs:
            del self._by_namespace[ref.namespace]

    def forget_missing(
        self, kind: str, namespace: str | None, listed: Iterable[Mapping[str, object]], now: datetime | None = None
    ) -> int:
        """After a relist of `kind` (in one namespace, or everywhere): forgets, as deleted, every cached object of
        that kind the list no longer has; returns how many. Events are history and stay for their retention."""
        if kind == "Event":
            return 0
        present = set()
        for body in listed:
            metadata = body.get("metadata")
            if isinstance(metadata, Mapping):
                present.add((str(metadata.get("namespace") or ""), str(metadata.get("name") or "")))
        stale = [
            ref
            for ref in self._objects
            if ref.kind == kind
            and (namespace is None or ref.namespace == namespace)
            and (ref.namespace, ref.name) not in present
        ]
        moment = now or datetime.now(UTC)
        for ref in stale:
            previous = self._objects.pop(ref)
            self._unindex(ref)
            self.journal.record(previous, None, moment)
        return len(stale)

    def _observe_event(self, body: Mapping[str, object], event: Event, now: datetime) -> None:
        metadata = body.get("metadata")
        uid = str(metadata.get("uid", "")) if isinstance(metadata, Mapping) else ""
        # Filed under the namespace of what they are about: a Node's events live in `default` but concern all.
        ring = self._events[event.involved.namespace]
        key = uid or f"{event.meta.namespace}/{event.meta.name}"
        if ring.pop(key, None) is None:
            self._event_count += 1
        ring[key] = event
        cutoff = now - self._event_retention
        while ring and (len(ring) > self._events_per_namespace or _older_than(next(iter(ring.values())), cutoff)):
            self._drop_oldest(ring)
        while self._event_count > self._max_events:
            # The busiest namespace pays: a quiet namespace's few Events are the rarer evidence.
            self._drop_oldest(max(self._events.values(), key=len))
        if self._last_sweep is None or now - self._last_sweep >= EVENT_SWEEP_INTERVAL:
            self._last_sweep = now
            self.expire_events(now)

    def _drop_oldest(self, ring: OrderedDict[str, Event]) -> None:
        ring.popitem(last=False)
        self._event_count -= 1
        self._events_evicted += 1

    def expire_events(self, now: datetime | None = None) -> int:
        """Drops the Events older than the retention from every ring, and the rings left empty; returns how many.
        Called on its own once a minute (of Event time) as Events arrive."""
        cutoff = (now or datetime.now(UTC)) - self._event_retention
        before = self._events_evicted
        for namespace in list(self._events):
            ring = self._events[namespace]
            while ring and _older_than(next(iter(ring.values())), cutoff):
                self._drop_oldest(ring)
            if not ring:
                del self._events[namespace]
        return self._events_evicted - before

    def projections(self, namespaces: Iterable[str]) -> list[Projection]:
        """Objects in these namespaces, plus every cluster-scoped one (nodes)."""
        wanted = {*namespaces, ""}
        return [self._objects[ref] for namespace in wanted for ref in self._by_namespace.get(namespace, ())]

    def events(self, namespaces: Iterable[str]) -> list[Event]:
        wanted = {*namespaces, ""}
        return [event for namespace in wanted for event in self._events.get(namespace, {}).values()]

    def get(self, ref: ObjectRef) -> Projection | None:
        return self._objects.get(ref)

    def namespaces(self) -> list[str]:
        return sorted(namespace for namespace, refs in self._by_namespace.items() if namespace and refs)

    def statistics(self) -> CacheStatistics:
        by_kind: dict[str, int] = defaultdict(int)
        for ref in self._objects:
            by_kind[ref.kind] += 1
        return CacheStatistics(
            objects_by_kind=dict(by_kind),
            events=self._event_count,
            events_evicted=self._events_evicted,
            journal_records=len(self.journal),
            journal_evicted=self.journal.evicted_count,
            namespaces=len({*self._by_namespace, *self._events} - {""}),
            updates_by_kind=dict(self._updates_by_kind),
        )


def _older_than(event: Event, cutoff: datetime) -> bool:
    last = event.last_seen
    return last is not None and last < cutoff
