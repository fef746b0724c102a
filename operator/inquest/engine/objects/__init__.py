"""Slim, immutable projections of Kubernetes objects, built by pure functions from their JSON form."""

from __future__ import annotations

from collections.abc import Callable

from inquest.engine.objects.cluster import (
    ConfigMap,
    LimitRange,
    Node,
    PersistentVolumeClaim,
    ResourceQuota,
    Secret,
    project_config_map,
    project_limit_range,
    project_node,
    project_pvc,
    project_resource_quota,
    project_secret,
)
from inquest.engine.objects.events import Event, project_event
from inquest.engine.objects.meta import Condition, JsonObject, LabelSelector, Meta, OwnerRef, Projection, text
from inquest.engine.objects.network import (
    EndpointSlice,
    Ingress,
    NetworkPolicy,
    Service,
    project_endpoint_slice,
    project_ingress,
    project_network_policy,
    project_service,
)
from inquest.engine.objects.pods import ContainerSpec, ContainerStatus, Pod, PodTemplate, project_pod
from inquest.engine.objects.workloads import (
    WORKLOAD_KINDS,
    CronJob,
    HorizontalPodAutoscaler,
    Job,
    Workload,
    project_cron_job,
    project_hpa,
    project_job,
    project_workload,
)

PROJECTORS: dict[str, Callable[[JsonObject], Projection]] = {
    "Pod": project_pod,
    "Deployment": project_workload,
    "StatefulSet": project_workload,
    "DaemonSet": project_workload,
    "ReplicaSet": project_workload,
    "Job": project_job,
    "CronJob": project_cron_job,
    "HorizontalPodAutoscaler": project_hpa,
    "Service": project_service,
    "EndpointSlice": project_endpoint_slice,
    "Ingress": project_ingress,
    "NetworkPolicy": project_network_policy,
    "Node": project_node,
    "ConfigMap": project_config_map,
    "Secret": project_secret,
    "PersistentVolumeClaim": project_pvc,
    "ResourceQuota": project_resource_quota,
    "LimitRange": project_limit_range,
    "Event": project_event,
}


def project(obj: JsonObject, kind: str | None = None) -> Projection | None:
    """The projection of one object in its JSON form (as a watch event delivers it); None for other kinds.
    Pass `kind` when the object lacks it (list responses drop `kind` from their items)."""
    resolved = kind or text(obj.get("kind"))
    projector = PROJECTORS.get(resolved)
    if projector is None:
        return None
    if not obj.get("kind"):
        obj = {**obj, "kind": resolved}
    return projector(obj)


__all__ = [
    "PROJECTORS",
    "WORKLOAD_KINDS",
    "Condition",
    "ConfigMap",
    "ContainerSpec",
    "ContainerStatus",
    "CronJob",
    "EndpointSlice",
    "Event",
    "HorizontalPodAutoscaler",
    "Ingress",
    "Job",
    "LabelSelector",
    "LimitRange",
    "Meta",
    "NetworkPolicy",
    "Node",
    "OwnerRef",
    "PersistentVolumeClaim",
    "Pod",
    "PodTemplate",
    "Projection",
    "ResourceQuota",
    "Secret",
    "Service",
    "Workload",
    "project",
]
