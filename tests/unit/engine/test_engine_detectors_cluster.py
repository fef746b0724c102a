from __future__ import annotations

from engine_builders import (
    Obj,
    at,
    change,
    context,
    deployment,
    event,
    hpa,
    journal_of,
    node,
    pod,
    pvc,
    ref,
    replica_set,
    shop_app,
    signal,
    status,
    ts,
)

from inquest.categories import Category
from inquest.engine.candidates import Candidate
from inquest.engine.detectors.capacity import detect_capacity
from inquest.engine.detectors.node import detect_node_failure
from inquest.engine.detectors.scheduling import detect_scheduling, detect_storage


def _only(candidates: list[Candidate]) -> Candidate:
    assert len(candidates) == 1, [c.summary for c in candidates]
    return candidates[0]


def _pending_pod(name: str = "api-aa111-p0", created: float = 5, volumes: list[Obj] | None = None) -> Obj:
    return pod(
        name,
        labels={"app": "api"},
        owner=("ReplicaSet", "api-aa111"),
        node="",
        phase="Pending",
        statuses=[],
        created=created,
        volumes=volumes or [],
    )


def _api() -> list[Obj]:
    return [deployment("api", ready=0), replica_set("api-aa111", "api", "1", -100)]


def test_unschedulable_pods() -> None:
    objects = [
        *_api(),
        _pending_pod(),
        event(
            "Pod",
            "api-aa111-p0",
            "FailedScheduling",
            "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: "
            "3 No preemption victims found for incoming pod.",
            5,
            25,
            count=9,
        ),
    ]
    candidate = _only(detect_scheduling(context(objects)))
    assert candidate.category == Category.SCHEDULING
    assert candidate.ref == ref("Deployment", "api")
    assert candidate.summary.endswith("(3 Insufficient cpu)")
    assert candidate.symptom_onset == at(5)


def test_cordon_in_window_makes_the_node_the_cause() -> None:
    journal = journal_of()
    change(journal, node("node-a"), node("node-a", taints=[{"key": "maintenance", "effect": "NoSchedule"}]), 4)
    message = "0/1 nodes are available: 1 node(s) had untolerated taint {maintenance: }."
    objects = [*_api(), _pending_pod(), event("Pod", "api-aa111-p0", "FailedScheduling", message, 5)]
    candidate = _only(detect_scheduling(context(objects, journal)))
    assert candidate.ref == ref("Node", "node-a")
    assert candidate.change is not None


def test_a_scale_up_that_finds_no_room_is_the_trigger() -> None:
    journal = journal_of()
    change(journal, deployment("api", replicas=2), deployment("api", replicas=6), 4)
    change(journal, deployment("api", replicas=6), deployment("api", replicas=8), 40)  # after the onset: not it
    message = "0/3 nodes are available: 3 Insufficient cpu."
    objects = [*_api(), _pending_pod(), event("Pod", "api-aa111-p0", "FailedScheduling", message, 4.2, 25)]
    candidate = _only(detect_scheduling(context(objects, journal, end=45)))
    assert candidate.ref == ref("Deployment", "api")
    assert candidate.change is not None
    assert candidate.change.time == at(4)
    assert candidate.onset_time == at(4)
    assert "was scaled (replicas 2 -> 6 at 10:04:00Z); then 1 pod(s) unschedulable" in candidate.summary
    assert candidate.base_score == 55
    # Pods that wait for a taint or a selector do not wait for room: a scale-up is no trigger for them.
    tainted = "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."
    objects = [*_api(), _pending_pod(), event("Pod", "api-aa111-p0", "FailedScheduling", tainted, 4.2, 25)]
    assert _only(detect_scheduling(context(objects, journal, end=45))).change is None


def test_scheduling_noise_outside_window() -> None:
    objects = [
        *_api(),
        pod("api-aa111-p0", labels={"app": "api"}, owner=("ReplicaSet", "api-aa111")),
        event("Pod", "api-aa111-p0", "FailedScheduling", "0/3 nodes are available", -300, -290),
    ]
    assert detect_scheduling(context(objects)) == []


def test_unbound_claim_is_storage_not_scheduling() -> None:
    volumes = [{"name": "data", "persistentVolumeClaim": {"claimName": "api-data"}}]
    objects = [
        *_api(),
        _pending_pod(volumes=volumes),
        pvc("api-data", phase="Pending", storage_class="fast"),
        event("Pod", "api-aa111-p0", "FailedScheduling", "pod has unbound immediate PersistentVolumeClaims", 5),
        event(
            "PersistentVolumeClaim", "api-data", "ProvisioningFailed", 'storageclass.storage.k8s.io "fast" not found', 4
        ),
    ]
    ctx = context(objects)
    assert detect_scheduling(ctx) == []
    candidate = _only(detect_storage(ctx))
    assert candidate.category == Category.STORAGE
    assert candidate.ref == ref("PersistentVolumeClaim", "api-data")
    assert "phase Pending" in candidate.summary
    assert candidate.onset_time == at(4)


