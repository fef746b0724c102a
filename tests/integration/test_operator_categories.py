"""One lab scenario per Kubernetes-observable root-cause category, each made by real controllers, the real
scheduler and the kwok kubelet simulation, each with an unrelated distractor, each answered by the operator.

Confidence bounds follow the ranker's calibration: above UNGATED_CAP (65) only when a dated trigger (a change, a
node going NotReady), failure evidence, agreeing timing and a graph path agree; a mechanism without a trigger, or a
change whose symptom cannot be dated without metrics, stays at or below it; a change with no observed failure is
capped lower still. The operator queries the lab's Prometheus, which holds no request or container metrics for
these namespaces: metric-only categories are not covered here, and metrics never decide these answers.

How the engine reads a lab that is minutes old matters for the mechanism categories. Every Deployment, StatefulSet
and DaemonSet created in a test is a rollout inside the engine's 30-minute effect horizon, and the engine calls a
failure of the pods such a rollout started its BadRollout (a creation included), because it cannot tell a new
release that OOMs, fails its probes or cannot pull three seconds after it starts from an old one hit by its
environment. `test_a_new_deployment_that_never_pulls_is_its_rollout` pins that reading. So each mechanism case is
built where no rollout stands behind the failure:
- ImagePull: a node joins and the DaemonSet pod placed there cannot pull, while the same template runs on every
  other node (new pods of a proven template, no template change);
- Scheduling: a running Deployment is scaled beyond the room the nodes have;
- OOMKilled: a run of a CronJob (a batch Job: no rollout semantics);
- ProbeFailure: a Pod managed directly (no controller, so no rollout) behind a Service others call.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from inquest.engine.investigate import IDENTIFIED_THRESHOLD
from inquest.engine.ranker import NO_SYMPTOM_CAP, UNGATED_CAP
from inquest.lab import cluster, kwok
from inquest.lab.kubehelpers import SIM, Cluster, concluded_reason, deployment, explain, service
from inquest.lab.waiting import wait_for

pytestmark = pytest.mark.lab

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


@pytest.fixture
def kube(running_operator: cluster.Lab, admin_api: Any, namespace: str) -> Cluster:
    return Cluster(admin_api, namespace)


@pytest.fixture
def new_node(running_operator: cluster.Lab, admin_api: Any) -> Iterator[str]:
    """A node of this test's own (a name no other test uses), deleted at the end."""
    name = f"node-cat-{secrets.token_hex(3)}"
    yield name
    try:
        client.CoreV1Api(admin_api).delete_node(name)
    except client.ApiException as error:
        if error.status != 404:
            raise


# --- helpers ---------------------------------------------------------------------------------------------------


def ref(kind: str, name: str, namespace: str | None = None) -> dict[str, str]:
    return {"kind": kind, "name": name} if namespace is None else {"kind": kind, "namespace": namespace, "name": name}


def path_name(kind: str, name: str, namespace: str | None = None) -> str:
    return f"{kind}/{namespace}/{name}" if namespace else f"{kind}/{name}"


def top_finding(found: dict[str, Any]) -> dict[str, Any]:
    findings = found["status"].get("findings") or []
    assert findings, explain(found)
    first: dict[str, Any] = findings[0]
    return first


def evidence_about(finding: dict[str, Any], name: str) -> list[str]:
    """Details of the evidence items about an object whose name starts with `name` (or that name it)."""
    return [
        item["detail"]
        for item in finding.get("evidence", [])
        if (item.get("ref") or {}).get("name", "").startswith(name) or name in item["detail"]
    ]


def assert_not_blamed(found: dict[str, Any], *names: str) -> None:
    """Distractors may be listed as weak leads, never as a credible cause."""
    for finding in found["status"].get("findings") or []:
        if finding["ref"]["name"] in names:
            assert finding["confidence"] < IDENTIFIED_THRESHOLD, explain(found)


