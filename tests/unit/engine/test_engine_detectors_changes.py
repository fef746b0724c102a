from __future__ import annotations

from engine_builders import (
    Obj,
    at,
    change,
    config_map,
    container,
    context,
    crashing_status,
    deployment,
    endpoint_slice,
    event,
    ingress,
    journal_of,
    limit_range,
    network_policy,
    pod,
    quota,
    ref,
    replica_set,
    service,
    shop_app,
    signal,
    status,
    ts,
)

from inquest.categories import Category, EvidenceSource
from inquest.engine.candidates import Candidate
from inquest.engine.context import DataSources, Direction
from inquest.engine.detectors.config import detect_config_change
from inquest.engine.detectors.network_policy import detect_network_policy
from inquest.engine.detectors.quota import detect_quota
from inquest.engine.detectors.rollout import detect_bad_rollout
from inquest.engine.detectors.scale import detect_scaled_to_zero
from inquest.engine.detectors.service import detect_service_misconfig
from inquest.engine.journal import ChangeJournal


def _only(candidates: list[Candidate]) -> Candidate:
    assert len(candidates) == 1, [c.summary for c in candidates]
    return candidates[0]


def _rollout(minute: float = 5, new_image: str = "payments:1.9", **overrides: object) -> ChangeJournal:
    journal = journal_of()
    old = deployment("payments", containers=[container(image="payments:1.8")], revision="3")
    new = deployment("payments", containers=[container(image=new_image)], revision="4", **overrides)  # type: ignore[arg-type]
    change(journal, old, new, minute)
    return journal


def _new_pods(pod_status: Obj, created: float = 5.2) -> list[Obj]:
    new_containers = [container(image="payments:1.9")]
    objects: list[Obj] = [
        deployment("payments", containers=new_containers, revision="4", ready=0),
        replica_set("payments-new11", "payments", "4", 5, new_containers),
        service("payments"),
    ]
    for index in range(2):
        objects.append(
            pod(
                f"payments-new11-p{index}",
                labels={"app": "payments", "pod-template-hash": "new11"},
                owner=("ReplicaSet", "payments-new11"),
                statuses=[pod_status],
                created=created,
                containers=new_containers,
            )
        )
    return objects


def test_bad_rollout_names_the_deployment_and_the_mechanism() -> None:
    candidate = _only(detect_bad_rollout(context(_new_pods(crashing_status(7)), _rollout())))
    assert candidate.category == Category.BAD_ROLLOUT
    assert candidate.ref == ref("Deployment", "payments")
    assert candidate.change is not None
    assert candidate.onset_time == at(5)
    assert candidate.symptom_onset == at(7)
    assert candidate.has_failure_evidence
    assert "image payments:1.8 -> payments:1.9" in candidate.summary
    assert "2 pods crash" in candidate.summary
    assert candidate.base_score == 60


def test_bad_rollout_with_image_pull_is_still_a_rollout() -> None:
    pulling = status(ready=False, waiting=("ErrImagePull", "not found"))
    candidate = _only(detect_bad_rollout(context(_new_pods(pulling), _rollout(new_image="payments:1.9-typo"))))
    assert "cannot pull its image" in candidate.summary


def test_bad_rollout_from_metrics_only() -> None:
    metrics = [signal(ref("Service", "payments"), "error_rate", 6)]
    candidate = _only(detect_bad_rollout(context(_new_pods(status()), _rollout(), metrics=metrics)))
    assert candidate.base_score == 50
    assert "error_rate up" in candidate.summary


def test_rollout_without_failures_is_weak() -> None:
    candidate = _only(detect_bad_rollout(context(_new_pods(status()), _rollout())))
    assert candidate.base_score == 20
    assert not candidate.has_failure_evidence
    assert candidate.explains == {ref("Deployment", "payments")}


def test_failures_before_the_rollout_count_against_it() -> None:
    objects = _new_pods(crashing_status(2), created=-100)
    candidate = _only(detect_bad_rollout(context(objects, _rollout())))
    assert not candidate.has_failure_evidence
    assert "already failing before the rollout" in candidate.counter_evidence[0].detail


def test_rollout_outside_the_window_is_ignored() -> None:
    assert detect_bad_rollout(context(_new_pods(crashing_status(7)), _rollout(minute=-60))) == []


