"""The lab's kubelet simulation (kwok Stages): healthy pods and nodes, and every failure mode the
`sim.inquest.dev/*` annotations select, checked through the API like an operator would see them."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from inquest.lab import cluster, kwok

pytestmark = pytest.mark.lab

T = TypeVar("T")
POLL_SECONDS = 0.5
TIMEOUT_SECONDS = 30.0


def wait_for(predicate: Callable[[], T | None], what: str, timeout: float = TIMEOUT_SECONDS) -> T:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = predicate()
        except (AttributeError, IndexError, TypeError, KeyError) as error:  # status not filled in yet
            result, last_error = None, error
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last error: {last_error})")
        time.sleep(POLL_SECONDS)


def deployment(
    name: str,
    annotations: dict[str, str] | None = None,
    containers: tuple[str, ...] = ("app",),
    image: str = "registry.example/shop/web:1.4.2",
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}, "annotations": annotations or {}},
                "spec": {"containers": [{"name": container, "image": image} for container in containers]},
            },
        },
    }


class Cluster:
    """The few API calls these tests make, as the lab's admin."""

    def __init__(self, api: Any, namespace: str) -> None:
        # The client's models are typed with every field optional; these tests read them as Any.
        self.core: Any = client.CoreV1Api(api)
        self.apps: Any = client.AppsV1Api(api)
        self.batch: Any = client.BatchV1Api(api)
        self.namespace = namespace

    def deploy(self, name: str, annotations: dict[str, str] | None = None, **kwargs: Any) -> None:
        self.apps.create_namespaced_deployment(self.namespace, deployment(name, annotations, **kwargs))

    def pods(self, app: str) -> list[Any]:
        items: list[Any] = self.core.list_namespaced_pod(self.namespace, label_selector=f"app={app}").items
        return items

    def pod_where(self, app: str, check: Callable[[Any], bool], what: str) -> Any:
        return wait_for(lambda: next((pod for pod in self.pods(app) if check(pod)), None), f"{app}: {what}")

    def events(self, pod: Any) -> list[Any]:
        items: list[Any] = self.core.list_namespaced_event(
            self.namespace, field_selector=f"involvedObject.name={pod.metadata.name}"
        ).items
        return items

    def event(self, pod: Any, reason: str, event_type: str, message_start: str) -> Any:
        def found() -> Any:
            return next((event for event in self.events(pod) if event.reason == reason), None)

        event = wait_for(found, f"a {reason} event for pod {pod.metadata.name}")
        assert event.type == event_type
        assert event.message.startswith(message_start), event.message
        reference = event.involved_object
        assert (reference.kind, reference.name, reference.namespace, reference.uid) == (
            "Pod",
            pod.metadata.name,
            self.namespace,
            pod.metadata.uid,
        )
        assert event.first_timestamp is not None
        assert event.last_timestamp is not None
        assert event.count >= 1
        return event


@pytest.fixture
def k8s(admin_api: Any, namespace: str) -> Cluster:
    return Cluster(admin_api, namespace)


def condition(pod_or_node: Any, kind: str) -> Any:
    return next((c for c in (pod_or_node.status.conditions or []) if c.type == kind), None)


def is_ready(pod: Any) -> bool:
    ready = condition(pod, "Ready")
    return ready is not None and ready.status == "True"


def container(pod: Any, index: int = 0) -> Any:
    return pod.status.container_statuses[index]


def waiting_reason(pod: Any) -> str | None:
    statuses = pod.status.container_statuses or []
    if not statuses or statuses[0].state.waiting is None:
        return None
    reason: str = statuses[0].state.waiting.reason
    return reason


# ------------------------------------------------------------------------------------------------ healthy pods


