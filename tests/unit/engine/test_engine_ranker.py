from __future__ import annotations

from engine_builders import (
    Obj,
    at,
    change,
    config_map,
    context,
    crashing_status,
    deployment,
    event,
    journal_of,
    ref,
    shop_app,
    status,
)

from inquest.categories import Category, EvidenceSource
from inquest.engine.candidates import Candidate, Evidence
from inquest.engine.context import EvidenceContext
from inquest.engine.detectors import run_detectors
from inquest.engine.journal import ChangeRecord, ChangeType
from inquest.engine.ranker import (
    BY_EXCLUSION_CAP,
    EXPLAINED_AWAY_PENALTY,
    NO_EVIDENCE_CAP,
    UNGATED_CAP,
    DataGaps,
    Ranked,
    rank,
)
from inquest.engine.refs import ObjectRef
from inquest.engine.scope import build_scope
from inquest.engine.symptoms import collect_symptoms


def _world(payments: list[Obj] | None = None) -> list[Obj]:
    return [
        *shop_app("web", env={"CHECKOUT_URL": "http://checkout:8080"}, rs_hash="wb111"),
        *shop_app("checkout", env={"PAYMENTS_URL": "http://payments:8080"}, rs_hash="ck111"),
        *(payments or shop_app("payments", pod_statuses=[crashing_status(6), crashing_status(6)])),
        deployment("batch"),
    ]


def _rank(
    ctx: EvidenceContext, candidates: list[Candidate], target: ObjectRef | None, gaps: DataGaps | None = None
) -> list[Ranked]:
    ranked, _ = rank(ctx, candidates, collect_symptoms(ctx), build_scope(ctx, target), gaps or DataGaps())
    return ranked


def _candidate(target: ObjectRef, **fields: object) -> Candidate:
    arguments: dict[str, object] = {
        "ref": target,
        "category": Category.CRASH_LOOP,
        "base_score": 50.0,
        "summary": "test",
        "evidence": [Evidence(EvidenceSource.KUBERNETES, at(6), target, "crashing")],
        "explains": {target},
        "onset_time": at(6),
        "symptom_onset": at(6),
        "has_failure_evidence": True,
    }
    arguments.update(fields)
    return Candidate(**arguments)  # type: ignore[arg-type]


def _change(target: ObjectRef, minute: float) -> ChangeRecord:
    return ChangeRecord(at(minute), target.kind, target.namespace, target.name, ChangeType.UPDATED)


def test_candidate_without_evidence_is_capped() -> None:
    ctx = context(_world())
    payments = ref("Deployment", "payments")
    (ranked,) = _rank(ctx, [_candidate(payments, base_score=90.0, evidence=[])], ref("Deployment", "web"))
    assert ranked.confidence <= NO_EVIDENCE_CAP


def test_without_a_trigger_confidence_stays_below_seventy() -> None:
    ctx = context(_world())
    (ranked,) = _rank(ctx, [_candidate(ref("Deployment", "payments"), base_score=90.0)], ref("Deployment", "web"))
    assert ranked.confidence == UNGATED_CAP


def test_change_failure_timing_and_path_may_exceed_seventy() -> None:
    ctx = context(_world())
    payments = ref("Deployment", "payments")
    candidate = _candidate(
        payments, category=Category.BAD_ROLLOUT, base_score=60.0, change=_change(payments, 5), onset_time=at(5)
    )
    (ranked,) = _rank(ctx, [candidate], ref("Deployment", "web"))
    assert ranked.confidence >= 70
    assert ranked.path[0] == "Deployment/shop/web"
    assert ranked.path[-1] == "Deployment/shop/payments"


def test_a_change_after_the_symptoms_is_not_their_cause() -> None:
    ctx = context(_world())
    payments = ref("Deployment", "payments")
    candidate = _candidate(
        payments,
        category=Category.BAD_ROLLOUT,
        base_score=60.0,
        change=_change(payments, 20),
        onset_time=at(20),
        symptom_onset=None,
    )
    (ranked,) = _rank(ctx, [candidate], ref("Deployment", "web"))
    assert ranked.confidence < 50
    assert any("after the first symptom" in item.detail for item in ranked.counter_evidence)
    assert ranked.late_after == at(6)  # the first symptom it came too late for


