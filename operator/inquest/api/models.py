"""The Investigation API (inquest.dev/v1alpha1) as pydantic models.

These models are the single source of truth: the CRD's openAPIV3Schema is generated from them
(`python -m inquest.api.crd --write`), and the operator reads specs and writes statuses through them.
Python names are snake_case, JSON names camelCase; `model_dump(by_alias=True, exclude_none=True)` is exactly
what goes to the API server.

Rules the API server enforces with CEL (x-kubernetes-validations) are mirrored by model validators here, with the
same messages. The models are stricter in one place the schema cannot express: a lookback longer than 7d passes
the API server's pattern but not parse_lookback, so the operator reports it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Final, Literal, NamedTuple, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

from inquest.categories import Category, ConcludedReason, EvidenceSource, HypothesisVerdict, Mode, TargetKind

GROUP: Final = "inquest.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = "inquest.dev/v1alpha1"
KIND: Final = "Investigation"
PLURAL: Final = "investigations"
SINGULAR: Final = "investigation"
SHORT_NAME: Final = "inv"
CATEGORY_NAME: Final = "inquest"
CRD_NAME: Final = f"{PLURAL}.{GROUP}"

CONCLUDED: Final = "Concluded"
"""The condition type every Investigation carries; its reason is a ConcludedReason."""

DEFAULT_LOOKBACK: Final = timedelta(minutes=30)
MAX_LOOKBACK: Final = timedelta(days=7)
MAX_STATUS_BYTES: Final = 64 * 1024

MAX_CONDITIONS: Final = 8
MAX_FINDINGS: Final = 10
MAX_EVIDENCE: Final = 8
MAX_PATH_LENGTH: Final = 16
MAX_UNKNOWNS: Final = 20
MAX_HYPOTHESES: Final = 10
MAX_ROUNDS: Final = 20
MAX_CONTEXT: Final = 20
MAX_NOTIFICATIONS: Final = 10

DNS_LABEL_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
CAMEL_CASE_PATTERN: Final = r"^[A-Z][A-Za-z0-9]*$"
LOOKBACK_PATTERN: Final = r"^([0-9]+(s|m|h|d))+$"
# RFC 3339 with a mandatory offset: the API server's date-time format would also accept a zone-less time,
# which neither CEL's timestamp() nor the models could interpret.
RFC3339_PATTERN: Final = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$"
SINGLE_LINE_PATTERN: Final = r"^[^\n]*$"

_LOOKBACK_PART = re.compile(r"([0-9]+)([smhd])")
_LOOKBACK_WHOLE = re.compile(LOOKBACK_PATTERN)
_RFC3339 = re.compile(RFC3339_PATTERN)
_SECONDS_PER_UNIT: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}

# Messages shared by the CEL rules and the model validators, so both sides say the same thing.
LOOKBACK_WITH_SINCE_MESSAGE: Final = (
    "lookback and since are mutually exclusive: give either a lookback or a since/until window"
)
UNTIL_WITHOUT_SINCE_MESSAGE: Final = "until requires since"
SINCE_NOT_BEFORE_UNTIL_MESSAGE: Final = "since must be earlier than until"
TARGET_NAME_REQUIRED_MESSAGE: Final = "target.name is required unless target.kind is Namespace"
TARGET_NAMESPACE_FORBIDDEN_MESSAGE: Final = (
    "target.namespace must not be set when target.kind is Node or Namespace, which are cluster-scoped"
)
CONCLUDED_REASON_MESSAGE: Final = "the reason of the Concluded condition must be one of: " + ", ".join(ConcludedReason)


# --- building blocks -------------------------------------------------------------------------------------------


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, as Kubernetes writes times; sub-second digits only when there are any."""
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} has no time zone")
    utc = moment.astimezone(UTC)
    text = utc.isoformat(timespec="microseconds" if utc.microsecond else "seconds")
    return text.removesuffix("+00:00") + "Z"


