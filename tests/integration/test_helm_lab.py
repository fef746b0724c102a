"""The Helm chart against the lab's real API server.

kwok runs no containers, so the chart's Deployment gets a pod object but no process. The operator process runs
here instead, with a token of the chart's ServiceAccount: it then has exactly the RBAC the chart installed, and
the audit log shows which identity wrote what.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inquest.api import models
from inquest.lab import build, cluster, operator, paths, procs
from inquest.lab.kubehelpers import Cluster, concluded_reason, deployment
from inquest.lab.waiting import wait_for

pytestmark = pytest.mark.lab

CHART = Path(__file__).resolve().parents[2] / "helm" / "inquest"
RESTRICTED = ("pod-security.kubernetes.io/enforce=restricted", "pod-security.kubernetes.io/warn=restricted")
# Everything a release can switch on that the lab can serve (no ServiceMonitor: the lab has no Prometheus Operator).
EVERYTHING = (
    "--set", "intake.enabled=true", "--set", "intake.tokenSecret.name=alertmanager-token",
    "--set", "intake.tokenSecret.key=token", "--set", "metrics.enabled=true",
    "--set", "config.watch.watchSecrets=true", "--set", "config.prometheus.url=http://prometheus.monitoring:9090",
    "--set-json", 'config.prometheus.auth.bearerToken={"secretKeyRef": {"name": "prometheus-token", "key": "t"}}',
)  # fmt: skip


def run(lab: cluster.Lab, tool: str, *arguments: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """helm or kubectl as the lab's admin."""
    command = [str(build.locate(tool)), *arguments, f"--kubeconfig={lab.kubeconfig_admin}"]
    return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=120, check=False)


