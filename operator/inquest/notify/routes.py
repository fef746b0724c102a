"""The notification config: which notifiers exist and which of them receives which answers. Pure.

A notifier is one destination (a Slack incoming webhook, a PagerDuty Events API v2 integration, a generic JSON
webhook). Its URL or key is never written in the config: `secretRef` names a key of a Secret that the operator
reads when it sends, from the file the kubelet mounts (notify/mounted.py), or through the API only when opted into
(`get` on that Secret by name, nothing broader). A route sends the answers of the
Investigations in some namespaces (globs), with some verdicts and at least some confidence, to some notifiers.
An answer goes to every notifier of every route it matches, once each. See docs/notifications.md.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from typing import Annotated, Any, Final, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from inquest.api import models
from inquest.categories import ConcludedReason

DEFAULT_PAGERDUTY_EVENTS_URL: Final = "https://events.pagerduty.com/v2/enqueue"
SECRET_KEY_PATTERN: Final = r"^[-._a-zA-Z0-9]+$"
# RFC 9110 token characters: what a header name may contain.
HEADER_NAME_PATTERN: Final = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"
NAMESPACE_GLOB_PATTERN: Final = r"^[a-z0-9*?\[\]!-]+$"
NOTIFIABLE_VERDICTS: Final = (
    ConcludedReason.ROOT_CAUSE_IDENTIFIED,
    ConcludedReason.INCONCLUSIVE,
    ConcludedReason.NO_FAULT_FOUND,
)
DEFAULT_VERDICTS: Final = (ConcludedReason.ROOT_CAUSE_IDENTIFIED, ConcludedReason.INCONCLUSIVE)
# Keys people reach for that would put a credential in plain config; each gets a pointed error.
_PLAIN_CREDENTIAL_KEYS: Final = ("url", "webhookUrl", "routingKey", "integrationKey", "token", "value")

Severity = Literal["critical", "error", "warning", "info"]


class ConfigModel(BaseModel):
    """camelCase in YAML, snake_case in Python, unknown keys refused, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, validate_by_alias=True, extra="forbid", frozen=True
    )


class SecretRef(ConfigModel):
    """One key of one Secret: where a notifier's URL or key is kept."""

    namespace: str = Field(max_length=63, pattern=models.DNS_LABEL_PATTERN)
    name: str = Field(max_length=253, pattern=models.DNS_SUBDOMAIN_PATTERN)
    key: str = Field(max_length=253, pattern=SECRET_KEY_PATTERN)

    def __str__(self) -> str:
        return f"Secret {self.namespace}/{self.name} key {self.key}"


def _refuse_plain_credentials(data: Any, holder: str) -> Any:
    if isinstance(data, dict):
        for key in _PLAIN_CREDENTIAL_KEYS:
            if key in data:
                raise ValueError(
                    f"{holder}: {key!r} would put a URL or key in plain config; store it in a Secret and name it "
                    "with secretRef: {namespace, name, key}"
                )
    return data


class _Notifier(ConfigModel):
    name: str = Field(max_length=63, pattern=models.DNS_LABEL_PATTERN, description="Unique; shown in the status.")
    secret_ref: SecretRef

    @model_validator(mode="before")
    @classmethod
    def _no_plain_credentials(cls, data: Any) -> Any:
        return _refuse_plain_credentials(data, "notifier")


class SlackNotifier(_Notifier):
    """A Slack incoming webhook; secretRef holds its URL (https://hooks.slack.com/services/...)."""

    type: Literal["Slack"]


class PagerDutyNotifier(_Notifier):
    """A PagerDuty Events API v2 integration; secretRef holds its integration (routing) key."""

    type: Literal["PagerDuty"]
    # The endpoint carries no credential (the routing key travels in the body), so it may be plain config:
    # the EU service region or an egress proxy.
    events_url: str = Field(default=DEFAULT_PAGERDUTY_EVENTS_URL, pattern=r"^https?://[^\s/?#]+[^\s?#]*$")
    severity: Severity | None = Field(
        default=None, description="Severity of every trigger; by default derived from the verdict."
    )


class WebhookHeader(ConfigModel):
    """A header sent with every request to a webhook, its value read from a Secret (e.g. Authorization)."""

    name: str = Field(max_length=256, pattern=HEADER_NAME_PATTERN)
    secret_ref: SecretRef

    @model_validator(mode="before")
    @classmethod
    def _no_plain_credentials(cls, data: Any) -> Any:
        return _refuse_plain_credentials(data, "webhook header")


class WebhookNotifier(_Notifier):
    """Any receiver of inquest's generic JSON document (ServiceNow, a Teams workflow, an in-house bridge);
    secretRef holds its URL, headers may add credentials."""

    type: Literal["Webhook"]
    headers: list[WebhookHeader] = Field(default_factory=list, max_length=16)


NotifierConfig = Annotated[SlackNotifier | PagerDutyNotifier | WebhookNotifier, Field(discriminator="type")]


