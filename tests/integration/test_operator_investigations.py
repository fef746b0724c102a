"""The operator, running as its own restricted identity, answers Investigations from real cluster state."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from inquest.api import models
from inquest.lab import cluster
from inquest.lab.kubehelpers import SIM, Cluster, concluded_reason, deployment, service
from inquest.lab.waiting import wait_for

pytestmark = pytest.mark.lab


@pytest.fixture
def kube(running_operator: cluster.Lab, admin_api: Any, namespace: str) -> Cluster:
    return Cluster(admin_api, namespace)


def test_bad_rollout_is_the_root_cause_of_a_crashing_dependency(kube: Cluster) -> None:
    kube.deploy(deployment("payments"))
    kube.deploy(deployment("checkout", env=[{"name": "PAYMENTS_ADDR", "value": "payments:8080"}]))
    kube.core.create_namespaced_service(kube.namespace, service("payments"))
    kube.core.create_namespaced_service(kube.namespace, service("checkout"))
    # An unrelated restart-free change elsewhere, as a distractor.
    kube.apps.patch_namespaced_deployment("checkout", kube.namespace, {"metadata": {"labels": {"team": "cart"}}})
    kube.release_crashing("payments", "registry.example.com/payments:1.9")
    started = time.monotonic()
    found = kube.investigate(
        "why-checkout", {"target": {"kind": "Deployment", "name": "checkout"}, "question": "why is checkout failing?"}
    )
    elapsed = time.monotonic() - started
    status = found["status"]
    assert concluded_reason(found) == "RootCauseIdentified", status["summary"]
    assert status["rootCause"]["ref"] == {"kind": "Deployment", "namespace": kube.namespace, "name": "payments"}
    assert status["rootCause"]["category"] == "BadRollout"
    top = status["findings"][0]
    assert top["path"][0] == f"Deployment/{kube.namespace}/checkout"
    assert top["path"][-1] == f"Deployment/{kube.namespace}/payments"
    assert {item["source"] for item in top["evidence"]} >= {"Journal", "Kubernetes"}
    assert any("1.9" in item["detail"] for item in top["evidence"])
    assert status["rounds"][0]["generation"] == 1
    assert elapsed < 10
    events = wait_for(lambda: kube.events_for("why-checkout"), "the RootCauseIdentified Event")
    assert [event.reason for event in events] == ["RootCauseIdentified"]
    assert "payments" in events[0].message


def test_a_crash_without_any_change_is_a_crash_loop(kube: Cluster) -> None:
    # A bare pod: no workload rollout or other change precedes the crash, so the crash itself is the finding.
    kube.crashing_bare_pod("batch-runner", "registry.example.com/batch:2.1")
    found = kube.investigate("why-batch", {"target": {"kind": "Pod", "name": "batch-runner"}})
    status = found["status"]
    top = status["findings"][0]
    assert top["category"] == "CrashLoop", status["summary"]
    assert top["ref"] == {"kind": "Pod", "namespace": kube.namespace, "name": "batch-runner"}
    # A crash with no known trigger is a lead, not a confident diagnosis; the verdict follows the threshold.
    assert 40 <= top["confidence"] < 70
    expected = "RootCauseIdentified" if top["confidence"] >= 60 else "Inconclusive"
    assert concluded_reason(found) == expected


def test_a_healthy_namespace_has_no_fault_and_says_so(kube: Cluster) -> None:
    kube.deploy(deployment("web"))
    kube.core.create_namespaced_service(kube.namespace, service("web"))
    found = kube.investigate("all-good", {})
    status = found["status"]
    assert concluded_reason(found) == "NoFaultFound", status
    assert status.get("findings", []) == []
    assert "rootCause" not in status
    events = wait_for(lambda: kube.events_for("all-good"), "the NoFaultFound Event")
    assert [event.reason for event in events] == ["NoFaultFound"]


def test_a_follow_up_adds_a_round_with_verdicts(kube: Cluster) -> None:
    kube.deploy(deployment("api", replicas=1))
    kube.apps.patch_namespaced_deployment(
        "api",
        kube.namespace,
        {
            "spec": {
                "template": {
                    # A real release changes the spec: the simulation annotations alone are invisible to inquest.
                    "metadata": {"annotations": {f"{SIM}/container": "oomkilled", f"{SIM}/interval": "1s"}},
                    "spec": {"containers": [{"name": "app", "image": "registry.example.com/api:1.1"}]},
                }
            }
        },
    )
    wait_for(
        lambda: any(
            status.last_state and status.last_state.terminated
            for pod in kube.pods("api")
            for status in (pod.status.container_statuses or [])
        ),
        "an OOMKilled container",
    )
    first = kube.investigate("why-api", {"target": {"kind": "Deployment", "name": "api"}})
    assert len(first["status"]["rounds"]) == 1
    kube.custom.patch_namespaced_custom_object(
        models.GROUP,
        models.VERSION,
        kube.namespace,
        models.PLURAL,
        "why-api",
        {"spec": {"context": ["we raised the heap size today"], "hypotheses": ["the api rollout", "node-c"]}},
    )
    second = kube.concluded("why-api", generation=2)
    status = second["status"]
    assert [entry["generation"] for entry in status["rounds"]] == [1, 2]
    verdicts = {entry["text"]: entry["verdict"] for entry in status["hypotheses"]}
    assert set(verdicts) == {"the api rollout", "node-c"}
    assert verdicts["node-c"] == "RuledOut", status["hypotheses"]
    assert verdicts["the api rollout"] == "Supported", status["hypotheses"]
    # The same verdict twice is one Event: a follow-up adds a round, not noise.
    time.sleep(1)
    assert len(kube.events_for("why-api")) == 1


def test_the_operator_writes_only_investigation_status_and_events(running_operator: cluster.Lab, kube: Cluster) -> None:
    kube.deploy(deployment("quiet", replicas=1))
    kube.investigate("audit-me", {"target": {"kind": "Deployment", "name": "quiet"}})
    time.sleep(1)  # the audit log is written asynchronously
    writes = set()
    for line in running_operator.audit_log.read_text().splitlines():
        entry = json.loads(line)
        if entry["user"]["username"] != cluster.OPERATOR_USER:
            continue
        reference = entry.get("objectRef", {})
        # Other tests in the session use this identity for intake; this one judges what its own namespace saw.
        if reference.get("namespace") != kube.namespace:
            continue
        if entry["verb"] in ("create", "update", "patch", "delete", "deletecollection"):
            resource = reference.get("resource", "") + (
                "/" + reference["subresource"] if reference.get("subresource") else ""
            )
            writes.add((entry["verb"], reference.get("apiGroup", ""), resource))
    assert writes, "the operator wrote nothing at all: the audit check would prove nothing"
    allowed = {
        ("patch", "inquest.dev", "investigations/status"),
        ("create", "", "events"),
    }
    assert writes <= allowed, f"unexpected writes: {writes - allowed}"


def test_continuous_mode_records_when_symptoms_resolve(kube: Cluster) -> None:
    kube.crashing_bare_pod("flaky", "registry.example.com/flaky:1.0")
    found = kube.investigate(
        "watch-flaky", {"target": {"kind": "Pod", "name": "flaky"}, "mode": "Continuous", "lookback": "15s"}
    )
    assert concluded_reason(found) in ("RootCauseIdentified", "Inconclusive"), found["status"]["summary"]
    assert found["status"]["findings"][0]["category"] == "CrashLoop"
    kube.core.patch_namespaced_pod(
        "flaky", kube.namespace, {"metadata": {"annotations": {f"{SIM}/container": None, f"{SIM}/interval": None}}}
    )

    def resolved() -> dict[str, Any] | None:
        current: dict[str, Any] = kube.custom.get_namespaced_custom_object(
            models.GROUP, models.VERSION, kube.namespace, models.PLURAL, "watch-flaky"
        )
        conditions = {c["type"]: c for c in current["status"].get("conditions", [])}
        condition = conditions.get("SymptomsResolved")
        return current if condition and condition["status"] == "True" else None

    current = wait_for(resolved, "SymptomsResolved", timeout=60)
    assert concluded_reason(current) == "NoFaultFound"
    assert [r["generation"] for r in current["status"]["rounds"]] == [1]
    reasons = [event.reason for event in kube.events_for("watch-flaky")]
    assert reasons[0] in ("RootCauseIdentified", "Inconclusive")
    assert "FindingsChanged" in reasons


def test_a_restarted_operator_answers_each_generation_exactly_once(
    running_operator: cluster.Lab, kube: Cluster
) -> None:
    from inquest.lab import operator

    kube.deploy(deployment("steady", replicas=1))
    operator.stop_operator(running_operator)
    body = {
        "apiVersion": models.API_VERSION,
        "kind": models.KIND,
        "metadata": {"name": "while-down"},
        "spec": {"target": {"kind": "Deployment", "name": "steady"}},
    }
    kube.custom.create_namespaced_custom_object(models.GROUP, models.VERSION, kube.namespace, models.PLURAL, body)
    operator.start_operator(running_operator, "--continuous-interval-seconds=2")
    found = kube.concluded("while-down", generation=1)
    status = found["status"]
    assert len(status["rounds"]) == 1
    assert any("gap" in unknown for unknown in status["unknowns"]), status["unknowns"]
    # A second restart finds the generation answered: no new round, no new Event.
    operator.stop_operator(running_operator)
    operator.start_operator(running_operator, "--continuous-interval-seconds=2")
    time.sleep(2)
    again = kube.concluded("while-down", generation=1)
    assert again["status"]["rounds"] == status["rounds"]
    assert len(kube.events_for("while-down")) == 1
