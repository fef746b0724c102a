"""The dependency graph: typed edges meaning "source depends on target", and paths from symptoms to causes."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from inquest.engine.refs import ObjectRef


class EdgeType(StrEnum):
    OWNED_BY = "ownedBy"  # Pod -> ReplicaSet -> Deployment, Job -> CronJob
    ROUTES_TO = "routesTo"  # Service -> Pod (its endpoints)
    SELECTS = "selects"  # Service -> workload whose pod template its selector matches (holds with zero pods)
    BACKEND = "backend"  # Ingress -> Service
    MOUNTS = "mounts"  # Pod/workload -> ConfigMap/Secret/PVC volume
    ENV_FROM = "envFrom"  # Pod/workload -> ConfigMap/Secret env source
    RUNS_ON = "runsOn"  # Pod -> Node
    CALLS = "calls"  # Pod/workload -> Service addressed in env or args
    DECLARED = "declared"  # the inquest.dev/depends-on annotation
    METRIC = "metric"  # caller -> callee seen in request metrics
    SCALED_BY = "scaledBy"  # workload -> HorizontalPodAutoscaler
    ADMISSION = "admission"  # pod-creating workload -> ResourceQuota/LimitRange of its namespace
    POLICY = "policy"  # Pod/workload -> NetworkPolicy selecting its pods


@dataclass(frozen=True, slots=True)
class Edge:
    source: ObjectRef
    target: ObjectRef
    type: EdgeType
    detail: str = ""
    label: str = ""  # metric edges: where the call was seen
    via_pods: bool = False  # a workload-level edge aggregated from its pods' edges


class DependencyGraph:
    def __init__(self) -> None:
        self._out: dict[ObjectRef, dict[tuple[ObjectRef, EdgeType], Edge]] = {}
        self._in: dict[ObjectRef, dict[tuple[ObjectRef, EdgeType], Edge]] = {}

    def add_node(self, ref: ObjectRef) -> None:
        self._out.setdefault(ref, {})
        self._in.setdefault(ref, {})

    def add_edge(
        self,
        source: ObjectRef,
        target: ObjectRef,
        edge_type: EdgeType,
        detail: str = "",
        label: str = "",
        via_pods: bool = False,
    ) -> Edge:
        """Adds "source depends on target"; the first edge of a given type between two refs wins."""
        self.add_node(source)
        self.add_node(target)
        key = (target, edge_type)
        existing = self._out[source].get(key)
        if existing is not None:
            return existing
        edge = Edge(source, target, edge_type, detail, label, via_pods)
        self._out[source][key] = edge
        self._in[target][(source, edge_type)] = edge
        return edge

    def add_metric_edge(self, caller: ObjectRef, callee: ObjectRef, source_label: str, detail: str = "") -> Edge:
        return self.add_edge(caller, callee, EdgeType.METRIC, detail or f"calls seen in {source_label}", source_label)

    @property
    def nodes(self) -> set[ObjectRef]:
        return set(self._out)

    def __contains__(self, ref: object) -> bool:
        return ref in self._out

    def edges(self) -> list[Edge]:
        return [edge for edges in self._out.values() for edge in edges.values()]

    def edges_from(self, ref: ObjectRef) -> list[Edge]:
        return list(self._out.get(ref, {}).values())

    def edges_to(self, ref: ObjectRef) -> list[Edge]:
        return list(self._in.get(ref, {}).values())

    def dependencies(self, ref: ObjectRef) -> set[ObjectRef]:
        return {edge.target for edge in self.edges_from(ref)}

    def dependents(self, ref: ObjectRef) -> set[ObjectRef]:
        return {edge.source for edge in self.edges_to(ref)}

    def _step(self, ref: ObjectRef, came_up_owner_chain: bool) -> Iterable[tuple[Edge, bool]]:
        # Having climbed from a pod to its Deployment, do not fan out to what its sibling pods use (their nodes).
        for edge in self._out.get(ref, {}).values():
            if edge.via_pods and came_up_owner_chain:
                continue
            yield edge, edge.type == EdgeType.OWNED_BY

    def shortest_path(self, start: ObjectRef, goal: ObjectRef, max_depth: int = 10) -> list[ObjectRef] | None:
        """The shortest chain start -> ... -> goal along "depends on" edges; [start] when they are the same."""
        if start == goal:
            return [start]
        initial = (start, False)
        parents: dict[tuple[ObjectRef, bool], tuple[ObjectRef, bool] | None] = {initial: None}
        queue = deque([(initial, 0)])
        while queue:
            state, depth = queue.popleft()
            if depth >= max_depth:
                continue
            for edge, climbed in self._step(*state):
                next_state = (edge.target, climbed)
                if next_state in parents:
                    continue
                parents[next_state] = state
                if edge.target == goal:
                    path = []
                    cursor: tuple[ObjectRef, bool] | None = next_state
                    while cursor is not None:
                        path.append(cursor[0])
                        cursor = parents[cursor]
                    return path[::-1]
                queue.append((next_state, depth + 1))
        return None

    def path_strings(self, start: ObjectRef, goal: ObjectRef, max_depth: int = 10) -> list[str] | None:
        path = self.shortest_path(start, goal, max_depth)
        return None if path is None else [str(ref) for ref in path]

    def distance(self, start: ObjectRef, goal: ObjectRef, max_depth: int = 10) -> int | None:
        path = self.shortest_path(start, goal, max_depth)
        return None if path is None else len(path) - 1

    def depends_on(self, ref: ObjectRef, max_depth: int = 4) -> dict[ObjectRef, int]:
        """Everything `ref` depends on transitively, with its distance (the workload view included)."""
        distances: dict[ObjectRef, int] = {}
        seen = {(ref, False)}
        queue = deque([((ref, False), 0)])
        while queue:
            state, depth = queue.popleft()
            if depth >= max_depth:
                continue
            for edge, climbed in self._step(*state):
                next_state = (edge.target, climbed)
                if next_state in seen:
                    continue
                seen.add(next_state)
                if edge.target != ref and edge.target not in distances:
                    distances[edge.target] = depth + 1
                queue.append((next_state, depth + 1))
        return distances

    def dependents_of(self, ref: ObjectRef, max_depth: int = 4) -> dict[ObjectRef, int]:
        """Everything that depends on `ref` transitively (who is affected when it breaks), with distance.
        The mirror of `depends_on`: arriving at a workload through one of its pods' edges (its node) does not
        continue down to its other pods."""
        distances: dict[ObjectRef, int] = {}
        seen = {(ref, False)}
        queue = deque([((ref, False), 0)])
        while queue:
            (current, through_pods), depth = queue.popleft()
            if depth >= max_depth:
                continue
            for edge in self._in.get(current, {}).values():
                if through_pods and edge.type == EdgeType.OWNED_BY:
                    continue
                next_state = (edge.source, edge.via_pods or (through_pods and edge.type == EdgeType.OWNED_BY))
                if next_state in seen:
                    continue
                seen.add(next_state)
                if edge.source != ref and edge.source not in distances:
                    distances[edge.source] = depth + 1
                queue.append((next_state, depth + 1))
        return distances
