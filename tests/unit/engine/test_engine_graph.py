from __future__ import annotations

from pathlib import Path

import pytest
from engine_builders import (
    Obj,
    at,
    config_map,
    container,
    deployment,
    endpoint_slice,
    hpa,
    ingress,
    network_policy,
    node,
    pod,
    projected,
    quota,
    ref,
    replica_set,
    service,
)

from inquest.engine.addresses import find_service_addresses
from inquest.engine.context import EvidenceContext, MetricEdge
from inquest.engine.graph import DependencyGraph, EdgeType
from inquest.engine.graph_builder import build_graph
from inquest.engine.journal import ChangeJournal
from inquest.engine.refs import ObjectRef
from inquest.engine.snapshot import ClusterSnapshot


def _graph(*objects: Obj) -> DependencyGraph:
    return build_graph(ClusterSnapshot.of(projected(*objects)))


def _edge_types(graph: DependencyGraph, source: ObjectRef, target: ObjectRef) -> set[EdgeType]:
    return {edge.type for edge in graph.edges_from(source) if edge.target == target}


def _web_pod(**overrides: object) -> Obj:
    arguments: dict[str, object] = {
        "labels": {"app": "web", "pod-template-hash": "abc12"},
        "owner": ("ReplicaSet", "web-abc12"),
    }
    arguments.update(overrides)
    return pod("web-abc12-p0", **arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "variable", "expected"),
    [
        ("payments:8080", "", {("shop", "payments")}),
        ("payments.shop.svc.cluster.local", "", {("shop", "payments")}),
        ("http://payments.shop:8080/x", "", {("shop", "payments")}),
        ("payments.shop.svc", "", {("shop", "payments")}),
        ("http://payments.other:8080", "", {("other", "payments")}),
        ("--upstream=payments:8080 --cache=redis.cache.svc:6379", "", {("shop", "payments"), ("cache", "redis")}),
        ("payments", "PAYMENTS_HOST", {("shop", "payments")}),
        ("payments", "MODE", set()),
        ("http://gateway:8080/payments", "", {("shop", "gateway")}),
        ("10.0.0.1:8080", "", set()),
        ("https://api.example.com/v1", "", set()),
        ("postgres://app:[REDACTED]@db.shop:5432/orders", "", {("shop", "db")}),
    ],
)
def test_address_detection(text: str, variable: str, expected: set[tuple[str, str]]) -> None:
    assert find_service_addresses(text, "shop", variable) == expected


def test_owner_edges() -> None:
    graph = _graph(_web_pod(), replica_set("web-abc12", "web", "1", -10), deployment("web"))
    assert _edge_types(graph, ref("Pod", "web-abc12-p0"), ref("ReplicaSet", "web-abc12")) == {EdgeType.OWNED_BY}
    assert _edge_types(graph, ref("ReplicaSet", "web-abc12"), ref("Deployment", "web")) == {EdgeType.OWNED_BY}
    assert graph.path_strings(ref("Pod", "web-abc12-p0"), ref("Deployment", "web")) == [
        "Pod/shop/web-abc12-p0",
        "ReplicaSet/shop/web-abc12",
        "Deployment/shop/web",
    ]


def test_job_to_cronjob_owner_edge() -> None:
    job = {
        "kind": "Job",
        "metadata": {
            "name": "nightly-1",
            "namespace": "shop",
            "ownerReferences": [{"kind": "CronJob", "name": "nightly", "controller": True}],
        },
        "spec": {"template": {"spec": {"containers": [container()]}}},
    }
    graph = _graph(job)
    assert _edge_types(graph, ref("Job", "nightly-1"), ref("CronJob", "nightly")) == {EdgeType.OWNED_BY}


def test_service_routes_to_endpoint_slice_pods() -> None:
    graph = _graph(
        service("web"),
        endpoint_slice("web", ["web-abc12-p0"], ["web-abc12-p1"]),
        _web_pod(),
        pod("web-abc12-p1", labels={"app": "web"}),
        pod("stray", labels={"app": "web"}),
    )
    routed = {edge.target.name: edge.detail for edge in graph.edges_from(ref("Service", "web"))}
    assert routed == {"web-abc12-p0": "ready endpoint", "web-abc12-p1": "not-ready endpoint"}


def test_service_routes_by_selector_without_endpoint_slices() -> None:
    graph = _graph(service("web"), _web_pod(), pod("other", labels={"app": "api"}))
    assert {edge.target.name for edge in graph.edges_from(ref("Service", "web"))} == {"web-abc12-p0"}


def test_ingress_backend_edge() -> None:
    graph = _graph(ingress("shop", [("shop.example.com", "/", "web", 8080)]), service("web"))
    assert _edge_types(graph, ref("Ingress", "shop"), ref("Service", "web")) == {EdgeType.BACKEND}


