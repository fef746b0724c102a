from __future__ import annotations

from datetime import timedelta

import pytest
from engine_builders import (
    Obj,
    at,
    change,
    config_map,
    container,
    deployment,
    event,
    hpa,
    ingress,
    limit_range,
    network_policy,
    node,
    pod,
    pvc,
    quota,
    ref,
    replica_set,
    secret,
    service,
)

from inquest.engine.diff import FieldChange
from inquest.engine.journal import ChangeJournal, ChangeRecord, ChangeSource, ChangeType, change_between
from inquest.engine.objects import Event, Workload, project
from inquest.engine.reconstruct import records_from_events, records_from_replicasets


def _diff(old: Obj, new: Obj) -> ChangeRecord:
    record = change(ChangeJournal(), old, new, 5)
    assert record is not None
    return record


def _paths(record: ChangeRecord) -> dict[str, tuple[str | None, str | None]]:
    return {item.path: (item.old, item.new) for item in record.fields}


APP = "template.containers[app]"


@pytest.mark.parametrize(
    ("old_container", "new_container", "path", "values"),
    [
        (container(image="web:1.0"), container(image="web:1.1"), f"{APP}.image", ("web:1.0", "web:1.1")),
        (container(command=["run"]), container(command=["run", "--fast"]), f"{APP}.command", ("run", "run --fast")),
        (container(args=["-v"]), container(args=["-vv"]), f"{APP}.args", ("-v", "-vv")),
        (container(env={"MODE": "a"}), container(env={"MODE": "b"}), f"{APP}.env[MODE]", ("a", "b")),
        (container(), container(env={"NEW": "x"}), f"{APP}.env[NEW]", (None, "x")),
        (
            container(env={"K": {"configMapKeyRef": {"name": "a", "key": "k"}}}),
            container(env={"K": {"configMapKeyRef": {"name": "b", "key": "k"}}}),
            f"{APP}.env[K]",
            ("configMap a/k", "configMap b/k"),
        ),
        (
            container(env_from=[{"configMapRef": {"name": "a"}}]),
            container(env_from=[{"secretRef": {"name": "s"}}]),
            f"{APP}.envFrom[0]",
            ("configMap a", "secret s"),
        ),
        (
            container(limits={"memory": "512Mi"}),
            container(limits={"memory": "128Mi"}),
            f"{APP}.resources.limits.memory",
            ("512Mi", "128Mi"),
        ),
        (
            container(requests={"cpu": "100m"}),
            container(requests={"cpu": "1"}),
            f"{APP}.resources.requests.cpu",
            ("100m", "1"),
        ),
        (
            container(readiness={"httpGet": {"path": "/healthz", "port": 8080}}),
            container(readiness={"httpGet": {"path": "/ready", "port": 8080}}),
            f"{APP}.probes.readiness",
            ("httpGet /healthz:8080", "httpGet /ready:8080"),
        ),
        (
            container(liveness={"tcpSocket": {"port": 80}, "periodSeconds": 10}),
            container(liveness={"tcpSocket": {"port": 80}, "periodSeconds": 1}),
            f"{APP}.probes.liveness",
            ("tcpSocket :80 period=10", "tcpSocket :80 period=1"),
        ),
        (
            container(ports=[("http", 80)]),
            container(ports=[("http", 81)]),
            f"{APP}.ports",
            ("http:80/TCP", "http:81/TCP"),
        ),
    ],
)
def test_container_fields_diff(
    old_container: Obj, new_container: Obj, path: str, values: tuple[str | None, str | None]
) -> None:
    record = _diff(deployment("web", containers=[old_container]), deployment("web", containers=[new_container]))
    assert record.change == ChangeType.UPDATED
    assert _paths(record)[path] == values
    assert record.is_template_change


def test_pod_spec_fields_diff() -> None:
    old = deployment("web")
    new = deployment(
        "web",
        node_selector={"disk": "ssd"},
        tolerations=[{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}],
        affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}},
        volumes=[{"name": "cfg", "configMap": {"name": "web-config"}}],
    )
    paths = _paths(_diff(old, new))
    assert paths["template.nodeSelector"] == (None, "disk=ssd")
    assert paths["template.tolerations"] == (None, "dedicated=db Equal NoSchedule")
    assert paths["template.affinity"][1] is not None
    assert paths["template.volumes[cfg]"] == (None, "ConfigMap web-config")


def test_replicas_only_is_a_scale() -> None:
    record = _diff(deployment("web", replicas=3), deployment("web", replicas=0))
    assert record.change == ChangeType.SCALED
    assert _paths(record) == {"replicas": ("3", "0")}
    assert not record.is_template_change