def assert_verdict_follows_confidence(found: dict[str, Any]) -> None:
    top = top_finding(found)
    expected = "RootCauseIdentified" if top["confidence"] >= IDENTIFIED_THRESHOLD else "Inconclusive"
    assert concluded_reason(found) == expected, explain(found)
    if expected == "RootCauseIdentified":
        cause = found["status"]["rootCause"]
        assert (cause["ref"], cause["category"]) == (top["ref"], top["category"]), explain(found)


def ask(kube: Cluster, name: str, kind: str, target: str) -> dict[str, Any]:
    """Creates the Investigation and returns it concluded (its answer is printed, shown when a test fails).

    The test observes the cluster through the API; the operator answers from its watch cache, which trails the
    API by a little: half a second lets it catch up with what the test just saw."""
    time.sleep(0.5)
    found = kube.investigate(name, {"target": {"kind": kind, "name": target}})
    print(explain(found))
    return found


def annotate_pods(kube: Cluster, app: str, annotations: dict[str, str | None]) -> None:
    for pod in kube.pods(app):
        kube.core.patch_namespaced_pod(pod.metadata.name, kube.namespace, {"metadata": {"annotations": annotations}})


def restart(kube: Cluster, name: str) -> None:
    """What `kubectl rollout restart` does: an unrelated, harmless rollout."""
    patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: "2026-01-01T00:00:00Z"}}}}}
    kube.apps.patch_namespaced_deployment(name, kube.namespace, patch)


def caller(name: str, callee: str, variable: str) -> dict[str, Any]:
    return deployment(name, env=[{"name": variable, "value": f"{callee}:8080"}])


def restarts_at_least(kube: Cluster, app: str, count: int) -> bool:
    return any(
        (status.restart_count or 0) >= count
        for pod in kube.pods(app)
        for status in ((pod.status.container_statuses if pod.status else None) or [])
    )


def has_event(kube: Cluster, reason: str, name_prefix: str = "") -> bool:
    return any(
        event.reason == reason and event.involved_object.name.startswith(name_prefix)
        for event in kube.core.list_namespaced_event(kube.namespace).items
    )


def no_ready_endpoints(kube: Cluster, service_name: str) -> bool:
    discovery = client.DiscoveryV1Api(kube.core.api_client)
    selector = f"kubernetes.io/service-name={service_name}"
    slices = discovery.list_namespaced_endpoint_slice(kube.namespace, label_selector=selector).items
    return bool(slices) and not any(
        endpoint.conditions and endpoint.conditions.ready for item in slices for endpoint in (item.endpoints or [])
    )


def node_condition(kube: Cluster, node: str, condition: str, value: str) -> bool:
    status = kube.core.read_node(node).status
    return any(c.type == condition and c.status == value for c in ((status.conditions if status else None) or []))


def node_untainted(kube: Cluster, node: str) -> bool:
    return node_condition(kube, node, "Ready", "True") and not kube.core.read_node(node).spec.taints


def add_labelled_node(lab: cluster.Lab, kube: Cluster, name: str) -> None:
    """A kwok node labelled pool=<name>, Ready and without the taints of a node that is still registering."""
    cluster.add_node(lab, name)
    kube.core.patch_node(name, {"metadata": {"labels": {"pool": name}}})
    wait_for(lambda: node_untainted(kube, name), f"node {name} Ready and untainted")


# --- the categories --------------------------------------------------------------------------------------------