def _require_rfc3339(value: object) -> object:
    # pydantic alone would also accept unix seconds, a space separator or a missing offset.
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _RFC3339.fullmatch(value):
        return value
    raise ValueError("must be an RFC 3339 date-time with an offset, e.g. 2024-05-01T10:05:00Z")


Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_require_rfc3339),
    PlainSerializer(format_timestamp, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": RFC3339_PATTERN}),
]
"""A time zone-aware datetime that travels as an RFC 3339 string."""

EnumT = TypeVar("EnumT", bound=StrEnum)


def _enum_value(member: StrEnum) -> str:
    return str(member.value)


ApiEnum = Annotated[EnumT, PlainSerializer(_enum_value, return_type=str)]
"""An enum field that dumps as its plain string value (so the dump is YAML- and JSON-safe as is)."""

SingleLine = Annotated[str, Field(max_length=1024, pattern=SINGLE_LINE_PATTERN)]
LongText = Annotated[str, Field(max_length=1024)]


def cel_rule(rule: str, message: str, field_path: str | None = None) -> JsonDict:
    """One x-kubernetes-validations entry; field_path makes the API server name that field in its error."""
    entry: JsonDict = {"rule": rule, "message": message}
    if field_path is not None:
        entry["fieldPath"] = field_path
    return entry


class ApiModel(BaseModel):
    """Base of every API model: camelCase JSON names, snake_case Python names, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
    )

    def to_api(self) -> dict[str, Any]:
        """What goes to the API server: camelCase, no None values."""
        return self.model_dump(by_alias=True, exclude_none=True)


class ConditionStatus(StrEnum):
    """The status of a condition, as the Kubernetes API conventions spell it."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


# --- spec ------------------------------------------------------------------------------------------------------


def parse_lookback(text: str) -> timedelta:
    """Parses a lookback such as `30m`, `2h`, `1d` or `1h30m` (units s, m, h, d); at most MAX_LOOKBACK."""
    if not _LOOKBACK_WHOLE.fullmatch(text):
        raise ValueError(f"lookback {text!r} is not a duration such as 30m, 2h, 1d or 1h30m (units s, m, h, d)")
    seconds = sum(int(amount) * _SECONDS_PER_UNIT[unit] for amount, unit in _LOOKBACK_PART.findall(text))
    # Compared as integers first: a huge number of days would overflow timedelta.
    if seconds > MAX_LOOKBACK.total_seconds():
        raise ValueError(f"lookback {text!r} is longer than the maximum of {MAX_LOOKBACK.days}d")
    if seconds == 0:
        raise ValueError(f"lookback {text!r} is zero")
    return timedelta(seconds=seconds)


class ObjectRef(ApiModel):
    """A reference to one Kubernetes object."""

    kind: str = Field(
        min_length=1,
        max_length=63,
        pattern=CAMEL_CASE_PATTERN,
        description="Kind of the object, e.g. Deployment, Pod, ConfigMap or Node.",
    )
    namespace: str | None = Field(
        default=None,
        max_length=63,
        pattern=DNS_LABEL_PATTERN,
        description="Namespace of the object; absent for cluster-scoped objects such as Nodes.",
    )
    name: str = Field(min_length=1, max_length=253, description="Name of the object.")

    def as_path_entry(self) -> str:
        """`Kind/namespace/name`, or `Kind/name` for a cluster-scoped object (the form used in finding paths)."""
        if self.namespace is None:
            return f"{self.kind}/{self.name}"
        return f"{self.kind}/{self.namespace}/{self.name}"


