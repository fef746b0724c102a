from __future__ import annotations

from engine_builders import (
    Obj,
    at,
    container,
    context,
    deployment,
    event,
    node,
    ref,
    shop_app,
    signal,
    ts,
)

from inquest.categories import Category
from inquest.engine.candidates import Candidate
from inquest.engine.context import Direction
from inquest.engine.detectors.metrics import (
    detect_application_error,
    detect_cpu_throttling,
    detect_network_degradation,
)


def _only(candidates: list[Candidate]) -> Candidate:
    assert len(candidates) == 1, [c.summary for c in candidates]
    return candidates[0]


def _chain() -> list[Obj]:
    return [
        *shop_app("web", env={"CHECKOUT_URL": "http://checkout:8080"}, rs_hash="wb111"),
        *shop_app("checkout", env={"PAYMENTS_URL": "http://payments:8080"}, rs_hash="ck111"),
        *shop_app("payments"),
    ]


def test_cpu_throttling_names_the_workload_and_limit() -> None:
    objects = [*shop_app("web", containers=[container(limits={"cpu": "200m"})])]
    metrics = [
        signal(ref("Pod", "web-abc12-p0"), "cpu_throttling", 5, 0.6),
        signal(ref("Service", "web"), "latency", 6),
    ]
    candidate = _only(detect_cpu_throttling(context(objects, metrics=metrics)))
    assert candidate.category == Category.CPU_THROTTLING
    assert candidate.ref == ref("Deployment", "web")
    assert "cpu limits app=200m" in candidate.summary
    assert candidate.has_failure_evidence
    assert candidate.base_score == 50


def test_cpu_throttling_negative_and_out_of_window() -> None:
    assert detect_cpu_throttling(context(shop_app("web"))) == []
    old = [signal(ref("Deployment", "web"), "cpu_throttling", -90)]
    assert detect_cpu_throttling(context(shop_app("web"), metrics=old)) == []
    falling = [signal(ref("Deployment", "web"), "cpu_throttling", 5, 0.2, Direction.DOWN)]
    assert detect_cpu_throttling(context(shop_app("web"), metrics=falling)) == []


def test_network_degradation_on_a_node() -> None:
    metrics = [signal(ref("Node", "node-a"), "network_errors", 4, 12.0)]
    candidate = _only(detect_network_degradation(context([*shop_app("web"), node("node-a")], metrics=metrics)))
    assert candidate.category == Category.NETWORK_DEGRADATION
    assert candidate.ref == ref("Node", "node-a")
    assert ref("Pod", "web-abc12-p0") in candidate.explains


def test_cni_failures_are_network_degradation() -> None:
    objects = [
        *shop_app("web"),
        event("Pod", "web-abc12-p0", "FailedCreatePodSandBox", "failed to setup network for sandbox: cni timeout", 3),
    ]
    candidate = _only(detect_network_degradation(context(objects)))
    assert candidate.ref == ref("Deployment", "web")
    assert detect_network_degradation(context(shop_app("web"))) == []


def test_application_error_points_at_the_deepest_erroring_service() -> None:
    metrics = [
        signal(ref("Service", "web"), "error_rate", 6),
        signal(ref("Service", "checkout"), "error_rate", 5.5),
        signal(ref("Service", "payments"), "error_rate", 5),
    ]
    candidate = _only(detect_application_error(context(_chain(), metrics=metrics)))
    assert candidate.category == Category.APPLICATION_ERROR
    assert candidate.ref == ref("Deployment", "payments")
    assert ref("Service", "web") in candidate.explains
    assert "2 dependent(s) erroring after it" in candidate.summary
    assert candidate.onset_time == at(5)


def test_application_error_names_the_contradiction_with_ready_pods() -> None:
    candidate = _only(
        detect_application_error(context(_chain(), metrics=[signal(ref("Service", "payments"), "error_rate", 5)]))
    )
    assert any("while all 2 pods" in note for note in candidate.notes)


def test_unrelated_error_sources_are_separate_candidates() -> None:
    metrics = [signal(ref("Service", "web"), "error_rate", 4), signal(ref("Service", "payments"), "error_rate", 6)]
    refs = {c.ref for c in detect_application_error(context(_chain(), metrics=metrics))}
    assert refs == {ref("Deployment", "web"), ref("Deployment", "payments")}


def test_failed_job_is_an_application_error() -> None:
    job = {
        "kind": "Job",
        "metadata": {"name": "export-1", "namespace": "shop"},
        "spec": {"template": {"spec": {"containers": [container()]}}},
        "status": {
            "failed": 4,
            "conditions": [
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "BackoffLimitExceeded",
                    "message": "Job has reached the specified backoff limit",
                    "lastTransitionTime": ts(9),
                }
            ],
        },
    }
    candidate = _only(detect_application_error(context([job])))
    assert candidate.ref == ref("Job", "export-1")
    assert "BackoffLimitExceeded" in candidate.summary
    old_job = {**job, "status": {"conditions": [{"type": "Failed", "status": "True", "lastTransitionTime": ts(-400)}]}}
    assert detect_application_error(context([old_job])) == []


def test_no_error_signals_no_candidates() -> None:
    assert detect_application_error(context([*_chain(), deployment("idle")])) == []