def test_a_new_deployment_that_never_pulls_is_an_image_pull(kube: Cluster) -> None:
    """A brand-new workload that never works: a first creation is no rollout (there is nothing to roll back to),
    so the finding is the mechanism, the pull failure, on the Deployment; with no dated trigger it stays a lead."""
    kube.deploy(deployment("web"))
    restart(kube, "web")  # distractor
    pulling = {f"{SIM}/container": "imagepull", f"{SIM}/interval": "1s"}
    kube.deploy(deployment("catalog", annotations=pulling), wait_ready=False)
    wait_for(lambda: has_event(kube, "Failed", "catalog-"), "catalog's pull failure")
    found = ask(kube, "why-catalog", "Deployment", "catalog")
    top = top_finding(found)
    assert (top["category"], top["ref"]) == ("ImagePull", ref("Deployment", "catalog", kube.namespace)), explain(found)
    assert any("ErrImagePull" in d or "ImagePullBackOff" in d for d in evidence_about(top, "catalog-")), explain(found)
    assert IDENTIFIED_THRESHOLD <= top["confidence"] <= UNGATED_CAP, explain(found)
    assert_verdict_follows_confidence(found)
    assert all(finding["category"] != "BadRollout" for finding in found["status"]["findings"]), explain(found)
    assert_not_blamed(found, "web")


def test_image_pull_on_a_node_that_joined_is_the_pull_not_the_rollout(
    running_operator: cluster.Lab, kube: Cluster, new_node: str
) -> None:
    """A DaemonSet runs on every node; a node joins and the pod placed there cannot pull. The same template runs
    healthy elsewhere, so the template is not the problem: the pull on that node is (ImagePull, no trigger).

    kwok starts a pod as soon as it is bound to a node it manages, and the imagepull simulation only affects a pod
    it has not started yet; so the node joins unmanaged (a kubelet still registering), the DaemonSet's pod is bound
    there, the pod is marked as unable to pull, and only then kwok takes the node over."""
    agent = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "log-agent"},
        "spec": {
            "selector": {"matchLabels": {"app": "log-agent"}},
            "template": {
                "metadata": {"labels": {"app": "log-agent"}},
                "spec": {"containers": [{"name": "agent", "image": "registry.example.com/log-agent:3.2"}]},
            },
        },
    }
    kube.apps.create_namespaced_daemon_set(kube.namespace, agent)

    def all_ready() -> bool:
        status = kube.apps.read_namespaced_daemon_set("log-agent", kube.namespace).status
        return bool(
            status and status.desired_number_scheduled and status.number_ready == status.desired_number_scheduled
        )

    wait_for(all_ready, "log-agent ready on every node")
    kube.deploy(deployment("web", replicas=1))
    restart(kube, "web")  # distractor

    registering = kwok.node_manifest(new_node)
    del registering["metadata"]["annotations"][kwok.MANAGED_NODE_ANNOTATION]
    running_operator.api("POST", "/api/v1/nodes", registering)

    def placed_pod() -> str | None:
        pods = [pod for pod in kube.pods("log-agent") if pod.spec.node_name == new_node]
        return pods[0].metadata.name if pods else None

    pod_name = wait_for(placed_pod, f"a log-agent pod bound to {new_node}")
    annotations = {f"{SIM}/container": "imagepull"}
    kube.core.patch_namespaced_pod(pod_name, kube.namespace, {"metadata": {"annotations": annotations}})
    managed = {kwok.MANAGED_NODE_ANNOTATION: kwok.MANAGED_NODE_VALUE}
    kube.core.patch_node(new_node, {"metadata": {"annotations": managed}})
    wait_for(lambda: node_condition(kube, new_node, "Ready", "True"), f"{new_node} Ready")
    # kwok picks up the pods of a node it starts to manage on their next change.
    kube.core.patch_namespaced_pod(pod_name, kube.namespace, {"metadata": {"annotations": {f"{SIM}/interval": "1s"}}})

    def pulling() -> bool:
        statuses = kube.core.read_namespaced_pod(pod_name, kube.namespace).status.container_statuses or []
        return any(s.state.waiting and s.state.waiting.reason in ("ErrImagePull", "ImagePullBackOff") for s in statuses)

    wait_for(pulling, f"{pod_name} failing to pull")

    found = ask(kube, "why-agent", "DaemonSet", "log-agent")
    top = top_finding(found)
    assert (top["category"], top["ref"]) == ("ImagePull", ref("DaemonSet", "log-agent", kube.namespace)), explain(found)
    assert top["path"] == [path_name("DaemonSet", "log-agent", kube.namespace)], explain(found)
    assert any("ErrImagePull" in d or "ImagePullBackOff" in d for d in evidence_about(top, pod_name)), explain(found)
    # No trigger stands behind it: a lead the ranker keeps below the gate.
    assert IDENTIFIED_THRESHOLD <= top["confidence"] <= UNGATED_CAP, explain(found)
    assert_verdict_follows_confidence(found)
    # The DaemonSet's creation is on record, but a first creation is no rollout.
    assert_not_blamed(found, "web")
    assert all(finding["category"] != "BadRollout" for finding in found["status"]["findings"]), explain(found)


