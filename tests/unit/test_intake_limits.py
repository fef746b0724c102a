"""The intake's creation cap: the sliding window on its own (a hand-driven clock), then through the HTTP app with the
writer double of test_intake_server.py, and every answer counted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from kubernetes.client.exceptions import ApiException
from test_intake_server import FakeWriter, post, webhook_document

from inquest.intake import alertmanager as am
from inquest.intake import server
from inquest.intake.limits import WINDOW_SECONDS, CreationLimiter, CreationsThrottled, IntakeLimits


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_window_holds_at_most_the_cap_and_says_when_a_slot_frees() -> None:
    clock = Clock()
    limiter = CreationLimiter(3, clock)
    for step in range(3):
        clock.now += 10 * step
        limiter.reserve()  # at 1000, 1010, 1030
    clock.now = 1035.5
    with pytest.raises(CreationsThrottled) as refused:
        limiter.reserve()
    assert refused.value.retry_after == 25  # the creation at 1000 leaves the window at 1060
    clock.now = 1000 + WINDOW_SECONDS
    limiter.reserve()
    assert limiter.used == 3


def test_a_burst_never_exceeds_the_cap_within_any_minute() -> None:
    clock = Clock()
    limiter = CreationLimiter(5, clock)
    granted: list[float] = []
    waits: list[int] = []
    for tick in range(600):  # one try every 0.5 s for five minutes
        clock.now = 1000 + tick * 0.5
        try:
            granted.append(limiter.reserve())
        except CreationsThrottled as refused:
            waits.append(refused.retry_after)
    assert 1 <= min(waits) <= max(waits) <= WINDOW_SECONDS
    for start in granted:
        assert sum(1 for moment in granted if start <= moment < start + WINDOW_SECONDS) <= 5
    assert len(granted) == 25  # five per minute, for five minutes


def test_a_slot_given_back_is_free_again() -> None:
    clock = Clock()
    limiter = CreationLimiter(1, clock)
    slot = limiter.reserve()
    limiter.give_back(slot)
    assert limiter.used == 0
    limiter.reserve()
    with pytest.raises(CreationsThrottled):
        limiter.reserve()


def test_zero_is_no_cap() -> None:
    limiter = CreationLimiter(0, Clock())
    for _ in range(1000):
        limiter.reserve()
    assert limiter.used == 0


def test_a_negative_cap_is_refused() -> None:
    with pytest.raises(ValueError, match="0 \\(no cap\\) or more"):
        IntakeLimits(max_creations_per_minute=-1)


# --- through the app -------------------------------------------------------------------------------------------


class Capped:
    def __init__(self, writer: FakeWriter, client: TestClient[Any, Any], answers: list[tuple[int, str]]) -> None:
        self.writer, self.client, self.answers = writer, client, answers


@pytest.fixture
async def capped() -> AsyncIterator[Capped]:
    writer = FakeWriter()
    answers: list[tuple[int, str]] = []

    def count(status: int, result: str) -> None:
        answers.append((status, result))

    app = server.create_app(am.IntakeSettings(), writer, "tok", limits=IntakeLimits(2), on_answer=count)
    client = TestClient(TestServer(app))
    await client.start_server()
    yield Capped(writer, client, answers)
    await client.close()


AUTH = {"Authorization": "Bearer tok"}


def group(number: int) -> dict[str, Any]:
    return webhook_document(group_key=f"{{}}:{{alertname=X, instance=node-{number}}}")


async def test_past_the_cap_a_new_group_is_503_with_retry_after_and_nothing_is_created(capped: Capped) -> None:
    statuses = [(await post(capped.client, group(number), AUTH))[0] for number in range(2)]
    assert statuses == [201, 201]
    response = await capped.client.post("/alertmanager", json=group(2), headers=AUTH)
    reply = await response.json()
    assert response.status == 503
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert "2 Investigations were created in the last minute" in reply["error"]
    assert len(capped.writer.objects) == 2
    assert [call[0] for call in capped.writer.writes()] == ["create", "create"]


async def test_groups_that_have_their_investigation_are_never_throttled(capped: Capped) -> None:
    for number in range(2):
        await post(capped.client, group(number), AUTH)
    status, reply = await post(capped.client, group(0), AUTH)  # a repeat
    assert (status, reply["status"]) == (200, "unchanged")
    changed = group(1)
    changed["alerts"].append({**changed["alerts"][0], "fingerprint": "ffee"})
    status, reply = await post(capped.client, changed, AUTH)  # a new alert in an existing group
    assert (status, reply["status"]) == (200, "updated")


async def test_a_create_that_did_not_happen_gives_its_slot_back(capped: Capped) -> None:
    capped.writer.fail_with = ApiException(status=500, reason="etcd timeout")
    status, _ = await post(capped.client, group(0), AUTH)
    assert status == 503
    capped.writer.fail_with = None
    statuses = [(await post(capped.client, group(number), AUTH))[0] for number in (1, 2)]
    assert statuses == [201, 201]  # the failed attempt took no slot


async def test_every_answer_is_counted_with_what_it_was(capped: Capped) -> None:
    await post(capped.client, group(0), AUTH)
    await post(capped.client, group(0), AUTH)
    await post(capped.client, group(1), {"Authorization": "Bearer wrong"})
    await post(capped.client, b"{", AUTH)
    await post(capped.client, group(1), AUTH)
    await post(capped.client, group(2), AUTH)
    capped.writer.fail_with = ConnectionRefusedError("connection refused")
    response = await capped.client.post("/alertmanager", json=group(3), headers=AUTH)
    assert (response.status, response.headers["Retry-After"]) == (503, str(server.RETRY_AFTER_SECONDS))
    assert capped.answers == [
        (201, "created"),
        (200, "unchanged"),
        (401, "rejected"),
        (400, "rejected"),
        (201, "created"),
        (503, "throttled"),
        (503, "failed"),
    ]


async def test_a_broken_counter_does_not_break_the_answer() -> None:
    def broken(status: int, result: str) -> None:
        raise RuntimeError("metrics are down")

    app = server.create_app(am.IntakeSettings(), FakeWriter(), "tok", on_answer=broken)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        status, reply = await post(client, group(0), AUTH)
    finally:
        await client.close()
    assert (status, reply["status"]) == (201, "created")


def test_the_operator_metrics_count_intake_answers_by_status_and_result() -> None:
    from inquest.observability import Observability

    observability = Observability()
    for status, result in [(201, "created"), (503, "throttled"), (503, "throttled"), (401, "rejected")]:
        observability.intake_answered(status, result)
    exposition = observability.exposition().decode()
    assert 'inquest_intake_requests_total{code="503",result="throttled"} 2.0' in exposition
    assert 'inquest_intake_requests_total{code="201",result="created"} 1.0' in exposition
    assert 'inquest_intake_requests_total{code="401",result="rejected"} 1.0' in exposition


async def test_the_intake_reads_and_writes_kubernetes_a_bounded_number_at_once_and_refuses_past_its_queue() -> None:
    """A flood must not queue in front of the service on the writer's shared threads: with two turns and no
    room to wait, a third notification is answered 503 at once rather than queued."""
    release, both_reading = asyncio.Event(), asyncio.Event()
    reading = 0
    most = 0

    class Slow(FakeWriter):
        async def get_investigation(self, namespace: str, name: str) -> dict[str, Any] | None:
            nonlocal reading, most
            reading += 1
            most = max(most, reading)
            if reading == 2:
                both_reading.set()
            try:
                await release.wait()
                return await super().get_investigation(namespace, name)
            finally:
                reading -= 1

    answers: list[tuple[int, str]] = []
    app = server.create_app(
        am.IntakeSettings(),
        Slow(),
        "tok",
        limits=IntakeLimits(max_in_flight=2, max_waiting=0),
        on_answer=lambda status, result: answers.append((status, result)),
    )
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        held = [asyncio.create_task(post(client, group(number), AUTH)) for number in range(2)]
        async with asyncio.timeout(5):
            await both_reading.wait()
            response = await client.post("/alertmanager", json=group(2), headers=AUTH)  # answered, not queued
        assert response.status == 503
        assert response.headers["Retry-After"] == "1"
        assert "busy" in (await response.json())["error"]
        release.set()
        statuses = sorted(status for status, _ in await asyncio.gather(*held))
    finally:
        await client.close()
    assert statuses == [201, 201]
    assert most == 2
    assert sorted(answers) == [(201, "created"), (201, "created"), (503, "busy")]


def test_the_concurrency_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="max_in_flight"):
        IntakeLimits(max_in_flight=0)
