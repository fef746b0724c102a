"""kopf glue, kept thin: watch events go into the cache, Investigation events go to the service.

Watching is read-only: only `@kopf.index` and `@kopf.on.event` handlers are registered for cluster objects, so
kopf writes no finalizers, annotations or progress onto them. kopf runs no `on.event` handler before every
`@kopf.index` has seen its resource's initial listing, so the cache is warm before the first investigation.
"""

from __future__ import annotations

from typing import Any

import kopf

from inquest.api import models
from inquest.cache import ClusterCache
from inquest.config import CONFIG_KEY, ConfigWatcher
from inquest.configmap import LiveConfig
from inquest.rbac import SECRETS, WATCHED_RESOURCES, WatchedResource
from inquest.service import InvestigationService


def build_registry(
    cache: ClusterCache, service: InvestigationService, watch_secrets: bool = False
) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # KUBECONFIG outside a cluster, the ServiceAccount inside one: the official client's own rules.
        return kopf.login_via_client(**kwargs)

    watched = [*WATCHED_RESOURCES, SECRETS] if watch_secrets else list(WATCHED_RESOURCES)
    for resource in watched:
        _watch(registry, cache, resource)

    @kopf.on.event(models.GROUP, models.VERSION, models.PLURAL, registry=registry)
    async def investigation_changed(
        event: kopf.RawEvent, type: str, namespace: str | None, name: str, **_: Any
    ) -> None:
        cache.go_live()
        if type == "DELETED":
            service.forget(namespace or "", name)
            return
        await service.handle(event["object"])

    return registry


def _watch(registry: kopf.OperatorRegistry, cache: ClusterCache, resource: WatchedResource) -> None:
    identity = f"{resource.plural}.{resource.group or 'core'}"

    @kopf.index(
        group=resource.group,
        version=resource.version,
        plural=resource.plural,
        id=f"cache-{identity}",
        registry=registry,
    )
    async def observe(body: kopf.Body, **_: Any) -> None:
        cache.observe(body)

    @kopf.on.event(
        group=resource.group,
        version=resource.version,
        plural=resource.plural,
        id=f"deletions-{identity}",
        registry=registry,
    )
    async def forget_deleted(event: kopf.RawEvent, type: str, **_: Any) -> None:
        cache.go_live()
        if type == "DELETED":
            cache.forget(event["object"])


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
