"""Scores of scenario answers, from plain status documents."""

from __future__ import annotations

from typing import Any

import pytest

from inquest.lab.scenarios import report, scoring
from inquest.lab.scenarios.model import Expectation

NAMESPACE = "sc-x-1234"


def expectation(**fields: Any) -> Expectation:
    base: dict[str, Any] = {
        "rootCause": {"kind": "Deployment", "name": "payments"},
        "aliases": [{"kind": "Pod", "namePrefix": "payments-"}],
        "categories": ["BadRollout", "CrashLoop"],
        "verdict": "RootCauseIdentified",
        "mustNotBlame": [{"kind": "Deployment", "name": "cart"}],
    }
    base.update(fields)
    return Expectation.model_validate(base)


def status(*findings: tuple[str, str, str, int], reason: str = "RootCauseIdentified") -> dict[str, Any]:
    return {
        "observedGeneration": 1,
        "conditions": [{"type": "Concluded", "status": "True", "reason": reason}],
        "findings": [
            {
                "rank": rank,
                "ref": {"kind": kind, "namespace": NAMESPACE, "name": name},
                "category": category,
                "confidence": confidence,
            }
            for rank, (kind, name, category, confidence) in enumerate(findings, start=1)
        ],
        "unknowns": ["Prometheus: down"],
    }


def test_right_top_finding_scores_everything() -> None:
    result = scoring.score("s", expectation(), NAMESPACE, status(("Deployment", "payments", "BadRollout", 82)))
    assert (result.top1, result.top3, result.category, result.verdict) == (True, True, True, True)
    assert not result.confident_wrong
    assert result.calibration_point == (0.82, True)
    assert result.unknowns == 1


def test_an_alias_counts_and_a_wrong_category_does_not() -> None:
    result = scoring.score("s", expectation(), NAMESPACE, status(("Pod", "payments-6c9-xk2", "OOMKilled", 60)))
    assert result.top1
    assert not result.category


def test_a_finding_in_another_namespace_is_not_the_expected_object() -> None:
    answer = status(("Deployment", "payments", "BadRollout", 82))
    answer["findings"][0]["ref"]["namespace"] = "elsewhere"
    assert not scoring.score("s", expectation(), NAMESPACE, answer).top1


def test_confident_and_wrong_is_counted_and_second_place_is_top3() -> None:
    answer = status(("Deployment", "checkout", "BadRollout", 75), ("Deployment", "payments", "CrashLoop", 40))
    result = scoring.score("s", expectation(), NAMESPACE, answer)
    assert not result.top1
    assert result.top3
    assert result.confident_wrong
    assert result.calibration_point == (0.75, False)


def test_wrong_but_unsure_is_not_confident_wrong() -> None:
    result = scoring.score("s", expectation(), NAMESPACE, status(("Deployment", "checkout", "BadRollout", 69)))
    assert not result.confident_wrong


def test_blaming_a_must_not_blame_object_confidently_is_an_error_even_below_the_top() -> None:
    answer = status(("Deployment", "payments", "BadRollout", 90), ("Deployment", "cart", "BadRollout", 70))
    result = scoring.score("s", expectation(), NAMESPACE, answer)
    assert result.top1
    assert result.confident_wrong
    assert result.must_not_blame_hit == ["Deployment/cart"]


def test_verdict_mismatch() -> None:
    result = scoring.score("s", expectation(), NAMESPACE, status(reason="Inconclusive"))
    assert not result.verdict
    assert result.actual_verdict == "Inconclusive"
    assert result.calibration_point is None
    assert not result.top1


@pytest.mark.parametrize(
    ("confidence", "false_positive"),
    [(None, False), (30, False), (49, False), (50, True), (80, True)],
)
def test_no_fault_controls(confidence: int | None, false_positive: bool) -> None:
    control = Expectation.model_validate({"none": True, "verdict": "NoFaultFound"})
    findings = [] if confidence is None else [("Deployment", "web", "BadRollout", confidence)]
    result = scoring.score("c", control, NAMESPACE, status(*findings, reason="NoFaultFound"))
    assert result.no_fault_false_positive is false_positive
    assert result.top1 is (not false_positive)
    assert result.confident_wrong is (confidence is not None and confidence >= 70)
    if confidence is not None:
        assert result.calibration_point == (confidence / 100, False)


