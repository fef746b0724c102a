"""The webhook endpoint, in-process through aiohttp's test client, with a writer double that records its calls.

The Kubernetes side of the writer is exercised against the lab in tests/integration/test_intake_lab.py.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from kubernetes.client.exceptions import ApiException

from inquest.api import models
from inquest.intake import alertmanager as am
from inquest.intake import server

TOKEN = "s3cret-intake-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class FakeWriter:
    """Stores Investigations like the API server does (resourceVersion, generation, 409 on conflicts)."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls: list[tuple[str, str, str]] = []
        self.fail_with: Exception | None = None
        self.conflicts_to_inject = 0
        self.secrets: dict[tuple[str, str], dict[str, str]] = {}

    async def create_investigation(self, namespace: str, body: Any) -> dict[str, Any]:
        self.calls.append(("create", namespace, body["metadata"]["name"]))
        self._maybe_fail()
        key = (namespace, body["metadata"]["name"])
        if key in self.objects:
            raise ApiException(status=409, reason="AlreadyExists")
        stored = copy.deepcopy(dict(body))
        stored["metadata"] = {**stored["metadata"], "resourceVersion": "1", "generation": 1}
        self.objects[key] = stored
        return copy.deepcopy(stored)

    async def get_investigation(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls.append(("get", namespace, name))
        self._maybe_fail()
        found = self.objects.get((namespace, name))
        return copy.deepcopy(found) if found is not None else None

    async def patch_investigation_spec(
        self, namespace: str, name: str, patch: Any, resource_version: str | None = None
    ) -> dict[str, Any]:
        self.calls.append(("patch", namespace, name))
        self._maybe_fail()
        stored = self.objects[(namespace, name)]
        if self.conflicts_to_inject:
            self.conflicts_to_inject -= 1
            raise ApiException(status=409, reason="Conflict")
        if resource_version is not None and resource_version != stored["metadata"]["resourceVersion"]:
            raise ApiException(status=409, reason="Conflict")
        stored["spec"] = {**stored["spec"], **patch}
        metadata = stored["metadata"]
        metadata["resourceVersion"] = str(int(metadata["resourceVersion"]) + 1)
        metadata["generation"] += 1
        return copy.deepcopy(stored)

    async def read_secret_key(self, namespace: str, name: str, key: str) -> str:
        self.calls.append(("read-secret", namespace, f"{name}:{key}"))
        return self.secrets[(namespace, name)][key]

    def _maybe_fail(self) -> None:
        if self.fail_with is not None:
            raise self.fail_with

    def writes(self) -> list[tuple[str, str, str]]:
        return [call for call in self.calls if call[0] not in ("get", "read-secret")]


def alert_document(
    fingerprint: str = "00aa11bb22cc33dd", status: str = "firing", ends: str = "0001-01-01T00:00:00Z", **labels: str
) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "payments-1", **labels},
        "annotations": {"summary": "payments is crash looping"},
        "startsAt": "2026-11-25T14:39:09Z",
        "endsAt": ends,
        "generatorURL": "",
        "fingerprint": fingerprint,
    }


