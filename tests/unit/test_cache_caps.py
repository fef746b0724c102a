"""The cache's memory caps: each test fills the cache past one cap and checks what is kept, what is dropped, and
that every drop is counted (CacheStatistics and the operator's metrics). Objects mirror the cluster and have no
cap: what the cluster holds, the cache holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from inquest.cache import EVENT_SWEEP_INTERVAL, ClusterCache
from inquest.engine.journal import ChangeJournal
from inquest.observability import Observability

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def event(namespace: str, name: str, moment: datetime = T0) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{namespace}-{name}"},
        "involvedObject": {"kind": "Pod", "namespace": namespace, "name": "web-1"},
        "reason": "BackOff",
        "message": "Back-off restarting failed container",
        "type": "Warning",
        "count": 1,
        "firstTimestamp": stamp(moment),
        "lastTimestamp": stamp(moment),
    }


def pod(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{namespace}-{name}"},
        "spec": {"containers": [{"name": "app", "image": "registry.example.com/app:1"}]},
        "status": {"phase": "Running"},
    }


def event_names(cache: ClusterCache, namespace: str) -> list[str]:
    return [item.meta.name for item in cache.events([namespace]) if item.meta.namespace == namespace]


def test_a_namespace_ring_keeps_its_newest_events_and_counts_the_rest() -> None:
    cache = ClusterCache(events_per_namespace=3)
    for index in range(5):
        cache.observe(event("shop", f"e{index}"), T0)
    assert event_names(cache, "shop") == ["e2", "e3", "e4"]
    statistics = cache.statistics()
    assert (statistics.events, statistics.events_evicted) == (3, 2)


def test_the_same_event_seen_again_is_replaced_not_counted_twice() -> None:
    cache = ClusterCache(events_per_namespace=3, max_events=3)
    for _ in range(10):
        cache.observe(event("shop", "e0"), T0)
    assert (cache.statistics().events, cache.statistics().events_evicted) == (1, 0)


def test_all_rings_together_are_capped_and_the_busiest_namespace_pays() -> None:
    cache = ClusterCache(events_per_namespace=100, max_events=10)
    cache.observe(event("quiet", "rare"), T0)
    for index in range(20):
        cache.observe(event("noisy", f"n{index:02d}"), T0)
    for index in range(3):
        cache.observe(event("other", f"o{index}"), T0)
    statistics = cache.statistics()
    assert statistics.events == 10
    assert statistics.events_evicted == 14
    assert event_names(cache, "quiet") == ["rare"]
    assert event_names(cache, "other") == ["o0", "o1", "o2"]
    assert event_names(cache, "noisy") == ["n14", "n15", "n16", "n17", "n18", "n19"]


def test_expired_events_leave_a_ring_when_the_next_one_arrives() -> None:
    cache = ClusterCache(event_retention=timedelta(hours=1))
    cache.observe(event("shop", "old", T0), T0)
    later = T0 + timedelta(hours=2)
    cache.observe(event("shop", "new", later), later)
    assert event_names(cache, "shop") == ["new"]
    assert cache.statistics().events_evicted == 1


def test_a_ring_that_receives_nothing_more_still_expires_and_its_namespace_is_let_go() -> None:
    cache = ClusterCache(event_retention=timedelta(hours=1))
    for index in range(50):
        cache.observe(event("deleted-ns", f"e{index}"), T0)
    later = T0 + timedelta(hours=2)
    assert later - T0 >= EVENT_SWEEP_INTERVAL
    # Only other namespaces' Events arrive from now on; nobody asks about deleted-ns.
    cache.observe(event("live", "e0", later), later)
    statistics = cache.statistics()
    assert statistics.events == 1
    assert statistics.events_evicted == 50
    assert statistics.namespaces == 1
    assert event_names(cache, "deleted-ns") == []


def test_expire_events_can_be_called_directly_and_keeps_what_is_recent() -> None:
    cache = ClusterCache(event_retention=timedelta(hours=1))
    cache.observe(event("a", "old", T0), T0)
    cache.observe(event("b", "recent", T0 + timedelta(minutes=50)), T0 + timedelta(minutes=50))
    assert cache.expire_events(T0 + timedelta(minutes=70)) == 1
    assert event_names(cache, "a") == []
    assert event_names(cache, "b") == ["recent"]


def test_namespaces_emptied_of_objects_are_let_go() -> None:
    cache = ClusterCache()
    for index in range(100):
        cache.observe(pod(f"ci-{index}", "runner"), T0)
    assert cache.statistics().namespaces == 100
    for index in range(50):
        cache.forget(pod(f"ci-{index}", "runner"), T0)
    # The other 50 vanished while a watch was down: the relist forgets them.
    assert cache.forget_missing("Pod", None, [], T0) == 50
    assert cache.statistics().namespaces == 0
    assert cache.namespaces() == []


def test_journal_evictions_reach_the_statistics_and_the_metrics() -> None:
    cache = ClusterCache(journal=ChangeJournal(max_records=2))
    cache.go_live()
    for index in range(5):
        cache.observe(pod("shop", f"p{index}"), T0)  # pods are not journaled; Services are
        cache.observe(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": f"s{index}", "namespace": "shop", "uid": f"uid-s{index}"},
                "spec": {"selector": {"app": f"s{index}"}, "ports": [{"port": 80}]},
            },
            T0 + timedelta(seconds=index),
        )
    statistics = cache.statistics()
    assert (statistics.journal_records, statistics.journal_evicted) == (2, 3)
    values = {
        sample.name: sample.value
        for family in text_string_to_metric_families(Observability(cache).exposition().decode())
        for sample in family.samples
    }
    assert values["inquest_journal_records_evicted_total"] == 3
    assert values["inquest_journal_records"] == 2


def test_updates_of_cached_objects_are_counted_by_kind() -> None:
    cache = ClusterCache()
    cache.observe(pod("shop", "a"), T0)  # first sight: not an update
    for _ in range(3):
        cache.observe(pod("shop", "a"), T0)
    cache.observe(event("shop", "e0"), T0)  # Events are not objects the cache mirrors
    assert cache.statistics().updates_by_kind == {"Pod": 3}
    exposition = Observability(cache).exposition().decode()
    assert 'inquest_cache_updates_observed_total{kind="Pod"} 3.0' in exposition
