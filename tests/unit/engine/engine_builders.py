"""Concise builders for Kubernetes objects in their JSON form, and an EvidenceContext around them.

Times are minutes relative to T0 (2024-05-01T10:00:00Z); the default window is T0..T0+30m with now at its end."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from inquest.engine.context import DataSources, Direction, EvidenceContext, MetricSignal
from inquest.engine.journal import ChangeJournal, ChangeRecord
from inquest.engine.objects import project
from inquest.engine.objects.meta import Projection
from inquest.engine.refs import ObjectRef

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
NS = "shop"
Obj = dict[str, Any]


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def ts(minutes: float | None) -> str | None:
    return None if minutes is None else at(minutes).strftime("%Y-%m-%dT%H:%M:%SZ")


def ref(kind: str, name: str, namespace: str = NS) -> ObjectRef:
    return ObjectRef(kind, "" if kind == "Node" else namespace, name)


def meta(
    name: str,
    namespace: str = NS,
    labels: Mapping[str, str] | None = None,
    owner: tuple[str, str] | None = None,
    created: float | None = -600,
    annotations: Mapping[str, str] | None = None,
    resource_version: str = "1",
) -> Obj:
    data: Obj = {"name": name, "namespace": namespace, "uid": f"uid-{name}", "resourceVersion": resource_version}
    if labels:
        data["labels"] = dict(labels)
    if annotations:
        data["annotations"] = dict(annotations)
    if created is not None:
        data["creationTimestamp"] = ts(created)
    if owner:
        data["ownerReferences"] = [{"kind": owner[0], "name": owner[1], "controller": True, "apiVersion": "apps/v1"}]
    data["managedFields"] = [{"manager": "kubectl"}]
    return data


def container(
    name: str = "app",
    image: str = "registry.example.com/app:1.0",
    env: Mapping[str, str | Obj] | None = None,
    ports: Sequence[tuple[str, int]] = (),
    limits: Mapping[str, str] | None = None,
    requests: Mapping[str, str] | None = None,
    readiness: Obj | None = None,
    liveness: Obj | None = None,
    args: Sequence[str] = (),
    command: Sequence[str] = (),
    env_from: Sequence[Obj] = (),
) -> Obj:
    data: Obj = {"name": name, "image": image}
    if env:
        data["env"] = [
            {"name": key, "value": value} if isinstance(value, str) else {"name": key, "valueFrom": value}
            for key, value in env.items()
        ]
    if env_from:
        data["envFrom"] = list(env_from)
    if ports:
        data["ports"] = [{"name": port_name, "containerPort": number} for port_name, number in ports]
    resources: Obj = {}
    if limits:
        resources["limits"] = dict(limits)
    if requests:
        resources["requests"] = dict(requests)
    if resources:
        data["resources"] = resources
    if readiness:
        data["readinessProbe"] = readiness
    if liveness:
        data["livenessProbe"] = liveness
    if args:
        data["args"] = list(args)
    if command:
        data["command"] = list(command)
    return data


def status(
    name: str = "app",
    ready: bool = True,
    restarts: int = 0,
    waiting: tuple[str, str] | None = None,
    running_since: float | None = -500,
    terminated: tuple[str, int, float] | None = None,
    last: tuple[str, int, float] | None = None,
    image: str = "registry.example.com/app:1.0",
) -> Obj:
    state: Obj = {}
    if waiting:
        state["waiting"] = {"reason": waiting[0], "message": waiting[1]}
    elif terminated:
        state["terminated"] = {"reason": terminated[0], "exitCode": terminated[1], "finishedAt": ts(terminated[2])}
    elif running_since is not None:
        state["running"] = {"startedAt": ts(running_since)}
    data: Obj = {"name": name, "ready": ready, "restartCount": restarts, "image": image, "state": state}
    if last:
        data["lastState"] = {"terminated": {"reason": last[0], "exitCode": last[1], "finishedAt": ts(last[2])}}
    data["started"] = "running" in state
    return data


def pod(
    name: str,
    namespace: str = NS,
    labels: Mapping[str, str] | None = None,
    owner: tuple[str, str] | None = None,
    node: str = "node-a",
    phase: str = "Running",
    containers: Sequence[Obj] | None = None,
    statuses: Sequence[Obj] | None = None,
    volumes: Sequence[Obj] = (),
    created: float = -600,
    ready: bool | None = None,
    annotations: Mapping[str, str] | None = None,
    conditions: Sequence[Obj] = (),
    reason: str = "",
    message: str = "",
) -> Obj:
    statuses = list(statuses) if statuses is not None else [status()]
    is_ready = ready if ready is not None else all(item["ready"] for item in statuses)
    spec: Obj = {"containers": list(containers) if containers is not None else [container()]}
    if node:
        spec["nodeName"] = node
    if volumes:
        spec["volumes"] = list(volumes)
    pod_conditions = [{"type": "Ready", "status": "True" if is_ready else "False", "lastTransitionTime": ts(created)}]
    pod_conditions += list(conditions)
    body: Obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta(name, namespace, labels, owner, created, annotations),
        "spec": spec,
        "status": {
            "phase": phase,
            "startTime": ts(created),
            "containerStatuses": statuses,
            "conditions": pod_conditions,
        },
    }
    if reason:
        body["status"]["reason"] = reason
        body["status"]["message"] = message
    return body


def template(
    labels: Mapping[str, str],
    containers: Sequence[Obj] | None = None,
    volumes: Sequence[Obj] = (),
    annotations: Mapping[str, str] | None = None,
    node_selector: Mapping[str, str] | None = None,
    tolerations: Sequence[Obj] = (),
    affinity: Obj | None = None,
) -> Obj:
    spec: Obj = {"containers": list(containers) if containers is not None else [container()]}
    if volumes:
        spec["volumes"] = list(volumes)
    if node_selector:
        spec["nodeSelector"] = dict(node_selector)
    if tolerations:
        spec["tolerations"] = list(tolerations)
    if affinity:
        spec["affinity"] = affinity
    metadata: Obj = {"labels": dict(labels)}
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {"metadata": metadata, "spec": spec}


def deployment(
    name: str,
    namespace: str = NS,
    replicas: int = 2,
    ready: int | None = None,
    containers: Sequence[Obj] | None = None,
    labels: Mapping[str, str] | None = None,
    revision: str = "1",
    conditions: Sequence[Obj] = (),
    annotations: Mapping[str, str] | None = None,
    template_annotations: Mapping[str, str] | None = None,
    volumes: Sequence[Obj] = (),
    kind: str = "Deployment",
    node_selector: Mapping[str, str] | None = None,
    tolerations: Sequence[Obj] = (),
    affinity: Obj | None = None,
) -> Obj:
    pod_labels = dict(labels or {"app": name})
    all_annotations = {"deployment.kubernetes.io/revision": revision, **(annotations or {})}
    ready_count = replicas if ready is None else ready
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": meta(name, namespace, {"app": name}, annotations=all_annotations),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": pod_labels},
            "template": template(
                pod_labels, containers, volumes, template_annotations, node_selector, tolerations, affinity
            ),
        },
        "status": {
            "replicas": replicas,
            "readyReplicas": ready_count,
            "availableReplicas": ready_count,
            "updatedReplicas": replicas,
            "conditions": list(conditions),
        },
    }


def replica_set(
    name: str,
    deployment_name: str,
    revision: str,
    created: float,
    containers: Sequence[Obj] | None = None,
    replicas: int = 2,
    namespace: str = NS,
    conditions: Sequence[Obj] = (),
) -> Obj:
    template_hash = name.rsplit("-", 1)[-1]
    labels = {"app": deployment_name, "pod-template-hash": template_hash}
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": meta(
            name,
            namespace,
            labels,
            ("Deployment", deployment_name),
            created,
            {"deployment.kubernetes.io/revision": revision},
        ),
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "template": template(labels, containers)},
        "status": {"replicas": replicas, "readyReplicas": replicas, "conditions": list(conditions)},
    }


def service(
    name: str,
    namespace: str = NS,
    selector: Mapping[str, str] | None = None,
    ports: Sequence[tuple[str, int, str | int]] = (("http", 8080, "http"),),
    annotations: Mapping[str, str] | None = None,
    service_type: str = "ClusterIP",
) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(name, namespace, annotations=annotations),
        "spec": {
            "type": service_type,
            "selector": dict(selector if selector is not None else {"app": name}),
            "ports": [{"name": port_name, "port": port, "targetPort": target} for port_name, port, target in ports],
        },
    }


def endpoint_slice(
    service_name: str, ready_pods: Sequence[str] = (), not_ready_pods: Sequence[str] = (), namespace: str = NS
) -> Obj:
    endpoints = [
        {"addresses": ["10.0.0.1"], "conditions": {"ready": True}, "targetRef": {"kind": "Pod", "name": name}}
        for name in ready_pods
    ]
    endpoints += [
        {"addresses": ["10.0.0.2"], "conditions": {"ready": False}, "targetRef": {"kind": "Pod", "name": name}}
        for name in not_ready_pods
    ]
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": meta(f"{service_name}-abcde", namespace, {"kubernetes.io/service-name": service_name}),
        "endpoints": endpoints,
        "ports": [{"name": "http", "port": 8080}],
    }


def ingress(name: str, backends: Sequence[tuple[str, str, str, str | int]], namespace: str = NS) -> Obj:
    rules: dict[str, list[Obj]] = {}
    for host, path, service_name, port in backends:
        port_ref = {"number": port} if isinstance(port, int) else {"name": port}
        rules.setdefault(host, []).append(
            {"path": path, "pathType": "Prefix", "backend": {"service": {"name": service_name, "port": port_ref}}}
        )
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": meta(name, namespace),
        "spec": {"rules": [{"host": host, "http": {"paths": paths}} for host, paths in rules.items()]},
    }


def node(
    name: str,
    ready: bool | str = True,
    ready_since: float = -1000,
    pressure: Mapping[str, float] | None = None,
    unschedulable: bool = False,
    taints: Sequence[Obj] = (),
) -> Obj:
    ready_status = ready if isinstance(ready, str) else ("True" if ready else "False")
    conditions = [
        {
            "type": "Ready",
            "status": ready_status,
            "reason": "KubeletReady" if ready_status == "True" else "NodeStatusUnknown",
            "message": "",
            "lastTransitionTime": ts(ready_since),
        }
    ]
    for condition_type in ("DiskPressure", "MemoryPressure", "PIDPressure"):
        since = (pressure or {}).get(condition_type)
        conditions.append(
            {
                "type": condition_type,
                "status": "True" if since is not None else "False",
                "message": f"{condition_type} on node",
                "lastTransitionTime": ts(since if since is not None else -1000),
            }
        )
    spec: Obj = {"unschedulable": unschedulable} if unschedulable else {}
    if taints:
        spec["taints"] = list(taints)
    data = meta(name, "", {"kubernetes.io/hostname": name})
    data.pop("namespace")
    return {"apiVersion": "v1", "kind": "Node", "metadata": data, "spec": spec, "status": {"conditions": conditions}}


def config_map(name: str, data: Mapping[str, str], namespace: str = NS) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(name, namespace), "data": dict(data)}


def secret(name: str, keys: Iterable[str], namespace: str = NS, resource_version: str = "1") -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta(name, namespace, resource_version=resource_version),
        "type": "Opaque",
        "data": {key: "c2VjcmV0" for key in keys},
    }


def pvc(name: str, phase: str = "Bound", storage_class: str = "standard", namespace: str = NS) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": meta(name, namespace),
        "spec": {
            "storageClassName": storage_class,
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}},
        },
        "status": {"phase": phase},
    }


def hpa(
    name: str,
    target: str,
    minimum: int = 1,
    maximum: int = 5,
    current: int = 2,
    conditions: Sequence[Obj] = (),
    namespace: str = NS,
) -> Obj:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta(name, namespace),
        "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": target, "apiVersion": "apps/v1"},
            "minReplicas": minimum,
            "maxReplicas": maximum,
        },
        "status": {"currentReplicas": current, "desiredReplicas": current, "conditions": list(conditions)},
    }


def quota(name: str, hard: Mapping[str, str], used: Mapping[str, str] | None = None, namespace: str = NS) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": meta(name, namespace),
        "spec": {"hard": dict(hard)},
        "status": {"hard": dict(hard), "used": dict(used or {})},
    }


def limit_range(name: str, maximum: Mapping[str, str], namespace: str = NS) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": meta(name, namespace),
        "spec": {"limits": [{"type": "Container", "max": dict(maximum)}]},
    }


def network_policy(
    name: str,
    pod_selector: Mapping[str, str],
    ingress_from: Sequence[Mapping[str, str]] | None = (),
    egress: Sequence[Obj] | None = None,
    namespace: str = NS,
) -> Obj:
    """`ingress_from`: pod label selectors allowed in (empty: deny all ingress; None: no Ingress policy)."""
    spec: Obj = {"podSelector": {"matchLabels": dict(pod_selector)}, "policyTypes": []}
    if ingress_from is not None:
        spec["policyTypes"].append("Ingress")
        spec["ingress"] = [{"from": [{"podSelector": {"matchLabels": dict(labels)}} for labels in ingress_from]}]
        if not ingress_from:
            spec["ingress"] = []
    if egress is not None:
        spec["policyTypes"].append("Egress")
        spec["egress"] = list(egress)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta(name, namespace),
        "spec": spec,
    }


def event(
    kind: str,
    name: str,
    reason: str,
    message: str,
    first: float,
    last: float | None = None,
    count: int = 1,
    event_type: str = "Warning",
    namespace: str = NS,
    api: str = "v1",
) -> Obj:
    involved = {"kind": kind, "name": name, "namespace": "" if kind == "Node" else namespace}
    event_name = f"{name}.{reason}.{first}"
    if api == "v1":
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": meta(event_name, namespace, created=first),
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "type": event_type,
            "count": count,
            "firstTimestamp": ts(first),
            "lastTimestamp": ts(last if last is not None else first),
        }
    return {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": meta(event_name, namespace, created=first),
        "regarding": involved,
        "reason": reason,
        "note": message,
        "type": event_type,
        "eventTime": at(first).strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
        "series": {"count": count, "lastObservedTime": at(last if last is not None else first).isoformat()},
    }


def signal(
    target: ObjectRef,
    name: str,
    onset: float,
    magnitude: float = 3.0,
    direction: Direction = Direction.UP,
) -> MetricSignal:
    return MetricSignal(target, name, at(onset), direction, magnitude, f"query_for_{name}", "")


def projected(*objects: Obj) -> list[Projection]:
    found = [project(obj) for obj in objects]
    return [item for item in found if item is not None]


def journal_of(*records: ChangeRecord, started: float = -1440) -> ChangeJournal:
    journal = ChangeJournal(started_at=at(started))
    for record in records:
        journal.add(record)
    return journal


def change(journal: ChangeJournal, old: Obj | None, new: Obj | None, minutes: float) -> ChangeRecord | None:
    """Records a watch update from JSON objects into the journal."""
    return journal.record(project(old) if old else None, project(new) if new else None, at(minutes))


def context(
    objects: Iterable[Obj],
    journal: ChangeJournal | None = None,
    start: float = 0,
    end: float = 30,
    now: float | None = None,
    metrics: Sequence[MetricSignal] = (),
    sources: DataSources | None = None,
) -> EvidenceContext:
    return EvidenceContext.build(
        list(objects),
        journal if journal is not None else journal_of(),
        at(start),
        at(end),
        at(now if now is not None else end),
        metrics=metrics,
        data_sources=sources or DataSources(prometheus_configured=True, prometheus_reachable=True),
    )


def crashing_status(since: float, exit_code: int = 1, reason: str = "Error", restarts: int = 4) -> Obj:
    return status(
        ready=False,
        restarts=restarts,
        waiting=("CrashLoopBackOff", "back-off 40s restarting failed container"),
        last=(reason, exit_code, since),
    )


def shop_app(
    name: str,
    pods: int = 2,
    env: Mapping[str, str | Obj] | None = None,
    pod_statuses: Sequence[Obj] | None = None,
    rs_hash: str = "abc12",
    created: float = -600,
    node_name: str = "node-a",
    containers: Sequence[Obj] | None = None,
    volumes: Sequence[Obj] = (),
    ready_endpoints: bool | None = None,
) -> list[Obj]:
    """A Deployment, its ReplicaSet, its pods, a Service and an EndpointSlice (ready per pod status)."""
    app_containers = containers or [container(env=env, ports=[("http", 8080)])]
    objects = [
        deployment(name, containers=app_containers, volumes=volumes),
        replica_set(f"{name}-{rs_hash}", name, "1", created, app_containers),
    ]
    ready_names: list[str] = []
    unready_names: list[str] = []
    for index in range(pods):
        pod_status = pod_statuses[index] if pod_statuses and index < len(pod_statuses) else status()
        pod_name = f"{name}-{rs_hash}-p{index}"
        objects.append(
            pod(
                pod_name,
                labels={"app": name, "pod-template-hash": rs_hash},
                owner=("ReplicaSet", f"{name}-{rs_hash}"),
                containers=app_containers,
                statuses=[pod_status],
                created=created,
                node=node_name,
                volumes=volumes,
            )
        )
        is_ready = pod_status["ready"] if ready_endpoints is None else ready_endpoints
        (ready_names if is_ready else unready_names).append(pod_name)
    objects.append(service(name))
    objects.append(endpoint_slice(name, ready_names, unready_names))
    return objects