def webhook_document(*alerts: dict[str, Any], group_key: str = "{}:{alertname=X}") -> dict[str, Any]:
    items = list(alerts) or [alert_document()]
    return {
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": "firing" if any(item["status"] == "firing" for item in items) else "resolved",
        "receiver": "inquest",
        "groupLabels": {"alertname": "KubePodCrashLooping", "namespace": "shop"},
        "commonLabels": {"alertname": "KubePodCrashLooping", "namespace": "shop"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example",
        "alerts": items,
    }


@pytest.fixture
async def writer_and_client() -> Any:
    writer = FakeWriter()
    client = TestClient(TestServer(server.create_app(am.IntakeSettings(), writer, TOKEN)))
    await client.start_server()
    yield writer, client
    await client.close()


async def post(client: TestClient[Any, Any], document: Any, headers: dict[str, str] | None = None) -> Any:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    response = await client.post("/alertmanager", data=body, headers=AUTH if headers is None else headers)
    return response.status, await response.json()


# --- happy paths -----------------------------------------------------------------------------------------------


async def test_a_firing_group_creates_one_investigation_and_repeats_update_it(writer_and_client: Any) -> None:
    writer, client = writer_and_client
    status, reply = await post(client, webhook_document())
    assert status == 201
    assert reply["status"] == "created"
    namespace, name = reply["investigation"].split("/")
    assert namespace == "shop"
    created = writer.objects[(namespace, name)]
    models.Investigation.model_validate(created)
    assert created["spec"]["target"] == {"kind": "Pod", "name": "payments-1"}

    status, reply = await post(client, webhook_document())
    assert (status, reply["status"]) == (200, "unchanged")

    second = alert_document("99ff", pod="payments-2")
    status, reply = await post(client, webhook_document(alert_document(), second))
    assert (status, reply["status"]) == (200, "updated")
    assert [call[0] for call in writer.writes()] == ["create", "patch"]
    assert len(writer.objects) == 1
    assert any(line.endswith("[alert 99ff]") for line in writer.objects[(namespace, name)]["spec"]["context"])


async def test_a_resolved_alert_is_recorded_in_the_context(writer_and_client: Any) -> None:
    writer, client = writer_and_client
    await post(client, webhook_document())
    resolved = alert_document(status="resolved", ends="2026-11-25T15:02:03Z")
    status, reply = await post(client, webhook_document(resolved))
    assert (status, reply["status"]) == (200, "updated")
    (stored,) = writer.objects.values()
    assert stored["spec"]["context"][1].startswith("resolved at 2026-11-25T15:02:03Z: KubePodCrashLooping")


async def test_a_resolved_group_without_an_investigation_creates_nothing(writer_and_client: Any) -> None:
    writer, client = writer_and_client
    status, reply = await post(client, webhook_document(alert_document(status="resolved")))
    assert (status, reply["status"]) == (200, "ignored")
    assert writer.writes() == []


async def test_a_follow_ups_context_survives_a_repeat(writer_and_client: Any) -> None:
    writer, client = writer_and_client
    await post(client, webhook_document())
    (stored,) = writer.objects.values()
    stored["spec"]["context"].append("we rotated the database password at 10:00")
    stored["metadata"]["resourceVersion"] = "7"
    await post(client, webhook_document(alert_document(status="resolved", ends="2026-11-25T15:00:00Z")))
    assert stored["spec"]["context"][-1] == "we rotated the database password at 10:00"


async def test_a_conflicting_write_is_retried_on_a_fresh_read(writer_and_client: Any) -> None:
    writer, client = writer_and_client
    await post(client, webhook_document())
    writer.conflicts_to_inject = 1
    status, reply = await post(client, webhook_document(alert_document(status="resolved")))
    assert (status, reply["status"]) == (200, "updated")
    assert [call[0] for call in writer.writes()] == ["create", "patch", "patch"]


async def test_concurrent_notifications_of_one_group_create_one_investigation(writer_and_client: Any) -> None:
    writer, client = writer_and_client
    results = await asyncio.gather(*(post(client, webhook_document()) for _ in range(5)))
    assert sorted(reply["status"] for _, reply in results) == [
        "created",
        "unchanged",
        "unchanged",
        "unchanged",
        "unchanged",
    ]
    assert [call[0] for call in writer.writes()] == ["create"]


async def test_a_name_taken_by_another_investigation_is_not_touched(writer_and_client: Any) -> None:
    writer, client = writer_and_client
    _, reply = await post(client, webhook_document())
    (key,) = writer.objects
    writer.objects[key]["metadata"]["annotations"] = {}
    status, reply = await post(client, webhook_document(alert_document("77")))
    assert status == 409
    assert "not created for this alert group" in reply["error"]


async def test_healthz(writer_and_client: Any) -> None:
    _, client = writer_and_client
    response = await client.get("/healthz")
    assert response.status == 200


# --- refusals --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}, {"Authorization": TOKEN}],
)
async def test_a_missing_or_wrong_token_is_401(
    writer_and_client: Any, headers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    writer, client = writer_and_client
    with caplog.at_level(logging.WARNING, logger="inquest.intake.server"):
        status, reply = await post(client, webhook_document(), headers=headers)
    assert status == 401
    assert reply["error"] == "missing or wrong bearer token"
    assert writer.calls == []
    assert "rejected POST /alertmanager" in caplog.text
    assert TOKEN not in caplog.text


async def test_a_body_over_one_mebibyte_is_413(writer_and_client: Any) -> None:
    _, client = writer_and_client
    status, reply = await post(client, b"{" + b" " * server.MAX_BODY_BYTES + b"}")
    assert status == 413
    assert "larger than 1048576 bytes" in reply["error"]


async def test_a_chunked_body_over_the_limit_is_413(writer_and_client: Any) -> None:
    _, client = writer_and_client

    async def chunks() -> Any:
        for _ in range(20):
            yield b" " * 65536

    response = await client.post("/alertmanager", data=chunks(), headers=AUTH)
    assert response.status == 413


async def test_invalid_json_is_400(writer_and_client: Any) -> None:
    _, client = writer_and_client
    status, reply = await post(client, b'{"version": "4",')
    assert status == 400
    assert reply["error"].startswith("the body is not JSON")


async def test_deeply_nested_json_is_400_not_a_crash(writer_and_client: Any) -> None:
    _, client = writer_and_client
    status, reply = await post(client, b"[" * 200_000 + b"]" * 200_000)
    assert status == 400
    assert reply["error"] == "the body is not JSON: nested too deeply"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda document: document.update(version="3"), "version"),
        (lambda document: document.pop("groupKey"), "groupKey"),
        (lambda document: document.update(alerts=[]), "alerts"),
        (lambda document: document["alerts"][0].update(status="pending"), "alerts.0.status"),
        (lambda document: document["alerts"][0]["labels"].update(replicas=3), "alerts.0.labels.replicas"),
        (lambda document: document["alerts"][0].update(startsAt="yesterday"), "alerts.0.startsAt"),
        (lambda document: document["alerts"][0].update(fingerprint="not hex!"), "alerts.0.fingerprint"),
    ],
)
async def test_the_wrong_schema_is_422_naming_the_field(writer_and_client: Any, mutate: Any, field: str) -> None:
    writer, client = writer_and_client
    document = webhook_document()
    mutate(document)
    status, reply = await post(client, document)
    assert status == 422
    assert reply["field"] == field
    assert reply["error"].startswith(f"{field}: ")
    assert writer.calls == []


