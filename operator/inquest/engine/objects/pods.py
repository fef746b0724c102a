"""Pods and pod templates: containers, their state, and what they reference (ConfigMaps, Secrets, PVCs)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from inquest.engine.objects.meta import (
    Condition,
    JsonObject,
    Projection,
    find_condition,
    kept_annotations,
    mapping,
    mappings,
    optional_int,
    optional_text,
    read_conditions,
    read_meta,
    string_map,
    strings,
    text,
)
from inquest.engine.redaction import redact, redact_arguments, redact_named_value
from inquest.engine.timeutil import parse_time

TEMPLATE_HASH_LABEL = "pod-template-hash"
# What StatefulSets and DaemonSets label their pods with, per template revision.
REVISION_HASH_LABEL = "controller-revision-hash"


@dataclass(frozen=True, slots=True)
class EnvVar:
    name: str
    value: str | None = None
    config_map: str | None = None
    secret: str | None = None
    key: str | None = None
    field_path: str | None = None

    def describe(self) -> str:
        """A stable one-line form for diffs: the (redacted) literal or where the value comes from."""
        if self.config_map:
            return f"configMap {self.config_map}/{self.key}"
        if self.secret:
            return f"secret {self.secret}/{self.key}"
        if self.field_path:
            return f"field {self.field_path}"
        return self.value or ""


@dataclass(frozen=True, slots=True)
class EnvSource:
    config_map: str | None = None
    secret: str | None = None
    prefix: str = ""


@dataclass(frozen=True, slots=True)
class ContainerPort:
    name: str
    port: int | None
    protocol: str = "TCP"


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    name: str
    image: str
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: tuple[EnvVar, ...] = ()
    env_from: tuple[EnvSource, ...] = ()
    requests: Mapping[str, str] = field(default_factory=dict)
    limits: Mapping[str, str] = field(default_factory=dict)
    liveness: str | None = None
    readiness: str | None = None
    startup: str | None = None
    ports: tuple[ContainerPort, ...] = ()


@dataclass(frozen=True, slots=True)
class VolumeRef:
    """One source behind a volume; a projected volume yields one per source."""

    volume: str
    source_kind: str  # ConfigMap, Secret, PersistentVolumeClaim
    source_name: str
    optional: bool = False


@dataclass(frozen=True, slots=True)
class PodTemplate:
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    containers: tuple[ContainerSpec, ...] = ()
    init_containers: tuple[ContainerSpec, ...] = ()
    volumes: tuple[VolumeRef, ...] = ()
    node_selector: Mapping[str, str] = field(default_factory=dict)
    affinity: str = ""
    tolerations: tuple[str, ...] = ()
    service_account: str = ""
    image_pull_secrets: tuple[str, ...] = ()

    @property
    def all_containers(self) -> tuple[ContainerSpec, ...]:
        return self.init_containers + self.containers

    def referenced(self, source_kind: str) -> set[str]:
        """Names of the ConfigMaps, Secrets or PVCs this template mounts or reads env from."""
        names = {volume.source_name for volume in self.volumes if volume.source_kind == source_kind}
        for container in self.all_containers:
            for env in container.env:
                if source_kind == "ConfigMap" and env.config_map:
                    names.add(env.config_map)
                if source_kind == "Secret" and env.secret:
                    names.add(env.secret)
            for source in container.env_from:
                if source_kind == "ConfigMap" and source.config_map:
                    names.add(source.config_map)
                if source_kind == "Secret" and source.secret:
                    names.add(source.secret)
        if source_kind == "Secret":
            names.update(self.image_pull_secrets)
        return names


@dataclass(frozen=True, slots=True)
class ContainerStatus:
    name: str
    image: str = ""
    ready: bool = False
    started: bool | None = None
    restart_count: int = 0
    init: bool = False
    running_since: datetime | None = None
    waiting_reason: str = ""
    waiting_message: str = ""
    terminated_reason: str = ""
    terminated_exit_code: int | None = None
    terminated_at: datetime | None = None
    last_reason: str = ""
    last_exit_code: int | None = None
    last_finished_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Pod(Projection):
    phase: str = ""
    node_name: str = ""
    reason: str = ""
    message: str = ""
    spec: PodTemplate = field(default_factory=PodTemplate)
    containers: tuple[ContainerStatus, ...] = ()
    conditions: tuple[Condition, ...] = ()
    start_time: datetime | None = None

    @property
    def ready(self) -> bool:
        condition = find_condition(self.conditions, "Ready")
        return condition is not None and condition.is_true

    @property
    def template_hash(self) -> str:
        return self.meta.labels.get(TEMPLATE_HASH_LABEL, "")

    @property
    def template_revision(self) -> str:
        """Which revision of its controller's template the pod was made from ("" when unlabelled)."""
        return self.template_hash or self.meta.labels.get(REVISION_HASH_LABEL, "")


