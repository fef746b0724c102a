"""An informer's loop: a broken watch resumes from the last version seen (no relist), a 410 Gone relists."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from inquest.clients import informer
from inquest.clients.informer import Delivery, Gone, ResourceInformer, Scope
from inquest.rbac import WatchedResource

PODS = Scope(WatchedResource("", "v1", "pods", "Pod"), None)


class Scripted(ResourceInformer):
    """Lists and watches by script; the loop under test is the real one. Stops when the script runs out."""

    def __init__(self, watches: list[str | Exception]) -> None:
        self.stop = threading.Event()
        self.restarts: list[str] = []
        super().__init__(None, PODS, self.delivered, self.stop, lambda _, reason: self.restarts.append(reason))
        self.watches = watches
        self.calls: list[str] = []

    def delivered(self, scope: Scope, batch: list[Delivery]) -> None:
        return None

    def _list(self) -> str:
        self.lists += 1
        self.calls.append(f"list -> {self.lists * 100}")
        return str(self.lists * 100)

    def _watch(self, version: str) -> str:
        self.calls.append(f"watch from {version}")
        if not self.watches:
            self.stop.set()
            return version
        outcome = self.watches.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(informer, "RETRY_DELAYS_SECONDS", (0.0,))


def test_a_broken_watch_resumes_from_the_last_version_without_a_relist() -> None:
    loop = Scripted(["150", ConnectionResetError("the API server went away"), ConnectionRefusedError(), "170"])
    loop.run()
    assert loop.calls == [
        "list -> 100",
        "watch from 100",
        "watch from 150",
        "watch from 150",
        "watch from 150",
        "watch from 170",
    ]
    assert loop.restarts == ["error", "error"]


def test_a_410_gone_relists_and_watches_from_the_new_list() -> None:
    loop = Scripted(["150", ConnectionResetError(), Gone(), "250"])
    loop.run()
    assert loop.calls == [
        "list -> 100",
        "watch from 100",
        "watch from 150",
        "watch from 150",
        "list -> 200",
        "watch from 200",
        "watch from 250",
    ]
    assert loop.restarts == ["error", "expired"]


def test_a_failed_list_is_listed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = Scripted([])
    attempts: list[Any] = []
    real_list = loop._list

    def failing_once() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionRefusedError()
        return real_list()

    monkeypatch.setattr(loop, "_list", failing_once)
    loop.run()
    assert loop.calls == ["list -> 100", "watch from 100"]
    assert len(attempts) == 2
    assert loop.restarts == ["error"]