def test_a_network_symptom_after_a_failing_change_to_that_service_is_the_changes_effect() -> None:
    ctx = context(_world())
    service = ref("Service", "payments")
    edit = _candidate(
        service,
        category=Category.SERVICE_MISCONFIG,
        base_score=60.0,
        change=_change(service, 5),
        onset_time=at(5),
        explains={service, ref("Deployment", "checkout")},
    )
    after_it = _candidate(service, category=Category.NETWORK_DEGRADATION, base_score=45.0)  # from minute 6
    ranked = _rank(ctx, [edit, after_it], ref("Deployment", "web"))
    assert [item.candidate.category for item in ranked] == [Category.SERVICE_MISCONFIG]
    before_it = _candidate(
        service, category=Category.NETWORK_DEGRADATION, base_score=45.0, onset_time=at(3), symptom_onset=at(3)
    )
    ranked = _rank(ctx, [edit, before_it], ref("Deployment", "web"))
    assert {item.candidate.category for item in ranked} == {Category.SERVICE_MISCONFIG, Category.NETWORK_DEGRADATION}


def test_missing_data_lowers_confidence() -> None:
    ctx = context(_world())
    candidate = _candidate(ref("Deployment", "payments"), base_score=40.0)
    (complete,) = _rank(ctx, [candidate], ref("Deployment", "web"))
    (blind,) = _rank(
        ctx,
        [_candidate(ref("Deployment", "payments"), base_score=40.0)],
        ref("Deployment", "web"),
        DataGaps(events_missing=True, metrics_missing=True, journal_incomplete=True, unavailable_kinds=2),
    )
    assert blind.confidence <= complete.confidence - 25


def test_upstream_cause_beats_symptomatic_callers() -> None:
    objects = _world()
    probe_failing = status(ready=False, running_since=-100)
    objects += shop_app(
        "front", env={"WEB_URL": "http://web:8080"}, rs_hash="fr111", pod_statuses=[probe_failing, probe_failing]
    )
    objects.append(event("Pod", "front-fr111-p0", "Unhealthy", "Readiness probe failed: upstream 502", 7, 20))
    ctx = context(objects)
    ranked = _rank(ctx, run_detectors(ctx), ref("Deployment", "front"))
    assert ranked[0].candidate.ref == ref("Deployment", "payments")
    assert ranked[0].candidate.category == Category.CRASH_LOOP
    front = next(item for item in ranked if item.candidate.ref == ref("Deployment", "front"))
    assert front.confidence < ranked[0].confidence - 20
    assert any("downstream of Deployment shop/payments" in reason for reason in front.reasons)


def test_the_changed_object_becomes_the_root_cause() -> None:
    journal = journal_of()
    change(journal, config_map("payments-config", {"t": "1"}), config_map("payments-config", {"t": "2"}), 4)
    volumes = [{"name": "cfg", "configMap": {"name": "payments-config"}}]
    objects = _world(shop_app("payments", pod_statuses=[crashing_status(6), crashing_status(6)], volumes=volumes))
    objects.append(config_map("payments-config", {"t": "2"}))
    ctx = context(objects, journal)
    ranked = _rank(ctx, run_detectors(ctx), ref("Deployment", "web"))
    assert ranked[0].candidate.category == Category.CONFIG_CHANGE
    assert ranked[0].candidate.ref == ref("ConfigMap", "payments-config")
    assert all(item.candidate.category != Category.CRASH_LOOP for item in ranked)


def test_candidates_off_the_target_path_are_set_aside() -> None:
    ctx = context(_world())
    batch = _candidate(ref("Deployment", "batch"))
    ranked, elsewhere = rank(
        ctx, [batch], collect_symptoms(ctx), build_scope(ctx, ref("Deployment", "web")), DataGaps()
    )
    assert ranked == []
    assert elsewhere == [batch]


