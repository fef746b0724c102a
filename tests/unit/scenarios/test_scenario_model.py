"""The scenario format: valid files load, invalid ones are refused with the file, the field and what is allowed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from inquest.lab.scenarios import model

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def minimal(**overrides: Any) -> dict[str, Any]:
    scenario: dict[str, Any] = {
        "name": "example",
        "description": "an example",
        "world": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}}],
        "fault": [{"delete": {"kind": "ConfigMap", "name": "settings"}}],
        "investigation": {"spec": {"target": {"kind": "Deployment", "name": "web"}}},
        "expect": {"rootCause": {"kind": "ConfigMap", "name": "settings"}, "categories": ["ConfigChange"],
                   "verdict": "RootCauseIdentified"},
    }  # fmt: skip
    scenario.update(overrides)
    return scenario


def write(tmp_path: Path, content: dict[str, Any], name: str = "example.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(content))
    return path


def refusal(tmp_path: Path, content: dict[str, Any]) -> str:
    with pytest.raises(model.ScenarioError) as raised:
        model.load(write(tmp_path, content))
    return str(raised.value)


def test_a_minimal_scenario_loads_with_defaults(tmp_path: Path) -> None:
    scenario = model.load(write(tmp_path, minimal()))
    assert scenario.investigation.after == 60.0
    assert scenario.conditions.prometheus == model.PrometheusCondition.UP
    assert scenario.fault[0].action == "delete"
    assert scenario.history_seconds == 7200.0


def test_durations_parse_in_every_place(tmp_path: Path) -> None:
    scenario = model.load(
        write(
            tmp_path,
            minimal(
                investigation={"after": "1m30s", "spec": {}},
                fault=[{"wait": "10s"}, {"scale": {"kind": "Deployment", "name": "web", "replicas": 0}}],
                metrics=[{"name": "up_total", "type": "counter", "points": [{"at": "-6h", "value": 1}]}],
            ),
        )
    )
    assert scenario.investigation.after == 90.0
    assert scenario.fault[0].wait == 10.0
    assert scenario.history_seconds == 6 * 3600.0


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"name": "Not_A_Label"}, "name: 'Not_A_Label' is not a DNS-1123 label"),
        ({"colour": "red"}, "colour: Extra inputs are not permitted"),
        ({"fault": [{"patch": {"kind": "Deployment", "name": "web", "merge": {}}, "wait": "1s"}]},
         "fault.0: each step has exactly one of patch, create, delete, scale, annotate, wait"),
        ({"fault": [{"patch": {"kind": "Deployment", "name": "web"}}]},
         "fault.0.patch: give exactly one of strategic, merge and json"),
        ({"fault": [{"wait": "soon"}]}, "fault.0.wait: not a duration: 'soon'"),
        ({"fault": [{"scale": {"kind": "Deployment", "name": "web", "replicas": -1}}]},
         "fault.0.scale.replicas: Input should be greater than or equal to 0"),
        ({"world": [{"kind": "ConfigMap", "metadata": {"name": "x"}}]},
         "world: world[0]: a manifest needs a string apiVersion"),
        ({"conditions": {"prometheus": "sideways"}}, "conditions.prometheus: Input should be 'up', 'down' or 'absent'"),
        ({"investigation": {"spec": {"target": {"kind": "Gateway", "name": "x"}}}}, "target.kind"),
        ({"investigation": {"after": "2h"}}, "investigation.after: Input should be less than or equal to 1200"),
        ({"expect": {"verdict": "RootCauseIdentified"}},
         "expect: give either rootCause or none: true"),
        ({"expect": {"none": True, "verdict": "Maybe"}}, "expect.verdict: Input should be"),
        ({"expect": {"rootCause": {"kind": "Deployment", "name": "web"}, "verdict": "RootCauseIdentified"}},
         "expect: categories: give at least one category"),
        ({"expect": {"rootCause": {"kind": "Deployment", "name": "web"}, "categories": ["Gremlins"],
                     "verdict": "RootCauseIdentified"}}, "expect.categories.0: Input should be"),
        ({"expect": {"rootCause": {"kind": "Deployment", "name": "web"}, "categories": ["BadRollout"],
                     "aliases": [{"kind": "Pod"}], "verdict": "RootCauseIdentified"}},
         "expect.aliases.0: give exactly one of name and namePrefix"),
        ({"metrics": [{"name": "errors", "type": "counter", "points": [{"at": 0, "value": 1}]}]},
         "metrics.0: name: a counter's name must end with '_total'"),
        ({"metrics": [{"name": "x_total", "type": "counter", "labels": {"namespace": "a"},
                       "points": [{"at": 0, "value": 1}]}]}, "labels.namespace: the runner sets it"),
        ({"metrics": [{"name": "x", "type": "gauge", "points": [{"at": 0, "value": 1}, {"at": "-1m", "value": 2}]}]},
         "points must be in strictly increasing order"),
        ({"conditions": {"prometheus": "absent"},
          "metrics": [{"name": "x", "type": "gauge", "points": [{"at": 0, "value": 1}]}]},
         "conditions.prometheus is absent (no series for this namespace) but metrics are given"),
    ],
)  # fmt: skip
def test_invalid_files_name_the_file_and_the_field(tmp_path: Path, override: dict[str, Any], expected: str) -> None:
    message = refusal(tmp_path, minimal(**override))
    assert message.startswith(str(tmp_path / "example.yaml") + ": ")
    assert expected in message


def test_a_file_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(model.ScenarioError, match=r"list\.yaml: a scenario is a YAML mapping"):
        model.load(path)


def test_a_directory_reports_every_invalid_file_and_duplicate_names(tmp_path: Path) -> None:
    write(tmp_path, minimal(), "a.yaml")
    write(tmp_path, minimal(), "b.yaml")
    write(tmp_path, minimal(name="Bad Name"), "c.yaml")
    with pytest.raises(model.ScenarioError) as raised:
        model.load_directory(tmp_path)
    message = str(raised.value)
    assert "c.yaml: name" in message
    assert "scenario name 'example' is used twice" in message


def test_only_and_tag_select_and_say_when_nothing_matches(tmp_path: Path) -> None:
    write(tmp_path, minimal(name="one", tags=["fast"]), "one.yaml")
    write(tmp_path, minimal(name="two"), "two.yaml")
    assert [s.name for s in model.load_directory(tmp_path, tag="fast")] == ["one"]
    assert [s.name for s in model.load_directory(tmp_path, only="two")] == ["two"]
    with pytest.raises(model.ScenarioError, match="--only three: no scenario of that name"):
        model.load_directory(tmp_path, only="three")
    with pytest.raises(model.ScenarioError, match="--tag slow: no scenario"):
        model.load_directory(tmp_path, tag="slow")


def test_namespace_placeholder_is_replaced_in_keys_and_values() -> None:
    tree = {"env": [{"value": "payments.${NAMESPACE}.svc:8080"}], "${NAMESPACE}-key": 3}
    assert model.substitute(tree, "sc-x") == {"env": [{"value": "payments.sc-x.svc:8080"}], "sc-x-key": 3}


def test_aliases_match_by_name_or_prefix() -> None:
    expect = model.Expectation.model_validate(
        {
            "rootCause": {"kind": "Deployment", "name": "payments"},
            "aliases": [{"kind": "Pod", "namePrefix": "payments-"}],
            "categories": ["BadRollout"],
            "verdict": "RootCauseIdentified",
        }
    )
    assert expect.blames_expected("Deployment", "payments")
    assert expect.blames_expected("Pod", "payments-7d9f-abcde")
    assert not expect.blames_expected("Pod", "checkout-7d9f-abcde")
    assert not expect.blames_expected("ReplicaSet", "payments-7d9f")


def test_the_development_set_is_valid_and_meets_its_quotas() -> None:
    scenarios = model.load_directory(SCENARIOS)
    tags = [tag for scenario in scenarios for tag in scenario.tags]
    assert len(scenarios) >= 40
    assert tags.count("propagation") >= 10
    assert tags.count("no-failing-pod") >= 6
    assert tags.count("missing-data") >= 4
    assert tags.count("control") >= 3
    assert 6 <= tags.count("fast") <= 10
    per_category: dict[str, int] = {}
    for scenario in scenarios:
        for category in {str(c) for c in scenario.expect.categories[:1]}:
            per_category[category] = per_category.get(category, 0) + 1
    from inquest.categories import Category

    missing = [c.value for c in Category if c != Category.NO_FAULT and per_category.get(c.value, 0) < 2]
    assert missing == []
    controls = [s for s in scenarios if s.expect.none]
    assert all(s.expect.verdict == "NoFaultFound" for s in controls)


def test_the_bench_command_refuses_invalid_files_before_starting_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from inquest.lab import cli

    write(tmp_path, minimal(fault=[{"wait": "soon"}]))
    assert cli.main(["bench", "--scenarios", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "invalid scenarios" in error
    assert "example.yaml: fault.0.wait: not a duration: 'soon'" in error


def test_expectations_resolve_the_namespace_placeholder() -> None:
    expect = model.Expectation.model_validate(
        {
            "rootCause": {"kind": "Node", "name": "pool-${NAMESPACE}"},
            "categories": ["NodeFailure"],
            "verdict": "RootCauseIdentified",
            "mustNotBlame": [{"kind": "Node", "namePrefix": "other-${NAMESPACE}"}],
        }
    )
    resolved = expect.resolved("sc-a-1")
    assert resolved.blames_expected("Node", "pool-sc-a-1")
    assert not expect.blames_expected("Node", "pool-sc-a-1")
    assert resolved.must_not_blame[0].matches("Node", "other-sc-a-1-x")
