"""The Alertmanager webhook receiver: `POST /alertmanager` turns an alert group into an Investigation.

Checks run cheapest first, and every refusal is a 4xx that names the problem and is logged:
a missing or wrong bearer token is 401 (before the body is read), a body over 1 MiB is 413, a body that is not
JSON is 400, JSON that is not an Alertmanager version 4 payload is 422 naming the field. Only a failure of the
Kubernetes API (unreachable, forbidden, no CRD) is a 5xx, so that Alertmanager retries it later.

A flood of new alert groups is capped (limits.py): past `max_creations_per_minute` Investigations created in the
last 60 seconds, a group that has none yet is answered 503 with Retry-After, and Alertmanager sends it again. At
most `max_in_flight` notifications use the Kubernetes client at once (its threads are shared with the service's
writes), `max_waiting` more wait for a turn, and any beyond are answered 503 with Retry-After at once.
Every 503 carries Retry-After. Every answer is counted through `on_answer(status, result)` (the operator's
metrics).

A notification for a group without an Investigation creates one (if any alert fires); a repeat rewrites the
context when its alerts changed and writes nothing when they did not. Notifications of one group are handled one
at a time, and a conflicting write is retried on the fresh object.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, Protocol, TypeVar

from aiohttp import web
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from inquest.intake.alertmanager import (
    GROUP_ANNOTATION,
    AlertStatus,
    IntakeSettings,
    WebhookPayload,
    build_investigation,
    clean_text,
    group_digest,
    merge_context,
)
from inquest.intake.limits import CreationLimiter, CreationsThrottled, IntakeLimits

logger = logging.getLogger(__name__)

MAX_BODY_BYTES: Final = 1024 * 1024
WEBHOOK_PATH: Final = "/alertmanager"
HEALTH_PATH: Final = "/healthz"
DEFAULT_PORT: Final = 9095
WRITE_ATTEMPTS: Final = 3
RETRY_AFTER_SECONDS: Final = 5  # on a 503 from a Kubernetes failure: long enough for a blip to pass

ResultT = TypeVar("ResultT")
Action = Literal["created", "updated", "unchanged", "ignored"]
# What each answer was, for the metrics: an Action, or one of these.
REJECTED: Final = "rejected"  # the request's fault: 4xx
THROTTLED: Final = "throttled"  # the creation cap: 503 with Retry-After
BUSY: Final = "busy"  # more notifications at once than the intake handles and queues: 503 with Retry-After
FAILED: Final = "failed"  # Kubernetes failed or kept changing: 503 with Retry-After

AnswerCallback = Callable[[int, str], None]
"""Called once per answer of POST /alertmanager: the HTTP status and what it was (an Action or the above)."""


class InvestigationWriter(Protocol):
    """What the intake needs from Kubernetes; KubeWriter provides it."""

    async def create_investigation(self, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]: ...

    async def get_investigation(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def patch_investigation_spec(
        self, namespace: str, name: str, patch: Mapping[str, Any], resource_version: str | None = None
    ) -> dict[str, Any]: ...


class SecretReader(Protocol):
    async def read_secret_key(self, namespace: str, name: str, key: str) -> str: ...


class KubeBackend(InvestigationWriter, SecretReader, Protocol):
    """Everything the intake needs at start-up and after; KubeWriter provides it."""


@dataclass(frozen=True)
class Outcome:
    action: Action
    namespace: str
    name: str


class IntakeError(Exception):
    """A notification that cannot be taken, with the HTTP status to answer."""

    def __init__(self, status: int, message: str, retry_after: int | None = None, result: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after if retry_after is not None or status != 503 else RETRY_AFTER_SECONDS
        self.result = result or (FAILED if status >= 500 else REJECTED)


class IntakeService:
    """Maps notifications to Investigation writes; knows nothing of HTTP."""

    def __init__(
        self, settings: IntakeSettings, writer: InvestigationWriter, limits: IntakeLimits | None = None
    ) -> None:
        self._settings = settings
        self._writer = writer
        self._limits = limits or IntakeLimits()
        self._limiter = CreationLimiter(self._limits.max_creations_per_minute)
        # At most max_in_flight notifications talk to Kubernetes at once: the writer's threads are shared with
        # the service's status writes, which must never queue behind a flood.
        self._turns = asyncio.Semaphore(self._limits.max_in_flight)
        self._active = 0  # notifications in receive(): handled or waiting
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    async def receive(self, payload: WebhookPayload) -> Outcome:
        limits = self._limits
        if self._active >= limits.max_in_flight + limits.max_waiting:
            message = f"busy: {self._active} notifications are being handled or waiting; try again"
            raise IntakeError(503, message, retry_after=1, result=BUSY)
        self._active += 1
        try:
            return await self._receive(payload)
        finally:
            self._active -= 1

    async def _receive(self, payload: WebhookPayload) -> Outcome:
        try:
            wanted = build_investigation(payload, self._settings)
        except ValidationError as error:  # a mapping the API would refuse; should not happen, but is input-driven
            raise IntakeError(422, f"the alert group does not map to a valid Investigation: {error}") from error
        namespace, name = wanted.metadata["namespace"], wanted.metadata["name"]
        # The group's lock first, then a turn: a notification waiting for its group holds no turn.
        async with self._lock(namespace, name), self._turns:
            for _ in range(WRITE_ATTEMPTS):
                outcome = await self._write_once(payload, wanted.to_api(), namespace, name)
                if outcome is not None:
                    return outcome
        raise IntakeError(
            503, f"Investigation {namespace}/{name} kept changing under the intake; try again", retry_after=1
        )

    async def _write_once(
        self, payload: WebhookPayload, body: dict[str, Any], namespace: str, name: str
    ) -> Outcome | None:
        """One read-then-write; None when the write lost a race and should be tried again on a fresh read."""
        existing = await _api_call(self._writer.get_investigation(namespace, name), namespace)
        if existing is None:
            if not any(alert.status == AlertStatus.FIRING for alert in payload.alerts):
                return Outcome("ignored", namespace, name)
            try:
                slot = self._limiter.reserve()
            except CreationsThrottled as throttled:
                message = f"not created: {throttled}; Alertmanager sends it again"
                raise IntakeError(503, message, throttled.retry_after, THROTTLED) from None
            try:
                await self._writer.create_investigation(namespace, body)
            except ApiException as error:
                self._limiter.give_back(slot)
                if error.status == 409:  # created meanwhile (by another replica): update it instead
                    return None
                raise _api_error(error, namespace) from error
            except Exception as error:
                self._limiter.give_back(slot)
                raise _unreachable(error) from error
            return Outcome("created", namespace, name)
        metadata = existing.get("metadata") or {}
        owner = (metadata.get("annotations") or {}).get(GROUP_ANNOTATION)
        if owner != group_digest(payload.group_key):
            raise IntakeError(
                409, f"Investigation {namespace}/{name} exists but was not created for this alert group; not touched"
            )
        spec = existing.get("spec") or {}
        current = [line for line in spec.get("context") or [] if isinstance(line, str)]
        merged = merge_context(current, payload, self._settings)
        if merged == current:
            return Outcome("unchanged", namespace, name)
        try:
            await self._writer.patch_investigation_spec(
                namespace, name, {"context": merged}, resource_version=metadata.get("resourceVersion")
            )
        except ApiException as error:
            if error.status == 409:  # someone (a follow-up) changed it since the read
                return None
            raise _api_error(error, namespace) from error
        except Exception as error:
            raise _unreachable(error) from error
        return Outcome("updated", namespace, name)

    @asynccontextmanager
    async def _lock(self, namespace: str, name: str) -> AsyncIterator[None]:
        key = (namespace, name)
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                yield
        finally:
            if not lock.locked() and self._locks.get(key) is lock:
                del self._locks[key]


async def _api_call(call: Awaitable[ResultT], namespace: str) -> ResultT:
    try:
        return await call
    except ApiException as error:
        raise _api_error(error, namespace) from error
    except Exception as error:
        raise _unreachable(error) from error


def _api_error(error: ApiException, namespace: str) -> IntakeError:
    reply: dict[str, Any] = {}
    try:
        parsed = json.loads(error.body or "{}")
        if isinstance(parsed, dict):
            reply = parsed
    except ValueError:
        pass
    message = clean_text(str(reply.get("message") or error.reason or "no message"))[:512]
    details = reply.get("details") or {}
    if error.status == 404 and isinstance(details, dict) and details.get("kind") == "namespaces":
        return IntakeError(422, f"namespace {namespace} does not exist: {message}")
    if error.status == 404:
        return IntakeError(503, "the Investigation API is not installed (no investigations.inquest.dev CRD)")
    if error.status in (400, 422):
        return IntakeError(422, f"the Kubernetes API refused the Investigation: {message}")
    return IntakeError(503, f"the Kubernetes API answered {error.status}: {message}")


def _unreachable(error: Exception) -> IntakeError:
    return IntakeError(503, f"the Kubernetes API could not be reached: {clean_text(str(error))[:256]}")


# --- HTTP ------------------------------------------------------------------------------------------------------


class TokenFile:
    """The intake's token from a file (a mounted Secret), read again when the file changes, so a rotated Secret
    takes effect without a restart; a new content that is empty or unreadable keeps the last good token."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._token = read_token_file(self.path)
        self._seen = self._stamp()

    def _stamp(self) -> tuple[float, int] | None:
        try:
            status = self.path.stat()  # follows the kubelet's ..data symlink swap
        except OSError:
            return None
        return (status.st_mtime, status.st_size)

    def __call__(self) -> str:
        stamp = self._stamp()
        if stamp is not None and stamp != self._seen:
            self._seen = stamp
            try:
                self._token = read_token_file(self.path)
                logger.info("intake token file %s changed; the new token applies", self.path)
            except (OSError, ValueError) as error:
                logger.warning(
                    "intake token file %s changed but is unusable (%s); keeping the last good token", self.path, error
                )
        return self._token