class Target(ApiModel):
    """The object to investigate; without a target the whole namespace is investigated."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule("self.kind == 'Namespace' || has(self.name)", TARGET_NAME_REQUIRED_MESSAGE, ".name"),
                cel_rule(
                    "!(self.kind in ['Node', 'Namespace']) || !has(self.namespace)",
                    TARGET_NAMESPACE_FORBIDDEN_MESSAGE,
                    ".namespace",
                ),
            ]
        }
    )

    kind: ApiEnum[TargetKind] = Field(description="Kind of the target: " + ", ".join(TargetKind) + ".")
    name: str | None = Field(
        default=None,
        max_length=253,
        pattern=DNS_SUBDOMAIN_PATTERN,
        description=(
            "Name of the target (a DNS-1123 subdomain). Required, except for kind Namespace, where it defaults to "
            "the Investigation's own namespace."
        ),
    )
    namespace: str | None = Field(
        default=None,
        max_length=63,
        pattern=DNS_LABEL_PATTERN,
        description=(
            "Namespace of the target; defaults to the Investigation's own namespace. Must not be set for the "
            "cluster-scoped kinds Node and Namespace."
        ),
    )

    @model_validator(mode="after")
    def _check_scope(self) -> Target:
        if self.kind != TargetKind.NAMESPACE and self.name is None:
            raise ValueError(TARGET_NAME_REQUIRED_MESSAGE)
        if self.kind in (TargetKind.NODE, TargetKind.NAMESPACE) and self.namespace is not None:
            raise ValueError(TARGET_NAMESPACE_FORBIDDEN_MESSAGE)
        return self

    def reference(self, investigation_namespace: str) -> ObjectRef:
        """The object this target names, with the defaults applied."""
        if self.kind == TargetKind.NAMESPACE:
            return ObjectRef(kind=self.kind.value, name=self.name or investigation_namespace)
        assert self.name is not None  # guaranteed by _check_scope
        if self.kind == TargetKind.NODE:
            return ObjectRef(kind=self.kind.value, name=self.name)
        return ObjectRef(kind=self.kind.value, namespace=self.namespace or investigation_namespace, name=self.name)


class InvestigationSpec(ApiModel):
    """What to investigate. An empty spec investigates the whole namespace over the last 30 minutes."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule("!(has(self.lookback) && has(self.since))", LOOKBACK_WITH_SINCE_MESSAGE, ".lookback"),
                cel_rule("!has(self.until) || has(self.since)", UNTIL_WITHOUT_SINCE_MESSAGE, ".until"),
                cel_rule(
                    "!has(self.since) || !has(self.until) || timestamp(self.since) < timestamp(self.until)",
                    SINCE_NOT_BEFORE_UNTIL_MESSAGE,
                    ".since",
                ),
            ]
        }
    )

    target: Target | None = Field(
        default=None,
        description="The object to investigate. Without a target, the whole namespace of the Investigation.",
    )
    question: str | None = Field(
        default=None,
        max_length=1024,
        description='The question to answer, in the engineer\'s words, e.g. "why is checkout failing since 10:05?".',
    )
    lookback: str | None = Field(
        default=None,
        max_length=32,
        pattern=LOOKBACK_PATTERN,
        description=(
            "How far back from now to look, e.g. 30m, 2h, 1d or 1h30m (units s, m, h, d; at most 7d). "
            "Defaults to 30m. Mutually exclusive with since."
        ),
    )
    since: Timestamp | None = Field(
        default=None,
        description=(
            "Start of a fixed window (RFC 3339, e.g. 2024-05-01T10:05:00Z), for a post-mortem. "
            "Mutually exclusive with lookback."
        ),
    )
    until: Timestamp | None = Field(
        default=None,
        description="End of the fixed window (RFC 3339); requires since and defaults to now.",
    )
    context: list[LongText] = Field(
        default_factory=list,
        max_length=MAX_CONTEXT,
        description='Facts the engineer adds, e.g. "we rotated the database password at 10:00".',
    )
    hypotheses: list[Annotated[str, Field(max_length=256)]] = Field(
        default_factory=list,
        max_length=MAX_HYPOTHESES,
        description="Suspicions to check; each gets a verdict (Supported, RuledOut or Unknown) in the status.",
    )
    mode: ApiEnum[Mode] = Field(
        default=Mode.ONCE,
        description=(
            "Once investigates each generation of the spec once; Continuous keeps re-investigating while the "
            "Investigation exists."
        ),
    )

    @field_validator("lookback")
    @classmethod
    def _check_lookback(cls, value: str | None) -> str | None:
        if value is not None:
            parse_lookback(value)
        return value

    @model_validator(mode="after")
    def _check_window(self) -> InvestigationSpec:
        if self.lookback is not None and self.since is not None:
            raise ValueError(LOOKBACK_WITH_SINCE_MESSAGE)
        if self.until is not None and self.since is None:
            raise ValueError(UNTIL_WITHOUT_SINCE_MESSAGE)
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ValueError(SINCE_NOT_BEFORE_UNTIL_MESSAGE)
        return self

    def target_reference(self, investigation_namespace: str) -> ObjectRef:
        """The object under investigation: the target, or the Investigation's namespace when there is none."""
        if self.target is None:
            return ObjectRef(kind=TargetKind.NAMESPACE.value, name=investigation_namespace)
        return self.target.reference(investigation_namespace)


