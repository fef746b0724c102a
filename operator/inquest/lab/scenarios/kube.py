"""Generic Kubernetes access for scenarios: any manifest by apiVersion and kind, any object by kind and name.

Uses the official client's DynamicClient (discovery once, then plain REST), as the lab's admin.
"""

from __future__ import annotations

import threading
from typing import Any

from kubernetes import client
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError, ResourceNotUniqueError

from inquest.clients.kube import api_client_from_kubeconfig
from inquest.lab.cluster import Lab

# Kinds named without an apiVersion in fault steps resolve here first: some kinds exist in two groups.
PREFERRED_API_VERSIONS = {
    "Deployment": "apps/v1",
    "StatefulSet": "apps/v1",
    "DaemonSet": "apps/v1",
    "ReplicaSet": "apps/v1",
    "Event": "v1",
    "Ingress": "networking.k8s.io/v1",
    "NetworkPolicy": "networking.k8s.io/v1",
    "HorizontalPodAutoscaler": "autoscaling/v2",
    "Job": "batch/v1",
    "CronJob": "batch/v1",
    "StorageClass": "storage.k8s.io/v1",
    "EndpointSlice": "discovery.k8s.io/v1",
    "PodDisruptionBudget": "policy/v1",
}
STRATEGIC = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


class ScenarioKubeError(Exception):
    pass


class ScenarioKube:
    """The admin's view of the lab for scenario steps; safe to share between threads."""

    def __init__(self, lab: Lab, pool_size: int = 32) -> None:
        self.api_client = api_client_from_kubeconfig(str(lab.kubeconfig_admin), pool_size)
        self.dynamic = DynamicClient(self.api_client)  # type: ignore[no-untyped-call]
        self.core = client.CoreV1Api(self.api_client)
        self.custom = client.CustomObjectsApi(self.api_client)
        self._lock = threading.Lock()
        self._resources: dict[tuple[str | None, str], Any] = {}

    def close(self) -> None:
        self.api_client.close()

    def resource(self, kind: str, api_version: str | None = None) -> Any:
        key = (api_version, kind)
        with self._lock:
            known = self._resources.get(key)
            if known is not None:
                return known
            version = api_version or PREFERRED_API_VERSIONS.get(kind)
            try:
                found = (
                    self.dynamic.resources.get(api_version=version, kind=kind)
                    if version
                    else self.dynamic.resources.get(kind=kind)
                )
            except ResourceNotUniqueError:
                raise ScenarioKubeError(f"kind {kind} exists in several API groups: give an apiVersion") from None
            except ResourceNotFoundError:
                raise ScenarioKubeError(f"kind {kind} ({version or 'any version'}) is not served by the lab") from None
            self._resources[key] = found
            return found

    def create(self, manifest: dict[str, Any], namespace: str) -> tuple[str, str | None, str]:
        """Creates a manifest (namespaced kinds into `namespace`); returns (kind, namespace or None, name)."""
        resource = self.resource(manifest["kind"], manifest["apiVersion"])
        if resource.namespaced:
            manifest = {**manifest, "metadata": {**manifest["metadata"], "namespace": namespace}}
            resource.create(body=manifest, namespace=namespace)
            return manifest["kind"], namespace, manifest["metadata"]["name"]
        resource.create(body=manifest)
        return manifest["kind"], None, manifest["metadata"]["name"]

    def patch(self, kind: str, name: str, namespace: str, body: Any, content_type: str) -> None:
        resource = self.resource(kind)
        target = namespace if resource.namespaced else None
        resource.patch(body=body, name=name, namespace=target, content_type=content_type)

    def delete(self, kind: str, name: str, namespace: str | None) -> bool:
        resource = self.resource(kind)
        try:
            resource.delete(name=name, namespace=namespace if resource.namespaced else None)
        except NotFoundError:
            return False
        return True

    def names_matching(self, kind: str, namespace: str, selector: dict[str, str]) -> list[str]:
        resource = self.resource(kind)
        label_selector = ",".join(f"{key}={value}" for key, value in sorted(selector.items()))
        found = resource.get(namespace=namespace if resource.namespaced else None, label_selector=label_selector)
        return sorted(item.metadata.name for item in found.items)

    def list_items(self, kind: str, namespace: str) -> list[dict[str, Any]]:
        resource = self.resource(kind)
        items: list[dict[str, Any]] = resource.get(namespace=namespace).to_dict()["items"]
        return items
