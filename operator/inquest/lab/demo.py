"""`make demo`: the lab, the shop application (web -> gateway -> checkout -> payments / cart -> redis), the
operator running as its own restricted identity, a bad payments release, and an Investigation that explains it."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from inquest.lab import build, cluster, operator
from inquest.lab.errors import LabError
from inquest.lab.waiting import wait_for

SHOP_MANIFEST = Path(__file__).parent / "manifests" / "shop.yaml"
SHOP_NAMESPACE = "shop"
BAD_RELEASE = {
    "spec": {
        "template": {
            "metadata": {"annotations": {"sim.inquest.dev/container": "crashloop", "sim.inquest.dev/interval": "2s"}},
            "spec": {"containers": [{"name": "app", "image": "registry.example.com/shop/payments:1.9.0"}]},
        }
    }
}
INVESTIGATION = """\
apiVersion: inquest.dev/v1alpha1
kind: Investigation
metadata:
  name: checkout-failing
  namespace: shop
spec:
  target: {kind: Deployment, name: checkout}
  question: "why is checkout failing?"
  lookback: 30m
"""


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


def show(lab: cluster.Lab, *arguments: str) -> None:
    print(f"$ kubectl {' '.join(arguments)}")
    print(kubectl(lab, *arguments))


def restarts(lab: cluster.Lab) -> int:
    pods = json.loads(kubectl(lab, "get", "pods", "-n", SHOP_NAMESPACE, "-l", "app=payments", "-o", "json"))
    return max(
        (
            status.get("restartCount", 0)
            for pod in pods["items"]
            for status in pod["status"].get("containerStatuses", [])
        ),
        default=0,
    )


def run(name: str) -> None:
    lab = cluster.up(name)
    cluster.progress(f"[demo 1/5] deploying the shop application into namespace {SHOP_NAMESPACE!r}")
    deploy_shop(lab)
    show(lab, "get", "deployments,services", "-n", SHOP_NAMESPACE)
    cluster.progress("[demo 2/5] starting the operator as its own read-only identity")
    operator.start_operator(lab)
    cluster.progress("[demo 3/5] releasing payments 1.9.0, which crashes on start")
    kubectl(
        lab, "patch", "deployment", "payments", "-n", SHOP_NAMESPACE, "--type=strategic", "-p", json.dumps(BAD_RELEASE)
    )
    wait_for(lambda: restarts(lab) >= 2, "payments to crash-loop", timeout=60)
    show(lab, "get", "pods", "-n", SHOP_NAMESPACE, "-l", "app=payments")
    cluster.progress("[demo 4/5] asking inquest why checkout is failing")
    kubectl(lab, "delete", "investigation", "checkout-failing", "-n", SHOP_NAMESPACE, "--ignore-not-found")
    started = time.monotonic()
    kubectl(lab, "apply", "-f", "-", input_text=INVESTIGATION)
    kubectl(
        lab, "wait", "investigation/checkout-failing", "-n", SHOP_NAMESPACE,
        "--for=jsonpath={.status.observedGeneration}=1", "--timeout=30s",
    )  # fmt: skip
    cluster.progress(f"[demo 5/5] answered in {time.monotonic() - started:.2f}s (including kubectl)")
    show(lab, "get", "investigations", "-n", SHOP_NAMESPACE)
    show(lab, "describe", "investigation", "checkout-failing", "-n", SHOP_NAMESPACE)
    print("The lab and the operator keep running. Use them with:")
    print(f'  eval "$(.venv/bin/python -m inquest.lab env --name {name})"')
    print(f"  kubectl get investigations -n {SHOP_NAMESPACE}")
    print(f"Stop everything with: make lab-down LAB={name}")
