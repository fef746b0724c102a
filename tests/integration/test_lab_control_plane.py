"""The lab is a real cluster: CRDs, RBAC, controllers, scheduler, kwok and the audit log all work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from inquest.lab import cluster
from inquest.lab.waiting import wait_for

pytestmark = pytest.mark.lab

WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.lab.inquest.dev"},
    "spec": {
        "group": "lab.inquest.dev",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
                            "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
                        },
                    }
                },
            }
        ],
    },
}


def test_crd_object_and_status_subresource(admin_api: Any, namespace: str) -> None:
    extensions = client.ApiextensionsV1Api(admin_api)
    if not any(
        crd.metadata.name == WIDGET_CRD["metadata"]["name"]
        for crd in extensions.list_custom_resource_definition().items
    ):
        extensions.create_custom_resource_definition(WIDGET_CRD)

    def established() -> bool:
        crd = extensions.read_custom_resource_definition(WIDGET_CRD["metadata"]["name"])
        return any(c.type == "Established" and c.status == "True" for c in (crd.status.conditions or []))

    wait_for(established, "CRD Established")
    objects = client.CustomObjectsApi(admin_api)
    body = {"apiVersion": "lab.inquest.dev/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 3}}
    wait_for(lambda: _create_ok(objects, namespace, body), "the Widget to be accepted")
    objects.patch_namespaced_custom_object_status(
        "lab.inquest.dev", "v1", namespace, "widgets", "w1", {"status": {"phase": "Done"}}
    )
    stored = objects.get_namespaced_custom_object("lab.inquest.dev", "v1", namespace, "widgets", "w1")
    assert stored["status"] == {"phase": "Done"}
    assert stored["spec"] == {"size": 3}
    # The main resource ignores status; only the subresource writes it.
    objects.patch_namespaced_custom_object(
        "lab.inquest.dev", "v1", namespace, "widgets", "w1", {"status": {"phase": "Ignored"}}
    )
    assert objects.get_namespaced_custom_object("lab.inquest.dev", "v1", namespace, "widgets", "w1")["status"] == {
        "phase": "Done"
    }


def _create_ok(objects: Any, namespace: str, body: dict[str, Any]) -> bool:
    try:
        objects.create_namespaced_custom_object("lab.inquest.dev", "v1", namespace, "widgets", body)
    except ApiException as error:
        if error.status == 404:  # discovery of a just-established CRD can lag a moment
            return False
        raise
    return True


def test_restricted_identity_is_forbidden_and_audited(lab: cluster.Lab, namespace: str) -> None:
    nobody_api = config.new_client_from_config(config_file=str(lab.kubeconfig("nobody")))
    try:
        with pytest.raises(ApiException) as denied:
            client.CoreV1Api(nobody_api).list_namespaced_pod(namespace)
    finally:
        nobody_api.close()
    assert denied.value.status == 403
    assert cluster.NOBODY_USER in json.loads(denied.value.body)["message"]

    def audited() -> bool:
        for line in lab.audit_log.read_text().splitlines():
            event = json.loads(line)
            if (
                event["user"]["username"] == cluster.NOBODY_USER
                and event["verb"] == "list"
                and event.get("objectRef", {}).get("namespace") == namespace
            ):
                return event["responseStatus"]["code"] == 403
        return False

    wait_for(audited, "the forbidden request in the audit log", timeout=10)


def test_deployment_gets_replicaset_and_running_pods(admin_api: Any, namespace: str) -> None:
    apps = client.AppsV1Api(admin_api)
    core = client.CoreV1Api(admin_api)
    apps.create_namespaced_deployment(
        namespace,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "nginx", "image": "nginx"}]},
                },
            },
        },
    )
    replica_sets = wait_for(lambda: apps.list_namespaced_replica_set(namespace).items, "a ReplicaSet")
    assert replica_sets[0].metadata.owner_references[0].name == "web"

    def running_and_ready() -> list[Any]:
        pods = core.list_namespaced_pod(namespace, label_selector="app=web").items
        ready = [
            pod
            for pod in pods
            if pod.status.phase == "Running"
            and any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))
        ]
        return ready if len(ready) == 3 else []

    pods = wait_for(running_and_ready, "3 Running and Ready pods")
    assert {pod.spec.node_name for pod in pods} <= set(cluster.NODE_NAMES)
    assert all(pod.metadata.owner_references[0].kind == "ReplicaSet" for pod in pods)
    wait_for(
        lambda: (apps.read_namespaced_deployment("web", namespace).status.available_replicas or 0) == 3,
        what="the Deployment to report 3 available replicas",
    )


def test_env_prints_exports_for_both_identities(lab: cluster.Lab) -> None:
    def env(*extra: str) -> dict[str, str]:
        output = subprocess.run(
            [sys.executable, "-m", "inquest.lab", "env", "--name", lab.name, *extra],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        pairs = [line.removeprefix("export ").split("=", 1) for line in output.splitlines()]
        assert all(line.startswith("export ") for line in output.splitlines())
        return dict(pairs)  # type: ignore[arg-type]

    admin = env()
    assert admin["PROMETHEUS_URL"] == lab.prometheus_url
    assert admin["INQUEST_LAB_AUDIT_LOG"] == str(lab.audit_log)
    assert "INQUEST_LAB_USER" not in admin
    kubectl = subprocess.run(
        ["kubectl", "get", "nodes", "-o", "name"],
        capture_output=True,
        text=True,
        env={**os.environ, "KUBECONFIG": admin["KUBECONFIG"]},
        check=True,
    )
    assert {f"node/{name}" for name in cluster.NODE_NAMES} <= set(kubectl.stdout.split())

    operator = env("--as", "operator")
    assert operator["INQUEST_LAB_USER"] == cluster.OPERATOR_USER
    denied = subprocess.run(
        ["kubectl", "delete", "nodes", "--all", "--dry-run=server"],
        capture_output=True,
        text=True,
        env={**os.environ, "KUBECONFIG": operator["KUBECONFIG"]},
        check=False,
    )
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr


def test_prometheus_answers_across_backfill_and_live_samples(lab: cluster.Lab) -> None:
    import urllib.parse
    import urllib.request

    selector = f'inquest_lab_heartbeats_total{{lab="{lab.name}"}}'

    def query(expression: str) -> list[Any]:
        url = f"{lab.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
        with urllib.request.urlopen(url, timeout=5) as response:
            result: list[Any] = json.loads(response.read())["data"]["result"]
            return result

    # One live scrape must have landed after start-up, so the range holds both kinds of sample.
    wait_for(lambda: query(f"timestamp({selector}) > time() - 30"), "a live sample")
    window = f"{cluster.HISTORY_SECONDS + 600}s"
    series = query(f"count_over_time({selector}[{window}])")
    assert len(series) == 1, "history and live samples must be one series"
    assert int(series[0]["value"][1]) > cluster.HISTORY_SECONDS / 5 * 0.9
    assert query(f"resets({selector}[{window}])")[0]["value"][1] == "0"
    oldest = query(f"time() - min_over_time(timestamp({selector})[{window}:5s])")
    assert float(oldest[0]["value"][1]) > cluster.HISTORY_SECONDS * 0.9
    # The counter's rate is 1/s throughout; a window across the seam between backfill and scraping shows it.
    assert float(query(f"rate({selector}[10m])")[0]["value"][1]) == pytest.approx(1.0, rel=0.05)


def test_a_second_lab_runs_beside_and_stops_alone(lab: cluster.Lab) -> None:
    second_name = f"{lab.name}-second"
    second = cluster.up(second_name)
    try:
        assert set(second.ports.values()).isdisjoint(lab.ports.values())
        assert second.api("GET", "/version")["gitVersion"].startswith("v1.32.")
        assert second.data_dir != lab.data_dir
    finally:
        cluster.down(second_name)
    assert cluster.Lab.load(second_name) is None
    assert not any(second.alive(component) for component in second.processes)
    assert all(lab.alive(component) for component in lab.processes), "stopping one lab touched the other"
    assert lab.api("GET", "/version")["gitVersion"].startswith("v1.32.")