def test_pod_becomes_running_and_ready_like_a_kubelet_reports_it(k8s: Cluster) -> None:
    manifest = deployment("web", containers=("app", "sidecar"))
    manifest["spec"]["template"]["spec"]["readinessGates"] = [{"conditionType": "example.com/in-load-balancer"}]
    k8s.apps.create_namespaced_deployment(k8s.namespace, manifest)
    pod = k8s.pod_where("web", is_ready, "Running and Ready")
    assert condition(pod, "example.com/in-load-balancer").status == "True"
    assert pod.status.phase == "Running"
    assert pod.status.pod_ip
    assert pod.status.host_ip == kwok.NODE_IP
    assert [ip.ip for ip in pod.status.pod_ips] == [pod.status.pod_ip]
    assert pod.status.start_time is not None
    for status in pod.status.container_statuses:
        assert status.ready
        assert status.started
        assert status.restart_count == 0
        assert status.state.running.started_at is not None
        assert status.container_id.startswith("containerd://")
    kinds = {c.type: c for c in pod.status.conditions}
    for kind in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"):
        assert kinds[kind].status == "True"
        assert kinds[kind].last_transition_time is not None
    wait_for(
        lambda: (k8s.apps.read_namespaced_deployment("web", k8s.namespace).status.available_replicas or 0) == 1,
        "the Deployment to be available",
    )


def test_job_pod_completes_and_deleted_pods_go_away(k8s: Cluster) -> None:
    k8s.batch.create_namespaced_job(
        k8s.namespace,
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "migrate"},
            "spec": {
                "template": {
                    "metadata": {"labels": {"app": "migrate"}},
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "migrate", "image": "registry.example/migrate:2"}],
                    },
                }
            },
        },
    )
    pod = k8s.pod_where("migrate", lambda p: p.status.phase == "Succeeded", "Succeeded")
    terminated = container(pod).state.terminated
    assert (terminated.exit_code, terminated.reason) == (0, "Completed")
    wait_for(
        lambda: (k8s.batch.read_namespaced_job("migrate", k8s.namespace).status.succeeded or 0) == 1,
        "the Job to succeed",
    )

    k8s.deploy("gone")
    pod = k8s.pod_where("gone", is_ready, "Ready")
    k8s.apps.delete_namespaced_deployment("gone", k8s.namespace)
    wait_for(lambda: not k8s.pods("gone"), "the pods of a deleted Deployment to disappear")


# ------------------------------------------------------------------------------------------------ failing pods


def test_crashloop_restarts_keep_rising_and_a_rollout_brings_it_in(k8s: Cluster) -> None:
    k8s.deploy("api")
    healthy = k8s.pod_where("api", is_ready, "Ready")
    patch = {
        "spec": {
            "template": {
                "metadata": {
                    "annotations": {
                        kwok.POD_FAILURE_ANNOTATION: "crashloop",
                        kwok.EXIT_CODE_ANNOTATION: "3",
                        kwok.INTERVAL_ANNOTATION: "1s",
                    }
                }
            }
        }
    }
    k8s.apps.patch_namespaced_deployment("api", k8s.namespace, patch)

    def crashing(pod: Any) -> bool:
        return bool(pod.metadata.name != healthy.metadata.name and container(pod).restart_count >= 2)

    pod = k8s.pod_where("api", crashing, "a new pod restarted twice")
    status = container(pod)
    assert not status.ready
    assert not status.started
    assert not is_ready(pod)
    assert pod.status.phase == "Running"
    assert status.state.waiting.reason == "CrashLoopBackOff"
    assert pod.metadata.name in status.state.waiting.message
    assert (status.last_state.terminated.exit_code, status.last_state.terminated.reason) == (3, "Error")
    assert status.last_state.terminated.finished_at is not None
    event = k8s.event(pod, "BackOff", "Warning", "Back-off restarting failed container")
    assert event.source.component == "kwok_controller"
    # The old pod keeps serving: the rollout is stuck, as with a real crashing release.
    assert any(p.metadata.name == healthy.metadata.name and is_ready(p) for p in k8s.pods("api"))
    before = container(pod).restart_count
    k8s.pod_where(
        "api",
        lambda p: p.metadata.name == pod.metadata.name and container(p).restart_count > before,
        "restartCount to keep rising",
    )


def test_oomkilled_restarts_with_exit_code_137(k8s: Cluster) -> None:
    k8s.deploy("worker", {kwok.POD_FAILURE_ANNOTATION: "oomkilled"})
    pod = k8s.pod_where("worker", lambda p: container(p).restart_count >= 1, "a restart")
    terminated = container(pod).last_state.terminated
    assert (terminated.exit_code, terminated.reason) == (137, "OOMKilled")
    assert waiting_reason(pod) == "CrashLoopBackOff"
    assert not is_ready(pod)
    k8s.event(pod, "BackOff", "Warning", "Back-off restarting failed container")