class Route(ConfigModel):
    """Sends the answers that match all of its conditions to its notifiers."""

    notifiers: list[Annotated[str, Field(max_length=63)]] = Field(min_length=1)
    namespaces: list[Annotated[str, Field(min_length=1, max_length=253, pattern=NAMESPACE_GLOB_PATTERN)]] = Field(
        default_factory=lambda: ["*"], min_length=1, description="Globs on the Investigation's namespace."
    )
    verdicts: list[ConcludedReason] = Field(default_factory=lambda: list(DEFAULT_VERDICTS), min_length=1)
    min_confidence: int = Field(default=0, ge=0, le=100, description="Of the top finding; no finding counts as 0.")

    @model_validator(mode="after")
    def _check_verdicts(self) -> Route:
        refused = [verdict for verdict in self.verdicts if verdict not in NOTIFIABLE_VERDICTS]
        if refused:
            raise ValueError(
                f"verdicts {', '.join(refused)} are never notified; use "
                + ", ".join(verdict.value for verdict in NOTIFIABLE_VERDICTS)
            )
        return self

    def matches(self, namespace: str, verdict: str, confidence: int) -> bool:
        return (
            verdict in self.verdicts
            and confidence >= self.min_confidence
            and any(fnmatch.fnmatchcase(namespace, pattern) for pattern in self.namespaces)
        )


class DeliverySettings(ConfigModel):
    """How hard to try: per-request timeout, attempts, back-off, concurrency, secret caching."""

    timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    max_attempts: int = Field(default=5, ge=1, le=20)
    initial_backoff_seconds: float = Field(default=1.0, ge=0, le=600)
    max_backoff_seconds: float = Field(default=60.0, ge=0, le=3600)
    max_concurrency: int = Field(
        default=4,
        ge=1,
        le=64,
        description="HTTP requests in flight at once, per notifier (a hung one holds only its own).",
    )
    max_pending: int = Field(default=1000, ge=1, le=100_000, description="Deliveries queued or retrying at once.")
    secret_cache_seconds: float = Field(default=60.0, ge=0, le=3600, description="0 reads the Secret every time.")


class NotifyConfig(ConfigModel):
    """The whole `--notify-config` file."""

    cluster_name: str = Field(default="", max_length=128, description="Names the cluster in messages.")
    notifiers: list[NotifierConfig] = Field(default_factory=list, max_length=models.MAX_NOTIFICATIONS)
    routes: list[Route] = Field(default_factory=list)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)

    @model_validator(mode="after")
    def _check_references(self) -> NotifyConfig:
        names = [notifier.name for notifier in self.notifiers]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"notifier names must be unique: {', '.join(duplicates)}")
        for index, route in enumerate(self.routes):
            unknown = [name for name in route.notifiers if name not in names]
            if unknown:
                raise ValueError(f"routes[{index}] names unknown notifiers: {', '.join(unknown)}")
        return self

    def notifier(self, name: str) -> NotifierConfig | None:
        return next((notifier for notifier in self.notifiers if notifier.name == name), None)

    def select(self, namespace: str, verdict: str, confidence: int) -> list[NotifierConfig]:
        """The notifiers of every matching route, each once, in the order the notifiers are defined."""
        wanted = {
            name for route in self.routes if route.matches(namespace, verdict, confidence) for name in route.notifiers
        }
        return [notifier for notifier in self.notifiers if notifier.name in wanted]

    def secret_refs(self) -> list[SecretRef]:
        """Every Secret key the config reads: what the operator must be granted `get` on."""
        refs: list[SecretRef] = []
        for notifier in self.notifiers:
            refs.append(notifier.secret_ref)
            if isinstance(notifier, WebhookNotifier):
                refs.extend(header.secret_ref for header in notifier.headers)
        return _unique(refs)


def _unique(refs: Iterable[SecretRef]) -> list[SecretRef]:
    seen: list[SecretRef] = []
    for ref in refs:
        if ref not in seen:
            seen.append(ref)
    return seen


class ConfigError(ValueError):
    """The notification config is invalid; the message names each field, never a value (it may be a secret)."""


def parse_config(text: str) -> NotifyConfig:
    """The config from YAML text; raises ConfigError naming what is wrong."""
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"not YAML: {error}") from None
    try:
        return NotifyConfig.model_validate(document)
    except ValidationError as error:
        problems = [
            f"{'.'.join(str(part) for part in item['loc']) or '(document)'}: {item['msg']}"
            for item in error.errors(include_input=False, include_url=False)
        ]
        raise ConfigError("; ".join(problems)) from None


SECRET_READER_ROLE: Final = "inquest-notify-secrets"


def secret_reader_rbac(config: NotifyConfig, subjects: list[dict[str, str]]) -> list[dict[str, Any]]:
    """A Role per namespace granting `get` on exactly the Secrets the config names (resourceNames), and its
    RoleBinding to subjects: the only Secret access notifications need. No list, no watch, no other Secret."""
    names_by_namespace: dict[str, set[str]] = {}
    for ref in config.secret_refs():
        names_by_namespace.setdefault(ref.namespace, set()).add(ref.name)
    manifests: list[dict[str, Any]] = []
    for namespace, names in sorted(names_by_namespace.items()):
        metadata = {"name": SECRET_READER_ROLE, "namespace": namespace, "labels": {"app.kubernetes.io/name": "inquest"}}
        manifests.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": metadata,
                "rules": [
                    {"apiGroups": [""], "resources": ["secrets"], "resourceNames": sorted(names), "verbs": ["get"]}
                ],
            }
        )
        manifests.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": metadata,
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": SECRET_READER_ROLE},
                "subjects": subjects,
            }
        )
    return manifests