def test_mount_failure_is_storage() -> None:
    volumes = [{"name": "data", "persistentVolumeClaim": {"claimName": "api-data"}}]
    objects = [
        *_api(),
        pod(
            "api-aa111-p0",
            labels={"app": "api"},
            owner=("ReplicaSet", "api-aa111"),
            statuses=[status(ready=False, waiting=("ContainerCreating", ""))],
            volumes=volumes,
        ),
        pvc("api-data"),
        event("Pod", "api-aa111-p0", "FailedAttachVolume", "AttachVolume.Attach failed for volume pvc-123", 6),
    ]
    assert _only(detect_storage(context(objects))).ref == ref("PersistentVolumeClaim", "api-data")


def test_bound_claims_are_not_storage_problems() -> None:
    assert detect_storage(context([*shop_app("api"), pvc("api-data")])) == []


def test_node_not_ready_explains_its_pods() -> None:
    objects = [
        *shop_app("web", node_name="node-b", pod_statuses=[status(ready=False), status(ready=False)]),
        node("node-b", ready="Unknown", ready_since=7),
        node("node-a"),
        event("Node", "node-b", "NodeNotReady", "Node node-b status is now: NodeNotReady", 7, event_type="Normal"),
    ]
    candidate = _only(detect_node_failure(context(objects)))
    assert candidate.category == Category.NODE_FAILURE
    assert candidate.ref == ref("Node", "node-b")
    assert candidate.onset_time == at(7)
    assert ref("Pod", "web-abc12-p0") in candidate.explains
    assert ref("Deployment", "web") in candidate.explains
    assert candidate.base_score == 60


def test_node_pressure() -> None:
    candidate = _only(detect_node_failure(context([node("node-b", pressure={"DiskPressure": 3})])))
    assert "under pressure" in candidate.summary
    assert candidate.base_score == 45


def test_healthy_or_cordoned_nodes_are_not_failures() -> None:
    objects = [node("node-a"), node("node-b", unschedulable=True)]
    objects.append(
        event(
            "Node",
            "node-b",
            "NodeNotSchedulable",
            "Node node-b status is now: NodeNotSchedulable",
            5,
            event_type="Normal",
        )
    )
    assert detect_node_failure(context(objects)) == []


def test_node_that_failed_long_ago_in_a_past_window_is_not_reported() -> None:
    assert detect_node_failure(context([node("node-b", ready=False, ready_since=-500)], start=0, end=30, now=300)) == []


def test_node_down_since_before_the_window_is_flagged() -> None:
    candidate = _only(detect_node_failure(context([node("node-b", ready=False, ready_since=-500)])))
    assert "before the window" in candidate.counter_evidence[0].detail


def _limited(since: float = 6) -> list[Obj]:
    return [
        {
            "type": "ScalingLimited",
            "status": "True",
            "reason": "TooManyReplicas",
            "message": "the desired replica count is more than the maximum replica count",
            "lastTransitionTime": ts(since),
        }
    ]


def test_hpa_pinned_at_maximum_with_latency() -> None:
    objects = [*shop_app("web"), hpa("web", "web", maximum=2, current=2, conditions=_limited())]
    metrics = [signal(ref("Service", "web"), "latency", 7), signal(ref("Deployment", "web"), "cpu_saturation", 6.5)]
    candidate = _only(detect_capacity(context(objects, metrics=metrics)))
    assert candidate.category == Category.CAPACITY
    assert candidate.ref == ref("Deployment", "web")
    assert "pinned at its HPA maximum (2/2 replicas)" in candidate.summary
    assert candidate.base_score == 50
    assert candidate.has_failure_evidence


def test_lowered_hpa_maximum_is_the_change() -> None:
    journal = journal_of()
    change(journal, hpa("web", "web", maximum=6), hpa("web", "web", maximum=2), 5)
    objects = [*shop_app("web"), hpa("web", "web", maximum=2, current=2, conditions=_limited())]
    candidate = _only(detect_capacity(context(objects, journal, metrics=[signal(ref("Service", "web"), "latency", 7)])))
    assert candidate.ref == ref("HorizontalPodAutoscaler", "web")
    assert candidate.change is not None
    assert candidate.base_score == 60


def test_hpa_with_room_is_not_capacity() -> None:
    assert detect_capacity(context([*shop_app("web"), hpa("web", "web", maximum=5, current=2)])) == []


def test_traffic_growth_with_saturation() -> None:
    metrics = [signal(ref("Deployment", "web"), "request_rate", 5, 4.0), signal(ref("Deployment", "web"), "latency", 6)]
    candidate = _only(detect_capacity(context(shop_app("web"), metrics=metrics)))
    assert "traffic grew x4" in candidate.summary
    assert detect_capacity(context(shop_app("web"), metrics=metrics[:1])) == []
