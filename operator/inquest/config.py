"""The operator's configuration: one YAML document in one ConfigMap, validated, overridable, reloaded live.

    prometheus:      connection, timeouts, budget, headers, and credentials as Secret references
    metricCatalog:   overrides merged into the default metric catalog (inquest.metrics.catalog)
    notifications:   notifier routes, kept as given (their model arrives with the notifications issue)
    watch:           namespaces, watchSecrets, continuousIntervalSeconds

The document holds no secret values: a credential is `{secretKeyRef: {name, key}}`, which the Helm chart mounts at
<secrets dir>/<name>/<key>, or `{file: PATH}` for local runs. Overrides (environment variables, command-line flags)
apply on top of the document, field by field; `load_config` raises `ConfigError`, whose message names each field
that is wrong and what it allows. `ConfigWatcher` keeps the last good configuration, applies a valid change, and
reports an invalid one (a Warning Event and a log line naming the field) while the last good stays in force.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import UnionType
from typing import Any, Final, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from inquest.clients.prometheus import PrometheusSettings
from inquest.metrics.catalog import DEFAULT_CATALOG, Catalog

logger = logging.getLogger(__name__)
ResultT = TypeVar("ResultT")

# The ConfigMap key that holds the document.
CONFIG_KEY: Final = "config.yaml"
# Where the operator finds its ConfigMap, as NAMESPACE/NAME (the chart sets it).
CONFIG_MAP_ENV: Final = "INQUEST_CONFIG_MAP"
# Where a secretKeyRef {name, key} is read from: <dir>/<name>/<key>. The chart mounts each referenced Secret there.
SECRETS_DIR: Final = Path("/var/run/secrets/inquest")
SECRETS_DIR_ENV: Final = "INQUEST_SECRETS_DIR"
# Fields that only take effect when the operator starts: they decide what kopf watches (and the RBAC it needs).
RESTART_FIELDS: Final = ("watch.namespaces", "watch.watchSecrets")
# Sections given as-is to another model: a change anywhere in them is reported as the section.
OPAQUE_SECTIONS: Final = ("metricCatalog", "notifications")

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_SHOWN_INPUT_CHARS: Final = 60
_NOT_ECHOED: Final = ("prometheus.headers",)  # header values may be credentials


class _Model(BaseModel):
    """camelCase in YAML, snake_case in Python; unknown fields are errors; `null` means the default."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, validate_by_alias=True, validate_by_name=False
    )

    @model_validator(mode="before")
    @classmethod
    def _null_means_default(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            return {key: value for key, value in data.items() if value is not None}
        return data


class SecretKeyRef(_Model):
    """One key of a Secret in the operator's namespace, mounted by the chart (never read through the API)."""

    name: str = Field(min_length=1, max_length=253)
    key: str = Field(min_length=1, max_length=253)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _DNS_SUBDOMAIN.match(value):
            raise ValueError("must be a Secret name: lowercase letters, digits, '-' and '.'")
        return value

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        if not _SECRET_KEY.match(value):
            raise ValueError("must be a Secret key: letters, digits, '-', '_' and '.'")
        return value


class CredentialRef(_Model):
    """Where a credential is: exactly one of secretKeyRef (in a cluster) and file (local runs)."""

    secret_key_ref: SecretKeyRef | None = None
    file: Path | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> CredentialRef:
        if (self.secret_key_ref is None) == (self.file is None):
            raise ValueError("give exactly one of secretKeyRef {name, key} and file")
        return self

    def path(self, secrets_dir: Path) -> Path:
        if self.file is not None:
            return self.file
        assert self.secret_key_ref is not None
        return secrets_dir / self.secret_key_ref.name / self.secret_key_ref.key


class BasicAuth(_Model):
    username: str = Field(min_length=1)
    password: CredentialRef


class PrometheusAuth(_Model):
    bearer_token: CredentialRef | None = None
    basic_auth: BasicAuth | None = None
    ca: CredentialRef | None = None
    insecure_skip_verify: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> PrometheusAuth:
        if self.bearer_token is not None and self.basic_auth is not None:
            raise ValueError("configure at most one of bearerToken and basicAuth")
        if self.ca is not None and self.insecure_skip_verify:
            raise ValueError("ca and insecureSkipVerify contradict each other: choose one")
        return self

    def credentials(self) -> dict[str, CredentialRef]:
        """Each configured credential by its field path."""
        found = {"prometheus.auth.bearerToken": self.bearer_token, "prometheus.auth.ca": self.ca}
        if self.basic_auth is not None:
            found["prometheus.auth.basicAuth.password"] = self.basic_auth.password
        return {field: ref for field, ref in found.items() if ref is not None}


class PrometheusConfig(_Model):
    url: str | None = Field(default=None, description="Empty: Prometheus is not configured.")
    query_timeout_seconds: float = Field(default=2.0, gt=0, le=300)
    budget_seconds: float = Field(default=3.0, gt=0, le=600)
    headers: dict[str, str] = Field(default_factory=dict, repr=False)
    auth: PrometheusAuth = PrometheusAuth()

    # URL and header rules are PrometheusSettings' own, so both places accept exactly the same values.
    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return _delegate(lambda: PrometheusSettings(url=value).url)

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        return _delegate(lambda: PrometheusSettings(url="http://check", extra_headers=value).extra_headers)

    @model_validator(mode="after")
    def _authorization_header(self) -> PrometheusConfig:
        configured = self.auth.bearer_token is not None or self.auth.basic_auth is not None
        if configured and any(name.lower() == "authorization" for name in self.headers):
            raise ValueError("headers set Authorization, which conflicts with auth: use one of them")
        return self


class WatchConfig(_Model):
    namespaces: tuple[str, ...] = Field(default=(), description="Empty: all namespaces.")
    watch_secrets: bool = False
    continuous_interval_seconds: int = Field(default=15, ge=1, le=3600)

    @field_validator("namespaces")
    @classmethod
    def _namespaces(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if len(name) > 63 or not _DNS_LABEL.match(name):
                raise ValueError(f"{name!r} is not a namespace name (lowercase letters, digits and '-', 63 at most)")
        if len(set(value)) != len(value):
            raise ValueError("lists a namespace twice")
        return value

    @property
    def continuous_interval(self) -> timedelta:
        return timedelta(seconds=self.continuous_interval_seconds)


class OperatorConfig(_Model):
    prometheus: PrometheusConfig = PrometheusConfig()
    metric_catalog: dict[str, Any] = Field(default_factory=dict)
    notifications: dict[str, Any] = Field(default_factory=dict)
    watch: WatchConfig = WatchConfig()

    @field_validator("metric_catalog")
    @classmethod
    def _metric_catalog(cls, value: dict[str, Any]) -> dict[str, Any]:
        _merge_catalog(value)  # its ConfigError reaches load_config through pydantic
        return value

    def catalog(self) -> Catalog:
        """The default metric catalog with this configuration's overrides."""
        return DEFAULT_CATALOG.merged(self.metric_catalog) if self.metric_catalog else DEFAULT_CATALOG

    def prometheus_settings(self, secrets_dir: Path | None = None) -> PrometheusSettings | None:
        """The Prometheus client's settings, or None without a URL. Reads the basic-auth password file (the bearer
        token file is re-read by the client itself, so a rotated token is picked up)."""
        prometheus = self.prometheus
        if prometheus.url is None:
            return None
        directory = secrets_dir or secrets_dir_from(os.environ)
        auth = prometheus.auth
        password = None
        if auth.basic_auth is not None:
            field = "prometheus.auth.basicAuth.password"
            password = SecretStr(_read_credential(field, auth.basic_auth.password.path(directory)))
        return _settings(
            url=prometheus.url,
            query_timeout_seconds=prometheus.query_timeout_seconds,
            budget_seconds=prometheus.budget_seconds,
            extra_headers=dict(prometheus.headers),
            bearer_token_file=auth.bearer_token.path(directory) if auth.bearer_token else None,
            basic_auth_username=auth.basic_auth.username if auth.basic_auth else None,
            basic_auth_password=password,
            ca_file=auth.ca.path(directory) if auth.ca else None,
            insecure_skip_verify=auth.insecure_skip_verify,
        )


def _settings(**values: Any) -> PrometheusSettings:
    try:
        return PrometheusSettings(**values)
    except ValidationError as error:
        raise ConfigError([Problem("prometheus", _message(detail, echo=False)) for detail in error.errors()]) from None


# --- errors ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    field: str  # dotted path as written in the YAML, e.g. prometheus.queryTimeoutSeconds
    message: str  # what is wrong and what is allowed

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class ConfigError(ValueError):
    """The configuration is invalid; `problems` names each field and what it allows."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(str(problem) for problem in self.problems))

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(problem.field for problem in self.problems)


def _delegate(check: Callable[[], ResultT]) -> ResultT:
    try:
        return check()
    except ValidationError as error:
        raise ValueError(_message(error.errors()[0], echo=False)) from None


def _merge_catalog(overrides: dict[str, Any]) -> Catalog:
    """DEFAULT_CATALOG.merged, with its errors located in the overrides as the user wrote them."""
    templates = overrides.get("templates", [])

    def named(item: Any) -> bool:
        return isinstance(item, Mapping) and isinstance(item.get("name"), str)

    if not isinstance(templates, list) or not all(named(item) for item in templates):
        raise ConfigError(
            [Problem("metricCatalog.templates", "must be a list of templates, each with a name (merged by name)")]
        )
    try:
        return DEFAULT_CATALOG.merged(overrides)
    except ValidationError as error:
        defaults = [template.name for template in DEFAULT_CATALOG.templates]
        merged_names = defaults + [item["name"] for item in templates if item["name"] not in defaults]
        positions = {item["name"]: index for index, item in enumerate(templates)}
        problems = []
        for detail in error.errors():
            location = list(detail["loc"])
            if len(location) >= 2 and location[0] == "templates" and isinstance(location[1], int):
                name = merged_names[location[1]] if location[1] < len(merged_names) else "?"
                index = positions.get(name)
                location[1] = f"[{index}]" if index is not None else f"[name={name}]"
                message = f"{_message(detail)} (template {name!r})"
            else:
                message = _message(detail)
            problems.append(Problem(_join(["metricCatalog", *location]), message))
        raise ConfigError(problems) from None


_MESSAGES: Final = {
    "missing": "is required",
    "extra_forbidden": "unknown field",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "dict_type": "must be a mapping",
}


def _message(detail: Mapping[str, Any], echo: bool = True) -> str:
    """pydantic's message, said as what the field must be, with the wrong value when it is short and safe."""
    message = _MESSAGES.get(detail["type"]) or str(detail["msg"])
    for prefix, replacement in (("Value error, ", ""), ("Input should be", "must be")):
        if message.startswith(prefix):
            message = replacement + message[len(prefix) :]
    shown = detail.get("input")
    if (
        echo
        and isinstance(shown, str | int | float | bool)
        and len(repr(shown)) <= _SHOWN_INPUT_CHARS
        and f"got {shown!r}" not in message
    ):
        message += f" (got {shown!r})"
    return message


def _join(location: Iterable[Any]) -> str:
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        elif isinstance(part, str) and part.startswith("["):
            text += part
        else:
            text += f".{part}" if text else str(part)
    return text


def _model_at(location: Sequence[Any]) -> type[BaseModel] | None:
    """The model class a field path lands in (for the list of allowed fields), or None."""
    model: type[BaseModel] = OperatorConfig
    for part in location:
        fields = {info.alias or name: info for name, info in model.model_fields.items()}
        inner = _model_of(fields[part].annotation) if part in fields else None
        if inner is None:
            return None
        model = inner
    return model


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (Union, UnionType):
        for argument in get_args(annotation):
            found = _model_of(argument)
            if found is not None:
                return found
    return None


def _problems(error: ValidationError, overrides: Sequence[Override]) -> list[Problem]:
    problems: list[Problem] = []
    for detail in error.errors():
        cause = (detail.get("ctx") or {}).get("error")
        if isinstance(cause, ConfigError):  # the metric catalog's, already located
            problems.extend(cause.problems)
            continue
        location = list(detail["loc"])
        field = _join(location) or "(top level)"
        if detail["type"] == "extra_forbidden":
            model = _model_at(location[:-1])
            allowed = sorted(info.alias or name for name, info in model.model_fields.items()) if model else []
            message = "unknown field" + (f"; allowed: {', '.join(allowed)}" if allowed else "")
        else:
            message = _message(detail, echo=not field.startswith(_NOT_ECHOED))
        # An override at or under the field (or above it) is where the value came from.
        sources = sorted(
            {o.source for o in overrides if f"{field}.".startswith(f"{o.field}.") or o.field.startswith(f"{field}.")}
        )
        problems.append(Problem(f"{field} (from {', '.join(sources)})" if sources else field, message))
    return problems


# --- overrides ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Override:
    """One value set from outside the document: an environment variable or a command-line flag."""

    field: str  # dotted path as written in the YAML
    value: Any
    source: str  # e.g. INQUEST_PROMETHEUS_URL or --prometheus-url, named in errors
    clears: tuple[str, ...] = ()  # sibling fields it replaces (one auth method replaces the other)


def _split_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _headers(text: str) -> dict[str, str]:
    pairs = [part.split("=", 1) for part in _split_list(text)]
    return {pair[0].strip(): pair[1].strip() if len(pair) == 2 else "" for pair in pairs}


# Environment variable -> (field, how its text becomes the value, fields it clears). Empty variables are ignored.
# Applied in this order, so INQUEST_PROMETHEUS_URL wins over PROMETHEUS_URL.
ENVIRONMENT: Final[dict[str, tuple[str, Callable[[str], Any], tuple[str, ...]]]] = {
    "PROMETHEUS_URL": ("prometheus.url", str, ()),  # the name `python -m inquest run` has always read
    "INQUEST_PROMETHEUS_URL": ("prometheus.url", str, ()),
    "INQUEST_PROMETHEUS_QUERY_TIMEOUT_SECONDS": ("prometheus.queryTimeoutSeconds", str, ()),
    "INQUEST_PROMETHEUS_BUDGET_SECONDS": ("prometheus.budgetSeconds", str, ()),
    "INQUEST_PROMETHEUS_HEADERS": ("prometheus.headers", _headers, ()),
    "INQUEST_PROMETHEUS_BEARER_TOKEN_FILE": (
        "prometheus.auth.bearerToken",
        lambda text: {"file": text},
        ("prometheus.auth.basicAuth",),
    ),
    "INQUEST_PROMETHEUS_CA_FILE": ("prometheus.auth.ca", lambda text: {"file": text}, ()),
    "INQUEST_WATCH_NAMESPACES": ("watch.namespaces", _split_list, ()),
    "INQUEST_WATCH_SECRETS": ("watch.watchSecrets", str, ()),
    "INQUEST_CONTINUOUS_INTERVAL_SECONDS": ("watch.continuousIntervalSeconds", str, ()),
}


def environment_overrides(environ: Mapping[str, str]) -> list[Override]:
    """The overrides the environment sets (empty variables are ignored), in ENVIRONMENT's order."""
    return [
        Override(field, parse(environ[name]), name, clears)
        for name, (field, parse, clears) in ENVIRONMENT.items()
        if environ.get(name, "").strip()
    ]


def secrets_dir_from(environ: Mapping[str, str]) -> Path:
    return Path(environ[SECRETS_DIR_ENV]) if environ.get(SECRETS_DIR_ENV, "").strip() else SECRETS_DIR


def _apply(document: dict[str, Any], override: Override) -> None:
    *parents, leaf = override.field.split(".")
    node = document
    for name in parents:
        child = node.get(name)
        if not isinstance(child, dict):
            child = {}
            node[name] = child
        node = child
    node[leaf] = override.value
    for cleared in override.clears:
        *cleared_parents, cleared_leaf = cleared.split(".")
        target: Any = document
        for name in cleared_parents:
            target = target.get(name) if isinstance(target, dict) else None
        if isinstance(target, dict):
            target.pop(cleared_leaf, None)


# --- loading -----------------------------------------------------------------------------------------------------


def load_config(text: str | None, overrides: Sequence[Override] = ()) -> OperatorConfig:
    """The validated configuration from the document's text (None or empty: the defaults) and the overrides.

    Raises ConfigError naming every field that is wrong and what it allows."""
    try:
        document = yaml.safe_load(text) if text and text.strip() else {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError([Problem(CONFIG_KEY, f"is not valid YAML{where}: {problem}")]) from None
    if document is None:
        document = {}
    if not isinstance(document, dict):
        allowed = ", ".join(sorted(info.alias or name for name, info in OperatorConfig.model_fields.items()))
        kind = type(document).__name__
        raise ConfigError([Problem(CONFIG_KEY, f"must be a mapping of {allowed}; got a {kind}")])
    for override in overrides:
        _apply(document, override)
    try:
        return OperatorConfig.model_validate(document)
    except ValidationError as error:
        raise ConfigError(_problems(error, overrides)) from None


def _read_credential(field: str, path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError as error:
        raise ConfigError([Problem(field, f"cannot read {path}: {error.strerror or error}")]) from None


def check_credentials(config: OperatorConfig, secrets_dir: Path | None = None) -> None:
    """Every credential the configuration names is a readable file (a Secret the chart mounted, or a local file).

    Raises ConfigError naming the field and the path."""
    directory = secrets_dir or secrets_dir_from(os.environ)
    problems = []
    for field, ref in config.prometheus.auth.credentials().items():
        path = ref.path(directory)
        if not os.access(path, os.R_OK) or not path.is_file():
            hint = (
                f"Secret {ref.secret_key_ref.name} key {ref.secret_key_ref.key} is not mounted at {path} "
                "(the chart mounts every Secret the config names; check the Secret and its key exist)"
                if ref.secret_key_ref
                else f"{path} is not a readable file"
            )
            problems.append(Problem(field, hint))
    if problems:
        raise ConfigError(problems)


def changed_fields(old: OperatorConfig, new: OperatorConfig) -> tuple[str, ...]:
    """The dotted paths of the fields that differ; a change inside an opaque section is named by its section."""
    changed: list[str] = []

    def walk(before: Any, after: Any, path: str) -> None:
        if before == after:
            return
        if isinstance(before, dict) and isinstance(after, dict) and path not in OPAQUE_SECTIONS:
            for key in sorted(set(before) | set(after), key=str):
                walk(before.get(key), after.get(key), f"{path}.{key}" if path else str(key))
            return
        changed.append(path)

    walk(old.model_dump(mode="json", by_alias=True), new.model_dump(mode="json", by_alias=True), "")
    return tuple(changed)


# --- live reload -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigReport:
    """What became of one change: an Event (reason, message, type) and the log line that goes with it."""

    accepted: bool
    reason: str  # ConfigApplied, ConfigRejected, ConfigRemoved
    message: str
    fields: tuple[str, ...]  # the changed fields, or the offending ones

    @property
    def warning(self) -> bool:
        return not self.accepted

    @property
    def log_line(self) -> str:
        return f"{self.reason}: {self.message}"


class ConfigWatcher:
    """Keeps the last good configuration. `update` validates a new document: a valid change is given to `apply`
    (with the changed fields) and becomes the last good one; an invalid one is refused and the last good stays.
    Either way the outcome is logged and given to `report` (which posts it as an Event). Unchanged documents,
    and the same refused document seen again, report nothing."""

    def __init__(
        self,
        initial: OperatorConfig,
        apply: Callable[[OperatorConfig, tuple[str, ...]], None],
        report: Callable[[ConfigReport], Awaitable[None]],
        overrides: Sequence[Override] = (),
        secrets_dir: Path | None = None,
    ) -> None:
        self._current = initial
        self._apply = apply
        self._report = report
        self._overrides = tuple(overrides)
        self._secrets_dir = secrets_dir
        self._refused: str | None = None

    @property
    def current(self) -> OperatorConfig:
        return self._current

    async def update(self, text: str | None) -> ConfigReport | None:
        try:
            candidate = load_config(text, self._overrides)
            check_credentials(candidate, self._secrets_dir)
            changed = changed_fields(self._current, candidate)
            if changed:
                self._apply(candidate, changed)
        except ConfigError as error:
            if text == self._refused:
                return None
            self._refused = text
            message = f"configuration refused, the last good one stays in force: {error}"
            return await self._emit(ConfigReport(False, "ConfigRejected", message, error.fields))
        self._refused = None
        if not changed:
            return None
        self._current = candidate
        later = [field for field in changed if field.startswith(RESTART_FIELDS)]
        message = f"configuration applied: {', '.join(changed)} changed"
        if later:
            message += f"; these take effect when the operator restarts: {', '.join(later)}"
        return await self._emit(ConfigReport(True, "ConfigApplied", message, changed))

    async def removed(self) -> ConfigReport:
        """The ConfigMap (or its key) is gone: the last good configuration stays in force."""
        self._refused = None
        message = f"the configuration is gone ({CONFIG_KEY} missing); the last good one stays in force"
        return await self._emit(ConfigReport(False, "ConfigRemoved", message, (CONFIG_KEY,)))

    async def _emit(self, report: ConfigReport) -> ConfigReport:
        logger.log(logging.INFO if report.accepted else logging.WARNING, "%s", report.log_line)
        try:
            await self._report(report)
        except Exception:
            logger.exception("could not report %s", report.reason)
        return report