def test_selector_change() -> None:
    record = _diff(deployment("web", labels={"app": "web"}), deployment("web", labels={"app": "web2"}))
    assert _paths(record)["selector"] == ("app=web", "app=web2")


def test_status_only_change_is_not_recorded() -> None:
    journal = ChangeJournal()
    assert (
        change(journal, deployment("web", ready=2), deployment("web", ready=0, conditions=[{"type": "Available"}]), 5)
        is None
    )
    assert len(journal) == 0


def test_rollout_restart_is_a_template_change() -> None:
    record = _diff(
        deployment("web"), deployment("web", template_annotations={"kubectl.kubernetes.io/restartedAt": "now"})
    )
    assert record.is_template_change
    assert "template.annotations[kubectl.kubernetes.io/restartedAt]" in _paths(record)


def test_config_map_keys_by_hash() -> None:
    record = _diff(config_map("cfg", {"a": "1", "b": "2"}), config_map("cfg", {"a": "1", "b": "3", "c": "4"}))
    paths = _paths(record)
    assert set(paths) == {"data[b]", "data[c]"}
    old_b, new_b = paths["data[b]"]
    assert old_b is not None
    assert old_b.startswith("sha256:")
    assert new_b is not None
    assert new_b != old_b
    assert "3" not in (new_b or "")[:7]
    assert paths["data[c]"][0] is None


def test_same_config_map_data_is_no_change() -> None:
    assert change(ChangeJournal(), config_map("cfg", {"a": "1"}), config_map("cfg", {"a": "1"}), 5) is None


def test_secret_changes_without_reading_values() -> None:
    keys = _diff(secret("db", ["user"]), secret("db", ["user", "password"], resource_version="2"))
    assert _paths(keys)["data[password]"] == (None, "present")
    rotated = _diff(secret("db", ["user"]), secret("db", ["user"], resource_version="7"))
    assert set(_paths(rotated)) == {"data"}


def test_service_selector_and_ports() -> None:
    record = _diff(service("web"), service("web", selector={"app": "webb"}, ports=[("http", 8080, 9090)]))
    paths = _paths(record)
    assert paths["selector"] == ("app=web", "app=webb")
    assert paths["ports[http]"] == ("8080->http/TCP", "8080->9090/TCP")


def test_network_policy_creation_deletion_and_update() -> None:
    journal = ChangeJournal()
    policy = network_policy("deny", {"app": "payments"}, ingress_from=[])
    created = change(journal, None, policy, 1)
    assert created is not None
    assert created.change == ChangeType.CREATED
    assert ("ingress", (None, "<deny all>")) in _paths(created).items()
    updated = change(journal, policy, network_policy("deny", {"app": "payments"}, ingress_from=[{"app": "web"}]), 2)
    assert updated is not None
    assert "ingress" in _paths(updated)
    deleted = change(journal, policy, None, 3)
    assert deleted is not None
    assert deleted.change == ChangeType.DELETED
    assert [record.change for record in journal] == [ChangeType.CREATED, ChangeType.UPDATED, ChangeType.DELETED]


def test_resource_quota_creation_deletion_and_hard_change() -> None:
    journal = ChangeJournal()
    created = change(journal, None, quota("compute", {"limits.cpu": "4"}), 1)
    assert created is not None
    assert created.change == ChangeType.CREATED
    lowered = change(journal, quota("compute", {"limits.cpu": "4"}), quota("compute", {"limits.cpu": "1"}), 2)
    assert lowered is not None
    assert _paths(lowered) == {"hard[limits.cpu]": ("4", "1")}
    usage_only = change(
        journal, quota("compute", {"limits.cpu": "1"}), quota("compute", {"limits.cpu": "1"}, {"limits.cpu": "1"}), 3
    )
    assert usage_only is None
    deleted = change(journal, quota("compute", {"limits.cpu": "1"}), None, 4)
    assert deleted is not None
    assert deleted.change == ChangeType.DELETED


@pytest.mark.parametrize(
    ("old", "new", "path"),
    [
        (
            ingress("shop", [("a.com", "/", "web", 80)]),
            ingress("shop", [("a.com", "/", "web2", 80)]),
            "backends[a.com/]",
        ),
        (hpa("web", "web", maximum=5), hpa("web", "web", maximum=2), "maxReplicas"),
        (pvc("data", storage_class="a"), pvc("data", storage_class="b"), "storageClassName"),
        (limit_range("lr", {"cpu": "1"}), limit_range("lr", {"cpu": "500m"}), "limits[Container].max"),
        (node("node-b"), node("node-b", unschedulable=True), "unschedulable"),
        (node("node-b"), node("node-b", taints=[{"key": "k", "effect": "NoSchedule"}]), "taints"),
    ],
)
def test_other_kinds_diff(old: Obj, new: Obj, path: str) -> None:
    assert path in _paths(_diff(old, new))