def test_imagepull_failure_alternates_errimagepull_and_backoff(k8s: Cluster) -> None:
    image = "registry.example/shop/web:does-not-exist"
    k8s.deploy("web", {kwok.POD_FAILURE_ANNOTATION: "imagepull"}, image=image)
    pod = k8s.pod_where("web", lambda p: waiting_reason(p) == "ErrImagePull", "ErrImagePull")
    assert pod.status.phase == "Pending"
    assert not is_ready(pod)
    assert image in container(pod).state.waiting.message
    k8s.event(pod, "Failed", "Warning", "Failed to pull image")
    pod = k8s.pod_where("web", lambda p: waiting_reason(p) == "ImagePullBackOff", "ImagePullBackOff")
    assert container(pod).state.waiting.message == f'Back-off pulling image "{image}"'
    k8s.event(pod, "BackOff", "Normal", "Back-off pulling image")
    assert container(pod).restart_count == 0


def test_notready_runs_but_never_becomes_ready(k8s: Cluster) -> None:
    k8s.deploy("web", {kwok.POD_FAILURE_ANNOTATION: "notready"})
    pod = k8s.pod_where("web", lambda p: p.status.phase == "Running", "Running")
    status = container(pod)
    assert status.started
    assert not status.ready
    assert status.state.running is not None
    ready = condition(pod, "Ready")
    assert (ready.status, ready.reason) == ("False", "ContainersNotReady")
    first = k8s.event(pod, "Unhealthy", "Warning", "Readiness probe failed: ")
    wait_for(
        lambda: any(e.reason == "Unhealthy" and e.count > first.count for e in k8s.events(pod)),
        "the readiness probe to keep failing",
    )
    assert not is_ready(k8s.pods("web")[0])


def test_livenessfail_kills_and_restarts_the_container(k8s: Cluster) -> None:
    k8s.deploy("web", {kwok.POD_FAILURE_ANNOTATION: "livenessfail", kwok.INTERVAL_ANNOTATION: "1s"})
    pod = k8s.pod_where("web", lambda p: container(p).restart_count >= 2, "two restarts")
    terminated = container(pod).last_state.terminated
    assert terminated.exit_code == 137
    assert pod.status.phase == "Running"
    k8s.event(pod, "Unhealthy", "Warning", "Liveness probe failed: ")
    k8s.event(pod, "Killing", "Normal", "Container failed liveness probe, will be restarted")


def test_containercreating_is_stuck_pending_on_a_volume(k8s: Cluster) -> None:
    k8s.deploy("web", {kwok.POD_FAILURE_ANNOTATION: "containercreating"})
    pod = k8s.pod_where("web", lambda p: waiting_reason(p) == "ContainerCreating", "ContainerCreating")
    assert pod.status.phase == "Pending"
    assert not pod.status.pod_ip
    assert not is_ready(pod)
    assert condition(pod, "PodReadyToStartContainers").status == "False"
    k8s.event(pod, "FailedMount", "Warning", "MountVolume.SetUp failed for volume ")


def test_removing_the_annotation_heals_a_pod(k8s: Cluster) -> None:
    k8s.core.create_namespaced_pod(
        k8s.namespace,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "flaky",
                "labels": {"app": "flaky"},
                "annotations": {kwok.POD_FAILURE_ANNOTATION: "crashloop"},
            },
            "spec": {"containers": [{"name": "app", "image": "registry.example/flaky:1"}]},
        },
    )
    k8s.pod_where("flaky", lambda p: container(p).restart_count >= 1, "a restart")
    k8s.core.patch_namespaced_pod(
        "flaky", k8s.namespace, {"metadata": {"annotations": {kwok.POD_FAILURE_ANNOTATION: None}}}
    )
    pod = k8s.pod_where("flaky", is_ready, "Ready again")
    assert container(pod).restart_count >= 1  # history is kept
    assert container(pod).state.running is not None


