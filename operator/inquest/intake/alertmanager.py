"""Alertmanager webhook payloads (version 4) mapped to Investigations: pure, no I/O.

One alert group is one Investigation. Its name comes from the group key (so a repeat of the group finds it), its
target from the alerts' labels (an ordered label -> kind mapping), its question from the alerts' summary or
description, and its `spec.context` lists the group's alerts, one line each, credentials redacted. A repeat of the
group rewrites only the lines of the alerts it carries, keyed by fingerprint; lines someone else added (a
follow-up's context) are kept as they are. When nothing changed, the context is the same and nothing is written,
so Alertmanager's repeat notifications never start a new round on their own.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from inquest.api import models
from inquest.categories import Mode, TargetKind
from inquest.engine.redaction import redact, redact_named_value

SOURCE_LABEL: Final = "inquest.dev/source"
SOURCE_VALUE: Final = "alertmanager"
GROUP_ANNOTATION: Final = "inquest.dev/alertmanager-group"
"""The SHA-256 of the group key, so a name collision (or a hand-made Investigation of that name) is noticed."""
RECEIVER_ANNOTATION: Final = "inquest.dev/alertmanager-receiver"

MAX_NAME_LENGTH: Final = 63
HASH_LENGTH: Final = 10

_DNS_LABEL = re.compile(models.DNS_LABEL_PATTERN)
_DNS_SUBDOMAIN = re.compile(models.DNS_SUBDOMAIN_PATTERN)
_FINGERPRINT = re.compile(r"^[0-9a-fA-F]{1,64}$")
_ZERO_TIME_PREFIX: Final = "0001-01-01T00:00:00"

# The markers that end the lines the intake owns in spec.context.
_GROUP_MARKER: Final = " [alertmanager group]"
_MORE_MARKER: Final = " [alertmanager more]"
_ALERT_LINE = re.compile(
    r"^(?P<status>firing since|resolved at) (?P<time>\S+): .* \[alert (?P<fingerprint>[0-9a-f]{1,64})\]$"
)


# --- the payload -----------------------------------------------------------------------------------------------


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


def _zero_time_is_none(value: object) -> object:
    # Alertmanager sends endsAt 0001-01-01T00:00:00Z for an alert with no end yet.
    if isinstance(value, str) and value.startswith(_ZERO_TIME_PREFIX):
        return None
    return value


OptionalTime = Annotated[AwareDatetime | None, BeforeValidator(_zero_time_is_none)]
LabelSet = dict[str, str]


class _Payload(BaseModel):
    # Unknown fields are ignored: Alertmanager may add fields within version 4.
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class Alert(_Payload):
    """One alert of the group, as Alertmanager sends it."""

    status: AlertStatus
    labels: LabelSet
    annotations: LabelSet = Field(default_factory=dict)
    starts_at: OptionalTime = Field(default=None, alias="startsAt")
    ends_at: OptionalTime = Field(default=None, alias="endsAt")
    generator_url: str = Field(default="", alias="generatorURL")
    fingerprint: str = Field(default="", max_length=64)

    @field_validator("fingerprint")
    @classmethod
    def _check_fingerprint(cls, value: str) -> str:
        if value and not _FINGERPRINT.fullmatch(value):
            raise ValueError("must be hexadecimal, as Alertmanager writes fingerprints")
        return value.lower()

    @property
    def key(self) -> str:
        """The fingerprint, or (from an older sender without one) a hash of the labels, which is what it is."""
        if self.fingerprint:
            return self.fingerprint
        text = "\x00".join(f"{name}\x00{value}" for name, value in sorted(self.labels.items()))
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "") or "alert"


class WebhookPayload(_Payload):
    """The body Alertmanager POSTs to a webhook receiver (payload version 4)."""

    version: Literal["4"]
    group_key: str = Field(alias="groupKey", min_length=1)
    truncated_alerts: int = Field(default=0, alias="truncatedAlerts", ge=0)
    status: AlertStatus
    receiver: str = ""
    group_labels: LabelSet = Field(default_factory=dict, alias="groupLabels")
    common_labels: LabelSet = Field(default_factory=dict, alias="commonLabels")
    common_annotations: LabelSet = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field(default="", alias="externalURL")
    alerts: list[Alert] = Field(min_length=1)

    @property
    def firing(self) -> list[Alert]:
        """The firing alerts, oldest first (then by fingerprint), so every choice made from them is stable."""
        alerts = [alert for alert in self.alerts if alert.status == AlertStatus.FIRING]
        return sorted(alerts, key=lambda alert: (_sort_time(alert.starts_at), alert.key))


def _sort_time(moment: datetime | None) -> datetime:
    return moment if moment is not None else datetime.max.replace(tzinfo=UTC)


# --- settings --------------------------------------------------------------------------------------------------


DEFAULT_TARGET_LABELS: Final[dict[str, TargetKind]] = {
    "deployment": TargetKind.DEPLOYMENT,
    "statefulset": TargetKind.STATEFUL_SET,
    "daemonset": TargetKind.DAEMON_SET,
    "job_name": TargetKind.JOB,
    "cronjob": TargetKind.CRON_JOB,
    "pod": TargetKind.POD,
    "node": TargetKind.NODE,
    "service": TargetKind.SERVICE,
}
"""Label -> kind, in priority order (most specific first). `job` is not in it: in Prometheus that label is the
scrape job (`kube-state-metrics`), not a Kubernetes Job; kube-state-metrics names Jobs in `job_name`.
`service` comes last for the same reason: scraped series carry the scraped Service's name there."""


