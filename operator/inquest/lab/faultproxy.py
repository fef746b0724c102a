"""A reverse proxy for the lab that stands between the operator and the real Prometheus and fails on demand.

It listens on a free loopback port and forwards every request to the lab's Prometheus, unless a fault is set:

- Healthy: forwards the request and returns the answer unchanged.
- Slow(seconds): waits that long, then forwards (a client that gives up first closes the connection, and the
  wait is cancelled with it).
- ServerError(status): answers `status` at once, in the error envelope of the Prometheus HTTP API
  (`{"status": "error", "errorType": ..., "error": ...}`), without forwarding.
- InvalidJson: forwards, then returns the first half of the real answer with status 200: a cut-off body that
  no JSON parser accepts, as a proxy that drops the connection midway would leave it.
- Partial(warning, drop_share): forwards, adds `warning` to the answer's `warnings`, and removes the last
  `drop_share` of its result entries. The warning is how Prometheus, Thanos and Mimir say an answer is
  incomplete (Thanos with partial responses enabled answers what the stores it reached hold, plus a warning
  per store that did not); the default drops nothing, so the data stay whole and only the warning says they
  may not be, which is the hardest case for a client to notice. Answers that are not query results (metric
  names) only get the warning.
- stop() / resume(): closes the listening socket and the open connections, so connections are refused as by
  a stopped Prometheus, and opens it again on the same port.

A fault can be limited to some requests with `matching`, a regular expression searched in the endpoint path
and the PromQL expression (or series selector) of each request; the others are forwarded healthy. Each request
is counted under the mode it was served with, so a test can assert that the operator met the fault.

The proxy runs its own event loop in a background thread, so synchronous tests can drive it.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import urllib.parse
from collections import Counter
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp
from aiohttp import web

DEFAULT_WARNING: Final = "inquest lab fault proxy: partial response, some stores did not answer"
_FORWARDED_HEADERS: Final = ("Content-Type", "Accept", "Authorization", "User-Agent", "X-Scope-OrgID")
_START_TIMEOUT_SECONDS: Final = 10.0


@dataclass(frozen=True)
class Healthy:
    pass


@dataclass(frozen=True)
class Slow:
    seconds: float

    def __post_init__(self) -> None:
        if not self.seconds >= 0:
            raise ValueError(f"seconds must be zero or more, got {self.seconds!r}")


@dataclass(frozen=True)
class ServerError:
    status: int = 503

    def __post_init__(self) -> None:
        if not 500 <= self.status <= 599:
            raise ValueError(f"a server error is a 5xx status, got {self.status}")


@dataclass(frozen=True)
class InvalidJson:
    pass


@dataclass(frozen=True)
class Partial:
    warning: str = DEFAULT_WARNING
    drop_share: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.drop_share <= 1.0:
            raise ValueError(f"drop_share is a share between 0 and 1, got {self.drop_share!r}")


FaultMode = Healthy | Slow | ServerError | InvalidJson | Partial


def mode_name(mode: FaultMode) -> str:
    return type(mode).__name__


@dataclass(frozen=True)
class FaultRule:
    """A mode, for the requests whose description `matching` finds (all of them when it is None)."""

    mode: FaultMode = field(default_factory=Healthy)
    matching: str | None = None

    def __post_init__(self) -> None:
        if self.matching is not None:
            re.compile(self.matching)  # an invalid pattern fails here, not in the middle of a test

    def mode_for(self, description: str) -> FaultMode:
        if self.matching is None or re.search(self.matching, description):
            return self.mode
        return Healthy()


@dataclass(frozen=True)
class SeenRequest:
    mode: str
    description: str


def describe_request(path: str, query_string: str, form: bytes) -> str:
    """`<path> <expression>`: the PromQL `query` or the `match[]` selectors, from the URL and the form body."""
    parameters = urllib.parse.parse_qs(query_string, keep_blank_values=True)
    for name, values in urllib.parse.parse_qs(form.decode("utf-8", errors="replace"), keep_blank_values=True).items():
        parameters.setdefault(name, []).extend(values)
    expressions = parameters.get("query", []) + parameters.get("match[]", [])
    return " ".join([path, *expressions])


def error_body(status: int) -> bytes:
    """What the Prometheus HTTP API answers on failure (its documented error envelope)."""
    error_type = "unavailable" if status == 503 else "internal"
    document = {"status": "error", "errorType": error_type, "error": f"fault injected by the inquest lab ({status})"}
    return json.dumps(document).encode()


def truncated_body(body: bytes) -> bytes:
    """The first half of the body: never valid JSON for a JSON object or array of two bytes or more."""
    return body[: len(body) // 2] or b"{"


def partial_body(body: bytes, partial: Partial) -> bytes:
    """The answer with the warning added and the last `drop_share` of its results dropped; a body that is not
    a successful API answer is returned unchanged (nothing to mark)."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return body
    if not isinstance(document, dict) or document.get("status") != "success":
        return body
    warnings = document.get("warnings")
    document["warnings"] = [*(warnings if isinstance(warnings, list) else []), partial.warning]
    data = document.get("data")
    if isinstance(data, dict) and isinstance(data.get("result"), list) and partial.drop_share > 0:
        results = data["result"]
        keep = len(results) - round(len(results) * partial.drop_share)
        data["result"] = results[:keep]
    return json.dumps(document).encode()


