"""Installs inquest's API and RBAC into a lab and runs the operator there, as its own restricted identity.

The lab applies the same generated files a user applies (crds/), bound to the operator's lab user, so tests
prove the operator works with exactly that RBAC.
"""

from __future__ import annotations

import sys
import urllib.error
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from inquest.lab import procs
from inquest.lab.cluster import OPERATOR_USER, Lab, exists, progress

REPO_ROOT = Path(__file__).resolve().parents[3]
CRD_FILE = REPO_ROOT / "crds" / "investigations.inquest.dev.yaml"
RBAC_FILE = REPO_ROOT / "crds" / "operator-rbac.yaml"
COMPONENT = "operator"
CACHE_WARM = "cache warm:"  # the informers' log line once every watched resource is listed (clients/informer.py)


def install_api(lab: Lab, roles: Sequence[dict[str, Any]] | None = None) -> None:
    """The Investigation CRD, the operator's ClusterRole, and a binding of it to the operator's lab user.

    `roles` (ClusterRole manifests, e.g. the Helm chart's rendered ones) are bound instead of the generated file."""
    crd = yaml.safe_load(CRD_FILE.read_text())
    _apply(lab, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    for role in roles if roles is not None else [yaml.safe_load(RBAC_FILE.read_text())]:
        binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": role["metadata"]["name"]},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role["metadata"]["name"],
            },
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": OPERATOR_USER}],
        }  # fmt: skip
        _apply(lab, "/apis/rbac.authorization.k8s.io/v1/clusterroles", role)
        _apply(lab, "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", binding)


def _apply(lab: Lab, collection: str, manifest: dict[str, Any]) -> None:
    metadata = manifest["metadata"]
    assert isinstance(metadata, dict)
    item = f"{collection}/{metadata['name']}"
    if exists(lab, item):
        current = lab.api("GET", item)
        manifest = {**manifest, "metadata": {**metadata, "resourceVersion": current["metadata"]["resourceVersion"]}}
        lab.api("PUT", item, manifest)
    else:
        try:
            lab.api("POST", collection, manifest)
        except urllib.error.HTTPError as error:
            if error.code != 409:
                raise


def start_operator(
    lab: Lab, *extra_arguments: str, prometheus: bool = True, roles: Sequence[dict[str, Any]] | None = None
) -> procs.ManagedProcess:
    """Runs `python -m inquest run` with the operator's kubeconfig (and the lab's Prometheus unless told
    otherwise); waits until kopf reports itself alive. `roles`: as install_api's."""
    install_api(lab, roles)
    if lab.alive(COMPONENT):
        return lab.processes[COMPONENT]
    port = lab.ports.get("operator-health") or procs.free_port()
    lab.ports["operator-health"] = port
    command = [
        sys.executable, "-m", "inquest", "run",
        f"--kubeconfig={lab.kubeconfig_operator}",
        f"--liveness=http://127.0.0.1:{port}/healthz",
        *([f"--prometheus-url={lab.prometheus_url}"] if prometheus else []),
        *extra_arguments,
    ]  # fmt: skip
    log_path = lab.data_dir / "logs" / "operator.log"
    log_offset = log_path.stat().st_size if log_path.exists() else 0
    process = procs.start(COMPONENT, command, log_path)
    lab.processes[COMPONENT] = process
    lab.save()
    progress(f"operator started (pid {process.pid}); waiting for it to be alive and its cache warm")
    procs.wait_until(process, str(lab.data_dir), lambda: procs.http_ok(f"http://127.0.0.1:{port}/healthz"), 60, "alive")
    # Alive is not enough: objects made while the informers still list are state to the operator, not changes, so
    # a test that releases something right after a restart would see no rollout.
    procs.wait_until(
        process, str(lab.data_dir), lambda: _logged_since(log_path, log_offset, CACHE_WARM), 300, "cache warm"
    )
    return process


def _logged_since(log_path: Path, offset: int, text: str) -> bool:
    with log_path.open("rb") as log:
        log.seek(offset)
        return text.encode() in log.read()


def stop_operator(lab: Lab) -> None:
    lab.stop_component(COMPONENT)


def kill_operator(lab: Lab) -> None:
    """SIGKILL, as the kernel's OOM killer or a node failure would: nothing is flushed or finished."""
    process = lab.processes.get(COMPONENT)
    if process is not None:
        procs.kill(process, str(lab.data_dir))