def test_node_condition_change_is_status_only() -> None:
    assert change(ChangeJournal(), node("node-b"), node("node-b", ready=False), 5) is None


def test_pods_events_and_owned_replicasets_are_not_journaled() -> None:
    journal = ChangeJournal()
    assert change(journal, None, pod("web-1"), 1) is None
    assert change(journal, None, event("Pod", "web-1", "BackOff", "x", 1), 1) is None
    assert change(journal, None, replica_set("web-abc12", "web", "1", 1), 1) is None
    assert len(journal) == 0


def test_standalone_replicaset_is_journaled() -> None:
    standalone = replica_set("legacy-abc12", "legacy", "1", 1)
    standalone["metadata"].pop("ownerReferences")
    assert change_between(None, project(standalone), at(1)) is not None


def test_describe_is_short_and_readable() -> None:
    record = _diff(
        deployment("web", containers=[container(image="web:1.0")]),
        deployment("web", containers=[container(image="web:1.1")]),
    )
    assert record.describe().startswith(
        "Deployment shop/web updated at 10:05:00Z: template.containers[app].image: web:1.0 -> web:1.1"
    )


def _record(minutes: float, name: str = "web", namespace: str = "shop", kind: str = "Deployment") -> ChangeRecord:
    return ChangeRecord(at(minutes), kind, namespace, name, ChangeType.UPDATED, (FieldChange("replicas", "1", "2"),))


def test_queries_by_object_window_and_namespace() -> None:
    journal = ChangeJournal()
    for record in (_record(1), _record(5, "api"), _record(9, "web", "other"), _record(3)):
        journal.add(record)
    assert [record.time for record in journal] == [at(1), at(3), at(5), at(9)]
    assert [r.time for r in journal.for_object(ref("Deployment", "web"))] == [at(1), at(3)]
    assert [r.name for r in journal.between(at(2), at(5))] == ["web", "api"]
    assert [r.name for r in journal.in_namespace("other")] == ["web"]
    assert journal.query(kinds=["ConfigMap"]) == []
    assert len(journal.query(namespace="shop", start=at(3))) == 2


def test_max_records_evicts_oldest_and_counts() -> None:
    journal = ChangeJournal(max_records=3, started_at=at(0))
    for minute in range(1, 6):
        journal.add(_record(minute))
    assert len(journal) == 3
    assert journal.evicted_count == 2
    assert journal.oldest_time == at(3)
    assert journal.covers_since == at(2)


def test_max_age_evicts_old_records() -> None:
    journal = ChangeJournal(max_age=timedelta(hours=1), started_at=at(-300))
    journal.add(_record(-100))
    journal.add(_record(-50))
    assert journal.evicted_count == 0
    journal.add(_record(0))
    assert journal.evicted_count == 1
    assert journal.covers_since == at(-100)
    assert journal.prune(at(100)) == 2
    assert len(journal) == 0
    assert journal.evicted_count == 3
    assert journal.oldest_time is None


def test_covers_since_is_start_when_nothing_evicted() -> None:
    journal = ChangeJournal(started_at=at(-10))
    journal.add(_record(1))
    assert journal.covers_since == at(-10)
    assert ChangeJournal().covers_since is None


def test_seed_marks_reconstructed_and_records_gap() -> None:
    journal = ChangeJournal(started_at=at(10))
    journal.seed([_record(2)], gap_start=at(0), gap_end=at(10))
    (record,) = list(journal)
    assert record.reconstructed
    assert journal.gap is not None
    assert (journal.gap.start, journal.gap.end) == (at(0), at(10))
    assert journal.gaps_overlapping(at(5), at(20)) == [journal.gap]
    assert journal.gaps_overlapping(at(11), at(20)) == []


def test_copy_is_independent() -> None:
    journal = ChangeJournal()
    journal.add(_record(1))
    clone = journal.copy()
    clone.add(_record(2))
    assert (len(journal), len(clone)) == (1, 2)