def create_app(
    settings: IntakeSettings,
    writer: InvestigationWriter,
    token: str | Callable[[], str],
    max_body_bytes: int = MAX_BODY_BYTES,
    limits: IntakeLimits | None = None,
    on_answer: AnswerCallback | None = None,
) -> web.Application:
    """The aiohttp application; `token` is the bearer token Alertmanager must send (or what gives its current
    value, e.g. a TokenFile)."""
    current_token: Callable[[], str] = token if callable(token) else (lambda: token)
    if not current_token():
        raise ValueError("the intake needs a non-empty bearer token")
    service = IntakeService(settings, writer, limits)
    app = web.Application(client_max_size=max_body_bytes)

    def counted(response: web.Response, result: str) -> web.Response:
        if on_answer is not None:
            try:
                on_answer(response.status, result)
            except Exception:
                logger.exception("counting an intake answer failed")
        return response

    def reject(
        request: web.Request,
        status: int,
        message: str,
        headers: Mapping[str, str] | None = None,
        field: str | None = None,
        result: str = REJECTED,
    ) -> web.Response:
        return counted(_reject(request, status, message, headers, field), result)

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def alertmanager(request: web.Request) -> web.Response:
        if not _authorized(request.headers.get("Authorization", ""), current_token().encode()):
            return reject(request, 401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})
        if request.content_length is not None and request.content_length > max_body_bytes:
            return reject(request, 413, f"the body is larger than {max_body_bytes} bytes")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return reject(request, 413, f"the body is larger than {max_body_bytes} bytes")
        try:
            document = json.loads(body)
        except (ValueError, RecursionError) as error:
            return reject(request, 400, f"the body is not JSON: {_first_line(error)}")
        try:
            payload = WebhookPayload.model_validate(document)
        except ValidationError as error:
            field, problem = _first_problem(error)
            return reject(request, 422, f"{field}: {problem}", field=field)
        try:
            outcome = await service.receive(payload)
        except IntakeError as error:
            retry = {"Retry-After": str(error.retry_after)} if error.retry_after is not None else None
            return reject(request, error.status, error.message, retry, result=error.result)
        logger.info(
            "alert group %s: %s Investigation %s/%s",
            clean_text(payload.group_key)[:200],
            outcome.action,
            outcome.namespace,
            outcome.name,
        )
        answer = web.json_response(
            {"status": outcome.action, "investigation": f"{outcome.namespace}/{outcome.name}"},
            status=201 if outcome.action == "created" else 200,
        )
        return counted(answer, outcome.action)

    app.router.add_get(HEALTH_PATH, healthz)
    app.router.add_post(WEBHOOK_PATH, alertmanager)
    return app