def test_scale_is_not_a_rollout() -> None:
    journal = journal_of()
    change(journal, deployment("payments", replicas=2), deployment("payments", replicas=5), 5)
    assert detect_bad_rollout(context(_new_pods(crashing_status(7)), journal)) == []


def _scaled_up_after_creation(requests: dict[str, str] | None = None) -> tuple[list[Obj], ChangeJournal]:
    """`render` created at 10:02 (2 replicas, both running), scaled to 4 at 10:10; the 2 new pods fit nowhere."""
    containers = [container(image="render:2.0", requests=requests or {"cpu": "40"})]
    journal = journal_of()
    change(journal, None, deployment("render", containers=containers), 2)
    change(
        journal,
        deployment("render", containers=containers),
        deployment("render", replicas=4, containers=containers),
        10,
    )
    objects: list[Obj] = [
        deployment("render", replicas=4, ready=2, containers=containers),
        replica_set("render-aaa11", "render", "1", 2, containers, replicas=4),
    ]
    for index, (created, placed) in enumerate(((2.1, True), (2.1, True), (10.1, False), (10.1, False))):
        objects.append(
            pod(
                f"render-aaa11-p{index}",
                labels={"app": "render", "pod-template-hash": "aaa11"},
                owner=("ReplicaSet", "render-aaa11"),
                node="node-a" if placed else "",
                phase="Running" if placed else "Pending",
                statuses=[status()] if placed else [],
                containers=containers,
                created=created,
            )
        )
        if not placed:
            objects.append(
                event(
                    "Pod",
                    f"render-aaa11-p{index}",
                    "FailedScheduling",
                    "0/3 nodes are available: 3 Insufficient cpu.",
                    10.1,
                    20,
                )
            )
    return objects, journal


def test_placement_failures_of_a_template_that_runs_healthy_are_not_the_rollouts() -> None:
    # A creation is no rollout, and a scale-up neither: the pods the scale-up added wait for room, not for a fix.
    objects, journal = _scaled_up_after_creation()
    assert detect_bad_rollout(context(objects, journal)) == []
    # Had the creation replaced a deleted render, it would be a rollout: its own pods run, so its template fits.
    containers = [container(image="render:2.0", requests={"cpu": "40"})]
    change(journal, deployment("render", containers=containers), None, 1)
    candidate = _only(detect_bad_rollout(context(objects, journal)))
    assert not candidate.has_failure_evidence
    assert candidate.explains == {ref("Deployment", "render")}
    assert any("2 pods cannot be scheduled" in note and "same template run healthy" in note for note in candidate.notes)


def test_an_update_that_changed_the_requests_keeps_its_scheduling_failures() -> None:
    # The same picture after an update that raised the requests: the change made the pods too big to fit.
    objects, _ = _scaled_up_after_creation()
    journal = journal_of()
    smaller = deployment("render", replicas=4, containers=[container(image="render:2.0", requests={"cpu": "4"})])
    change(
        journal,
        smaller,
        deployment("render", replicas=4, containers=[container(image="render:2.0", requests={"cpu": "40"})]),
        2,
    )
    candidate = _only(detect_bad_rollout(context(objects, journal)))
    assert candidate.has_failure_evidence
    assert "2 pods cannot be scheduled" in candidate.summary


def test_a_first_creation_is_no_rollout_but_a_replacement_is() -> None:
    # No earlier version to roll back to: what the new pods do is for the mechanism detectors to tell...
    metrics = [signal(ref("Service", "payments"), "error_rate", 6)]
    journal = journal_of()
    change(journal, None, deployment("payments", containers=[container(image="payments:1.9")]), 5)
    assert detect_bad_rollout(context(_new_pods(crashing_status(7)), journal, metrics=metrics)) == []
    # ... unless the creation replaced a deleted predecessor: then it is a rollout from that version.
    change(journal, deployment("payments", containers=[container(image="payments:1.8")]), None, 4)
    recreated = _only(detect_bad_rollout(context(_new_pods(status()), journal, metrics=metrics)))
    assert recreated.has_failure_evidence
    assert "error_rate up" in recreated.summary


