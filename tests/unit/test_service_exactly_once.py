"""The service answers each generation once: the Event first, under a name the generation fixes, then the status;
an answered generation seen again (after a restart) only resumes what the notifier left undone."""

from __future__ import annotations

import asyncio
from typing import Any

from inquest.api import models
from inquest.cache import ClusterCache
from inquest.clients.kube import InvolvedObject
from inquest.notify.payloads import InvestigationRef
from inquest.service import InvestigationService


class ApiServer:
    """Records writes in order; like the API server, refuses a second Event of the same fixed name."""

    def __init__(self, fail_status_patches: int = 0) -> None:
        self.writes: list[str] = []
        self.events: dict[str, str] = {}
        self.status: dict[str, Any] = {}
        self.fail_status_patches = fail_status_patches

    async def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        if self.fail_status_patches:
            self.fail_status_patches -= 1
            raise ConnectionError("the API server went away")
        self.writes.append("status")
        self.status = {key: value for key, value in {**self.status, **patch}.items() if value is not None}

    async def post_event(
        self, involved: InvolvedObject, reason: str, message: str, warning: bool = False, key: str | None = None
    ) -> None:
        assert key is not None, "an answer's Event must carry its generation's key"
        if key in self.events:
            raise RuntimeError("409 AlreadyExists: the Event was posted before")  # the writer swallows real 409s
        self.events[key] = reason
        self.writes.append(f"event {reason} {key}")


class Notifications:
    def __init__(self) -> None:
        self.concluded: list[int] = []
        self.resumed: list[int] = []

    def on_concluded(self, investigation: InvestigationRef, status: models.InvestigationStatus) -> None:
        self.concluded.append(investigation.generation)

    def resume(self, investigation: InvestigationRef, raw_status: dict[str, Any]) -> None:
        self.resumed.append(investigation.generation)


def investigation(generation: int = 1, status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": models.API_VERSION,
        "kind": models.KIND,
        "metadata": {"namespace": "shop", "name": "why", "uid": "uid-1", "generation": generation},
        "spec": {"question": "why is checkout failing?"},
        **({"status": status} if status else {}),
    }


def service(api: ApiServer, notifications: Notifications) -> InvestigationService:
    cache = ClusterCache()
    cache.go_live()
    return InvestigationService(cache, api, notifier=notifications)  # type: ignore[arg-type]


async def test_the_event_is_posted_before_the_status_and_named_after_the_generation() -> None:
    api, notifications = ApiServer(), Notifications()
    await service(api, notifications).handle(investigation())
    assert api.writes == ["event NoFaultFound generation-1", "status"]
    assert api.status["observedGeneration"] == 1
    assert notifications.concluded == [1]


async def test_a_process_killed_between_the_event_and_the_status_answers_once_after_its_restart() -> None:
    api = ApiServer(fail_status_patches=2)  # the answer and the failure record: both lost with the process
    await service(api, Notifications()).handle(investigation())
    assert api.status == {}
    restarted = Notifications()
    await service(api, restarted).handle(investigation())
    assert list(api.events) == ["generation-1"]  # the second Event was refused as a duplicate
    assert api.status["observedGeneration"] == 1
    assert len(api.status["rounds"]) == 1
    assert restarted.concluded == [1]


async def test_an_answered_generation_is_not_investigated_again_but_its_deliveries_resume() -> None:
    api, first = ApiServer(), Notifications()
    await service(api, first).handle(investigation())
    answered = investigation(status=api.status)
    restarted = Notifications()
    await service(api, restarted).handle(answered)
    assert api.writes == ["event NoFaultFound generation-1", "status"]
    assert (restarted.concluded, restarted.resumed) == ([], [1])


async def test_a_new_generation_gets_its_own_round_and_no_event_when_the_verdict_holds() -> None:
    api, notifications = ApiServer(), Notifications()
    answering = service(api, notifications)
    await answering.handle(investigation())
    await answering.handle(investigation(generation=2, status=api.status))
    assert api.writes == ["event NoFaultFound generation-1", "status", "status"]
    assert [item["generation"] for item in api.status["rounds"]] == [1, 2]
    assert notifications.concluded == [1, 2]


async def test_a_continuous_loop_stops_when_its_investigation_vanished_unheard() -> None:
    from datetime import timedelta

    from inquest.service import ServiceSettings

    class Vanishing(ApiServer):
        def __init__(self) -> None:
            super().__init__()
            self.gets = 0
            self.exists = True

        async def get_investigation(self, namespace: str, name: str) -> dict[str, Any] | None:
            self.gets += 1
            return investigation() if self.exists else None

    api = Vanishing()
    cache = ClusterCache()
    cache.go_live()
    settings = ServiceSettings(continuous_interval=timedelta(0), existence_check_every=3)
    answering = InvestigationService(cache, api, settings=settings)  # type: ignore[arg-type]
    continuous = investigation()
    continuous["spec"]["mode"] = "Continuous"
    await answering.handle(continuous)
    (generation, task) = answering._watchers[("shop", "why")]
    for _ in range(500):
        if api.gets >= 2:
            break
        await asyncio.sleep(0.01)
    assert api.gets >= 2, "it confirms now and then that the Investigation exists"
    assert not task.done(), "and keeps re-checking while it does"
    api.exists = False  # deleted while the watch was down: no DELETED event reaches the service
    await asyncio.wait_for(task, timeout=5)
    assert ("shop", "why") not in answering._watchers
    assert generation == 1