def describe_probe(raw: object) -> str | None:
    """A one-line summary of a probe, enough to see that it changed and how."""
    probe = mapping(raw)
    if not probe:
        return None
    if "httpGet" in probe:
        handler = mapping(probe["httpGet"])
        action = f"httpGet {text(handler.get('path')) or '/'}:{text(handler.get('port'))}"
    elif "tcpSocket" in probe:
        action = f"tcpSocket :{text(mapping(probe['tcpSocket']).get('port'))}"
    elif "grpc" in probe:
        action = f"grpc :{text(mapping(probe['grpc']).get('port'))}"
    elif "exec" in probe:
        action = "exec " + " ".join(redact_arguments(strings(mapping(probe["exec"]).get("command"))))
    else:
        action = "unknown"
    settings = [
        f"{short}={text(probe[key])}"
        for key, short in (
            ("initialDelaySeconds", "delay"),
            ("periodSeconds", "period"),
            ("timeoutSeconds", "timeout"),
            ("failureThreshold", "failures"),
            ("successThreshold", "successes"),
        )
        if key in probe
    ]
    return " ".join([action, *settings])


def _read_env(raw: object) -> tuple[EnvVar, ...]:
    variables = []
    for item in mappings(raw):
        name = text(item.get("name"))
        source = mapping(item.get("valueFrom"))
        config_map = mapping(source.get("configMapKeyRef"))
        secret = mapping(source.get("secretKeyRef"))
        field_ref = mapping(source.get("fieldRef"))
        if config_map:
            variables.append(EnvVar(name, config_map=text(config_map.get("name")), key=text(config_map.get("key"))))
        elif secret:
            variables.append(EnvVar(name, secret=text(secret.get("name")), key=text(secret.get("key"))))
        elif field_ref:
            variables.append(EnvVar(name, field_path=text(field_ref.get("fieldPath"))))
        else:
            variables.append(EnvVar(name, value=redact_named_value(name, text(item.get("value")))))
    return tuple(variables)


def _read_env_from(raw: object) -> tuple[EnvSource, ...]:
    return tuple(
        EnvSource(
            config_map=optional_text(mapping(item.get("configMapRef")).get("name")),
            secret=optional_text(mapping(item.get("secretRef")).get("name")),
            prefix=text(item.get("prefix")),
        )
        for item in mappings(raw)
    )


def read_container(raw: JsonObject) -> ContainerSpec:
    resources = mapping(raw.get("resources"))
    return ContainerSpec(
        name=text(raw.get("name")),
        image=text(raw.get("image")),
        command=redact_arguments(strings(raw.get("command"))),
        args=redact_arguments(strings(raw.get("args"))),
        env=_read_env(raw.get("env")),
        env_from=_read_env_from(raw.get("envFrom")),
        requests=string_map(resources.get("requests")),
        limits=string_map(resources.get("limits")),
        liveness=describe_probe(raw.get("livenessProbe")),
        readiness=describe_probe(raw.get("readinessProbe")),
        startup=describe_probe(raw.get("startupProbe")),
        ports=tuple(
            ContainerPort(
                text(port.get("name")), optional_int(port.get("containerPort")), text(port.get("protocol")) or "TCP"
            )
            for port in mappings(raw.get("ports"))
        ),
    )


