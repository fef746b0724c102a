"""What the service calls when an investigation concludes, its findings change or its symptoms resolve.

Every `on_*` method is synchronous and returns at once: it picks the notifiers by route, hands one delivery per
notifier to the dispatcher (background tasks), and never raises. Outcomes come back through the dispatcher's
callback and are written to the Investigation's `status.notifications` (through a StatusRecorder the caller
provides); a delivery that is given up also posts a Warning Event `NotificationFailed` (through an EventPoster).

The service's own status writes replace the whole status, which drops `notifications`; so each `on_*` call
writes back what is known for that Investigation, and every outcome writes the whole list again (one write at a
time per Investigation, so an older list never lands after a newer one).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final, Protocol
from urllib.parse import urlsplit

from inquest import reporting
from inquest.api import models
from inquest.notify import payloads
from inquest.notify.dispatcher import (
    Delivery,
    DeliveryError,
    DeliveryResult,
    Dispatcher,
    HttpRequest,
    ResultCallback,
    Timing,
)
from inquest.notify.payloads import InvestigationRef, Notice, NoticeKind
from inquest.notify.routes import (
    DeliverySettings,
    NotifierConfig,
    NotifyConfig,
    PagerDutyNotifier,
    SecretRef,
    SlackNotifier,
    WebhookNotifier,
)

if TYPE_CHECKING:
    from inquest.clients.kube import KubeWriter

logger = logging.getLogger(__name__)

NOTIFICATION_FAILED: Final = "NotificationFailed"
MAX_TRACKED_INVESTIGATIONS: Final = 10_000
# After a restart, answers older than this are not delivered again: a late page for an old answer misleads.
RESUME_WINDOW: Final = timedelta(hours=1)


class SecretReader(Protocol):
    """Reads one key of one Secret (KubeWriter.read_secret_key)."""

    async def read_secret_key(self, namespace: str, name: str, key: str) -> str: ...


StatusRecorder = Callable[[InvestigationRef, list[models.Notification]], Awaitable[None]]
"""Writes `status.notifications` of the Investigation: the whole list, replacing what is there."""

EventPoster = Callable[[InvestigationRef, str, str], Awaitable[None]]
"""Posts a Warning Event (reason, message) on the Investigation."""

DispatcherFactory = Callable[[DeliverySettings, ResultCallback, Timing], Dispatcher]


def newly_resolved(before: models.InvestigationStatus | None, after: models.InvestigationStatus) -> bool:
    """True when `after` sets SymptomsResolved=True and `before` did not have it."""
    resolved = after.condition(reporting.RESOLVED)
    if resolved is None or resolved.status != models.ConditionStatus.TRUE:
        return False
    previous = before.condition(reporting.RESOLVED) if before is not None else None
    return previous is None or previous.status != models.ConditionStatus.TRUE


class Notifier:
    def __init__(
        self,
        config: NotifyConfig,
        secrets: SecretReader,
        record_status: StatusRecorder,
        post_event: EventPoster,
        timing: Timing | None = None,
        dispatcher_factory: DispatcherFactory = Dispatcher,
        on_outcome: Callable[[DeliveryResult], None] | None = None,
    ) -> None:
        self._config = config
        self._on_outcome = on_outcome  # sees every outcome first (the operator's metrics)
        self._secrets = secrets
        self._record_status = record_status
        self._post_event = post_event
        self._timing = timing or Timing()
        self._dispatcher = dispatcher_factory(config.delivery, self._on_result, self._timing)
        self._secret_cache: dict[SecretRef, tuple[float, str]] = {}
        # Per Investigation uid: its latest reference, and the latest delivery per notifier.
        self._records: OrderedDict[str, tuple[InvestigationRef, dict[str, models.Notification]]] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}
        self._background: set[asyncio.Task[None]] = set()
        # (uid, generation) of the answers this process has notified or resumed: each is handled once.
        self._answers: OrderedDict[tuple[str, int], None] = OrderedDict()

    @classmethod
    def for_kube(
        cls,
        config: NotifyConfig,
        writer: KubeWriter,
        timing: Timing | None = None,
        on_outcome: Callable[[DeliveryResult], None] | None = None,
        secrets: SecretReader | None = None,
    ) -> Notifier:
        """Records in the Investigation's status and Events through the KubeWriter; reads Secrets with `secrets`
        (notify.mounted.MountedSecrets: mounted files), else through the KubeWriter (the API)."""
        from inquest.clients.kube import InvolvedObject

        async def record_status(investigation: InvestigationRef, notifications: list[models.Notification]) -> None:
            patch = {"notifications": [notification.to_api() for notification in notifications]}
            await writer.patch_status(investigation.namespace, investigation.name, patch)

        async def post_event(investigation: InvestigationRef, reason: str, message: str) -> None:
            involved = InvolvedObject(investigation.namespace, investigation.name, investigation.uid)
            await writer.post_event(involved, reason, message, warning=True)

        reader = secrets if secrets is not None else writer
        return cls(config, reader, record_status, post_event, timing, on_outcome=on_outcome)

    @property
    def dispatcher(self) -> Dispatcher:
        return self._dispatcher

    # --- the three points the service calls ---------------------------------------------------------------------

    def on_concluded(self, investigation: InvestigationRef, status: models.InvestigationStatus) -> None:
        """A generation was answered (after its status patch)."""
        self._handled(investigation)
        self._guarded(lambda: self._notify_routed(Notice(NoticeKind.CONCLUDED, investigation, status, self._cluster)))

    def resume(self, investigation: InvestigationRef, raw_status: Mapping[str, Any]) -> None:
        """An answered generation seen for the first time by this process (after a restart): delivers its answer
        to each routed notifier whose record for that generation is missing or still Retrying, i.e. what a killed
        process did not finish. Answers concluded more than RESUME_WINDOW ago are left alone."""
        if not self._handled(investigation):
            return
        self._guarded(lambda: self._resume(investigation, raw_status))

    def _handled(self, investigation: InvestigationRef) -> bool:
        """Marks the answer as handled; False if it already was."""
        key = (investigation.uid, investigation.generation)
        if key in self._answers:
            return False
        self._answers[key] = None
        while len(self._answers) > MAX_TRACKED_INVESTIGATIONS:
            self._answers.popitem(last=False)
        return True

    def _resume(self, investigation: InvestigationRef, raw_status: Mapping[str, Any]) -> None:
        status = models.InvestigationStatus.model_validate(dict(raw_status))
        concluded = status.condition(models.CONCLUDED)
        if concluded is None or self._timing.clock() - concluded.last_transition_time > RESUME_WINDOW:
            return
        recorded = {record.notifier: record for record in status.notifications}
        finished = (models.NotificationState.SENT, models.NotificationState.FAILED)

        def done(notifier: NotifierConfig) -> bool:
            record = recorded.get(notifier.name)
            return (
                record is not None
                and record.state in finished
                and (record.generation is None or record.generation >= investigation.generation)
            )

        routed = self._config.select(
            investigation.namespace, payloads.verdict_of(status), payloads.confidence_of(status)
        )
        missing = [notifier for notifier in routed if not done(notifier)]
        if not missing:
            return
        logger.info(
            "resuming %d notification(s) of %s generation %d after a restart",
            len(missing),
            investigation.qualified_name,
            investigation.generation,
        )
        self._records.setdefault(investigation.uid, (investigation, dict(recorded)))
        self._notify(Notice(NoticeKind.CONCLUDED, investigation, status, self._cluster), missing)

    def on_findings_changed(
        self,
        investigation: InvestigationRef,
        before: models.InvestigationStatus | None,
        after: models.InvestigationStatus,
    ) -> None:
        """A Continuous re-check changed the findings materially (after its status patch); a change that resolves
        the symptoms is passed on to on_resolved."""
        if newly_resolved(before, after):
            self.on_resolved(investigation, before, after)
            return
        notice = Notice(NoticeKind.FINDINGS_CHANGED, investigation, after, self._cluster)
        self._guarded(lambda: self._notify_routed(notice))

    def on_resolved(
        self,
        investigation: InvestigationRef,
        before: models.InvestigationStatus | None,
        after: models.InvestigationStatus,
    ) -> None:
        """A Continuous investigation's symptoms went away: tell every notifier that got (or, by its routes,
        would have got) the answer before, e.g. a PagerDuty `resolve` of the alert its trigger opened."""

        def resolve() -> None:
            notice = Notice(NoticeKind.RESOLVED, investigation, after, self._cluster)
            chosen = set(self._dispatcher.notifiers_sent(investigation.uid))
            if before is not None:
                verdict, confidence = payloads.verdict_of(before), payloads.confidence_of(before)
                chosen |= {n.name for n in self._config.select(investigation.namespace, verdict, confidence)}
            self._notify(notice, [n for n in self._config.notifiers if n.name in chosen])

        self._guarded(resolve)

    async def wait_idle(self) -> None:
        """Until every delivery and status write under way has finished (tests, shutdown)."""
        while True:
            await self._dispatcher.wait_idle()
            if not self._background:
                return
            await asyncio.gather(*list(self._background), return_exceptions=True)

    async def close(self) -> None:
        await self._dispatcher.close()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*list(self._background), return_exceptions=True)

    # --- routing and deliveries ---------------------------------------------------------------------------------

    @property
    def _cluster(self) -> str:
        return self._config.cluster_name

    def _guarded(self, action: Callable[[], None]) -> None:
        try:
            action()
        except Exception:
            logger.exception("notifications could not be queued; the investigation is unaffected")

    def _notify_routed(self, notice: Notice) -> None:
        namespace = notice.investigation.namespace
        self._notify(notice, self._config.select(namespace, notice.verdict, notice.confidence))

    def _notify(self, notice: Notice, notifiers: list[NotifierConfig]) -> None:
        investigation = notice.investigation
        digest = payloads.digest(notice)
        for notifier in notifiers:

            async def prepare(notifier: NotifierConfig = notifier) -> HttpRequest:
                return await self._request(notifier, notice)

            self._dispatcher.submit(Delivery(investigation.uid, notifier.name, digest, prepare, investigation))
        known = self._records.get(investigation.uid)
        if known is not None:
            self._records[investigation.uid] = (investigation, known[1])
            # The service's status write just dropped status.notifications: put back what is known.
            self._spawn(self._publish(investigation.uid))

    async def _request(self, notifier: NotifierConfig, notice: Notice) -> HttpRequest:
        secret = await self._secret(notifier.secret_ref)
        if isinstance(notifier, SlackNotifier):
            url = _checked_url(secret, notifier.secret_ref)
            return HttpRequest(url, payloads.slack_message(notice), secrets=_url_secrets(url))
        if isinstance(notifier, PagerDutyNotifier):
            body = payloads.pagerduty_event(notice, routing_key=secret, severity=notifier.severity)
            return HttpRequest(notifier.events_url, body, secrets=(secret,))
        assert isinstance(notifier, WebhookNotifier)
        url = _checked_url(secret, notifier.secret_ref)
        headers: dict[str, str] = {}
        for header in notifier.headers:
            value = await self._secret(header.secret_ref)
            if any(character in value for character in "\r\n\0"):
                raise DeliveryError(f"{header.secret_ref} holds a header value with CR, LF or NUL")
            headers[header.name] = value
        secrets = (*_url_secrets(url), *headers.values())
        return HttpRequest(url, payloads.webhook_payload(notice), headers, secrets=secrets)

    async def _secret(self, ref: SecretRef) -> str:
        ttl = self._config.delivery.secret_cache_seconds
        cached = self._secret_cache.get(ref)
        if cached is not None and time.monotonic() - cached[0] < ttl:
            return cached[1]
        try:
            value = await self._secrets.read_secret_key(ref.namespace, ref.name, ref.key)
        except KeyError:
            raise DeliveryError(f"{ref}: the Secret has no such key") from None
        except Exception as error:
            status = getattr(error, "status", None)
            if status == 403:
                raise DeliveryError(
                    f"{ref}: forbidden; the operator needs get on that Secret (see docs/notifications.md)"
                ) from None
            if status == 404:
                raise DeliveryError(f"{ref}: the Secret does not exist") from None
            reason = f"HTTP {status}" if isinstance(status, int) else type(error).__name__
            raise DeliveryError(f"{ref}: could not be read ({reason})", retryable=True) from None
        if not value:
            raise DeliveryError(f"{ref}: the value is empty")
        if ttl > 0:
            self._secret_cache[ref] = (time.monotonic(), value)
        return value

    # --- outcomes -----------------------------------------------------------------------------------------------

    async def _on_result(self, result: DeliveryResult) -> None:
        if self._on_outcome is not None:
            self._on_outcome(result)
        investigation: InvestigationRef = result.delivery.context
        uid = investigation.uid
        record = models.Notification(
            notifier=result.delivery.notifier,
            state=result.state,
            attempts=min(result.attempts, 100),
            generation=investigation.generation or None,
            last_attempt_time=result.time,
            message=result.message[:1024],
        )
        known = self._records.pop(uid, None)
        notifications = known[1] if known is not None else {}
        latest = known[0] if known is not None else investigation
        notifications[record.notifier] = record
        self._records[uid] = (latest, notifications)
        while len(self._records) > MAX_TRACKED_INVESTIGATIONS:
            evicted, _ = self._records.popitem(last=False)
            self._locks.pop(evicted, None)
        await self._publish(uid)
        if result.state == models.NotificationState.FAILED:
            message = f"Notification to {result.delivery.notifier} failed: {result.message}"
            try:
                await self._post_event(latest, NOTIFICATION_FAILED, message)
            except Exception as error:
                logger.warning("could not post %s on %s: %s", NOTIFICATION_FAILED, latest.qualified_name, error)

    async def _publish(self, uid: str) -> None:
        lock = self._locks.setdefault(uid, asyncio.Lock())
        async with lock:
            known = self._records.get(uid)
            if known is None:
                return
            investigation, notifications = known
            latest = sorted(notifications.values(), key=lambda item: item.last_attempt_time)
            kept = sorted(latest[-models.MAX_NOTIFICATIONS :], key=lambda item: item.notifier)
            try:
                await self._record_status(investigation, kept)
            except Exception as error:
                logger.warning("could not record notifications on %s: %s", investigation.qualified_name, error)

    def _spawn(self, coroutine: Awaitable[Any]) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _checked_url(value: str, ref: SecretRef) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in value):
        raise DeliveryError(f"{ref} does not hold an http(s) URL")
    return value


def _url_secrets(url: str) -> tuple[str, ...]:
    """What of a URL must stay out of messages: the whole of it, its path and query (a receiver's error may echo
    them), its longer path segments (tokens) and any password; never shown even in part."""
    parts = urlsplit(url)
    pieces = [url, parts.path, parts.query, *(segment for segment in parts.path.split("/") if len(segment) >= 8)]
    if parts.password:
        pieces.append(parts.password)
    return tuple(piece for piece in pieces if piece and piece != "/")
