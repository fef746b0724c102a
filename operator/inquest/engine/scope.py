"""The part of the cluster an investigation is about: the target, its members (a workload's pods), and what it
depends on, each with its graph distance from the target."""

from __future__ import annotations

from dataclasses import dataclass, field

from inquest.engine.context import EvidenceContext
from inquest.engine.graph import EdgeType
from inquest.engine.refs import ObjectRef

MAX_SCOPE_DEPTH = 12  # edges; one service hop is two (Service -> Pod)
_FRONT_DOOR_EDGES = (EdgeType.SELECTS, EdgeType.ROUTES_TO)


@dataclass(slots=True)
class Scope:
    target: ObjectRef | None
    namespace: str | None = None  # a Namespace target: everything in it
    distances: dict[ObjectRef, int] = field(default_factory=dict)
    entry: dict[ObjectRef, ObjectRef] = field(default_factory=dict)  # where each ref's shortest path starts

    @property
    def is_open(self) -> bool:
        """No target object: every ref is in scope and distance means nothing."""
        return self.target is None or self.namespace is not None

    def contains(self, ref: ObjectRef) -> bool:
        if self.target is None:
            return True
        if self.namespace is not None:
            return ref.namespace in (self.namespace, "")
        return ref in self.distances

    def distance(self, ref: ObjectRef) -> int | None:
        return None if self.is_open else self.distances.get(ref)


def _members(ctx: EvidenceContext, target: ObjectRef) -> set[ObjectRef]:
    """The target's own parts: a workload's ReplicaSets and pods, a Node's pods."""
    if target.kind == "Node":
        return {pod.ref for pod in ctx.snapshot.pods() if pod.node_name == target.name}
    members = {pod.ref for pod in ctx.snapshot.pods_of(target)} if target.kind != "Pod" else set()
    members |= {ref for ref in ctx.snapshot.objects if target in ctx.snapshot.owner_chain(ref)}
    # The Services in front of the target are its front door: their symptoms are its symptoms.
    for ref in {target, *members}:
        members |= {edge.source for edge in ctx.graph.edges_to(ref) if edge.type in _FRONT_DOOR_EDGES}
    return members


def build_scope(ctx: EvidenceContext, target: ObjectRef | None) -> Scope:
    if target is None:
        return Scope(target=None)
    if target.kind == "Namespace":
        return Scope(target=target, namespace=target.name)
    scope = Scope(target=target, distances={target: 0}, entry={target: target})
    starts = [(target, 0)] + [(member, 1) for member in sorted(_members(ctx, target))]
    for start, offset in starts:
        if offset < scope.distances.get(start, MAX_SCOPE_DEPTH + 1):
            scope.distances[start] = offset
            scope.entry[start] = start
        for ref, distance in ctx.graph.depends_on(start, max_depth=MAX_SCOPE_DEPTH).items():
            if distance + offset < scope.distances.get(ref, MAX_SCOPE_DEPTH + 1):
                scope.distances[ref] = distance + offset
                scope.entry[ref] = start
    return scope


def path_to(ctx: EvidenceContext, scope: Scope, start: ObjectRef | None, cause: ObjectRef) -> list[str]:
    """`Kind/namespace/name` strings from the symptom (the target, or `start` when there is none) to the cause."""
    origin = scope.target if scope.target is not None and not scope.is_open else start
    if origin is None:
        return [str(cause)]
    entry = scope.entry.get(cause, origin) if not scope.is_open else origin
    path = ctx.graph.shortest_path(entry, cause, max_depth=MAX_SCOPE_DEPTH)
    if path is None:
        return [str(cause)]  # no known dependency chain: claim none
    if entry != origin:
        path = [origin, *path]
    return [str(ref) for ref in path]
