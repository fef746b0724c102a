"""Read-only queries to Prometheus, bounded in time so metrics can never stall an investigation.

Only the Prometheus HTTP API v1 is used (POST /api/v1/query and /api/v1/query_range, GET
/api/v1/label/__name__/values), so any PromQL-compatible backend works the same way: Prometheus, Thanos,
Mimir, Cortex, VictoriaMetrics. For a backend served under a path prefix, put the prefix in the URL
(e.g. http://mimir/prometheus); for a multi-tenant one, pass the tenant header in extra_headers
(e.g. X-Scope-OrgID).

prometheus_api_client.PrometheusConnect is built on ONE requests.Session that this client owns, so every
call (the library's and ours) reuses the same pooled keep-alive connections. The queries themselves go
straight to the API on that session because PrometheusConnect.custom_query drops the response's warnings,
which say that a result is partial. requests is synchronous: calls run in a bounded thread pool, and every
coroutine returns by its deadline even when a request hangs (its thread finishes on its own, later).
Nothing here raises on a failed query: the QueryResult carries the error instead.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import string
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, NamedTuple, TypeVar
from urllib.parse import urlsplit

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase, HTTPBasicAuth
from urllib3.util.retry import Retry

from inquest import __version__

ResultT = TypeVar("ResultT")

# Prometheus refuses range queries with more points per series than this.
MAX_POINTS_PER_SERIES: Final = 11_000
USER_AGENT: Final = f"inquest/{__version__} (read-only)"
_ERROR_SNIPPET_CHARS: Final = 300
_READ_CHUNK_BYTES: Final = 64 * 1024
# No retries: one with back-off would not fit the budget, and a missing metric is survivable.
_NO_RETRIES: Final = Retry(total=0, read=False, redirect=False, raise_on_status=False)
_METRIC_NAME: Final = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
# RFC 9110 token characters: what a header name may contain.
_HEADER_NAME_CHARACTERS: Final = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~")


class PrometheusSettings(BaseModel):
    """How to reach a Prometheus-compatible API and how long an investigation may wait for it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(description="Base URL of the API, without /api/v1 (a path prefix is kept).")
    bearer_token: SecretStr | None = None
    bearer_token_file: Path | None = Field(default=None, description="Re-read when it changes (rotated tokens).")
    basic_auth_username: str | None = None
    basic_auth_password: SecretStr | None = None
    ca_file: Path | None = None
    insecure_skip_verify: bool = False
    # Values may be credentials, so they stay out of repr and logs.
    extra_headers: dict[str, str] = Field(default_factory=dict, repr=False)
    query_timeout_seconds: float = Field(default=2.0, gt=0, le=300)
    budget_seconds: float = Field(default=3.0, gt=0, le=600, description="Wall-clock limit per investigation.")
    max_concurrency: int = Field(default=4, ge=1, le=64)
    metric_names_ttl_seconds: float = Field(default=300.0, ge=0)
    # Families that have reported nothing for this long are not worth querying for an incident.
    metric_names_lookback_seconds: float = Field(default=6 * 3600.0, gt=0)
    max_response_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)

    @field_validator("url")
    @classmethod
    def _check_url(cls, url: str) -> str:
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"Prometheus url must be http(s)://host[:port][/prefix], got {url!r}")
        if parts.username is not None or parts.password is not None:
            raise ValueError("put credentials in basic_auth_username/basic_auth_password, not in the url")
        if parts.query or parts.fragment:
            raise ValueError(f"Prometheus url must not have a query or fragment, got {url!r}")
        if parts.path.rstrip("/").endswith("/api/v1"):
            raise ValueError(f"give the base url without /api/v1, got {url!r}")
        return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"

    @field_validator("extra_headers")
    @classmethod
    def _check_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            if not name or any(character not in _HEADER_NAME_CHARACTERS for character in name):
                raise ValueError(f"invalid HTTP header name {name!r}")
            if any(character in value for character in "\r\n\0"):
                raise ValueError(f"the value of header {name!r} contains CR, LF or NUL")
        return headers

    @model_validator(mode="after")
    def _check_authentication(self) -> PrometheusSettings:
        methods = [
            label
            for label, configured in (
                ("bearer_token", self.bearer_token is not None),
                ("bearer_token_file", self.bearer_token_file is not None),
                ("basic auth", self.basic_auth_username is not None),
            )
            if configured
        ]
        if len(methods) > 1:
            raise ValueError(f"configure one authentication method, not {' and '.join(methods)}")
        if self.basic_auth_password is not None and self.basic_auth_username is None:
            raise ValueError("basic_auth_password needs basic_auth_username")
        if methods and any(name.lower() == "authorization" for name in self.extra_headers):
            raise ValueError(f"extra_headers sets Authorization, which conflicts with {methods[0]}")
        if self.ca_file is not None and self.insecure_skip_verify:
            raise ValueError("ca_file and insecure_skip_verify contradict each other: choose one")
        return self


