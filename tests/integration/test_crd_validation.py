"""The generated CRD, applied to the lab's real API server, rejects bad Investigations at apply time, naming the
field, and stores a full status written through the status subresource without pruning anything."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from inquest.api import crd
from inquest.api.models import (
    API_VERSION,
    CONCLUDED,
    CRD_NAME,
    GROUP,
    KIND,
    PLURAL,
    VERSION,
    Condition,
    ConditionStatus,
    Evidence,
    Finding,
    HypothesisResult,
    Investigation,
    InvestigationSpec,
    InvestigationStatus,
    ObjectRef,
    RootCause,
    Round,
    Target,
)
from inquest.categories import Category, ConcludedReason, EvidenceSource, HypothesisVerdict, Mode, TargetKind
from inquest.lab import cluster
from inquest.lab.waiting import wait_for

pytestmark = pytest.mark.lab

ResultT = TypeVar("ResultT")


@pytest.fixture(scope="module")
def kubectl_env(lab: cluster.Lab) -> dict[str, str]:
    return {**os.environ, "KUBECONFIG": str(lab.kubeconfig_admin)}


def kubectl(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kubectl", *args], input=stdin, env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def investigation_crd(kubectl_env: dict[str, str]) -> None:
    applied = kubectl(kubectl_env, "apply", "-f", str(crd.CRD_PATH))
    assert applied.returncode == 0, applied.stderr
    established = kubectl(kubectl_env, "wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=30s")
    assert established.returncode == 0, established.stderr

    def served() -> bool:
        # Discovery of a just-established CRD can lag a moment behind the condition.
        return kubectl(kubectl_env, "get", PLURAL, "--all-namespaces").returncode == 0

    wait_for(served, "the Investigation resource to be served")


def read_investigation(objects: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any]:
    return cast(dict[str, Any], objects.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name))


def patch_status(objects: client.CustomObjectsApi, namespace: str, name: str, status: dict[str, Any]) -> None:
    objects.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, name, {"status": status}, _content_type="application/merge-patch+json"
    )


def manifest(name: str, spec: dict[str, Any]) -> str:
    return yaml.safe_dump({"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": name}, "spec": spec})


BAD_SPECS: list[tuple[str, dict[str, Any], list[str]]] = [
    ("unknown-field", {"lookbak": "1h"}, ['unknown field "spec.lookbak"']),
    ("unknown-nested-field", {"target": {"kind": "Pod", "name": "web", "colour": "red"}}, ["spec.target.colour"]),
    ("bad-mode", {"mode": "Sometimes"}, ["spec.mode", "Unsupported value"]),
    ("bad-target-kind", {"target": {"kind": "Gizmo", "name": "web"}}, ["spec.target.kind", "Unsupported value"]),
    ("overlong-question", {"question": "why? " * 205}, ["spec.question", "Too long"]),
    ("bad-lookback", {"lookback": "forever"}, ["spec.lookback"]),
    ("lookback-with-since", {"lookback": "1h", "since": "2024-05-01T10:05:00Z"}, ["spec.lookback", "since"]),
    (
        "since-after-until",
        {"since": "2024-05-01T12:00:00Z", "until": "2024-05-01T10:00:00Z"},
        ["spec.since", "until"],
    ),
    ("until-without-since", {"until": "2024-05-01T10:00:00Z"}, ["spec.until", "since"]),
    ("since-without-offset", {"since": "2024-05-01T10:05:00"}, ["spec.since"]),
    ("target-without-name", {"target": {"kind": "Deployment"}}, ["spec.target.name"]),
    ("namespaced-node", {"target": {"kind": "Node", "name": "node-a", "namespace": "x"}}, ["spec.target.namespace"]),
    ("too-many-hypotheses", {"hypotheses": ["maybe"] * 11}, ["spec.hypotheses", "Too many"]),
]


@pytest.mark.usefixtures("investigation_crd")
@pytest.mark.parametrize(("name", "spec", "fragments"), BAD_SPECS, ids=[case[0] for case in BAD_SPECS])
def test_apply_rejects_bad_spec_naming_the_field(
    kubectl_env: dict[str, str], namespace: str, name: str, spec: dict[str, Any], fragments: list[str]
) -> None:
    applied = kubectl(kubectl_env, "apply", "-n", namespace, "-f", "-", stdin=manifest(name, spec))
    assert applied.returncode != 0, f"accepted: {applied.stdout}"
    for fragment in fragments:
        assert fragment in applied.stderr
    assert kubectl(kubectl_env, "get", PLURAL, "-n", namespace, name).returncode != 0


def full_status(generation: int) -> InvestigationStatus:
    started = datetime(2024, 5, 1, 10, 6, 0, tzinfo=UTC)
    concluded = datetime(2024, 5, 1, 10, 6, 1, 250000, tzinfo=UTC)
    config_map = ObjectRef(kind="ConfigMap", namespace="shop", name="checkout-config")
    return InvestigationStatus(
        observed_generation=generation,
        conditions=[
            Condition(
                type=CONCLUDED,
                status=ConditionStatus.TRUE,
                reason=ConcludedReason.ROOT_CAUSE_IDENTIFIED,
                message="checkout fails since ConfigMap checkout-config changed",
                last_transition_time=concluded,
                observed_generation=generation,
            )
        ],
        summary="checkout crash-loops since its ConfigMap lost DATABASE_URL at 10:04.",
        root_cause=RootCause(ref=config_map, category=Category.CONFIG_CHANGE, confidence=87),
        findings=[
            Finding(
                rank=1,
                ref=config_map,
                category=Category.CONFIG_CHANGE,
                confidence=87,
                summary="checkout-config lost DATABASE_URL; checkout exits at start.",
                path=["Deployment/shop/checkout", "Pod/shop/checkout-7c9d-x2k4f", "ConfigMap/shop/checkout-config"],
                evidence=[
                    Evidence(
                        source=EvidenceSource.KUBERNETES,
                        time=datetime(2024, 5, 1, 10, 4, 12, tzinfo=UTC),
                        ref=config_map,
                        detail="data key DATABASE_URL removed",
                    ),
                    Evidence(
                        source=EvidenceSource.PROMETHEUS,
                        time=datetime(2024, 5, 1, 10, 5, 0, tzinfo=UTC),
                        detail="restarts rose from 0 to 6 in 2 minutes",
                        query='increase(kube_pod_container_status_restarts_total{namespace="shop"}[5m])',
                    ),
                    Evidence(source=EvidenceSource.GRAPH, detail="checkout mounts checkout-config as env"),
                ],
            ),
            Finding(
                rank=2,
                ref=ObjectRef(kind="Node", name="node-b"),
                category=Category.NODE_FAILURE,
                confidence=5,
                summary="node-b was briefly NotReady, but before the failures started.",
            ),
        ],
        unknowns=["Journal of node-c was not reachable."],
        hypotheses=[
            HypothesisResult(text="the database is down", verdict=HypothesisVerdict.RULED_OUT, reason="it serves"),
            HypothesisResult(text="a bad image", verdict=HypothesisVerdict.UNKNOWN),
        ],
        rounds=[
            Round(
                generation=generation,
                started_time=started,
                concluded_time=concluded,
                answer="ConfigMap shop/checkout-config lost DATABASE_URL",
                reason=ConcludedReason.ROOT_CAUSE_IDENTIFIED,
            )
        ],
        started_time=started,
        concluded_time=concluded,
        duration_millis=1250,
    )


@pytest.mark.usefixtures("investigation_crd")
def test_valid_investigation_and_full_status_round_trip(
    admin_api: Any, kubectl_env: dict[str, str], namespace: str
) -> None:
    spec = InvestigationSpec(
        target=Target(kind=TargetKind.DEPLOYMENT, name="checkout"),
        question="why is checkout failing since 10:05?",
        since=datetime(2024, 5, 1, 10, 0, tzinfo=UTC),
        until=datetime(2024, 5, 1, 11, 0, tzinfo=UTC),
        context=["we rotated the database password at 10:00"],
        hypotheses=["the database is down", "a bad image"],
        mode=Mode.ONCE,
    )
    sent_spec = spec.model_dump(by_alias=True, exclude_none=True)
    applied = kubectl(kubectl_env, "apply", "-n", namespace, "-f", "-", stdin=manifest("checkout", sent_spec))
    assert applied.returncode == 0, applied.stderr

    objects = client.CustomObjectsApi(admin_api)
    stored = read_investigation(objects, namespace, "checkout")
    assert stored["spec"] == sent_spec
    generation = stored["metadata"]["generation"]

    status = full_status(generation)
    sent_status = status.model_dump(by_alias=True, exclude_none=True)
    patch_status(objects, namespace, "checkout", sent_status)
    stored = read_investigation(objects, namespace, "checkout")
    assert stored["status"] == json.loads(json.dumps(sent_status)), "the API server pruned or changed the status"
    parsed = Investigation.model_validate(stored)
    assert parsed.status == status
    assert parsed.spec == spec

    columns = kubectl(kubectl_env, "get", PLURAL, "-n", namespace, "checkout", "--no-headers")
    assert columns.returncode == 0, columns.stderr
    assert columns.stdout.split()[:5] == [
        "checkout",
        "checkout",
        "RootCauseIdentified",
        "checkout-config",
        "ConfigChange",
    ]
    assert columns.stdout.split()[5] == "87"


@pytest.mark.usefixtures("investigation_crd")
def test_status_rejects_a_concluded_reason_outside_the_enum(admin_api: Any, namespace: str) -> None:
    objects = client.CustomObjectsApi(admin_api)
    objects.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": "empty"}}
    )
    condition = {"type": CONCLUDED, "status": "True", "reason": "Bogus", "lastTransitionTime": "2024-05-01T10:00:00Z"}
    with pytest.raises(ApiException) as rejected:
        patch_status(objects, namespace, "empty", {"conditions": [condition]})
    assert rejected.value.status == 422
    assert "status.conditions[0].reason" in json.loads(rejected.value.body or "{}")["message"]


@pytest.mark.usefixtures("investigation_crd")
def test_kubectl_explain_shows_the_descriptions(kubectl_env: dict[str, str]) -> None:
    target_description = InvestigationSpec.model_fields["target"].description
    kind_description = Target.model_fields["kind"].description
    assert target_description is not None
    assert kind_description is not None

    def explained() -> str | None:
        # The published OpenAPI document trails the CRD's Established condition by a moment.
        result = kubectl(kubectl_env, "explain", "investigation.spec.target")
        return result.stdout if result.returncode == 0 and "DESCRIPTION" in result.stdout else None

    text = " ".join(wait_for(explained, "kubectl explain to know the Investigation").split())
    assert target_description.split(".")[0] in text
    assert kind_description.split(":")[0] in text
