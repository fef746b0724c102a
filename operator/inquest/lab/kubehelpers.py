"""Thin helpers over the official client, for lab tests and the demo: manifests, waits, Investigations."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, cast

from kubernetes import client

from inquest.api import models
from inquest.lab.waiting import wait_for

SIM = "sim.inquest.dev"


def deployment(
    name: str,
    replicas: int = 2,
    annotations: dict[str, str] | None = None,
    env: list[dict[str, str]] | None = None,
    **pod: Any,
) -> dict[str, Any]:
    template_meta: dict[str, Any] = {"labels": {"app": name}}
    if annotations:
        template_meta["annotations"] = annotations
    container: dict[str, Any] = {"name": "app", "image": f"registry.example.com/{name}:1.0"}
    if env:
        container["env"] = env
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": template_meta,
                "spec": {"containers": [container], **pod},
            },
        },
    }


def service(name: str, target: str | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": target or name}, "ports": [{"port": 8080, "targetPort": 8080}]},
    }


class Cluster:
    """Thin helpers over the official client, as the admin."""

    def __init__(self, api_client: Any, namespace: str) -> None:
        self.namespace = namespace
        self.apps = client.AppsV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)

    def deploy(self, manifest: dict[str, Any], wait_ready: bool = True) -> None:
        self.apps.create_namespaced_deployment(self.namespace, cast(Any, manifest))
        if wait_ready:
            name, replicas = manifest["metadata"]["name"], manifest["spec"]["replicas"]
            wait_for(lambda: self.ready_replicas(name) == replicas, f"Deployment {name} ready")

    def release_image(self, name: str, version: str) -> datetime:
        """An image-only rollout of Deployment `name` (container `app`): its pods come up Ready as before. Waits for
        the rollout to finish; returns when it was made."""
        image = f"registry.example.com/{name}:{version}"
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}}
        self.apps.patch_namespaced_deployment(name, self.namespace, patch)
        made = datetime.now(UTC)

        def rolled_out() -> bool:
            found: Any = self.apps.read_namespaced_deployment(name, self.namespace)
            status = found.status
            return bool(
                status.observed_generation == found.metadata.generation
                and status.updated_replicas == found.spec.replicas
                and status.ready_replicas == found.spec.replicas
                and (status.replicas or 0) == found.spec.replicas
            )

        wait_for(rolled_out, f"the rollout of {name} {version}")
        return made

    def ready_replicas(self, name: str) -> int:
        status = self.apps.read_namespaced_deployment(name, self.namespace).status
        return (status.ready_replicas or 0) if status is not None else 0

    def release_crashing(self, name: str, image: str, restarts: int = 2) -> None:
        """A rollout of a new image whose pods crash on start; returns once a new pod has restarted `restarts` times."""
        annotations = {f"{SIM}/container": "crashloop", f"{SIM}/interval": "1s"}
        template = {"metadata": {"annotations": annotations}, "spec": {"containers": [{"name": "app", "image": image}]}}
        self.apps.patch_namespaced_deployment(name, self.namespace, {"spec": {"template": template}})
        wait_for(
            lambda: any(
                (status.restart_count or 0) >= restarts
                for pod in self.pods(name)
                for status in (pod.status.container_statuses or [])
            ),
            f"a crash-looping {name} pod",
        )

    def crashing_bare_pod(self, name: str, image: str, restarts: int = 2) -> None:
        """A pod with no owner, Running first, then crash-looping: a crash no rollout or other change precedes."""
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"containers": [{"name": "app", "image": image}]},
        }
        self.core.create_namespaced_pod(self.namespace, cast(Any, pod))
        wait_for(lambda: self._pod_status(name).phase == "Running", f"pod {name} Running")
        annotations = {f"{SIM}/container": "crashloop", f"{SIM}/interval": "1s"}
        self.core.patch_namespaced_pod(name, self.namespace, {"metadata": {"annotations": annotations}})
        wait_for(
            lambda: any(
                (status.restart_count or 0) >= restarts for status in self._pod_status(name).container_statuses or []
            ),
            f"pod {name} restarting",
        )

    def _pod_status(self, name: str) -> Any:
        return self.core.read_namespaced_pod(name, self.namespace).status

    def pods(self, app: str) -> list[Any]:
        return list(self.core.list_namespaced_pod(self.namespace, label_selector=f"app={app}").items)

    def investigate(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        body = {"apiVersion": models.API_VERSION, "kind": models.KIND, "metadata": {"name": name}, "spec": spec}
        self.custom.create_namespaced_custom_object(models.GROUP, models.VERSION, self.namespace, models.PLURAL, body)
        return self.concluded(name, generation=1)

    def concluded(self, name: str, generation: int, timeout: float = 20) -> dict[str, Any]:
        def answered() -> dict[str, Any] | None:
            found = cast(
                dict[str, Any],
                self.custom.get_namespaced_custom_object(
                    models.GROUP, models.VERSION, self.namespace, models.PLURAL, name
                ),
            )
            status = found.get("status") or {}
            return found if status.get("observedGeneration") == generation else None

        return wait_for(answered, f"Investigation {name} generation {generation} concluded", timeout)

    def events_for(self, name: str) -> list[Any]:
        selector = f"involvedObject.kind=Investigation,involvedObject.name={name}"
        events = self.core.list_namespaced_event(self.namespace, field_selector=selector).items
        return sorted(events, key=lambda event: event.first_timestamp)


def explain(found: dict[str, Any]) -> str:
    """An answer, compact, for assertion messages."""
    status = found["status"]
    return json.dumps(
        {
            "reason": concluded_reason(found),
            "summary": status.get("summary"),
            "findings": [
                {
                    "ref": finding["ref"],
                    "category": finding["category"],
                    "confidence": finding["confidence"],
                    "path": finding.get("path"),
                    "evidence": [
                        f"{item['source']}: {item['detail']}" + (" [query]" if item.get("query") else "")
                        for item in finding.get("evidence", [])
                    ],
                }
                for finding in status.get("findings", [])
            ],
            "unknowns": status.get("unknowns"),
            "hypotheses": status.get("hypotheses"),
            "durationMillis": status.get("durationMillis"),
        },
        indent=1,
    )


def concluded_reason(investigation: dict[str, Any]) -> str:
    conditions = investigation["status"]["conditions"]
    return str(next(c for c in conditions if c["type"] == "Concluded")["reason"])
