"""`kubectl inquest` as a person runs it: a subprocess (through kubectl's plugin dispatch when kubectl is on the
machine) against the lab, as the lab's admin, with the operator answering; and its three one-line errors."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from inquest.lab import cluster, procs
from inquest.lab.kubehelpers import Cluster, deployment, service

pytestmark = pytest.mark.lab

BIN = Path(sys.executable).parent
PLUGIN = BIN / "kubectl-inquest"


def run_plugin(kubeconfig: Path | str, *arguments: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`kubectl inquest ARGS` with KUBECONFIG set, as a shell would run it."""
    if not PLUGIN.exists():
        pytest.fail(f"{PLUGIN} is missing: reinstall the package (pip install -e .) to get the console script")
    kubectl = shutil.which("kubectl")
    command = [kubectl, "inquest", *arguments] if kubectl else [str(PLUGIN), *arguments]
    environment = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "COLUMNS": "160",
    }
    completed = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=timeout, check=False)
    # Shown with -rP or -s: the transcript docs/intake-and-plugin.md quotes.
    print(f"$ kubectl inquest {' '.join(arguments)}\n{completed.stderr}{completed.stdout}")
    return completed


def assert_one_line_error(completed: subprocess.CompletedProcess[str], expected: str) -> None:
    assert completed.returncode == 1, completed
    assert "Traceback" not in completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1, completed.stderr
    assert lines[0].startswith("error: "), lines
    assert expected in lines[0], lines[0]


@pytest.fixture
def kube(running_operator: cluster.Lab, admin_api: Any, namespace: str) -> Cluster:
    return Cluster(admin_api, namespace)


def test_ask_show_followup_and_list_against_a_crash_looping_deployment(lab: cluster.Lab, kube: Cluster) -> None:
    namespace = kube.namespace
    kube.deploy(deployment("payments"))
    kube.deploy(deployment("checkout", env=[{"name": "PAYMENTS_ADDR", "value": "payments:8080"}]))
    kube.core.create_namespaced_service(namespace, service("payments"))
    kube.release_crashing("payments", "registry.example.com/payments:1.9")

    asked = run_plugin(
        lab.kubeconfig_admin, "ask", "deploy/checkout", "why is checkout failing?", "-n", namespace, "--wait"
    )
    assert asked.returncode == 0, asked.stderr
    created = re.search(
        r"investigation\.inquest\.dev/(ask-checkout-[a-z0-9]{5}) created in namespace (\S+)", asked.stderr
    )
    assert created is not None, asked.stderr
    name = created[1]
    assert created[2] == namespace
    assert "waiting for inquest to answer" in asked.stderr
    report = asked.stdout
    assert f"Investigation {namespace}/{name}  target Deployment/checkout" in report
    assert "Question: why is checkout failing?" in report
    assert "Verdict:  RootCauseIdentified" in report
    assert f"Root cause: Deployment/{namespace}/payments (BadRollout" in report
    for section in ("Findings", "Evidence timeline", "Dependency path", "Unknowns", "Rounds"):
        assert f"\n{section}\n" in report, section
    path = f"Deployment/{namespace}/checkout → Service/{namespace}/payments → Deployment/{namespace}/payments"
    assert path in " ".join(report.split())  # long lab namespace names wrap the line
    timeline = report.split("\nEvidence timeline\n")[1].split("\n\n")[0].splitlines()[1:]
    stamps = [line[:20] for line in timeline if re.match(r"\d{4}-\d{2}-\d{2} ", line)]
    assert stamps, timeline
    assert stamps == sorted(stamps), timeline

    shown = run_plugin(lab.kubeconfig_admin, "show", name, "-n", namespace)
    assert shown.returncode == 0, shown.stderr
    assert "Verdict:  RootCauseIdentified" in shown.stdout
    assert "BadRollout" in shown.stdout

    followed = run_plugin(
        lab.kubeconfig_admin,
        "followup",
        name,
        "-n",
        namespace,
        "--context",
        "we released payments 1.9 just before",
        "--hypothesis",
        "node-c",
    )
    assert followed.returncode == 0, followed.stderr
    assert f"investigation.inquest.dev/{name} updated (generation 2)" in followed.stderr
    assert f"Round for generation 2 of {namespace}/{name}:" in followed.stdout
    assert re.search(r'(RuledOut|Supported|Unknown)\s+"node-c"', followed.stdout), followed.stdout
    found = kube.custom.get_namespaced_custom_object("inquest.dev", "v1alpha1", namespace, "investigations", name)
    assert found["spec"]["context"] == ["we released payments 1.9 just before"]
    assert [entry["generation"] for entry in found["status"]["rounds"]] == [1, 2]

    listed = run_plugin(lab.kubeconfig_admin, "list", "-n", namespace)
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.strip().splitlines()
    assert header.split()[:3] == ["NAME", "TARGET", "STATUS"]
    cells = rows[0].split()
    assert cells[:5] == [name, "Deployment/checkout", "RootCauseIdentified", "payments", "BadRollout"], rows
    assert re.fullmatch(r"\d+%", cells[5])
    assert cells[6] == "2"  # rounds
    everywhere = run_plugin(lab.kubeconfig_admin, "list", "-A")
    assert everywhere.returncode == 0
    assert everywhere.stdout.splitlines()[0].split()[0] == "NAMESPACE"
    assert any(line.split()[:2] == [namespace, name] for line in everywhere.stdout.splitlines())


