"""The Alertmanager intake against the lab: a real KubeWriter with the operator's own kubeconfig and RBAC, and the
running operator answering what the intake creates. Only the HTTP client stands in for Alertmanager."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from kubernetes import client

from inquest.api import models
from inquest.clients.kube import KubeWriter
from inquest.intake import server
from inquest.intake.alertmanager import IntakeSettings
from inquest.lab import cluster
from inquest.lab.kubehelpers import SIM, Cluster, concluded_reason, deployment
from inquest.lab.operator import install_api
from inquest.lab.waiting import wait_for

pytestmark = pytest.mark.lab

TOKEN = "lab-intake-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def kube(running_operator: cluster.Lab, admin_api: Any, namespace: str) -> Cluster:
    install_api(running_operator)  # the CRD and the ClusterRole with `create` on investigations
    return Cluster(admin_api, namespace)


@pytest.fixture
async def writer(lab: cluster.Lab) -> AsyncIterator[KubeWriter]:
    made = KubeWriter.from_environment(str(lab.kubeconfig_operator))
    yield made
    made.close()


@pytest.fixture
async def intake_url(writer: KubeWriter) -> AsyncIterator[str]:
    runner = await server.start_intake(IntakeSettings(), writer, 0, token=TOKEN, host="127.0.0.1")
    yield f"http://127.0.0.1:{server.bound_port(runner)}/alertmanager"
    await runner.cleanup()


def crash_looping_payments(kube: Cluster) -> str:
    """A payments Deployment whose new version crashes on start; returns a crashing pod's name."""
    kube.deploy(deployment("payments"))
    kube.apps.patch_namespaced_deployment(
        "payments",
        kube.namespace,
        {
            "spec": {
                "template": {
                    "metadata": {"annotations": {f"{SIM}/container": "crashloop", f"{SIM}/interval": "1s"}},
                    "spec": {"containers": [{"name": "app", "image": "registry.example.com/payments:1.9"}]},
                }
            }
        },
    )
    pod = wait_for(
        lambda: next(
            (
                pod
                for pod in kube.pods("payments")
                if any((status.restart_count or 0) >= 2 for status in (pod.status.container_statuses or []))
            ),
            None,
        ),
        "a crash-looping payments pod",
    )
    return str(pod.metadata.name)


def alert(
    namespace: str, pod: str, fingerprint: str, status: str = "firing", ends: str | None = None
) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {
            "alertname": "KubePodCrashLooping",
            "namespace": namespace,
            "deployment": "payments",
            "pod": pod,
            "severity": "critical",
            "job": "kube-state-metrics",
        },
        "annotations": {"summary": f"Pod {namespace}/{pod} is crash looping."},
        "startsAt": "2026-11-25T14:39:09Z",
        "endsAt": ends or "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example/graph",
        "fingerprint": fingerprint,
    }