def test_an_update_that_left_placement_alone_is_not_blamed_for_pods_that_cannot_be_placed() -> None:
    """An image-only rollout whose surge pod finds no room (a node tainted meanwhile): the previous revision's
    healthy pods show the unchanged placement constraints were satisfiable."""
    old_containers = [container(image="etl:1.0", requests={"cpu": "2"})]
    new_containers = [container(image="etl:1.1", requests={"cpu": "2"})]
    journal = journal_of()
    change(journal, deployment("etl", containers=old_containers), deployment("etl", containers=new_containers), 5)
    objects: list[Obj] = [
        deployment("etl", containers=new_containers, ready=2),
        replica_set("etl-old11", "etl", "1", -100, old_containers),
        replica_set("etl-new22", "etl", "2", 5, new_containers),
    ]
    for index in range(2):
        objects.append(
            pod(f"etl-old11-p{index}", labels={"app": "etl", "pod-template-hash": "old11"},
                owner=("ReplicaSet", "etl-old11"), statuses=[status()], containers=old_containers, created=-100)
        )  # fmt: skip
    objects.append(
        pod("etl-new22-p0", labels={"app": "etl", "pod-template-hash": "new22"}, owner=("ReplicaSet", "etl-new22"),
            node="", phase="Pending", statuses=[], containers=new_containers, created=5.1)
    )  # fmt: skip
    objects.append(
        event("Pod", "etl-new22-p0", "FailedScheduling", "0/3 nodes are available: 1 node(s) had untolerated taint "
              "{node.kubernetes.io/disk-pressure: }, 2 Insufficient cpu.", 5.1, 20)
    )  # fmt: skip
    candidate = _only(detect_bad_rollout(context(objects, journal)))
    assert not candidate.has_failure_evidence
    assert any("cannot be scheduled" in note for note in candidate.notes)
    # Had the rollout raised the requests, the same failure would be its effect.
    bigger = journal_of()
    change(bigger, deployment("etl", containers=old_containers),
           deployment("etl", containers=[container(image="etl:1.1", requests={"cpu": "20"})]), 5)  # fmt: skip
    assert _only(detect_bad_rollout(context(objects, bigger))).has_failure_evidence


def test_restart_only_rollout_is_discounted() -> None:
    journal = journal_of()
    change(
        journal,
        deployment("payments"),
        deployment("payments", template_annotations={"kubectl.kubernetes.io/restartedAt": "2024-05-01T10:05:00Z"}),
        5,
    )
    candidate = _only(detect_bad_rollout(context(_new_pods(crashing_status(7)), journal)))
    assert candidate.base_score == 45
    # The same spec ran before: the failure shows in payments, but what changed is what its pods read or call.
    assert candidate.indirect
    assert any(
        "only restarted" in note and "what they read at start-up or call changed" in note for note in candidate.notes
    )
    healthy = _only(detect_bad_rollout(context(_new_pods(status()), journal)))
    assert not healthy.indirect


def _config_app(pod_statuses: list[Obj]) -> list[Obj]:
    volumes = [{"name": "cfg", "configMap": {"name": "checkout-config"}}]
    return [
        *shop_app("checkout", pod_statuses=pod_statuses, volumes=volumes),
        config_map("checkout-config", {"t": "x"}),
    ]


def test_config_change_names_the_config_map() -> None:
    journal = journal_of()
    change(journal, config_map("checkout-config", {"t": "2s"}), config_map("checkout-config", {"t": "x"}), 4)
    candidate = _only(detect_config_change(context(_config_app([crashing_status(8), crashing_status(9)]), journal)))
    assert candidate.category == Category.CONFIG_CHANGE
    assert candidate.ref == ref("ConfigMap", "checkout-config")
    assert "changed key t" in candidate.summary
    assert "read by Deployment shop/checkout" in candidate.summary
    assert ref("Deployment", "checkout") in candidate.explains
    assert candidate.base_score == 60


def test_config_change_without_failures_is_weak_and_creation_is_ignored() -> None:
    journal = journal_of()
    change(journal, config_map("checkout-config", {"t": "2s"}), config_map("checkout-config", {"t": "x"}), 4)
    change(journal, None, config_map("new-config", {"a": "1"}), 5)
    candidate = _only(detect_config_change(context(_config_app([status(), status()]), journal)))
    assert candidate.base_score == 20
    assert not candidate.has_failure_evidence


