"""The committed CRD is exactly what the models generate, and its schema is structural and fully described."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, Field

from inquest.api import crd, models
from inquest.categories import TargetKind

# Keywords that would make the schema non-structural, or that Kubernetes rejects in a CRD.
FORBIDDEN_KEYWORDS = {"$ref", "$defs", "definitions", "anyOf", "allOf", "oneOf", "not", "title", "additionalProperties"}


def committed_crd() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(crd.CRD_PATH.read_text())
    return document


def root_schema() -> dict[str, Any]:
    schema: dict[str, Any] = committed_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def walk(node: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}")
    if "items" in node:
        yield from walk(node["items"], f"{path}[]")


def test_committed_crd_matches_the_models() -> None:
    differences = crd.drift()
    assert differences == [], (
        "crds/investigations.inquest.dev.yaml drifted from the models; run `python -m inquest.api.crd --write`:\n"
        + "".join(differences)
    )


def test_check_fails_with_a_diff_on_drift_and_write_repairs_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "crd.yaml"
    copy.write_text(crd.CRD_PATH.read_text().replace("maxLength: 1024", "maxLength: 4096", 1))
    assert crd.main(["--check", "--path", str(copy)]) == 1
    output = capsys.readouterr()
    assert "-                maxLength: 4096" in output.out
    assert "+                maxLength: 1024" in output.out
    assert "--write" in output.err
    assert crd.main(["--write", "--path", str(copy)]) == 0
    assert crd.main(["--check", "--path", str(copy)]) == 0


def test_crd_names_scope_and_subresources() -> None:
    document = committed_crd()
    assert document["metadata"]["name"] == "investigations.inquest.dev"
    spec = document["spec"]
    assert (spec["group"], spec["scope"]) == ("inquest.dev", "Namespaced")
    assert spec["names"] == {
        "kind": "Investigation",
        "listKind": "InvestigationList",
        "plural": "investigations",
        "singular": "investigation",
        "shortNames": ["inv"],
        "categories": ["inquest"],
    }
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}
    columns = {column["name"]: column["jsonPath"] for column in version["additionalPrinterColumns"]}
    assert columns == {
        "Target": ".spec.target.name",
        "Status": '.status.conditions[?(@.type=="Concluded")].reason',
        "Root Cause": ".status.rootCause.ref.name",
        "Category": ".status.rootCause.category",
        "Confidence": ".status.rootCause.confidence",
        "Age": ".metadata.creationTimestamp",
    }


def test_schema_is_structural() -> None:
    for path, node in walk(root_schema(), "openAPIV3Schema"):
        assert not FORBIDDEN_KEYWORDS & set(node), f"{path} uses {FORBIDDEN_KEYWORDS & set(node)}"
        assert "type" in node or node.get("x-kubernetes-int-or-string"), f"{path} has no type"
        # Unknown fields must be pruned (and so rejected by strict field validation), never kept.
        assert "x-kubernetes-preserve-unknown-fields" not in node, path
        assert node.get("nullable") is not True, f"{path}: None is omitted, not stored as null"
        if node.get("type") == "object" and path != "openAPIV3Schema.metadata":
            assert node.get("properties"), f"{path} is an object without properties"
        for required in node.get("required", []):
            assert required in node["properties"], f"{path} requires unknown {required}"


def test_every_field_has_a_description() -> None:
    undescribed = [
        path
        for path, node in walk(root_schema(), "openAPIV3Schema")
        if not path.endswith("[]") and path != "openAPIV3Schema.metadata" and not node.get("description")
    ]
    assert undescribed == []


def test_no_floats_in_the_api() -> None:
    assert [path for path, node in walk(root_schema(), "openAPIV3Schema") if node.get("type") == "number"] == []


def test_spec_constraints_reach_the_schema() -> None:
    spec = root_schema()["properties"]["spec"]
    properties = spec["properties"]
    assert properties["target"]["properties"]["kind"]["enum"] == [kind.value for kind in TargetKind]
    assert properties["target"]["properties"]["name"]["maxLength"] == 253
    assert properties["question"]["maxLength"] == 1024
    assert properties["lookback"]["pattern"] == models.LOOKBACK_PATTERN
    assert properties["since"]["format"] == "date-time"
    assert (properties["context"]["maxItems"], properties["context"]["items"]["maxLength"]) == (20, 1024)
    assert (properties["hypotheses"]["maxItems"], properties["hypotheses"]["items"]["maxLength"]) == (10, 256)
    assert properties["mode"] == {
        "description": properties["mode"]["description"],
        "type": "string",
        "enum": ["Once", "Continuous"],
        "default": "Once",
    }
    messages = {rule["message"] for rule in spec["x-kubernetes-validations"]}
    assert messages == {
        models.LOOKBACK_WITH_SINCE_MESSAGE,
        models.UNTIL_WITHOUT_SINCE_MESSAGE,
        models.SINCE_NOT_BEFORE_UNTIL_MESSAGE,
    }
    status = root_schema()["properties"]["status"]["properties"]
    assert status["conditions"]["x-kubernetes-list-type"] == "map"
    assert status["conditions"]["x-kubernetes-list-map-keys"] == ["type"]
    assert status["rootCause"]["properties"]["confidence"] == {
        "description": "Confidence in percent, 0 to 100.",
        "type": "integer",
        "minimum": 0,
        "maximum": 100,
    }
    assert status["findings"]["maxItems"] == 10
    assert status["findings"]["items"]["properties"]["evidence"]["maxItems"] == 8
    assert status["rounds"]["maxItems"] == 20


class _WithFloat(BaseModel):
    ratio: float = Field(description="a ratio")


class _WithUnion(BaseModel):
    value: int | str = Field(description="either")


class _Undescribed(BaseModel):
    value: int


@pytest.mark.parametrize(
    ("model", "complaint"),
    [(_WithFloat, "floats"), (_WithUnion, "union of 2 types"), (_Undescribed, "without a description")],
)
def test_conversion_refuses_what_a_structural_schema_cannot_say(model: type[BaseModel], complaint: str) -> None:
    with pytest.raises(crd.SchemaConversionError, match=complaint):
        crd.structural_schema(model)
