"""Small builders for the metrics tests: a shop namespace as a ClusterSnapshot, a plan, and query answers.

Times are minutes relative to START (2024-05-01T10:00:00Z); the window is START..START+30m, the plan's range
starts 30 minutes earlier and has a 15 s step."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from inquest.engine.snapshot import ClusterSnapshot
from inquest.metrics.catalog import DEFAULT_CATALOG, Catalog, Plan, PlannedQuery, plan_queries
from inquest.metrics.signals import QueryOutcome

START = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
END = START + timedelta(minutes=30)
NS = "shop"
Obj = dict[str, Any]
Labels = Mapping[str, str]
SeriesData = tuple[Labels, list[tuple[float, float]]]


def at(minutes: float) -> float:
    return (START + timedelta(minutes=minutes)).timestamp()


def _meta(name: str, labels: Mapping[str, str] | None = None, owner: tuple[str, str] | None = None) -> Obj:
    data: Obj = {"name": name, "namespace": NS, "uid": f"uid-{name}", "creationTimestamp": "2024-05-01T08:00:00Z"}
    if labels:
        data["labels"] = dict(labels)
    if owner:
        data["ownerReferences"] = [{"kind": owner[0], "name": owner[1], "controller": True, "apiVersion": "apps/v1"}]
    return data


def app(name: str, pods: int = 2, ready: bool = True, template_hash: str = "7d9f8c6b5") -> list[Obj]:
    """A Deployment, its ReplicaSet, its pods and a Service selecting them."""
    labels = {"app": name}
    replica_set = f"{name}-{template_hash}"
    objects: list[Obj] = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": _meta(name, labels),
            "spec": {
                "replicas": pods,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "app", "image": "a"}]}},
            },
            "status": {"replicas": pods, "readyReplicas": pods if ready else 0},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": _meta(replica_set, {**labels, "pod-template-hash": template_hash}, ("Deployment", name)),
            "spec": {
                "replicas": pods,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "app", "image": "a"}]}},
            },
            "status": {"replicas": pods},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(name),
            "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
        },
    ]
    for index in range(pods):
        objects.append(pod(f"{replica_set}-pod{index}", labels, replica_set, ready))
    return objects


def pod(name: str, labels: Mapping[str, str], replica_set: str, ready: bool = True, phase: str = "Running") -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _meta(
            name, {**labels, "pod-template-hash": replica_set.rsplit("-", 1)[-1]}, ("ReplicaSet", replica_set)
        ),
        "spec": {"containers": [{"name": "app", "image": "a"}], "nodeName": "node-a"},
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [{"name": "app", "ready": ready, "restartCount": 0, "image": "a", "state": {}}],
        },
    }


def node(name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "uid": f"uid-{name}"}, "status": {}}


def shop(*extra: Obj, ready: bool = True) -> ClusterSnapshot:
    """frontend calls payments; catalog has no metrics of its own."""
    objects = [*app("frontend"), *app("payments", ready=ready), *app("catalog", pods=1), node("node-a"), *extra]
    return ClusterSnapshot.from_objects(objects)


def plan(catalog: Catalog = DEFAULT_CATALOG, families: set[str] | None = None) -> Plan:
    return plan_queries(catalog, families, [NS], START, END)


def curve(planned: Plan, shape: Callable[[float], float], previous: bool = False) -> list[tuple[float, float]]:
    """Samples on the plan's grid; `shape` takes minutes relative to START (a day earlier when previous)."""
    shift = 86400.0 if previous else 0.0
    start = planned.range_start.timestamp()
    count = int((planned.window_end - planned.range_start).total_seconds() // planned.step_seconds) + 1
    moments = [start + index * planned.step_seconds for index in range(count)]
    return [(moment - shift, shape((moment - START.timestamp()) / 60)) for moment in moments]


def step(before: float, after: float, minute: float = 10) -> Callable[[float], float]:
    return lambda moment: before if moment < minute else after


def flat(value: float) -> Callable[[float], float]:
    return lambda _: value


class Answers(dict[PlannedQuery, QueryOutcome]):
    """Answers keyed by planned query; a template without answers gets an empty (successful) one."""

    def __init__(self, planned: Plan, empty: bool = True) -> None:
        super().__init__()
        self.plan = planned
        if empty:
            for query in planned.queries:
                self[query] = QueryOutcome()

    def query(self, template: str, namespace: str | None = NS, previous: bool = False) -> PlannedQuery:
        return next(
            query
            for query in self.plan.queries
            if query.template == template and query.namespace == namespace and query.previous_day == previous
        )

    def add(
        self, template: str, series: Iterable[SeriesData], namespace: str | None = NS, previous: bool = False
    ) -> Answers:
        planned = self.query(template, namespace, previous)
        known: Sequence[tuple[Labels, Sequence[tuple[float, float]]]] = self[planned].series
        self[planned] = QueryOutcome(series=[*known, *series])
        return self