# ------------------------------------------------------------------------------------------------ nodes


@pytest.fixture
def sim_node(admin_api: Any) -> Iterator[str]:
    """A node of its own (tainted so no other test's pods land there), removed afterwards."""
    core: Any = client.CoreV1Api(admin_api)
    name = f"sim-{secrets.token_hex(3)}"
    manifest = kwok.node_manifest(name)
    manifest["spec"]["taints"] = [{"key": "inquest.dev/test-node", "value": name, "effect": "NoSchedule"}]
    core.create_node(manifest)
    try:
        wait_for(lambda: node_condition_is(core, name, "Ready", "True"), f"node {name} Ready")
        yield name
    finally:
        try:
            core.delete_node(name)
        except ApiException as error:
            if error.status != 404:
                raise


def node_condition_is(core: Any, node: str, kind: str, status: str) -> bool:
    found = condition(core.read_node(node), kind)
    return found is not None and found.status == status


def node_event(core: Any, node: str, reason: str) -> Any:
    def found() -> Any:
        events = core.list_namespaced_event("default", field_selector=f"involvedObject.name={node}").items
        return next((event for event in events if event.reason == reason), None)

    event = wait_for(found, f"a {reason} event for node {node}")
    assert event.involved_object.kind == "Node"
    assert event.last_timestamp is not None
    return event


def annotate_node(core: Any, node: str, value: str | None) -> None:
    core.patch_node(node, {"metadata": {"annotations": {kwok.NODE_CONDITION_ANNOTATION: value}}})


def test_node_manifest_keeps_its_status_and_needs_no_toleration(admin_api: Any) -> None:
    node: Any = client.CoreV1Api(admin_api).read_node(cluster.NODE_NAMES[0])
    assert not node.spec.taints
    assert node.metadata.annotations[kwok.MANAGED_NODE_ANNOTATION] == kwok.MANAGED_NODE_VALUE
    assert node.metadata.labels["type"] == "kwok"
    assert node.status.capacity["cpu"] == "64"
    assert node.status.allocatable["memory"] == "256Gi"
    assert node.status.node_info.kubelet_version.startswith("v1.")


@pytest.mark.parametrize(
    ("mode", "kind", "reason", "event"),
    [
        ("diskpressure", "DiskPressure", "KubeletHasDiskPressure", "NodeHasDiskPressure"),
        ("memorypressure", "MemoryPressure", "KubeletHasInsufficientMemory", "NodeHasInsufficientMemory"),
    ],
)
def test_node_pressure_comes_and_goes(
    admin_api: Any, sim_node: str, mode: str, kind: str, reason: str, event: str
) -> None:
    core: Any = client.CoreV1Api(admin_api)
    annotate_node(core, sim_node, mode)
    wait_for(lambda: node_condition_is(core, sim_node, kind, "True"), f"{kind} True")
    assert condition(core.read_node(sim_node), kind).reason == reason
    assert node_condition_is(core, sim_node, "Ready", "True")
    node_event(core, sim_node, event)
    annotate_node(core, sim_node, None)
    wait_for(lambda: node_condition_is(core, sim_node, kind, "False"), f"{kind} False again")


def test_node_notready_and_back(admin_api: Any, sim_node: str) -> None:
    core: Any = client.CoreV1Api(admin_api)
    annotate_node(core, sim_node, "notready")
    wait_for(lambda: node_condition_is(core, sim_node, "Ready", "False"), "Ready False")
    ready = condition(core.read_node(sim_node), "Ready")
    assert ready.reason == "KubeletNotReady"
    assert ready.last_heartbeat_time is not None
    event = node_event(core, sim_node, "NodeNotReady")
    assert event.type == "Normal"
    wait_for(
        lambda: any(
            (t.key, t.effect) == ("node.kubernetes.io/not-ready", "NoExecute")
            for t in (core.read_node(sim_node).spec.taints or [])
        ),
        "kube-controller-manager's not-ready NoExecute taint",
    )
    annotate_node(core, sim_node, None)
    wait_for(lambda: node_condition_is(core, sim_node, "Ready", "True"), "Ready True again")
    node_event(core, sim_node, "NodeReady")
