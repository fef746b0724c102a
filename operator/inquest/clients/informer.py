"""List-then-watch feeds of the watched resources into the cache: the only reads inquest makes of the cluster.

Why not kopf's indexes: kopf holds an operator-wide readiness barrier with one toggle per listed object, and
every change to it wakes every waiting worker, so start-up grows with the square of the objects listed (over a
minute for 5,000 Events on two cores). These informers list in pages, then watch from the list's
resourceVersion with bookmarks. A broken connection resumes the watch; a 410 Gone relists, and objects that
vanished meanwhile are forgotten. Each (resource, namespace) has its own thread, because the official client is
synchronous; they only read and parse, and hand batches to the event loop, which alone touches the cache.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from inquest.cache import ClusterCache
from inquest.rbac import WatchedResource

logger = logging.getLogger("inquest.informer")

PAGE_SIZE = 500
WATCH_TIMEOUT_SECONDS = 290
CONNECT_TIMEOUT_SECONDS = 10
# A watch that is silent longer than this is dead (the server sends bookmarks about every minute).
READ_TIMEOUT_SECONDS = WATCH_TIMEOUT_SECONDS + 30
RETRY_DELAYS_SECONDS = (0.5, 1, 2, 4, 8, 15)
# Objects handed to the event loop and not applied yet, over all informers. Past it an informer waits: its watch
# buffers in the socket and the API server, not in this process (10,000 pods are about 50 MiB of parsed JSON).
MAX_PENDING_OBJECTS = 10_000
METADATA_ONLY_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"

Delivery = tuple[str, dict[str, Any]]  # (ADDED | MODIFIED | DELETED | LISTED, object)
RestartHook = Callable[[str, str], None]  # (resource, reason: expired | error)
StallHook = Callable[[str], None]  # (resource)


class Gone(Exception):
    """The resourceVersion is too old to watch from: relist."""


class HttpError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status


@dataclass(frozen=True)
class Scope:
    resource: WatchedResource
    namespace: str | None  # None: cluster-wide

    @property
    def label(self) -> str:
        name = f"{self.resource.plural}.{self.resource.group or 'core'}"
        return name if self.namespace is None else f"{name} in {self.namespace}"

    def path(self) -> str:
        base = f"/apis/{self.resource.group}/{self.resource.version}" if self.resource.group else "/api/v1"
        if self.namespace is not None:
            return f"{base}/namespaces/{self.namespace}/{self.resource.plural}"
        return f"{base}/{self.resource.plural}"


def scopes(resources: Sequence[WatchedResource], namespaces: Sequence[str] | None) -> list[Scope]:
    """One scope per resource cluster-wide, or per resource and namespace when the operator is namespaced
    (cluster-scoped resources such as Nodes stay cluster-wide)."""
    if not namespaces:
        return [Scope(resource, None) for resource in resources]
    return [
        Scope(resource, namespace if resource.namespaced else None)
        for resource in resources
        for namespace in (namespaces if resource.namespaced else [None])
    ]


class ResourceInformer:
    """Lists then watches one scope, forever, in its own thread; deliveries go to `deliver` in order."""

    def __init__(
        self,
        api_client: Any,
        scope: Scope,
        deliver: Callable[[Scope, list[Delivery]], None],
        stop: threading.Event,
        on_restart: RestartHook | None = None,
    ) -> None:
        self._api = api_client
        self.scope = scope
        self._deliver = deliver
        self._stop = stop
        self._on_restart = on_restart
        self.lists = 0

    def run(self) -> None:
        failures = 0
        version: str | None = None  # None: list first
        while not self._stop.is_set():
            try:
                if version is None:
                    version = self._list()
                    failures = 0
                while not self._stop.is_set():
                    version = self._watch(version)
                    failures = 0
            except Gone:
                logger.info("watch of %s expired (410 Gone); relisting", self.scope.label)
                self._restarted("expired")
                version = None
            except Exception as error:
                # A broken connection, an API server restart, a 5xx: like client-go's reflector, resume the watch
                # from the last version seen after a pause (the server replays what was missed, or answers 410
                # Gone when it no longer can, e.g. after its own restart), and relist only then.
                delay = RETRY_DELAYS_SECONDS[min(failures, len(RETRY_DELAYS_SECONDS) - 1)]
                failures += 1
                then = "relisting" if version is None else "resuming the watch"
                logger.warning("watch of %s failed (%s); %s in %gs", self.scope.label, _describe(error), then, delay)
                self._restarted("error")
                self._stop.wait(delay)

    def _restarted(self, reason: str) -> None:
        if self._on_restart is not None:
            self._on_restart(self.scope.label, reason)

    def _get(self, query: list[tuple[str, str]], watch: bool) -> Any:
        """A GET whose body is read by the caller (urllib3's response, streamed); raises on an error status."""
        accept = METADATA_ONLY if watch else METADATA_ONLY_LIST
        headers = {"Accept": accept} if self.scope.resource.metadata_only else {"Accept": "application/json"}
        method, url, header_params, body, post_params = self._api.param_serialize(
            method="GET",
            resource_path=self.scope.path(),
            query_params=query,
            header_params=headers,
            auth_settings=["BearerToken"],
        )
        timeout = (CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS if watch else 60)
        response = self._api.call_api(method, url, header_params, body, post_params, _request_timeout=timeout)
        raw = response.response
        if response.status == 410:
            raw.release_conn()
            raise Gone()
        if response.status >= 400:
            detail = raw.data[:300].decode("utf-8", errors="replace")
            raw.release_conn()
            raise HttpError(response.status, detail)
        return raw

    def _list(self) -> str:
        token: str | None = None
        version = ""
        items: list[dict[str, Any]] = []
        while True:
            query = [("limit", str(PAGE_SIZE))]
            if token:
                query.append(("continue", token))
            response = self._get(query, watch=False)
            try:
                page = json.loads(response.data)
            finally:
                response.release_conn()
            metadata = page.get("metadata") or {}
            version = str(metadata.get("resourceVersion") or version)
            batch = [("ADDED", self._shaped(item)) for item in page.get("items") or []]
            # Only the names are kept for the end of the listing: 100,000 whole Events would be hundreds of MiB.
            items.extend(_name_only(item) for _, item in batch)
            if batch:
                self._deliver(self.scope, batch)
            token = metadata.get("continue") or None
            if not token:
                break
        self.lists += 1
        # The complete listing, so that the cache can forget what it holds but the list no longer has.
        self._deliver(self.scope, [("LISTED", {"items": items})])
        return version

    def _watch(self, version: str) -> str:
        query = [
            ("watch", "true"),
            ("allowWatchBookmarks", "true"),
            ("resourceVersion", version),
            ("timeoutSeconds", str(WATCH_TIMEOUT_SECONDS)),
        ]
        response = self._get(query, watch=True)
        try:
            for line in _lines(response):
                if self._stop.is_set():
                    break
                event = json.loads(line)
                kind, body = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if body.get("code") == 410:
                        raise Gone()
                    raise RuntimeError(f"watch error: {body.get('message') or body}")
                version = str((body.get("metadata") or {}).get("resourceVersion") or version)
                if kind in ("ADDED", "MODIFIED", "DELETED"):
                    self._deliver(self.scope, [(kind, self._shaped(body))])
        finally:
            response.release_conn()
        return version

    def _shaped(self, item: dict[str, Any]) -> dict[str, Any]:
        """List items carry no kind; metadata-only objects say PartialObjectMetadata. Both get the real one."""
        resource = self.scope.resource
        item["kind"] = resource.kind
        item["apiVersion"] = resource.api_version
        return item


def _objects_in(batch: list[Delivery]) -> int:
    """Whole objects in a batch; the names of a LISTED end count as nothing (they are a few bytes each)."""
    return sum(1 for kind, _ in batch if kind != "LISTED")


def _name_only(item: dict[str, Any]) -> dict[str, Any]:
    metadata = item.get("metadata") or {}
    return {"metadata": {"namespace": metadata.get("namespace"), "name": metadata.get("name")}}


def _lines(response: Any) -> Iterator[str]:
    pending = b""
    for chunk in response.stream(amt=None, decode_content=False):
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            if line.strip():
                yield line.decode("utf-8")
    if pending.strip():
        yield pending.decode("utf-8")


def _describe(error: Exception) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return text[:300] if isinstance(error, HttpError) else f"{type(error).__name__}: {text[:200]}"


class PendingLimit:
    """Counts the objects handed to the event loop and not yet applied; `reserve` waits while the count would
    pass the limit (a batch larger than the limit alone still passes, when nothing else is pending)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.pending = 0
        self.stalls = 0
        self._condition = threading.Condition()

    def reserve(self, count: int, stop: threading.Event, on_wait: Callable[[], None] | None = None) -> bool:
        """Returns whether it had to wait; `on_wait` is called once, as the wait begins."""
        waited = False
        with self._condition:
            while self.pending and self.pending + count > self.limit and not stop.is_set():
                if not waited:
                    waited = True
                    self.stalls += 1
                    if on_wait is not None:
                        on_wait()
                self._condition.wait(0.5)
            self.pending += count
        return waited

    def release(self, count: int) -> None:
        with self._condition:
            self.pending -= count
            self._condition.notify_all()


class CacheFeed:
    """Runs the informers and applies their deliveries to the cache on the event loop.

    `ready` is set once every scope has been listed once; then the cache goes live (from then on, an object
    seen for the first time was created)."""

    def __init__(
        self,
        cache: ClusterCache,
        api_client: Any,
        resources: Sequence[WatchedResource],
        namespaces: Sequence[str] | None = None,
        on_restart: RestartHook | None = None,
        on_stall: StallHook | None = None,
        max_pending_objects: int = MAX_PENDING_OBJECTS,
    ) -> None:
        self.cache = cache
        self._api = api_client
        self._scopes = scopes(resources, namespaces)
        self._on_restart = on_restart
        self._on_stall = on_stall
        self.pending = PendingLimit(max_pending_objects)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._listed: set[Scope] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.ready = asyncio.Event()
        self.started = 0.0
        self.ready_after_seconds: float | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.started = time.monotonic()
        for scope in self._scopes:
            informer = ResourceInformer(self._api, scope, self._hand_over, self._stop, self._on_restart)
            # Daemon threads: a watch blocked in a read must not hold the process at exit.
            thread = threading.Thread(target=informer.run, name=f"informer {scope.label}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _hand_over(self, scope: Scope, batch: list[Delivery]) -> None:
        """From an informer's thread: waits while the loop is too far behind, then queues the batch on it."""
        assert self._loop is not None
        size = _objects_in(batch)
        if self.pending.reserve(size, self._stop, lambda: self._stalled(scope)):
            logger.debug("informer %s waited for the cache to catch up", scope.label)
        try:
            self._loop.call_soon_threadsafe(self._apply_pending, scope, batch, size)
        except RuntimeError:  # the loop is closed: the operator is stopping
            self.pending.release(size)
            self._stop.set()

    def _stalled(self, scope: Scope) -> None:
        if self._on_stall is not None:
            self._on_stall(scope.label)

    def _apply_pending(self, scope: Scope, batch: list[Delivery], size: int) -> None:
        try:
            self.apply(scope, batch)
        finally:
            self.pending.release(size)

    def apply(self, scope: Scope, batch: list[Delivery]) -> None:
        for kind, body in batch:
            if kind == "DELETED":
                self.cache.forget(body)
            elif kind == "LISTED":
                self._relisted(scope, body["items"])
            else:
                self.cache.observe(body)

    def _relisted(self, scope: Scope, items: list[dict[str, Any]]) -> None:
        if scope in self._listed:
            # A relist after an expired or broken watch: what is gone now was deleted meanwhile.
            self.cache.forget_missing(scope.resource.kind, scope.namespace, items)
            return
        self._listed.add(scope)
        if len(self._listed) == len(self._scopes):
            self.cache.go_live()
            self.ready_after_seconds = time.monotonic() - self.started
            logger.info(
                "cache warm: %d resources listed in %.1f s (%s)",
                len(self._scopes),
                self.ready_after_seconds,
                ", ".join(f"{kind} {count}" for kind, count in sorted(self.cache.statistics().objects_by_kind.items())),
            )
            self.ready.set()
