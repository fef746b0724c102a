"""Property-based fuzzing of POST /alertmanager: whatever arrives, the answer is a 4xx (or a 2xx for a valid
payload), never a 5xx or a crash, and whatever is written is a valid Investigation.

In-process through aiohttp's test client, on one event loop kept for the module (hypothesis runs each example
synchronously); the writer is the recording double of test_intake_server.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_intake_server import AUTH, TOKEN, FakeWriter, alert_document, webhook_document

from inquest.api import models
from inquest.intake import alertmanager as am
from inquest.intake import server
from inquest.intake.limits import IntakeLimits

FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)


class Harness:
    """One app and client on a private loop; each call runs one request to completion."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.writer = FakeWriter()
        # No creation cap: one app takes every example, and the cap has its own tests (test_intake_limits.py).
        app = server.create_app(am.IntakeSettings(), self.writer, TOKEN, limits=IntakeLimits(0))
        self.client: TestClient[Any, Any] = self.loop.run_until_complete(self._start(app))

    @staticmethod
    async def _start(app: Any) -> TestClient[Any, Any]:
        client = TestClient(TestServer(app))
        await client.start_server()
        return client

    def post(self, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        async def send() -> tuple[int, Any]:
            response = await self.client.post("/alertmanager", data=body, headers=AUTH if headers is None else headers)
            return response.status, await response.json()

        return self.loop.run_until_complete(send())

    def close(self) -> None:
        self.loop.run_until_complete(self.client.close())
        self.loop.close()


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    made = Harness()
    yield made
    made.close()


def check_writes(writer: FakeWriter) -> None:
    """Everything the intake stored is an Investigation the API server would take."""
    for stored in writer.objects.values():
        investigation = models.Investigation.model_validate(stored)
        assert re.fullmatch(models.DNS_LABEL_PATTERN, stored["metadata"]["name"])
        assert len(stored["metadata"]["name"]) <= 63
        assert len(investigation.spec.context) <= models.MAX_CONTEXT
        json.dumps(stored, ensure_ascii=False).encode("utf-8")  # no lone surrogates reach the API server


json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=15,
)


@FUZZ
@given(body=st.binary(max_size=2048))
def test_arbitrary_bytes_are_refused_with_a_4xx(harness: Harness, body: bytes) -> None:
    status, reply = harness.post(body)
    assert status in (400, 422), reply
    assert reply["status"] == "rejected"


@FUZZ
@given(text=st.text(max_size=400))
def test_malformed_or_foreign_json_text_is_refused_with_a_4xx(harness: Harness, text: str) -> None:
    status, _ = harness.post(text.encode("utf-8", "surrogatepass"))
    assert status in (400, 422)


@FUZZ
@given(value=json_values)
def test_any_json_value_is_refused_with_a_4xx(harness: Harness, value: Any) -> None:
    status, reply = harness.post(json.dumps(value).encode())
    assert status == 422
    assert reply["field"]


PATHS: list[tuple[str | int, ...]] = [
    ("version",),
    ("groupKey",),
    ("truncatedAlerts",),
    ("status",),
    ("receiver",),
    ("groupLabels",),
    ("groupLabels", "namespace"),
    ("commonLabels",),
    ("commonAnnotations", "summary"),
    ("alerts",),
    ("alerts", 0),
    ("alerts", 0, "status"),
    ("alerts", 0, "labels"),
    ("alerts", 0, "labels", "pod"),
    ("alerts", 0, "labels", "namespace"),
    ("alerts", 0, "annotations"),
    ("alerts", 0, "annotations", "summary"),
    ("alerts", 0, "startsAt"),
    ("alerts", 0, "endsAt"),
    ("alerts", 0, "fingerprint"),
]


@FUZZ
@given(path=st.sampled_from(PATHS), value=json_values | st.just(...), group=st.text(min_size=1, max_size=30))
def test_a_payload_with_one_field_changed_is_taken_or_refused_never_crashing(
    harness: Harness, path: tuple[str | int, ...], value: Any, group: str
) -> None:
    document = webhook_document(group_key=group)
    parent: Any = document
    for part in path[:-1]:
        parent = parent[part]
    if value is ...:
        if isinstance(parent, dict):
            parent.pop(path[-1], None)
    else:
        parent[path[-1]] = value
    status, reply = harness.post(json.dumps(document).encode())
    assert status in (200, 201, 400, 422), reply
    if status == 422:
        assert reply["field"]
    check_writes(harness.writer)


label_names = st.text(min_size=1, max_size=20)
unicode_text = st.text(max_size=300)  # includes lone surrogates, control characters, RTL marks, emoji


@FUZZ
@given(
    group=st.text(min_size=1, max_size=200),
    alertname=unicode_text,
    labels=st.dictionaries(label_names, unicode_text, max_size=6),
    annotations=st.dictionaries(st.sampled_from(["summary", "description", "message", "runbook"]), unicode_text),
    fingerprints=st.lists(st.text("0123456789abcdef", min_size=1, max_size=16), min_size=1, max_size=25, unique=True),
    namespace=unicode_text,
    resolved=st.booleans(),
)
def test_a_valid_payload_with_any_unicode_is_taken(
    harness: Harness,
    group: str,
    alertname: str,
    labels: dict[str, str],
    annotations: dict[str, str],
    fingerprints: list[str],
    namespace: str,
    resolved: bool,
) -> None:
    alerts = []
    for index, fingerprint in enumerate(fingerprints):
        item = alert_document(fingerprint, status="resolved" if resolved and index % 2 else "firing")
        item["labels"] = {**labels, "alertname": alertname, "namespace": namespace}
        item["annotations"] = annotations
        alerts.append(item)
    document = webhook_document(*alerts, group_key=group)
    document["groupLabels"] = {"alertname": alertname, "namespace": namespace}
    body = json.dumps(document).encode()
    first, reply = harness.post(body)
    assert first in (200, 201), reply
    again, reply = harness.post(body)
    assert (again, reply["status"]) == (200, "unchanged"), reply
    check_writes(harness.writer)


@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
@given(extra=st.integers(min_value=1, max_value=512 * 1024), filler=st.sampled_from([b" ", b"a", b"\xff", b"["]))
def test_any_body_over_the_limit_is_413(harness: Harness, extra: int, filler: bytes) -> None:
    status, _ = harness.post(filler * (server.MAX_BODY_BYTES + extra))
    assert status == 413


# What a client can put in a header: latin-1 without control characters (aiohttp refuses to send the others).
header_text = st.text(st.characters(codec="latin-1", exclude_categories=("Cc",)), max_size=80)


@FUZZ
@given(header=header_text.filter(lambda text: text.strip() != f"Bearer {TOKEN}"))
def test_any_other_authorization_is_401(harness: Harness, header: str) -> None:
    calls = len(harness.writer.calls)
    status, _ = harness.post(json.dumps(webhook_document()).encode(), headers={"Authorization": header})
    assert status == 401
    assert len(harness.writer.calls) == calls


def test_the_harness_sees_a_valid_payload_through(harness: Harness) -> None:
    status, _ = harness.post(json.dumps(webhook_document(alert_document("abc"), group_key="harness")).encode())
    assert status in (200, 201)
    assert copy.deepcopy(harness.writer.objects)