def test_what_a_config_map_says_cannot_make_an_image_unpullable() -> None:
    journal = journal_of()
    change(journal, config_map("checkout-config", {"t": "2s"}), config_map("checkout-config", {"t": "x"}), 4)
    pulling = status(ready=False, waiting=("ImagePullBackOff", "not found"))
    objects = _config_app([pulling, pulling])
    objects += [
        event("Pod", f"checkout-abc12-p{index}", "Failed", "Failed to pull image: not found", 6, 20)
        for index in range(2)
    ]
    candidate = _only(detect_config_change(context(objects, journal)))
    assert not candidate.has_failure_evidence
    assert candidate.base_score == 20


def test_config_failures_before_the_edit_are_not_its_effect() -> None:
    journal = journal_of()
    change(journal, config_map("checkout-config", {"t": "2s"}), config_map("checkout-config", {"t": "x"}), 20)
    candidate = _only(detect_config_change(context(_config_app([crashing_status(8), crashing_status(9)]), journal)))
    assert not candidate.has_failure_evidence


def test_missing_config_map_without_a_recorded_change() -> None:
    waiting = status(ready=False, waiting=("CreateContainerConfigError", 'configmap "checkout-config" not found'))
    objects = shop_app("checkout", pod_statuses=[waiting, waiting], created=3)
    candidate = _only(detect_config_change(context(objects)))
    assert candidate.ref == ref("ConfigMap", "checkout-config")
    assert candidate.change is None
    assert "is missing" in candidate.summary


def test_missing_secret_key() -> None:
    waiting = status(
        ready=False, waiting=("CreateContainerConfigError", "couldn't find key password in Secret shop/db-creds")
    )
    candidate = _only(detect_config_change(context(shop_app("orders", pod_statuses=[waiting], pods=1, created=3))))
    assert candidate.ref == ref("Secret", "db-creds")


def test_deleted_secret_is_a_config_change() -> None:
    journal = journal_of()
    change(
        journal, {"kind": "Secret", "metadata": {"name": "db-creds", "namespace": "shop"}, "data": {"a": "b"}}, None, 3
    )
    waiting = status(ready=False, waiting=("CreateContainerConfigError", 'secret "db-creds" not found'))
    app = shop_app(
        "orders",
        pod_statuses=[waiting],
        pods=1,
        created=4,
        containers=[container(env={"PW": {"secretKeyRef": {"name": "db-creds", "key": "pw"}}})],
    )
    candidate = _only(detect_config_change(context(app, journal)))
    assert candidate.change is not None
    assert "was deleted" in candidate.summary
    assert candidate.has_failure_evidence


def test_service_selector_edit_that_matches_nothing() -> None:
    journal = journal_of()
    change(journal, service("web"), service("web", selector={"app": "web-v2"}), 5)
    objects = [*shop_app("web")[:-2], service("web", selector={"app": "web-v2"}), endpoint_slice("web")]
    candidate = _only(detect_service_misconfig(context(objects, journal)))
    assert candidate.category == Category.SERVICE_MISCONFIG
    assert candidate.ref == ref("Service", "web")
    assert candidate.change is not None
    assert "matches no pods" in candidate.summary
    assert candidate.base_score == 65


def test_service_target_port_mismatch() -> None:
    objects = [*shop_app("web")[:-2], service("web", ports=[("http", 8080, "metrics")])]
    candidate = _only(detect_service_misconfig(context(objects)))
    assert "targetPort not declared" in candidate.summary
    assert candidate.change is None
    assert candidate.base_score == 40