class TimeWindow(NamedTuple):
    start: datetime
    end: datetime

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


def resolve_window(spec: InvestigationSpec, now: datetime) -> TimeWindow:
    """The window to investigate: since..until (until capped at now), or lookback (default 30m) before now.

    Raises ValueError for a window that starts after now or is longer than MAX_LOOKBACK.
    """
    if now.tzinfo is None:
        raise ValueError("now must be time zone-aware")
    if spec.since is None:
        lookback = parse_lookback(spec.lookback) if spec.lookback is not None else DEFAULT_LOOKBACK
        return TimeWindow(now - lookback, now)
    end = min(spec.until, now) if spec.until is not None else now
    if spec.since >= end:
        raise ValueError(f"since {format_timestamp(spec.since)} is not before {format_timestamp(end)}")
    window = TimeWindow(spec.since, end)
    if window.duration > MAX_LOOKBACK:
        raise ValueError(f"the window since..until is longer than the maximum of {MAX_LOOKBACK.days}d")
    return window


# --- status ----------------------------------------------------------------------------------------------------


_CONCLUDED_REASONS_CEL = ", ".join(f"'{reason.value}'" for reason in ConcludedReason)


class Condition(ApiModel):
    """A condition, following the Kubernetes API conventions."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule(
                    f"self.type != '{CONCLUDED}' || self.reason in [{_CONCLUDED_REASONS_CEL}]",
                    CONCLUDED_REASON_MESSAGE,
                    ".reason",
                ),
            ]
        }
    )

    type: str = Field(
        max_length=64,
        pattern=CAMEL_CASE_PATTERN,
        description="Type of the condition in CamelCase; every Investigation has Concluded.",
    )
    status: ApiEnum[ConditionStatus] = Field(description="True, False or Unknown.")
    reason: str = Field(
        max_length=128,
        pattern=CAMEL_CASE_PATTERN,
        description=("Machine-readable reason in CamelCase. For Concluded: " + ", ".join(ConcludedReason) + "."),
    )
    message: str = Field(default="", max_length=1024, description="Human-readable details.")
    last_transition_time: Timestamp = Field(description="When the status of the condition last changed.")
    observed_generation: int | None = Field(
        default=None,
        ge=0,
        description="The metadata.generation the condition was set for.",
    )

    @model_validator(mode="after")
    def _check_concluded_reason(self) -> Condition:
        if self.type == CONCLUDED and self.reason not in {reason.value for reason in ConcludedReason}:
            raise ValueError(CONCLUDED_REASON_MESSAGE)
        return self


def find_condition(conditions: list[Condition], condition_type: str) -> Condition | None:
    return next((condition for condition in conditions if condition.type == condition_type), None)


def set_condition(conditions: list[Condition], condition: Condition) -> list[Condition]:
    """Returns conditions with `condition` set in place of the one of its type.

    lastTransitionTime is kept from the existing condition when the status does not change, as the conventions ask.
    """
    updated: list[Condition] = []
    replaced = False
    for existing in conditions:
        if existing.type != condition.type:
            updated.append(existing)
            continue
        if existing.status == condition.status:
            condition = condition.model_copy(update={"last_transition_time": existing.last_transition_time})
        updated.append(condition)
        replaced = True
    if not replaced:
        updated.append(condition)
    return updated


class RootCause(ApiModel):
    """The most likely root cause: the top finding."""

    ref: ObjectRef = Field(description="The object at the root of the problem.")
    category: ApiEnum[Category] = Field(description="What kind of root cause it is.")
    confidence: int = Field(ge=0, le=100, description="Confidence in percent, 0 to 100.")


class Evidence(ApiModel):
    """One observation supporting a finding."""

    source: ApiEnum[EvidenceSource] = Field(
        description="Where the observation comes from: " + ", ".join(EvidenceSource) + ".",
    )
    time: Timestamp | None = Field(default=None, description="When it was observed (RFC 3339), if it has a time.")
    ref: ObjectRef | None = Field(default=None, description="The object the observation is about.")
    detail: str = Field(max_length=1024, description="What was observed, in one or two sentences.")
    query: str | None = Field(
        default=None,
        max_length=2048,
        description="For metric evidence, the PromQL query that shows it, to paste into Prometheus.",
    )


class Finding(ApiModel):
    """A root-cause candidate, with its evidence."""

    rank: int = Field(ge=1, le=MAX_FINDINGS, description="Rank among the findings, 1 being the most likely.")
    ref: ObjectRef = Field(description="The object this candidate blames.")
    category: ApiEnum[Category] = Field(description="What kind of root cause it is.")
    confidence: int = Field(ge=0, le=100, description="Confidence in percent, 0 to 100.")
    summary: str = Field(max_length=1024, description="The candidate in one sentence.")
    path: list[Annotated[str, Field(max_length=512)]] = Field(
        default_factory=list,
        max_length=MAX_PATH_LENGTH,
        description="The dependency path from the symptom to the cause, each entry Kind/namespace/name.",
    )
    evidence: list[Evidence] = Field(
        default_factory=list,
        max_length=MAX_EVIDENCE,
        description="The observations supporting it.",
    )


class HypothesisResult(ApiModel):
    """The verdict on one of the spec's hypotheses."""

    text: str = Field(max_length=256, description="The hypothesis, as given in the spec.")
    verdict: ApiEnum[HypothesisVerdict] = Field(description="Supported, RuledOut or Unknown.")
    reason: str = Field(default="", max_length=1024, description="Why, in one or two sentences.")