class Series(NamedTuple):
    labels: dict[str, str]
    samples: list[tuple[float, float]]  # (epoch seconds, value)


@dataclass(frozen=True)
class QueryResult:
    query: str
    series: list[Series] = field(default_factory=list)
    error: str | None = None
    elapsed_seconds: float = 0.0
    # Prometheus (or Thanos, Mimir...) warnings: the data may be incomplete, e.g. a store did not answer.
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def partial(self) -> bool:
        return bool(self.warnings)


@dataclass(frozen=True)
class RangeQuery:
    query: str
    start: datetime
    end: datetime
    step_seconds: float

    def __post_init__(self) -> None:
        if not self.query.strip():
            raise ValueError("query is empty")
        if not (math.isfinite(self.step_seconds) and self.step_seconds > 0):
            raise ValueError(f"step_seconds must be a positive number, got {self.step_seconds!r}")
        start, end = epoch_seconds(self.start), epoch_seconds(self.end)
        if end < start:
            raise ValueError(f"end ({self.end.isoformat()}) is before start ({self.start.isoformat()})")
        points = (end - start) / self.step_seconds + 1
        if points > MAX_POINTS_PER_SERIES:
            raise ValueError(
                f"{points:.0f} points per series exceed Prometheus' limit of {MAX_POINTS_PER_SERIES}:"
                f" use a step of at least {(end - start) / (MAX_POINTS_PER_SERIES - 1):.0f}s"
            )


@dataclass(frozen=True)
class PrometheusFigures:
    """Totals since the client started, for the service's figures."""

    queries_sent: int
    errors: int
    timeouts: int
    total_query_seconds: float


