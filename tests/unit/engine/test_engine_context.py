from __future__ import annotations

from datetime import timedelta

from engine_builders import (
    at,
    change,
    container,
    context,
    deployment,
    event,
    journal_of,
    projected,
    ref,
    service,
    signal,
)

from inquest.engine.context import EvidenceContext
from inquest.engine.journal import ChangeJournal


def test_build_accepts_json_and_projections() -> None:
    ctx = EvidenceContext.build(
        [service("web"), *projected(deployment("web")), {"kind": "Lease"}], ChangeJournal(), at(0), at(30)
    )
    assert ctx.snapshot.get(ref("Service", "web")) is not None
    assert ctx.snapshot.get(ref("Deployment", "web")) is not None
    assert ctx.now == at(30)
    assert ctx.window_is_current


def test_changes_respect_the_window_and_the_lookback() -> None:
    journal = journal_of()
    change(journal, deployment("web", replicas=1), deployment("web", replicas=2), -5)
    change(journal, deployment("web", replicas=2), deployment("web", replicas=3), 10)
    change(journal, deployment("web", replicas=3), deployment("web", replicas=4), 40)
    ctx = context([], journal)
    assert [record.time for record in ctx.changes()] == [at(10)]
    ctx.change_lookback = timedelta(minutes=10)
    assert [record.time for record in ctx.changes(kinds=["Deployment"])] == [at(-5), at(10)]
    assert ctx.changes(kinds=["ConfigMap"]) == []


def test_events_overlapping_the_window_count() -> None:
    objects = [
        event("Pod", "a", "BackOff", "x", -60, 5),
        event("Pod", "b", "BackOff", "x", -60, -30),
        event("Pod", "c", "Unhealthy", "x", 20, 40, event_type="Normal"),
        event("Pod", "d", "BackOff", "x", 45),
    ]
    ctx = context(objects)
    assert [e.involved.name for e in ctx.events()] == ["a", "c"]
    assert [e.involved.name for e in ctx.events(warning_only=True)] == ["a"]
    assert [e.involved.name for e in ctx.events(reasons=["Unhealthy"])] == ["c"]
    assert [e.involved.name for e in ctx.events(ref=ref("Pod", "a"))] == ["a"]


def test_signals_need_an_onset_inside_the_window() -> None:
    metrics = [signal(ref("Service", "web"), "error_rate", 5), signal(ref("Service", "web"), "latency", -10)]
    ctx = context([], metrics=metrics)
    assert [s.signal_name for s in ctx.signals()] == ["error_rate"]
    assert ctx.signals(["latency"]) == []


def test_present_state_counts_only_in_a_current_window() -> None:
    current = context([])
    past = context([], start=0, end=30, now=300)
    assert current.holds_in_window(None)
    assert not past.holds_in_window(None)
    assert past.holds_in_window(at(10))


def test_with_journal_keeps_the_graph() -> None:
    ctx = context([deployment("web", containers=[container()]), service("web")])
    graph = ctx.graph
    other = ctx.with_journal(journal_of())
    assert other.graph is graph
    assert other.journal is not ctx.journal