def notification(namespace: str, *alerts: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": f'{{}}/{{severity="critical"}}:{{alertname="KubePodCrashLooping", namespace="{namespace}"}}',
        "truncatedAlerts": 0,
        "status": "firing" if any(item["status"] == "firing" for item in alerts) else "resolved",
        "receiver": "inquest",
        "groupLabels": {"alertname": "KubePodCrashLooping", "namespace": namespace},
        "commonLabels": {"alertname": "KubePodCrashLooping", "namespace": namespace, "deployment": "payments"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example",
        "alerts": list(alerts),
    }


async def post(url: str, document: dict[str, Any], headers: dict[str, str] = AUTH) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.post(url, json=document, headers=headers) as response:
        return response.status, await response.json()


def investigations(kube: Cluster) -> list[dict[str, Any]]:
    listed = kube.custom.list_namespaced_custom_object(models.GROUP, models.VERSION, kube.namespace, models.PLURAL)
    return list(listed["items"])


async def test_an_alert_group_becomes_one_investigation_that_the_operator_answers(
    kube: Cluster, intake_url: str
) -> None:
    namespace = kube.namespace
    pod = await asyncio.to_thread(crash_looping_payments, kube)

    status, reply = await post(intake_url, notification(namespace, alert(namespace, pod, "aa01")))
    assert status == 201, reply
    assert reply["status"] == "created"
    investigation_namespace, name = reply["investigation"].split("/")
    assert investigation_namespace == namespace
    first = await asyncio.to_thread(kube.concluded, name, 1)
    assert first["spec"]["target"] == {"kind": "Deployment", "name": "payments"}
    assert first["spec"]["question"] == f"KubePodCrashLooping: Pod {namespace}/{pod} is crash looping."
    assert first["metadata"]["labels"] == {"inquest.dev/source": "alertmanager"}
    assert concluded_reason(first) == "RootCauseIdentified", first["status"]["summary"]
    assert first["status"]["rootCause"]["ref"]["name"] == "payments"

    # The same notification again (Alertmanager's repeat_interval): nothing written, no new round.
    status, reply = await post(intake_url, notification(namespace, alert(namespace, pod, "aa01")))
    assert (status, reply["status"]) == (200, "unchanged")
    (only,) = investigations(kube)
    assert only["metadata"]["generation"] == 1

    # A second alert joins the group: the same Investigation's context grows, a new round answers it.
    status, reply = await post(
        intake_url, notification(namespace, alert(namespace, pod, "aa01"), alert(namespace, "payments-x", "bb02"))
    )
    assert (status, reply["status"]) == (200, "updated")
    second = await asyncio.to_thread(kube.concluded, name, 2)
    assert [entry["generation"] for entry in second["status"]["rounds"]] == [1, 2]
    assert any(line.endswith("[alert bb02]") for line in second["spec"]["context"])

    # The first alert resolves: recorded as `resolved at`, still one Investigation.
    resolved = alert(namespace, pod, "aa01", status="resolved", ends="2026-11-25T15:02:03Z")
    status, reply = await post(intake_url, notification(namespace, resolved, alert(namespace, "payments-x", "bb02")))
    assert (status, reply["status"]) == (200, "updated")
    third = await asyncio.to_thread(kube.concluded, name, 3)
    context = third["spec"]["context"]
    assert any(line.startswith("resolved at 2026-11-25T15:02:03Z: KubePodCrashLooping") for line in context), context
    assert len(investigations(kube)) == 1


async def test_a_follow_up_added_by_hand_survives_the_next_notification(kube: Cluster, intake_url: str) -> None:
    namespace = kube.namespace
    status, reply = await post(intake_url, notification(namespace, alert(namespace, "web-1", "cc03")))
    assert status == 201, reply
    name = reply["investigation"].split("/")[1]
    current = await asyncio.to_thread(kube.concluded, name, 1)
    kube.custom.patch_namespaced_custom_object(
        models.GROUP,
        models.VERSION,
        namespace,
        models.PLURAL,
        name,
        {"spec": {"context": [*current["spec"]["context"], "we rotated the database password at 10:00"]}},
    )
    resolved = alert(namespace, "web-1", "cc03", status="resolved", ends="2026-11-25T15:00:00Z")
    status, reply = await post(intake_url, notification(namespace, resolved))
    assert (status, reply["status"]) == (200, "updated")
    found = kube.custom.get_namespaced_custom_object(models.GROUP, models.VERSION, namespace, models.PLURAL, name)
    assert found["spec"]["context"][-1] == "we rotated the database password at 10:00"
    assert found["spec"]["context"][1].startswith("resolved at 2026-11-25T15:00:00Z")


async def test_bad_requests_are_refused_before_touching_the_cluster(kube: Cluster, intake_url: str) -> None:
    namespace = kube.namespace
    status, _ = await post(intake_url, notification(namespace, alert(namespace, "web-1", "dd04")), headers={})
    assert status == 401
    status, reply = await post(intake_url, {**notification(namespace, alert(namespace, "web-1", "dd04")), "version": 3})
    assert (status, reply["field"]) == (422, "version")
    assert investigations(kube) == []


async def test_the_token_can_come_from_a_secret_the_operator_may_read_by_name(
    kube: Cluster, writer: KubeWriter
) -> None:
    namespace = kube.namespace
    kube.core.create_namespaced_secret(
        namespace,
        {
            "metadata": {"name": "intake-token"},
            "data": {"token": base64.b64encode(f"{TOKEN}\n".encode()).decode()},
        },
    )
    # The documented grant: `get` on that one Secret, bound to the operator's identity.
    rbac = {"apiGroup": "rbac.authorization.k8s.io"}
    authorization = client.RbacAuthorizationV1Api(kube.core.api_client)
    authorization.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "inquest-intake-token"},
            "rules": [
                {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["intake-token"], "verbs": ["get"]}
            ],
        },
    )
    authorization.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "inquest-intake-token"},
            "roleRef": {**rbac, "kind": "Role", "name": "inquest-intake-token"},
            "subjects": [{**rbac, "kind": "User", "name": cluster.OPERATOR_USER}],
        },
    )

    async def started() -> Any:
        return await server.start_configured_intake(
            writer, 0, token_secret=f"{namespace}/intake-token", host="127.0.0.1"
        )

    runner = await _eventually(started)
    try:
        url = f"http://127.0.0.1:{server.bound_port(runner)}/alertmanager"
        status, reply = await post(url, notification(namespace, alert(namespace, "web-1", "ee05")))
        assert status == 201, reply
        status, _ = await post(
            url, notification(namespace, alert(namespace, "web-1", "ee05")), {"Authorization": "Bearer x"}
        )
        assert status == 401
    finally:
        await runner.cleanup()


async def _eventually(start: Any, attempts: int = 20) -> Any:
    """RBAC bindings take a moment to reach the authorizer's cache."""
    from kubernetes.client.exceptions import ApiException

    for attempt in range(attempts):
        try:
            return await start()
        except ApiException as error:
            if error.status != 403 or attempt == attempts - 1:
                raise
            await asyncio.sleep(0.25)
    raise AssertionError("unreachable")
