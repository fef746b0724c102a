from __future__ import annotations

from engine_builders import Obj, at, context, crashing_status, deployment, event, pod, ref, replica_set, status

from inquest.engine.podstate import Mechanism, PodProblem


def _problems(*objects: Obj, start: float = 0, end: float = 30, now: float | None = None) -> list[PodProblem]:
    found = context(objects, start=start, end=end, now=now).pod_problems()
    return [problem for problems in found.values() for problem in problems]


def _mechanisms(*objects: Obj, **window: float) -> set[Mechanism]:
    return {problem.mechanism for problem in _problems(*objects, **window)}


def test_healthy_pod_has_no_problems() -> None:
    assert _problems(pod("web-1")) == []


def test_image_pull_now() -> None:
    problems = _problems(
        pod(
            "web-1",
            statuses=[status(ready=False, waiting=("ImagePullBackOff", 'Back-off pulling image "web:1.9"'))],
            created=5,
        ),
        event("Pod", "web-1", "Failed", 'Failed to pull image "web:1.9": not found', 5.5, 20, count=4),
    )
    assert [problem.mechanism for problem in problems] == [Mechanism.IMAGE_PULL]
    assert problems[0].onset == at(5.5)
    assert "ImagePullBackOff" in problems[0].detail


def test_crash_loop_with_exit_code() -> None:
    problems = _problems(pod("web-1", statuses=[crashing_status(12, exit_code=2)]))
    assert [(p.mechanism, p.exit_code, p.onset) for p in problems] == [(Mechanism.CRASH, 2, at(12))]


def test_oom_restart_counts_even_when_running_again() -> None:
    problems = _problems(pod("web-1", statuses=[status(restarts=1, last=("OOMKilled", 137, 10))]))
    assert [(p.mechanism, p.onset) for p in problems] == [(Mechanism.OOM, at(10))]


def test_back_off_events_do_not_double_count_an_oom() -> None:
    mechanisms = _mechanisms(
        pod("web-1", statuses=[crashing_status(10, exit_code=137, reason="OOMKilled")]),
        event("Pod", "web-1", "BackOff", "Back-off restarting failed container app", 8, 20),
    )
    assert mechanisms == {Mechanism.OOM}


def test_liveness_kill_is_a_probe_failure() -> None:
    problems = _problems(
        pod("web-1", statuses=[status(restarts=2, last=("Error", 137, 10))]),
        event(
            "Pod",
            "web-1",
            "Killing",
            "Container app failed liveness probe, will be restarted",
            9.5,
            event_type="Normal",
        ),
        event("Pod", "web-1", "Unhealthy", "Liveness probe failed: HTTP probe failed with statuscode: 500", 9, 10),
    )
    assert [p.mechanism for p in problems] == [Mechanism.PROBE]
    assert problems[0].onset == at(9)


def test_readiness_failure() -> None:
    problems = _problems(
        pod("web-1", statuses=[status(ready=False, running_since=-100)]),
        event("Pod", "web-1", "Unhealthy", "Readiness probe failed: connection refused", 4, 25, count=30),
    )
    assert [(p.mechanism, p.onset) for p in problems] == [(Mechanism.PROBE, at(4))]


def test_container_that_just_started_is_not_yet_a_problem() -> None:
    assert _problems(pod("web-1", statuses=[status(ready=False, running_since=29.7)], created=29.5)) == []


def test_restart_days_ago_is_not_a_problem() -> None:
    assert _problems(pod("web-1", statuses=[status(restarts=7, last=("Error", 1, -4000))])) == []
    assert _problems(pod("web-1", statuses=[status(restarts=7, last=("OOMKilled", 137, -4000))])) == []


def test_events_outside_the_window_are_ignored() -> None:
    assert (
        _problems(pod("web-1"), event("Pod", "web-1", "BackOff", "Back-off restarting failed container", -300, -200))
        == []
    )


def test_past_window_ignores_present_state_without_timestamps() -> None:
    crashing = pod("web-1", statuses=[crashing_status(100)])
    assert _problems(crashing, start=0, end=30, now=120) == []
    assert {p.mechanism for p in _problems(crashing, start=90, end=120, now=120)} == {Mechanism.CRASH}


def test_config_error_keeps_the_message() -> None:
    problems = _problems(
        pod(
            "web-1",
            statuses=[status(ready=False, waiting=("CreateContainerConfigError", 'configmap "web-config" not found'))],
        )
    )
    assert [p.mechanism for p in problems] == [Mechanism.CONFIG_ERROR]
    assert 'configmap "web-config" not found' in problems[0].detail


def test_unschedulable_pod() -> None:
    problems = _problems(
        pod("web-1", node="", phase="Pending", statuses=[], created=5),
        event("Pod", "web-1", "FailedScheduling", "0/3 nodes are available: 3 Insufficient cpu.", 5, 25, count=10),
    )
    assert [(p.mechanism, p.onset) for p in problems] == [(Mechanism.UNSCHEDULABLE, at(5))]


def test_a_pod_bound_to_a_node_is_not_unschedulable_now() -> None:
    # It waited for a node at first (a taint, a node still registering); now it is bound and pulls or runs.
    waited = event("Pod", "web-1", "FailedScheduling", "0/4 nodes are available: 1 node(s) had untolerated taint", 5)
    pulling = pod(
        "web-1",
        phase="Pending",
        statuses=[status(ready=False, waiting=("ImagePullBackOff", 'Back-off pulling image "web:1.9"'))],
        created=5,
    )
    assert _mechanisms(pulling, waited) == {Mechanism.IMAGE_PULL}
    assert _mechanisms(pod("web-1", created=5), waited) == set()
    # A past window has no present state to go by: the wait it saw still counts there.
    assert _mechanisms(pod("web-1", created=5), waited, start=0, end=30, now=120) == {Mechanism.UNSCHEDULABLE}


def test_mount_failure_and_evicted_pod() -> None:
    mechanisms = _mechanisms(
        pod("web-1", phase="Pending", statuses=[status(ready=False, waiting=("ContainerCreating", ""))]),
        event("Pod", "web-1", "FailedMount", 'MountVolume.SetUp failed for volume "data": timed out', 3),
        pod("web-2", phase="Failed", reason="Evicted", message="The node was low on resource: memory.", statuses=[]),
        event("Pod", "web-2", "Evicted", "The node was low on resource: memory.", 6),
    )
    assert mechanisms == {Mechanism.MOUNT, Mechanism.EVICTED}


def test_pod_that_is_gone_still_shows_through_its_events() -> None:
    problems = _problems(event("Pod", "web-abc12-zz9", "BackOff", "Back-off restarting failed container app", 4, 9))
    assert [(p.pod, p.mechanism) for p in problems] == [(ref("Pod", "web-abc12-zz9"), Mechanism.CRASH)]


def test_workload_of_a_gone_pod_is_guessed_from_its_name() -> None:
    ctx = context([deployment("web"), replica_set("web-abc12", "web", "1", -10)])
    assert ctx.workload_of(ref("Pod", "web-abc12-zz9")) == ref("Deployment", "web")
    assert ctx.workload_of(ref("Pod", "unrelated-x")) == ref("Pod", "unrelated-x")
