"""kwok, run out of cluster: the simulated nodes and kubelets of the lab.

kwok manages only the Nodes annotated `kwok.x-k8s.io/node: fake` (made by `node_manifest`) and the pods bound
to them, with the Stages in `stages/` (loaded with `--config`). Those Stages replace kwok's built-in ones for
Pods and Nodes and add failure modes that tests and demos select with annotations:

* Pods (usually through a Deployment's pod template, so that a rollout can bring a failure in):
  `sim.inquest.dev/container` = one of `POD_FAILURE_MODES`; `sim.inquest.dev/exit-code` (default "1") for
  crashloop and for pods with restartPolicy Never; `sim.inquest.dev/interval` (a Go duration such as "20s";
  default 3-4 s) sets the period of the failure loop (restarts, probe failures, pull retries, mount retries).
  The failure applies to every container of the pod.
* Nodes: `sim.inquest.dev/node` = one of `NODE_CONDITION_MODES`; removing it makes the node healthy again.

These annotation names exist only in the lab package: the operator must never read them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inquest.lab import paths

STAGES_DIR = Path(__file__).resolve().parent / "stages"

MANAGED_NODE_ANNOTATION = "kwok.x-k8s.io/node"
MANAGED_NODE_VALUE = "fake"

POD_FAILURE_ANNOTATION = "sim.inquest.dev/container"
EXIT_CODE_ANNOTATION = "sim.inquest.dev/exit-code"
INTERVAL_ANNOTATION = "sim.inquest.dev/interval"
NODE_CONDITION_ANNOTATION = "sim.inquest.dev/node"

POD_FAILURE_MODES = ("crashloop", "oomkilled", "imagepull", "notready", "livenessfail", "containercreating")
NODE_CONDITION_MODES = ("notready", "diskpressure", "memorypressure")

# kwok's default pod CIDR (10.0.0.1/24) holds only 254 addresses for all nodes together.
POD_CIDR = "10.244.0.1/16"
NODE_IP = "127.0.0.1"


def stage_files(stages_dir: Path) -> list[Path]:
    """The Stage files kwok loads, in a stable order."""
    return sorted(path for path in stages_dir.glob("*.yaml") if path.name != "kustomization.yaml")


def kwok_command(kwok_binary: Path, kubeconfig: Path, server_address: str, stages_dir: Path) -> list[str]:
    """The command line of an out-of-cluster kwok for one lab.

    `server_address` (host:port) is where kwok serves /healthz, /readyz and its kubelet-like API; kwok binds
    nothing else (no --node-port), so labs side by side only need distinct server addresses. Each Stage file
    is passed with its own `--config`: a directory would need a kustomization. kwok also reads
    `~/.kwok/kwok.yaml` first when that file exists; the lab does not create it.
    """
    files = stage_files(stages_dir)
    if not files:
        raise FileNotFoundError(f"no kwok Stage files (*.yaml) in {stages_dir}")
    return [
        str(kwok_binary),
        f"--kubeconfig={kubeconfig}",
        "--manage-all-nodes=false",
        f"--manage-nodes-with-annotation-selector={MANAGED_NODE_ANNOTATION}={MANAGED_NODE_VALUE}",
        f"--node-ip={NODE_IP}",
        f"--cidr={POD_CIDR}",
        f"--server-address={server_address}",
        # No node Leases (kwok's default): a restarted kwok takes the nodes over at once instead of waiting
        # for the previous holder's leases to expire; the heartbeat Stage keeps the nodes Ready.
        "--node-lease-duration-seconds=0",
        *(f"--config={path}" for path in files),
    ]


def healthz_url(server_address: str) -> str:
    """kwok's health endpoint (plain HTTP on --server-address; /readyz and /livez answer the same)."""
    return f"http://{server_address}/healthz"


def node_manifest(name: str, cpu: str = "64", memory: str = "256Gi", pods: str = "1000") -> dict[str, Any]:
    """A fake Node for kwok, without taints so that plain manifests schedule there.

    The API server keeps a Node's status given on create (kubelets register that way), so capacity,
    allocatable, addresses and nodeInfo are set here; kwok's initialize Stage adds conditions and phase.
    """
    resources = {"cpu": cpu, "memory": memory, "pods": pods, "ephemeral-storage": "1Ti"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {
                MANAGED_NODE_ANNOTATION: MANAGED_NODE_VALUE,
                "node.alpha.kubernetes.io/ttl": "0",
            },
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
        "spec": {},
        "status": {
            "capacity": dict(resources),
            "allocatable": dict(resources),
            "addresses": [
                {"type": "InternalIP", "address": NODE_IP},
                {"type": "Hostname", "address": name},
            ],
            # What a real node of the lab's Kubernetes version reports (kwok would say "kwok-v0.7.0").
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "osImage": "Ubuntu 24.04.1 LTS",
                "kernelVersion": "6.8.0-48-generic",
                "containerRuntimeVersion": "containerd://1.7.24",
                "kubeletVersion": paths.KUBERNETES_VERSION,
                "kubeProxyVersion": paths.KUBERNETES_VERSION,
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
            },
        },
    }
