"""Notifier Secrets read from files the kubelet mounts (notify.mounted), and how the operator wires them in."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from notify_builders import INVESTIGATION, config_document, status

from inquest.notify.hook import Notifier
from inquest.notify.mounted import MountedSecrets, SecretNotMounted
from inquest.notify.routes import NotifyConfig

NAMESPACE = "inquest-system"
SECRET = "inquest-notifiers"


def mount(directory: Path, name: str, values: dict[str, str], version: str = "v1") -> None:
    """A Secret volume as the kubelet lays it out: the keys are links into a `..data` directory it swaps whole."""
    root = directory / name
    data = root / f"..{version}"
    data.mkdir(parents=True)
    for key, value in values.items():
        (data / key).write_text(value)
    swap = root / "..data_tmp"
    swap.symlink_to(data.name)
    os.replace(swap, root / "..data")
    for key in values:
        if not (root / key).is_symlink():
            (root / key).symlink_to(f"..data/{key}")


@pytest.fixture
def secrets_dir(tmp_path: Path) -> Path:
    mount(tmp_path, SECRET, {"slack-url": "https://hooks.slack.com/services/T0/B0/first\n"})
    return tmp_path


async def test_a_mounted_key_is_read_stripped_and_reread_after_the_kubelet_swaps_it(secrets_dir: Path) -> None:
    reader = MountedSecrets(secrets_dir, NAMESPACE)
    assert (
        await reader.read_secret_key(NAMESPACE, SECRET, "slack-url") == "https://hooks.slack.com/services/T0/B0/first"
    )
    mount(secrets_dir, SECRET, {"slack-url": "https://hooks.slack.com/services/T0/B0/rotated"}, version="v2")
    assert await reader.read_secret_key(NAMESPACE, SECRET, "slack-url") == (
        "https://hooks.slack.com/services/T0/B0/rotated"
    )


async def test_a_mounted_secret_without_the_key_is_a_missing_key(secrets_dir: Path) -> None:
    reader = MountedSecrets(secrets_dir)
    with pytest.raises(KeyError, match="no such key"):
        await reader.read_secret_key(NAMESPACE, SECRET, "pagerduty-key")


async def test_a_secret_that_is_not_mounted_says_where_it_was_looked_for_and_how_to_mount_it(tmp_path: Path) -> None:
    reader = MountedSecrets(tmp_path)
    with pytest.raises(SecretNotMounted) as raised:
        await reader.read_secret_key(NAMESPACE, "elsewhere", "url")
    message = str(raised.value)
    assert f"Secret {NAMESPACE}/elsewhere key url is not mounted at {tmp_path / 'elsewhere'}" in message
    assert "mountSecrets" in message
    assert "--notify-secrets-from-api" in message
    assert raised.value.status == 404  # notify.hook: a permanent failure, not retried


async def test_a_secret_of_another_namespace_is_refused_not_read_from_a_same_named_mount(secrets_dir: Path) -> None:
    with pytest.raises(SecretNotMounted, match="a pod mounts only Secrets of its own namespace"):
        await MountedSecrets(secrets_dir, NAMESPACE).read_secret_key("shop", SECRET, "slack-url")
    # Without a namespace to hold to (a local run), the namespace is not checked.
    assert await MountedSecrets(secrets_dir).read_secret_key("shop", SECRET, "slack-url")


@pytest.mark.parametrize("key", ["..", "..data", "..2026_11_25"])
async def test_the_kubelets_own_entries_are_not_keys(secrets_dir: Path, key: str) -> None:
    with pytest.raises(SecretNotMounted, match="is not a Secret key"):
        await MountedSecrets(secrets_dir).read_secret_key(NAMESPACE, SECRET, key)


def test_unmounted_names_each_notifier_and_field_whose_secret_cannot_be_read(secrets_dir: Path) -> None:
    config = NotifyConfig.model_validate(config_document())
    found = MountedSecrets(secrets_dir, NAMESPACE).unmounted(config)
    assert [(ref.field, ref.notifier) for ref in found] == [
        ("notifiers[1].secretRef", "pagerduty"),
        ("notifiers[2].secretRef", "servicenow"),
        ("notifiers[2].headers[0].secretRef", "servicenow"),
    ]
    assert "has no key pagerduty-key" in found[0].message
    assert str(found[0]).startswith("notifiers[1].secretRef (notifier pagerduty): ")
    mount(secrets_dir, "other", {"x": "y"})
    mount(
        secrets_dir,
        SECRET,
        {"slack-url": "u", "pagerduty-key": "k", "servicenow-url": "u", "servicenow-auth": "a"},
        version="v2",
    )
    assert MountedSecrets(secrets_dir, NAMESPACE).unmounted(config) == []


async def test_the_notifier_reads_mounted_files_and_never_the_api(secrets_dir: Path) -> None:
    class Writer:
        """A KubeWriter whose Secret read would be an API request: it must not happen."""

        def __init__(self) -> None:
            self.api_reads = 0
            self.patches: list[dict[str, Any]] = []

        async def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
            self.patches.append(patch)

        async def post_event(self, involved: Any, reason: str, message: str, warning: bool = False) -> None:
            return None

        async def read_secret_key(self, namespace: str, name: str, key: str) -> str:
            self.api_reads += 1
            return "https://api.example.com/read-through-the-api"

    document = config_document(maxAttempts=1, timeoutSeconds=0.5)
    document["notifiers"] = [
        {
            "name": "oncall-slack",
            "type": "Slack",
            "secretRef": {"namespace": NAMESPACE, "name": SECRET, "key": "slack-url"},
        },
        {"name": "pagerduty", "type": "PagerDuty", "secretRef": {"namespace": NAMESPACE, "name": "gone", "key": "k"}},
    ]
    document["routes"] = [{"notifiers": ["oncall-slack", "pagerduty"]}]
    writer = Writer()
    notifier = Notifier.for_kube(
        NotifyConfig.model_validate(document),
        writer,  # type: ignore[arg-type]
        secrets=MountedSecrets(secrets_dir, NAMESPACE),
    )
    requested: list[str] = []

    async def record(request: Any) -> Any:
        requested.append(request.url)
        from inquest.notify.dispatcher import _Attempt

        return _Attempt(ok=True, retryable=False, message="accepted (HTTP 200)")

    notifier.dispatcher._post = record  # type: ignore[method-assign]
    notifier.on_concluded(INVESTIGATION, status())
    await notifier.wait_idle()
    await notifier.close()
    assert writer.api_reads == 0
    assert requested == ["https://hooks.slack.com/services/T0/B0/first"]
    recorded = {item["notifier"]: item for item in writer.patches[-1]["notifications"]}
    assert recorded["oncall-slack"]["state"] == "Sent"
    assert recorded["pagerduty"]["state"] == "Failed"
    assert recorded["pagerduty"]["message"].startswith(f"Secret {NAMESPACE}/gone key k: the Secret does not exist")


def run_main(*arguments: str) -> int:
    from inquest.__main__ import main

    return main(["run", *arguments])


def test_the_operator_refuses_to_start_when_a_notifier_secret_is_not_mounted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import yaml

    monkeypatch.delenv("INQUEST_SECRETS_DIR", raising=False)
    notify = tmp_path / "notify.yaml"
    notify.write_text(yaml.safe_dump(config_document()))
    secrets = tmp_path / "secrets"
    mount(secrets, SECRET, {"slack-url": "u"})
    code = run_main(f"--notify-config={notify}", f"--secrets-dir={secrets}", f"--secrets-namespace={NAMESPACE}")
    assert code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(f"--notify-config {notify}: notifiers[1].secretRef (notifier pagerduty): ")
    assert f"is mounted at {secrets / SECRET} but has no key pagerduty-key" in lines[0]
    assert os.environ["INQUEST_SECRETS_DIR"] == str(secrets)  # the ConfigMap's secretKeyRefs resolve there too


def test_a_configmap_change_naming_an_unmounted_secret_is_refused_naming_the_field_and_notifier(
    secrets_dir: Path,
) -> None:
    from inquest import config as operator_config
    from inquest.configmap import ConfigMapReference, LiveConfig

    live = LiveConfig(
        ConfigMapReference(NAMESPACE, "inquest-config"),
        service=None,  # type: ignore[arg-type]
        writer=None,  # type: ignore[arg-type]
        secrets=MountedSecrets(secrets_dir, NAMESPACE),
    )
    settings = operator_config.load_config(yaml_text({"notifications": config_document()}))
    with pytest.raises(operator_config.ConfigError) as raised:
        live.notifier_for(settings)
    assert raised.value.fields == (
        "notifications.notifiers[1].secretRef",
        "notifications.notifiers[2].secretRef",
        "notifications.notifiers[2].headers[0].secretRef",
    )
    assert "notifier pagerduty: " in str(raised.value)
    # Once mounted, the same configuration gives a notifier.
    mount(
        secrets_dir,
        SECRET,
        {"slack-url": "u", "pagerduty-key": "k", "servicenow-url": "u", "servicenow-auth": "a"},
        version="v2",
    )
    assert live.notifier_for(settings) is not None


def yaml_text(document: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(document)