def test_mount_and_env_edges() -> None:
    graph = _graph(
        _web_pod(
            containers=[
                container(
                    env={"MODE": {"configMapKeyRef": {"name": "web-env", "key": "mode"}}},
                    env_from=[{"secretRef": {"name": "web-secret"}}],
                )
            ],
            volumes=[
                {"name": "cfg", "configMap": {"name": "web-files"}},
                {"name": "data", "persistentVolumeClaim": {"claimName": "web-data"}},
            ],
        )
    )
    source = ref("Pod", "web-abc12-p0")
    assert _edge_types(graph, source, ref("ConfigMap", "web-files")) == {EdgeType.MOUNTS}
    assert _edge_types(graph, source, ref("PersistentVolumeClaim", "web-data")) == {EdgeType.MOUNTS}
    assert _edge_types(graph, source, ref("ConfigMap", "web-env")) == {EdgeType.ENV_FROM}
    assert _edge_types(graph, source, ref("Secret", "web-secret")) == {EdgeType.ENV_FROM}


def test_node_edge() -> None:
    graph = _graph(_web_pod(node="node-b"), node("node-b"))
    assert _edge_types(graph, ref("Pod", "web-abc12-p0"), ref("Node", "node-b")) == {EdgeType.RUNS_ON}


def test_address_edges_only_to_existing_services() -> None:
    graph = _graph(
        _web_pod(
            containers=[
                container(
                    env={"GATEWAY_URL": "http://gateway:8080", "GHOST": "ghost:80", "PAYMENTS_HOST": "payments"},
                    args=["--cache=redis.cache.svc.cluster.local:6379"],
                )
            ]
        ),
        service("gateway"),
        service("payments"),
        service("redis", namespace="cache"),
    )
    calls = {edge.target for edge in graph.edges_from(ref("Pod", "web-abc12-p0")) if edge.type == EdgeType.CALLS}
    assert calls == {ref("Service", "gateway"), ref("Service", "payments"), ObjectRef("Service", "cache", "redis")}


def test_own_service_address_is_not_a_dependency() -> None:
    graph = _graph(_web_pod(containers=[container(env={"SELF_URL": "http://web:8080"})]), service("web"))
    assert EdgeType.CALLS not in _edge_types(graph, ref("Pod", "web-abc12-p0"), ref("Service", "web"))


def test_declared_dependencies_annotation() -> None:
    graph = _graph(
        _web_pod(annotations={"inquest.dev/depends-on": "payments, cache/redis, missing"}),
        service("payments"),
        deployment("redis", namespace="cache"),
    )
    declared = {edge.target for edge in graph.edges_from(ref("Pod", "web-abc12-p0")) if edge.type == EdgeType.DECLARED}
    assert declared == {ref("Service", "payments"), ObjectRef("Deployment", "cache", "redis")}


def test_declared_annotation_on_a_deployment_and_a_service() -> None:
    graph = _graph(
        deployment("web", annotations={"inquest.dev/depends-on": "payments"}),
        service("payments"),
        service("front", annotations={"inquest.dev/depends-on": "web"}),
        deployment("web2", template_annotations={"inquest.dev/depends-on": "payments"}),
    )
    assert EdgeType.DECLARED in _edge_types(graph, ref("Deployment", "web"), ref("Service", "payments"))
    assert EdgeType.DECLARED in _edge_types(graph, ref("Deployment", "web2"), ref("Service", "payments"))
    assert EdgeType.DECLARED in _edge_types(graph, ref("Service", "front"), ref("Deployment", "web"))


def test_metric_edges() -> None:
    graph = DependencyGraph()
    edge = graph.add_metric_edge(ref("Service", "web"), ref("Service", "payments"), "istio")
    assert (edge.type, edge.label) == (EdgeType.METRIC, "istio")
    assert graph.dependencies(ref("Service", "web")) == {ref("Service", "payments")}
    assert graph.dependents(ref("Service", "payments")) == {ref("Service", "web")}


def test_hpa_quota_and_policy_edges() -> None:
    graph = _graph(
        deployment("web"),
        replica_set("web-abc12", "web", "1", -10),
        _web_pod(),
        hpa("web", "web"),
        quota("compute", {"pods": "10"}),
        network_policy("web-ingress", {"app": "web"}),
    )
    assert _edge_types(graph, ref("Deployment", "web"), ref("HorizontalPodAutoscaler", "web")) == {EdgeType.SCALED_BY}
    assert _edge_types(graph, ref("ReplicaSet", "web-abc12"), ref("ResourceQuota", "compute")) == {EdgeType.ADMISSION}
    assert _edge_types(graph, ref("Deployment", "web"), ref("ResourceQuota", "compute")) == {EdgeType.ADMISSION}
    assert _edge_types(graph, ref("Pod", "web-abc12-p0"), ref("NetworkPolicy", "web-ingress")) == {EdgeType.POLICY}
    assert _edge_types(graph, ref("Deployment", "web"), ref("NetworkPolicy", "web-ingress")) == {EdgeType.POLICY}


def test_template_edges_exist_without_pods() -> None:
    graph = _graph(
        deployment("web", replicas=0, volumes=[{"name": "cfg", "configMap": {"name": "web-config"}}]),
        config_map("web-config", {"a": "1"}),
    )
    assert _edge_types(graph, ref("Deployment", "web"), ref("ConfigMap", "web-config")) == {EdgeType.MOUNTS}