class FaultProxy:
    """Forwards to `upstream` (e.g. lab.prometheus_url) from 127.0.0.1:<port>, with the fault set by set_fault."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self._lock = threading.Lock()
        self._rule = FaultRule()
        self._seen: list[SeenRequest] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="lab-fault-proxy", daemon=True)
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._session: aiohttp.ClientSession | None = None
        self._port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        self._call(self._start())
        return self

    def close(self) -> None:
        if self._thread.is_alive():
            self._call(self._close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=_START_TIMEOUT_SECONDS)
        self._loop.close()

    def stop(self) -> None:
        """Stops listening: connections to the port are refused, as by a stopped Prometheus."""
        self._call(self._stop_listening())

    def resume(self) -> None:
        """Listens again, on the same port."""
        self._call(self._listen())

    def set_fault(self, mode: FaultMode, matching: str | None = None) -> None:
        with self._lock:
            self._rule = FaultRule(mode, matching)

    def heal(self) -> None:
        self.set_fault(Healthy())

    def seen(self) -> list[SeenRequest]:
        with self._lock:
            return list(self._seen)

    def counts(self) -> Counter[str]:
        """Requests served so far, by the name of the mode each was served with."""
        with self._lock:
            return Counter(request.mode for request in self._seen)

    def reset_counts(self) -> None:
        with self._lock:
            self._seen.clear()

    def _call(self, work: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(work, self._loop).result(timeout=_START_TIMEOUT_SECONDS)

    async def _start(self) -> None:
        self._session = aiohttp.ClientSession(auto_decompress=True)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # handler_cancellation: a client that gives up on a slow answer cancels the wait with it.
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self._port = probe.getsockname()[1]
        await self._listen()

    async def _listen(self) -> None:
        if self._site is None and self._runner is not None:
            self._site = web.TCPSite(self._runner, "127.0.0.1", self._port, reuse_address=True)
            await self._site.start()

    async def _stop_listening(self) -> None:
        if self._site is not None:
            await self._site.stop()
            self._site = None
        # A stopped Prometheus also drops the kept-alive connections its clients would otherwise reuse.
        if self._runner is not None and self._runner.server is not None:
            for connection in self._runner.server.connections:
                connection.force_close()

    async def _close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        form = await request.read()
        description = describe_request(request.path, request.query_string, form)
        with self._lock:
            mode = self._rule.mode_for(description)
            self._seen.append(SeenRequest(mode_name(mode), description))
        if isinstance(mode, ServerError):
            return web.Response(status=mode.status, body=error_body(mode.status), content_type="application/json")
        if isinstance(mode, Slow):
            await asyncio.sleep(mode.seconds)
        status, content_type, body = await self._forward(request, form)
        if isinstance(mode, InvalidJson):
            body = truncated_body(body)
        elif isinstance(mode, Partial) and status == 200:
            body = partial_body(body, mode)
        return web.Response(status=status, body=body, headers={"Content-Type": content_type})

    async def _forward(self, request: web.Request, form: bytes) -> tuple[int, str, bytes]:
        assert self._session is not None
        headers = {name: request.headers[name] for name in _FORWARDED_HEADERS if name in request.headers}
        async with self._session.request(
            request.method, self.upstream + request.path_qs, data=form or None, headers=headers
        ) as answer:
            body = await answer.read()
            return answer.status, answer.headers.get("Content-Type", "application/json"), body


@contextmanager
def running_fault_proxy(upstream: str) -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream).start()
    try:
        yield proxy
    finally:
        proxy.close()


__all__ = [
    "DEFAULT_WARNING",
    "FaultMode",
    "FaultProxy",
    "FaultRule",
    "Healthy",
    "InvalidJson",
    "Partial",
    "SeenRequest",
    "ServerError",
    "Slow",
    "describe_request",
    "error_body",
    "mode_name",
    "partial_body",
    "running_fault_proxy",
    "truncated_body",
]
