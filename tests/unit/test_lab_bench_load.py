"""bench-load's counting rules, on a hand-written audit log: each request once, in its window, reads and writes
apart; and a run that fell short is called invalid."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from inquest.lab import cluster
from inquest.lab.bench_load import AuditCounts, ChurnFigures, LoadFigures, LoadOptions, count_audit, render

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def entry(
    audit_id: str,
    seconds: float,
    verb: str,
    resource: str,
    name: str = "",
    user: str = cluster.OPERATOR_USER,
    stage: str = "ResponseComplete",
    subresource: str = "",
) -> dict[str, Any]:
    reference = {"resource": resource, "namespace": "load-00", "name": name}
    if subresource:
        reference["subresource"] = subresource
    return {
        "auditID": audit_id,
        "stage": stage,
        "verb": verb,
        "user": {"username": user},
        "objectRef": reference,
        "requestReceivedTimestamp": (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z"),
    }


def test_requests_are_counted_once_in_their_window_and_split(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    entries = [
        entry("w-before", -60, "watch", "pods", stage="ResponseStarted"),  # opened before the window
        entry("w1", 1, "watch", "investigations", stage="ResponseStarted"),
        entry("w1", 1, "watch", "investigations", stage="ResponseComplete"),  # the same watch, closed
        entry("g1", 2, "get", "configmaps", name="inquest"),
        entry("p1", 3, "patch", "investigations", name="load-a", subresource="status"),
        entry("p2", 3, "patch", "investigations", name="load-b", subresource="status"),
        entry("p3", 4, "patch", "investigations", name="someone-else", subresource="status"),
        entry("e1", 3, "create", "events"),
        entry("e2", 4, "create", "events"),
        entry("late", 30, "patch", "investigations", name="load-a", subresource="status"),  # after the window
        entry("c1", 2, "patch", "pods", name="svc-000-x", user=cluster.ADMIN_USER),
        entry("c2", 9, "patch", "pods", name="svc-000-y", user=cluster.ADMIN_USER),
        entry("c3", 3, "get", "pods", name="svc-000-y", user=cluster.ADMIN_USER),
        entry("x1", 3, "patch", "pods", name="svc-000-y", user="system:kube-scheduler"),
    ]
    log.write_text("".join(json.dumps(item) + "\n" for item in entries))
    counts = count_audit(log, T0, T0 + timedelta(seconds=10), {"load-a", "load-b"}, (T0, T0 + timedelta(seconds=5)))
    assert (counts.reads, counts.watches, counts.writes) == (2, 1, 5)
    assert counts.status_patches == {"load-a": 1, "load-b": 1}
    assert counts.event_creates == 2
    assert counts.other_writes == {"patch investigations/status": 1}
    assert counts.churn_patches == 1


def figures(window_rate: float, missing: dict[str, str]) -> LoadFigures:
    churn = ChurnFigures(150, 40, 150, window_rate, 150, 150, 0, "")
    return LoadFigures(
        options=LoadOptions(pods=10, deployments=1, namespaces=1, investigations=2),
        build_seconds={"pods ready": 1.0},
        series=0,
        created=["a", "b"],
        create_failures=[],
        create_seconds=0.1,
        latencies={name: 1.0 for name in ("a", "b") if name not in missing},
        missing=missing,
        verdicts={"NoFaultFound": 2},
        rounds={"a": 1, "b": 1},
        events={"a": 1, "b": 1},
        churn=churn,
        audit=AuditCounts(),
        window_seconds=5,
        peak_rss_mib=100,
        window_peak_rss_mib=100,
        rss_before_mib=90,
        operator_counters={},
        cpu_cores={"operator": 0.5},
        machine_busy_cores=1.0,
    )


def test_a_run_below_the_churn_floor_or_with_one_not_concluded_is_invalid() -> None:
    assert figures(120, {}).problems == []
    assert "Valid run" in render(figures(120, {}))
    slow = figures(80, {})
    assert slow.problems == ["the churn fell below 100 updates/s (80/s)"]
    assert "**INVALID run: the churn fell below 100 updates/s (80/s).**" in render(slow)
    lost = figures(120, {"b": "Investigating"})
    assert lost.problems == ["1 of 2 Investigations did not conclude"]
    assert "- b: Investigating" in render(lost)
