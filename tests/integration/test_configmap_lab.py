"""The operator's ConfigMap: read at start, a valid change applied live, an invalid one refused with an Event
that names the field while the last good configuration stays in force."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from inquest.lab import cluster, operator, procs
from inquest.lab.kubehelpers import Cluster, deployment
from inquest.lab.waiting import wait_for

pytestmark = pytest.mark.lab


def config_map(name: str, text: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"config.yaml": text}}


def unknowns_of(kube: Cluster, name: str, generation: int) -> list[str]:
    found = kube.concluded(name, generation=generation, timeout=30)
    return list(found["status"].get("unknowns", []))


def test_config_applies_live_and_refuses_bad_fields(lab: cluster.Lab, admin_api: Any, namespace: str) -> None:
    kube = Cluster(admin_api, namespace)
    core = client.CoreV1Api(admin_api)
    core.create_namespaced_config_map(namespace, config_map("inquest", f"prometheus:\n  url: {lab.prometheus_url}\n"))
    kube.deploy(deployment("web", replicas=1))
    # This test's own operator: the session's one is paused so that the answers are this one's.
    operator.install_api(lab)
    session_operator_was_running = lab.alive(operator.COMPONENT)
    operator.stop_operator(lab)
    port = procs.free_port()
    command = [
        "python", "-m", "inquest", "run", f"--kubeconfig={lab.kubeconfig_operator}", f"--namespace={namespace}",
        f"--config-map={namespace}/inquest", f"--liveness=http://127.0.0.1:{port}/healthz",
    ]  # fmt: skip
    import sys

    command[0] = sys.executable
    own = procs.start("operator-config-test", command, lab.data_dir / "logs" / "operator-config-test.log")
    try:
        procs.wait_until(own, str(lab.data_dir), lambda: procs.http_ok(f"http://127.0.0.1:{port}/healthz"), 60, "alive")

        def ask(name: str) -> list[str]:
            body = {"apiVersion": "inquest.dev/v1alpha1", "kind": "Investigation", "metadata": {"name": name},
                    "spec": {"target": {"kind": "Deployment", "name": "web"}}}  # fmt: skip
            kube.custom.create_namespaced_custom_object("inquest.dev", "v1alpha1", namespace, "investigations", body)
            return unknowns_of(kube, name, 1)

        first = ask("from-the-config-map")
        # Prometheus came from the ConfigMap, not from a flag: it was asked (and had no request metrics).
        assert not any("Prometheus is not configured" in line for line in first), first
        assert any(line.startswith("Not in Prometheus for") for line in first), first

        core.patch_namespaced_config_map(
            "inquest", namespace, {"data": {"config.yaml": "prometheus:\n  queryTimeoutSeconds: soon\n"}}
        )

        def event_list(reason: str) -> list[Any]:
            selector = f"involvedObject.kind=ConfigMap,involvedObject.name=inquest,reason={reason}"
            return list(core.list_namespaced_event(namespace, field_selector=selector).items)

        def event(reason: str) -> Any:
            events = event_list(reason)
            return events[0] if events else None

        refused = wait_for(lambda: event("ConfigRejected"), "a ConfigRejected Event", timeout=20)
        assert "prometheus.queryTimeoutSeconds" in refused.message
        assert refused.type == "Warning"
        # The last good configuration stays: Prometheus is still asked.
        second = ask("after-a-bad-edit")
        assert any(line.startswith("Not in Prometheus for") for line in second), second

        closed = procs.free_port()
        core.patch_namespaced_config_map(
            "inquest", namespace, {"data": {"config.yaml": f"prometheus:\n  url: http://127.0.0.1:{closed}\n"}}
        )
        applied = wait_for(lambda: event("ConfigApplied"), "a ConfigApplied Event", timeout=20)
        assert "prometheus.url" in applied.message
        third = ask("after-a-good-edit")
        assert any("unreachable" in line and str(closed) in line for line in third), third

        # Notifier routes live in the same document; a notifier with a plain URL (not a Secret) is refused.
        core.patch_namespaced_config_map(
            "inquest",
            namespace,
            {"data": {"config.yaml": "notifications:\n  notifiers:\n    - {name: chat, type: Slack, url: http://x}\n"}},
        )

        def rejected_notifications() -> Any:
            events = core.list_namespaced_event(
                namespace,
                field_selector="involvedObject.kind=ConfigMap,involvedObject.name=inquest,reason=ConfigRejected",
            ).items
            return next((e for e in events if "notifications.notifiers" in e.message), None)

        wait_for(rejected_notifications, "a ConfigRejected Event naming notifications.notifiers", timeout=20)
    finally:
        procs.stop(own, str(lab.data_dir))
        if session_operator_was_running:
            operator.start_operator(lab, "--continuous-interval-seconds=2")
