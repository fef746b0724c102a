"""The scenario format, a public contract (docs/scenarios.md): one YAML file per incident.

Files are validated here, before anything runs; an error names the file, the field and what is allowed.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from inquest.api import models
from inquest.categories import Category, ConcludedReason
from inquest.lab import shapes

NAMESPACE_PLACEHOLDER = "${NAMESPACE}"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
KIND_PATTERN = r"^[A-Z][A-Za-z0-9]*$"
DEFAULT_AFTER_SECONDS = 60.0
# The Investigation is created after the fault; later than this and the default lookback (30m) misses it.
MAX_AFTER_SECONDS = 20 * 60.0
MAX_WAIT_SECONDS = 10 * 60.0


class ScenarioError(Exception):
    """An invalid scenario file: names the file and every field that is wrong, with what is allowed."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ObjectName(Strict):
    """One object of the scenario, by kind and name (in the scenario's namespace unless cluster-scoped)."""

    kind: str = Field(pattern=KIND_PATTERN)
    name: str = Field(min_length=1, max_length=253)


class ObjectMatch(Strict):
    """An object a finding may name: by exact name or by name prefix (pods and ReplicaSets get generated names)."""

    kind: str = Field(pattern=KIND_PATTERN)
    name: str | None = Field(default=None, min_length=1, max_length=253)
    name_prefix: str | None = Field(default=None, alias="namePrefix", min_length=1, max_length=253)

    @model_validator(mode="after")
    def _one_name(self) -> ObjectMatch:
        if (self.name is None) == (self.name_prefix is None):
            raise ValueError("give exactly one of name and namePrefix")
        return self

    def matches(self, kind: str, name: str) -> bool:
        if kind != self.kind:
            return False
        if self.name is not None:
            return name == self.name
        assert self.name_prefix is not None
        return name.startswith(self.name_prefix)