class Round(ApiModel):
    """One investigation of one generation of the spec; a follow-up (a changed spec) starts a new round."""

    generation: int = Field(ge=1, description="The metadata.generation of the spec this round investigated.")
    started_time: Timestamp = Field(description="When the round started.")
    concluded_time: Timestamp | None = Field(default=None, description="When the round concluded.")
    answer: SingleLine | None = Field(default=None, description="The round's answer, in one line.")
    reason: ApiEnum[ConcludedReason] | None = Field(default=None, description="How the round concluded.")


class NotificationState(StrEnum):
    """How the latest delivery of an Investigation's findings to one notifier went."""

    SENT = "Sent"
    FAILED = "Failed"
    RETRYING = "Retrying"


class Notification(ApiModel):
    """The latest delivery of this Investigation's findings to one notifier (Slack, PagerDuty, a webhook)."""

    notifier: str = Field(
        min_length=1,
        max_length=63,
        pattern=DNS_LABEL_PATTERN,
        description="Name of the notifier, as defined in the operator's notification config.",
    )
    state: ApiEnum[NotificationState] = Field(
        description=(
            "Sent (the receiver accepted it), Retrying (an attempt failed and another will follow) or Failed "
            "(given up; a NotificationFailed Event says why)."
        ),
    )
    attempts: int = Field(ge=0, le=100, description="Attempts made for the latest delivery, the first included.")
    generation: int | None = Field(
        default=None,
        ge=1,
        description=(
            "The metadata.generation whose answer the delivery carried; after a restart, inquest finishes the "
            "deliveries of the answered generation that are not Sent or Failed yet."
        ),
    )
    last_attempt_time: Timestamp = Field(description="When the latest attempt ended (RFC 3339).")
    message: str = Field(
        default="",
        max_length=1024,
        description="What happened, e.g. the HTTP status the receiver answered; never a URL or a key.",
    )