def test_oom_killed_batch_run(kube: Cluster) -> None:
    """A CronJob's run is OOMKilled over and over; a Job is no rollout, so the mechanism is the finding."""
    memory = {"limits": {"memory": "256Mi"}, "requests": {"memory": "256Mi"}}
    job_spec = {
        "backoffLimit": 30,
        "template": {
            "metadata": {
                "labels": {"app": "nightly-import"},
                "annotations": {f"{SIM}/container": "oomkilled", f"{SIM}/interval": "1s"},
            },
            "spec": {
                "restartPolicy": "OnFailure",
                "containers": [{"name": "import", "image": "registry.example.com/import:5.1", "resources": memory}],
            },
        },
    }
    batch = client.BatchV1Api(kube.core.api_client)
    cron = batch.create_namespaced_cron_job(
        kube.namespace,
        {
            "metadata": {"name": "nightly-import"},
            "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": job_spec}},
        },
    )
    kube.deploy(deployment("web", replicas=1))
    kube.core.create_namespaced_config_map(kube.namespace, {"metadata": {"name": "web-flags"}, "data": {"beta": "no"}})
    kube.core.patch_namespaced_config_map("web-flags", kube.namespace, {"data": {"beta": "yes"}})  # distractor
    # What `kubectl create job --from=cronjob/nightly-import` does: a run owned by the CronJob.
    owner = {"apiVersion": "batch/v1", "kind": "CronJob", "name": "nightly-import", "uid": cron.metadata.uid}
    batch.create_namespaced_job(
        kube.namespace,
        {
            "metadata": {"name": "nightly-import-manual", "ownerReferences": [{**owner, "controller": True}]},
            "spec": job_spec,
        },
    )
    wait_for(lambda: restarts_at_least(kube, "nightly-import", 2), "the import OOMKilled twice")

    found = ask(kube, "why-import", "CronJob", "nightly-import")
    top = top_finding(found)
    assert (top["category"], top["ref"]) == ("OOMKilled", ref("CronJob", "nightly-import", kube.namespace)), explain(
        found
    )
    assert top["path"][0] == path_name("CronJob", "nightly-import", kube.namespace), explain(found)
    assert any("OOMKilled" in detail for detail in evidence_about(top, "nightly-import-manual-")), explain(found)
    # Repeated OOM kills of the run itself and nothing else in question: identified, but with no trigger on
    # record (the run's creation is no change of what it runs) it stays below the gate.
    assert IDENTIFIED_THRESHOLD <= top["confidence"] <= UNGATED_CAP, explain(found)
    assert concluded_reason(found) == "RootCauseIdentified", explain(found)
    assert found["status"]["rootCause"]["ref"] == top["ref"], explain(found)
    assert_not_blamed(found, "web", "web-flags")


