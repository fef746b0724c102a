"""kubectl inquest's rendering, on plain Investigation dicts: report, timeline order, path, list, follow-up answer."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from rich.console import Console, RenderableType

from inquest.api import models
from inquest.plugin import render

NOW = datetime(2026, 11, 25, 14, 45, tzinfo=UTC)

INVESTIGATION: dict[str, Any] = {
    "apiVersion": "inquest.dev/v1alpha1",
    "kind": "Investigation",
    "metadata": {
        "name": "checkout-failing",
        "namespace": "shop",
        "generation": 2,
        "creationTimestamp": "2026-11-25T14:39:10Z",
    },
    "spec": {
        "target": {"kind": "Deployment", "name": "checkout"},
        "question": "why is checkout failing?",
        "lookback": "30m",
        "context": ["we raised the heap size today"],
        "hypotheses": ["the api rollout", "node-c"],
    },
    "status": {
        "observedGeneration": 2,
        "conditions": [
            {
                "type": "Concluded",
                "status": "True",
                "reason": "RootCauseIdentified",
                "message": "Most likely cause (82% confidence): ...",
                "lastTransitionTime": "2026-11-25T14:39:11Z",
            }
        ],
        "summary": "Most likely cause (82% confidence): Deployment shop/payments rollout at 14:39:09Z.",
        "rootCause": {
            "ref": {"kind": "Deployment", "namespace": "shop", "name": "payments"},
            "category": "BadRollout",
            "confidence": 82,
        },
        "findings": [
            {
                "rank": 1,
                "ref": {"kind": "Deployment", "namespace": "shop", "name": "payments"},
                "category": "BadRollout",
                "confidence": 82,
                "summary": "Deployment shop/payments rollout was followed by crashes",
                "path": ["Deployment/shop/checkout", "Service/shop/payments", "Deployment/shop/payments"],
                "evidence": [
                    {
                        "source": "Kubernetes",
                        "time": "2026-11-25T14:39:11Z",
                        "detail": "container app terminated (Error, exit code 1)",
                    },
                    {"source": "Graph", "detail": "checkout depends on payments (env PAYMENTS_ADDR)"},
                    {
                        "source": "Journal",
                        "time": "2026-11-25T14:39:09.273731Z",
                        "ref": {"kind": "Deployment", "namespace": "shop", "name": "payments"},
                        "detail": "image 1.0.0 -> 1.9.0",
                    },
                ],
            },
            {
                "rank": 2,
                "ref": {"kind": "Pod", "namespace": "shop", "name": "payments-6748677c6-jpspg"},
                "category": "CrashLoop",
                "confidence": 45,
                "summary": "a pod crash-loops",
                "evidence": [
                    {
                        "source": "Prometheus",
                        "time": "2026-11-25T14:30:00Z",
                        "detail": "error rate rose to 12%",
                        "query": 'sum(rate(http_requests_total{code=~"5.."}[5m]))',
                    }
                ],
            },
        ],
        "unknowns": ["Prometheus is not configured: error rates were not checked."],
        "hypotheses": [
            {"text": "the api rollout", "verdict": "Supported", "reason": "the api rollout preceded the crashes"},
            {"text": "node-c", "verdict": "RuledOut", "reason": "node-c is Ready"},
        ],
        "rounds": [
            {
                "generation": 1,
                "startedTime": "2026-11-25T14:39:10Z",
                "concludedTime": "2026-11-25T14:39:10Z",
                "answer": "first answer",
                "reason": "Inconclusive",
            },
            {
                "generation": 2,
                "startedTime": "2026-11-25T14:40:00Z",
                "concludedTime": "2026-11-25T14:40:01Z",
                "answer": "second answer",
                "reason": "RootCauseIdentified",
            },
        ],
        "concludedTime": "2026-11-25T14:40:01Z",
        "durationMillis": 9,
    },
}


def text_of(renderable: RenderableType, width: int = 160) -> str:
    console = Console(record=True, width=width, color_system=None, force_terminal=False)
    console.print(renderable)
    return console.export_text()


def test_the_sample_is_a_valid_investigation() -> None:
    models.Investigation.model_validate(INVESTIGATION)


def test_the_report_has_every_section() -> None:
    text = text_of(render.report(INVESTIGATION))
    for expected in (
        "Investigation shop/checkout-failing  target Deployment/checkout",
        "Question: why is checkout failing?",
        "Window:   30m   mode Once",
        "Context:  we raised the heap size today",
        "Verdict:  RootCauseIdentified  (answered 2026-11-25 14:40:01Z in 9 ms)",
        "Root cause: Deployment/shop/payments (BadRollout, 82% confidence)",
        "Summary:  Most likely cause (82% confidence)",
        "Findings",
        "Evidence timeline",
        "Dependency path",
        "Hypotheses",
        "Unknowns",
        "- Prometheus is not configured: error rates were not checked.",
        "Rounds",
    ):
        assert expected in text, f"{expected!r} missing from:\n{text}"


def test_findings_are_ranked_with_their_confidence() -> None:
    text = text_of(render.findings_table(INVESTIGATION["status"]["findings"]) or "")
    assert text.splitlines() == [
        "#1  ████████░░  82%  BadRollout  Deployment/shop/payments",
        "    Deployment shop/payments rollout was followed by crashes",
        "#2  ████░░░░░░  45%  CrashLoop  Pod/shop/payments-6748677c6-jpspg",
        "    a pod crash-loops",
    ]


def test_the_timeline_is_sorted_by_time_with_untimed_evidence_last() -> None:
    findings = INVESTIGATION["status"]["findings"]
    details = [item["detail"] for _, _, item in render.timeline_entries(findings)]
    assert details == [
        "error rate rose to 12%",  # 14:30:00, finding 2
        "image 1.0.0 -> 1.9.0",  # 14:39:09.27
        "container app terminated (Error, exit code 1)",  # 14:39:11
        "checkout depends on payments (env PAYMENTS_ADDR)",  # no time: current state
    ]
    text = text_of(render.timeline_table(findings) or "")
    assert "2026-11-25 14:30:00Z  #2       Prometheus" in text
    assert "query: sum(rate(http_requests_total" in text
    assert "(now)" in text


def test_the_dependency_path_runs_from_symptom_to_cause() -> None:
    text = text_of(render.dependency_path(INVESTIGATION["status"]["findings"]) or "")
    assert "Deployment/shop/checkout  →  Service/shop/payments  →  Deployment/shop/payments" in text


def test_hypotheses_show_their_verdicts() -> None:
    text = text_of(render.hypotheses_table(INVESTIGATION["status"]["hypotheses"]) or "")
    assert '✔  Supported  "the api rollout": the api rollout preceded the crashes' in text
    assert '✘  RuledOut   "node-c": node-c is Ready' in text


def test_rounds_are_listed_oldest_first() -> None:
    text = text_of(render.rounds_table(INVESTIGATION["status"]["rounds"]) or "")
    assert text.index("first answer") < text.index("second answer")


def test_an_unanswered_investigation_says_so() -> None:
    pending = {key: value for key, value in INVESTIGATION.items() if key != "status"}
    text = text_of(render.report(pending))
    assert "Not answered yet" in text
    assert not render.is_answered(pending)
    assert render.verdict(pending) == "Pending"


def test_answered_means_this_generation_concluded() -> None:
    assert render.is_answered(INVESTIGATION)
    assert render.is_answered(INVESTIGATION, generation=2)
    assert not render.is_answered(INVESTIGATION, generation=3)


def test_unknown_and_missing_fields_do_not_break_the_report() -> None:
    odd = copy.deepcopy(INVESTIGATION)
    odd["status"]["somethingNew"] = {"x": 1}
    odd["status"]["findings"][0]["evidence"].append({"source": "Kubernetes", "time": "not a time", "detail": 3})
    odd["status"]["findings"][1].pop("ref")
    odd["status"]["hypotheses"].append({"text": "x"})
    odd["spec"].pop("target")
    text = text_of(render.report(odd))
    assert "target Namespace/shop" in text
    assert "?  Unknown" in text


def test_notifications_are_shown_when_present() -> None:
    notified = copy.deepcopy(INVESTIGATION)
    notified["status"]["notifications"] = [
        {"notifier": "slack-sre", "state": "Sent", "attempts": 1, "lastAttemptTime": "2026-11-25T14:40:02Z"}
    ]
    text = text_of(render.report(notified))
    assert "Notifications" in text
    assert "slack-sre" in text


def test_the_follow_up_answer_names_the_round_and_the_verdicts() -> None:
    text = text_of(render.round_answer(INVESTIGATION, 2))
    assert "Round for generation 2 of shop/checkout-failing: RootCauseIdentified" in text
    # The latest round's answer is the whole summary; an older round's is its one-line answer.
    assert "Most likely cause (82% confidence): Deployment shop/payments rollout at 14:39:09Z." in text
    assert "first answer" in text_of(render.round_answer(INVESTIGATION, 1))
    assert '"node-c"' in text


def test_the_list_has_kubectls_columns_and_ages() -> None:
    other = copy.deepcopy(INVESTIGATION)
    other["metadata"].update(name="all-good", namespace="web", creationTimestamp="2026-11-23T14:45:00Z")
    other["status"].pop("rootCause")
    other["status"]["conditions"][0]["reason"] = "NoFaultFound"
    pending = {"metadata": {"name": "new", "namespace": "web", "creationTimestamp": "2026-11-25T14:44:30Z"}}
    text = text_of(render.investigations_table([other, INVESTIGATION, pending], NOW, all_namespaces=True))
    lines = [line.rstrip() for line in text.splitlines()]
    assert lines[0].split() == [
        "NAMESPACE",
        "NAME",
        "TARGET",
        "STATUS",
        "ROOT",
        "CAUSE",
        "CATEGORY",
        "CONFIDENCE",
        "ROUNDS",
        "AGE",
    ]
    assert lines[1].split() == [
        "shop",
        "checkout-failing",
        "Deployment/checkout",
        "RootCauseIdentified",
        "payments",
        "BadRollout",
        "82%",
        "2",
        "5m",
    ]
    assert lines[2].split() == ["web", "all-good", "Deployment/checkout", "NoFaultFound", "-", "-", "-", "2", "2d"]
    assert lines[3].split() == ["web", "new", "Namespace/web", "Pending", "-", "-", "-", "0", "30s"]


def test_ages_read_like_kubectls() -> None:
    assert render.age("2026-11-25T14:44:15Z", NOW) == "45s"
    assert render.age("2026-11-25T14:33:00Z", NOW) == "12m"
    assert render.age("2026-11-25T09:45:00Z", NOW) == "5h"
    assert render.age("2026-11-22T14:45:00Z", NOW) == "3d"
    assert render.age(None, NOW) == "-"


def test_the_list_is_never_cut_on_a_narrow_terminal() -> None:
    console = Console(record=True, width=40, color_system=None, force_terminal=False)
    console.print(render.investigations_table([INVESTIGATION], NOW, all_namespaces=True), soft_wrap=True)
    lines = console.export_text().splitlines()
    assert lines[1].split() == ["shop", "checkout-failing", "Deployment/checkout", "RootCauseIdentified", "payments",
                                "BadRollout", "82%", "2", "5m"]  # fmt: skip
    assert not any(line != line.rstrip() for line in lines)
