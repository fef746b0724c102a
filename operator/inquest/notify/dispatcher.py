"""Sends notifications over HTTP without ever holding up or failing an investigation.

`submit` returns at once: each delivery runs as a background task, its HTTP attempts bounded in number per
notifier (max_concurrency each, so a receiver that hangs holds only its own notifier's slots and never delays the
others) on ONE shared aiohttp session with per-request timeouts. A failed attempt is retried with
exponential back-off and jitter (a receiver's Retry-After is honoured, up to the maximum back-off) when the failure
may pass (network errors, timeouts, 408, 425, 429, 5xx); anything else fails at once. Every outcome (Sent, Retrying,
Failed) goes to the result callback, so the caller can record it.

What was sent is remembered per (Investigation uid, notifier) as a digest: a delivery whose digest was already
sent there is skipped, one identical to a delivery still under way is not queued twice, and a different one
replaces a delivery still under way (its newer content supersedes the older). The memory is bounded and lives in
the process: after a restart the service's own bookkeeping (one answer per generation, material-change checks)
is what keeps answers from being sent again.
"""

from __future__ import annotations

import asyncio
import logging
import random as _random
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any, Final

import aiohttp

from inquest import __version__
from inquest.api.models import NotificationState
from inquest.notify.routes import DeliverySettings

logger = logging.getLogger(__name__)

USER_AGENT: Final = f"inquest/{__version__} (notifications)"
MAX_REMEMBERED: Final = 20_000
_RESPONSE_SNIPPET_BYTES: Final = 512
_MESSAGE_CHARS: Final = 512
_RETRYABLE_STATUSES: Final = frozenset({408, 425, 429})
_REDACTED: Final = "[redacted]"