class IntakeSettings(BaseModel):
    """How alert groups become Investigations."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target_labels: dict[str, TargetKind] = Field(
        default_factory=lambda: dict(DEFAULT_TARGET_LABELS),
        description="Alert label -> target kind, in priority order; the first label present (and valid) wins.",
    )
    namespace_label: str = Field(default="namespace", min_length=1)
    investigation_namespace: str | None = Field(
        default=None,
        pattern=models.DNS_LABEL_PATTERN,
        max_length=63,
        description="Put every Investigation here; otherwise in the group's namespace label, else the fallback.",
    )
    fallback_namespace: str = Field(default="default", pattern=models.DNS_LABEL_PATTERN, max_length=63)
    name_prefix: str = Field(default="alert-", pattern=r"^([a-z0-9][-a-z0-9]*)?$", max_length=20)
    lookback: str = Field(default="1h", pattern=models.LOOKBACK_PATTERN)
    mode: Mode = Mode.ONCE
    question_annotations: tuple[str, ...] = ("summary", "description", "message")
    max_alert_lines: int = Field(default=15, ge=1, le=models.MAX_CONTEXT - 2)
    max_line_chars: int = Field(default=400, ge=80, le=1024)

    @field_validator("lookback")
    @classmethod
    def _check_lookback(cls, value: str) -> str:
        models.parse_lookback(value)
        return value


# --- mapping ---------------------------------------------------------------------------------------------------


def investigation_name(group_key: str, alertname: str = "", prefix: str = "alert-") -> str:
    """A DNS-1123 label of at most 63 characters: prefix, a slug of the alert name, and a hash of the group key.

    The hash makes it unique per group and the same for every notification of that group."""
    digest = hashlib.sha256(group_key.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_LENGTH]
    room = MAX_NAME_LENGTH - len(prefix) - HASH_LENGTH - 1
    slug = re.sub(r"[^a-z0-9]+", "-", _ascii(alertname).lower()).strip("-")[:room].strip("-")
    name = f"{prefix}{slug}-{digest}" if slug else f"{prefix}{digest}"
    if not _DNS_LABEL.fullmatch(name):  # only an empty prefix with an empty slug could get here
        name = f"a{digest}"
    return name


def group_digest(group_key: str) -> str:
    return hashlib.sha256(group_key.encode("utf-8", "surrogatepass")).hexdigest()


def investigation_namespace(payload: WebhookPayload, settings: IntakeSettings) -> str:
    """Fixed by the settings, else the group's namespace label, else the fallback.

    Only a group label counts: it is the same in every notification of the group, so a repeat finds the
    Investigation where the first notification put it. (The target may still be in another namespace.)"""
    if settings.investigation_namespace:
        return settings.investigation_namespace
    value = payload.group_labels.get(settings.namespace_label, "")
    if _valid_namespace(value):
        return value
    return settings.fallback_namespace


def target_for(payload: WebhookPayload, settings: IntakeSettings, namespace: str) -> models.Target | None:
    """The object the labels name: from the labels all alerts share, else from the oldest firing alert."""
    sources: list[Mapping[str, str]] = [payload.common_labels]
    primary = _primary(payload)
    if primary is not None:
        sources.append(primary.labels)
    for labels in sources:
        target = _target_from_labels(labels, settings, namespace)
        if target is not None:
            return target
    return None


def _target_from_labels(
    labels: Mapping[str, str], settings: IntakeSettings, investigation_ns: str
) -> models.Target | None:
    for label, kind in settings.target_labels.items():
        value = labels.get(label, "")
        if not value or len(value) > 253 or not _DNS_SUBDOMAIN.fullmatch(value):
            continue
        if kind in (TargetKind.NODE, TargetKind.NAMESPACE):
            return models.Target(kind=kind, name=value)
        target_ns = labels.get(settings.namespace_label, "")
        if not _valid_namespace(target_ns) or target_ns == investigation_ns:
            return models.Target(kind=kind, name=value)
        return models.Target(kind=kind, name=value, namespace=target_ns)
    # No object named, but a namespace is: investigate that namespace when it is not the Investigation's own.
    target_ns = labels.get(settings.namespace_label, "")
    if _valid_namespace(target_ns) and target_ns != investigation_ns:
        return models.Target(kind=TargetKind.NAMESPACE, name=target_ns)
    return None


def _valid_namespace(value: str) -> bool:
    return 0 < len(value) <= 63 and bool(_DNS_LABEL.fullmatch(value))


def _primary(payload: WebhookPayload) -> Alert | None:
    firing = payload.firing
    if firing:
        return firing[0]
    return min(payload.alerts, key=lambda alert: (_sort_time(alert.starts_at), alert.key), default=None)


def question_for(payload: WebhookPayload, settings: IntakeSettings) -> str:
    """`<alertname>: <summary>`, from the oldest firing alert's annotations, else the common ones."""
    primary = _primary(payload)
    alertname = payload.common_labels.get("alertname") or (primary.name if primary else "alert")
    sources = [primary.annotations] if primary is not None else []
    sources.append(payload.common_annotations)
    for notes in sources:
        for key in settings.question_annotations:
            text = clean_text(notes.get(key, ""))
            if text:
                return _bounded(f"{clean_text(alertname)}: {redact(text)}", 1024)
    return _bounded(f"why is the alert {clean_text(alertname)} firing?", 1024)


