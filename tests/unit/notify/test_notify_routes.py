"""The notification config: notifiers whose credentials live in Secrets, and routes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from notify_builders import config_document, secret_ref
from pydantic import ValidationError

from inquest.notify.routes import (
    ConfigError,
    NotifyConfig,
    PagerDutyNotifier,
    SecretRef,
    parse_config,
    secret_reader_rbac,
)

DOCS = Path(__file__).resolve().parents[3] / "docs" / "notifications.md"


def config(document: dict[str, Any] | None = None) -> NotifyConfig:
    return NotifyConfig.model_validate(document or config_document())


def test_the_documented_example_is_a_valid_config() -> None:
    # The first yaml block of docs/notifications.md is the config example; it must stay valid.
    example = re.search(r"```yaml\n(.*?)```", DOCS.read_text(), re.DOTALL)
    assert example is not None
    parsed = parse_config(example.group(1))
    assert [notifier.type for notifier in parsed.notifiers] == ["Slack", "PagerDuty", "Webhook"]
    assert parsed.routes


def test_parse_config_reads_yaml() -> None:
    parsed = parse_config(yaml.safe_dump(config_document(maxAttempts=3)))
    assert parsed.delivery.max_attempts == 3
    assert parsed.cluster_name == "prod-eu-1"
    pagerduty = parsed.notifier("pagerduty")
    assert isinstance(pagerduty, PagerDutyNotifier)
    assert pagerduty.events_url == "https://events.pagerduty.com/v2/enqueue"
    assert pagerduty.secret_ref == SecretRef(namespace="inquest-system", name="inquest-notifiers", key="pagerduty-key")
    assert parse_config("") == NotifyConfig()


def test_parse_config_names_the_field_and_never_echoes_a_value() -> None:
    document = config_document()
    document["notifiers"][0]["url"] = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"
    with pytest.raises(ConfigError) as raised:
        parse_config(yaml.safe_dump(document))
    assert "notifiers.0.Slack: Value error, notifier: 'url' would put a URL or key in plain config" in str(raised.value)
    assert "XXXXSECRET" not in str(raised.value)
    with pytest.raises(ConfigError, match="not YAML"):
        parse_config("notifiers: [")


@pytest.mark.parametrize("key", ["url", "webhookUrl", "routingKey", "token"])
def test_a_plain_credential_is_refused_with_a_pointer_to_secrets(key: str) -> None:
    document = config_document()
    document["notifiers"][0][key] = "https://hooks.slack.com/services/T000/B000/XXXX"
    with pytest.raises(ValidationError, match="store it in a Secret and name it with secretRef"):
        config(document)


def test_a_plain_header_value_is_refused() -> None:
    document = config_document()
    document["notifiers"][2]["headers"][0]["value"] = "Bearer s3cr3t"
    with pytest.raises(ValidationError, match="secretRef"):
        config(document)


def test_a_notifier_needs_a_secret_ref() -> None:
    document = config_document()
    del document["notifiers"][0]["secretRef"]
    with pytest.raises(ValidationError, match="secretRef"):
        config(document)


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda d: d["routes"][0]["notifiers"].append("nobody"), "unknown notifiers: nobody"),
        (lambda d: d["notifiers"].append({**d["notifiers"][0]}), "unique: oncall-slack"),
        (lambda d: d["routes"][0].update(verdicts=["Failed"]), "never notified"),
        (lambda d: d["routes"][0].update(verdicts=["Nonsense"]), "verdicts"),
        (lambda d: d["routes"][0].update(minConfidence=101), "minConfidence"),
        (lambda d: d["routes"][0].update(namespaces=["Shop!"]), "namespaces"),
        (lambda d: d["notifiers"][0].update(type="Email"), "type"),
        (lambda d: d["notifiers"][0].update(name="Oncall_Slack"), "name"),
        (lambda d: d["notifiers"][1].update(eventsUrl="ftp://x"), "eventsUrl"),
        (lambda d: d["notifiers"][1].update(severity="fatal"), "severity"),
        (lambda d: d["notifiers"][0]["secretRef"].update(key="a/b"), "key"),
        (lambda d: d.update(delivery={"maxAttempts": 0}), "maxAttempts"),
        (lambda d: d.update(surprise=True), "surprise"),
    ],
)
def test_bad_configs_are_refused_naming_the_problem(change: Any, complaint: str) -> None:
    document = config_document()
    change(document)
    with pytest.raises(ValidationError, match=complaint):
        config(document)


def names(selected: list[Any]) -> list[str]:
    return [notifier.name for notifier in selected]


def test_routes_select_by_namespace_glob_verdict_and_confidence() -> None:
    routes = config()
    assert names(routes.select("shop", "RootCauseIdentified", 82)) == ["oncall-slack", "pagerduty", "servicenow"]
    # Below the pager's minimum confidence: chat and ticket only.
    assert names(routes.select("shop", "RootCauseIdentified", 69)) == ["oncall-slack", "servicenow"]
    # Inconclusive is a default verdict of the first route, not one of the pager's.
    assert names(routes.select("shop", "Inconclusive", 90)) == ["oncall-slack", "servicenow"]
    assert names(routes.select("pay-eu", "RootCauseIdentified", 99)) == ["oncall-slack", "servicenow"]
    assert names(routes.select("payments", "RootCauseIdentified", 99)) == []
    # NoFaultFound is not a default verdict.
    assert names(routes.select("shop", "NoFaultFound", 0)) == []


def test_a_notifier_named_by_two_routes_is_selected_once_in_definition_order() -> None:
    document = config_document()
    document["routes"] = [
        {"notifiers": ["servicenow", "oncall-slack"]},
        {"notifiers": ["oncall-slack"], "namespaces": ["s*"], "verdicts": ["RootCauseIdentified", "NoFaultFound"]},
    ]
    routes = config(document)
    assert names(routes.select("shop", "RootCauseIdentified", 0)) == ["oncall-slack", "servicenow"]
    assert names(routes.select("shop", "NoFaultFound", 0)) == ["oncall-slack"]
    assert names(routes.select("web", "NoFaultFound", 0)) == []


def test_the_secret_reader_role_grants_get_on_the_named_secrets_only() -> None:
    document = config_document()
    document["notifiers"][1]["secretRef"] = secret_ref("key", name="pagerduty", namespace="oncall")
    subjects = [{"kind": "ServiceAccount", "name": "inquest", "namespace": "inquest-system"}]
    manifests = secret_reader_rbac(config(document), subjects)
    assert [(m["kind"], m["metadata"]["namespace"]) for m in manifests] == [
        ("Role", "inquest-system"),
        ("RoleBinding", "inquest-system"),
        ("Role", "oncall"),
        ("RoleBinding", "oncall"),
    ]
    assert manifests[0]["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["inquest-notifiers"], "verbs": ["get"]}
    ]
    assert manifests[2]["rules"][0]["resourceNames"] == ["pagerduty"]
    assert manifests[1]["subjects"] == subjects
    assert manifests[1]["roleRef"]["name"] == manifests[0]["metadata"]["name"]