def test_failed_scenarios_are_wrong_on_every_count_and_keep_their_error() -> None:
    result = scoring.failed("s", expectation(), "no answer within 60s")
    assert not any((result.top1, result.top3, result.category, result.verdict))
    assert result.as_json()["error"] == "no answer within 60s"


def test_brier_and_ece_by_hand() -> None:
    points = [(0.9, True), (0.9, False), (0.3, False), (0.1, False)]
    # Brier: (0.01 + 0.81 + 0.09 + 0.01) / 4
    assert scoring.brier(points) == pytest.approx(0.23)
    # Bins: [0.8, 1.0] holds 0.9, 0.9 with accuracy 0.5; [0.2, 0.4) holds 0.3 with 0; [0, 0.2) holds 0.1 with 0.
    assert scoring.expected_calibration_error(points) == pytest.approx(0.5 * 0.4 + 0.25 * 0.3 + 0.25 * 0.1)
    assert scoring.brier([]) is None
    assert scoring.expected_calibration_error([]) is None
    assert scoring.calibration_bins([(1.0, True)])[-1] == (1, 1.0, 1.0)


def test_summary_has_the_documented_keys_and_rates() -> None:
    right = scoring.score("a", expectation(), NAMESPACE, status(("Deployment", "payments", "BadRollout", 80)))
    right.latency_millis = 100.0
    wrong = scoring.score("b", expectation(), NAMESPACE, status(("Deployment", "cart", "BadRollout", 90)))
    wrong.latency_millis = 300.0
    summary = scoring.summarize([right, wrong])
    assert list(summary) == [
        "scenarios", "top1", "top3", "category", "verdict", "confidentWrong", "noFaultFalsePositive", "brier",
        "ece", "latencyP50Millis", "latencyP95Millis", "latencyMaxMillis",
    ]  # fmt: skip
    assert summary["scenarios"] == 2
    assert summary["top1"] == 0.5
    assert summary["confidentWrong"] == 1
    assert summary["latencyP50Millis"] == 100.0
    assert summary["latencyMaxMillis"] == 300.0


def test_prometheus_share_uses_the_operators_own_time() -> None:
    first = scoring.score("a", expectation(), NAMESPACE, status())
    first.operator_millis, first.prometheus_millis = 100.0, 60.0
    second = scoring.score("b", expectation(), NAMESPACE, status())
    second.operator_millis, second.prometheus_millis = 300.0, 40.0
    assert scoring.prometheus_share([first, second]) == pytest.approx(0.25)
    assert scoring.prometheus_share([]) is None


def test_table_and_markdown_show_every_scenario_and_errors() -> None:
    right = scoring.score("right-one", expectation(), NAMESPACE, status(("Deployment", "payments", "BadRollout", 80)))
    broken = scoring.failed("broken-one", expectation(), "settle: timed out")
    text = report.table([right, broken])
    assert "right-one" in text
    assert "ERROR: settle: timed out" in text
    block = report.markdown_block([right, broken], "a machine", "tests/scenarios")
    assert block.startswith(report.FIGURES_START)
    assert block.endswith(report.FIGURES_END)
    assert "| broken-one | - | - | - | - none | error: settle: timed out |" in block


def test_plots_are_written(tmp_path: Any) -> None:
    right = scoring.score("a", expectation(), NAMESPACE, status(("Deployment", "payments", "BadRollout", 80)))
    right.latency_millis = 120.0
    paths = report.plot([right], tmp_path)
    assert [path.name for path in paths] == [report.LATENCY_PLOT, report.RELIABILITY_PLOT]
    assert all(path.read_bytes().startswith(b"\x89PNG") for path in paths)