def _replica_sets() -> list[Workload]:
    objects = [
        replica_set("web-aaa11", "web", "1", -100, [container(image="web:1.0")]),
        replica_set("web-bbb22", "web", "2", -50, [container(image="web:1.1")]),
        replica_set("web-ccc33", "web", "3", 5, [container(image="web:1.2", env={"X": "1"})], replicas=2),
    ]
    return [item for item in map(project, objects) if isinstance(item, Workload)]


def test_rollouts_reconstructed_from_replicaset_revisions() -> None:
    records = records_from_replicasets(_replica_sets())
    assert [(r.time, r.change) for r in records] == [
        (at(-100), ChangeType.CREATED),
        (at(-50), ChangeType.UPDATED),
        (at(5), ChangeType.UPDATED),
    ]
    latest = records[-1]
    assert latest.reconstructed
    assert latest.source == ChangeSource.REPLICASET_REVISION
    assert latest.ref == ref("Deployment", "web")
    assert _paths(latest)["revision"] == ("2", "3")
    assert _paths(latest)[f"{APP}.image"] == ("web:1.1", "web:1.2")
    assert _paths(latest)[f"{APP}.env[X]"] == (None, "1")
    assert "template.labels" not in _paths(latest)


def test_scale_reconstructed_from_events_skips_rollout_steps() -> None:
    events = [
        project(
            event(
                "Deployment",
                "web",
                "ScalingReplicaSet",
                "Scaled up replica set web-ccc33 from 0 to 2",
                5,
                event_type="Normal",
            )
        ),
        project(
            event(
                "Deployment",
                "web",
                "ScalingReplicaSet",
                "Scaled down replica set web-ccc33 from 2 to 0",
                20,
                event_type="Normal",
            )
        ),
        project(
            event(
                "Deployment",
                "web",
                "ScalingReplicaSet",
                "Scaled down replica set web-bbb22 to 0",
                6,
                event_type="Normal",
            )
        ),
    ]
    records = records_from_events([e for e in events if isinstance(e, Event)], _replica_sets())
    assert len(records) == 1
    assert records[0].change == ChangeType.SCALED
    assert records[0].time == at(20)
    assert _paths(records[0]) == {"replicas": ("2", "0")}
    assert records[0].source == ChangeSource.EVENT


def test_job_and_cronjob_fields() -> None:
    def cron(schedule: str, image: str) -> Obj:
        return {
            "kind": "CronJob",
            "metadata": {"name": "nightly", "namespace": "shop"},
            "spec": {
                "schedule": schedule,
                "jobTemplate": {"spec": {"template": {"spec": {"containers": [container(image=image)]}}}},
            },
        }

    paths = _paths(_diff(cron("0 2 * * *", "a:1"), cron("0 3 * * *", "a:2")))
    assert paths["schedule"] == ("0 2 * * *", "0 3 * * *")
    assert paths[f"{APP}.image"] == ("a:1", "a:2")

    def job(backoff: int) -> Obj:
        return {
            "kind": "Job",
            "metadata": {"name": "export", "namespace": "shop"},
            "spec": {"backoffLimit": backoff, "template": {"spec": {"containers": [container()]}}},
        }

    assert _paths(_diff(job(1), job(6)))["backoffLimit"] == ("1", "6")


def test_queries_for_one_object_follow_adds_and_evictions() -> None:
    from datetime import UTC, datetime

    from inquest.engine.refs import ObjectRef

    start = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    journal = ChangeJournal(max_records=3)

    def change(minute: int, name: str) -> ChangeRecord:
        return ChangeRecord(start + timedelta(minutes=minute), "Deployment", "shop", name, ChangeType.UPDATED)

    web, api = ObjectRef("Deployment", "shop", "web"), ObjectRef("Deployment", "shop", "api")
    journal.add(change(1, "web"))
    journal.add(change(2, "api"))
    assert [record.time.minute for record in journal.for_object(web)] == [1]
    journal.add(change(0, "web"))  # late, out of order
    assert [record.time.minute for record in journal.for_object(web)] == [0, 1]
    journal.add(change(3, "web"))  # a fourth record: the oldest (web at 0) is evicted
    assert [record.time.minute for record in journal.for_object(web)] == [1, 3]
    assert [record.time.minute for record in journal.query(ref=web, start=start + timedelta(minutes=2))] == [3]
    assert [record.name for record in journal.for_object(api)] == ["api"]
    copy = journal.copy()
    journal.add(change(4, "api"))
    assert [record.time.minute for record in copy.for_object(api)] == [2]
    assert [record.time.minute for record in journal.for_object(api)] == [2, 4]
    assert [record.time.minute for record in journal.for_object(web)] == [3]  # web at 1 was evicted by the cap
