from __future__ import annotations

from engine_builders import at, context, crashing_status, event, ref, shop_app, signal, status

from inquest.categories import Category
from inquest.engine.candidates import Candidate
from inquest.engine.detectors import DETECTORS
from inquest.engine.detectors.pod_failures import (
    detect_crash_loop,
    detect_image_pull,
    detect_oom_killed,
    detect_probe_failure,
)


def test_every_category_but_no_fault_has_a_detector() -> None:
    assert set(DETECTORS) == set(Category) - {Category.NO_FAULT}


def _only(candidates: list[Candidate]) -> Candidate:
    assert len(candidates) == 1, [c.summary for c in candidates]
    return candidates[0]


def test_image_pull_groups_pods_by_workload() -> None:
    pulling = status(ready=False, waiting=("ErrImagePull", 'rpc error: pull access denied for "web:1.9"'))
    objects = shop_app("web", pod_statuses=[pulling, pulling], created=5)
    candidate = _only(detect_image_pull(context(objects)))
    assert candidate.category == Category.IMAGE_PULL
    assert candidate.ref == ref("Deployment", "web")
    assert ref("Pod", "web-abc12-p0") in candidate.explains
    assert ref("Service", "web") in candidate.explains
    assert candidate.has_failure_evidence
    assert "2 pods cannot pull its image" in candidate.summary
    assert candidate.onset_time == at(5)


def test_image_pull_negative_and_past_window() -> None:
    assert detect_image_pull(context(shop_app("web"))) == []
    pulling = status(ready=False, waiting=("ImagePullBackOff", "back-off"))
    assert detect_image_pull(context(shop_app("web", pod_statuses=[pulling, pulling]), start=0, end=30, now=300)) == []


def test_crash_loop() -> None:
    objects = shop_app("api", pod_statuses=[crashing_status(8, exit_code=3), crashing_status(9, exit_code=3)])
    objects.append(event("Pod", "api-abc12-p0", "BackOff", "Back-off restarting failed container app", 7, 25))
    candidate = _only(detect_crash_loop(context(objects)))
    assert candidate.ref == ref("Deployment", "api")
    assert "(exit code 3)" in candidate.summary
    assert candidate.onset_time == at(7)
    assert any("Event BackOff" in item.detail for item in candidate.evidence)
    assert candidate.counter_evidence == []


def test_crash_loop_ignores_old_restarts() -> None:
    objects = shop_app("api", pod_statuses=[status(restarts=12, last=("Error", 1, -4320))])
    assert detect_crash_loop(context(objects)) == []


def test_crash_loop_that_began_before_the_window_is_flagged() -> None:
    objects = shop_app("api", pod_statuses=[crashing_status(12)])
    objects.append(
        event("Pod", "api-abc12-p0", "BackOff", "Back-off restarting failed container app", -300, 20, count=80)
    )
    candidate = _only(detect_crash_loop(context(objects)))
    assert candidate.counter_evidence
    assert "before the window" in candidate.counter_evidence[0].detail


def test_oom_killed_with_memory_pressure_signal() -> None:
    objects = shop_app("cart", pod_statuses=[status(restarts=1, last=("OOMKilled", 137, 10))])
    metrics = [signal(ref("Deployment", "cart"), "memory_saturation", 8, 0.98)]
    candidate = _only(detect_oom_killed(context(objects, metrics=metrics)))
    assert candidate.category == Category.OOM_KILLED
    assert candidate.base_score == 60
    assert "was OOMKilled" in candidate.summary
    assert detect_crash_loop(context(objects)) == []


def test_oom_out_of_window_is_noise() -> None:
    objects = shop_app("cart", pod_statuses=[status(restarts=1, last=("OOMKilled", 137, -200))])
    assert detect_oom_killed(context(objects)) == []


def test_probe_failure() -> None:
    unready = status(ready=False, running_since=-100)
    objects = shop_app("web", pod_statuses=[unready, status()])
    objects.append(event("Pod", "web-abc12-p0", "Unhealthy", "Readiness probe failed: HTTP 503", 6, 25, count=40))
    candidate = _only(detect_probe_failure(context(objects)))
    assert candidate.category == Category.PROBE_FAILURE
    assert candidate.onset_time == at(6)
    assert ref("Pod", "web-abc12-p1") not in candidate.explains


def test_probe_failure_negative() -> None:
    objects = shop_app("web")
    objects.append(event("Pod", "web-abc12-p0", "Unhealthy", "Readiness probe failed", -120, -100))
    assert detect_probe_failure(context(objects)) == []