class InvestigationStatus(ApiModel):
    """What inquest found. Kept under 64 KiB: see fit_within."""

    observed_generation: int | None = Field(
        default=None,
        ge=0,
        description="The metadata.generation the status describes.",
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=MAX_CONDITIONS,
        description="Conditions; Concluded tells whether the investigation is over and how it ended.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    summary: str | None = Field(default=None, max_length=1024, description="The answer, in one sentence.")
    root_cause: RootCause | None = Field(default=None, description="The most likely root cause, if any.")
    findings: list[Finding] = Field(
        default_factory=list,
        max_length=MAX_FINDINGS,
        description="Root-cause candidates, most likely first.",
    )
    unknowns: list[LongText] = Field(
        default_factory=list,
        max_length=MAX_UNKNOWNS,
        description="What could not be checked or concluded, e.g. an unreachable data source.",
    )
    hypotheses: list[HypothesisResult] = Field(
        default_factory=list,
        max_length=MAX_HYPOTHESES,
        description="Verdicts on the spec's hypotheses.",
    )
    rounds: list[Round] = Field(
        default_factory=list,
        max_length=MAX_ROUNDS,
        description=f"One entry per investigated generation of the spec, oldest first; the last {MAX_ROUNDS} kept.",
    )
    started_time: Timestamp | None = Field(default=None, description="When the current round started.")
    concluded_time: Timestamp | None = Field(default=None, description="When the current round concluded.")
    duration_millis: int | None = Field(
        default=None,
        ge=0,
        description="How long the current round took, in milliseconds.",
    )
    notifications: list[Notification] = Field(
        default_factory=list,
        max_length=MAX_NOTIFICATIONS,
        description=(
            "Where the findings were sent (Slack, PagerDuty, webhooks): the latest delivery per notifier. "
            f"Written by the notification dispatcher, at most {MAX_NOTIFICATIONS}."
        ),
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["notifier"]},
    )

    @field_validator("findings")
    @classmethod
    def _check_ranks(cls, findings: list[Finding]) -> list[Finding]:
        ranks = [finding.rank for finding in findings]
        if ranks != list(range(1, len(findings) + 1)):
            raise ValueError(f"findings must be ranked 1..{len(findings)} in order, got ranks {ranks}")
        return findings

    def condition(self, condition_type: str) -> Condition | None:
        return find_condition(self.conditions, condition_type)

    def set_condition(self, condition: Condition) -> None:
        self.conditions = set_condition(self.conditions, condition)

    def record_round(self, new_round: Round) -> None:
        """Adds or replaces the round of new_round's generation, keeping the last MAX_ROUNDS."""
        rounds = [kept for kept in self.rounds if kept.generation != new_round.generation]
        rounds.append(new_round)
        rounds.sort(key=lambda kept: kept.generation)
        self.rounds = rounds[-MAX_ROUNDS:]

    def encoded_size(self) -> int:
        """Bytes of the compact JSON that goes to the API server."""
        return len(self.model_dump_json(by_alias=True, exclude_none=True).encode())

    def fit_within(self, max_bytes: int = MAX_STATUS_BYTES) -> InvestigationStatus:
        """A copy that fits in max_bytes, or self when it already does.

        Drops, in order: the oldest rounds (keeping the latest), the oldest evidence (keeping one per finding),
        the lowest-ranked findings (keeping the first), then shortens long texts. Never silently: an unknown
        says what was dropped. Raises ValueError if even that is not enough.
        """
        if self.encoded_size() <= max_bytes:
            return self
        return _StatusTrimmer(self, max_bytes).trim()


