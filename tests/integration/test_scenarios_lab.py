"""The fast subset of the development scenarios, replayed by the benchmark's runner against the lab with the
operator running as its own process. Every scenario must be answered right: a regression in reasoning fails here."""

from __future__ import annotations

from pathlib import Path

import pytest

from inquest.lab import cluster
from inquest.lab.scenarios import bench, model, report, scoring

pytestmark = pytest.mark.lab

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def test_fast_scenarios_are_answered_right(running_operator: cluster.Lab, tmp_path: Path) -> None:
    scenarios = model.load_directory(SCENARIOS, tag="fast")
    scores = bench.run_scenarios(running_operator, scenarios, parallel=len(scenarios))
    print(report.table(scores))
    assert [s.name for s in scores] == [s.name for s in scenarios]
    failures = [
        f"{s.name}: error={s.error} top1={s.top_finding} ({s.top_category}, {s.top_confidence}%) "
        f"verdict={s.actual_verdict} (want {s.expected_verdict})"
        for s in scores
        if s.error or not s.top1 or not s.verdict or s.confident_wrong
    ]
    assert failures == []
    summary = scoring.summarize(scores)
    assert summary["confidentWrong"] == 0
    assert summary["noFaultFalsePositive"] == 0
    assert all(s.latency_millis is not None and s.latency_millis > 0 for s in scores)
    # The runner removed what it made: no scenario namespace is left behind (terminating ones are on their way).
    namespaces = running_operator.api("GET", "/api/v1/namespaces")["items"]
    live = [n["metadata"]["name"] for n in namespaces if n["metadata"]["name"].startswith("sc-")]
    terminating = [n["metadata"]["name"] for n in namespaces if n.get("status", {}).get("phase") == "Terminating"]
    assert set(live) <= set(terminating)
