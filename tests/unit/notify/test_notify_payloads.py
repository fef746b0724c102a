"""Slack, PagerDuty and webhook payloads: shapes and the documented limits of each receiver."""

from __future__ import annotations

import json
from typing import Any

import pytest
from notify_builders import INVESTIGATION, UID, finding, healthy, status

from inquest.api import models
from inquest.categories import Category, ConcludedReason
from inquest.notify import payloads
from inquest.notify.payloads import InvestigationRef, Notice, NoticeKind

BLOCK_TYPES = {"header", "section", "divider", "context"}


def notice(kind: NoticeKind = NoticeKind.CONCLUDED, **kwargs: Any) -> Notice:
    return Notice(kind, INVESTIGATION, kwargs.pop("the_status", None) or status(**kwargs), cluster="prod-eu-1")


def texts_of(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def assert_valid_slack(message: dict[str, Any]) -> None:
    """Slack's Block Kit rules for what inquest uses."""
    assert isinstance(message["text"], str)
    assert 0 < len(message["text"]) <= payloads.SLACK_FALLBACK_CHARS
    blocks = message["blocks"]
    assert 0 < len(blocks) <= 50
    for block in blocks:
        assert block["type"] in BLOCK_TYPES, block
        if block["type"] == "header":
            assert block["text"]["type"] == "plain_text"
            assert 0 < len(block["text"]["text"]) <= 150
        elif block["type"] == "section":
            assert "text" in block or "fields" in block
            if "text" in block:
                assert block["text"]["type"] == "mrkdwn"
                assert 0 < len(block["text"]["text"]) <= 3000
            for field in block.get("fields", []):
                assert field["type"] == "mrkdwn"
                assert 0 < len(field["text"]) <= 2000
            assert len(block.get("fields", [])) <= 10
        elif block["type"] == "context":
            assert 0 < len(block["elements"]) <= 10
            for element in block["elements"]:
                assert element["type"] == "mrkdwn"
                assert 0 < len(element["text"]) <= 2000
        elif block["type"] == "divider":
            assert set(block) == {"type"}


def test_slack_message_carries_the_answer() -> None:
    message = payloads.slack_message(notice())
    assert_valid_slack(message)
    blocks = message["blocks"]
    assert blocks[0]["type"] == "header"
    assert "Root cause identified: shop/checkout-failing" in blocks[0]["text"]["text"]
    # Summary, escaped: the arrow's `>` is not a control character for Slack any more.
    assert blocks[1]["text"]["text"] == (
        "Most likely cause (82% confidence): Deployment shop/payments rollout -&gt; crashes."
    )
    fields = [field["text"] for field in blocks[2]["fields"]]
    assert fields[:4] == [
        "*Root cause*\n`Deployment/shop/payments`",
        "*Category*\nBadRollout",
        "*Confidence*\n82%",
        "*Verdict*\nRootCauseIdentified",
    ]
    evidence = blocks[3]["text"]["text"]
    assert evidence.startswith("*Evidence*")
    # The top 3 of the 4 evidence items, in order, with source and time.
    assert [line for line in evidence.splitlines() if line.startswith("• ")] == [
        f"• [{source} 2026-11-25T14:39:{second:02d}Z] evidence item {index}: container app terminated (exit code 1)"
        for index, (source, second) in enumerate([("Journal", 2), ("Kubernetes", 3), ("Journal", 4)])
    ]
    assert "evidence item 3" not in texts_of(blocks)
    assert "Prometheus is not configured" in blocks[4]["text"]["text"]
    context = blocks[-1]["elements"]
    assert context[0]["text"] == "`kubectl describe investigation checkout-failing -n shop`"
    assert "Deployment/shop/checkout" in context[1]["text"]
    assert "prod-eu-1" in context[1]["text"]
    assert "BadRollout at Deployment/shop/payments (82%)" in message["text"]


def test_slack_text_from_the_cluster_cannot_mention_or_link() -> None:
    hostile = "<!channel> see <https://evil.example|the fix> & run it"
    message = payloads.slack_message(notice(summary=hostile, findings=[finding(detail=hostile)], unknowns=[hostile]))
    assert_valid_slack(message)
    rendered = texts_of(message["blocks"])
    assert "<!channel>" not in rendered
    assert "<https://" not in rendered
    assert "&lt;!channel&gt; see &lt;https://evil.example|the fix&gt; &amp; run it" in rendered


def test_slack_stays_within_limits_when_everything_is_at_its_maximum() -> None:
    long = "x&<" * 400  # 1200 characters, 3000 once escaped
    findings = [
        finding(rank=rank, summary=long[:1024], detail=long[:1024], evidence_items=models.MAX_EVIDENCE)
        for rank in range(1, models.MAX_FINDINGS + 1)
    ]
    message = payloads.slack_message(
        notice(summary=long[:1024], findings=findings, unknowns=[long[:1024]] * models.MAX_UNKNOWNS)
    )
    assert_valid_slack(message)
    unknowns = next(block for block in message["blocks"] if "Could not check" in block.get("text", {}).get("text", ""))
    assert unknowns["text"]["text"].endswith(" more")
    # Entities are never cut in half.
    for block in message["blocks"]:
        text = block.get("text", {}).get("text", "")
        for piece in text.split("&")[1:]:
            assert piece.startswith(("amp;", "lt;", "gt;")), piece[:8]


@pytest.mark.parametrize("limit", range(1, 40))
def test_cut_escaped_never_ends_inside_an_entity(limit: int) -> None:
    text = payloads.escape_mrkdwn("a<b&c>d" * 5)
    cut = payloads.cut_escaped(text, limit)
    assert len(cut) <= limit
    body = cut.removesuffix("…")
    for piece in body.split("&")[1:]:
        assert piece.startswith(("amp;", "lt;", "gt;"))


def test_slack_headline_per_verdict_and_kind() -> None:
    inconclusive = payloads.slack_message(notice(verdict=ConcludedReason.INCONCLUSIVE))
    assert inconclusive["blocks"][0]["text"]["text"] == ":warning: Inconclusive: shop/checkout-failing"
    assert inconclusive["blocks"][2]["fields"][0]["text"].startswith("*Top candidate*")
    changed = payloads.slack_message(notice(NoticeKind.FINDINGS_CHANGED))
    assert changed["blocks"][0]["text"]["text"].startswith(":rotating_light: Findings changed: root cause identified")
    resolved = payloads.slack_message(Notice(NoticeKind.RESOLVED, INVESTIGATION, healthy()))
    assert_valid_slack(resolved)
    assert resolved["blocks"][0]["text"]["text"] == ":white_check_mark: Symptoms resolved: shop/checkout-failing"
    assert [block["type"] for block in resolved["blocks"]] == ["header", "section", "divider", "context"]


def test_pagerduty_trigger_has_the_required_fields_and_the_findings() -> None:
    event = payloads.pagerduty_event(notice(), routing_key="R0UTINGKEY0123456789abcdefABCDEF")
    assert event["routing_key"] == "R0UTINGKEY0123456789abcdefABCDEF"
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == UID
    assert event["client"] == "inquest"
    payload = event["payload"]
    assert set(payload) >= {"summary", "source", "severity"}
    assert payload["summary"].startswith("[shop/checkout-failing] BadRollout at Deployment/shop/payments (82%): ")
    assert payload["source"] == "prod-eu-1: Deployment/shop/checkout"
    assert payload["severity"] == "error"
    assert payload["component"] == "Deployment/shop/payments"
    assert (payload["group"], payload["class"]) == ("shop", "BadRollout")
    assert payload["timestamp"] == "2026-11-25T14:39:12Z"
    details = payload["custom_details"]
    assert details["describe"] == "kubectl describe investigation checkout-failing -n shop"
    assert details["root_cause"] == "Deployment/shop/payments"
    assert details["confidence"] == 82
    assert (
        details["findings"][0]["path"]
        == "Deployment/shop/checkout -> Service/shop/payments -> Deployment/shop/payments"
    )
    assert len(details["findings"][0]["evidence"]) == 3
    assert details["unknowns"] == ["Prometheus is not configured: error rates were not checked."]
    assert len(json.dumps(event)) < 512 * 1024


@pytest.mark.parametrize(
    ("verdict", "severity"),
    [
        (ConcludedReason.ROOT_CAUSE_IDENTIFIED, "error"),
        (ConcludedReason.INCONCLUSIVE, "warning"),
        (ConcludedReason.NO_FAULT_FOUND, "info"),
    ],
)
def test_pagerduty_severity_is_in_the_enum(verdict: ConcludedReason, severity: str) -> None:
    event = payloads.pagerduty_event(notice(verdict=verdict), routing_key="k")
    assert event["payload"]["severity"] == severity
    assert event["payload"]["severity"] in ("critical", "error", "warning", "info")
    overridden = payloads.pagerduty_event(notice(verdict=verdict), routing_key="k", severity="critical")
    assert overridden["payload"]["severity"] == "critical"


def test_pagerduty_summary_is_cut_to_1024() -> None:
    event = payloads.pagerduty_event(notice(summary="word " * 200 + "end\nnext line"), routing_key="k")
    summary = event["payload"]["summary"]
    assert len(summary) <= 1024
    assert summary.endswith("…")
    assert "\n" not in summary


def test_pagerduty_resolve_names_the_same_alert() -> None:
    event = payloads.pagerduty_event(Notice(NoticeKind.RESOLVED, INVESTIGATION, healthy()), routing_key="k")
    assert event == {"routing_key": "k", "event_action": "resolve", "dedup_key": UID}


def test_webhook_document_uses_the_api_shapes() -> None:
    document = payloads.webhook_payload(notice())
    assert json.loads(json.dumps(document)) == document
    assert document["schema"] == "inquest.dev/notification/v1"
    assert (document["event"], document["verdict"], document["dedupKey"]) == ("Concluded", "RootCauseIdentified", UID)
    assert document["investigation"] == {
        "namespace": "shop",
        "name": "checkout-failing",
        "uid": UID,
        "target": "Deployment/shop/checkout",
        "describeCommand": "kubectl describe investigation checkout-failing -n shop",
    }
    assert models.RootCause.model_validate(document["rootCause"]).category == Category.BAD_ROLLOUT
    assert [models.Finding.model_validate(item).rank for item in document["findings"]] == [1]
    assert document["concludedTime"] == "2026-11-25T14:39:12Z"
    resolved = payloads.webhook_payload(Notice(NoticeKind.RESOLVED, INVESTIGATION, healthy()))
    assert (resolved["event"], resolved["rootCause"], resolved["findings"]) == ("SymptomsResolved", None, [])


def test_digest_changes_only_with_material_findings() -> None:
    base = payloads.digest(notice())
    assert payloads.digest(notice(summary="Reworded.")) == base
    assert payloads.digest(notice(findings=[finding(evidence_items=1)])) == base
    assert payloads.digest(notice(NoticeKind.FINDINGS_CHANGED)) == base
    assert payloads.digest(notice(findings=[finding(confidence=85)])) == base  # the same band of ten
    assert payloads.digest(notice(findings=[finding(confidence=91)])) != base
    assert payloads.digest(notice(findings=[finding(category=Category.CRASH_LOOP)])) != base
    assert payloads.digest(notice(findings=[finding(name="cart")])) != base
    assert payloads.digest(notice(verdict=ConcludedReason.INCONCLUSIVE)) != base
    assert payloads.digest(Notice(NoticeKind.RESOLVED, INVESTIGATION, healthy())) != base


@pytest.mark.parametrize(
    ("spec", "target"),
    [
        ({"target": {"kind": "Deployment", "name": "checkout"}}, "Deployment/shop/checkout"),
        ({"target": {"kind": "Pod", "name": "p", "namespace": "other"}}, "Pod/other/p"),
        ({"target": {"kind": "Node", "name": "node-a"}}, "Node/node-a"),
        ({"target": {"kind": "Namespace"}}, "Namespace/shop"),
        ({}, "Namespace/shop"),
        ({"target": "not a mapping"}, "Namespace/shop"),
    ],
)
def test_investigation_ref_from_the_raw_object(spec: dict[str, Any], target: str) -> None:
    raw = {"metadata": {"namespace": "shop", "name": "inv", "uid": "u-1"}, "spec": spec}
    assert InvestigationRef.from_raw(raw) == InvestigationRef("shop", "inv", "u-1", target)
