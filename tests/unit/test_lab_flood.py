"""The flood the isolation test sends: its requests are what the plan says, and its valid ones are payloads the
intake maps to Investigations (one per group)."""

from __future__ import annotations

from collections import Counter

from inquest.intake.alertmanager import IntakeSettings, WebhookPayload, build_investigation
from inquest.lab.flood import REPEATED_GROUP, FloodPlan, Kind, notification, requests_of


def plan(**counts: int) -> FloodPlan:
    sizes = {"repeats": 0, "distinct": 0, "malformed": 0, "oversized": 0, "bad_token": 0, **counts}
    return FloodPlan(url="http://x", token="t", namespace="alerts", target_namespace="shop", seconds=1, **sizes)


def test_the_requests_are_those_of_the_plan_shuffled_the_same_way_every_time() -> None:
    chosen = plan(repeats=5, distinct=4, malformed=3, oversized=2, bad_token=1)
    wanted = requests_of(chosen)
    assert Counter(kind for kind, _ in wanted) == {
        Kind.REPEAT: 5,
        Kind.DISTINCT: 4,
        Kind.MALFORMED: 3,
        Kind.OVERSIZED: 2,
        Kind.BAD_TOKEN: 1,
    }
    assert sorted(number for kind, number in wanted if kind == Kind.DISTINCT) == [0, 1, 2, 3]
    assert wanted == requests_of(chosen)
    assert wanted != sorted(wanted)


def test_distinct_groups_start_at_the_offset() -> None:
    wanted = requests_of(plan(distinct=3, distinct_offset=10_000))
    assert sorted(number for _, number in wanted) == [10_000, 10_001, 10_002]


def test_each_group_is_a_valid_payload_with_its_own_investigation() -> None:
    names = set()
    for group in (0, 1, 10_000, REPEATED_GROUP):
        payload = WebhookPayload.model_validate(notification("alerts", "shop", group))
        investigation = build_investigation(payload, IntakeSettings())
        assert investigation.metadata["namespace"] == "alerts"
        assert investigation.spec.target is not None
        assert (investigation.spec.target.kind, investigation.spec.target.namespace) == ("Deployment", "shop")
        names.add(investigation.metadata["name"])
    assert len(names) == 4