def test_no_answer_for_a_missing_investigation_is_one_line(lab: cluster.Lab, kube: Cluster) -> None:
    completed = run_plugin(lab.kubeconfig_admin, "show", "does-not-exist", "-n", kube.namespace)
    assert_one_line_error(completed, f'investigation "does-not-exist" not found in namespace "{kube.namespace}"')


def test_no_cluster_reachable_is_one_line(tmp_path: Path, lab: cluster.Lab) -> None:
    # The lab's own CA and a real token, but a port nothing listens on.
    port = procs.free_port()
    config = json.loads(lab.kubeconfig_admin.read_text())
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{port}"
    closed = tmp_path / "kubeconfig-closed"
    closed.write_text(json.dumps(config))
    completed = run_plugin(closed, "list", "-n", "default")
    assert_one_line_error(completed, f"cannot reach the Kubernetes API server at https://127.0.0.1:{port}")


def test_forbidden_is_one_line(tmp_path: Path, lab: cluster.Lab, kube: Cluster) -> None:
    """A real identity with no RBAC: a ServiceAccount's token from the TokenRequest API. (The operator's identity
    may now create Investigations, for the intake, so it cannot serve as the forbidden one.)"""
    namespace = kube.namespace
    kube.core.create_namespaced_service_account(namespace, {"metadata": {"name": "nobody"}})
    request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=600))
    token = kube.core.create_namespaced_service_account_token("nobody", namespace, request).status.token
    config = json.loads(lab.kubeconfig_admin.read_text())
    config["users"] = [{"name": "nobody", "user": {"token": token}}]
    config["contexts"][0]["context"]["user"] = "nobody"
    nobody = tmp_path / "kubeconfig-nobody"
    nobody.write_text(json.dumps(config))

    listed = run_plugin(nobody, "list", "-n", namespace)
    assert_one_line_error(
        listed,
        f'forbidden: investigations.inquest.dev is forbidden: User "system:serviceaccount:{namespace}:nobody" '
        f'cannot list resource "investigations" in API group "inquest.dev" in the namespace "{namespace}"',
    )
    asked = run_plugin(nobody, "ask", "deploy/web", "-n", namespace)
    assert_one_line_error(asked, 'cannot create resource "investigations"')


def test_crd_not_installed_is_one_line(lab: cluster.Lab) -> None:
    """A second, fresh lab, where nobody installed the Investigation CRD."""
    name = f"plugin-nocrd-{os.getpid()}"
    bare = cluster.up(name)
    try:
        for arguments in (("list", "-n", "default"), ("show", "anything", "-n", "default"), ("ask", "-n", "default")):
            completed = run_plugin(bare.kubeconfig_admin, *arguments)
            assert_one_line_error(completed, "the Investigation API (investigations.inquest.dev) is not installed")
    finally:
        cluster.down(name)
