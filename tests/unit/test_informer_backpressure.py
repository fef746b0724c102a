"""The informers' cap on deliveries waiting for the event loop: when the loop falls behind, an informer's thread
waits (and the wait is counted) instead of queueing without end; nothing is lost."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from inquest.cache import ClusterCache
from inquest.clients.informer import CacheFeed, PendingLimit, scopes
from inquest.engine.refs import ObjectRef
from inquest.rbac import WatchedResource

PODS = WatchedResource("", "v1", "pods", "Pod")


def pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop", "uid": f"uid-{name}"},
        "spec": {"containers": [{"name": "app", "image": "registry.example.com/app:1"}]},
        "status": {"phase": "Running"},
    }


async def test_an_informer_waits_while_the_loop_is_behind_and_loses_nothing() -> None:
    cache = ClusterCache()
    stalled: list[str] = []
    feed = CacheFeed(cache, api_client=None, resources=[PODS], on_stall=stalled.append, max_pending_objects=3)
    (scope,) = scopes([PODS], None)
    feed._loop = asyncio.get_running_loop()
    handed: list[int] = []

    def informer() -> None:
        for index in range(10):
            feed._hand_over(scope, [("ADDED", pod(f"p{index}"))])
            handed.append(index)

    thread = threading.Thread(target=informer, daemon=True)
    thread.start()
    try:
        # The loop is held here on purpose (a blocking call on it), so nothing handed over is applied yet.
        time.sleep(0.5)  # noqa: ASYNC251
        assert len(handed) == 3
        assert feed.pending.pending == 3
        assert stalled == ["pods.core"]
        # The loop runs again while the informer is waited for in another thread: the backlog drains.
        await asyncio.to_thread(thread.join, 5)
        await asyncio.sleep(0)
    finally:
        feed.stop()  # a failed assertion must not leave the thread waiting
    assert len(handed) == 10
    assert all(cache.get(ObjectRef("Pod", "shop", f"p{index}")) is not None for index in range(10))
    assert feed.pending.pending == 0
    assert feed.pending.stalls >= 1


def test_a_batch_larger_than_the_limit_passes_alone() -> None:
    limit = PendingLimit(2)
    stop = threading.Event()
    assert limit.reserve(500, stop) is False  # a listing page of 500 with nothing else pending
    waited: list[bool] = []
    thread = threading.Thread(target=lambda: waited.append(limit.reserve(1, stop)))
    thread.start()
    thread.join(timeout=0.3)
    assert thread.is_alive()  # waits for the page to be applied
    limit.release(500)
    thread.join(timeout=2)
    assert waited == [True]
    assert (limit.pending, limit.stalls) == (1, 1)


def test_a_stopping_feed_does_not_wait() -> None:
    limit = PendingLimit(1)
    stop = threading.Event()
    limit.reserve(1, stop)
    stop.set()
    started = time.monotonic()
    limit.reserve(1, stop)
    assert time.monotonic() - started < 0.2
