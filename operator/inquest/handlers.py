"""kopf glue, kept thin: Investigation events go to the service once the cache is warm.

The cluster itself reaches the cache through inquest's own informers (clients/informer.py), not through kopf: kopf
watches only Investigations and the operator's ConfigMap, and writes nothing onto them but what the service
patches. No handler investigates before every watched resource has been listed once.
"""

from __future__ import annotations

import asyncio
from typing import Any

import kopf

from inquest.api import models
from inquest.config import CONFIG_KEY, ConfigWatcher
from inquest.configmap import LiveConfig
from inquest.service import InvestigationService


def build_registry(service: InvestigationService, cache_ready: asyncio.Event) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # KUBECONFIG outside a cluster, the ServiceAccount inside one: the official client's own rules.
        return kopf.login_via_client(**kwargs)

    @kopf.on.event(models.GROUP, models.VERSION, models.PLURAL, registry=registry)
    async def investigation_changed(
        event: kopf.RawEvent, type: str, namespace: str | None, name: str, **_: Any
    ) -> None:
        if type == "DELETED":
            service.forget(namespace or "", name)
            return
        await cache_ready.wait()
        await service.handle(event["object"])

    return registry


def configure(settings: kopf.OperatorSettings) -> None:
    """kopf's defaults post its logs as Events on every object it handles; inquest posts only its own."""
    settings.posting.enabled = False
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 30


def watch_config(registry: kopf.OperatorRegistry, live: LiveConfig, watcher: ConfigWatcher) -> None:
    """The operator's own ConfigMap: each change is validated and applied, or refused with an Event."""
    reference = live.reference

    def is_ours(namespace: str | None, name: str | None, **_: Any) -> bool:
        return (namespace, name) == (reference.namespace, reference.name)

    @kopf.on.event("", "v1", "configmaps", id="operator-config", when=is_ours, registry=registry)
    async def config_changed(event: kopf.RawEvent, type: str, **_: Any) -> None:
        body: dict[str, Any] = dict(event["object"])
        live.seen(str(body.get("metadata", {}).get("uid", "")))
        text = (body.get("data") or {}).get(CONFIG_KEY)
        if type == "DELETED" or text is None:
            await watcher.removed()
        else:
            await watcher.update(text)