def _read_volumes(raw: object) -> tuple[VolumeRef, ...]:
    volumes: list[VolumeRef] = []
    for volume in mappings(raw):
        name = text(volume.get("name"))
        sources: list[tuple[str, JsonObject]] = []
        if "configMap" in volume:
            sources.append(("ConfigMap", mapping(volume["configMap"])))
        if "secret" in volume:
            secret = mapping(volume["secret"])
            sources.append(("Secret", {"name": secret.get("secretName"), "optional": secret.get("optional")}))
        if "persistentVolumeClaim" in volume:
            claim = mapping(volume["persistentVolumeClaim"])
            sources.append(("PersistentVolumeClaim", {"name": claim.get("claimName")}))
        for projected in mappings(mapping(volume.get("projected")).get("sources")):
            if "configMap" in projected:
                sources.append(("ConfigMap", mapping(projected["configMap"])))
            if "secret" in projected:
                sources.append(("Secret", mapping(projected["secret"])))
        volumes.extend(
            VolumeRef(name, kind, text(source.get("name")), source.get("optional") is True)
            for kind, source in sources
            if text(source.get("name"))
        )
    return tuple(volumes)


def _describe_toleration(raw: JsonObject) -> str:
    key = text(raw.get("key")) or "*"
    operator = text(raw.get("operator")) or "Equal"
    value = f"={text(raw.get('value'))}" if raw.get("value") else ""
    effect = text(raw.get("effect")) or "any"
    seconds = f" for {text(raw.get('tolerationSeconds'))}s" if raw.get("tolerationSeconds") is not None else ""
    return f"{key}{value} {operator} {effect}{seconds}"


def read_template(spec: JsonObject, labels: Mapping[str, str], annotations: object = None) -> PodTemplate:
    """A pod spec (or a template's spec) plus the labels its pods get."""
    affinity = mapping(spec.get("affinity"))
    return PodTemplate(
        labels=dict(labels),
        annotations=kept_annotations(annotations),
        containers=tuple(read_container(item) for item in mappings(spec.get("containers"))),
        init_containers=tuple(read_container(item) for item in mappings(spec.get("initContainers"))),
        volumes=_read_volumes(spec.get("volumes")),
        node_selector=string_map(spec.get("nodeSelector")),
        affinity=json.dumps(affinity, sort_keys=True, separators=(",", ":")) if affinity else "",
        tolerations=tuple(_describe_toleration(item) for item in mappings(spec.get("tolerations"))),
        service_account=text(spec.get("serviceAccountName")),
        image_pull_secrets=tuple(text(item.get("name")) for item in mappings(spec.get("imagePullSecrets"))),
    )


def read_pod_template(template: object) -> PodTemplate:
    """A workload's `spec.template`."""
    body = mapping(template)
    metadata = mapping(body.get("metadata"))
    return read_template(mapping(body.get("spec")), string_map(metadata.get("labels")), metadata.get("annotations"))


def _read_status(raw: JsonObject, init: bool) -> ContainerStatus:
    state = mapping(raw.get("state"))
    waiting = mapping(state.get("waiting"))
    running = mapping(state.get("running"))
    terminated = mapping(state.get("terminated"))
    last = mapping(mapping(raw.get("lastState")).get("terminated"))
    started = raw.get("started")
    return ContainerStatus(
        name=text(raw.get("name")),
        image=text(raw.get("image")),
        ready=raw.get("ready") is True,
        started=started if isinstance(started, bool) else None,
        restart_count=optional_int(raw.get("restartCount")) or 0,
        init=init,
        running_since=parse_time(running.get("startedAt")),
        waiting_reason=text(waiting.get("reason")),
        waiting_message=redact(text(waiting.get("message"))),
        terminated_reason=text(terminated.get("reason")),
        terminated_exit_code=optional_int(terminated.get("exitCode")),
        terminated_at=parse_time(terminated.get("finishedAt")),
        last_reason=text(last.get("reason")),
        last_exit_code=optional_int(last.get("exitCode")),
        last_finished_at=parse_time(last.get("finishedAt")),
    )


def project_pod(obj: JsonObject) -> Pod:
    meta = read_meta(obj, "Pod")
    spec = mapping(obj.get("spec"))
    status = mapping(obj.get("status"))
    statuses = tuple(_read_status(item, True) for item in mappings(status.get("initContainerStatuses")))
    statuses += tuple(_read_status(item, False) for item in mappings(status.get("containerStatuses")))
    return Pod(
        meta=meta,
        phase=text(status.get("phase")),
        node_name=text(spec.get("nodeName")),
        reason=text(status.get("reason")),
        message=redact(text(status.get("message"))),
        spec=read_template(spec, meta.labels),
        containers=statuses,
        conditions=read_conditions(status.get("conditions")),
        start_time=parse_time(status.get("startTime")),
    )
