"""The informers' feed into the cache: scopes, deliveries in order, readiness after every first listing, and a
relist forgetting what disappeared. The informers' HTTP side runs against the lab (tests/integration)."""

from __future__ import annotations

import asyncio
from typing import Any

from inquest.cache import ClusterCache
from inquest.clients.informer import CacheFeed, Scope, scopes
from inquest.engine.refs import ObjectRef
from inquest.rbac import SECRETS, WATCHED_RESOURCES, WatchedResource

PODS = WatchedResource("", "v1", "pods", "Pod")
NODES = WatchedResource("", "v1", "nodes", "Node", namespaced=False)


def pod(name: str, namespace: str = "shop") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}",
                     "creationTimestamp": "2026-11-25T10:00:00Z"},
        "spec": {"containers": [{"name": "app", "image": "registry.example.com/app:1"}]},
        "status": {"phase": "Running"},
    }  # fmt: skip


def test_scopes_are_cluster_wide_or_per_namespace_except_for_cluster_scoped_kinds() -> None:
    assert [s.label for s in scopes([PODS, NODES], None)] == ["pods.core", "nodes.core"]
    labels = [s.label for s in scopes([PODS, NODES], ["a", "b"])]
    assert labels == ["pods.core in a", "pods.core in b", "nodes.core"]
    assert Scope(PODS, "a").path() == "/api/v1/namespaces/a/pods"
    assert Scope(NODES, None).path() == "/api/v1/nodes"
    deployments = next(r for r in WATCHED_RESOURCES if r.plural == "deployments")
    assert Scope(deployments, None).path() == "/apis/apps/v1/deployments"


def test_only_nodes_are_cluster_scoped_and_only_secrets_are_read_as_metadata() -> None:
    assert [r.kind for r in WATCHED_RESOURCES if not r.namespaced] == ["Node"]
    assert [r.kind for r in (*WATCHED_RESOURCES, SECRETS) if r.metadata_only] == ["Secret"]


async def test_ready_only_after_every_scope_listed_and_then_the_cache_is_live() -> None:
    cache = ClusterCache()
    feed = CacheFeed(cache, api_client=None, resources=[PODS, NODES])
    pods_scope, nodes_scope = scopes([PODS, NODES], None)
    feed.apply(pods_scope, [("ADDED", pod("a")), ("LISTED", {"items": [pod("a")]})])
    assert not feed.ready.is_set()
    assert not cache.live
    feed.apply(nodes_scope, [("LISTED", {"items": []})])
    assert feed.ready.is_set()
    assert cache.live
    # Listed before going live: state, not a change.
    assert len(cache.journal) == 0
    await asyncio.wait_for(feed.ready.wait(), timeout=1)


def test_watch_events_after_going_live_are_changes_and_deletions_forget() -> None:
    cache = ClusterCache()
    feed = CacheFeed(cache, api_client=None, resources=[PODS])
    (scope,) = scopes([PODS], None)
    feed.apply(scope, [("LISTED", {"items": []})])
    feed.apply(scope, [("ADDED", pod("b"))])
    assert cache.get(ObjectRef("Pod", "shop", "b")) is not None
    feed.apply(scope, [("DELETED", pod("b"))])
    assert cache.get(ObjectRef("Pod", "shop", "b")) is None


def test_a_relist_forgets_objects_deleted_while_the_watch_was_down_in_its_scope_only() -> None:
    cache = ClusterCache()
    feed = CacheFeed(cache, api_client=None, resources=[PODS], namespaces=["shop", "web"])
    shop, web = scopes([PODS], ["shop", "web"])
    feed.apply(shop, [("ADDED", pod("a")), ("ADDED", pod("b")), ("LISTED", {"items": [pod("a"), pod("b")]})])
    feed.apply(web, [("ADDED", pod("c", "web")), ("LISTED", {"items": [pod("c", "web")]})])
    assert feed.ready.is_set()
    # The watch in shop expired; the relist no longer has b.
    feed.apply(shop, [("ADDED", pod("a")), ("LISTED", {"items": [pod("a")]})])
    assert cache.get(ObjectRef("Pod", "shop", "a")) is not None
    assert cache.get(ObjectRef("Pod", "shop", "b")) is None
    assert cache.get(ObjectRef("Pod", "web", "c")) is not None


def test_forget_missing_keeps_events_and_other_kinds() -> None:
    cache = ClusterCache()
    cache.observe(pod("a"))
    assert cache.forget_missing("Event", None, []) == 0
    assert cache.forget_missing("Deployment", None, []) == 0
    assert cache.forget_missing("Pod", None, []) == 1