def epoch_seconds(moment: datetime) -> float:
    """Naive datetimes are taken as UTC, like the rest of inquest."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def parse_query_response(query: str, status_code: int, body: bytes, elapsed_seconds: float = 0.0) -> QueryResult:
    """A QueryResult from an API v1 query or query_range response; every failure becomes `error`."""

    def failed(error: str) -> QueryResult:
        return QueryResult(query=query, error=error, elapsed_seconds=elapsed_seconds)

    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as problem:
        if status_code != 200:
            return failed(f"HTTP {status_code}: {_snippet(body)}")
        return failed(f"invalid JSON in the response ({problem}): {_snippet(body)}")
    if status_code != 200 or not isinstance(document, dict) or document.get("status") != "success":
        prefix = f"HTTP {status_code}" if status_code != 200 else "query failed"
        if isinstance(document, dict) and isinstance(document.get("error"), str):
            error_type = document.get("errorType")
            kind = f" {error_type}" if isinstance(error_type, str) and error_type else ""
            return failed(f"{prefix}{kind}: {_shorten(document['error'])}")
        return failed(f"{prefix}: {_snippet(body)}")
    warnings = document.get("warnings") or []
    if not isinstance(warnings, list):
        warnings = [warnings]
    try:
        series = _parse_data(document.get("data"))
    except (TypeError, ValueError, KeyError, IndexError) as problem:
        return failed(f"unexpected response shape ({problem}): {_snippet(body)}")
    return QueryResult(
        query=query, series=series, elapsed_seconds=elapsed_seconds, warnings=[str(warning) for warning in warnings]
    )


def _parse_data(data: object) -> list[Series]:
    if not isinstance(data, dict):
        raise ValueError("no data object")
    result_type, result = data.get("resultType"), data.get("result")
    if result_type == "scalar":
        return [Series({}, [_sample(result)])]
    if result_type not in ("matrix", "vector"):
        raise ValueError(f"result type {result_type!r} is not a matrix, vector or scalar")
    if not isinstance(result, list):
        raise ValueError("result is not a list")
    series: list[Series] = []
    for entry in result:
        labels = entry["metric"]
        if not isinstance(labels, dict) or not all(isinstance(value, str) for value in labels.values()):
            raise ValueError(f"labels are not strings: {labels!r}")
        # Native histogram samples ("histogram"/"histograms") are not plain values and are left out.
        if result_type == "matrix":
            samples = [_sample(point) for point in entry.get("values", [])]
        else:
            samples = [_sample(entry["value"])] if "value" in entry else []
        series.append(Series({str(name): value for name, value in labels.items()}, samples))
    return series


def _sample(point: object) -> tuple[float, float]:
    if not isinstance(point, list) or len(point) != 2:
        raise ValueError(f"a sample must be [time, value], got {point!r}")
    # Values are strings so that NaN and ±Inf survive JSON; float() reads "NaN", "+Inf" and "-Inf".
    return float(point[0]), float(point[1])


def _shorten(text: str, limit: int = _ERROR_SNIPPET_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _snippet(body: bytes) -> str:
    text = _shorten(body[: _ERROR_SNIPPET_CHARS * 4].decode("utf-8", errors="replace"))
    return text or "(empty body)"


class _BearerTokenFile(AuthBase):
    """Sends the token in a file, re-read when the file changes: mounted ServiceAccount tokens rotate."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._cached: tuple[tuple[int, int], str] | None = None

    def token(self) -> str:
        try:
            status = self._path.stat()
            signature = (status.st_mtime_ns, status.st_size)
            with self._lock:
                if self._cached is None or self._cached[0] != signature:
                    self._cached = (signature, self._path.read_text(encoding="utf-8").strip())
                return self._cached[1]
        except OSError as error:
            raise _TokenFileError(f"cannot read bearer_token_file {self._path}: {error.strerror or error}") from error

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        return request


class _TokenFileError(Exception):
    pass


class _ResponseTooLarge(Exception):
    pass


class _DeadlineReached(Exception):
    pass


@dataclass(frozen=True)
class _Failure:
    error: str
    elapsed_seconds: float
    timed_out: bool = False
    sent: bool = False


@dataclass
class _CachedNames:
    fetched_at: float  # time.monotonic()
    names: frozenset[str]


def describe_request_error(error: BaseException, timeout_seconds: float, target: str) -> tuple[str, bool]:
    """A short error text for a failed request, and whether it was a timeout."""
    if isinstance(error, requests.Timeout | _DeadlineReached):
        return f"timeout after {seconds_text(timeout_seconds)}", True
    if isinstance(error, requests.exceptions.SSLError):
        return f"TLS error talking to {target}: {_shorten(str(error), 200)}", False
    if isinstance(error, requests.ConnectionError):
        if _caused_by(error, ConnectionRefusedError):
            return f"connection refused by {target}", False
        return f"connection failed to {target}: {_shorten(str(error), 200)}", False
    if isinstance(error, requests.exceptions.JSONDecodeError):
        return f"invalid JSON in the response: {_shorten(str(error), 200)}", False
    if isinstance(error, PrometheusApiClientException):
        # The library's own wording: "HTTP Status Code 503 (b'...')".
        return _shorten(str(error).replace("HTTP Status Code", "HTTP", 1)), False
    if isinstance(error, _ResponseTooLarge | _TokenFileError):
        return str(error), False
    return f"request failed: {type(error).__name__}: {_shorten(str(error), 200)}", False


def _caused_by(error: BaseException, wanted: type[BaseException]) -> bool:
    # requests wraps urllib3's MaxRetryError, whose `reason` wraps the socket error: walk all of it.
    pending: list[object] = [error]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, wanted):
            return True
        pending.extend([current.__cause__, current.__context__, getattr(current, "reason", None), *current.args])
    return False


QueryObserver = Callable[[float, str | None, bool, bool], None]
"""Called once per request on the event loop with (elapsed_seconds, error, timed_out, sent), as figures() count."""


