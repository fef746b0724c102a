"""Spec fields of each projection as flat `path -> value` strings, so a diff is a comparison of two dicts.

Only what a person or a controller changes on purpose is here (spec, template, data); status never is."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from inquest.engine.objects import (
    ConfigMap,
    CronJob,
    HorizontalPodAutoscaler,
    Ingress,
    Job,
    LimitRange,
    NetworkPolicy,
    Node,
    PersistentVolumeClaim,
    PodTemplate,
    Projection,
    ResourceQuota,
    Secret,
    Service,
    Workload,
)
from inquest.engine.objects.pods import ContainerSpec

SpecFields = dict[str, str]


@dataclass(frozen=True, slots=True)
class FieldChange:
    path: str
    old: str | None
    new: str | None

    def describe(self) -> str:
        before = "<none>" if self.old is None else self.old
        after = "<none>" if self.new is None else self.new
        return f"{self.path}: {before} -> {after}"


def _pairs(values: Mapping[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in sorted(values.items()))


def _container_fields(container: ContainerSpec, prefix: str) -> SpecFields:
    fields: SpecFields = {f"{prefix}.image": container.image}
    if container.command:
        fields[f"{prefix}.command"] = " ".join(container.command)
    if container.args:
        fields[f"{prefix}.args"] = " ".join(container.args)
    for env in container.env:
        fields[f"{prefix}.env[{env.name}]"] = env.describe()
    for index, source in enumerate(container.env_from):
        origin = f"configMap {source.config_map}" if source.config_map else f"secret {source.secret}"
        fields[f"{prefix}.envFrom[{index}]"] = f"{origin} prefix={source.prefix}" if source.prefix else origin
    for resource, value in container.requests.items():
        fields[f"{prefix}.resources.requests.{resource}"] = value
    for resource, value in container.limits.items():
        fields[f"{prefix}.resources.limits.{resource}"] = value
    for probe_name in ("liveness", "readiness", "startup"):
        probe = getattr(container, probe_name)
        if probe:
            fields[f"{prefix}.probes.{probe_name}"] = probe
    if container.ports:
        fields[f"{prefix}.ports"] = ",".join(
            f"{port.name or '-'}:{port.port}/{port.protocol}" for port in container.ports
        )
    return fields


def template_fields(template: PodTemplate, prefix: str = "template") -> SpecFields:
    fields: SpecFields = {}
    for container in template.init_containers:
        fields.update(_container_fields(container, f"{prefix}.initContainers[{container.name}]"))
    for container in template.containers:
        fields.update(_container_fields(container, f"{prefix}.containers[{container.name}]"))
    for volume in template.volumes:
        fields[f"{prefix}.volumes[{volume.volume}]"] = f"{volume.source_kind} {volume.source_name}"
    if template.labels:
        fields[f"{prefix}.labels"] = _pairs(template.labels)
    for key, value in template.annotations.items():
        fields[f"{prefix}.annotations[{key}]"] = value
    if template.node_selector:
        fields[f"{prefix}.nodeSelector"] = _pairs(template.node_selector)
    if template.affinity:
        fields[f"{prefix}.affinity"] = template.affinity
    if template.tolerations:
        fields[f"{prefix}.tolerations"] = "; ".join(template.tolerations)
    if template.service_account:
        fields[f"{prefix}.serviceAccountName"] = template.service_account
    return fields


def _workload_fields(workload: Workload) -> SpecFields:
    fields = template_fields(workload.template)
    fields["selector"] = str(workload.selector)
    if workload.meta.kind != "DaemonSet" and workload.desired_replicas is not None:
        fields["replicas"] = str(workload.desired_replicas)
    if workload.paused:
        fields["paused"] = "true"
    return fields


def _job_fields(job: Job) -> SpecFields:
    fields = template_fields(job.template)
    for name, value in (
        ("parallelism", job.parallelism),
        ("completions", job.completions),
        ("backoffLimit", job.backoff_limit),
    ):
        if value is not None:
            fields[name] = str(value)
    fields["suspend"] = str(job.suspended).lower()
    return fields


def _cron_job_fields(cron_job: CronJob) -> SpecFields:
    fields = template_fields(cron_job.template)
    fields["schedule"] = cron_job.schedule
    fields["suspend"] = str(cron_job.suspended).lower()
    return fields


def _service_fields(service: Service) -> SpecFields:
    fields = {"type": service.type, "selector": _pairs(service.selector)}
    for port in service.ports:
        fields[f"ports[{port.name or port.port}]"] = f"{port.port}->{port.target_port}/{port.protocol}"
    if service.external_name:
        fields["externalName"] = service.external_name
    return fields


def _ingress_fields(ingress: Ingress) -> SpecFields:
    return {
        f"backends[{backend.host}{backend.path}]": f"{backend.service_name}:{backend.service_port}"
        for backend in ingress.backends
    }


def _network_policy_fields(policy: NetworkPolicy) -> SpecFields:
    return {
        "podSelector": str(policy.pod_selector),
        "policyTypes": ",".join(policy.policy_types),
        "ingress": " | ".join(rule.describe() for rule in policy.ingress) or "<deny all>",
        "egress": " | ".join(rule.describe() for rule in policy.egress) or "<deny all>",
    }


def _limit_range_fields(limit_range: LimitRange) -> SpecFields:
    fields: SpecFields = {}
    for item in limit_range.limits:
        for bound in ("max", "min", "default", "default_request"):
            values: Mapping[str, str] = getattr(item, bound)
            if values:
                fields[f"limits[{item.type}].{bound}"] = _pairs(values)
    return fields


def _hpa_fields(hpa: HorizontalPodAutoscaler) -> SpecFields:
    return {
        "scaleTargetRef": f"{hpa.target_kind}/{hpa.target_name}",
        "minReplicas": str(hpa.min_replicas),
        "maxReplicas": str(hpa.max_replicas),
    }


def _secret_fields(secret: Secret) -> SpecFields:
    # Values are never read: a write that keeps the key names shows up as a new resourceVersion only.
    fields = {f"data[{key}]": "present" for key in secret.keys}
    fields["data"] = f"version {secret.meta.resource_version}" if secret.meta.resource_version else ""
    return fields


def spec_fields(projection: Projection) -> SpecFields | None:
    """The flattened spec; None for kinds whose changes are not tracked (Pods, Events, EndpointSlices...)."""
    match projection:
        case Workload():
            return _workload_fields(projection)
        case Job():
            return _job_fields(projection)
        case CronJob():
            return _cron_job_fields(projection)
        case Service():
            return _service_fields(projection)
        case Ingress():
            return _ingress_fields(projection)
        case NetworkPolicy():
            return _network_policy_fields(projection)
        case LimitRange():
            return _limit_range_fields(projection)
        case HorizontalPodAutoscaler():
            return _hpa_fields(projection)
        case Secret():
            return _secret_fields(projection)
        case ConfigMap():
            return {f"data[{key}]": value for key, value in projection.data_hashes.items()}
        case ResourceQuota():
            return {f"hard[{key}]": value for key, value in projection.hard.items()}
        case PersistentVolumeClaim():
            return {
                "storageClassName": projection.storage_class,
                "resources.requests.storage": projection.requested_storage,
                "accessModes": ",".join(projection.access_modes),
            }
        case Node():
            return {
                "unschedulable": str(projection.unschedulable).lower(),
                "taints": ", ".join(str(taint) for taint in projection.taints),
            }
    return None


def diff_fields(old: SpecFields, new: SpecFields) -> list[FieldChange]:
    """Field-level changes, sorted by path; a field that appears or disappears has None on the other side."""
    changes = []
    for path in sorted(old.keys() | new.keys()):
        before, after = old.get(path), new.get(path)
        if before != after:
            changes.append(FieldChange(path, before, after))
    return changes