class _StatusTrimmer:
    """Removes one item at a time, measuring after each, so no more is dropped than needed."""

    def __init__(self, status: InvestigationStatus, max_bytes: int) -> None:
        self.status = status.model_copy(deep=True)
        self.max_bytes = max_bytes
        self.dropped_rounds = 0
        self.dropped_evidence = 0
        self.dropped_findings = 0
        self.dropped_unknowns = 0
        self.text_limit: int | None = None

    def trim(self) -> InvestigationStatus:
        self._make_room_for_note()
        for step in (
            self._drop_oldest_round,
            self._drop_oldest_evidence,
            self._drop_lowest_finding,
            self._shorten_texts,
        ):
            while not self._fits() and step():
                pass
        result = self._with_note()
        if result.encoded_size() > self.max_bytes:
            raise ValueError(f"the status cannot be trimmed to {self.max_bytes} bytes")
        return result

    def _note(self) -> str:
        counts = (
            ("oldest rounds dropped", self.dropped_rounds),
            ("oldest evidence items dropped", self.dropped_evidence),
            ("lowest-ranked findings dropped", self.dropped_findings),
            ("oldest unknowns dropped", self.dropped_unknowns),
        )
        parts = [f"{what}: {count}" for what, count in counts if count]
        if self.text_limit is not None:
            parts.append(f"texts shortened to {self.text_limit} characters")
        limit = f"{self.max_bytes // 1024} KiB" if self.max_bytes % 1024 == 0 else f"{self.max_bytes} bytes"
        return f"The status was trimmed to fit the {limit} limit; " + ", ".join(parts) + "."

    def _with_note(self) -> InvestigationStatus:
        return self.status.model_copy(update={"unknowns": [*self.status.unknowns, self._note()]})

    def _fits(self) -> bool:
        return self._with_note().encoded_size() <= self.max_bytes

    def _make_room_for_note(self) -> None:
        excess = len(self.status.unknowns) - (MAX_UNKNOWNS - 1)
        if excess > 0:
            self.status.unknowns = self.status.unknowns[excess:]
            self.dropped_unknowns = excess

    def _drop_oldest_round(self) -> bool:
        if len(self.status.rounds) <= 1:
            return False
        self.status.rounds = self.status.rounds[1:]
        self.dropped_rounds += 1
        return True

    def _drop_oldest_evidence(self) -> bool:
        # Evidence without a time (structure, current state) counts as newest: it stays longest.
        latest = datetime.max.replace(tzinfo=UTC)
        candidates = [
            (item.time or latest, -finding.rank, finding, index)
            for finding in self.status.findings
            if len(finding.evidence) > 1
            for index, item in enumerate(finding.evidence)
        ]
        if not candidates:
            return False
        _, _, finding, index = min(candidates, key=lambda candidate: candidate[:2])
        del finding.evidence[index]
        self.dropped_evidence += 1
        return True

    def _drop_lowest_finding(self) -> bool:
        if len(self.status.findings) <= 1:
            return False
        self.status.findings = self.status.findings[:-1]
        self.dropped_findings += 1
        return True

    def _shorten_texts(self) -> bool:
        limit = 512 if self.text_limit is None else self.text_limit // 2
        if limit < 32:
            return False
        self.text_limit = limit
        status = self.status
        if status.summary is not None:
            status.summary = _shorten(status.summary, limit)
        status.unknowns = [_shorten(text, limit) for text in status.unknowns]
        for condition in status.conditions:
            condition.message = _shorten(condition.message, limit)
        for hypothesis in status.hypotheses:
            hypothesis.reason = _shorten(hypothesis.reason, limit)
        for kept_round in status.rounds:
            if kept_round.answer is not None:
                kept_round.answer = _shorten(kept_round.answer, limit)
        for finding in status.findings:
            finding.summary = _shorten(finding.summary, limit)
            for item in finding.evidence:
                item.detail = _shorten(item.detail, limit)
                if item.query is not None:
                    item.query = _shorten(item.query, limit)
        return True


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


class Investigation(ApiModel):
    """An Investigation asks inquest why something is failing. inquest answers in the status: ranked root-cause
    candidates, each with a category, a confidence and its evidence, and what it could not check."""

    api_version: Literal["inquest.dev/v1alpha1"] = Field(default=API_VERSION, description="inquest.dev/v1alpha1.")
    kind: Literal["Investigation"] = Field(default=KIND, description="Investigation.")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Standard object metadata.")
    spec: InvestigationSpec = Field(
        default_factory=InvestigationSpec,
        description="What to investigate. Changing it starts a new round (a follow-up).",
    )
    status: InvestigationStatus | None = Field(
        default=None,
        description="What inquest found; written by inquest only.",
    )