@dataclass(frozen=True)
class HttpRequest:
    """One POST of a JSON body. secrets are values (URLs, keys, header values) kept out of every message."""

    url: str
    body: Mapping[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()


class DeliveryError(Exception):
    """Preparing a request failed (e.g. its Secret could not be read); retryable if it may pass."""

    def __init__(self, message: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class Delivery:
    """One notice for one notifier. prepare builds the request when an attempt starts, so Secrets are read then
    and not while the caller waits."""

    uid: str
    notifier: str
    digest: str
    prepare: Callable[[], Awaitable[HttpRequest]]
    context: Any = None  # handed back in results, e.g. which Investigation this is about

    @property
    def key(self) -> tuple[str, str]:
        return (self.uid, self.notifier)


@dataclass(frozen=True)
class DeliveryResult:
    delivery: Delivery
    state: NotificationState
    attempts: int
    time: datetime
    message: str

    @property
    def final(self) -> bool:
        return self.state != NotificationState.RETRYING


ResultCallback = Callable[[DeliveryResult], Awaitable[None]]
"""Receives every outcome: Retrying after each failed attempt that will be retried, then Sent or Failed."""


class Submission(StrEnum):
    QUEUED = "Queued"
    UNCHANGED = "Unchanged"  # this digest was already sent to this notifier
    PENDING = "Pending"  # this digest is already on its way to this notifier
    DROPPED = "Dropped"  # max_pending deliveries are already under way; reported as Failed


@dataclass(frozen=True)
class Timing:
    """What tests replace: the sleep between attempts, the jitter source and the clock."""

    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    random: Callable[[], float] = _random.random
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)


@dataclass
class _Job:
    """A delivery under way. A newer delivery for the same key supersedes it: it is cancelled at once unless an
    attempt is in flight, in which case that attempt ends first (so a receiver never sees the newer message
    before the older one, e.g. a PagerDuty resolve before its trigger) and no retry follows."""

    digest: str
    task: asyncio.Task[None] | None = None
    attempting: bool = False  # an HTTP request is in flight
    posted: bool = False  # a request was started, so the receiver may have it
    superseded: bool = False


@dataclass
class _Attempt:
    ok: bool
    retryable: bool
    message: str
    retry_after: float | None = None


class Dispatcher:
    def __init__(self, settings: DeliverySettings, on_result: ResultCallback, timing: Timing | None = None) -> None:
        self._settings = settings
        self._on_result = on_result
        self._timing = timing or Timing()
        self._slots: dict[str, asyncio.Semaphore] = {}  # per notifier: its requests in flight
        self._session: aiohttp.ClientSession | None = None
        self._sent: OrderedDict[tuple[str, str], str] = OrderedDict()
        # Sent digests let go past MAX_REMEMBERED (oldest first): such a notification may be sent once more.
        self.forgotten = 0
        self._pending: dict[tuple[str, str], _Job] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._background: set[asyncio.Task[None]] = set()
        self._closed = False

    # --- the caller's side: never blocks, never raises for a delivery -------------------------------------------

    def submit(self, delivery: Delivery) -> Submission:
        """Queues the delivery as a background task and returns at once."""
        if self._closed:
            raise RuntimeError("the dispatcher is closed")
        key = delivery.key
        current = self._pending.get(key)
        if current is not None and current.digest == delivery.digest:
            return Submission.PENDING
        previous: asyncio.Task[None] | None = None
        if current is not None:
            current.superseded = True
            previous = current.task
            if previous is not None and not current.attempting:
                previous.cancel()
        # What the receiver last got is what was sent, unless the superseded delivery may have reached it.
        if (current is None or not current.posted) and self._sent.get(key) == delivery.digest:
            if current is not None:
                del self._pending[key]
            return Submission.UNCHANGED
        if current is None and len(self._pending) >= self._settings.max_pending:
            message = f"not sent: {self._settings.max_pending} notifications are already queued or retrying"
            self._spawn(self._report(delivery, NotificationState.FAILED, 0, message))
            return Submission.DROPPED
        job = _Job(delivery.digest)
        task = asyncio.create_task(
            self._deliver(delivery, job, previous), name=f"notify {delivery.notifier} {delivery.uid}"
        )
        job.task = task
        self._pending[key] = job
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._finished(key, done))
        return Submission.QUEUED

    def sent_digest(self, uid: str, notifier: str) -> str | None:
        return self._sent.get((uid, notifier))

    def notifiers_sent(self, uid: str) -> list[str]:
        """The notifiers something was sent to for this Investigation (in this process's memory)."""
        return [notifier for (sent_uid, notifier) in self._sent if sent_uid == uid]

    def forget(self, uid: str) -> None:
        for key in [key for key in self._sent if key[0] == uid]:
            del self._sent[key]

    async def wait_idle(self) -> None:
        """Until every delivery and report under way has finished (for tests and shutdown)."""
        while self._tasks or self._background:
            await asyncio.gather(*self._tasks, *self._background, return_exceptions=True)

    async def close(self) -> None:
        self._closed = True
        tasks = [*self._tasks, *self._background]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pending.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based): exponential, capped, with jitter in
        its upper half so that retries of many deliveries spread out; at least the receiver's Retry-After."""
        settings = self._settings
        ceiling = min(settings.max_backoff_seconds, settings.initial_backoff_seconds * 2.0 ** (attempt - 1))
        delay = ceiling / 2 + self._timing.random() * ceiling / 2
        if retry_after is not None:
            delay = max(delay, min(retry_after, settings.max_backoff_seconds))
        return delay

    # --- the background side ------------------------------------------------------------------------------------

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _finished(self, key: tuple[str, str], task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        current = self._pending.get(key)
        if current is not None and current.task is task:
            del self._pending[key]
        if not task.cancelled() and task.exception() is not None:
            logger.error("notification task failed", exc_info=task.exception())

    async def _deliver(self, delivery: Delivery, job: _Job, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await asyncio.wait({previous})  # the attempt it has in flight ends first
        attempts = 0
        while not job.superseded:
            attempts += 1
            async with self._notifier_slots(delivery.notifier):
                outcome = await self._attempt(delivery, job)
            if outcome.ok:
                self._remember(delivery)
                await self._report(delivery, NotificationState.SENT, attempts, outcome.message)
                return
            if job.superseded:
                return  # the newer delivery reports
            if not outcome.retryable or attempts >= self._settings.max_attempts:
                tries = f"after {attempts} attempt{'s' if attempts != 1 else ''}"
                await self._report(delivery, NotificationState.FAILED, attempts, f"{outcome.message} ({tries})")
                return
            delay = self.backoff(attempts, outcome.retry_after)
            await self._report(
                delivery, NotificationState.RETRYING, attempts, f"{outcome.message}; retrying in {delay:.1f}s"
            )
            await self._timing.sleep(delay)

    def _notifier_slots(self, notifier: str) -> asyncio.Semaphore:
        slots = self._slots.get(notifier)
        if slots is None:
            slots = self._slots[notifier] = asyncio.Semaphore(self._settings.max_concurrency)
        return slots

    def _remember(self, delivery: Delivery) -> None:
        self._sent[delivery.key] = delivery.digest
        self._sent.move_to_end(delivery.key)
        while len(self._sent) > MAX_REMEMBERED:
            self._sent.popitem(last=False)
            self.forgotten += 1

    async def _attempt(self, delivery: Delivery, job: _Job) -> _Attempt:
        try:
            request = await delivery.prepare()
        except DeliveryError as error:
            return _Attempt(ok=False, retryable=error.retryable, message=_clean(str(error), ()))
        except Exception as error:
            logger.exception("preparing the notification for %s failed", delivery.notifier)
            return _Attempt(ok=False, retryable=False, message=_clean(f"could not prepare it: {error}", ()))
        if job.superseded:
            return _Attempt(ok=False, retryable=False, message="superseded")
        job.attempting = job.posted = True
        try:
            return await self._post(request)
        except Exception as error:  # a bug must not escape as a silent task failure
            logger.error("posting to notifier %s failed: %s", delivery.notifier, type(error).__name__)
            return _Attempt(ok=False, retryable=False, message=_clean(f"{type(error).__name__}", request.secrets))
        finally:
            job.attempting = False

    async def _post(self, request: HttpRequest) -> _Attempt:
        timeout = self._settings.timeout_seconds
        headers = {"User-Agent": USER_AGENT, **request.headers}
        try:
            async with self._shared_session().post(
                request.url, json=dict(request.body), headers=headers, allow_redirects=False
            ) as response:
                snippet = (await response.content.read(_RESPONSE_SNIPPET_BYTES)).decode("utf-8", "replace")
                status, retry_after = response.status, _retry_after(response.headers.get("Retry-After"), self._timing)
        except TimeoutError:
            return _Attempt(ok=False, retryable=True, message=f"no answer within {timeout:g}s")
        except aiohttp.InvalidURL:
            return _Attempt(ok=False, retryable=False, message="the URL is not valid")
        except aiohttp.ClientError as error:
            return _Attempt(
                ok=False, retryable=True, message=_clean(f"{type(error).__name__}: {error}", request.secrets)
            )
        detail = _clean(" ".join(snippet.split()), request.secrets)
        answered = f"HTTP {status}" + (f": {detail}" if detail else "")
        if 200 <= status < 300:
            return _Attempt(ok=True, retryable=False, message=f"accepted ({answered})")
        if 300 <= status < 400:
            return _Attempt(ok=False, retryable=False, message=f"redirected ({answered}); configure the final URL")
        retryable = status in _RETRYABLE_STATUSES or status >= 500
        return _Attempt(ok=False, retryable=retryable, message=f"refused ({answered})", retry_after=retry_after)

    def _shared_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connect = min(5.0, self._settings.timeout_seconds)
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._settings.timeout_seconds, connect=connect),
                # No pool-wide limit: each notifier's slots bound its own connections, and a shared limit
                # would let a hanging receiver's requests hold the connections the others need.
                connector=aiohttp.TCPConnector(limit=0),
                raise_for_status=False,
            )
        return self._session

    async def _report(self, delivery: Delivery, state: NotificationState, attempts: int, message: str) -> None:
        result = DeliveryResult(delivery, state, attempts, self._timing.clock(), message[:_MESSAGE_CHARS])
        try:
            await self._on_result(result)
        except Exception:
            logger.exception("recording the %s notification to %s failed", state, delivery.notifier)


def _clean(text: str, secrets: tuple[str, ...]) -> str:
    """One line, no secret values, bounded."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, _REDACTED)
    flat = "".join(character if character.isprintable() else " " for character in text)
    return " ".join(flat.split())[:_MESSAGE_CHARS]


def _retry_after(value: str | None, timing: Timing) -> float | None:
    """Retry-After in seconds, from either of its forms (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - timing.clock()).total_seconds())
