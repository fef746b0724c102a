from __future__ import annotations

from engine_builders import (
    at,
    config_map,
    container,
    deployment,
    endpoint_slice,
    event,
    hpa,
    ingress,
    limit_range,
    network_policy,
    node,
    pod,
    pvc,
    quota,
    replica_set,
    secret,
    service,
    status,
)

from inquest.engine.objects import (
    ConfigMap,
    CronJob,
    EndpointSlice,
    Event,
    HorizontalPodAutoscaler,
    Ingress,
    Job,
    LimitRange,
    NetworkPolicy,
    Node,
    PersistentVolumeClaim,
    Pod,
    ResourceQuota,
    Secret,
    Service,
    Workload,
    project,
)
from inquest.engine.redaction import REDACTED
from inquest.engine.refs import ObjectRef


def _pod_json() -> dict[str, object]:
    return pod(
        "web-abc12-x1",
        labels={"app": "web", "pod-template-hash": "abc12"},
        owner=("ReplicaSet", "web-abc12"),
        node="node-b",
        containers=[
            container(
                env={
                    "GATEWAY_URL": "http://gateway:8080",
                    "DB_PASSWORD": "hunter2",
                    "DB_URL": "postgres://app:pw123@db:5432/x",
                    "FROM_CM": {"configMapKeyRef": {"name": "web-config", "key": "mode"}},
                    "FROM_SECRET": {"secretKeyRef": {"name": "web-secret", "key": "token"}},
                },
                env_from=[{"configMapRef": {"name": "web-env"}}, {"secretRef": {"name": "web-env-secret"}}],
                args=["--token=abc123", "--upstream=payments:8080"],
                limits={"memory": "256Mi"},
                readiness={"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 5},
            )
        ],
        statuses=[
            status(ready=False, restarts=3, waiting=("CrashLoopBackOff", "back-off"), last=("OOMKilled", 137, 5))
        ],
        volumes=[
            {"name": "cfg", "configMap": {"name": "web-files"}},
            {"name": "tls", "secret": {"secretName": "web-tls"}},
            {"name": "data", "persistentVolumeClaim": {"claimName": "web-data"}},
            {
                "name": "all",
                "projected": {"sources": [{"configMap": {"name": "proj-cm"}}, {"secret": {"name": "proj-s"}}]},
            },
        ],
    )


def test_pod_projection_keeps_state_and_references() -> None:
    projection = project(_pod_json())
    assert isinstance(projection, Pod)
    assert projection.ref == ObjectRef("Pod", "shop", "web-abc12-x1")
    assert projection.node_name == "node-b"
    assert projection.template_hash == "abc12"
    assert projection.meta.controller is not None
    assert projection.meta.controller.name == "web-abc12"
    state = projection.containers[0]
    assert (state.waiting_reason, state.last_reason, state.last_exit_code, state.restart_count) == (
        "CrashLoopBackOff",
        "OOMKilled",
        137,
        3,
    )
    assert state.last_finished_at == at(5)
    assert not projection.ready
    spec = projection.spec
    assert spec.referenced("ConfigMap") == {"web-config", "web-env", "web-files", "proj-cm"}
    assert spec.referenced("Secret") == {"web-secret", "web-env-secret", "web-tls", "proj-s"}
    assert spec.referenced("PersistentVolumeClaim") == {"web-data"}
    assert spec.containers[0].limits == {"memory": "256Mi"}
    assert spec.containers[0].readiness == "httpGet /healthz:http period=5"


def test_pod_projection_redacts_env_and_args() -> None:
    projection = project(_pod_json())
    assert isinstance(projection, Pod)
    env = {item.name: item for item in projection.spec.containers[0].env}
    assert env["DB_PASSWORD"].value == REDACTED
    assert env["DB_URL"].value == f"postgres://app:{REDACTED}@db:5432/x"
    assert env["GATEWAY_URL"].value == "http://gateway:8080"
    assert env["FROM_CM"].describe() == "configMap web-config/mode"
    assert env["FROM_SECRET"].describe() == "secret web-secret/token"
    assert projection.spec.containers[0].args == (f"--token={REDACTED}", "--upstream=payments:8080")


def test_projection_drops_managed_fields_and_unknown_annotations() -> None:
    raw = deployment("web", annotations={"kubectl.kubernetes.io/last-applied-configuration": "{...}"})
    projection = project(raw)
    assert isinstance(projection, Workload)
    assert "kubectl.kubernetes.io/last-applied-configuration" not in projection.meta.annotations
    assert projection.revision == "1"
    assert not hasattr(projection, "__dict__")  # slots: nothing else can be attached


def test_deployment_projection() -> None:
    conditions = [
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "timed out"},
        {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": "exceeded quota: q"},
    ]
    projection = project(deployment("web", replicas=3, ready=1, revision="4", conditions=conditions))
    assert isinstance(projection, Workload)
    assert (projection.desired_replicas, projection.ready_replicas, projection.revision) == (3, 1, "4")
    assert str(projection.selector) == "app=web"
    progressing = projection.condition("Progressing")
    assert progressing is not None
    assert progressing.reason == "ProgressDeadlineExceeded"
    failure = projection.condition("ReplicaFailure")
    assert failure is not None
    assert failure.is_true
    assert "exceeded quota" in failure.message


def test_daemonset_and_replicaset_projection() -> None:
    daemon = deployment("agent", kind="DaemonSet")
    daemon["status"] = {"desiredNumberScheduled": 3, "numberReady": 2, "numberAvailable": 2}
    projection = project(daemon)
    assert isinstance(projection, Workload)
    assert projection.desired_replicas == 3
    assert projection.ready_replicas == 2
    replica = project(replica_set("web-abc12", "web", "2", 5))
    assert isinstance(replica, Workload)
    assert replica.meta.kind == "ReplicaSet"
    assert replica.revision == "2"
    assert replica.meta.created == at(5)


def test_job_and_cronjob_projection() -> None:
    job = project(
        {
            "kind": "Job",
            "metadata": {
                "name": "nightly-1",
                "namespace": "shop",
                "ownerReferences": [{"kind": "CronJob", "name": "nightly", "controller": True}],
            },
            "spec": {"backoffLimit": 2, "template": {"spec": {"containers": [container()]}}},
            "status": {
                "failed": 3,
                "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}],
            },
        }
    )
    assert isinstance(job, Job)
    assert job.failed == 3
    assert job.backoff_limit == 2
    cron = project(
        {
            "kind": "CronJob",
            "metadata": {"name": "nightly", "namespace": "shop"},
            "spec": {
                "schedule": "0 2 * * *",
                "jobTemplate": {"spec": {"template": {"spec": {"containers": [container()]}}}},
            },
            "status": {"active": [{"name": "nightly-1"}]},
        }
    )
    assert isinstance(cron, CronJob)
    assert cron.schedule == "0 2 * * *"
    assert cron.active_jobs == ("nightly-1",)


def test_service_endpoints_and_ingress_projection() -> None:
    svc = project(service("web", ports=[("http", 80, "http"), ("", 9090, 9090)]))
    assert isinstance(svc, Service)
    assert svc.selector == {"app": "web"}
    assert [(p.port, p.target_port) for p in svc.ports] == [(80, "http"), (9090, "9090")]
    slice_ = project(endpoint_slice("web", ["web-1"], ["web-2"]))
    assert isinstance(slice_, EndpointSlice)
    assert (slice_.service_name, slice_.ready_pods, slice_.not_ready_pods) == ("web", ("web-1",), ("web-2",))
    ing = project(
        ingress("shop", [("shop.example.com", "/", "web", "http"), ("api.example.com", "/v1", "gateway", 8080)])
    )
    assert isinstance(ing, Ingress)
    assert [(b.host, b.service_name, b.service_port) for b in ing.backends] == [
        ("shop.example.com", "web", "http"),
        ("api.example.com", "gateway", "8080"),
    ]


def test_node_projection() -> None:
    projection = project(
        node(
            "node-b",
            ready=False,
            pressure={"MemoryPressure": 3},
            unschedulable=True,
            taints=[{"key": "k", "effect": "NoSchedule"}],
        )
    )
    assert isinstance(projection, Node)
    assert projection.ref == ObjectRef("Node", "", "node-b")
    assert projection.ready is False
    assert projection.unschedulable
    pressure = projection.condition("MemoryPressure")
    assert pressure is not None
    assert pressure.is_true
    assert pressure.last_transition == at(3)
    assert [str(t) for t in projection.taints] == ["k:NoSchedule"]


def test_config_map_keeps_hashes_never_values() -> None:
    projection = project(config_map("cfg", {"timeout": "2s", "password": "hunter2"}))
    assert isinstance(projection, ConfigMap)
    assert set(projection.data_hashes) == {"timeout", "password"}
    assert all(value.startswith("sha256:") for value in projection.data_hashes.values())
    assert "hunter2" not in repr(projection)
    assert "2s" not in repr(projection.data_hashes)


def test_secret_keeps_key_names_only() -> None:
    projection = project(secret("db", ["user", "password"]))
    assert isinstance(projection, Secret)
    assert projection.keys == ("password", "user")
    assert "c2VjcmV0" not in repr(projection)


def test_pvc_hpa_quota_limitrange_projection() -> None:
    claim = project(pvc("data", phase="Pending", storage_class="fast"))
    assert isinstance(claim, PersistentVolumeClaim)
    assert (claim.phase, claim.storage_class) == ("Pending", "fast")
    autoscaler = project(
        hpa("web", "web", 2, 4, 4, [{"type": "ScalingLimited", "status": "True", "reason": "TooManyReplicas"}])
    )
    assert isinstance(autoscaler, HorizontalPodAutoscaler)
    assert (autoscaler.target_name, autoscaler.min_replicas, autoscaler.max_replicas, autoscaler.current_replicas) == (
        "web",
        2,
        4,
        4,
    )
    limited = autoscaler.condition("ScalingLimited")
    assert limited is not None
    assert limited.reason == "TooManyReplicas"
    rq = project(quota("compute", {"limits.cpu": "2"}, {"limits.cpu": "2"}))
    assert isinstance(rq, ResourceQuota)
    assert rq.hard == {"limits.cpu": "2"}
    assert rq.used == {"limits.cpu": "2"}
    lr = project(limit_range("limits", {"cpu": "500m"}))
    assert isinstance(lr, LimitRange)
    assert lr.limits[0].max == {"cpu": "500m"}


def test_network_policy_projection_and_semantics() -> None:
    projection = project(network_policy("deny", {"app": "payments"}, ingress_from=[{"app": "checkout"}]))
    assert isinstance(projection, NetworkPolicy)
    assert projection.policy_types == ("Ingress",)
    assert projection.selects("shop", {"app": "payments"})
    assert not projection.selects("other", {"app": "payments"})
    assert projection.allows_ingress_from("shop", {"app": "checkout"})
    assert not projection.allows_ingress_from("shop", {"app": "web"})
    assert not projection.allows_ingress_from("other", {"app": "checkout"})
    assert projection.allows_egress_to("shop", {"app": "anything"})
    deny_all = project(network_policy("deny-all", {}, ingress_from=[]))
    assert isinstance(deny_all, NetworkPolicy)
    assert deny_all.selects("shop", {"app": "x"})
    assert not deny_all.allows_ingress_from("shop", {"app": "x"})


def test_network_policy_default_policy_types() -> None:
    raw = network_policy("egress", {"app": "web"}, ingress_from=None, egress=[{"to": []}])
    raw["spec"].pop("policyTypes")
    projection = project(raw)
    assert isinstance(projection, NetworkPolicy)
    assert projection.policy_types == ("Ingress", "Egress")


def test_core_event_projection() -> None:
    projection = project(event("Pod", "web-1", "BackOff", "Back-off restarting failed container", 2, 9, count=7))
    assert isinstance(projection, Event)
    assert projection.involved == ObjectRef("Pod", "shop", "web-1")
    assert (projection.first_seen, projection.last_seen, projection.count) == (at(2), at(9), 7)
    assert projection.is_warning


def test_events_api_projection_uses_series_and_note() -> None:
    projection = project(
        event(
            "Node",
            "node-b",
            "NodeNotReady",
            "Node is not ready, password=x",
            4,
            6,
            count=3,
            event_type="Normal",
            api="events",
        )
    )
    assert isinstance(projection, Event)
    assert projection.involved == ObjectRef("Node", "", "node-b")
    assert projection.count == 3
    assert projection.first_seen == at(4)
    assert projection.last_seen == at(6)
    assert "password=x" not in projection.message
    assert not projection.is_warning


def test_unknown_kinds_are_skipped_and_kind_can_be_supplied() -> None:
    assert project({"kind": "Lease", "metadata": {"name": "x"}}) is None
    listed = service("web")
    listed.pop("kind")
    assert isinstance(project(listed, kind="Service"), Service)
