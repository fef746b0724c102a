"""The operator's ConfigMap, read at start and applied live: glue between `inquest.config` and the running parts.

A valid change takes effect on the next investigation (Prometheus connection, metric catalog) or re-check
(Continuous interval); an invalid one keeps the last good configuration and is reported as an Event on the ConfigMap
and a log line naming the field.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError

from inquest import config as operator_config
from inquest.clients.kube import InvolvedObject, KubeWriter
from inquest.clients.prometheus import PrometheusClient, QueryObserver
from inquest.metrics.collector import MetricsCollector
from inquest.notify import Notifier
from inquest.notify.dispatcher import DeliveryResult
from inquest.notify.hook import SecretReader
from inquest.notify.mounted import MountedSecrets
from inquest.notify.routes import NotifyConfig
from inquest.service import InvestigationService

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConfigMapReference:
    namespace: str
    name: str

    @classmethod
    def parse(cls, text: str) -> ConfigMapReference:
        namespace, _, name = text.partition("/")
        if not namespace or not name:
            raise ValueError(f"--config-map must be NAMESPACE/NAME, got {text!r}")
        return cls(namespace, name)


def read_config_text(reference: ConfigMapReference, kubeconfig: str | None) -> str | None:
    """The ConfigMap's config.yaml at start-up, or None when the ConfigMap or the key does not exist (yet)."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    api = client.ApiClient()
    try:
        found = client.CoreV1Api(api).read_namespaced_config_map(reference.name, reference.namespace)
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise
    finally:
        api.close()  # type: ignore[no-untyped-call]
    data = found.data or {}
    return data.get(operator_config.CONFIG_KEY)


class LiveConfig:
    """Owns the Prometheus client built from the configuration, and swaps it when the configuration changes."""

    def __init__(
        self,
        reference: ConfigMapReference,
        service: InvestigationService,
        writer: KubeWriter,
        on_query: QueryObserver | None = None,
        on_outcome: Callable[[DeliveryResult], None] | None = None,
        secrets: SecretReader | None = None,
    ) -> None:
        self.reference = reference
        self._secrets = secrets  # the notifiers' Secrets: mounted files, or None for the API (the opt-in)
        self._service = service
        self._writer = writer
        self._on_query = on_query
        self._on_outcome = on_outcome
        self._uid = ""
        self.prometheus: PrometheusClient | None = None

    def collector_for(self, settings: operator_config.OperatorConfig) -> MetricsCollector:
        prometheus_settings = settings.prometheus_settings()
        fresh = PrometheusClient(prometheus_settings, on_query=self._on_query) if prometheus_settings else None
        previous, self.prometheus = self.prometheus, fresh
        if previous is not None:
            # Investigations already running keep the old client until their budget is spent.
            delay = previous.settings.budget_seconds + 1
            asyncio.get_running_loop().call_later(delay, previous.close)
        return MetricsCollector(fresh, settings.catalog())

    def notifier_for(self, settings: operator_config.OperatorConfig) -> Notifier | None:
        """The notifier the ConfigMap's `notifications` section describes; refuses it, naming the field, if invalid."""
        if not settings.notifications:
            return None
        try:
            routes = NotifyConfig.model_validate(settings.notifications)
        except ValidationError as error:
            problems = [
                operator_config.Problem(
                    "notifications." + ".".join(str(part) for part in item["loc"]), str(item["msg"])
                )
                for item in error.errors()
            ]
            raise operator_config.ConfigError(problems) from None
        if isinstance(self._secrets, MountedSecrets):
            unmounted = self._secrets.unmounted(routes)
            if unmounted:
                raise operator_config.ConfigError(
                    [
                        operator_config.Problem(f"notifications.{ref.field}", f"notifier {ref.notifier}: {ref.message}")
                        for ref in unmounted
                    ]
                )
        return Notifier.for_kube(routes, self._writer, on_outcome=self._on_outcome, secrets=self._secrets)

    def apply(self, settings: operator_config.OperatorConfig, changed: tuple[str, ...]) -> None:
        if any(field.startswith("notifications") for field in changed):
            fresh = self.notifier_for(settings)  # raises ConfigError first: then nothing else is applied
            if fresh is not None:
                replaced = self._service.reconfigure(notifier=fresh)
                if replaced is not None:
                    asyncio.get_running_loop().create_task(replaced.close())
        if any(field.startswith(("prometheus", "metricCatalog")) for field in changed):
            self._service.reconfigure(metrics=self.collector_for(settings))
        if any(field.startswith("watch.continuousIntervalSeconds") for field in changed):
            self._service.reconfigure(continuous_interval=settings.watch.continuous_interval)

    def seen(self, uid: str) -> None:
        self._uid = uid

    async def report(self, report: operator_config.ConfigReport) -> None:
        involved = InvolvedObject(
            namespace=self.reference.namespace, name=self.reference.name, uid=self._uid, api_version="v1",
            kind="ConfigMap",
        )  # fmt: skip
        await self._writer.post_event(involved, report.reason, report.message, warning=report.warning)

    def close(self) -> None:
        if self.prometheus is not None:
            self.prometheus.close()


def watcher(
    initial: operator_config.OperatorConfig,
    live: LiveConfig,
    overrides: list[operator_config.Override],
) -> operator_config.ConfigWatcher:
    return operator_config.ConfigWatcher(initial, live.apply, live.report, overrides)
