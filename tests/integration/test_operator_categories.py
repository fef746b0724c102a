"""One lab scenario per Kubernetes-observable root-cause category (draft: exploration)."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import pytest

from inquest.lab import cluster
from inquest.lab.kubehelpers import SIM, Cluster, concluded_reason, deployment, service
from inquest.lab.waiting import wait_for

pytestmark = pytest.mark.lab


@pytest.fixture
def kube(running_operator: cluster.Lab, admin_api: Any, namespace: str) -> Cluster:
    return Cluster(admin_api, namespace)


def _show(found: dict[str, Any]) -> str:
    status = found["status"]
    brief = {
        "reason": concluded_reason(found),
        "summary": status.get("summary"),
        "rootCause": status.get("rootCause"),
        "findings": [
            {
                "ref": f["ref"],
                "category": f["category"],
                "confidence": f["confidence"],
                "path": f.get("path"),
                "evidence": [e["detail"] for e in f.get("evidence", [])],
            }
            for f in status.get("findings", [])
        ],
        "unknowns": status.get("unknowns"),
    }
    return json.dumps(brief, indent=1)


def _annotate_pods(kube: Cluster, app: str, annotations: dict[str, str | None]) -> None:
    for pod in kube.pods(app):
        kube.core.patch_namespaced_pod(pod.metadata.name, kube.namespace, {"metadata": {"annotations": annotations}})


def _caller(name: str, callee: str, variable: str) -> dict[str, Any]:
    return deployment(name, env=[{"name": variable, "value": f"{callee}:8080"}])


def xtest_oom(kube: Cluster) -> None:
    kube.deploy(deployment("api"))
    kube.core.create_namespaced_service(kube.namespace, service("api"))
    kube.deploy(_caller("web", "api", "API_ADDR"))
    _annotate_pods(kube, "api", {f"{SIM}/container": "oomkilled", f"{SIM}/interval": "1s"})
    wait_for(
        lambda: any(
            (s.restart_count or 0) >= 2 for pod in kube.pods("api") for s in (pod.status.container_statuses or [])
        ),
        "OOM restarts",
    )
    found = kube.investigate("why-web", {"target": {"kind": "Deployment", "name": "web"}})
    print(_show(found))


def xtest_new_deployment_imagepull(kube: Cluster) -> None:
    kube.deploy(
        deployment("catalog", annotations={f"{SIM}/container": "imagepull", f"{SIM}/interval": "1s"}),
        wait_ready=False,
    )
    wait_for(
        lambda: any(
            s.state.waiting and s.state.waiting.reason == "ImagePullBackOff"
            for pod in kube.pods("catalog")
            for s in (pod.status.container_statuses or [])
        ),
        "backoff",
    )
    found = kube.investigate("why-catalog", {"target": {"kind": "Deployment", "name": "catalog"}})
    print(_show(found))


def xtest_scheduling(kube: Cluster) -> None:
    manifest = deployment("render", replicas=1)
    manifest["spec"]["template"]["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "100"}}
    kube.deploy(manifest, wait_ready=False)
    wait_for(
        lambda: any(e.reason == "FailedScheduling" for e in kube.core.list_namespaced_event(kube.namespace).items),
        "FailedScheduling",
    )
    found = kube.investigate("why-render", {"target": {"kind": "Deployment", "name": "render"}})
    print(_show(found))


def test_node(kube: Cluster, running_operator: cluster.Lab) -> None:
    node = f"node-cat-{secrets.token_hex(2)}"
    cluster.add_node(running_operator, node)
    try:
        kube.core.patch_node(node, {"metadata": {"labels": {"pool": node}}})
        wait_for(
            lambda: any(
                c.type == "Ready" and c.status == "True" for c in (kube.core.read_node(node).status.conditions or [])
            ),
            "node ready",
        )
        kube.deploy(deployment("edge", nodeSelector={"pool": node}))
        kube.deploy(deployment("other"))
        kube.core.patch_node(node, {"metadata": {"annotations": {f"{SIM}/node": "notready"}}})
        wait_for(
            lambda: any(
                c.type == "Ready" and c.status == "False"
                for c in (kube.core.read_node(node).status.conditions or [])
            ),
            "node not ready",
        )
        time.sleep(6)
        print(kube.ready_replicas("edge"), kube.core.read_node(node).spec.taints)
        found = kube.investigate("why-edge", {"target": {"kind": "Deployment", "name": "edge"}})
        print(_show(found))
    finally:
        kube.core.delete_node(node)


def test_config(kube: Cluster) -> None:
    kube.core.create_namespaced_config_map(kube.namespace, {"metadata": {"name": "pricing-config"}, "data": {"currency": "EUR"}})
    kube.core.create_namespaced_config_map(kube.namespace, {"metadata": {"name": "unused"}, "data": {"a": "1"}})
    manifest = deployment("pricing", volumes=[{"name": "config", "configMap": {"name": "pricing-config"}}])
    manifest["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = [{"name": "config", "mountPath": "/etc/pricing"}]
    kube.deploy(manifest)
    kube.core.create_namespaced_service(kube.namespace, service("pricing"))
    kube.deploy(_caller("checkout", "pricing", "PRICING_ADDR"))
    kube.core.patch_namespaced_config_map("unused", kube.namespace, {"data": {"a": "2"}})
    kube.core.patch_namespaced_config_map("pricing-config", kube.namespace, {"data": {"currency": "EURO"}})
    time.sleep(1)
    _annotate_pods(kube, "pricing", {f"{SIM}/container": "crashloop", f"{SIM}/interval": "1s"})
    wait_for(
        lambda: any(
            (s.restart_count or 0) >= 2 for pod in kube.pods("pricing") for s in (pod.status.container_statuses or [])
        ),
        "restarts",
    )
    found = kube.investigate("why-checkout", {"target": {"kind": "Deployment", "name": "checkout"}})
    print(_show(found))


def test_service(kube: Cluster) -> None:
    kube.deploy(deployment("inventory"))
    kube.core.create_namespaced_service(kube.namespace, service("inventory"))
    kube.deploy(_caller("orders", "inventory", "INVENTORY_ADDR"))
    kube.core.patch_namespaced_service("inventory", kube.namespace, {"spec": {"selector": {"app": "inventory-v2"}}})
    def empty():
        slices = kube.custom.list_namespaced_custom_object("discovery.k8s.io", "v1", kube.namespace, "endpointslices", label_selector="kubernetes.io/service-name=inventory")["items"]
        return slices and all(not s.get("endpoints") for s in slices)
    wait_for(empty, "no endpoints")
    found = kube.investigate("why-orders", {"target": {"kind": "Deployment", "name": "orders"}})
    print(_show(found))


def test_netpol(kube: Cluster, admin_api: Any) -> None:
    from kubernetes import client
    kube.deploy(deployment("ledger"))
    kube.core.create_namespaced_service(kube.namespace, service("ledger"))
    kube.deploy(_caller("billing", "ledger", "LEDGER_ADDR"))
    client.NetworkingV1Api(admin_api).create_namespaced_network_policy(kube.namespace, {"metadata": {"name": "deny-ledger"}, "spec": {"podSelector": {"matchLabels": {"app": "ledger"}}, "policyTypes": ["Ingress"]}})
    time.sleep(1)
    found = kube.investigate("why-billing", {"target": {"kind": "Deployment", "name": "billing"}})
    print(_show(found))


def test_quota(kube: Cluster) -> None:
    kube.deploy(deployment("reports"))
    kube.deploy(deployment("web", replicas=1))
    kube.core.create_namespaced_resource_quota(kube.namespace, {"metadata": {"name": "pod-quota"}, "spec": {"hard": {"pods": "3"}}})
    wait_for(lambda: (kube.core.read_namespaced_resource_quota("pod-quota", kube.namespace).status.used or {}).get("pods") == "3", "quota used")
    kube.apps.patch_namespaced_deployment("reports", kube.namespace, {"spec": {"replicas": 4}})
    wait_for(
        lambda: any(
            e.reason == "FailedCreate" for e in kube.core.list_namespaced_event(kube.namespace).items
        ),
        "FailedCreate",
    )
    found = kube.investigate("why-reports", {"target": {"kind": "Deployment", "name": "reports"}})
    print(_show(found))


def test_zero(kube: Cluster) -> None:
    kube.deploy(deployment("auth"))
    kube.core.create_namespaced_service(kube.namespace, service("auth"))
    kube.deploy(_caller("gateway", "auth", "AUTH_ADDR"))
    kube.apps.patch_namespaced_deployment("auth", kube.namespace, {"spec": {"replicas": 0}})
    def empty():
        slices = kube.custom.list_namespaced_custom_object("discovery.k8s.io", "v1", kube.namespace, "endpointslices", label_selector="kubernetes.io/service-name=auth")["items"]
        return slices and all(not s.get("endpoints") for s in slices)
    wait_for(empty, "no endpoints")
    found = kube.investigate("why-gateway", {"target": {"kind": "Deployment", "name": "gateway"}})
    print(_show(found))


def test_storage(kube: Cluster) -> None:
    kube.core.create_namespaced_persistent_volume_claim(kube.namespace, {"metadata": {"name": "db-data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "storageClassName": ""}})
    manifest = deployment("db", replicas=1, volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "db-data"}}])
    kube.deploy(manifest, wait_ready=False)
    wait_for(
        lambda: any(
            e.reason == "FailedScheduling" for e in kube.core.list_namespaced_event(kube.namespace).items
        ),
        "FailedScheduling",
    )
    found = kube.investigate("why-db", {"target": {"kind": "Deployment", "name": "db"}})
    print(_show(found))
