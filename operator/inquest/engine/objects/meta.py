"""Metadata, conditions and label selectors shared by every projection, and safe readers for JSON objects."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from inquest.engine.redaction import redact
from inquest.engine.refs import CLUSTER_SCOPED_KINDS, ObjectRef
from inquest.engine.timeutil import parse_time

JsonObject = Mapping[str, Any]

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
DEPENDS_ON_ANNOTATION = "inquest.dev/depends-on"
RESTARTED_AT_ANNOTATION = "kubectl.kubernetes.io/restartedAt"
# Annotations worth keeping; everything else (last-applied-configuration above all) is dropped.
_KEPT_ANNOTATIONS = frozenset({REVISION_ANNOTATION, RESTARTED_AT_ANNOTATION, "kubernetes.io/change-cause"})
_KEPT_ANNOTATION_PREFIX = "inquest.dev/"


def mapping(value: object) -> JsonObject:
    return value if isinstance(value, Mapping) else {}


def mappings(value: object) -> list[JsonObject]:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def text(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str | int | float):
        return str(value)
    return ""


def optional_text(value: object) -> str | None:
    return text(value) or None


def optional_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None


def strings(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(text(item) for item in value)


def string_map(value: object) -> dict[str, str]:
    return {str(key): text(item) for key, item in mapping(value).items()}


@dataclass(frozen=True, slots=True)
class OwnerRef:
    kind: str
    name: str
    controller: bool


@dataclass(frozen=True, slots=True)
class Meta:
    kind: str
    namespace: str
    name: str
    uid: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    owners: tuple[OwnerRef, ...] = ()
    created: datetime | None = None
    deleted: datetime | None = None
    generation: int | None = None
    resource_version: str = ""

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(self.kind, self.namespace, self.name)

    @property
    def controller(self) -> OwnerRef | None:
        return next((owner for owner in self.owners if owner.controller), self.owners[0] if self.owners else None)


def kept_annotations(raw: object) -> dict[str, str]:
    return {
        key: redact(value)
        for key, value in string_map(raw).items()
        if key in _KEPT_ANNOTATIONS or key.startswith(_KEPT_ANNOTATION_PREFIX)
    }


def read_meta(obj: JsonObject, kind: str | None = None) -> Meta:
    metadata = mapping(obj.get("metadata"))
    resolved_kind = kind or text(obj.get("kind"))
    namespace = "" if resolved_kind in CLUSTER_SCOPED_KINDS else text(metadata.get("namespace"))
    owners = tuple(
        OwnerRef(text(owner.get("kind")), text(owner.get("name")), owner.get("controller") is True)
        for owner in mappings(metadata.get("ownerReferences"))
    )
    return Meta(
        kind=resolved_kind,
        namespace=namespace,
        name=text(metadata.get("name")),
        uid=text(metadata.get("uid")),
        labels=string_map(metadata.get("labels")),
        annotations=kept_annotations(metadata.get("annotations")),
        owners=owners,
        created=parse_time(metadata.get("creationTimestamp")),
        deleted=parse_time(metadata.get("deletionTimestamp")),
        generation=optional_int(metadata.get("generation")),
        resource_version=text(metadata.get("resourceVersion")),
    )


@dataclass(frozen=True, slots=True)
class Projection:
    """The slim, immutable view of one Kubernetes object that the caches keep."""

    meta: Meta

    @property
    def ref(self) -> ObjectRef:
        return self.meta.ref


@dataclass(frozen=True, slots=True)
class Condition:
    type: str
    status: str
    reason: str = ""
    message: str = ""
    last_transition: datetime | None = None

    @property
    def is_true(self) -> bool:
        return self.status == "True"


def read_conditions(raw: object) -> tuple[Condition, ...]:
    return tuple(
        Condition(
            type=text(item.get("type")),
            status=text(item.get("status")),
            reason=text(item.get("reason")),
            message=redact(text(item.get("message"))),
            last_transition=parse_time(item.get("lastTransitionTime") or item.get("lastUpdateTime")),
        )
        for item in mappings(raw)
    )


def find_condition(conditions: tuple[Condition, ...], condition_type: str) -> Condition | None:
    return next((condition for condition in conditions if condition.type == condition_type), None)


@dataclass(frozen=True, slots=True)
class SelectorRequirement:
    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.operator == "In":
            return labels.get(self.key) in self.values
        if self.operator == "NotIn":
            return labels.get(self.key) not in self.values
        if self.operator == "Exists":
            return self.key in labels
        if self.operator == "DoesNotExist":
            return self.key not in labels
        return False


@dataclass(frozen=True, slots=True)
class LabelSelector:
    match_labels: Mapping[str, str] = field(default_factory=dict)
    match_expressions: tuple[SelectorRequirement, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.match_labels and not self.match_expressions

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Kubernetes semantics: an empty selector matches everything (callers decide if that is meaningful)."""
        return all(labels.get(key) == value for key, value in self.match_labels.items()) and all(
            requirement.matches(labels) for requirement in self.match_expressions
        )

    def __str__(self) -> str:
        parts = [f"{key}={value}" for key, value in sorted(self.match_labels.items())]
        for requirement in self.match_expressions:
            values = f" ({','.join(requirement.values)})" if requirement.values else ""
            parts.append(f"{requirement.key} {requirement.operator}{values}")
        return ",".join(parts) or "<all>"


def read_selector(raw: object) -> LabelSelector:
    selector = mapping(raw)
    return LabelSelector(
        match_labels=string_map(selector.get("matchLabels")),
        match_expressions=tuple(
            SelectorRequirement(text(item.get("key")), text(item.get("operator")), strings(item.get("values")))
            for item in mappings(selector.get("matchExpressions"))
        ),
    )
