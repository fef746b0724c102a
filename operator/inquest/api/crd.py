"""Generates the Investigation CRD from the pydantic models, and checks the committed copy for drift.

    python -m inquest.api.crd            # print the CRD
    python -m inquest.api.crd --write    # regenerate crds/investigations.inquest.dev.yaml
    python -m inquest.api.crd --check    # exit 1 with a diff when the committed file drifts from the models

pydantic emits JSON Schema (with $defs, $ref, anyOf-null and titles); Kubernetes wants a *structural*
OpenAPI v3 schema: every node typed, everything inlined, no anyOf carrying types, no additionalProperties next to
properties. `structural_schema` converts one into the other and refuses any keyword it does not know how to
carry over, so a model change that the CRD could not express fails loudly here rather than at apply time.
"""

from __future__ import annotations

import argparse
import difflib
import inspect
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from inquest.api import models

CRD_PATH = Path(__file__).resolve().parents[3] / "crds" / f"{models.CRD_NAME}.yaml"
CHART_COPY = CRD_PATH.parents[1] / "helm" / "inquest" / "files" / CRD_PATH.name
HEADER = (
    "# Generated from operator/inquest/api/models.py by `python -m inquest.api.crd --write`; do not edit by hand.\n"
)

# Keywords copied as they are; their order here is the order in the generated YAML, for readable diffs.
_CARRIED_KEYWORDS = (
    "description",
    "type",
    "format",
    "enum",
    "default",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
    "required",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-validations",
)
_DROPPED_KEYWORDS = frozenset({"title", "additionalProperties"})
_NESTED_KEYWORDS = ("properties", "items")


class SchemaConversionError(ValueError):
    """The pydantic schema uses something a structural CRD schema cannot express."""


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of a model: refs inlined, nulls and titles dropped."""
    document = model.model_json_schema(by_alias=True, mode="validation")
    definitions: dict[str, Any] = document.pop("$defs", {})
    return _convert(document, definitions, model.__name__)


def _flatten(node: Mapping[str, Any], definitions: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Resolves $ref, single-item allOf and Optional's anyOf-with-null into one node; sibling keys win."""
    node = dict(node)
    if "$ref" in node:
        name = node.pop("$ref").rsplit("/", 1)[-1]
        return {**_flatten(definitions[name], definitions, where), **node}
    if "allOf" in node:
        parts = node.pop("allOf")
        if len(parts) != 1:
            raise SchemaConversionError(f"{where}: allOf with {len(parts)} parts")
        return {**_flatten(parts[0], definitions, where), **node}
    if "anyOf" in node:
        # None is not stored: dumps exclude it, and the API server drops nulls of non-nullable fields.
        branches = [branch for branch in node.pop("anyOf") if branch != {"type": "null"}]
        if len(branches) != 1:
            raise SchemaConversionError(f"{where}: a union of {len(branches)} types is not structural")
        if node.get("default", ...) is None:
            del node["default"]
        return {**_flatten(branches[0], definitions, where), **node}
    return node


def _convert(node: Mapping[str, Any], definitions: Mapping[str, Any], where: str) -> dict[str, Any]:
    flat = _flatten(node, definitions, where)
    unknown = set(flat) - set(_CARRIED_KEYWORDS) - _DROPPED_KEYWORDS - set(_NESTED_KEYWORDS)
    if unknown:
        raise SchemaConversionError(f"{where}: cannot express {sorted(unknown)} in a structural schema")
    if "type" not in flat:
        raise SchemaConversionError(f"{where}: has no type")
    if flat["type"] == "number":
        raise SchemaConversionError(f"{where}: floats are not allowed in the API; use an integer")
    if "description" in flat:
        flat["description"] = _clean_description(flat["description"])
    converted = {keyword: flat[keyword] for keyword in _CARRIED_KEYWORDS if keyword in flat}
    if "x-kubernetes-validations" in converted:
        converted["x-kubernetes-validations"] = [_ordered_rule(rule) for rule in converted["x-kubernetes-validations"]]
    if "properties" in flat:
        properties = {
            name: _convert(child, definitions, f"{where}.{name}") for name, child in flat["properties"].items()
        }
        # kubectl explain shows nothing useful for a field without one.
        missing = [name for name, child in properties.items() if not child.get("description")]
        if missing:
            raise SchemaConversionError(f"{where}: properties without a description: {missing}")
        converted["properties"] = properties
    if "items" in flat:
        converted["items"] = _convert(flat["items"], definitions, f"{where}[]")
    return _ordered(converted)


def _clean_description(text: str) -> str:
    # Docstrings wrap lines for the source file; kubectl explain does its own wrapping.
    return " ".join(inspect.cleandoc(text).split())