def _authorized(header: str, expected: bytes) -> bool:
    scheme, _, given = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode("utf-8", "replace"), expected)


def _reject(
    request: web.Request,
    status: int,
    message: str,
    headers: Mapping[str, str] | None = None,
    field: str | None = None,
) -> web.Response:
    logger.warning("rejected %s %s from %s: %d %s", request.method, request.path, request.remote, status, message)
    document: dict[str, str] = {"status": "rejected", "error": message}
    if field is not None:
        document["field"] = field
    return web.json_response(document, status=status, headers=headers)


def _first_problem(error: ValidationError) -> tuple[str, str]:
    problems = error.errors(include_url=False, include_input=False)
    if not problems:
        return "body", "invalid"
    first = problems[0]
    location = ".".join(clean_text(str(part))[:64] for part in first["loc"]) or "body"
    more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
    return location, clean_text(str(first["msg"]))[:256] + more


def _first_line(error: BaseException) -> str:
    if isinstance(error, RecursionError):
        return "nested too deeply"
    return clean_text(str(error))[:200]


# --- start-up --------------------------------------------------------------------------------------------------


async def start_intake(
    settings: IntakeSettings,
    writer: InvestigationWriter,
    port: int = DEFAULT_PORT,
    *,
    token: str | Callable[[], str],
    host: str = "0.0.0.0",
    max_body_bytes: int = MAX_BODY_BYTES,
    limits: IntakeLimits | None = None,
    on_answer: AnswerCallback | None = None,
) -> web.AppRunner:
    """Serves the intake on host:port (0 picks a free port: see `bound_port`); `await runner.cleanup()` stops it."""
    runner = web.AppRunner(create_app(settings, writer, token, max_body_bytes, limits, on_answer))
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    logger.info("Alertmanager intake listening on %s:%d%s", host, bound_port(runner), WEBHOOK_PATH)
    return runner


