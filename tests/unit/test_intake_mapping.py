"""Alertmanager payloads to Investigations: target, question, name, context lines, dedup and redaction."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from inquest.api import models
from inquest.categories import TargetKind
from inquest.intake import alertmanager as am

GROUP_KEY = '{}/{namespace="shop"}:{alertname="KubePodCrashLooping", namespace="shop"}'


def alert(
    fingerprint: str = "1a2b3c4d5e6f7a8b",
    status: str = "firing",
    starts: str = "2026-11-25T14:39:09Z",
    ends: str = "0001-01-01T00:00:00Z",
    summary: str | None = "Pod shop/payments-6748677c6-jpspg is crash looping.",
    **labels: str,
) -> dict[str, Any]:
    annotations = {"summary": summary} if summary is not None else {}
    return {
        "status": status,
        "labels": {"alertname": "KubePodCrashLooping", "namespace": "shop", "severity": "critical", **labels},
        "annotations": annotations,
        "startsAt": starts,
        "endsAt": ends,
        "generatorURL": "http://prometheus.example/graph?g0.expr=x",
        "fingerprint": fingerprint,
    }


def payload(*alerts: dict[str, Any], group_key: str = GROUP_KEY, **overrides: Any) -> am.WebhookPayload:
    items = list(alerts) or [alert(pod="payments-6748677c6-jpspg")]
    common = dict(items[0]["labels"])
    for item in items[1:]:
        common = {name: value for name, value in common.items() if item["labels"].get(name) == value}
    document = {
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": "firing" if any(item["status"] == "firing" for item in items) else "resolved",
        "receiver": "inquest",
        "groupLabels": {"alertname": "KubePodCrashLooping", "namespace": "shop"},
        "commonLabels": common,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example",
        "alerts": items,
        **overrides,
    }
    return am.WebhookPayload.model_validate(document)


SETTINGS = am.IntakeSettings()


# --- payload model ---------------------------------------------------------------------------------------------


def test_the_zero_end_time_of_a_firing_alert_is_no_end() -> None:
    parsed = payload()
    assert parsed.alerts[0].ends_at is None
    assert parsed.alerts[0].starts_at is not None


def test_only_version_4_is_accepted() -> None:
    with pytest.raises(ValidationError) as caught:
        payload(version="3")
    assert caught.value.errors()[0]["loc"] == ("version",)


def test_a_label_that_is_not_a_string_is_refused_naming_it() -> None:
    bad = alert()
    bad["labels"]["replicas"] = 3
    with pytest.raises(ValidationError) as caught:
        payload(bad)
    assert ("alerts", 0, "labels", "replicas") in [error["loc"] for error in caught.value.errors()]


def test_an_alert_without_a_fingerprint_gets_one_from_its_labels() -> None:
    first, second = alert(fingerprint=""), alert(fingerprint="")
    assert payload(first).alerts[0].key == payload(second).alerts[0].key
    assert re.fullmatch(r"[0-9a-f]{16}", payload(first).alerts[0].key)


def test_unknown_fields_are_ignored() -> None:
    assert payload(somethingNew={"x": 1}).receiver == "inquest"


# --- target, namespace and question ----------------------------------------------------------------------------


def test_a_pod_alert_targets_the_pod_in_the_groups_namespace() -> None:
    investigation = am.build_investigation(payload(), SETTINGS)
    assert investigation.metadata["namespace"] == "shop"
    assert investigation.spec.target == models.Target(kind=TargetKind.POD, name="payments-6748677c6-jpspg")


@pytest.mark.parametrize(
    ("labels", "kind", "name"),
    [
        ({"deployment": "payments", "pod": "payments-1"}, TargetKind.DEPLOYMENT, "payments"),
        ({"statefulset": "redis"}, TargetKind.STATEFUL_SET, "redis"),
        ({"job_name": "nightly-report", "job": "kube-state-metrics"}, TargetKind.JOB, "nightly-report"),
        ({"pod": "web-1", "service": "kube-state-metrics"}, TargetKind.POD, "web-1"),
        ({"service": "checkout"}, TargetKind.SERVICE, "checkout"),
    ],
)
def test_the_most_specific_label_wins(labels: dict[str, str], kind: TargetKind, name: str) -> None:
    target = am.build_investigation(payload(alert(**labels)), SETTINGS).spec.target
    assert target is not None
    assert (target.kind, target.name, target.namespace) == (kind, name, None)


def test_a_node_alert_targets_the_node_without_a_namespace() -> None:
    node_alert = alert(node="node-c")
    node_alert["labels"].pop("namespace")
    parsed = payload(node_alert, groupLabels={"alertname": "KubeNodeNotReady"})
    investigation = am.build_investigation(parsed, SETTINGS)
    assert investigation.metadata["namespace"] == "default"
    assert investigation.spec.target == models.Target(kind=TargetKind.NODE, name="node-c")


def test_the_mapping_is_configurable() -> None:
    settings = am.IntakeSettings(target_labels={"job": TargetKind.JOB}, fallback_namespace="ops")
    target = am.build_investigation(payload(alert(job="backup", pod="x")), settings).spec.target
    assert target == models.Target(kind=TargetKind.JOB, name="backup")


def test_without_a_namespace_group_label_the_target_keeps_its_own_namespace() -> None:
    parsed = payload(alert(deployment="payments"), groupLabels={"alertname": "KubePodCrashLooping"})
    investigation = am.build_investigation(parsed, SETTINGS)
    assert investigation.metadata["namespace"] == "default"
    assert investigation.spec.target == models.Target(kind=TargetKind.DEPLOYMENT, name="payments", namespace="shop")


def test_a_fixed_investigation_namespace_wins() -> None:
    settings = am.IntakeSettings(investigation_namespace="inquest")
    investigation = am.build_investigation(payload(alert(deployment="payments")), settings)
    assert investigation.metadata["namespace"] == "inquest"
    assert investigation.spec.target == models.Target(kind=TargetKind.DEPLOYMENT, name="payments", namespace="shop")


def test_an_invalid_label_value_is_skipped_for_the_next_label() -> None:
    target = am.build_investigation(payload(alert(deployment="Not_A_Name", pod="web-1")), SETTINGS).spec.target
    assert target == models.Target(kind=TargetKind.POD, name="web-1")


def test_only_a_namespace_label_investigates_that_namespace() -> None:
    parsed = payload(alert(), groupLabels={"alertname": "KubePodCrashLooping"})
    target = am.build_investigation(parsed, SETTINGS).spec.target
    assert target == models.Target(kind=TargetKind.NAMESPACE, name="shop")
    assert am.build_investigation(payload(alert()), SETTINGS).spec.target is None


def test_the_question_is_the_summary_else_the_description_else_a_default() -> None:
    assert am.question_for(payload(), SETTINGS) == (
        "KubePodCrashLooping: Pod shop/payments-6748677c6-jpspg is crash looping."
    )
    described = alert(summary=None)
    described["annotations"] = {"description": "Restarts 5 times in 10 minutes.\nSee the runbook."}
    assert am.question_for(payload(described), SETTINGS) == (
        "KubePodCrashLooping: Restarts 5 times in 10 minutes. See the runbook."
    )
    assert am.question_for(payload(alert(summary=None)), SETTINGS) == ("why is the alert KubePodCrashLooping firing?")


def test_the_spec_carries_lookback_mode_labels_and_the_group_digest() -> None:
    investigation = am.build_investigation(payload(), SETTINGS)
    assert investigation.spec.lookback == "1h"
    assert investigation.spec.mode == "Once"
    assert investigation.metadata["labels"] == {am.SOURCE_LABEL: am.SOURCE_VALUE}
    assert investigation.metadata["annotations"][am.GROUP_ANNOTATION] == am.group_digest(GROUP_KEY)
    models.Investigation.model_validate(investigation.to_api())  # what goes to the API server is valid


# --- names -----------------------------------------------------------------------------------------------------


def test_the_name_is_deterministic_per_group_and_different_between_groups() -> None:
    first = am.investigation_name(GROUP_KEY, "KubePodCrashLooping")
    assert first == am.investigation_name(GROUP_KEY, "KubePodCrashLooping")
    assert first != am.investigation_name(GROUP_KEY + "x", "KubePodCrashLooping")
    assert re.fullmatch(r"alert-kubepodcrashlooping-[0-9a-f]{10}", first)


@pytest.mark.parametrize(
    "alertname", ["", "x" * 300, "Ünïcødé Alert!!", "---", "日本語", "a.b_c/d", "\ud800", "UPPER_case-99"]
)
def test_every_name_is_a_dns_label_of_at_most_63(alertname: str) -> None:
    name = am.investigation_name("g", alertname)
    assert len(name) <= 63
    assert re.fullmatch(models.DNS_LABEL_PATTERN, name), name
    assert name.endswith("-" + am.group_digest("g")[:10]) or name == "alert-" + am.group_digest("g")[:10]


def test_an_empty_prefix_still_gives_a_valid_name() -> None:
    name = am.investigation_name("g", "", prefix="")
    assert re.fullmatch(models.DNS_LABEL_PATTERN, name)


# --- context lines ---------------------------------------------------------------------------------------------


def test_the_context_lists_the_group_and_each_alert() -> None:
    context = am.merge_context([], payload(), SETTINGS)
    assert context == [
        "Alertmanager alert group {alertname=KubePodCrashLooping, namespace=shop} via receiver inquest"
        " [alertmanager group]",
        "firing since 2026-11-25T14:39:09Z: KubePodCrashLooping (pod=payments-6748677c6-jpspg, severity=critical):"
        " Pod shop/payments-6748677c6-jpspg is crash looping. [alert 1a2b3c4d5e6f7a8b]",
    ]


def test_the_same_notification_again_changes_nothing() -> None:
    first = am.merge_context([], payload(), SETTINGS)
    assert am.merge_context(first, payload(), SETTINGS) == first


def test_a_new_alert_in_the_group_is_added_and_the_old_one_kept() -> None:
    first = am.merge_context([], payload(alert("aaaa", pod="web-1")), SETTINGS)
    second = am.merge_context(
        first, payload(alert("bbbb", pod="web-2", starts="2026-11-25T15:00:00Z"), alert("aaaa", pod="web-1")), SETTINGS
    )
    assert len(second) == 3
    assert second[1].endswith("[alert bbbb]")  # the newest firing alert first
    assert second[2].endswith("[alert aaaa]")


def test_a_resolved_alert_is_recorded_with_its_end_time() -> None:
    first = am.merge_context([], payload(alert("aaaa", pod="web-1"), alert("bbbb", pod="web-2")), SETTINGS)
    resolved = alert("aaaa", status="resolved", ends="2026-11-25T15:10:00Z", pod="web-1")
    second = am.merge_context(first, payload(resolved, alert("bbbb", pod="web-2")), SETTINGS)
    assert second[1].startswith("firing since 2026-11-25T14:39:09Z: KubePodCrashLooping (pod=web-2")
    assert second[2].startswith("resolved at 2026-11-25T15:10:00Z: KubePodCrashLooping (pod=web-1")
    assert second[2].endswith("[alert aaaa]")
    # Alerts the notification does not carry keep their lines.
    third = am.merge_context(second, payload(alert("bbbb", pod="web-2")), SETTINGS)
    assert third == second


def test_lines_someone_else_added_are_kept_after_the_alerts() -> None:
    first = am.merge_context([], payload(), SETTINGS)
    followed_up = [*first, "we raised the heap size today"]
    again = am.merge_context(followed_up, payload(alert(status="resolved", ends="2026-11-25T15:00:00Z")), SETTINGS)
    assert again[-1] == "we raised the heap size today"
    assert again[1].startswith("resolved at 2026-11-25T15:00:00Z")


def test_the_context_stays_within_the_crd_limits() -> None:
    alerts = [alert(f"{index:04x}", pod=f"web-{index}", starts=f"2026-11-25T14:{index:02d}:00Z") for index in range(40)]
    user_lines = [f"note {index}" for index in range(5)]
    context = am.merge_context(user_lines, payload(*alerts, truncatedAlerts=7), SETTINGS)
    assert len(context) <= models.MAX_CONTEXT
    assert context[-5:] == user_lines
    more = [line for line in context if line.endswith("[alertmanager more]")]
    assert more == [
        "... and 34 more alerts in this group not listed (27 of them firing, 7 truncated by Alertmanager)"
        " [alertmanager more]"
    ]
    assert context[1].startswith("firing since 2026-11-25T14:39:00Z")  # the most recent are listed
    spec = models.InvestigationSpec(context=context)  # the API's own limits hold
    assert len(spec.context) == len(context)


def test_long_annotations_are_bounded_and_kept_on_one_line() -> None:
    context = am.merge_context([], payload(alert(summary="x" * 5000 + "\n" + "y" * 10)), SETTINGS)
    assert all(len(line) <= SETTINGS.max_line_chars for line in context)
    assert all("\n" not in line for line in context)
    assert context[1].endswith("… [alert 1a2b3c4d5e6f7a8b]")


def test_credentials_are_redacted_from_context_and_question() -> None:
    leaky = alert(
        summary="login failed with password=hunter2 for postgres://app:s3cr3t@db:5432/shop",
        api_token="abcd1234efgh5678",
        pod="web-1",
    )
    leaky["annotations"]["description"] = "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    parsed = payload(leaky)
    investigation = am.build_investigation(parsed, SETTINGS)
    text = " ".join([investigation.spec.question or "", *investigation.spec.context])
    for secret in ("hunter2", "s3cr3t", "abcd1234efgh5678", "eyJhbGciOiJIUzI1NiJ9"):
        assert secret not in text
    assert "api_token=[REDACTED]" in text
    assert "password=[REDACTED]" in text


def test_settings_are_validated() -> None:
    with pytest.raises(ValidationError):
        am.IntakeSettings(lookback="8d")
    with pytest.raises(ValidationError):
        am.IntakeSettings(name_prefix="Alert_")
    with pytest.raises(ValidationError):
        am.IntakeSettings(target_labels={"pod": "Banana"})  # type: ignore[dict-item]


# --- idempotence, whatever came before -------------------------------------------------------------------------

alerts_strategy = st.lists(
    st.builds(
        lambda fingerprint, resolved, minute, pod: alert(
            fingerprint,
            status="resolved" if resolved else "firing",
            starts=f"2026-11-25T14:{minute:02d}:00Z",
            ends=f"2026-11-25T15:{minute:02d}:00Z" if resolved else "0001-01-01T00:00:00Z",
            pod=pod,
        ),
        st.text("0123456789abcdef", min_size=1, max_size=4),
        st.booleans(),
        st.integers(0, 59),
        st.sampled_from(["web-1", "web-2", "api-1"]),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(history=st.lists(alerts_strategy, max_size=4), latest=alerts_strategy, notes=st.lists(st.text(max_size=30)))
def test_a_repeat_of_any_notification_changes_nothing(
    history: list[list[dict[str, Any]]], latest: list[dict[str, Any]], notes: list[str]
) -> None:
    context: list[str] = []
    for alerts in history:
        context = am.merge_context(context, payload(*alerts), SETTINGS)
    context = [*context, *notes]
    once = am.merge_context(context, payload(*latest), SETTINGS)
    assert am.merge_context(once, payload(*latest), SETTINGS) == once
    assert len(once) <= models.MAX_CONTEXT
    models.InvestigationSpec(context=once)