def test_duplicates_keep_the_strongest() -> None:
    ctx = context(_world())
    payments = ref("Deployment", "payments")
    weak, strong = _candidate(payments, base_score=20.0), _candidate(payments, base_score=50.0)
    (ranked,) = _rank(ctx, [weak, strong], None)
    assert ranked.candidate is strong


def test_no_symptoms_caps_everything_low() -> None:
    ctx = context([*shop_app("web")])
    journal_change = _change(ref("Deployment", "web"), 5)
    candidate = _candidate(
        ref("Deployment", "web"), base_score=60.0, change=journal_change, category=Category.BAD_ROLLOUT
    )
    (ranked,) = _rank(ctx, [candidate], ref("Deployment", "web"))
    assert ranked.confidence <= 25


def _config_edit(name: str, minute: float, explains: set[ObjectRef]) -> Candidate:
    """A change tied to the symptoms by time alone: its only failure evidence is a metric onset after it."""
    config = ref("ConfigMap", name)
    return _candidate(
        config,
        category=Category.CONFIG_CHANGE,
        change=_change(config, minute),
        onset_time=at(minute),
        evidence=[Evidence(EvidenceSource.PROMETHEUS, at(6), ref("Service", "payments"), "error rate up x40")],
        explains=explains,
    )


def test_a_later_change_closer_before_the_symptoms_explains_away_an_earlier_one() -> None:
    ctx = context(_world())
    payments = ref("Deployment", "payments")
    earlier = _config_edit("flags", 1, {payments})
    later = _config_edit("pool", 5, {payments})
    ranked = {item.candidate.ref.name: item for item in _rank(ctx, [earlier, later], ref("Deployment", "web"))}
    assert any("later change" in item.detail for item in ranked["flags"].counter_evidence)
    assert not ranked["pool"].counter_evidence
    # Alone, the earlier edit scores as the later one does; beside it, it loses its timing credit and more.
    (alone,) = _rank(ctx, [_config_edit("flags", 1, {payments})], ref("Deployment", "web"))
    assert alone.confidence == ranked["pool"].confidence
    assert ranked["flags"].confidence == alone.confidence - EXPLAINED_AWAY_PENALTY


def test_a_change_whose_own_pods_fail_is_not_explained_away_by_a_later_one() -> None:
    ctx = context(_world())
    payments = ref("Deployment", "payments")
    rollout = _candidate(payments, category=Category.BAD_ROLLOUT, base_score=60.0, change=_change(payments, 1))
    later = _config_edit("pool", 5, {payments})
    later.symptom_onset = at(7)  # after the rollout's failures: not upstream of them
    ranked = {item.candidate.ref.name: item for item in _rank(ctx, [rollout, later], ref("Deployment", "web"))}
    assert ranked["payments"].confidence >= 70
    assert not any("later change" in reason for reason in ranked["payments"].reasons)


def test_an_application_error_by_exclusion_stays_below_the_identification_threshold() -> None:
    ctx = context(_world())
    checkout = ref("Deployment", "checkout")
    errors = _candidate(
        checkout,
        category=Category.APPLICATION_ERROR,
        base_score=90.0,
        evidence=[Evidence(EvidenceSource.PROMETHEUS, at(6), checkout, "error rate up")],
    )
    (ranked,) = _rank(ctx, [errors], ref("Deployment", "web"))
    assert ranked.confidence == BY_EXCLUSION_CAP < 60
    crash = _candidate(checkout, category=Category.CRASH_LOOP, base_score=90.0)
    (ranked,) = _rank(ctx, [crash], ref("Deployment", "web"))
    assert ranked.confidence == UNGATED_CAP


def test_an_indirect_candidate_is_never_identified_even_with_a_change() -> None:
    ctx = context(_world())
    payments = ref("Deployment", "payments")
    restart = _candidate(
        payments, category=Category.BAD_ROLLOUT, base_score=60.0, change=_change(payments, 5), onset_time=at(5)
    )
    (direct,) = _rank(ctx, [restart], ref("Deployment", "web"))
    assert direct.confidence >= 70
    restart.indirect = True
    (indirect,) = _rank(ctx, [restart], ref("Deployment", "web"))
    assert indirect.confidence == BY_EXCLUSION_CAP