def _two_node_app() -> DependencyGraph:
    return _graph(
        deployment("web"),
        replica_set("web-abc12", "web", "1", -10),
        _web_pod(node="node-a"),
        pod("web-abc12-p1", labels={"app": "web"}, owner=("ReplicaSet", "web-abc12"), node="node-b"),
        node("node-a"),
        node("node-b"),
    )


def test_workload_view_depends_on_what_its_pods_depend_on() -> None:
    graph = _two_node_app()
    workload_nodes = {
        edge.target for edge in graph.edges_from(ref("Deployment", "web")) if edge.type == EdgeType.RUNS_ON
    }
    assert workload_nodes == {ref("Node", "node-a"), ref("Node", "node-b")}
    assert all(edge.via_pods for edge in graph.edges_from(ref("Deployment", "web")) if edge.type == EdgeType.RUNS_ON)
    deps = graph.depends_on(ref("Deployment", "web"))
    assert deps[ref("Node", "node-a")] == 1


def test_a_pod_does_not_depend_on_its_siblings_nodes() -> None:
    graph = _two_node_app()
    deps = graph.depends_on(ref("Pod", "web-abc12-p0"), max_depth=6)
    assert ref("Node", "node-a") in deps
    assert ref("Deployment", "web") in deps
    assert ref("Node", "node-b") not in deps
    assert graph.shortest_path(ref("Pod", "web-abc12-p0"), ref("Node", "node-b")) is None
    affected = graph.dependents_of(ref("Node", "node-b"), max_depth=6)
    assert ref("Pod", "web-abc12-p1") in affected
    assert ref("Deployment", "web") in affected
    assert ref("Pod", "web-abc12-p0") not in affected


def test_paths_from_symptom_to_cause_across_services() -> None:
    graph = _graph(
        ingress("shop", [("shop.example.com", "/", "web", 8080)]),
        service("web"),
        _web_pod(containers=[container(env={"PAYMENTS_URL": "http://payments:8080"})]),
        service("payments"),
        pod(
            "payments-1", labels={"app": "payments"}, volumes=[{"name": "c", "configMap": {"name": "payments-config"}}]
        ),
    )
    assert graph.path_strings(ref("Ingress", "shop"), ref("ConfigMap", "payments-config")) == [
        "Ingress/shop/shop",
        "Service/shop/web",
        "Pod/shop/web-abc12-p0",
        "Service/shop/payments",
        "Pod/shop/payments-1",
        "ConfigMap/shop/payments-config",
    ]
    assert graph.distance(ref("Service", "web"), ref("Service", "web")) == 0
    assert graph.shortest_path(ref("ConfigMap", "payments-config"), ref("Ingress", "shop")) is None
    assert graph.shortest_path(ref("Ingress", "shop"), ref("ConfigMap", "payments-config"), max_depth=3) is None
    limited = graph.depends_on(ref("Ingress", "shop"), max_depth=2)
    assert set(limited) == {ref("Service", "web"), ref("Pod", "web-abc12-p0")}
    assert ref("Ingress", "shop") in graph.dependents_of(ref("ConfigMap", "payments-config"), max_depth=6)


def test_cluster_scoped_refs_print_without_namespace() -> None:
    assert str(ref("Node", "node-b")) == "Node/node-b"
    assert ObjectRef.parse("Node/node-b") == ref("Node", "node-b")
    assert ObjectRef.parse("Service/shop/web") == ref("Service", "web")
    with pytest.raises(ValueError, match="not an object reference"):
        ObjectRef.parse("nonsense")


def test_service_selects_workloads_even_without_pods() -> None:
    graph = _graph(
        service("payments"), deployment("payments", replicas=0), replica_set("payments-abc12", "payments", "1", -5)
    )
    assert _edge_types(graph, ref("Service", "payments"), ref("Deployment", "payments")) == {EdgeType.SELECTS}
    assert _edge_types(graph, ref("Service", "payments"), ref("ReplicaSet", "payments-abc12")) == set()


def test_every_edge_type_is_built_somewhere() -> None:
    builder_source = (Path(__file__).resolve().parents[3] / "operator/inquest/engine/graph_builder.py").read_text()
    built = {edge_type for edge_type in EdgeType if f"EdgeType.{edge_type.name}" in builder_source}
    assert built == set(EdgeType) - {EdgeType.METRIC}  # metric edges come from the Prometheus layer


def test_metric_edges_from_the_context_join_the_graph() -> None:
    objects = [service("web"), service("payments")]
    ctx = EvidenceContext.build(
        objects,
        ChangeJournal(),
        at(0),
        at(30),
        metric_edges=[MetricEdge(ref("Service", "web"), ref("Service", "payments"), "linkerd")],
    )
    assert ctx.graph.path_strings(ref("Service", "web"), ref("Service", "payments")) == [
        "Service/shop/web",
        "Service/shop/payments",
    ]