def test_readiness_failure_of_a_directly_managed_pod(kube: Cluster) -> None:
    """A Pod run without a controller fails its readiness probe; the Service billing calls loses its endpoint."""
    license_server = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "license-server", "labels": {"app": "license-server"}},
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "registry.example.com/license-server:7.0",
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 5},
                }
            ]
        },
    }
    kube.core.create_namespaced_pod(kube.namespace, license_server)
    kube.core.create_namespaced_service(kube.namespace, service("license-server"))
    kube.deploy(caller("billing", "license-server", "LICENSE_ADDR"))
    kube.deploy(deployment("reports", replicas=1))
    kube.apps.patch_namespaced_deployment("reports", kube.namespace, {"spec": {"replicas": 2}})  # distractor
    wait_for(lambda: not no_ready_endpoints(kube, "license-server"), "license-server ready")
    annotate_pods(kube, "license-server", {f"{SIM}/container": "notready", f"{SIM}/interval": "1s"})
    wait_for(lambda: has_event(kube, "Unhealthy", "license-server"), "a failed readiness probe")
    wait_for(lambda: no_ready_endpoints(kube, "license-server"), "license-server without ready endpoints")

    found = ask(kube, "why-billing", "Deployment", "billing")
    top = top_finding(found)
    assert (top["category"], top["ref"]) == ("ProbeFailure", ref("Pod", "license-server", kube.namespace)), explain(
        found
    )
    assert top["path"][0] == path_name("Deployment", "billing", kube.namespace), explain(found)
    assert path_name("Service", "license-server", kube.namespace) in top["path"], explain(found)
    assert top["path"][-1] == path_name("Pod", "license-server", kube.namespace), explain(found)
    assert any("Readiness probe failed" in detail for detail in evidence_about(top, "license-server")), explain(found)
    # A failing probe with nothing dated behind it is a lead, not a diagnosis.
    assert 40 <= top["confidence"] <= UNGATED_CAP, explain(found)
    assert_verdict_follows_confidence(found)
    assert_not_blamed(found, "reports", "billing")


def test_config_map_edit_then_its_consumers_crash(kube: Cluster) -> None:
    kube.core.create_namespaced_config_map(
        kube.namespace, {"metadata": {"name": "pricing-config"}, "data": {"currency": "EUR"}}
    )
    kube.core.create_namespaced_config_map(kube.namespace, {"metadata": {"name": "banner"}, "data": {"text": "hi"}})
    pricing = deployment("pricing", volumes=[{"name": "config", "configMap": {"name": "pricing-config"}}])
    pricing["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = [
        {"name": "config", "mountPath": "/etc/pricing"}
    ]
    kube.deploy(pricing)
    kube.core.create_namespaced_service(kube.namespace, service("pricing"))
    kube.deploy(caller("checkout", "pricing", "PRICING_ADDR"))
    kube.deploy(deployment("search", replicas=1))
    kube.core.patch_namespaced_config_map("banner", kube.namespace, {"data": {"text": "hello"}})  # distractor
    kube.core.patch_namespaced_config_map("pricing-config", kube.namespace, {"data": {"currency": "EURO"}})
    # The consumers read the new value and crash: only after the edit.
    annotate_pods(kube, "pricing", {f"{SIM}/container": "crashloop", f"{SIM}/interval": "1s"})
    wait_for(lambda: restarts_at_least(kube, "pricing", 2), "pricing crash-looping")

    found = ask(kube, "why-checkout", "Deployment", "checkout")
    status, top = found["status"], top_finding(found)
    assert concluded_reason(found) == "RootCauseIdentified", explain(found)
    assert status["rootCause"]["ref"] == ref("ConfigMap", "pricing-config", kube.namespace), explain(found)
    assert status["rootCause"]["category"] == "ConfigChange", explain(found)
    assert top["path"][0] == path_name("Deployment", "checkout", kube.namespace), explain(found)
    assert top["path"][-1] == path_name("ConfigMap", "pricing-config", kube.namespace), explain(found)
    assert any("data[currency]" in detail for detail in evidence_about(top, "pricing-config")), explain(found)
    assert any("restarts" in detail for detail in evidence_about(top, "pricing-")), explain(found)
    assert top["confidence"] > UNGATED_CAP, explain(found)
    assert_not_blamed(found, "banner", "search", "checkout")