def test_a_service_port_edit_carries_the_failing_traffic_after_it_as_metric_evidence() -> None:
    journal = journal_of()
    edited = service("inventory", ports=[("http", 8080, 9090)])
    change(journal, service("inventory"), edited, 5)
    objects = [
        *shop_app("inventory")[:-2],
        edited,
        endpoint_slice("inventory", ["inventory-abc12-p0"]),
        *shop_app("storefront", env={"INVENTORY_URL": "http://inventory:8080"}, rs_hash="sf111"),
    ]
    metrics = [
        signal(ref("Service", "inventory"), "network_errors", 5.5),  # callers' calls to it fail
        signal(ref("Service", "inventory"), "request_rate", 5.5, 0.2, Direction.DOWN),  # it gets less traffic
        signal(ref("Service", "storefront"), "error_rate", 6),  # so its callers fail their own users
        signal(ref("Deployment", "inventory"), "error_rate", 6),  # its own errors are not the Service's doing
        signal(ref("Service", "storefront"), "network_errors", 2),  # before the edit: not its effect
    ]
    candidate = _only(detect_service_misconfig(context(objects, journal, metrics=metrics)))
    assert candidate.ref == ref("Service", "inventory")
    assert candidate.symptom_onset == at(5.5)
    assert candidate.has_failure_evidence
    shown = [(item.ref, item.query) for item in candidate.evidence if item.source == EvidenceSource.PROMETHEUS]
    assert shown == [
        (ref("Service", "inventory"), "query_for_network_errors"),
        (ref("Service", "inventory"), "query_for_request_rate"),
        (ref("Service", "storefront"), "query_for_error_rate"),
    ]


def test_healthy_services_and_scaled_down_workloads_are_not_misconfigured() -> None:
    objects = [*shop_app("web"), deployment("batch", replicas=0), service("batch")]
    assert detect_service_misconfig(context(objects)) == []


def test_ingress_to_missing_service_or_port() -> None:
    objects = [*shop_app("web"), ingress("shop", [("a.com", "/", "ghost", 80), ("a.com", "/web", "web", "grpc")])]
    candidate = _only(detect_service_misconfig(context(objects)))
    assert candidate.ref == ref("Ingress", "shop")
    assert "ghost does not exist" in candidate.summary
    assert "has no port grpc" in candidate.summary


def _policy_world() -> list[Obj]:
    return [*shop_app("payments"), *shop_app("checkout", env={"PAYMENTS_URL": "http://payments:8080"}, rs_hash="ck111")]


def test_new_network_policy_that_blocks_a_caller() -> None:
    journal = journal_of()
    policy = network_policy("lockdown", {"app": "payments"}, ingress_from=[{"app": "admin"}])
    change(journal, None, policy, 5)
    metrics = [signal(ref("Service", "checkout"), "error_rate", 5.5)]
    candidate = _only(detect_network_policy(context([*_policy_world(), policy], journal, metrics=metrics)))
    assert candidate.category == Category.NETWORK_POLICY
    assert candidate.ref == ref("NetworkPolicy", "lockdown")
    assert "denies ingress from Deployment shop/checkout" in candidate.summary
    assert candidate.base_score == 60
    assert ref("Service", "checkout") in candidate.explains


def test_network_policy_allowing_its_callers_is_harmless() -> None:
    journal = journal_of()
    policy = network_policy("allow-checkout", {"app": "payments"}, ingress_from=[{"app": "checkout"}])
    change(journal, None, policy, 5)
    candidate = _only(detect_network_policy(context([*_policy_world(), policy], journal)))
    assert candidate.base_score == 20
    assert not candidate.has_failure_evidence


def test_network_policy_that_blocks_dns() -> None:
    journal = journal_of()
    policy = network_policy("egress-lock", {"app": "checkout"}, ingress_from=None, egress=[{"ports": [{"port": 443}]}])
    change(journal, None, policy, 5)
    candidate = _only(detect_network_policy(context([*_policy_world(), policy], journal)))
    assert "denies DNS" in candidate.summary
    assert "denies egress to Service shop/payments" in candidate.summary


def test_network_policy_without_metrics_has_no_failure_evidence() -> None:
    journal = journal_of()
    policy = network_policy("lockdown", {"app": "payments"}, ingress_from=[])
    change(journal, None, policy, 5)
    ctx = context([*_policy_world(), policy], journal, sources=DataSources())
    candidate = _only(detect_network_policy(ctx))
    assert candidate.base_score == 40
    assert not candidate.has_failure_evidence


def test_old_network_policy_is_not_a_candidate() -> None:
    journal = journal_of()
    policy = network_policy("lockdown", {"app": "payments"}, ingress_from=[])
    change(journal, None, policy, -500)
    assert detect_network_policy(context([*_policy_world(), policy], journal)) == []


