"""inquest's writes to Kubernetes: Investigation status and Events, nothing else.

The official client is synchronous, so calls run in a small thread pool and never block the event loop.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from kubernetes import client, config

from inquest.api import models

COMPONENT = "inquest"
ResultT = TypeVar("ResultT")


def api_client_from_environment(kubeconfig: str | None = None, connections: int = 4) -> Any:
    """In a pod, the ServiceAccount; elsewhere KUBECONFIG (or the path given). `connections` sizes the pool for
    the threads that share the client."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except config.ConfigException:
        return api_client_from_kubeconfig(kubeconfig, connections)
    configuration.connection_pool_maxsize = max(4, connections)
    return client.ApiClient(configuration)


def api_client_from_kubeconfig(kubeconfig: str | None, connections: int = 4) -> Any:
    """A kubeconfig's client (KUBECONFIG when None), with a pool of `connections` for the threads sharing it."""
    configuration = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)  # type: ignore[no-untyped-call]
    configuration.connection_pool_maxsize = max(4, connections)
    return client.ApiClient(configuration)


@dataclass(frozen=True)
class InvolvedObject:
    namespace: str
    name: str
    uid: str
    api_version: str = models.API_VERSION
    kind: str = models.KIND


class KubeWriter:
    def __init__(self, api_client: Any, max_concurrency: int = 4) -> None:
        self._api_client = api_client
        self._custom = client.CustomObjectsApi(api_client)
        self._core = client.CoreV1Api(api_client)
        self._executor = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="inquest-kube")

    @classmethod
    def from_environment(cls, kubeconfig: str | None = None, max_concurrency: int = 4) -> KubeWriter:
        return cls(api_client_from_environment(kubeconfig, max_concurrency), max_concurrency)

    async def _run(self, call: Callable[[], ResultT]) -> ResultT:
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        """A JSON merge patch of the status subresource; keys set to None are removed."""
        body = {"status": dict(status)}
        await self._run(
            lambda: self._custom.patch_namespaced_custom_object_status(
                models.GROUP, models.VERSION, namespace, models.PLURAL, name, body
            )
        )

    async def post_event(self, involved: InvolvedObject, reason: str, message: str, warning: bool = False) -> None:
        now = datetime.now(UTC)
        event = client.CoreV1Event(
            metadata=client.V1ObjectMeta(generate_name=f"{involved.name}.", namespace=involved.namespace),
            involved_object=client.V1ObjectReference(
                api_version=involved.api_version,
                kind=involved.kind,
                name=involved.name,
                namespace=involved.namespace,
                uid=involved.uid,
            ),
            reason=reason,
            message=message[:1024],
            type="Warning" if warning else "Normal",
            source=client.V1EventSource(component=COMPONENT),
            reporting_component=COMPONENT,
            reporting_instance=COMPONENT,
            first_timestamp=now,
            last_timestamp=now,
            count=1,
        )
        await self._run(lambda: self._core.create_namespaced_event(involved.namespace, event))

    async def create_investigation(self, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Creates an Investigation (the intake's one create); returns it as the API server stored it."""
        created = await self._run(
            lambda: self._custom.create_namespaced_custom_object(
                models.GROUP, models.VERSION, namespace, models.PLURAL, dict(body)
            )
        )
        return cast(dict[str, Any], created)

    async def get_investigation(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The Investigation, or None when there is none of that name (any other API error is raised)."""
        try:
            found = await self._run(
                lambda: self._custom.get_namespaced_custom_object(
                    models.GROUP, models.VERSION, namespace, models.PLURAL, name
                )
            )
        except client.ApiException as error:
            # A 404 naming the object (a Status with details) means no such Investigation; a bare 404 means
            # the resource type itself is missing (no CRD), which the caller must hear about.
            import json

            try:
                reply = json.loads(error.body or "{}") if error.status == 404 else {}
            except ValueError:
                reply = {}
            if isinstance(reply, dict) and reply.get("kind") == "Status" and reply.get("details"):
                return None
            raise
        return cast(dict[str, Any], found)

    async def patch_investigation_spec(
        self, namespace: str, name: str, patch: Mapping[str, Any], resource_version: str | None = None
    ) -> dict[str, Any]:
        """A JSON merge patch of the spec (lists are replaced whole); with resource_version, 409 if it changed."""
        body: dict[str, Any] = {"spec": dict(patch)}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        patched = await self._run(
            lambda: self._custom.patch_namespaced_custom_object(
                models.GROUP, models.VERSION, namespace, models.PLURAL, name, body
            )
        )
        return cast(dict[str, Any], patched)

    async def read_secret_key(self, namespace: str, name: str, key: str) -> str:
        """One key of one Secret, decoded, surrounding whitespace stripped (notifier URLs and keys).

        The only Secret read inquest makes: `get` on a Secret named in the notification config, which the operator
        is granted per name (a Role with resourceNames), never cluster-wide. Raises KeyError if the key is missing,
        client.ApiException (403, 404, ...) if the Secret cannot be read. The value is never logged.
        """
        secret = await self._run(lambda: self._core.read_namespaced_secret(name, namespace))
        data = secret.data or {}
        if key not in data:
            raise KeyError(f"Secret {namespace}/{name} has no key {key!r}")
        return base64.b64decode(data[key]).decode("utf-8").strip()

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._api_client.close()
