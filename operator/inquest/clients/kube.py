"""inquest's writes to Kubernetes: Investigation status and Events, nothing else.

The official client is synchronous, so calls run in a small thread pool and never block the event loop. Writes
outlive a restarting API server: a refused connection, a 429 or a 5xx is retried with backoff until a deadline,
so an answer reached while the API server is away still lands when it is back.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import urllib3
from kubernetes import client, config

from inquest.api import models

COMPONENT = "inquest"
ResultT = TypeVar("ResultT")
logger = logging.getLogger(__name__)

# An API server restart takes seconds; a minute covers it with room, and still ends a write that cannot land.
WRITE_RETRY_SECONDS = 60.0
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# A restarted API server answers 401/403 until its authenticator and RBAC caches are filled (measured in the lab:
# under a second); retried briefly, so a real misconfiguration still fails fast.
WARMING_UP_STATUSES = frozenset({401, 403})
WARMING_UP_RETRY_SECONDS = 10.0
MAX_EVENT_NAME = 253


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


def transient(error: BaseException) -> bool:
    """A failure worth retrying: the API server was unreachable, overloaded or failing, not refusing the request."""
    if isinstance(error, client.ApiException):
        return error.status in RETRYABLE_STATUSES or not error.status
    return isinstance(error, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError)


def event_name(involved: InvolvedObject, key: str) -> str:
    """A name fixed by the Investigation's uid and `key`, so posting the same Event twice creates it once."""
    digest = hashlib.sha256(f"{involved.uid}/{key}".encode()).hexdigest()[:16]
    return f"{involved.name[: MAX_EVENT_NAME - len(digest) - 1]}.{digest}"


class KubeWriter:
    def __init__(self, api_client: Any, max_concurrency: int = 4, retry_seconds: float = WRITE_RETRY_SECONDS) -> None:
        self._api_client = api_client
        self._retry_seconds = retry_seconds
        self._custom = client.CustomObjectsApi(api_client)
        self._core = client.CoreV1Api(api_client)
        self._executor = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="inquest-kube")

    @classmethod
    def from_environment(cls, kubeconfig: str | None = None, max_concurrency: int = 4) -> KubeWriter:
        return cls(api_client_from_environment(kubeconfig, max_concurrency), max_concurrency)

    async def _run(self, call: Callable[[], ResultT]) -> ResultT:
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def _write(self, call: Callable[[], ResultT], what: str) -> ResultT:
        """A write, retried with backoff (0.25 s doubling to 4 s) while its failures are transient and the deadline
        allows; 401/403 only for WARMING_UP_RETRY_SECONDS from the first one. The last failure is raised."""
        deadline = _monotonic() + self._retry_seconds
        forbidden_since: float | None = None
        delay = 0.25
        while True:
            try:
                return await self._run(call)
            except Exception as error:
                now = _monotonic()
                limit = deadline
                if isinstance(error, client.ApiException) and error.status in WARMING_UP_STATUSES:
                    forbidden_since = now if forbidden_since is None else forbidden_since
                    limit = min(deadline, forbidden_since + WARMING_UP_RETRY_SECONDS)
                elif not transient(error):
                    raise
                if now >= limit:
                    raise
                pause = min(delay, limit - now)
                logger.warning("%s failed (%s); retrying in %.2f s", what, _short(error), pause)
            await asyncio.sleep(pause)
            delay = min(delay * 2, 4.0)

    async def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        """A JSON merge patch of the status subresource; keys set to None are removed."""
        body = {"status": dict(status)}
        await self._write(
            lambda: self._custom.patch_namespaced_custom_object_status(
                models.GROUP, models.VERSION, namespace, models.PLURAL, name, body
            ),
            f"status patch of {namespace}/{name}",
        )

    async def post_event(
        self, involved: InvolvedObject, reason: str, message: str, warning: bool = False, key: str | None = None
    ) -> None:
        """Posts an Event on the Investigation. With `key` (e.g. the generation it announces) its name is fixed,
        and an Event already posted under that key (by this process or one killed before it) is not posted again."""
        now = datetime.now(UTC)
        name = event_name(involved, key) if key is not None else None
        event = client.CoreV1Event(
            metadata=client.V1ObjectMeta(
                name=name, generate_name=None if name else f"{involved.name}.", namespace=involved.namespace
            ),
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
        try:
            await self._write(
                lambda: self._core.create_namespaced_event(involved.namespace, event),
                f"{reason} Event on {involved.namespace}/{involved.name}",
            )
        except client.ApiException as error:
            if not (name and error.status == 409):
                raise

    async def create_investigation(self, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Creates an Investigation (the intake's one create); returns it as the API server stored it."""
        # Not retried here: the intake answers 503 at once and Alertmanager, which owns the alert, sends it again.
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


def _monotonic() -> float:
    return time.monotonic()


def _short(error: BaseException) -> str:
    if isinstance(error, client.ApiException):
        return f"HTTP {error.status} {error.reason}" if error.status else str(error.reason)
    return type(error).__name__