class PrometheusClient:
    def __init__(self, settings: PrometheusSettings, on_query: QueryObserver | None = None) -> None:
        self._settings = settings
        self._on_query = on_query
        self._target = urlsplit(settings.url).netloc
        self._session = self._build_session(settings)
        self._connect = PrometheusConnect(
            url=settings.url,
            session=self._session,
            retry=_NO_RETRIES,
            timeout=settings.query_timeout_seconds,
        )
        # PrometheusConnect mounted an adapter for the URL; this one replaces it with a pool sized for the
        # workers, one kept-alive connection each (urllib3 keeps 10 and would discard any beyond).
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=settings.max_concurrency, max_retries=_NO_RETRIES)
        self._session.mount(settings.url, adapter)
        self._executor = ThreadPoolExecutor(max_workers=settings.max_concurrency, thread_name_prefix="inquest-prom")
        self._figures_lock = threading.Lock()
        self._queries_sent = 0
        self._errors = 0
        self._timeouts = 0
        self._total_query_seconds = 0.0
        self._cached_names: _CachedNames | None = None
        self._closed = False

    @property
    def settings(self) -> PrometheusSettings:
        return self._settings

    @property
    def session(self) -> requests.Session:
        """The one session behind every request (shared with PrometheusConnect)."""
        return self._session

    @property
    def connect(self) -> PrometheusConnect:
        return self._connect

    @staticmethod
    def _build_session(settings: PrometheusSettings) -> requests.Session:
        session = requests.Session()
        session.headers["User-Agent"] = USER_AGENT
        session.headers["Accept"] = "application/json"
        session.headers.update(settings.extra_headers)
        if settings.bearer_token is not None:
            session.headers["Authorization"] = f"Bearer {settings.bearer_token.get_secret_value()}"
        elif settings.bearer_token_file is not None:
            session.auth = _BearerTokenFile(settings.bearer_token_file)
        elif settings.basic_auth_username is not None:
            password = settings.basic_auth_password.get_secret_value() if settings.basic_auth_password else ""
            session.auth = HTTPBasicAuth(settings.basic_auth_username, password)
        if settings.ca_file is not None:
            session.verify = str(settings.ca_file)
        else:
            session.verify = not settings.insecure_skip_verify
        return session

    def figures(self) -> PrometheusFigures:
        with self._figures_lock:
            return PrometheusFigures(self._queries_sent, self._errors, self._timeouts, self._total_query_seconds)

    def close(self) -> None:
        """Stops the pool (threads still in a request finish on their own) and closes the connections."""
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._connect.close()

    def __enter__(self) -> PrometheusClient:
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self.close()

    async def query_range(
        self, query: str, start: datetime, end: datetime, step_seconds: float, budget_seconds: float | None = None
    ) -> QueryResult:
        """One range query; ValueError for an invalid range (a caller's bug), a QueryResult for anything else."""
        range_query = RangeQuery(query, start, end, step_seconds)
        return await self._range_query(range_query, self._deadline(budget_seconds))

    async def query(self, query: str, at: datetime | None = None, budget_seconds: float | None = None) -> QueryResult:
        """One instant query, at `at` (default: the server's now)."""
        if not query.strip():
            raise ValueError("query is empty")
        parameters = {"query": query}
        if at is not None:
            parameters["time"] = _format_seconds(epoch_seconds(at))
        return await self._api_query(query, "query", parameters, self._deadline(budget_seconds))

    async def run_batch(self, queries: Sequence[RangeQuery], budget_seconds: float | None = None) -> list[QueryResult]:
        """Every query in parallel (at most max_concurrency at once); one result per query, in order.

        Returns within the budget (default: settings.budget_seconds) whatever the server does: a query that
        fails, times out or never got a connection in time has `error` set. Never raises.
        """
        deadline = self._deadline(budget_seconds)
        return list(await asyncio.gather(*(self._range_query(query, deadline) for query in queries)))

    async def ping(self, budget_seconds: float | None = None) -> bool:
        """True when the API answers a trivial query (an API v1 call, so it works on every backend)."""
        result = await self._api_query("1", "query", {"query": "1"}, self._deadline(budget_seconds))
        return result.ok

    async def metric_names(self, budget_seconds: float | None = None, expected: Iterable[str] = ()) -> set[str] | None:
        """The metric names the server has seen lately, or None when it cannot tell (error or timeout).

        The list is cached for metric_names_ttl_seconds; failures are not cached. A cached list says what exists,
        not what does not: names in `expected` that it lacks are asked for again, in one narrow call matching only
        them, so a family that appeared since (a new exporter, a newly deployed app) is found by the next call
        rather than minutes later. When that call fails, the cached list stands.
        """
        deadline = self._deadline(budget_seconds)
        cached = self._cached_names
        if cached is None or time.monotonic() - cached.fetched_at >= self._settings.metric_names_ttl_seconds:
            names = await self._names_matching(None, deadline)
            if names is None:
                return None
            self._cached_names = _CachedNames(time.monotonic(), frozenset(names))
            return set(names)
        absent = sorted({name for name in expected if _METRIC_NAME.fullmatch(name)} - cached.names)
        if not absent:
            return set(cached.names)
        # Metric names hold no regex metacharacters, so the alternation needs no escaping.
        found = await self._names_matching('{__name__=~"' + "|".join(absent) + '"}', deadline)
        if found:
            cached = _CachedNames(cached.fetched_at, cached.names | frozenset(found))
            self._cached_names = cached
        return set(cached.names)

    async def _names_matching(self, selector: str | None, deadline: float) -> list[str] | None:
        """Values of __name__ over the discovery lookback (only of the series `selector` matches, if given)."""
        lookback_start = time.time() - self._settings.metric_names_lookback_seconds
        parameters = {"start": _format_seconds(lookback_start)}
        if selector is not None:
            parameters["match[]"] = selector

        def discover(_http_timeout: float) -> list[str]:
            self._count_sent()
            # The library applies its own timeout (query_timeout_seconds); the deadline still bounds the wait.
            names = self._connect.get_label_values("__name__", params=parameters)
            if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
                raise ValueError(f"unexpected label values response: {str(names)[:200]}")
            return names

        outcome = await self._in_pool(discover, deadline)
        if isinstance(outcome, _Failure):
            self._record(outcome.error, outcome.elapsed_seconds, outcome.timed_out, outcome.sent)
            return None
        return outcome

    def _deadline(self, budget_seconds: float | None) -> float:
        budget = self._settings.budget_seconds if budget_seconds is None else budget_seconds
        return time.monotonic() + max(0.0, budget)

    async def _range_query(self, range_query: RangeQuery, deadline: float) -> QueryResult:
        parameters = {
            "query": range_query.query,
            "start": _format_seconds(epoch_seconds(range_query.start)),
            "end": _format_seconds(epoch_seconds(range_query.end)),
            "step": _format_seconds(range_query.step_seconds),
        }
        return await self._api_query(range_query.query, "query_range", parameters, deadline)

    async def _api_query(self, query: str, endpoint: str, parameters: dict[str, str], deadline: float) -> QueryResult:
        url = f"{self._settings.url}/api/v1/{endpoint}"

        def send(http_timeout: float) -> QueryResult:
            # The server gives up too, rather than computing an answer nobody waits for.
            form = {**parameters, "timeout": f"{max(1, round(http_timeout * 1000))}ms"}
            started = time.monotonic()
            self._count_sent()
            # POST: long selectors (many pod names) would not fit in a URL; every backend accepts the form.
            with self._session.post(url, data=form, timeout=http_timeout, stream=True) as response:
                body = self._read_body(response, started + http_timeout)
                return parse_query_response(query, response.status_code, body, time.monotonic() - started)

        outcome = await self._in_pool(send, deadline)
        if isinstance(outcome, _Failure):
            self._record(outcome.error, outcome.elapsed_seconds, outcome.timed_out, outcome.sent)
            return QueryResult(query=query, error=outcome.error, elapsed_seconds=outcome.elapsed_seconds)
        self._record(outcome.error, outcome.elapsed_seconds, timed_out=False, sent=True)
        return outcome

    def _read_body(self, response: requests.Response, deadline: float) -> bytes:
        limit = self._settings.max_response_bytes
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(_READ_CHUNK_BYTES):
            size += len(chunk)
            if size > limit:
                raise _ResponseTooLarge(f"response larger than {limit} bytes: narrow the query")
            # A server that trickles bytes would never trip the per-read timeout; the total one stops it.
            if time.monotonic() > deadline:
                raise _DeadlineReached
            chunks.append(chunk)
        return b"".join(chunks)

    async def _in_pool(self, action: Callable[[float], ResultT], deadline: float) -> ResultT | _Failure:
        """Runs action(http_timeout) in the pool; returns its value or a _Failure, by the deadline at the latest.

        The per-query timeout counts from when a worker picks the job up, so queries queued behind others
        are not charged for the wait; the deadline bounds everything.
        """
        if self._closed:
            return _Failure("client is closed", 0.0)
        loop = asyncio.get_running_loop()
        started: asyncio.Future[float] = loop.create_future()
        timeout = self._settings.query_timeout_seconds

        def job() -> ResultT | _Failure:
            began = time.monotonic()
            try:
                loop.call_soon_threadsafe(_resolve, started, began)
            except RuntimeError:
                return _Failure("the caller is gone", 0.0)  # its event loop closed while the job was queued
            remaining = deadline - began
            if remaining <= 0:
                return _Failure(_budget_spent_message(), 0.0)
            http_timeout = min(timeout, remaining)
            try:
                return action(http_timeout)
            except Exception as error:
                message, timed_out = describe_request_error(error, http_timeout, self._target)
                return _Failure(message, time.monotonic() - began, timed_out=timed_out, sent=True)

        try:
            future = self._executor.submit(job)
        except RuntimeError:
            return _Failure("client is closed", 0.0)
        outcome = asyncio.wrap_future(future)
        try:
            first_of: set[asyncio.Future[Any]] = {started, outcome}
            await asyncio.wait(
                first_of, timeout=max(0.0, deadline - time.monotonic()), return_when=asyncio.FIRST_COMPLETED
            )
            if not outcome.done() and started.done():
                began = started.result()
                finish_by = min(deadline, began + timeout)
                await asyncio.wait({outcome}, timeout=max(0.0, finish_by - time.monotonic()))
            if outcome.done():
                return outcome.result()
            now = time.monotonic()
            if not started.done():
                # Never reached a worker: the pool was busy with slower queries for the whole budget.
                return _Failure(_budget_spent_message(), 0.0)
            began = started.result()
            waited = now - began
            limit = timeout if began + timeout <= deadline else deadline - began
            return _Failure(f"timeout after {seconds_text(limit)}", waited, timed_out=True, sent=True)
        finally:
            # A queued job is dropped; a running one finishes in its thread and its result is discarded.
            outcome.cancel()
            started.cancel()

    def _count_sent(self) -> None:
        with self._figures_lock:
            self._queries_sent += 1

    def _record(self, error: str | None, elapsed_seconds: float, timed_out: bool, sent: bool) -> None:
        with self._figures_lock:
            if error is not None:
                self._errors += 1
            if timed_out:
                self._timeouts += 1
            if sent:
                self._total_query_seconds += elapsed_seconds
        if self._on_query is not None:
            self._on_query(elapsed_seconds, error, timed_out, sent)


def _resolve(future: asyncio.Future[float], value: float) -> None:
    if not future.done():
        future.set_result(value)


def _budget_spent_message() -> str:
    return "not run: the budget ran out while it waited for a free connection"


def seconds_text(value: float) -> str:
    """2 -> '2s', 0.5999 -> '0.6s': durations in messages, rounded to what a reader cares about."""
    return f"{round(value, 2):g}s"


def _format_seconds(value: float) -> str:
    # Milliseconds, as Prometheus keeps them; trailing zeros trimmed for readable logs.
    return f"{value:.3f}".rstrip("0").rstrip(".") or "0"


__all__ = [
    "MAX_POINTS_PER_SERIES",
    "PrometheusClient",
    "PrometheusFigures",
    "PrometheusSettings",
    "QueryResult",
    "RangeQuery",
    "Series",
    "describe_request_error",
    "epoch_seconds",
    "parse_query_response",
]
