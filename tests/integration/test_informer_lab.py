"""The informers against the lab's API server: the cache warms from paged lists, follows adds, updates and
deletions from the watch, and Secrets arrive as metadata only."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from inquest.cache import ClusterCache
from inquest.clients.informer import CacheFeed, Delivery, ResourceInformer, Scope
from inquest.clients.kube import api_client_from_kubeconfig
from inquest.engine.refs import ObjectRef
from inquest.lab import cluster, operator
from inquest.rbac import SECRETS, WATCHED_RESOURCES

pytestmark = pytest.mark.lab


def config_map(name: str, value: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"key": value}}


async def eventually(check: Any, what: str) -> None:
    deadline = time.monotonic() + 15
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_the_cache_follows_the_cluster_as_the_operators_identity(lab: cluster.Lab, namespace: str) -> None:
    operator.install_api(lab)  # the operator identity's RBAC, whatever ran before in the session
    for index in range(3):
        lab.api("POST", f"/api/v1/namespaces/{namespace}/configmaps", config_map(f"settings-{index}", "a"))
    cache = ClusterCache()
    reader = api_client_from_kubeconfig(str(lab.kubeconfig_operator), connections=len(WATCHED_RESOURCES) + 2)
    feed = CacheFeed(cache, reader, WATCHED_RESOURCES, namespaces=[namespace])
    feed.start()
    try:
        await asyncio.wait_for(feed.ready.wait(), timeout=30)
        assert cache.live
        assert all(cache.get(ObjectRef("ConfigMap", namespace, f"settings-{i}")) is not None for i in range(3))
        assert len(cache.journal) == 0  # the listing is state, not changes

        lab.api("POST", f"/api/v1/namespaces/{namespace}/configmaps", config_map("late", "a"))
        await eventually(lambda: cache.get(ObjectRef("ConfigMap", namespace, "late")) is not None, "the new one")
        lab.api("PUT", f"/api/v1/namespaces/{namespace}/configmaps/settings-0", config_map("settings-0", "b"))
        await eventually(
            lambda: any(record.ref.name == "settings-0" for record in cache.journal), "the edit in the journal"
        )
        lab.api("DELETE", f"/api/v1/namespaces/{namespace}/configmaps/settings-1")
        await eventually(lambda: cache.get(ObjectRef("ConfigMap", namespace, "settings-1")) is None, "the deletion")
    finally:
        feed.stop()
        reader.close()


def test_secrets_arrive_as_metadata_only(lab: cluster.Lab, namespace: str) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db-credentials", "labels": {"app": "db"}},
        "stringData": {"password": "hunter2-not-for-inquest"},
    }
    lab.api("POST", f"/api/v1/namespaces/{namespace}/secrets", secret)
    delivered: list[Delivery] = []
    listed = threading.Event()

    def deliver(_scope: Scope, batch: list[Delivery]) -> None:
        delivered.extend(batch)
        if any(kind == "LISTED" for kind, _ in batch):
            listed.set()

    stop = threading.Event()
    reader = api_client_from_kubeconfig(str(lab.kubeconfig_admin))
    informer = ResourceInformer(reader, Scope(SECRETS, namespace), deliver, stop)
    thread = threading.Thread(target=informer.run, daemon=True)
    thread.start()
    try:
        assert listed.wait(15)
        (body,) = [body for kind, body in delivered if kind == "ADDED"]
        assert body["kind"] == "Secret"
        assert body["metadata"]["name"] == "db-credentials"
        assert body["metadata"]["labels"] == {"app": "db"}
        assert "data" not in body
        assert "stringData" not in body
        assert "hunter2" not in repr(delivered)
    finally:
        stop.set()
        reader.close()
