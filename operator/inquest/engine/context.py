"""Everything a detector may look at: the snapshot, the journal, the graph, the window and metric signals."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from inquest.engine.graph import DependencyGraph
from inquest.engine.graph_builder import build_graph
from inquest.engine.journal import ChangeJournal, ChangeRecord
from inquest.engine.objects import Event, Projection, project
from inquest.engine.refs import ObjectRef
from inquest.engine.snapshot import ClusterSnapshot

if TYPE_CHECKING:
    from inquest.engine.podstate import PodProblem

# A window that ends this close to `now` is "current": present state (a pod waiting right now) is evidence in it.
CURRENT_WINDOW_SLACK = timedelta(minutes=5)


class Signal(StrEnum):
    """Names the Prometheus layer uses for MetricSignal.signal_name (other names are kept but not interpreted)."""

    CPU_THROTTLING = "cpu_throttling"
    CPU_SATURATION = "cpu_saturation"
    MEMORY_SATURATION = "memory_saturation"
    ERROR_RATE = "error_rate"
    LATENCY = "latency"
    REQUEST_RATE = "request_rate"
    NETWORK_ERRORS = "network_errors"
    NETWORK_LATENCY = "network_latency"


class Direction(StrEnum):
    UP = "up"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class MetricSignal:
    """A metric that moved away from its baseline: `magnitude` is the ratio to baseline (3.0 = three times)."""

    ref: ObjectRef
    signal_name: str
    onset_time: datetime
    direction: Direction
    magnitude: float
    query: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class MetricEdge:
    """A call seen in request metrics: `caller` depends on `callee`; `source_label` says where it was seen."""

    caller: ObjectRef
    callee: ObjectRef
    source_label: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class DataSources:
    """What the engine could and could not see; every gap becomes an unknown and lowers confidence."""

    prometheus_configured: bool = False
    prometheus_reachable: bool = False
    events_available: bool = True
    unavailable_kinds: tuple[str, ...] = ()
    services_without_request_metrics: tuple[ObjectRef, ...] = ()
    # Namespaces where Prometheus has no request series at all (said once, not Service by Service).
    namespaces_without_request_metrics: tuple[str, ...] = ()
    # Some queries failed or came back partial (Prometheus warnings): the metrics seen may lack what matters.
    metrics_incomplete: bool = False
    notes: tuple[str, ...] = ()

    @property
    def metrics_available(self) -> bool:
        return self.prometheus_configured and self.prometheus_reachable

    def request_metrics_cover(self, ref: ObjectRef) -> bool:
        """Whether error rates and latency can be seen for this Service (or for anything in its namespace): a
        reachable Prometheus is not enough when it has no request series for it."""
        return (
            self.metrics_available
            and ref.namespace not in self.namespaces_without_request_metrics
            and ref not in self.services_without_request_metrics
        )


@dataclass(slots=True)
class EvidenceContext:
    snapshot: ClusterSnapshot
    journal: ChangeJournal
    window_start: datetime
    window_end: datetime
    now: datetime
    metrics: Sequence[MetricSignal] = ()
    data_sources: DataSources = field(default_factory=DataSources)
    metric_edges: Sequence[MetricEdge] = ()
    # Changes this long before the window still count: a cause precedes its symptoms.
    change_lookback: timedelta = timedelta(0)
    _graph: DependencyGraph | None = None
    _pod_problems: dict[ObjectRef, list[PodProblem]] | None = None

    @classmethod
    def build(
        cls,
        objects: Iterable[Projection | Mapping[str, object]],
        journal: ChangeJournal,
        window_start: datetime,
        window_end: datetime,
        now: datetime | None = None,
        metrics: Sequence[MetricSignal] = (),
        data_sources: DataSources | None = None,
        change_lookback: timedelta = timedelta(0),
        metric_edges: Sequence[MetricEdge] = (),
    ) -> EvidenceContext:
        """From projections or raw JSON objects (projected here); `now` defaults to the window's end."""
        projections = [item if isinstance(item, Projection) else project(item) for item in objects]
        return cls(
            snapshot=ClusterSnapshot.of(item for item in projections if item is not None),
            journal=journal,
            window_start=window_start,
            window_end=window_end,
            now=now or window_end,
            metrics=tuple(metrics),
            data_sources=data_sources or DataSources(),
            change_lookback=change_lookback,
            metric_edges=tuple(metric_edges),
        )

    def with_journal(self, journal: ChangeJournal) -> EvidenceContext:
        """The same context over another journal (the graph and pod analysis do not depend on it)."""
        return EvidenceContext(
            snapshot=self.snapshot,
            journal=journal,
            window_start=self.window_start,
            window_end=self.window_end,
            now=self.now,
            metrics=self.metrics,
            data_sources=self.data_sources,
            change_lookback=self.change_lookback,
            metric_edges=self.metric_edges,
            _graph=self._graph,
            _pod_problems=self._pod_problems,
        )

    @property
    def graph(self) -> DependencyGraph:
        if self._graph is None:
            self._graph = build_graph(self.snapshot)
            for edge in self.metric_edges:
                self._graph.add_metric_edge(edge.caller, edge.callee, edge.source_label, edge.detail)
        return self._graph

    @property
    def window_is_current(self) -> bool:
        return self.window_end >= self.now - CURRENT_WINDOW_SLACK

    def in_window(self, moment: datetime | None) -> bool:
        return moment is not None and self.window_start <= moment <= self.window_end

    def holds_in_window(self, since: datetime | None) -> bool:
        """Whether a present state (a condition true since `since`) is evidence for this window: it began inside
        it, or the window is current so the state holds in it now."""
        return self.in_window(since) or self.window_is_current

    def changes(
        self,
        kinds: Iterable[str] | None = None,
        namespace: str | None = None,
        ref: ObjectRef | None = None,
    ) -> list[ChangeRecord]:
        """Journal records inside the window (plus the change lookback)."""
        return self.journal.query(
            ref=ref,
            namespace=namespace,
            kinds=kinds,
            start=self.window_start - self.change_lookback,
            end=self.window_end,
        )

    def events(
        self,
        ref: ObjectRef | None = None,
        reasons: Iterable[str] | None = None,
        warning_only: bool = False,
    ) -> list[Event]:
        """Events that overlap the window (a series that began earlier but recurred inside it counts)."""
        wanted = set(reasons) if reasons is not None else None
        found = []
        for event in self.snapshot.events:
            if ref is not None and event.involved != ref:
                continue
            if wanted is not None and event.reason not in wanted:
                continue
            if warning_only and not event.is_warning:
                continue
            first, last = event.first_seen, event.last_seen
            if first is None or last is None or last < self.window_start or first > self.window_end:
                continue
            found.append(event)
        return sorted(found, key=lambda event: event.first_seen or self.window_start)

    def signals(self, names: Iterable[str] | None = None, ref: ObjectRef | None = None) -> list[MetricSignal]:
        wanted = set(names) if names is not None else None
        return [
            signal
            for signal in self.metrics
            if self.in_window(signal.onset_time)
            and (wanted is None or signal.signal_name in wanted)
            and (ref is None or signal.ref == ref)
        ]

    def workload_of(self, ref: ObjectRef) -> ObjectRef:
        """The outermost controller of an object; for a pod that is gone, guessed from its generated name."""
        if self.snapshot.get(ref) is not None or ref.kind != "Pod":
            return self.snapshot.top_owner(ref)
        stem = ref.name
        for _ in range(2):  # web-7d9f8-abcde -> ReplicaSet web-7d9f8 -> Deployment web; db-0 -> StatefulSet db
            stem = stem.rsplit("-", 1)[0]
            for kind in ("ReplicaSet", "StatefulSet", "DaemonSet", "Job", "Deployment"):
                candidate = ObjectRef(kind, ref.namespace, stem)
                if self.snapshot.get(candidate) is not None:
                    return self.snapshot.top_owner(candidate)
        return ref

    def pod_problems(self) -> dict[ObjectRef, list[PodProblem]]:
        """What is wrong with each pod inside the window (computed once); healthy pods are absent."""
        if self._pod_problems is None:
            from inquest.engine.podstate import analyse_pods  # podstate reads this context: import late

            self._pod_problems = analyse_pods(self)
        return self._pod_problems
