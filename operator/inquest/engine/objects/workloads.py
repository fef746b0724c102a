"""Controllers that own pods (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob) and HPAs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from inquest.engine.objects.meta import (
    REVISION_ANNOTATION,
    Condition,
    JsonObject,
    LabelSelector,
    Projection,
    find_condition,
    mapping,
    mappings,
    optional_int,
    read_conditions,
    read_meta,
    read_selector,
    text,
)
from inquest.engine.objects.pods import PodTemplate, read_pod_template
from inquest.engine.timeutil import parse_time

WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"})


@dataclass(frozen=True, slots=True)
class Workload(Projection):
    """A Deployment, StatefulSet, DaemonSet or ReplicaSet (the kind is in meta)."""

    desired_replicas: int | None = None
    ready_replicas: int = 0
    available_replicas: int = 0
    updated_replicas: int = 0
    selector: LabelSelector = field(default_factory=LabelSelector)
    template: PodTemplate = field(default_factory=PodTemplate)
    revision: str = ""
    conditions: tuple[Condition, ...] = ()
    paused: bool = False

    def condition(self, condition_type: str) -> Condition | None:
        return find_condition(self.conditions, condition_type)


def project_workload(obj: JsonObject) -> Workload:
    meta = read_meta(obj)
    spec = mapping(obj.get("spec"))
    status = mapping(obj.get("status"))
    if meta.kind == "DaemonSet":
        desired = optional_int(status.get("desiredNumberScheduled"))
        ready = optional_int(status.get("numberReady"))
        available = optional_int(status.get("numberAvailable"))
        updated = optional_int(status.get("updatedNumberScheduled"))
    else:
        # spec.replicas defaults to 1 when absent.
        desired = optional_int(spec.get("replicas")) if "replicas" in spec else 1
        ready = optional_int(status.get("readyReplicas"))
        available = optional_int(status.get("availableReplicas"))
        updated = optional_int(status.get("updatedReplicas"))
    revision = meta.annotations.get(REVISION_ANNOTATION, "") or text(status.get("updateRevision"))
    return Workload(
        meta=meta,
        desired_replicas=desired,
        ready_replicas=ready or 0,
        available_replicas=available or 0,
        updated_replicas=updated or 0,
        selector=read_selector(spec.get("selector")),
        template=read_pod_template(spec.get("template")),
        revision=revision,
        conditions=read_conditions(status.get("conditions")),
        paused=spec.get("paused") is True,
    )


@dataclass(frozen=True, slots=True)
class Job(Projection):
    parallelism: int | None = None
    completions: int | None = None
    backoff_limit: int | None = None
    active: int = 0
    succeeded: int = 0
    failed: int = 0
    start_time: datetime | None = None
    completion_time: datetime | None = None
    conditions: tuple[Condition, ...] = ()
    template: PodTemplate = field(default_factory=PodTemplate)
    suspended: bool = False


def project_job(obj: JsonObject) -> Job:
    spec = mapping(obj.get("spec"))
    status = mapping(obj.get("status"))
    return Job(
        meta=read_meta(obj, "Job"),
        parallelism=optional_int(spec.get("parallelism")),
        completions=optional_int(spec.get("completions")),
        backoff_limit=optional_int(spec.get("backoffLimit")),
        active=optional_int(status.get("active")) or 0,
        succeeded=optional_int(status.get("succeeded")) or 0,
        failed=optional_int(status.get("failed")) or 0,
        start_time=parse_time(status.get("startTime")),
        completion_time=parse_time(status.get("completionTime")),
        conditions=read_conditions(status.get("conditions")),
        template=read_pod_template(spec.get("template")),
        suspended=spec.get("suspend") is True,
    )


@dataclass(frozen=True, slots=True)
class CronJob(Projection):
    schedule: str = ""
    suspended: bool = False
    template: PodTemplate = field(default_factory=PodTemplate)
    last_schedule_time: datetime | None = None
    last_successful_time: datetime | None = None
    active_jobs: tuple[str, ...] = ()


def project_cron_job(obj: JsonObject) -> CronJob:
    spec = mapping(obj.get("spec"))
    status = mapping(obj.get("status"))
    job_spec = mapping(mapping(spec.get("jobTemplate")).get("spec"))
    return CronJob(
        meta=read_meta(obj, "CronJob"),
        schedule=text(spec.get("schedule")),
        suspended=spec.get("suspend") is True,
        template=read_pod_template(job_spec.get("template")),
        last_schedule_time=parse_time(status.get("lastScheduleTime")),
        last_successful_time=parse_time(status.get("lastSuccessfulTime")),
        active_jobs=tuple(text(item.get("name")) for item in mappings(status.get("active"))),
    )


@dataclass(frozen=True, slots=True)
class HorizontalPodAutoscaler(Projection):
    target_kind: str = ""
    target_name: str = ""
    min_replicas: int | None = None
    max_replicas: int | None = None
    current_replicas: int | None = None
    desired_replicas: int | None = None
    conditions: tuple[Condition, ...] = ()

    def condition(self, condition_type: str) -> Condition | None:
        return find_condition(self.conditions, condition_type)


def project_hpa(obj: JsonObject) -> HorizontalPodAutoscaler:
    spec = mapping(obj.get("spec"))
    status = mapping(obj.get("status"))
    target = mapping(spec.get("scaleTargetRef"))
    return HorizontalPodAutoscaler(
        meta=read_meta(obj, "HorizontalPodAutoscaler"),
        target_kind=text(target.get("kind")),
        target_name=text(target.get("name")),
        min_replicas=optional_int(spec.get("minReplicas")) if "minReplicas" in spec else 1,
        max_replicas=optional_int(spec.get("maxReplicas")),
        current_replicas=optional_int(status.get("currentReplicas")),
        desired_replicas=optional_int(status.get("desiredReplicas")),
        conditions=read_conditions(status.get("conditions")),
    )