def build_investigation(payload: WebhookPayload, settings: IntakeSettings) -> models.Investigation:
    """The Investigation the first notification of a group creates."""
    namespace = investigation_namespace(payload, settings)
    alertname = payload.common_labels.get("alertname") or payload.group_labels.get("alertname") or ""
    name = investigation_name(payload.group_key, alertname, settings.name_prefix)
    spec = models.InvestigationSpec(
        target=target_for(payload, settings, namespace),
        question=question_for(payload, settings),
        lookback=settings.lookback,
        mode=settings.mode,
        context=merge_context([], payload, settings),
    )
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": {SOURCE_LABEL: SOURCE_VALUE},
        "annotations": {
            GROUP_ANNOTATION: group_digest(payload.group_key),
            RECEIVER_ANNOTATION: _bounded(clean_text(payload.receiver), 253),
        },
    }
    return models.Investigation(metadata=metadata, spec=spec)


# --- the context lines -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _AlertLine:
    fingerprint: str
    firing: bool
    time: str
    text: str


def _ordered(lines: Sequence[_AlertLine]) -> list[_AlertLine]:
    """Firing first, then resolved; within each, the most recent first (RFC 3339 UTC strings sort as times do)."""

    def newest_first(firing: bool) -> list[_AlertLine]:
        chosen = [line for line in lines if line.firing == firing]
        return sorted(chosen, key=lambda line: (line.time, line.fingerprint), reverse=True)

    return [*newest_first(True), *newest_first(False)]