_QUOTA_MESSAGE = (
    'Error creating: pods "api-aa111-z" is forbidden: exceeded quota: compute, requested: pods=1, used: pods=2, '
    "limited: pods=2"
)


def _quota_world(event_minute: float = 4) -> list[Obj]:
    return [
        deployment("api", replicas=3, ready=2),
        replica_set("api-aa111", "api", "1", -100),
        quota("compute", {"pods": "2"}),
        event("ReplicaSet", "api-aa111", "FailedCreate", _QUOTA_MESSAGE, event_minute, event_minute + 10, count=12),
    ]


def test_new_quota_that_refuses_pods() -> None:
    journal = journal_of()
    change(journal, None, quota("compute", {"pods": "2"}), 3)
    candidate = _only(detect_quota(context(_quota_world(), journal)))
    assert candidate.category == Category.QUOTA
    assert candidate.ref == ref("ResourceQuota", "compute")
    assert candidate.change is not None
    assert "created at 10:03:00Z" in candidate.summary
    assert ref("Deployment", "api") in candidate.explains
    assert candidate.base_score == 65


def test_quota_from_replica_failure_condition_without_change() -> None:
    failure = {
        "type": "ReplicaFailure",
        "status": "True",
        "reason": "FailedCreate",
        "message": _QUOTA_MESSAGE,
        "lastTransitionTime": ts(4),
    }
    objects = [deployment("api", replicas=3, ready=2, conditions=[failure]), quota("compute", {"pods": "2"})]
    candidate = _only(detect_quota(context(objects)))
    assert candidate.change is None
    assert candidate.base_score == 55
    assert candidate.onset_time == at(4)


def test_limit_range_refusal() -> None:
    message = 'Error creating: pods "api-x" is forbidden: maximum cpu usage per Container is 500m, but limit is 1'
    objects = [
        deployment("api"),
        replica_set("api-aa111", "api", "1", -100),
        limit_range("limits", {"cpu": "500m"}),
        event("ReplicaSet", "api-aa111", "FailedCreate", message, 4),
    ]
    assert _only(detect_quota(context(objects))).ref == ref("LimitRange", "limits")


def test_quota_noise_outside_window_and_other_failures() -> None:
    assert detect_quota(context(_quota_world(event_minute=-200))) == []
    other = event("ReplicaSet", "api-aa111", "FailedCreate", "Error creating: admission webhook denied", 4)
    assert detect_quota(context([deployment("api"), replica_set("api-aa111", "api", "1", -100), other])) == []


def _scaled_world() -> list[Obj]:
    return [
        deployment("payments", replicas=0, ready=0),
        service("payments"),
        endpoint_slice("payments"),
        *shop_app("checkout", env={"PAYMENTS_URL": "http://payments:8080"}, rs_hash="ck111"),
    ]


def test_scaled_to_zero_with_dependents() -> None:
    journal = journal_of()
    change(journal, deployment("payments", replicas=2), deployment("payments", replicas=0), 5)
    candidate = _only(detect_scaled_to_zero(context(_scaled_world(), journal)))
    assert candidate.category == Category.SCALED_TO_ZERO
    assert candidate.ref == ref("Deployment", "payments")
    assert candidate.change is not None
    assert "Deployment shop/checkout depends on it" in candidate.summary
    assert candidate.base_score == 60
    assert candidate.has_failure_evidence


def test_scaled_to_zero_from_event_when_journal_missed_it() -> None:
    scale_event = event(
        "Deployment",
        "payments",
        "ScalingReplicaSet",
        "Scaled down replica set payments-aa1 from 2 to 0",
        5,
        event_type="Normal",
    )
    candidate = _only(detect_scaled_to_zero(context([*_scaled_world(), scale_event])))
    assert candidate.change is None
    assert candidate.onset_time == at(5)
    assert candidate.base_score == 50


def test_scale_up_and_workloads_with_replicas_are_not_scaled_to_zero() -> None:
    journal = journal_of()
    change(journal, deployment("payments", replicas=2), deployment("payments", replicas=4), 5)
    assert detect_scaled_to_zero(context(shop_app("payments"), journal)) == []


def test_long_scaled_down_workload_in_a_past_window_is_not_reported() -> None:
    assert detect_scaled_to_zero(context(_scaled_world(), start=0, end=30, now=300)) == []
