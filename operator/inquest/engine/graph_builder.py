"""Builds the dependency graph from a snapshot: owners, endpoints, ingress backends, mounts and env sources,
nodes, service addresses in env/args, the depends-on annotation, HPAs, quotas and network policies."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from inquest.engine.addresses import find_service_addresses
from inquest.engine.graph import DependencyGraph, EdgeType
from inquest.engine.objects import CronJob, Job, PodTemplate, Projection, Workload
from inquest.engine.objects.meta import DEPENDS_ON_ANNOTATION
from inquest.engine.refs import ObjectRef, node_ref
from inquest.engine.snapshot import ClusterSnapshot

_POD_CREATORS = ("ReplicaSet", "StatefulSet", "DaemonSet", "Job", "Deployment", "CronJob")
_DECLARED_TARGET_KINDS = ("Service", "Deployment", "StatefulSet", "DaemonSet")


def build_graph(snapshot: ClusterSnapshot) -> DependencyGraph:
    graph = DependencyGraph()
    for projection in snapshot:
        graph.add_node(projection.ref)
        _add_owner_edge(graph, projection)
    for pod in snapshot.pods():
        _add_template_edges(graph, snapshot, pod.ref, pod.spec, pod.meta.annotations)
        if pod.node_name:
            graph.add_edge(pod.ref, node_ref(pod.node_name), EdgeType.RUNS_ON)
    controllers: list[Workload | Job | CronJob] = [*snapshot.workloads(), *snapshot.jobs(), *snapshot.cron_jobs()]
    for controller in controllers:
        _add_template_edges(graph, snapshot, controller.ref, controller.template, controller.meta.annotations)
        _add_admission_edges(graph, snapshot, controller)
    _add_service_edges(graph, snapshot)
    for ingress in snapshot.ingresses():
        for backend in ingress.backends:
            service = ObjectRef("Service", ingress.meta.namespace, backend.service_name)
            graph.add_edge(
                ingress.ref, service, EdgeType.BACKEND, f"{backend.host}{backend.path} -> :{backend.service_port}"
            )
    for hpa in snapshot.hpas():
        target = ObjectRef(hpa.target_kind, hpa.meta.namespace, hpa.target_name)
        graph.add_edge(target, hpa.ref, EdgeType.SCALED_BY)
    _add_workload_view(graph, snapshot)
    return graph


def _add_owner_edge(graph: DependencyGraph, projection: Projection) -> None:
    owner = projection.meta.controller
    if owner is not None:
        graph.add_edge(projection.ref, ObjectRef(owner.kind, projection.meta.namespace, owner.name), EdgeType.OWNED_BY)


def _add_template_edges(
    graph: DependencyGraph,
    snapshot: ClusterSnapshot,
    source: ObjectRef,
    template: PodTemplate,
    annotations: Mapping[str, str],
) -> None:
    namespace = source.namespace
    for volume in template.volumes:
        target = ObjectRef(volume.source_kind, namespace, volume.source_name)
        graph.add_edge(source, target, EdgeType.MOUNTS, f"volume {volume.volume}")
    for kind in ("ConfigMap", "Secret"):
        mounted = {volume.source_name for volume in template.volumes if volume.source_kind == kind}
        for name in template.referenced(kind) - mounted:
            graph.add_edge(source, ObjectRef(kind, namespace, name), EdgeType.ENV_FROM)
    own_services = _services_selecting(snapshot, namespace, template.labels)
    for addressed, detail in _addressed_services(snapshot, namespace, template):
        if addressed not in own_services:
            graph.add_edge(source, addressed, EdgeType.CALLS, detail)
    declared = {**template.annotations, **annotations}
    for target in _declared_dependencies(snapshot, namespace, declared.get(DEPENDS_ON_ANNOTATION, "")):
        graph.add_edge(source, target, EdgeType.DECLARED, DEPENDS_ON_ANNOTATION)
    for policy in snapshot.network_policies(namespace):
        if policy.selects(namespace, template.labels):
            graph.add_edge(source, policy.ref, EdgeType.POLICY, f"selects pods({policy.pod_selector})")


def _services_selecting(snapshot: ClusterSnapshot, namespace: str, labels: Mapping[str, str]) -> set[ObjectRef]:
    return snapshot.services_selecting_labels(namespace, labels)


def _addressed_services(
    snapshot: ClusterSnapshot, namespace: str, template: PodTemplate
) -> Iterable[tuple[ObjectRef, str]]:
    for container in template.all_containers:
        texts = [(env.value, env.name) for env in container.env if env.value]
        texts += [(part, "") for part in (*container.command, *container.args)]
        for value, variable in texts:
            for service_namespace, name in find_service_addresses(value, namespace, variable):
                ref = ObjectRef("Service", service_namespace, name)
                if snapshot.get(ref) is not None:
                    where = f"env {variable}" if variable else "args"
                    yield ref, f"{where} of container {container.name}"


def _declared_dependencies(snapshot: ClusterSnapshot, namespace: str, annotation: str) -> list[ObjectRef]:
    """Names in `inquest.dev/depends-on` ("a,b" or "ns/name"), resolved to a Service or workload that exists."""
    found = []
    for entry in filter(None, (part.strip() for part in annotation.split(","))):
        target_namespace, _, name = entry.rpartition("/")
        for kind in _DECLARED_TARGET_KINDS:
            ref = ObjectRef(kind, target_namespace or namespace, name)
            if snapshot.get(ref) is not None:
                found.append(ref)
                break
    return found


def _add_admission_edges(
    graph: DependencyGraph, snapshot: ClusterSnapshot, controller: Workload | Job | CronJob
) -> None:
    if controller.meta.kind not in _POD_CREATORS:
        return
    namespace = controller.meta.namespace
    for admission in (*snapshot.quotas(namespace), *snapshot.limit_ranges(namespace)):
        graph.add_edge(controller.ref, admission.ref, EdgeType.ADMISSION, "admits the pods it creates")


def _add_service_edges(graph: DependencyGraph, snapshot: ClusterSnapshot) -> None:
    slices_by_service: dict[ObjectRef, list[tuple[str, bool]]] = {}
    for endpoint_slice in snapshot.endpoint_slices():
        owning_service = ObjectRef("Service", endpoint_slice.meta.namespace, endpoint_slice.service_name)
        members = slices_by_service.setdefault(owning_service, [])
        members.extend((pod_name, True) for pod_name in endpoint_slice.ready_pods)
        members.extend((pod_name, False) for pod_name in endpoint_slice.not_ready_pods)
    for service in snapshot.services():
        for target in _declared_dependencies(
            snapshot, service.meta.namespace, service.meta.annotations.get(DEPENDS_ON_ANNOTATION, "")
        ):
            graph.add_edge(service.ref, target, EdgeType.DECLARED, DEPENDS_ON_ANNOTATION)
        if service.ref in slices_by_service:
            for pod_name, ready in slices_by_service[service.ref]:
                pod_ref = ObjectRef("Pod", service.meta.namespace, pod_name)
                graph.add_edge(
                    service.ref, pod_ref, EdgeType.ROUTES_TO, "ready endpoint" if ready else "not-ready endpoint"
                )
        else:
            for pod in snapshot.pods(service.meta.namespace):
                if service.selects(pod.meta.labels):
                    graph.add_edge(service.ref, pod.ref, EdgeType.ROUTES_TO, "selector match (no EndpointSlice seen)")
        for workload in snapshot.workloads(service.meta.namespace):
            if workload.meta.kind != "ReplicaSet" and service.selects(workload.template.labels):
                graph.add_edge(service.ref, workload.ref, EdgeType.SELECTS, "selector matches its pod template")


def _add_workload_view(graph: DependencyGraph, snapshot: ClusterSnapshot) -> None:
    """A workload depends on whatever its pods depend on (their nodes, and anything not in its template)."""
    for pod in snapshot.pods():
        owners = snapshot.owner_chain(pod.ref)
        for edge in graph.edges_from(pod.ref):
            if edge.type == EdgeType.OWNED_BY:
                continue
            for owner in owners:
                graph.add_edge(owner, edge.target, edge.type, f"through pod {pod.meta.name}", edge.label, via_pods=True)
