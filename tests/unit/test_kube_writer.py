"""KubeWriter's writes outlast a restarting API server, and an Event posted under a key is posted once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import urllib3
from kubernetes import client

from inquest.clients.kube import InvolvedObject, KubeWriter, event_name, transient

INVOLVED = InvolvedObject("shop", "why-checkout", "uid-1")


class Scripted:
    """Stands in for the official client's API objects: each call takes the next outcome of the script."""

    def __init__(self, *outcomes: Exception | None) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[tuple[str, Any]] = []

    def _next(self, method: str, body: Any) -> dict[str, Any]:
        self.calls.append((method, body))
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if outcome is not None:
            raise outcome
        return {}

    def patch_namespaced_custom_object_status(self, *arguments: Any) -> dict[str, Any]:
        return self._next("patch_status", arguments[-1])

    def create_namespaced_event(self, namespace: str, event: Any) -> dict[str, Any]:
        return self._next("create_event", event)


def writer_with(api: Scripted, retry_seconds: float = 5.0) -> KubeWriter:
    writer = KubeWriter(client.ApiClient(), retry_seconds=retry_seconds)
    writer._custom = api
    writer._core = api
    return writer


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    real_sleep = asyncio.sleep

    async def instant(_: float) -> None:
        await real_sleep(0)

    monkeypatch.setattr("inquest.clients.kube.asyncio.sleep", instant)


def refused() -> Exception:
    return urllib3.exceptions.MaxRetryError(None, "/apis", reason=ConnectionRefusedError())  # type: ignore[arg-type]


async def test_a_status_patch_is_retried_until_the_api_server_is_back() -> None:
    api = Scripted(refused(), client.ApiException(status=503), client.ApiException(status=429), None)
    await writer_with(api).patch_status("shop", "why-checkout", {"summary": "x"})
    assert [method for method, _ in api.calls] == ["patch_status"] * 4


async def test_a_refusal_is_not_retried() -> None:
    api = Scripted(client.ApiException(status=422))
    with pytest.raises(client.ApiException):
        await writer_with(api).patch_status("shop", "why-checkout", {"summary": "x"})
    assert len(api.calls) == 1


async def test_retries_stop_at_the_deadline_with_the_last_failure() -> None:
    api = Scripted(*[client.ApiException(status=503)] * 1000)
    with pytest.raises(client.ApiException) as raised:
        await writer_with(api, retry_seconds=0.0).patch_status("shop", "why-checkout", {})
    assert raised.value.status == 503
    assert len(api.calls) == 1


async def test_an_event_with_a_key_has_a_fixed_name_and_a_duplicate_is_not_an_error() -> None:
    api = Scripted(None, client.ApiException(status=409))
    writer = writer_with(api)
    await writer.post_event(INVOLVED, "RootCauseIdentified", "first", key="generation-1")
    await writer.post_event(INVOLVED, "RootCauseIdentified", "again", key="generation-1")
    names = [event.metadata.name for _, event in api.calls]
    assert names[0] == names[1] == event_name(INVOLVED, "generation-1")
    assert all(event.metadata.generate_name is None for _, event in api.calls)


async def test_an_event_without_a_key_is_generated_and_a_conflict_is_raised() -> None:
    api = Scripted(client.ApiException(status=409))
    with pytest.raises(client.ApiException):
        await writer_with(api).post_event(INVOLVED, "FindingsChanged", "x")
    event = api.calls[0][1]
    assert (event.metadata.name, event.metadata.generate_name) == (None, "why-checkout.")


def test_event_names_differ_by_key_and_uid_and_fit_the_api_limit() -> None:
    names = {
        event_name(INVOLVED, "generation-1"),
        event_name(INVOLVED, "generation-2"),
        event_name(InvolvedObject("shop", "why-checkout", "uid-2"), "generation-1"),
    }
    assert len(names) == 3
    long = InvolvedObject("shop", "a" * 253, "uid-1")
    assert len(event_name(long, "generation-1")) == 253


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (client.ApiException(status=500), True),
        (client.ApiException(status=504), True),
        (client.ApiException(status=0), True),
        (client.ApiException(status=403), False),
        (client.ApiException(status=404), False),
        (client.ApiException(status=409), False),
        (ConnectionResetError(), True),
        (ValueError("bad"), False),
    ],
)
def test_what_counts_as_transient(error: Exception, expected: bool) -> None:
    assert transient(error) is expected


async def test_a_forbidden_answer_is_retried_briefly_as_a_restarted_api_server_warms_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api = Scripted(client.ApiException(status=403), client.ApiException(status=401), None)
    await writer_with(api).post_event(INVOLVED, "NoFaultFound", "x", key="generation-1")
    assert len(api.calls) == 3
    # ...but not for long: a real lack of RBAC fails within WARMING_UP_RETRY_SECONDS, not the whole deadline.
    clock = iter(range(0, 1000, 4))
    monkeypatch.setattr("inquest.clients.kube._monotonic", lambda: float(next(clock)))
    forbidden = Scripted(*[client.ApiException(status=403)] * 100)
    with pytest.raises(client.ApiException):
        await writer_with(forbidden, retry_seconds=60).post_event(INVOLVED, "NoFaultFound", "x")
    # Each failure reads a clock 4 s later: forbidden from 4 s, so 8 and 12 are inside the 10 s and 16 is not.
    assert len(forbidden.calls) == 4


async def test_the_warm_up_allowance_starts_at_the_first_forbidden_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    # An API server down for a while, then back but still filling its RBAC cache: the 403 comes late in the write.
    clock = iter(range(0, 1000, 4))
    monkeypatch.setattr("inquest.clients.kube._monotonic", lambda: float(next(clock)))
    api = Scripted(refused(), refused(), refused(), client.ApiException(status=403), None)
    await writer_with(api, retry_seconds=60).post_event(INVOLVED, "NoFaultFound", "x", key="generation-1")
    assert len(api.calls) == 5
