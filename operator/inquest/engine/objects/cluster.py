"""Nodes, configuration and storage objects, quotas and limits."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from inquest.engine.objects.meta import (
    Condition,
    JsonObject,
    Projection,
    find_condition,
    mapping,
    mappings,
    read_conditions,
    read_meta,
    string_map,
    strings,
    text,
)

NODE_PRESSURE_CONDITIONS = ("DiskPressure", "MemoryPressure", "PIDPressure", "NetworkUnavailable")


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    value: str
    effect: str

    def __str__(self) -> str:
        value = f"={self.value}" if self.value else ""
        return f"{self.key}{value}:{self.effect}"


@dataclass(frozen=True, slots=True)
class Node(Projection):
    conditions: tuple[Condition, ...] = ()
    unschedulable: bool = False
    taints: tuple[Taint, ...] = ()
    allocatable: Mapping[str, str] = field(default_factory=dict)

    def condition(self, condition_type: str) -> Condition | None:
        return find_condition(self.conditions, condition_type)

    @property
    def ready(self) -> bool | None:
        """None when the Ready condition is missing (a node that never reported)."""
        condition = self.condition("Ready")
        return None if condition is None else condition.is_true


def project_node(obj: JsonObject) -> Node:
    spec = mapping(obj.get("spec"))
    status = mapping(obj.get("status"))
    return Node(
        meta=read_meta(obj, "Node"),
        conditions=read_conditions(status.get("conditions")),
        unschedulable=spec.get("unschedulable") is True,
        taints=tuple(
            Taint(text(item.get("key")), text(item.get("value")), text(item.get("effect")))
            for item in mappings(spec.get("taints"))
        ),
        allocatable=string_map(status.get("allocatable")),
    )


def value_hash(value: str) -> str:
    """A short digest: enough to see that a value changed without keeping the value."""
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class ConfigMap(Projection):
    data_hashes: Mapping[str, str] = field(default_factory=dict)


def project_config_map(obj: JsonObject) -> ConfigMap:
    hashes = {key: value_hash(value) for key, value in string_map(obj.get("data")).items()}
    hashes.update({key: value_hash(value) for key, value in string_map(obj.get("binaryData")).items()})
    return ConfigMap(meta=read_meta(obj, "ConfigMap"), data_hashes=hashes)


@dataclass(frozen=True, slots=True)
class Secret(Projection):
    """Metadata and key names only; values are never read."""

    type: str = ""
    keys: tuple[str, ...] = ()


def project_secret(obj: JsonObject) -> Secret:
    keys = set(mapping(obj.get("data"))) | set(mapping(obj.get("stringData")))
    return Secret(
        meta=read_meta(obj, "Secret"), type=text(obj.get("type")), keys=tuple(sorted(str(key) for key in keys))
    )


@dataclass(frozen=True, slots=True)
class PersistentVolumeClaim(Projection):
    phase: str = ""
    storage_class: str = ""
    volume_name: str = ""
    requested_storage: str = ""
    access_modes: tuple[str, ...] = ()
    conditions: tuple[Condition, ...] = ()


def project_pvc(obj: JsonObject) -> PersistentVolumeClaim:
    spec = mapping(obj.get("spec"))
    status = mapping(obj.get("status"))
    return PersistentVolumeClaim(
        meta=read_meta(obj, "PersistentVolumeClaim"),
        phase=text(status.get("phase")),
        storage_class=text(spec.get("storageClassName")),
        volume_name=text(spec.get("volumeName")),
        requested_storage=text(mapping(mapping(spec.get("resources")).get("requests")).get("storage")),
        access_modes=strings(spec.get("accessModes")),
        conditions=read_conditions(status.get("conditions")),
    )


@dataclass(frozen=True, slots=True)
class ResourceQuota(Projection):
    hard: Mapping[str, str] = field(default_factory=dict)
    used: Mapping[str, str] = field(default_factory=dict)


def project_resource_quota(obj: JsonObject) -> ResourceQuota:
    status = mapping(obj.get("status"))
    return ResourceQuota(
        meta=read_meta(obj, "ResourceQuota"),
        hard=string_map(mapping(obj.get("spec")).get("hard")),
        used=string_map(status.get("used")),
    )


@dataclass(frozen=True, slots=True)
class LimitItem:
    type: str
    max: Mapping[str, str] = field(default_factory=dict)
    min: Mapping[str, str] = field(default_factory=dict)
    default: Mapping[str, str] = field(default_factory=dict)
    default_request: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LimitRange(Projection):
    limits: tuple[LimitItem, ...] = ()


def project_limit_range(obj: JsonObject) -> LimitRange:
    return LimitRange(
        meta=read_meta(obj, "LimitRange"),
        limits=tuple(
            LimitItem(
                type=text(item.get("type")),
                max=string_map(item.get("max")),
                min=string_map(item.get("min")),
                default=string_map(item.get("default")),
                default_request=string_map(item.get("defaultRequest")),
            )
            for item in mappings(mapping(obj.get("spec")).get("limits"))
        ),
    )
