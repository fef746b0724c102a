"""The dispatcher: retries with back-off and jitter, dedup by digest, never blocking the caller. No network: the
HTTP post is scripted, sleeps are recorded instead of slept."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from inquest.api.models import NotificationState
from inquest.notify import dispatcher as dispatch
from inquest.notify.dispatcher import (
    Delivery,
    DeliveryError,
    DeliveryResult,
    Dispatcher,
    HttpRequest,
    Submission,
    Timing,
)
from inquest.notify.routes import DeliverySettings

NOW = datetime(2026, 11, 25, 14, 40, tzinfo=UTC)
OK = dispatch._Attempt(ok=True, retryable=False, message="accepted (HTTP 200: ok)")
BUSY = dispatch._Attempt(ok=False, retryable=True, message="refused (HTTP 500)")
GONE = dispatch._Attempt(ok=False, retryable=False, message="refused (HTTP 404: no_service)")


class Harness:
    def __init__(self, script: list[dispatch._Attempt] | None = None, jitter: float = 0.5, **settings: float) -> None:
        self.script: Iterator[dispatch._Attempt] = iter(script or [])
        self.results: list[DeliveryResult] = []
        self.sleeps: list[float] = []
        self.posts: list[HttpRequest] = []

        async def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)

        async def record(result: DeliveryResult) -> None:
            self.results.append(result)

        harness = self

        class Scripted(Dispatcher):
            async def _post(self, request: HttpRequest) -> dispatch._Attempt:
                harness.posts.append(request)
                return next(harness.script, OK)

        self.dispatcher = Scripted(
            DeliverySettings.model_validate(settings),
            record,
            Timing(sleep=sleep, random=lambda: jitter, clock=lambda: NOW),
        )

    @property
    def states(self) -> list[tuple[NotificationState, int]]:
        return [(result.state, result.attempts) for result in self.results]


async def ready() -> HttpRequest:
    return HttpRequest("https://hooks.example.com/T/B/secret-token", {"text": "hi"}, secrets=("secret-token",))


def delivery(
    digest: str = "d1", uid: str = "uid-1", notifier: str = "slack", prepare: Callable[..., object] = ready
) -> Delivery:
    return Delivery(uid, notifier, digest, prepare)  # type: ignore[arg-type]


async def test_a_retryable_failure_is_retried_with_backoff_until_sent() -> None:
    harness = Harness([BUSY, BUSY, OK], initialBackoffSeconds=1, maxBackoffSeconds=60)
    assert harness.dispatcher.submit(delivery()) == Submission.QUEUED
    await harness.dispatcher.wait_idle()
    assert harness.states == [
        (NotificationState.RETRYING, 1),
        (NotificationState.RETRYING, 2),
        (NotificationState.SENT, 3),
    ]
    # Exponential with jitter in the upper half: ceilings 1 and 2, jitter 0.5 -> 0.75 and 1.5.
    assert harness.sleeps == [0.75, 1.5]
    assert harness.results[0].message == "refused (HTTP 500); retrying in 0.8s"
    assert harness.results[-1].final
    assert harness.results[-1].time == NOW
    assert harness.dispatcher.sent_digest("uid-1", "slack") == "d1"


async def test_a_permanent_failure_is_not_retried() -> None:
    harness = Harness([GONE])
    harness.dispatcher.submit(delivery())
    await harness.dispatcher.wait_idle()
    assert harness.states == [(NotificationState.FAILED, 1)]
    assert harness.results[0].message == "refused (HTTP 404: no_service) (after 1 attempt)"
    assert harness.sleeps == []
    assert harness.dispatcher.sent_digest("uid-1", "slack") is None


async def test_retries_stop_at_max_attempts() -> None:
    harness = Harness([BUSY] * 3, maxAttempts=3, initialBackoffSeconds=0.1)
    harness.dispatcher.submit(delivery())
    await harness.dispatcher.wait_idle()
    assert harness.states == [
        (NotificationState.RETRYING, 1),
        (NotificationState.RETRYING, 2),
        (NotificationState.FAILED, 3),
    ]
    assert harness.results[-1].message.endswith("(after 3 attempts)")
    # Failed is not remembered as sent: the same findings are tried again next time.
    harness.dispatcher.submit(delivery())
    await harness.dispatcher.wait_idle()
    assert harness.states[-1] == (NotificationState.SENT, 1)


@pytest.mark.parametrize(
    ("jitter", "expected"),
    [(0.0, [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]), (1.0, [1.0, 2.0, 4.0, 8.0, 10.0, 10.0])],
)
def test_backoff_doubles_up_to_the_maximum_with_jitter_in_the_upper_half(jitter: float, expected: list[float]) -> None:
    harness = Harness(jitter=jitter, initialBackoffSeconds=1, maxBackoffSeconds=10)
    assert [harness.dispatcher.backoff(attempt) for attempt in range(1, 7)] == expected


def test_retry_after_is_honoured_up_to_the_maximum() -> None:
    harness = Harness(jitter=0.0, initialBackoffSeconds=1, maxBackoffSeconds=30)
    assert harness.dispatcher.backoff(1, retry_after=7) == 7
    assert harness.dispatcher.backoff(1, retry_after=3600) == 30
    assert harness.dispatcher.backoff(1, retry_after=0) == 0.5
    timing = Timing(clock=lambda: NOW)
    assert dispatch._retry_after("12", timing) == 12
    assert dispatch._retry_after("Wed, 25 Nov 2026 14:40:30 GMT", timing) == 30
    assert dispatch._retry_after("soon", timing) is None


async def test_what_was_sent_is_not_sent_again() -> None:
    harness = Harness()
    assert harness.dispatcher.submit(delivery("d1")) == Submission.QUEUED
    await harness.dispatcher.wait_idle()
    assert harness.dispatcher.submit(delivery("d1")) == Submission.UNCHANGED
    # The same findings for another notifier or another Investigation are separate.
    assert harness.dispatcher.submit(delivery("d1", notifier="pagerduty")) == Submission.QUEUED
    assert harness.dispatcher.submit(delivery("d1", uid="uid-2")) == Submission.QUEUED
    await harness.dispatcher.wait_idle()
    assert harness.dispatcher.submit(delivery("d2")) == Submission.QUEUED
    await harness.dispatcher.wait_idle()
    assert len(harness.posts) == 4
    assert sorted(harness.dispatcher.notifiers_sent("uid-1")) == ["pagerduty", "slack"]
    harness.dispatcher.forget("uid-1")
    assert harness.dispatcher.notifiers_sent("uid-1") == []


async def test_a_delivery_under_way_is_not_queued_twice_and_newer_content_replaces_it() -> None:
    harness = Harness()
    gate = asyncio.Event()
    prepared: list[str] = []

    def waiting(name: str) -> Callable[[], object]:
        async def prepare() -> HttpRequest:
            prepared.append(name)
            await gate.wait()
            return await ready()

        return prepare

    assert harness.dispatcher.submit(delivery("d1", prepare=waiting("first"))) == Submission.QUEUED
    await asyncio.sleep(0)
    assert harness.dispatcher.submit(delivery("d1", prepare=waiting("again"))) == Submission.PENDING
    assert harness.dispatcher.submit(delivery("d2", prepare=waiting("newer"))) == Submission.QUEUED
    await asyncio.sleep(0)
    gate.set()
    await harness.dispatcher.wait_idle()
    assert prepared == ["first", "newer"]
    assert harness.states == [(NotificationState.SENT, 1)]  # the superseded one reports nothing
    assert harness.dispatcher.sent_digest("uid-1", "slack") == "d2"


async def test_content_superseded_before_it_was_posted_leaves_what_was_sent() -> None:
    harness = Harness()
    harness.dispatcher.submit(delivery("resolve"))
    await harness.dispatcher.wait_idle()
    gate = asyncio.Event()

    async def held() -> HttpRequest:
        await gate.wait()
        return await ready()

    # A trigger still preparing when the resolve comes back: it never reached the receiver, so the receiver's
    # last message is still the resolve, and nothing needs sending.
    assert harness.dispatcher.submit(delivery("trigger", prepare=held)) == Submission.QUEUED
    await asyncio.sleep(0)
    assert harness.dispatcher.submit(delivery("resolve")) == Submission.UNCHANGED
    gate.set()
    await harness.dispatcher.wait_idle()
    assert len(harness.posts) == 1
    assert harness.dispatcher.sent_digest("uid-1", "slack") == "resolve"


async def test_an_attempt_in_flight_ends_before_the_newer_content_is_posted() -> None:
    order: list[str] = []
    release, started = asyncio.Event(), asyncio.Event()

    class Slow(Dispatcher):
        async def _post(self, request: HttpRequest) -> dispatch._Attempt:
            order.append(f"start {request.body['n']}")
            if request.body["n"] == "trigger":
                started.set()
                await release.wait()
            order.append(f"end {request.body['n']}")
            return OK

    results: list[DeliveryResult] = []

    async def record(result: DeliveryResult) -> None:
        results.append(result)

    dispatcher = Slow(DeliverySettings(), record)

    def body(name: str) -> Callable[[], object]:
        async def prepare() -> HttpRequest:
            return HttpRequest("https://x", {"n": name})

        return prepare

    dispatcher.submit(delivery("trigger", prepare=body("trigger")))
    await started.wait()
    assert dispatcher.submit(delivery("resolve", prepare=body("resolve"))) == Submission.QUEUED
    await asyncio.sleep(0.01)
    assert order == ["start trigger"]  # the resolve waits for the trigger in flight
    release.set()
    await dispatcher.wait_idle()
    await dispatcher.close()
    assert order == ["start trigger", "end trigger", "start resolve", "end resolve"]
    assert [result.state for result in results] == [NotificationState.SENT, NotificationState.SENT]
    assert dispatcher.sent_digest("uid-1", "slack") == "resolve"


async def test_submit_returns_at_once_even_when_the_delivery_hangs() -> None:
    harness = Harness()

    async def hang() -> HttpRequest:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    started = time.perf_counter()
    for index in range(200):
        harness.dispatcher.submit(delivery(uid=f"uid-{index}", prepare=hang))
    assert time.perf_counter() - started < 0.5
    await harness.dispatcher.close()
    assert harness.results == []


async def test_a_hanging_notifier_holds_only_its_own_slots() -> None:
    in_flight: dict[str, int] = {"hanging": 0, "slack": 0}
    most: dict[str, int] = {"hanging": 0, "slack": 0}
    release = asyncio.Event()

    class Hanging(Dispatcher):
        async def _post(self, request: HttpRequest) -> dispatch._Attempt:
            notifier = request.url
            in_flight[notifier] += 1
            most[notifier] = max(most[notifier], in_flight[notifier])
            try:
                if notifier == "hanging":
                    await release.wait()
                return OK
            finally:
                in_flight[notifier] -= 1

    results: list[DeliveryResult] = []
    slack_done = asyncio.Event()

    async def record(result: DeliveryResult) -> None:
        results.append(result)
        if sum(1 for result in results if result.delivery.notifier == "slack") == 6:
            slack_done.set()

    def to(notifier: str) -> Callable[[], object]:
        async def prepare() -> HttpRequest:
            return HttpRequest(notifier, {})

        return prepare

    dispatcher = Hanging(DeliverySettings(max_concurrency=2), record)
    for index in range(6):
        dispatcher.submit(delivery(uid=f"uid-{index}", notifier="hanging", prepare=to("hanging")))
    for index in range(6):
        dispatcher.submit(delivery(uid=f"uid-{index}", notifier="slack", prepare=to("slack")))
    # Every slack notice is sent while the hanging receiver still holds both of its own slots.
    async with asyncio.timeout(2):
        await slack_done.wait()
    assert in_flight["hanging"] == 2
    assert all(result.state == NotificationState.SENT for result in results)
    release.set()
    await dispatcher.wait_idle()
    await dispatcher.close()
    assert most["hanging"] == 2
    assert len(results) == 12


async def test_beyond_max_pending_a_delivery_is_dropped_and_reported() -> None:
    harness = Harness(maxPending=1)
    gate = asyncio.Event()

    async def held() -> HttpRequest:
        await gate.wait()
        return await ready()

    assert harness.dispatcher.submit(delivery(uid="a", prepare=held)) == Submission.QUEUED
    assert harness.dispatcher.submit(delivery(uid="b")) == Submission.DROPPED
    gate.set()
    await harness.dispatcher.wait_idle()
    dropped = next(result for result in harness.results if result.delivery.uid == "b")
    assert (dropped.state, dropped.attempts) == (NotificationState.FAILED, 0)
    assert "already queued or retrying" in dropped.message


async def test_a_failure_to_prepare_is_reported_retryable_or_not() -> None:
    harness = Harness(maxAttempts=2)

    async def forbidden() -> HttpRequest:
        raise DeliveryError("Secret ns/s key k: forbidden")

    async def flaky() -> HttpRequest:
        raise DeliveryError("Secret ns/s key k: could not be read (HTTP 500)", retryable=True)

    harness.dispatcher.submit(delivery(notifier="a", prepare=forbidden))
    harness.dispatcher.submit(delivery(notifier="b", prepare=flaky))
    await harness.dispatcher.wait_idle()
    by_notifier = {result.delivery.notifier: result for result in harness.results if result.final}
    assert (by_notifier["a"].attempts, by_notifier["a"].message) == (
        1,
        "Secret ns/s key k: forbidden (after 1 attempt)",
    )
    assert by_notifier["b"].attempts == 2
    assert harness.posts == []


async def test_a_broken_result_callback_does_not_break_delivery() -> None:
    calls: list[NotificationState] = []

    async def broken(result: DeliveryResult) -> None:
        calls.append(result.state)
        raise RuntimeError("the API server is down")

    class Scripted(Dispatcher):
        async def _post(self, request: HttpRequest) -> dispatch._Attempt:
            return BUSY if not calls else OK

    async def no_sleep(_: float) -> None:
        return None

    dispatcher = Scripted(DeliverySettings(), broken, Timing(sleep=no_sleep))
    dispatcher.submit(delivery())
    await dispatcher.wait_idle()
    assert calls == [NotificationState.RETRYING, NotificationState.SENT]


def test_messages_never_carry_secrets_or_control_characters() -> None:
    cleaned = dispatch._clean("Cannot connect to https://h/T/B/secret-token\r\n\tplease", ("secret-token", "ab"))
    assert cleaned == "Cannot connect to https://h/T/B/[redacted] please"


async def test_what_was_sent_is_remembered_up_to_a_cap_and_what_is_let_go_is_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dispatch, "MAX_REMEMBERED", 3)
    harness = Harness()
    for index in range(5):
        harness.dispatcher.submit(delivery("d1", uid=f"uid-{index}"))
        await harness.dispatcher.wait_idle()
    assert harness.dispatcher.forgotten == 2
    assert harness.dispatcher.notifiers_sent("uid-0") == []
    assert harness.dispatcher.notifiers_sent("uid-4") == ["slack"]
    # Let go, so the same content for the oldest one is sent again: the cost of the cap, counted above.
    assert harness.dispatcher.submit(delivery("d1", uid="uid-0")) == Submission.QUEUED