async def test_a_json_value_that_is_not_an_object_is_422(writer_and_client: Any) -> None:
    _, client = writer_and_client
    status, reply = await post(client, [1, 2, 3])
    assert status == 422
    assert reply["field"] == "body"


@pytest.mark.parametrize(
    ("error", "expected_status", "expected_text"),
    [
        (ApiException(status=403, reason="Forbidden"), 503, "answered 403"),
        (ApiException(status=404, reason="Not Found", body="404 page not found"), 503, "not installed"),
        (
            ApiException(
                status=404,
                body=json.dumps(
                    {"kind": "Status", "message": 'namespaces "shop" not found', "details": {"kind": "namespaces"}}
                ),
            ),
            422,
            "namespace shop does not exist",
        ),
        (ConnectionRefusedError("connection refused"), 503, "could not be reached"),
    ],
)
async def test_kubernetes_failures_are_answered_without_a_crash(
    writer_and_client: Any, error: Exception, expected_status: int, expected_text: str
) -> None:
    writer, client = writer_and_client
    original = writer.get_investigation

    async def missing(namespace: str, name: str) -> None:
        return None

    writer.get_investigation = missing  # the create is what fails
    writer.fail_with = error
    status, reply = await post(client, webhook_document())
    writer.get_investigation = original
    assert status == expected_status
    assert expected_text in reply["error"]


# --- start-up --------------------------------------------------------------------------------------------------


async def test_start_intake_serves_on_a_real_port_and_stops() -> None:
    writer = FakeWriter()
    runner = await server.start_intake(am.IntakeSettings(), writer, 0, token=TOKEN, host="127.0.0.1")
    try:
        port = server.bound_port(runner)
        assert port > 0
        import aiohttp

        async with (
            aiohttp.ClientSession() as session,
            session.post(f"http://127.0.0.1:{port}/alertmanager", json=webhook_document(), headers=AUTH) as response,
        ):
            assert response.status == 201
    finally:
        await runner.cleanup()


def test_an_empty_token_is_refused() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        server.create_app(am.IntakeSettings(), FakeWriter(), "")


def test_the_token_file_is_read_and_stripped(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(f"  {TOKEN}\n")
    assert server.read_token_file(path) == TOKEN
    path.write_text("\n")
    with pytest.raises(ValueError, match="empty"):
        server.read_token_file(path)


async def test_exactly_one_token_source_is_needed() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        await server.start_configured_intake(FakeWriter(), 0)
    with pytest.raises(ValueError, match="NAMESPACE/NAME"):
        await server.start_configured_intake(FakeWriter(), 0, token_secret="just-a-name")


async def test_the_token_can_come_from_a_secret() -> None:
    writer = FakeWriter()
    writer.secrets[("inquest", "intake")] = {"token": f"{TOKEN}\n"}
    runner = await server.start_configured_intake(writer, 0, token_secret="inquest/intake", host="127.0.0.1")
    try:
        import aiohttp

        url = f"http://127.0.0.1:{server.bound_port(runner)}/alertmanager"
        async with aiohttp.ClientSession() as session:
            async with session.post(url, json=webhook_document(), headers=AUTH) as response:
                assert response.status == 201
            async with session.post(url, json=webhook_document(), headers={"Authorization": "Bearer x"}) as response:
                assert response.status == 401
    finally:
        await runner.cleanup()
    assert writer.calls[0] == ("read-secret", "inquest", "intake:token")
    writer.secrets[("inquest", "empty")] = {"token": " "}
    with pytest.raises(ValueError, match="empty"):
        await server.start_configured_intake(writer, 0, token_secret="inquest/empty")


async def test_a_rotated_token_file_applies_without_a_restart(tmp_path: Path) -> None:
    import os

    path = tmp_path / "token"
    path.write_text("first-token\n")
    client = TestClient(TestServer(server.create_app(am.IntakeSettings(), FakeWriter(), server.TokenFile(path))))
    await client.start_server()
    try:

        def bearer(token: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {token}"}

        assert (await post(client, webhook_document(), bearer("first-token")))[0] == 201
        path.write_text("second-token-longer\n")
        os.utime(path, (1, 1))  # a distinct stamp, whatever the file system's time resolution
        assert (await post(client, webhook_document(), bearer("first-token")))[0] == 401
        assert (await post(client, webhook_document(), bearer("second-token-longer")))[0] == 200
        path.write_text("\n")  # a half-written rotation: the last good token stays
        os.utime(path, (2, 2))
        assert (await post(client, webhook_document(), bearer("second-token-longer")))[0] == 200
    finally:
        await client.close()