def test_service_selector_edit_leaves_its_callers_without_endpoints(kube: Cluster) -> None:
    kube.deploy(deployment("inventory"))
    kube.core.create_namespaced_service(kube.namespace, service("inventory"))
    kube.deploy(caller("orders", "inventory", "INVENTORY_ADDR"))
    kube.deploy(deployment("shipping", replicas=1))
    restart(kube, "shipping")  # distractor
    kube.core.patch_namespaced_service("inventory", kube.namespace, {"spec": {"selector": {"app": "inventory-v2"}}})
    wait_for(lambda: no_ready_endpoints(kube, "inventory"), "inventory without endpoints")

    found = ask(kube, "why-orders", "Deployment", "orders")
    status, top = found["status"], top_finding(found)
    assert concluded_reason(found) == "RootCauseIdentified", explain(found)
    assert status["rootCause"]["ref"] == ref("Service", "inventory", kube.namespace), explain(found)
    assert status["rootCause"]["category"] == "ServiceMisconfig", explain(found)
    assert top["path"] == [
        path_name("Deployment", "orders", kube.namespace),
        path_name("Service", "inventory", kube.namespace),
    ], explain(found)
    details = evidence_about(top, "inventory")
    assert any("selector: app=inventory -> app=inventory-v2" in detail for detail in details), explain(found)
    assert any("matches no pods" in detail for detail in details), explain(found)
    # Without request metrics the outage behind the empty Service has no date: the change cannot pass the gate.
    assert IDENTIFIED_THRESHOLD <= top["confidence"] <= UNGATED_CAP, explain(found)
    assert_not_blamed(found, "shipping")


def test_deny_all_network_policy_without_metrics_is_an_unconfirmed_risk(kube: Cluster) -> None:
    kube.deploy(deployment("ledger"))
    kube.core.create_namespaced_service(kube.namespace, service("ledger"))
    kube.deploy(caller("billing", "ledger", "LEDGER_ADDR"))
    kube.deploy(deployment("audit", replicas=1))
    restart(kube, "audit")  # distractor
    policy = {
        "metadata": {"name": "deny-ledger"},
        "spec": {"podSelector": {"matchLabels": {"app": "ledger"}}, "policyTypes": ["Ingress"]},
    }
    client.NetworkingV1Api(kube.core.api_client).create_namespaced_network_policy(kube.namespace, policy)

    found = ask(kube, "why-billing", "Deployment", "billing")
    status, top = found["status"], top_finding(found)
    # A policy breaks no pod, and Prometheus has no request series for ledger or billing: nothing can show the
    # cut. The honest answer is that the risky change could not be confirmed, neither a root cause nor "no fault".
    assert concluded_reason(found) == "Inconclusive", explain(found)
    assert "rootCause" not in status or status["rootCause"] is None, explain(found)
    assert (top["category"], top["ref"]) == ("NetworkPolicy", ref("NetworkPolicy", "deny-ledger", kube.namespace))
    assert top["confidence"] <= NO_SYMPTOM_CAP, explain(found)
    assert top["path"][0] == path_name("Deployment", "billing", kube.namespace), explain(found)
    assert top["path"][-1] == path_name("NetworkPolicy", "deny-ledger", kube.namespace), explain(found)
    assert any("denies ingress from Deployment" in detail for detail in evidence_about(top, "billing")), explain(found)
    assert any("could not be confirmed" in note and "deny-ledger" in note for note in status["unknowns"]), explain(
        found
    )
    assert_not_blamed(found, "audit")