def _ordered(node: dict[str, Any]) -> dict[str, Any]:
    order = (
        "description",
        "type",
        "format",
        "enum",
        "default",
        "pattern",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "minItems",
        "maxItems",
        "x-kubernetes-list-type",
        "x-kubernetes-list-map-keys",
        "required",
        "properties",
        "items",
        "x-kubernetes-validations",
    )
    return {keyword: node[keyword] for keyword in order if keyword in node}


def _ordered_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    order = ("rule", "message", "messageExpression", "fieldPath", "reason", "optionalOldSelf")
    unknown = set(rule) - set(order)
    if unknown:
        raise SchemaConversionError(f"a validation rule has unknown keys {sorted(unknown)}")
    return {key: rule[key] for key in order if key in rule}


def _field_description(model: type[BaseModel], field: str) -> str:
    description = model.model_fields[field].description
    if not description:
        raise SchemaConversionError(f"{model.__name__}.{field} has no description")
    return description


def _printer_column(name: str, column_type: str, json_path: str, description: str) -> dict[str, Any]:
    return {"name": name, "type": column_type, "jsonPath": json_path, "description": description}


def build_crd() -> dict[str, Any]:
    """The CustomResourceDefinition object for Investigation."""
    spec_schema = structural_schema(models.InvestigationSpec)
    spec_schema["description"] = _field_description(models.Investigation, "spec")
    status_schema = structural_schema(models.InvestigationStatus)
    status_schema["description"] = _field_description(models.Investigation, "status")
    root_schema = {
        "description": _clean_description(models.Investigation.__doc__ or ""),
        "type": "object",
        "properties": {
            "apiVersion": {
                "description": "The versioned schema of this object; for this kind, inquest.dev/v1alpha1.",
                "type": "string",
            },
            "kind": {"description": "The REST resource this object represents: Investigation.", "type": "string"},
            "metadata": {"type": "object"},
            "spec": spec_schema,
            "status": status_schema,
        },
    }
    concluded = f'.status.conditions[?(@.type=="{models.CONCLUDED}")]'
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": models.CRD_NAME},
        "spec": {
            "group": models.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": models.KIND,
                "listKind": f"{models.KIND}List",
                "plural": models.PLURAL,
                "singular": models.SINGULAR,
                "shortNames": [models.SHORT_NAME],
                "categories": [models.CATEGORY_NAME],
            },
            "versions": [
                {
                    "name": models.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        _printer_column("Target", "string", ".spec.target.name", "Name of the investigated object."),
                        _printer_column(
                            "Status", "string", f"{concluded}.reason", "Reason of the Concluded condition."
                        ),
                        _printer_column(
                            "Root Cause",
                            "string",
                            ".status.rootCause.ref.name",
                            "Name of the object at the root of the problem.",
                        ),
                        _printer_column(
                            "Category", "string", ".status.rootCause.category", "Category of the root cause."
                        ),
                        _printer_column(
                            "Confidence",
                            "integer",
                            ".status.rootCause.confidence",
                            "Confidence in the root cause, in percent.",
                        ),
                        _printer_column("Age", "date", ".metadata.creationTimestamp", "Time since creation."),
                    ],
                    "schema": {"openAPIV3Schema": root_schema},
                }
            ],
        },
    }


class _PlainDumper(yaml.SafeDumper):
    """Writes repeated subtrees (ObjectRef, the category enum) in full rather than as YAML anchors and aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render_crd() -> str:
    """The CRD as the YAML text of crds/investigations.inquest.dev.yaml."""
    return HEADER + yaml.dump(build_crd(), Dumper=_PlainDumper, sort_keys=False, width=120, allow_unicode=True)


def drift(path: Path = CRD_PATH) -> list[str]:
    """A unified diff from the file at path to what the models generate; empty when they agree."""
    current = path.read_text() if path.exists() else ""
    return list(
        difflib.unified_diff(
            current.splitlines(keepends=True),
            render_crd().splitlines(keepends=True),
            fromfile=str(path),
            tofile="generated from inquest.api.models",
        )
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m inquest.api.crd", description="Generate or check the Investigation CRD."
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true", help="regenerate the CRD file")
    action.add_argument("--check", action="store_true", help="exit 1 with a diff when the CRD file drifts")
    parser.add_argument("--path", type=Path, default=CRD_PATH, help=f"the CRD file (default: {CRD_PATH})")
    options = parser.parse_args(argv)
    if options.write:
        options.path.write_text(render_crd())
        print(f"wrote {options.path}")
        if options.path == CRD_PATH and CHART_COPY.parent.is_dir():
            CHART_COPY.write_text(render_crd())  # the Helm chart ships its own copy (Files.Get)
            print(f"wrote {CHART_COPY}")
        return 0
    if options.check:
        differences = drift(options.path)
        if differences:
            sys.stdout.writelines(differences)
            print(f"\n{options.path} is out of date: run python -m inquest.api.crd --write", file=sys.stderr)
            return 1
        print(f"{options.path} is up to date")
        return 0
    sys.stdout.write(render_crd())
    return 0


if __name__ == "__main__":
    sys.exit(main())
