"""What inquest watches, and the read-only ClusterRole that follows from it: one list, used by both.

python -m inquest.rbac            # print the ClusterRole
python -m inquest.rbac --write    # regenerate crds/operator-rbac.yaml
python -m inquest.rbac --check    # exit 1 with a diff when the committed file drifts
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from inquest.api import models

RBAC_PATH = Path(__file__).resolve().parents[2] / "crds" / "operator-rbac.yaml"
CHART_COPY = RBAC_PATH.parents[1] / "helm" / "inquest" / "files" / RBAC_PATH.name
CLUSTER_ROLE_NAME = "inquest-operator"
READ_VERBS = ("get", "list", "watch")


@dataclass(frozen=True)
class WatchedResource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    # Read as PartialObjectMetadata: the API server sends names, labels and annotations, never the data.
    metadata_only: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


WATCHED_RESOURCES: tuple[WatchedResource, ...] = (
    WatchedResource("", "v1", "pods", "Pod"),
    WatchedResource("", "v1", "events", "Event"),
    WatchedResource("events.k8s.io", "v1", "events", "Event"),
    WatchedResource("apps", "v1", "deployments", "Deployment"),
    WatchedResource("apps", "v1", "replicasets", "ReplicaSet"),
    WatchedResource("apps", "v1", "statefulsets", "StatefulSet"),
    WatchedResource("apps", "v1", "daemonsets", "DaemonSet"),
    WatchedResource("batch", "v1", "jobs", "Job"),
    WatchedResource("batch", "v1", "cronjobs", "CronJob"),
    WatchedResource("", "v1", "services", "Service"),
    WatchedResource("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice"),
    WatchedResource("networking.k8s.io", "v1", "ingresses", "Ingress"),
    WatchedResource("", "v1", "nodes", "Node", namespaced=False),
    WatchedResource("", "v1", "configmaps", "ConfigMap"),
    WatchedResource("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim"),
    WatchedResource("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler"),
    WatchedResource("", "v1", "resourcequotas", "ResourceQuota"),
    WatchedResource("", "v1", "limitranges", "LimitRange"),
    WatchedResource("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy"),
)
# Off by default; when enabled, inquest watches Secrets as PartialObjectMetadata: the API server never sends values.
SECRETS = WatchedResource("", "v1", "secrets", "Secret", metadata_only=True)


def cluster_role(watch_secrets: bool = False) -> dict[str, Any]:
    watched = [*WATCHED_RESOURCES, SECRETS] if watch_secrets else list(WATCHED_RESOURCES)
    plurals_by_group: dict[str, set[str]] = defaultdict(set)
    for resource in watched:
        plurals_by_group[resource.group].add(resource.plural)
    rules: list[dict[str, Any]] = [
        {"apiGroups": [group], "resources": sorted(plurals), "verbs": list(READ_VERBS)}
        for group, plurals in sorted(plurals_by_group.items())
    ]
    rules += [
        # With --namespace, kopf lists and watches Namespaces to follow the ones it serves.
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": list(READ_VERBS)},
        # kopf discovers resources, the Investigation CRD included, by watching CRDs.
        {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"], "verbs": list(READ_VERBS)},
        # The Alertmanager intake creates Investigations and patches their spec (a repeat of an alert group).
        {"apiGroups": [models.GROUP], "resources": [models.PLURAL], "verbs": [*READ_VERBS, "create", "patch"]},
        {"apiGroups": [models.GROUP], "resources": [f"{models.PLURAL}/status"], "verbs": ["get", "patch", "update"]},
        {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
    ]
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": CLUSTER_ROLE_NAME, "labels": {"app.kubernetes.io/name": "inquest"}},
        "rules": rules,
    }


def render() -> str:
    header = "# Generated from operator/inquest/rbac.py by `python -m inquest.rbac --write`; do not edit by hand.\n"
    return header + yaml.safe_dump(cluster_role(), sort_keys=False)


def drift(path: Path = RBAC_PATH) -> list[str]:
    current = path.read_text() if path.exists() else ""
    expected = render()
    if current == expected:
        return []
    return list(difflib.unified_diff(current.splitlines(), expected.splitlines(), str(path), "generated", lineterm=""))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inquest.rbac", description=__doc__)
    parser.add_argument("--write", action="store_true", help=f"write {RBAC_PATH.name}")
    parser.add_argument("--check", action="store_true", help="exit 1 when the committed file drifts")
    arguments = parser.parse_args(argv)
    if arguments.write:
        RBAC_PATH.write_text(render())
        if CHART_COPY.parent.is_dir():
            CHART_COPY.write_text(render())  # the Helm chart ships its own copy (Files.Get)
        return 0
    if arguments.check:
        differences = drift()
        if differences:
            print("\n".join(differences))
            print(f"{RBAC_PATH} drifted from operator/inquest/rbac.py: run `python -m inquest.rbac --write`")
            return 1
        return 0
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