class PatchTarget(ObjectName):
    strategic: dict[str, Any] | None = None
    merge: dict[str, Any] | None = None
    json_patch: list[dict[str, Any]] | None = Field(default=None, alias="json")

    @model_validator(mode="after")
    def _one_patch(self) -> PatchTarget:
        given = [body for body in (self.strategic, self.merge, self.json_patch) if body is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of strategic, merge and json (the patch body)")
        return self


class ScaleTarget(ObjectName):
    replicas: int = Field(ge=0, le=1000)


class AnnotateTarget(Strict):
    """Annotations to set (a null value removes one) on one object by name, or on every pod a selector matches."""

    kind: str = Field(pattern=KIND_PATTERN)
    name: str | None = Field(default=None, min_length=1, max_length=253)
    selector: dict[str, str] | None = None
    annotations: dict[str, str | None] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_target(self) -> AnnotateTarget:
        if (self.name is None) == (self.selector is None):
            raise ValueError("give exactly one of name and selector")
        return self


FAULT_ACTIONS = ("patch", "create", "delete", "scale", "annotate", "wait")


class FaultStep(Strict):
    """One step of the fault: exactly one action."""

    patch: PatchTarget | None = None
    create: dict[str, Any] | None = None
    delete: ObjectName | None = None
    scale: ScaleTarget | None = None
    annotate: AnnotateTarget | None = None
    wait: float | None = Field(default=None, ge=0, le=MAX_WAIT_SECONDS)

    @field_validator("wait", mode="before")
    @classmethod
    def _parse_wait(cls, raw: object) -> object:
        return None if raw is None else shapes.parse_duration(raw)

    @field_validator("create")
    @classmethod
    def _check_manifest(cls, manifest: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if manifest is None else check_manifest(manifest)

    @model_validator(mode="after")
    def _one_action(self) -> FaultStep:
        given = [action for action in FAULT_ACTIONS if getattr(self, action) is not None]
        if len(given) != 1:
            raise ValueError(f"each step has exactly one of {', '.join(FAULT_ACTIONS)}; got {given or 'none'}")
        return self

    @property
    def action(self) -> str:
        return next(action for action in FAULT_ACTIONS if getattr(self, action) is not None)


def check_manifest(manifest: dict[str, Any]) -> dict[str, Any]:
    for key in ("apiVersion", "kind"):
        if not isinstance(manifest.get(key), str) or not manifest[key]:
            raise ValueError(f"a manifest needs a string {key}")
    metadata = manifest.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
        raise ValueError("a manifest needs metadata.name (generateName is not supported: expectations name objects)")
    return manifest


class MetricSeries(Strict):
    """A series served by the lab exporter; counters' values are per-second rates, gauges' are levels."""

    name: str
    type: Literal["counter", "gauge"]
    labels: dict[str, str] = Field(default_factory=dict)
    points: list[shapes.SeriesPoint] = Field(min_length=1)
    shape: Literal["step", "linear"] = "step"
    noise: float = Field(default=0.0, ge=0.0, lt=1.0)
    for_each_pod: dict[str, str] | None = Field(default=None, alias="forEachPod")

    @field_validator("labels", mode="before")
    @classmethod
    def _stringify(cls, raw: object) -> object:
        if isinstance(raw, dict):
            return {key: str(value) if isinstance(value, int | float) else value for key, value in raw.items()}
        return raw

    @model_validator(mode="after")
    def _check_series(self) -> MetricSeries:
        if "namespace" in self.labels:
            raise ValueError("labels.namespace: the runner sets it to the scenario's namespace; leave it out")
        if self.for_each_pod is not None and ({"pod", "container"} & self.labels.keys()):
            raise ValueError("labels: with forEachPod the runner sets pod and container; leave them out")
        try:
            self.spec(0.0, {})
        except ValidationError as error:
            raise ValueError(_flatten(error)) from None
        return self

    def spec(self, reference_time: float, extra_labels: dict[str, str]) -> shapes.SeriesSpec:
        return shapes.SeriesSpec(
            name=self.name,
            type=self.type,
            labels={**self.labels, **extra_labels},
            points=self.points,
            shape=self.shape,
            noise=self.noise,
            reference_time=reference_time,
        )

    @property
    def first_at(self) -> float:
        return self.points[0].at


class PrometheusCondition(StrEnum):
    UP = "up"
    DOWN = "down"  # stopped before the Investigation is created
    ABSENT = "absent"  # no series for this namespace


class Conditions(Strict):
    prometheus: PrometheusCondition = PrometheusCondition.UP


class InvestigationPlan(Strict):
    after: float = Field(default=DEFAULT_AFTER_SECONDS, ge=0, le=MAX_AFTER_SECONDS)
    spec: dict[str, Any] = Field(default_factory=dict)

    @field_validator("after", mode="before")
    @classmethod
    def _parse_after(cls, raw: object) -> object:
        return shapes.parse_duration(raw)

    @field_validator("spec")
    @classmethod
    def _check_spec(cls, spec: dict[str, Any]) -> dict[str, Any]:
        # ${NAMESPACE} stands for a real namespace name; validate with one so patterns apply.
        models.InvestigationSpec.model_validate(substitute(spec, "scenario-namespace"))
        return spec


class Expectation(Strict):
    root_cause: ObjectName | None = Field(default=None, alias="rootCause")
    none: bool = False
    aliases: list[ObjectMatch] = Field(default_factory=list)
    categories: list[Category] = Field(default_factory=list)
    verdict: ConcludedReason
    must_not_blame: list[ObjectMatch] = Field(default_factory=list, alias="mustNotBlame")

    @model_validator(mode="after")
    def _check(self) -> Expectation:
        if self.none == (self.root_cause is not None):
            raise ValueError("give either rootCause or none: true (a no-fault control)")
        if self.root_cause is not None and not self.categories:
            raise ValueError("categories: give at least one category that counts as right")
        if self.none and (self.aliases or self.categories):
            raise ValueError("a no-fault control (none: true) has no aliases or categories")
        if self.verdict in (ConcludedReason.INVESTIGATING, ConcludedReason.FAILED):
            raise ValueError("verdict: one of RootCauseIdentified, Inconclusive, NoFaultFound")
        return self

    def resolved(self, namespace: str) -> Expectation:
        """With `${NAMESPACE}` replaced in names: cluster-scoped objects (Nodes) carry it in theirs."""
        dumped = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        return Expectation.model_validate(substitute(dumped, namespace))

    def blames_expected(self, kind: str, name: str) -> bool:
        if self.root_cause is None:
            return False
        if kind == self.root_cause.kind and name == self.root_cause.name:
            return True
        return any(alias.matches(kind, name) for alias in self.aliases)


class Scenario(Strict):
    name: str = Field(min_length=1, max_length=40)
    description: str = Field(min_length=1, max_length=1024)
    tags: list[str] = Field(default_factory=list)
    world: list[dict[str, Any]] = Field(default_factory=list)
    metrics: list[MetricSeries] = Field(default_factory=list)
    fault: list[FaultStep] = Field(default_factory=list)
    conditions: Conditions = Field(default_factory=Conditions)
    investigation: InvestigationPlan = Field(default_factory=InvestigationPlan)
    expect: Expectation

    @field_validator("name")
    @classmethod
    def _check_name(cls, name: str) -> str:
        if not DNS_LABEL.match(name):
            raise ValueError(f"{name!r} is not a DNS-1123 label (lowercase letters, digits and '-')")
        return name

    @field_validator("world")
    @classmethod
    def _check_world(cls, world: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for index, manifest in enumerate(world):
            try:
                check_manifest(manifest)
            except ValueError as error:
                raise ValueError(f"world[{index}]: {error}") from None
        return world

    @model_validator(mode="after")
    def _check_conditions(self) -> Scenario:
        if self.conditions.prometheus == PrometheusCondition.ABSENT and self.metrics:
            raise ValueError("conditions.prometheus is absent (no series for this namespace) but metrics are given")
        return self

    @property
    def duration_seconds(self) -> float:
        """From the fault to the Investigation: the fault's waits, or `after` when that is later."""
        waits = sum(step.wait or 0.0 for step in self.fault)
        return max(waits, self.investigation.after)

    @property
    def history_seconds(self) -> float:
        """How far back the metrics need history: their earliest point (at least the 2 h onset baseline)."""
        return max([2 * 3600.0, *(-series.first_at for series in self.metrics)])


def substitute(value: Any, namespace: str) -> Any:
    """`${NAMESPACE}` replaced in every string of a YAML tree."""
    if isinstance(value, str):
        return value.replace(NAMESPACE_PLACEHOLDER, namespace)
    if isinstance(value, list):
        return [substitute(item, namespace) for item in value]
    if isinstance(value, dict):
        return {substitute(key, namespace): substitute(item, namespace) for key, item in value.items()}
    return value


def _flatten(error: ValidationError) -> str:
    """`field.path: message` per error; pydantic's "Value error, " prefix says nothing to a scenario author."""
    parts = []
    for item in error.errors():
        message = str(item["msg"]).removeprefix("Value error, ")
        location = ".".join(str(part) for part in item["loc"])
        parts.append(f"{location}: {message}" if location else message)
    return "; ".join(parts)


def load(path: Path) -> Scenario:
    """One scenario file, validated; ScenarioError names the file and the fields."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ScenarioError(f"{path}: cannot read it as YAML: {error}") from None
    if not isinstance(raw, dict):
        raise ScenarioError(f"{path}: a scenario is a YAML mapping with name, world, fault, investigation, expect")
    try:
        return Scenario.model_validate(raw)
    except ValidationError as error:
        raise ScenarioError(f"{path}: {_flatten(error)}") from None


def load_directory(directory: Path, only: str | None = None, tag: str | None = None) -> list[Scenario]:
    """Every *.yaml scenario in a directory, sorted by name; all files are validated, and all errors reported."""
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    if not files:
        raise ScenarioError(f"{directory}: no scenario files (*.yaml)")
    scenarios, errors = [], []
    for path in files:
        try:
            scenarios.append(load(path))
        except ScenarioError as error:
            errors.append(str(error))
    names = [scenario.name for scenario in scenarios]
    twice = sorted({name for name in names if names.count(name) > 1})
    errors += [f"{directory}: scenario name {name!r} is used twice" for name in twice]
    if errors:
        raise ScenarioError("\n".join(errors))
    if only is not None:
        scenarios = [scenario for scenario in scenarios if scenario.name == only]
        if not scenarios:
            raise ScenarioError(f"--only {only}: no scenario of that name in {directory} (names: {', '.join(names)})")
    if tag is not None:
        scenarios = [scenario for scenario in scenarios if tag in scenario.tags]
        if not scenarios:
            raise ScenarioError(f"--tag {tag}: no scenario in {directory} carries that tag")
    return sorted(scenarios, key=lambda scenario: scenario.name)
