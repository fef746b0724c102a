"""The Investigation API models: round trips, validation that names the field, windows, conditions, trimming."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from inquest.api.models import (
    CONCLUDED,
    MAX_EVIDENCE,
    MAX_FINDINGS,
    MAX_HYPOTHESES,
    MAX_PATH_LENGTH,
    MAX_ROUNDS,
    MAX_STATUS_BYTES,
    MAX_UNKNOWNS,
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
    TimeWindow,
    find_condition,
    format_timestamp,
    parse_lookback,
    resolve_window,
    set_condition,
)
from inquest.categories import Category, ConcludedReason, EvidenceSource, HypothesisVerdict, Mode, TargetKind

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
CHECKOUT_CONFIG = ObjectRef(kind="ConfigMap", namespace="shop", name="checkout-config")


def concluded(reason: ConcludedReason, status: ConditionStatus, at: datetime, message: str = "") -> Condition:
    return Condition(type=CONCLUDED, status=status, reason=reason, message=message, last_transition_time=at)


def sample_status() -> InvestigationStatus:
    return InvestigationStatus(
        observed_generation=2,
        conditions=[concluded(ConcludedReason.ROOT_CAUSE_IDENTIFIED, ConditionStatus.TRUE, NOW, "found it")],
        summary="checkout crash-loops since its ConfigMap lost DATABASE_URL.",
        root_cause=RootCause(ref=CHECKOUT_CONFIG, category=Category.CONFIG_CHANGE, confidence=87),
        findings=[
            Finding(
                rank=1,
                ref=CHECKOUT_CONFIG,
                category=Category.CONFIG_CHANGE,
                confidence=87,
                summary="checkout-config lost DATABASE_URL.",
                path=["Deployment/shop/checkout", "ConfigMap/shop/checkout-config"],
                evidence=[
                    Evidence(
                        source=EvidenceSource.PROMETHEUS,
                        time=NOW - timedelta(minutes=5, microseconds=1500),
                        detail="restarts rose",
                        query="increase(kube_pod_container_status_restarts_total[5m])",
                    ),
                    Evidence(source=EvidenceSource.GRAPH, ref=CHECKOUT_CONFIG, detail="mounted as env"),
                ],
            )
        ],
        unknowns=["Journal of node-c was not reachable."],
        hypotheses=[HypothesisResult(text="the database is down", verdict=HypothesisVerdict.RULED_OUT, reason="ok")],
        rounds=[Round(generation=2, started_time=NOW, concluded_time=NOW, answer="checkout-config changed")],
        started_time=NOW,
        concluded_time=NOW + timedelta(milliseconds=1250),
        duration_millis=1250,
    )


# --- round trips and dumps -------------------------------------------------------------------------------------


def test_spec_round_trips_through_its_camel_case_dump() -> None:
    spec = InvestigationSpec(
        target=Target(kind=TargetKind.STATEFUL_SET, name="db", namespace="data"),
        question="why?",
        since=NOW - timedelta(hours=1),
        until=NOW,
        context=["we rotated a password"],
        hypotheses=["disk full"],
        mode=Mode.CONTINUOUS,
    )
    dumped = spec.model_dump(by_alias=True, exclude_none=True)
    assert dumped == {
        "target": {"kind": "StatefulSet", "name": "db", "namespace": "data"},
        "question": "why?",
        "since": "2024-05-01T11:00:00Z",
        "until": "2024-05-01T12:00:00Z",
        "context": ["we rotated a password"],
        "hypotheses": ["disk full"],
        "mode": "Continuous",
    }
    assert InvestigationSpec.model_validate(dumped) == spec


def test_status_round_trips_and_dumps_plain_camel_case_values() -> None:
    status = sample_status()
    dumped = status.model_dump(by_alias=True, exclude_none=True)
    assert InvestigationStatus.model_validate(dumped) == status
    # Plain types only: safe for yaml.safe_dump, json.dumps, kopf patches and the kubernetes client alike.
    assert yaml.safe_load(yaml.safe_dump(dumped)) == json.loads(json.dumps(dumped)) == dumped
    assert {"observedGeneration", "rootCause", "durationMillis", "startedTime", "concludedTime"} <= set(dumped)
    assert dumped["conditions"][0]["lastTransitionTime"] == "2024-05-01T12:00:00Z"
    assert dumped["findings"][0]["evidence"][0]["time"] == "2024-05-01T11:54:59.998500Z"
    assert "ref" not in dumped["findings"][0]["evidence"][0]  # None is left out, not sent as null
    assert status.to_api() == dumped


def test_empty_spec_means_whole_namespace_for_thirty_minutes() -> None:
    spec = InvestigationSpec()
    assert spec.mode == Mode.ONCE
    assert spec.target_reference("shop") == ObjectRef(kind="Namespace", name="shop")
    assert resolve_window(spec, NOW) == TimeWindow(NOW - timedelta(minutes=30), NOW)


def test_investigation_parses_a_body_from_the_api_server() -> None:
    body = {
        "apiVersion": "inquest.dev/v1alpha1",
        "kind": "Investigation",
        "metadata": {"name": "why", "namespace": "shop", "generation": 2},
        "spec": {"lookback": "2h"},
        "status": sample_status().to_api(),
    }
    investigation = Investigation.model_validate(body)
    assert investigation.spec.lookback == "2h"
    assert investigation.status == sample_status()
    assert Investigation.model_validate({"apiVersion": "inquest.dev/v1alpha1", "kind": "Investigation"}).spec == (
        InvestigationSpec()
    )


def test_python_names_are_accepted_too() -> None:
    condition = Condition.model_validate(
        {"type": CONCLUDED, "status": "True", "reason": "Failed", "last_transition_time": "2024-05-01T12:00:00Z"}
    )
    assert condition.last_transition_time == NOW


def test_timestamps_are_written_in_utc_with_z() -> None:
    assert format_timestamp(datetime(2024, 5, 1, 14, 0, tzinfo=UTC).astimezone()) == "2024-05-01T14:00:00Z"
    spec = InvestigationSpec.model_validate({"since": "2024-05-01T14:00:00+02:00"})
    assert spec.to_api()["since"] == "2024-05-01T12:00:00Z"
    with pytest.raises(ValueError, match="time zone"):
        format_timestamp(datetime(2024, 5, 1))


# --- validation errors name the field --------------------------------------------------------------------------

BAD_SPECS: list[tuple[str, dict[str, Any], list[str]]] = [
    ("unknown-field", {"lookbak": "1h"}, ["lookbak", "Extra inputs are not permitted"]),
    ("unknown-nested-field", {"target": {"kind": "Pod", "name": "web", "colour": "red"}}, ["target.colour"]),
    ("bad-mode", {"mode": "Sometimes"}, ["mode", "'Once' or 'Continuous'"]),
    ("bad-target-kind", {"target": {"kind": "Gizmo", "name": "web"}}, ["target.kind"]),
    ("bad-target-name", {"target": {"kind": "Pod", "name": "Web_1"}}, ["target.name"]),
    ("overlong-question", {"question": "x" * 1025}, ["question", "at most 1024"]),
    ("bad-lookback", {"lookback": "forever"}, ["lookback"]),
    ("overlong-lookback", {"lookback": "8d"}, ["lookback", "maximum of 7d"]),
    ("lookback-with-since", {"lookback": "1h", "since": "2024-05-01T10:00:00Z"}, ["lookback and since"]),
    ("until-without-since", {"until": "2024-05-01T10:00:00Z"}, ["until requires since"]),
    (
        "since-after-until",
        {"since": "2024-05-01T12:00:00Z", "until": "2024-05-01T10:00:00Z"},
        ["since must be earlier than until"],
    ),
    ("since-without-offset", {"since": "2024-05-01T10:00:00"}, ["since", "RFC 3339"]),
    ("since-as-unix-seconds", {"since": 1714557600}, ["since", "RFC 3339"]),
    ("target-without-name", {"target": {"kind": "Deployment"}}, ["target.name is required"]),
    ("namespaced-node", {"target": {"kind": "Node", "name": "a", "namespace": "b"}}, ["target.namespace"]),
    ("too-many-hypotheses", {"hypotheses": ["h"] * (MAX_HYPOTHESES + 1)}, ["hypotheses", "at most 10"]),
    ("overlong-context", {"context": ["x" * 1025]}, ["context.0"]),
]


@pytest.mark.parametrize(("data", "fragments"), [case[1:] for case in BAD_SPECS], ids=[case[0] for case in BAD_SPECS])
def test_spec_validation_error_names_the_field(data: dict[str, Any], fragments: list[str]) -> None:
    with pytest.raises(ValidationError) as invalid:
        InvestigationSpec.model_validate(data)
    for fragment in fragments:
        assert fragment in str(invalid.value)


def test_status_validation_errors_name_the_field() -> None:
    finding = sample_status().findings[0].to_api()
    with pytest.raises(ValidationError, match=r"findings\.0\.confidence"):
        InvestigationStatus.model_validate({"findings": [{**finding, "confidence": 101}]})
    with pytest.raises(ValidationError, match=r"findings\.0\.confidence"):
        InvestigationStatus.model_validate({"findings": [{**finding, "confidence": 0.5}]})
    with pytest.raises(ValidationError, match=r"ranked 1\.\.2 in order"):
        InvestigationStatus.model_validate({"findings": [{**finding, "rank": 2}, {**finding, "rank": 1}]})
    with pytest.raises(ValidationError, match="reason of the Concluded condition"):
        InvestigationStatus.model_validate(
            {
                "conditions": [
                    {
                        "type": CONCLUDED,
                        "status": "True",
                        "reason": "Bogus",
                        "lastTransitionTime": "2024-05-01T12:00:00Z",
                    }
                ]
            }
        )
    with pytest.raises(ValidationError, match=r"rounds\.0\.answer"):
        InvestigationStatus.model_validate(
            {"rounds": [{"generation": 1, "startedTime": "2024-05-01T12:00:00Z", "answer": "two\nlines"}]}
        )


# --- lookback and window ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("90s", timedelta(seconds=90)),
        ("7d", timedelta(days=7)),
        ("6d23h59m60s", timedelta(days=7)),
    ],
)
def test_parse_lookback(text: str, expected: timedelta) -> None:
    assert parse_lookback(text) == expected


@pytest.mark.parametrize("text", ["", "30", "m", "1.5h", "-1h", "1w", "1h 30m", "0m", "0s0m", "7d1s", "9" * 40 + "d"])
def test_parse_lookback_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="lookback"):
        parse_lookback(text)


def test_window_from_lookback() -> None:
    assert resolve_window(InvestigationSpec(lookback="2h"), NOW) == (NOW - timedelta(hours=2), NOW)


def test_window_from_since_and_until() -> None:
    since, until = NOW - timedelta(hours=3), NOW - timedelta(hours=1)
    assert resolve_window(InvestigationSpec(since=since, until=until), NOW) == TimeWindow(since, until)
    assert resolve_window(InvestigationSpec(since=since), NOW) == TimeWindow(since, NOW)
    window = resolve_window(InvestigationSpec(since=since, until=NOW + timedelta(hours=1)), NOW)
    assert window.end == NOW  # the future cannot be observed yet
    assert window.duration == timedelta(hours=3)


def test_window_rejects_a_future_start_an_overlong_window_and_a_naive_now() -> None:
    with pytest.raises(ValueError, match="not before"):
        resolve_window(InvestigationSpec(since=NOW + timedelta(minutes=1)), NOW)
    with pytest.raises(ValueError, match="maximum of 7d"):
        resolve_window(InvestigationSpec(since=NOW - timedelta(days=8)), NOW)
    with pytest.raises(ValueError, match="time zone"):
        resolve_window(InvestigationSpec(), NOW.replace(tzinfo=None))


def test_target_reference_applies_defaults() -> None:
    assert Target(kind=TargetKind.DEPLOYMENT, name="web").reference("shop") == ObjectRef(
        kind="Deployment", namespace="shop", name="web"
    )
    assert Target(kind=TargetKind.POD, name="web-1", namespace="other").reference("shop").namespace == "other"
    assert Target(kind=TargetKind.NODE, name="node-a").reference("shop") == ObjectRef(kind="Node", name="node-a")
    assert Target(kind=TargetKind.NAMESPACE).reference("shop") == ObjectRef(kind="Namespace", name="shop")
    assert Target(kind=TargetKind.NAMESPACE, name="data").reference("shop").name == "data"
    assert ObjectRef(kind="Node", name="node-a").as_path_entry() == "Node/node-a"
    assert CHECKOUT_CONFIG.as_path_entry() == "ConfigMap/shop/checkout-config"


# --- conditions and rounds -------------------------------------------------------------------------------------


def test_set_condition_keeps_the_transition_time_while_the_status_is_unchanged() -> None:
    ready = Condition(type="Ready", status=ConditionStatus.TRUE, reason="Fine", last_transition_time=NOW)
    started = concluded(ConcludedReason.INVESTIGATING, ConditionStatus.FALSE, NOW)
    conditions = set_condition([ready], started)
    assert conditions == [ready, started]

    later = NOW + timedelta(minutes=1)
    still_false = set_condition(conditions, concluded(ConcludedReason.FAILED, ConditionStatus.FALSE, later, "boom"))
    updated = find_condition(still_false, CONCLUDED)
    assert updated is not None
    assert (updated.reason, updated.message, updated.last_transition_time) == ("Failed", "boom", NOW)

    done = set_condition(still_false, concluded(ConcludedReason.ROOT_CAUSE_IDENTIFIED, ConditionStatus.TRUE, later))
    assert [condition.type for condition in done] == ["Ready", CONCLUDED]
    assert done[1].last_transition_time == later
    assert find_condition(done, "Missing") is None


def test_status_condition_helpers() -> None:
    status = InvestigationStatus()
    status.set_condition(concluded(ConcludedReason.INVESTIGATING, ConditionStatus.FALSE, NOW))
    condition = status.condition(CONCLUDED)
    assert condition is not None
    assert condition.reason == ConcludedReason.INVESTIGATING


def test_record_round_replaces_its_generation_and_keeps_the_last_twenty() -> None:
    status = InvestigationStatus()
    for generation in range(1, MAX_ROUNDS + 6):
        status.record_round(Round(generation=generation, started_time=NOW))
    status.record_round(Round(generation=MAX_ROUNDS + 5, started_time=NOW, answer="concluded"))
    assert [kept.generation for kept in status.rounds] == list(range(6, MAX_ROUNDS + 6))
    assert status.rounds[-1].answer == "concluded"


# --- trimming the status to 64 KiB -----------------------------------------------------------------------------


def oversized_status() -> InvestigationStatus:
    """Every list at its maximum and every text at its maximum length: far over 64 KiB."""
    long_text = "x" * 1024
    findings = [
        Finding(
            rank=rank,
            ref=ObjectRef(kind="Pod", namespace="shop", name=f"pod-{rank}"),
            category=Category.CRASH_LOOP,
            confidence=90 - rank,
            summary=long_text,
            path=["p" * 512] * MAX_PATH_LENGTH,
            evidence=[
                Evidence(
                    source=EvidenceSource.PROMETHEUS,
                    time=NOW - timedelta(minutes=rank * 10 + index),
                    detail=long_text,
                    query="q" * 2048,
                )
                for index in range(MAX_EVIDENCE)
            ],
        )
        for rank in range(1, MAX_FINDINGS + 1)
    ]
    return InvestigationStatus(
        conditions=[concluded(ConcludedReason.ROOT_CAUSE_IDENTIFIED, ConditionStatus.TRUE, NOW, long_text)],
        summary=long_text,
        findings=findings,
        unknowns=[long_text] * MAX_UNKNOWNS,
        hypotheses=[HypothesisResult(text="h" * 256, verdict=HypothesisVerdict.UNKNOWN, reason=long_text)]
        * MAX_HYPOTHESES,
        rounds=[Round(generation=g, started_time=NOW, answer=long_text) for g in range(1, MAX_ROUNDS + 1)],
    )


def test_a_status_that_fits_is_returned_unchanged() -> None:
    status = sample_status()
    assert status.fit_within() is status


def test_an_oversized_status_is_trimmed_under_64_kib_and_says_so() -> None:
    status = oversized_status()
    assert status.encoded_size() > 5 * MAX_STATUS_BYTES
    trimmed = status.fit_within()
    assert trimmed.encoded_size() <= MAX_STATUS_BYTES
    assert InvestigationStatus.model_validate(trimmed.to_api()) == trimmed  # still valid against the schema
    assert trimmed.unknowns[-1].startswith("The status was trimmed to fit the 64 KiB limit")
    assert "oldest rounds dropped" in trimmed.unknowns[-1]
    assert len(trimmed.unknowns) == MAX_UNKNOWNS
    assert trimmed.rounds[-1].generation == MAX_ROUNDS  # the latest round stays
    assert trimmed.findings[0].rank == 1  # the top finding stays
    assert all(finding.evidence for finding in trimmed.findings)
    assert status.encoded_size() > 5 * MAX_STATUS_BYTES  # the original is untouched


def test_trimming_drops_oldest_rounds_before_anything_else() -> None:
    status = sample_status()
    status.rounds = [Round(generation=g, started_time=NOW, answer="a" * 1000) for g in range(1, MAX_ROUNDS + 1)]
    limit = status.encoded_size() - 3000
    trimmed = status.fit_within(limit)
    assert trimmed.encoded_size() <= limit
    assert trimmed.findings == status.findings
    dropped = MAX_ROUNDS - len(trimmed.rounds)
    assert dropped >= 1
    assert trimmed.rounds == status.rounds[dropped:]
    assert trimmed.unknowns == [*status.unknowns, trimmed.unknowns[-1]]
    assert trimmed.unknowns[-1].endswith(f"limit; oldest rounds dropped: {dropped}.")
    assert "findings" not in trimmed.unknowns[-1]


def test_trimming_drops_the_oldest_evidence_first_and_keeps_untimed_evidence() -> None:
    status = sample_status()
    first = status.findings[0]
    first.evidence = [
        Evidence(source=EvidenceSource.KUBERNETES, time=NOW - timedelta(minutes=minutes), detail=f"{minutes} " * 200)
        for minutes in (1, 30, 10)
    ] + [Evidence(source=EvidenceSource.GRAPH, detail="structure " * 100)]
    limit = status.encoded_size() - 500
    trimmed = status.fit_within(limit)
    kept_minutes = [item.detail.split()[0] for item in trimmed.findings[0].evidence]
    assert kept_minutes == ["1", "10", "structure"]
    assert "oldest evidence items dropped: 1." in trimmed.unknowns[-1]


def test_trimming_that_cannot_succeed_raises() -> None:
    with pytest.raises(ValueError, match="cannot be trimmed"):
        oversized_status().fit_within(1024)
