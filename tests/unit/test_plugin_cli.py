"""kubectl inquest's arguments, specs, follow-up patches and one-line errors (no cluster needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from inquest.api import models
from inquest.categories import TargetKind
from inquest.plugin import cli
from inquest.plugin.kube import Conflict, PluginError, api_error


@pytest.mark.parametrize(
    ("text", "kind", "name"),
    [
        ("deploy/checkout", TargetKind.DEPLOYMENT, "checkout"),
        ("Deployment/checkout", TargetKind.DEPLOYMENT, "checkout"),
        ("sts/redis", TargetKind.STATEFUL_SET, "redis"),
        ("po/web-1", TargetKind.POD, "web-1"),
        ("svc/payments", TargetKind.SERVICE, "payments"),
        ("node/node-c", TargetKind.NODE, "node-c"),
        ("cj/nightly", TargetKind.CRON_JOB, "nightly"),
    ],
)
def test_targets_take_kubectls_kinds_and_short_names(text: str, kind: TargetKind, name: str) -> None:
    assert cli.parse_target(text) == models.Target(kind=kind, name=name)


@pytest.mark.parametrize("text", ["why is checkout failing?", "banana/split", "deploy/", "deploy/Not_Valid", "a/b/c"])
def test_anything_else_is_not_a_target(text: str) -> None:
    assert cli.parse_target(text) is None


def test_ask_takes_an_optional_target_then_the_question() -> None:
    spec = cli.ask_spec(["deploy/checkout", "why is checkout failing?"], "2h", ["the api rollout"])
    assert spec.target == models.Target(kind=TargetKind.DEPLOYMENT, name="checkout")
    assert spec.question == "why is checkout failing?"
    assert (spec.lookback, spec.hypotheses) == ("2h", ["the api rollout"])
    only_question = cli.ask_spec(["why", "is", "it", "slow?"], None, [])
    assert (only_question.target, only_question.question) == (None, "why is it slow?")
    assert cli.ask_spec([], None, []) == models.InvestigationSpec()


def test_a_bad_lookback_is_a_one_line_error_naming_it() -> None:
    with pytest.raises(PluginError, match=r"^lookback: lookback '9d' is longer than the maximum of 7d$"):
        cli.ask_spec([], "9d", [])


def test_generated_names_are_valid_prefixes() -> None:
    spec = cli.ask_spec(["deploy/checkout"], None, [])
    assert cli.generate_name_prefix(spec) == "ask-checkout-"
    assert cli.generate_name_prefix(models.InvestigationSpec()) == "ask-namespace-"
    long = cli.ask_spec(["po/" + "a" * 200], None, [])
    assert len(cli.generate_name_prefix(long)) <= 58


def test_a_follow_up_appends_only_what_is_new() -> None:
    spec = {"context": ["we raised the heap"], "hypotheses": ["node-c"], "question": "why?"}
    patch = cli.followup_patch(spec, ["we raised the heap", "a new fact"], ["node-c", "the api rollout"], None)
    assert patch == {
        "context": ["we raised the heap", "a new fact"],
        "hypotheses": ["node-c", "the api rollout"],
    }
    assert cli.followup_patch(spec, ["we raised the heap"], ["node-c"], "why?") == {}
    assert cli.followup_patch({}, [], [], "why now?") == {"question": "why now?"}


def test_connection_flags_work_before_and_after_the_command() -> None:
    before = cli.parser().parse_args(["-n", "shop", "--context", "lab", "list"])
    after = cli.parser().parse_args(["list", "-n", "shop", "--context", "lab", "-A"])
    assert (before.namespace, before.kube_context) == ("shop", "lab")
    assert (after.namespace, after.kube_context, after.all_namespaces) == ("shop", "lab", True)


def test_in_followup_context_is_a_fact_and_the_kube_context_has_its_own_flag() -> None:
    arguments = cli.parser().parse_args(
        ["followup", "inv", "--context", "we raised the heap", "--kube-context", "lab", "--hypothesis", "node-c"]
    )
    assert arguments.facts == ["we raised the heap"]
    assert arguments.kube_context == "lab"
    assert arguments.hypothesis == ["node-c"]


def status_error(status: int, body: dict[str, Any] | str) -> Any:
    class Error:
        pass

    error = Error()
    error.status = status  # type: ignore[attr-defined]
    error.reason = "reason"  # type: ignore[attr-defined]
    error.body = body if isinstance(body, str) else json.dumps(body)  # type: ignore[attr-defined]
    return error


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (401, {"kind": "Status", "message": "Unauthorized"}, "unauthorized: the API server did not accept"),
        (
            403,
            {"kind": "Status", "message": 'investigations.inquest.dev is forbidden: User "x" cannot list'},
            'forbidden: investigations.inquest.dev is forbidden: User "x" cannot list',
        ),
        (404, "404 page not found", "the Investigation API (investigations.inquest.dev) is not installed"),
        (
            404,
            {"kind": "Status", "details": {"name": "nope", "group": "inquest.dev", "kind": "investigations"}},
            'investigation "nope" not found in namespace "shop"',
        ),
        (404, {"kind": "Status", "details": {"name": "shop", "kind": "namespaces"}}, 'namespace "shop" not found'),
        (
            422,
            {"kind": "Status", "message": "spec.lookback: Invalid value"},
            "the API server refused it: spec.lookback",
        ),
        (500, {"kind": "Status", "message": "etcd\nis down"}, "the API server answered 500: etcd is down"),
    ],
)
def test_api_errors_become_one_line(status: int, body: Any, expected: str) -> None:
    error = api_error(status_error(status, body), "shop", "nope")
    assert str(error).startswith(expected)
    assert "\n" not in str(error)


def test_a_409_is_a_conflict_to_retry() -> None:
    assert isinstance(api_error(status_error(409, {"kind": "Status", "message": "changed"})), Conflict)


def kubeconfig(path: Path, server: str, namespace: str | None = None) -> Path:
    context: dict[str, str] = {"cluster": "c", "user": "u"}
    if namespace:
        context["namespace"] = namespace
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "c",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "c", "context": context}],
            }
        )
    )
    return path


def test_an_unreachable_cluster_is_one_line_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = kubeconfig(tmp_path / "config", "https://127.0.0.1:1")
    assert cli.main(["--kubeconfig", str(config), "list"]) == 1
    captured = capsys.readouterr()
    assert captured.err == "error: cannot reach the Kubernetes API server at https://127.0.0.1:1: connection refused\n"
    assert captured.out == ""


def test_no_kubeconfig_is_one_line_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--kubeconfig", str(tmp_path / "missing"), "list"]) == 1
    assert capsys.readouterr().err.startswith("error: ")


def test_an_unknown_context_is_one_line_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = kubeconfig(tmp_path / "config", "https://127.0.0.1:1")
    assert cli.main(["--kubeconfig", str(config), "--context", "prod", "list"]) == 1
    assert capsys.readouterr().err == 'error: context "prod" does not exist in the kubeconfig\n'


def test_the_namespace_defaults_to_the_contexts(tmp_path: Path) -> None:
    from inquest.plugin.kube import InvestigationsApi

    api = InvestigationsApi(str(kubeconfig(tmp_path / "config", "https://127.0.0.1:1", namespace="shop")))
    try:
        assert api.connection.namespace == "shop"
        assert api.connection.server == "https://127.0.0.1:1"
    finally:
        api.close()
    plain = InvestigationsApi(str(kubeconfig(tmp_path / "plain", "https://127.0.0.1:1")))
    assert plain.connection.namespace == "default"
    plain.close()


class FakeApi:
    """Stands in for InvestigationsApi in command tests; records what it was asked."""

    def __init__(self, answer_after: int = 1) -> None:
        from inquest.plugin.kube import Connection

        self.connection = Connection(server="https://example", namespace="shop", user="u")
        self.stored: dict[str, Any] = {}
        self.gets = 0
        self.answer_after = answer_after
        self.conflicts = 0

    def create(self, namespace: str, body: Any) -> dict[str, Any]:
        stored = json.loads(json.dumps(body))
        metadata = stored["metadata"]
        metadata["name"] = (
            metadata.pop("generateName", "") + "x7k2p" if "generateName" in metadata else metadata["name"]
        )
        metadata.update(generation=1, resourceVersion="1", namespace=namespace)
        self.stored = stored
        return stored

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        self.gets += 1
        if self.gets >= self.answer_after:
            generation = self.stored["metadata"]["generation"]
            self.stored["status"] = {
                "observedGeneration": generation,
                "conditions": [{"type": "Concluded", "status": "True", "reason": "NoFaultFound"}],
                "summary": "No fault found.",
                "rounds": [{"generation": generation, "answer": f"answer {generation}", "reason": "NoFaultFound"}],
            }
        return json.loads(json.dumps(self.stored))

    def patch_spec(self, namespace: str, name: str, patch: Any, resource_version: str | None) -> dict[str, Any]:
        if self.conflicts:
            self.conflicts -= 1
            raise Conflict("conflict: changed")
        self.stored["spec"].update(patch)
        self.stored["metadata"]["generation"] += 1
        return json.loads(json.dumps(self.stored))

    def list(self, namespace: str | None) -> list[dict[str, Any]]:
        return [self.stored] if self.stored else []

    def close(self) -> None:
        pass


@pytest.fixture
def fake_api(monkeypatch: pytest.MonkeyPatch) -> FakeApi:
    api = FakeApi(answer_after=2)
    monkeypatch.setattr(cli, "InvestigationsApi", lambda kubeconfig, context: api)
    monkeypatch.setattr(cli, "POLL_SECONDS", 0.01)
    return api


def test_ask_wait_creates_waits_and_prints_the_report(fake_api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["ask", "deploy/checkout", "why is checkout failing?", "--wait"]) == 0
    captured = capsys.readouterr()
    assert fake_api.stored["metadata"]["name"] == "ask-checkout-x7k2p"
    assert fake_api.stored["spec"]["target"] == {"kind": "Deployment", "name": "checkout"}
    assert "investigation.inquest.dev/ask-checkout-x7k2p created in namespace shop" in captured.err
    assert "waiting for inquest to answer shop/ask-checkout-x7k2p (generation 1)" in captured.err
    assert "Verdict:  NoFaultFound" in captured.out


def test_followup_patches_waits_for_the_new_round_and_retries_a_conflict(
    fake_api: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    cli.main(["ask", "--name", "inv"])
    fake_api.conflicts = 1
    assert cli.main(["followup", "inv", "--context", "we raised the heap", "--hypothesis", "node-c"]) == 0
    captured = capsys.readouterr()
    assert fake_api.stored["spec"]["context"] == ["we raised the heap"]
    assert "Round for generation 2 of shop/inv: NoFaultFound" in captured.out
    assert "No fault found." in captured.out
    assert cli.main(["followup", "inv", "--context", "we raised the heap"]) == 1
    assert "error: nothing new" in capsys.readouterr().err


def test_waiting_too_long_is_an_error_that_keeps_the_investigation(
    fake_api: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_api.answer_after = 10**9
    assert cli.main(["ask", "--wait", "--timeout", "0.05"]) == 1
    err = capsys.readouterr().err
    assert "error: no answer for shop/ask-namespace-x7k2p (generation 1) within 0s" in err
    assert "kubectl inquest show ask-namespace-x7k2p -n shop" in err