def test_scale_up_beyond_the_room_left_is_scheduling(kube: Cluster) -> None:
    """A running Deployment whose pods need 40 of a node's 64 CPUs (one per node) is scaled to 8."""
    render = deployment("render")
    render["spec"]["template"]["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "40"}}
    kube.deploy(render)
    kube.deploy(deployment("web", replicas=1))
    restart(kube, "web")  # distractor
    kube.apps.patch_namespaced_deployment("render", kube.namespace, {"spec": {"replicas": 8}})
    wait_for(lambda: has_event(kube, "FailedScheduling", "render-"), "render pods that fit nowhere")

    found = ask(kube, "why-render", "Deployment", "render")
    status, top = found["status"], top_finding(found)
    assert concluded_reason(found) == "RootCauseIdentified", explain(found)
    assert status["rootCause"]["ref"] == ref("Deployment", "render", kube.namespace), explain(found)
    assert status["rootCause"]["category"] == "Scheduling", explain(found)
    assert top["path"] == [path_name("Deployment", "render", kube.namespace)], explain(found)
    details = evidence_about(top, "render")
    assert any("replicas: 2 -> 8" in detail for detail in details), explain(found)
    assert any("Insufficient cpu" in detail for detail in details), explain(found)
    # The scale-up is the dated trigger; the pending pods, their timing and the target itself agree with it.
    assert top["confidence"] > UNGATED_CAP, explain(found)
    for finding in status["findings"]:
        if finding["category"] == "BadRollout":  # the creation: its own pods run, so it is cleared
            assert finding["confidence"] < IDENTIFIED_THRESHOLD, explain(found)
    assert_not_blamed(found, "web")


def test_new_quota_refuses_a_scale_up(kube: Cluster) -> None:
    kube.deploy(deployment("reports"))
    kube.deploy(deployment("web", replicas=1))
    restart(kube, "web")  # distractor, finished before the quota exists
    wait_for(lambda: len(kube.pods("web")) == 1 and kube.ready_replicas("web") == 1, "web restarted")
    quota = {"metadata": {"name": "pod-quota"}, "spec": {"hard": {"pods": "3"}}}
    kube.core.create_namespaced_resource_quota(kube.namespace, quota)

    def quota_counted() -> bool:
        used = kube.core.read_namespaced_resource_quota("pod-quota", kube.namespace).status.used or {}
        return used.get("pods") == "3"

    wait_for(quota_counted, "the quota controller counting the pods")
    kube.apps.patch_namespaced_deployment("reports", kube.namespace, {"spec": {"replicas": 4}})
    wait_for(lambda: has_event(kube, "FailedCreate", "reports-"), "the ReplicaSet controller refused by the quota")

    found = ask(kube, "why-reports", "Deployment", "reports")
    status, top = found["status"], top_finding(found)
    assert concluded_reason(found) == "RootCauseIdentified", explain(found)
    assert status["rootCause"]["ref"] == ref("ResourceQuota", "pod-quota", kube.namespace), explain(found)
    assert status["rootCause"]["category"] == "Quota", explain(found)
    assert top["path"] == [
        path_name("Deployment", "reports", kube.namespace),
        path_name("ResourceQuota", "pod-quota", kube.namespace),
    ], explain(found)
    details = evidence_about(top, "pod-quota")
    assert any("created at" in detail for detail in details), explain(found)
    assert any("exceeded quota: pod-quota" in detail for detail in details), explain(found)
    assert top["confidence"] > UNGATED_CAP, explain(found)
    assert_not_blamed(found, "web")


def test_callee_scaled_to_zero(kube: Cluster) -> None:
    kube.deploy(deployment("auth"))
    kube.core.create_namespaced_service(kube.namespace, service("auth"))
    kube.deploy(caller("gateway", "auth", "AUTH_ADDR"))
    kube.deploy(deployment("metrics-sink", replicas=1))
    restart(kube, "metrics-sink")  # distractor
    kube.apps.patch_namespaced_deployment("auth", kube.namespace, {"spec": {"replicas": 0}})
    wait_for(lambda: no_ready_endpoints(kube, "auth"), "auth without endpoints")

    found = ask(kube, "why-gateway", "Deployment", "gateway")
    status, top = found["status"], top_finding(found)
    assert concluded_reason(found) == "RootCauseIdentified", explain(found)
    assert status["rootCause"]["ref"] == ref("Deployment", "auth", kube.namespace), explain(found)
    assert status["rootCause"]["category"] == "ScaledToZero", explain(found)
    assert top["path"] == [
        path_name("Deployment", "gateway", kube.namespace),
        path_name("Service", "auth", kube.namespace),
        path_name("Deployment", "auth", kube.namespace),
    ], explain(found)
    assert any("replicas: 2 -> 0" in detail for detail in evidence_about(top, "auth")), explain(found)
    # Without request metrics nothing dates the outage of the empty Service: the change cannot pass the gate.
    assert IDENTIFIED_THRESHOLD <= top["confidence"] <= UNGATED_CAP, explain(found)
    assert_not_blamed(found, "metrics-sink")


def test_claim_that_never_binds_keeps_its_pod_pending(kube: Cluster) -> None:
    """No StorageClass and no PersistentVolume: the claim stays Pending and the scheduler cannot place its pod."""
    claim = {
        "metadata": {"name": "db-data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}},
    }
    kube.core.create_namespaced_persistent_volume_claim(kube.namespace, claim)
    kube.deploy(deployment("web", replicas=1))
    restart(kube, "web")  # distractor
    volumes = [{"name": "data", "persistentVolumeClaim": {"claimName": "db-data"}}]
    kube.deploy(deployment("db", replicas=1, volumes=volumes), wait_ready=False)
    wait_for(lambda: has_event(kube, "FailedScheduling", "db-"), "db's pod waiting for its claim")

    found = ask(kube, "why-db", "Deployment", "db")
    status, top = found["status"], top_finding(found)
    assert concluded_reason(found) == "RootCauseIdentified", explain(found)
    assert status["rootCause"]["ref"] == ref("PersistentVolumeClaim", "db-data", kube.namespace), explain(found)
    assert status["rootCause"]["category"] == "Storage", explain(found)
    assert top["path"] == [
        path_name("Deployment", "db", kube.namespace),
        path_name("PersistentVolumeClaim", "db-data", kube.namespace),
    ], explain(found)
    assert any("phase Pending" in detail for detail in evidence_about(top, "db-data")), explain(found)
    assert any("unbound immediate PersistentVolumeClaims" in detail for detail in evidence_about(top, "db-")), explain(
        found
    )
    # The claim's creation is on record: trigger, failure, timing and path agree.
    assert top["confidence"] > UNGATED_CAP, explain(found)
    assert_not_blamed(found, "web")


def test_node_not_ready_under_a_pinned_deployment(running_operator: cluster.Lab, kube: Cluster, new_node: str) -> None:
    add_labelled_node(running_operator, kube, new_node)
    kube.deploy(deployment("edge", nodeSelector={"pool": new_node}))
    kube.deploy(deployment("web", replicas=1))
    restart(kube, "web")  # distractor
    kube.core.patch_node(new_node, {"metadata": {"annotations": {f"{SIM}/node": "notready"}}})
    wait_for(lambda: node_condition(kube, new_node, "Ready", "False"), f"{new_node} NotReady")
    wait_for(lambda: kube.core.read_node(new_node).spec.taints, f"{new_node} tainted not-ready")

    found = ask(kube, "why-edge", "Deployment", "edge")
    status, top = found["status"], top_finding(found)
    assert concluded_reason(found) == "RootCauseIdentified", explain(found)
    assert status["rootCause"]["ref"] == ref("Node", new_node), explain(found)
    assert status["rootCause"]["category"] == "NodeFailure", explain(found)
    assert top["path"][0] == path_name("Deployment", "edge", kube.namespace), explain(found)
    assert top["path"][-1] == path_name("Node", new_node), explain(found)
    details = evidence_about(top, new_node)
    assert any("Ready=False" in detail and "KubeletNotReady" in detail for detail in details), explain(found)
    # A node going NotReady is a dated transition, a trigger like a change; the journal's gap (the operator has not
    # watched for long) may keep it under the gate, never under the threshold.
    assert top["confidence"] >= IDENTIFIED_THRESHOLD, explain(found)
    assert_not_blamed(found, "web")
