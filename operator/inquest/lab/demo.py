"""`make demo`: the lab plus the shop application (web -> gateway -> checkout -> payments / cart -> redis)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from inquest.lab import build, cluster
from inquest.lab.errors import LabError

SHOP_MANIFEST = Path(__file__).parent / "manifests" / "shop.yaml"
SHOP_NAMESPACE = "shop"


def kubectl(lab: cluster.Lab, *arguments: str, input_text: str | None = None) -> str:
    command = [str(build.locate("kubectl")), f"--kubeconfig={lab.kubeconfig_admin}", *arguments]
    completed = subprocess.run(command, input=input_text, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise LabError("kubectl", f"failed: {' '.join(command)}", completed.stderr)
    return completed.stdout


def deploy_shop(lab: cluster.Lab, namespace: str = SHOP_NAMESPACE) -> None:
    if not cluster.exists(lab, f"/api/v1/namespaces/{namespace}"):
        kubectl(lab, "create", "namespace", namespace)
    cluster.wait_for_default_service_account(lab, namespace)
    kubectl(lab, "apply", "-n", namespace, "-f", str(SHOP_MANIFEST))
    kubectl(lab, "wait", "-n", namespace, "--for=condition=Available", "deployment", "--all", "--timeout=60s")


def run(name: str) -> None:
    lab = cluster.up(name)
    cluster.progress(f"deploying the shop application into namespace {SHOP_NAMESPACE!r}")
    deploy_shop(lab)
    print(kubectl(lab, "get", "deployments,pods,services,ingress", "-n", SHOP_NAMESPACE, "-o", "wide"))
    print("The lab keeps running. Use it with:")
    print(f'  eval "$(.venv/bin/python -m inquest.lab env --name {name})"')
    print(f"  kubectl get pods -n {SHOP_NAMESPACE}")
    print(f"Stop it with: make lab-down LAB={name}")