def merge_context(existing: Sequence[str], payload: WebhookPayload, settings: IntakeSettings) -> list[str]:
    """The context after this notification: the group line, one line per alert, then everyone else's lines.

    The alerts this notification carries replace their earlier lines (a resolved alert becomes `resolved at`);
    alerts it does not carry keep theirs. Firing alerts come first, most recent first; what does not fit in
    max_alert_lines (or in the CRD's 20 entries) is dropped, and this notification's alerts among it are counted
    in a last `... more` line. Idempotent: the same notification on its own result gives the same context, so a
    repeat writes nothing."""
    others: list[str] = []
    known: dict[str, _AlertLine] = {}
    for line in existing:
        if line.endswith((_GROUP_MARKER, _MORE_MARKER)):
            continue
        parsed = _parse_alert_line(line)
        if parsed is None:
            others.append(line)
        else:
            known[parsed.fingerprint] = parsed
    for alert in payload.alerts:
        known[alert.key] = _alert_line(alert, payload, settings)
    others = others[: models.MAX_CONTEXT - 2]
    room = max(0, min(settings.max_alert_lines, models.MAX_CONTEXT - 2 - len(others)))
    ordered = _ordered(list(known.values()))
    shown = ordered[:room]
    # Only this notification's alerts are counted: older lines pushed out are history, and counting them would
    # make a repeat of the same notification change the count (and start a round) for nothing.
    listed = {line.fingerprint for line in shown}
    unlisted = [known[key] for key in dict.fromkeys(alert.key for alert in payload.alerts) if key not in listed]
    hidden = len(unlisted) + payload.truncated_alerts
    lines = [_group_line(payload, settings), *(line.text for line in shown)]
    if hidden:
        firing_hidden = sum(1 for line in unlisted if line.firing)
        lines.append(_more_line(hidden, firing_hidden, payload.truncated_alerts))
    return [*lines, *others]


def _parse_alert_line(line: str) -> _AlertLine | None:
    match = _ALERT_LINE.match(line)
    if match is None:
        return None
    return _AlertLine(
        fingerprint=match["fingerprint"],
        firing=match["status"] == "firing since",
        time=match["time"],
        text=line,
    )


def _alert_line(alert: Alert, payload: WebhookPayload, settings: IntakeSettings) -> _AlertLine:
    firing = alert.status == AlertStatus.FIRING
    if firing:
        moment = alert.starts_at
        head = "firing since"
    else:
        moment = alert.ends_at or alert.starts_at
        head = "resolved at"
    time = models.format_timestamp(moment) if moment is not None else "unknown"
    # The labels that tell this alert from the group's others; the group's own are on the group line.
    shown = {
        name: value
        for name, value in sorted(alert.labels.items())
        if name != "alertname" and payload.group_labels.get(name) != value
    }
    labels = ", ".join(
        f"{clean_text(name)}={redact_named_value(name, clean_text(value))}" for name, value in shown.items()
    )
    description = next(
        (clean_text(alert.annotations[key]) for key in settings.question_annotations if alert.annotations.get(key)),
        "",
    )
    body = (
        clean_text(alert.name)
        + (f" ({labels})" if labels else "")
        + (f": {redact(description)}" if description else "")
    )
    marker = f" [alert {alert.key}]"
    prefix = f"{head} {time}: "
    text = prefix + _bounded(body, settings.max_line_chars - len(prefix) - len(marker)) + marker
    return _AlertLine(fingerprint=alert.key, firing=firing, time=time, text=text)


def _group_line(payload: WebhookPayload, settings: IntakeSettings) -> str:
    labels = ", ".join(
        f"{clean_text(name)}={redact_named_value(name, clean_text(value))}"
        for name, value in sorted(payload.group_labels.items())
    )
    receiver = clean_text(payload.receiver)
    text = f"Alertmanager alert group {{{labels}}}" + (f" via receiver {receiver}" if receiver else "")
    return _bounded(text, settings.max_line_chars - len(_GROUP_MARKER)) + _GROUP_MARKER


def _more_line(hidden: int, firing_hidden: int, truncated: int) -> str:
    parts = [f"... and {hidden} more alert{'s' if hidden != 1 else ''} in this group not listed"]
    details = []
    if firing_hidden:
        details.append(f"{firing_hidden} of them firing")
    if truncated:
        details.append(f"{truncated} truncated by Alertmanager")
    if details:
        parts.append(f" ({', '.join(details)})")
    return "".join(parts) + _MORE_MARKER


# --- text hygiene ----------------------------------------------------------------------------------------------


def clean_text(text: str) -> str:
    """One line of printable text: control and format characters, line breaks and lone surrogates (which JSON
    allows and UTF-8 cannot carry) become spaces, and runs of spaces collapse."""
    text = "".join(" " if unicodedata.category(character)[0] == "C" else character for character in text)
    return " ".join(text.split())


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def _bounded(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 1)] + "…"