def bound_port(runner: web.AppRunner) -> int:
    address = runner.addresses[0]
    return int(address[1])


def read_token_file(path: str | Path) -> str:
    """The token in a file (e.g. a mounted Secret), surrounding whitespace removed; empty is an error."""
    token = Path(path).read_text().strip()
    if not token:
        raise ValueError(f"the intake token file {path} is empty")
    return token


async def read_token_secret(secrets: SecretReader, reference: str, key: str = "token") -> str:
    """The token in a Secret (`NAMESPACE/NAME`, key `token`), read once at start-up.

    Needs `get` on that one Secret, which the operator's ClusterRole does not grant: bind a Role with
    `resourceNames: [NAME]` to the operator's identity (docs/intake-and-plugin.md)."""
    namespace, _, name = reference.partition("/")
    if not namespace or not name or "/" in name:
        raise ValueError(f"--intake-token-secret {reference!r} is not NAMESPACE/NAME")
    token = (await secrets.read_secret_key(namespace, name, key)).strip()
    if not token:
        raise ValueError(f"Secret {namespace}/{name} key {key!r} is empty")
    return token


async def start_configured_intake(
    backend: KubeBackend,
    port: int,
    *,
    token_file: str | None = None,
    token_secret: str | None = None,
    settings: IntakeSettings | None = None,
    host: str = "0.0.0.0",
    limits: IntakeLimits | None = None,
    on_answer: AnswerCallback | None = None,
) -> web.AppRunner:
    """What `python -m inquest run --intake-port` starts: the token from a file or a Secret, then the server.

    Raises ValueError for a missing, empty or unreadable token source (KubeWriter's errors for the Secret)."""
    if (token_file is None) == (token_secret is None):
        raise ValueError("the intake needs exactly one of --intake-token-file and --intake-token-secret")
    token: str | Callable[[], str]
    if token_file is not None:
        token = TokenFile(token_file)
    else:
        assert token_secret is not None
        token = await read_token_secret(backend, token_secret)
    return await start_intake(
        settings or IntakeSettings(), backend, port, token=token, host=host, limits=limits, on_answer=on_answer
    )