def template(lab: cluster.Lab, release: str, namespace: str, *settings: str) -> str:
    kube_version = paths.KUBERNETES_VERSION.lstrip("v")  # the lab's helm has no version stamp of its own
    result = run(
        lab, "helm", "template", release, str(CHART), "-n", namespace, "--kube-version", kube_version, *settings
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def audit_events(lab: cluster.Lab, username: str) -> list[dict[str, Any]]:
    """The completed requests of one user, from the lab's audit log (JSON lines)."""
    needle = json.dumps(username)
    events = []
    with lab.audit_log.open() as log:
        for line in log:
            if needle in line:
                event = json.loads(line)
                if event["user"]["username"] == username and event["stage"] == "ResponseComplete":
                    events.append(event)
    return events


def test_every_rendered_object_passes_server_side_dry_run(lab: cluster.Lab, namespace: str) -> None:
    assert run(lab, "kubectl", "label", "namespace", namespace, *RESTRICTED).returncode == 0
    rendered = template(lab, "inquest-dry-run", namespace, *EVERYTHING)
    result = run(lab, "kubectl", "apply", "--dry-run=server", "-f", "-", stdin=rendered)
    assert result.returncode == 0, result.stderr
    applied = [line for line in result.stdout.splitlines() if line.endswith("(server dry run)")]
    kinds = sorted(line.split("/", 1)[0] for line in applied)
    assert kinds == sorted(
        [
            "clusterrole.rbac.authorization.k8s.io", "clusterrole.rbac.authorization.k8s.io",
            "clusterrolebinding.rbac.authorization.k8s.io", "clusterrolebinding.rbac.authorization.k8s.io",
            "configmap", "customresourcedefinition.apiextensions.k8s.io", "deployment.apps", "service",
            "serviceaccount",
        ]
    ), result.stdout  # fmt: skip
    # The namespace warns on pod templates that break the restricted profile; the chart's draws no warning...
    assert "PodSecurity" not in result.stderr, result.stderr
    # ...while a weakened one does, so the check above can fail.
    weakened = template(lab, "inquest-dry-run", namespace, "--set", "securityContext.allowPrivilegeEscalation=true")
    result = run(lab, "kubectl", "apply", "--dry-run=server", "-f", "-", stdin=weakened)
    assert 'would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false' in result.stderr


@pytest.fixture
def other_namespace(lab: cluster.Lab) -> Iterator[str]:
    name = f"t-helm-target-{secrets.token_hex(2)}"
    lab.api("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    cluster.wait_for_default_service_account(lab, name)
    yield name
    lab.api("DELETE", f"/api/v1/namespaces/{name}")


def test_the_operator_works_with_exactly_the_charts_identity_and_rbac(
    lab: cluster.Lab, admin_api: Any, namespace: str, other_namespace: str, tmp_path: Path
) -> None:
    # The CRD as a user applies it, without Helm ownership, so the release leaves it alone (the dry run above covers
    # the chart's). Not operator.install_api: that also binds the lab operator's user, which other tests expect not.
    applied = run(lab, "kubectl", "apply", "-f", str(operator.CRD_FILE))
    assert applied.returncode == 0, applied.stderr
    crd = "crd/investigations.inquest.dev"
    assert run(lab, "kubectl", "wait", "--for=condition=Established", crd, "--timeout=30s").returncode == 0
    wait_for(lambda: run(lab, "kubectl", "get", "investigations", "-A").returncode == 0, "Investigations served")
    assert run(lab, "kubectl", "label", "namespace", namespace, *RESTRICTED).returncode == 0
    release = f"inquest-{secrets.token_hex(2)}"
    installed = run(lab, "helm", "install", release, str(CHART), "-n", namespace, "--set", "crd.install=false")
    assert installed.returncode == 0, installed.stderr
    process = None
    try:
        # Admission under enforce=restricted let the Deployment's pod in (kwok then plays its kubelet).
        kube = Cluster(admin_api, namespace)
        selector = f"app.kubernetes.io/instance={release}"
        wait_for(lambda: kube.core.list_namespaced_pod(namespace, label_selector=selector).items, "the chart's pod")

        token = run(lab, "kubectl", "create", "token", release, "-n", namespace, "--duration=1h")
        assert token.returncode == 0, token.stderr
        username = f"system:serviceaccount:{namespace}:{release}"
        kubeconfig = tmp_path / "kubeconfig-chart"
        cluster._write_kubeconfig(kubeconfig, lab.apiserver_url, lab.ca_cert, username, token.stdout.strip())
        can_i = [
            run_as(kubeconfig, "auth", "can-i", verb, resource, "-n", other_namespace)
            for verb, resource in (
                ("patch", "investigations.inquest.dev/status"),
                ("delete", "pods"),
                ("get", "secrets"),
            )
        ]
        assert can_i == ["yes", "no", "no"]

        port = procs.free_port()
        command = [
            sys.executable, "-m", "inquest", "run",
            f"--kubeconfig={kubeconfig}", f"--liveness=http://127.0.0.1:{port}/healthz",
        ]  # fmt: skip
        environment = {key: value for key, value in os.environ.items() if key not in ("KUBECONFIG", "PROMETHEUS_URL")}
        log = lab.data_dir / "logs" / f"operator-{release}.log"
        process = procs.start(f"operator-{release}", command, log, env=environment)
        procs.wait_until(
            process, str(kubeconfig), lambda: procs.http_ok(f"http://127.0.0.1:{port}/healthz"), 60, "alive"
        )

        target = Cluster(admin_api, other_namespace)
        target.deploy(deployment("web"))
        # The session's operator (if it runs) answers Investigations too: whoever patches first wins a generation.
        # A new generation is a new race, so ask again until the chart's identity has answered one.
        answered_by_chart = None
        for generation in range(1, 4):
            if generation == 1:
                spec = {"target": {"kind": "Deployment", "name": "web"}, "question": "is web healthy?"}
                found = target.investigate("helm-chart", spec)
            else:
                target.custom.patch_namespaced_custom_object(
                    models.GROUP, models.VERSION, other_namespace, models.PLURAL, "helm-chart",
                    {"spec": {"context": [f"asked again ({generation})"]}},
                )  # fmt: skip
                found = target.concluded("helm-chart", generation)
            assert concluded_reason(found)

            def status_patch() -> dict[str, Any] | None:
                return next(
                    (
                        event
                        for event in audit_events(lab, username)
                        if event["verb"] == "patch"
                        and event["objectRef"].get("subresource") == "status"
                        and event["objectRef"].get("namespace") == other_namespace
                        and event["objectRef"].get("name") == "helm-chart"
                    ),
                    None,
                )

            try:
                answered_by_chart = wait_for(status_patch, "the chart identity's status patch in the audit log", 5)
                break
            except AssertionError:
                continue
        assert answered_by_chart is not None, procs.log_tail(log)
        assert answered_by_chart["responseStatus"]["code"] == 200
        assert answered_by_chart["objectRef"]["resource"] == "investigations"
        reason = answered_by_chart["annotations"]["authorization.k8s.io/reason"]
        assert f'by ClusterRoleBinding "{release}" of ClusterRole "{release}"' in reason

        # Exactly the chart's RBAC was enough: nothing it asked for was forbidden, and it wrote nothing else.
        # (The test's own `kubectl auth can-i` with the same token is left out.)
        events = [e for e in audit_events(lab, username) if not e.get("userAgent", "").startswith("kubectl")]
        print(f"\n{len(events)} requests as {username}; the status patch:\n{json.dumps(answered_by_chart)}")
        # (A 403 for a namespace being deleted is admission, not RBAC: the authorizer's decision is what counts.)
        denied = [e for e in events if e.get("annotations", {}).get("authorization.k8s.io/decision") != "allow"]
        assert denied == []
        writes = {
            (event["verb"], event["objectRef"]["resource"], event["objectRef"].get("subresource"))
            for event in events
            if event["verb"] in ("create", "update", "patch", "delete", "deletecollection")
        }
        assert writes <= {("patch", "investigations", "status"), ("create", "events", None)}, writes
        assert ("patch", "investigations", "status") in writes
    finally:
        if process is not None:
            procs.stop(process, str(kubeconfig))
        uninstalled = run(lab, "helm", "uninstall", release, "-n", namespace, "--wait")
        assert uninstalled.returncode == 0, uninstalled.stderr


def run_as(kubeconfig: Path, *arguments: str) -> str:
    command = [str(build.locate("kubectl")), *arguments, f"--kubeconfig={kubeconfig}"]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False).stdout.strip()
