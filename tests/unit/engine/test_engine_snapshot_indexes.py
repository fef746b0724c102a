"""The snapshot's lookup indexes answer as the plain scans did, and follow objects added after first use."""

from __future__ import annotations

from engine_builders import pod, ref, service, shop_app

from inquest.engine.objects import project
from inquest.engine.snapshot import ClusterSnapshot


def snapshot_of(objects: list[dict[str, object]]) -> ClusterSnapshot:
    return ClusterSnapshot.of(item for item in map(project, objects) if item is not None)


def test_pods_of_a_workload_through_its_replica_set_and_after_an_add() -> None:
    snapshot = snapshot_of([*shop_app("web", pods=2, rs_hash="aa111"), *shop_app("api", pods=3, rs_hash="bb222")])
    web = ref("Deployment", "web")
    assert sorted(p.meta.name for p in snapshot.pods_of(web)) == ["web-aa111-p0", "web-aa111-p1"]
    assert len(snapshot.pods_of(ref("ReplicaSet", "api-bb222"))) == 3
    late = pod("web-aa111-p9", labels={"app": "web", "pod-template-hash": "aa111"}, owner=("ReplicaSet", "web-aa111"))
    projection = project(late)
    assert projection is not None
    snapshot.add(projection)
    assert "web-aa111-p9" in {p.meta.name for p in snapshot.pods_of(web)}
    assert snapshot.pods_of(ref("Deployment", "nothing")) == []


def test_services_and_pods_by_label_set_follow_adds() -> None:
    snapshot = snapshot_of(shop_app("web", pods=2, rs_hash="aa111"))
    labels = {"app": "web", "pod-template-hash": "aa111"}
    assert snapshot.services_selecting_labels("shop", labels) == {ref("Service", "web")}
    extra = project({**service("web-canary"), "spec": {"selector": {"app": "web"}}})
    assert extra is not None
    snapshot.add(extra)
    assert snapshot.services_selecting_labels("shop", labels) == {ref("Service", "web"), ref("Service", "web-canary")}
    groups = snapshot.pods_by_labels("shop")
    assert sum(len(pods) for pods in groups.values()) == 2
    assert snapshot.services_selecting_labels("elsewhere", labels) == set()
