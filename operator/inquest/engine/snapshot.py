"""A point-in-time set of projections, indexed for the lookups the graph and the detectors make."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from inquest.engine.objects import (
    ConfigMap,
    CronJob,
    EndpointSlice,
    Event,
    HorizontalPodAutoscaler,
    Ingress,
    Job,
    LimitRange,
    NetworkPolicy,
    Node,
    PersistentVolumeClaim,
    Pod,
    Projection,
    ResourceQuota,
    Secret,
    Service,
    Workload,
    project,
)
from inquest.engine.objects.meta import JsonObject
from inquest.engine.objects.pods import TEMPLATE_HASH_LABEL
from inquest.engine.refs import ObjectRef

ProjectionT = TypeVar("ProjectionT", bound=Projection)


@dataclass(slots=True)
class ClusterSnapshot:
    objects: dict[ObjectRef, Projection] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    _by_type: dict[type, list[Projection]] = field(default_factory=lambda: defaultdict(list))
    _owner_chains: dict[ObjectRef, list[ObjectRef]] = field(default_factory=dict)
    # Indexes built on first use (a namespace of 1,000 pods asks them hundreds of times); add() drops them.
    _pods_by_owner: dict[ObjectRef, list[Pod]] | None = None
    _services_by_labels: dict[tuple[str, frozenset[tuple[str, str]]], set[ObjectRef]] = field(default_factory=dict)
    _pods_by_labels: dict[str, dict[frozenset[tuple[str, str]], list[Pod]]] = field(default_factory=dict)

    @classmethod
    def of(cls, projections: Iterable[Projection]) -> ClusterSnapshot:
        snapshot = cls()
        for projection in projections:
            snapshot.add(projection)
        return snapshot

    @classmethod
    def from_objects(cls, objects: Iterable[JsonObject]) -> ClusterSnapshot:
        """Projects raw JSON objects; kinds the engine does not model are skipped."""
        return cls.of(projection for projection in map(project, objects) if projection is not None)

    def add(self, projection: Projection) -> None:
        if isinstance(projection, Event):
            self.events.append(projection)
            return
        self._owner_chains.clear()
        self._pods_by_owner = None
        self._services_by_labels.clear()
        self._pods_by_labels.clear()
        previous = self.objects.get(projection.ref)
        if previous is not None:
            self._by_type[type(previous)].remove(previous)
        self.objects[projection.ref] = projection
        self._by_type[type(projection)].append(projection)

    def get(self, ref: ObjectRef) -> Projection | None:
        return self.objects.get(ref)

    def get_as(self, ref: ObjectRef, kind: type[ProjectionT]) -> ProjectionT | None:
        found = self.objects.get(ref)
        return found if isinstance(found, kind) else None

    def all(self, kind: type[ProjectionT], namespace: str | None = None) -> list[ProjectionT]:
        found = [item for item in self._by_type.get(kind, ()) if isinstance(item, kind)]
        if namespace is None:
            return found
        return [item for item in found if item.meta.namespace == namespace]

    def __iter__(self) -> Iterator[Projection]:
        return iter(self.objects.values())

    # Typed shortcuts for the kinds read most often.
    def pods(self, namespace: str | None = None) -> list[Pod]:
        return self.all(Pod, namespace)

    def workloads(self, namespace: str | None = None, kind: str | None = None) -> list[Workload]:
        return [item for item in self.all(Workload, namespace) if kind is None or item.meta.kind == kind]

    def services(self, namespace: str | None = None) -> list[Service]:
        return self.all(Service, namespace)

    def endpoint_slices(self, namespace: str | None = None) -> list[EndpointSlice]:
        return self.all(EndpointSlice, namespace)

    def ingresses(self, namespace: str | None = None) -> list[Ingress]:
        return self.all(Ingress, namespace)

    def nodes(self) -> list[Node]:
        return self.all(Node)

    def config_maps(self, namespace: str | None = None) -> list[ConfigMap]:
        return self.all(ConfigMap, namespace)

    def secrets(self, namespace: str | None = None) -> list[Secret]:
        return self.all(Secret, namespace)

    def pvcs(self, namespace: str | None = None) -> list[PersistentVolumeClaim]:
        return self.all(PersistentVolumeClaim, namespace)

    def jobs(self, namespace: str | None = None) -> list[Job]:
        return self.all(Job, namespace)

    def cron_jobs(self, namespace: str | None = None) -> list[CronJob]:
        return self.all(CronJob, namespace)

    def hpas(self, namespace: str | None = None) -> list[HorizontalPodAutoscaler]:
        return self.all(HorizontalPodAutoscaler, namespace)

    def quotas(self, namespace: str | None = None) -> list[ResourceQuota]:
        return self.all(ResourceQuota, namespace)

    def limit_ranges(self, namespace: str | None = None) -> list[LimitRange]:
        return self.all(LimitRange, namespace)

    def network_policies(self, namespace: str | None = None) -> list[NetworkPolicy]:
        return self.all(NetworkPolicy, namespace)

    def namespaces(self) -> set[str]:
        return {ref.namespace for ref in self.objects if ref.namespace}

    def owner_chain(self, ref: ObjectRef) -> list[ObjectRef]:
        """The controllers above an object, nearest first (Pod -> ReplicaSet -> Deployment). A ReplicaSet that
        is not in the snapshot is still named, and its Deployment inferred from the pod-template-hash suffix."""
        cached = self._owner_chains.get(ref)
        if cached is not None:
            return cached
        chain: list[ObjectRef] = []
        current = self.objects.get(ref)
        seen = {ref}
        while current is not None:
            owner = current.meta.controller
            if owner is None:
                break
            owner_ref = ObjectRef(owner.kind, ref.namespace, owner.name)
            if owner_ref in seen:
                break
            seen.add(owner_ref)
            chain.append(owner_ref)
            parent = self.objects.get(owner_ref)
            if parent is None and owner.kind == "ReplicaSet":
                template_hash = current.meta.labels.get(TEMPLATE_HASH_LABEL, "")
                suffix = f"-{template_hash}"
                if template_hash and owner.name.endswith(suffix):
                    chain.append(ObjectRef("Deployment", ref.namespace, owner.name.removesuffix(suffix)))
            current = parent
        self._owner_chains[ref] = chain
        return chain

    def top_owner(self, ref: ObjectRef) -> ObjectRef:
        """The outermost controller (the Deployment of a pod), or the object itself when it has none."""
        chain = self.owner_chain(ref)
        return chain[-1] if chain else ref

    def pods_of(self, ref: ObjectRef) -> list[Pod]:
        """The pods an object controls, directly or through ReplicaSets/Jobs; a Pod returns itself."""
        if ref.kind == "Pod":
            pod = self.get_as(ref, Pod)
            return [pod] if pod else []
        if self._pods_by_owner is None:
            index: dict[ObjectRef, list[Pod]] = defaultdict(list)
            for pod in self.pods():
                for owner in self.owner_chain(pod.ref):
                    index[owner].append(pod)
            self._pods_by_owner = index
        return list(self._pods_by_owner.get(ref, ()))

    def pods_by_labels(self, namespace: str) -> dict[frozenset[tuple[str, str]], list[Pod]]:
        """A namespace's pods grouped by their label sets: a selector is tested once per set, not once per pod."""
        groups = self._pods_by_labels.get(namespace)
        if groups is None:
            groups = defaultdict(list)
            for pod in self.pods(namespace):
                groups[frozenset(pod.meta.labels.items())].append(pod)
            self._pods_by_labels[namespace] = groups
        return groups

    def services_selecting_labels(self, namespace: str, labels: Mapping[str, str]) -> set[ObjectRef]:
        """The Services of a namespace whose selector matches these pod labels."""
        key = (namespace, frozenset(labels.items()))
        found = self._services_by_labels.get(key)
        if found is None:
            found = {service.ref for service in self.services(namespace) if service.selects(labels)}
            self._services_by_labels[key] = found
        return set(found)
