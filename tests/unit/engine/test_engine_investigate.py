from __future__ import annotations

from typing import Any

from engine_builders import (
    Obj,
    at,
    change,
    container,
    context,
    crashing_status,
    deployment,
    endpoint_slice,
    event,
    journal_of,
    network_policy,
    node,
    pod,
    ref,
    replica_set,
    service,
    shop_app,
    signal,
    status,
)

from inquest.categories import Category, ConcludedReason, HypothesisVerdict
from inquest.engine import investigate
from inquest.engine.context import DataSources, EvidenceContext
from inquest.engine.hints import clock_times, parse_hints, question_target
from inquest.engine.journal import ChangeJournal
from inquest.engine.refs import ObjectRef
from inquest.engine.report import MAX_EVIDENCE, Report
from inquest.engine.snapshot import ClusterSnapshot
from inquest.engine.unknowns import data_gaps

PAYMENTS_IMAGE = [container(image="payments:1.9", ports=[("http", 8080)])]


def _front() -> list[Obj]:
    return [
        *shop_app("web", env={"CHECKOUT_URL": "http://checkout:8080"}, rs_hash="wb111"),
        *shop_app("checkout", env={"PAYMENTS_URL": "http://payments:8080"}, rs_hash="ck111"),
        node("node-a"),
    ]


def _payments(pod_status: Obj, created: float = 5.2) -> list[Obj]:
    objects: list[Obj] = [
        deployment("payments", containers=PAYMENTS_IMAGE, revision="4", ready=0),
        replica_set("payments-new11", "payments", "4", 5, PAYMENTS_IMAGE),
        service("payments"),
        endpoint_slice("payments", [], ["payments-new11-p0", "payments-new11-p1"]),
    ]
    for index in range(2):
        objects.append(
            pod(
                f"payments-new11-p{index}",
                labels={"app": "payments", "pod-template-hash": "new11"},
                owner=("ReplicaSet", "payments-new11"),
                statuses=[pod_status],
                created=created,
                containers=PAYMENTS_IMAGE,
            )
        )
    return objects


def _rolled_out() -> ChangeJournal:
    journal = journal_of()
    old = deployment("payments", containers=[container(image="payments:1.8", ports=[("http", 8080)])], revision="3")
    change(journal, old, deployment("payments", containers=PAYMENTS_IMAGE, revision="4"), 5)
    return journal


def _ask(
    ctx: EvidenceContext,
    target: str | None = "web",
    hypotheses: tuple[str, ...] = (),
    context_lines: tuple[str, ...] = (),
) -> Report:
    return investigate(
        ctx, ref("Deployment", target) if target else None, "why is it failing?", list(hypotheses), list(context_lines)
    )


def test_bad_rollout_end_to_end() -> None:
    ctx = context(
        [*_front(), *_payments(crashing_status(7))],
        _rolled_out(),
        metrics=[signal(ref("Service", "checkout"), "error_rate", 7.5)],
    )
    report = _ask(ctx, hypotheses=("the 10:05 deploy", "node-a", "the database"))
    assert report.verdict == ConcludedReason.ROOT_CAUSE_IDENTIFIED
    top = report.findings[0]
    assert (top.rank, top.category, top.ref) == (1, Category.BAD_ROLLOUT, ref("Deployment", "payments"))
    assert top.confidence >= 70
    assert top.path[0] == "Deployment/shop/web"
    assert top.path[-1] == "Deployment/shop/payments"
    assert "Service/shop/payments" in top.path
    assert all(finding.category != Category.CRASH_LOOP for finding in report.findings)
    assert "payments:1.9" in report.summary
    assert "roll it back" in report.summary
    verdicts = [result.verdict for result in report.hypotheses]
    assert verdicts == [HypothesisVerdict.SUPPORTED, HypothesisVerdict.RULED_OUT, HypothesisVerdict.UNKNOWN]
    assert report.target == ref("Deployment", "web")


def _lockdown(sources: DataSources) -> Report:
    """A deny-all NetworkPolicy in front of checkout, created at 10:05; nothing that Kubernetes shows fails."""
    journal = journal_of()
    policy = network_policy("lockdown", {"app": "checkout"})
    change(journal, None, policy, 5)
    return _ask(context([*_front(), policy], journal, sources=sources))


def test_a_risky_change_without_request_metrics_for_what_it_touches_is_not_no_fault() -> None:
    no_prometheus = DataSources()
    no_request_series = DataSources(
        prometheus_configured=True, prometheus_reachable=True, namespaces_without_request_metrics=("shop",)
    )
    checkout_uncovered = DataSources(
        prometheus_configured=True,
        prometheus_reachable=True,
        services_without_request_metrics=(ref("Service", "checkout"),),
    )
    for sources in (no_prometheus, no_request_series, checkout_uncovered):
        report = _lockdown(sources)
        assert report.verdict == ConcludedReason.INCONCLUSIVE, (sources, report.summary)
        assert report.findings[0].ref == ref("NetworkPolicy", "lockdown")
        assert any("its effect could not be confirmed" in note for note in report.unknowns)
    # With request series for the Services it touches and none of them moving, the change broke nothing visible.
    covered = _lockdown(DataSources(prometheus_configured=True, prometheus_reachable=True))
    assert covered.verdict == ConcludedReason.NO_FAULT_FOUND, covered.summary


def test_a_healthy_spec_update_is_only_cleared_by_request_metrics() -> None:
    """An env update of checkout at 10:05 whose pods stay Ready: harmless for Kubernetes, but a wrong address or a
    switched-off cache shows only in requests. Without request metrics, "no fault" would be a guess."""

    def ask(sources: DataSources) -> Report:
        journal = journal_of()
        before = deployment("checkout", containers=[container(env={"CACHE": "on"})])
        after = deployment("checkout", containers=[container(env={"CACHE": "off"})])
        change(journal, before, after, 5)
        return _ask(context(_front(), journal, sources=sources))

    blind = ask(DataSources())
    assert blind.verdict == ConcludedReason.INCONCLUSIVE, blind.summary
    assert any("its effect could not be confirmed" in note for note in blind.unknowns)
    covered = ask(DataSources(prometheus_configured=True, prometheus_reachable=True))
    assert covered.verdict == ConcludedReason.NO_FAULT_FOUND, covered.summary


def test_findings_are_bounded() -> None:
    objects = list(_front())
    for index in range(14):
        objects += shop_app(f"svc{index}", pods=1, pod_statuses=[crashing_status(6)], rs_hash=f"h{index:04d}")
    report = investigate(context(objects), None, "what is broken?", [], [])
    assert len(report.findings) == 10
    assert all(len(finding.evidence) <= MAX_EVIDENCE for finding in report.findings)
    assert [finding.rank for finding in report.findings] == list(range(1, 11))


def test_noise_outside_the_window_is_no_fault() -> None:
    journal = journal_of()
    change(journal, deployment("web", replicas=2), deployment("web", replicas=3), -300)
    objects = [
        *shop_app("web", pod_statuses=[status(restarts=6, last=("Error", 1, -4320)), status()]),
        event("Pod", "web-abc12-p0", "BackOff", "Back-off restarting failed container app", -4330, -4320, count=5),
        node("node-a"),
    ]
    report = _ask(context(objects, journal), hypotheses=("node-a",))
    assert report.verdict == ConcludedReason.NO_FAULT_FOUND
    assert report.findings == ()
    assert "No abnormal state" in report.summary
    assert report.hypotheses[0].verdict == HypothesisVerdict.RULED_OUT


def test_missing_data_makes_a_crash_inconclusive_and_says_why() -> None:
    journal = ChangeJournal(started_at=at(10))
    objects = [*shop_app("web", pod_statuses=[crashing_status(8), crashing_status(8)])]
    sources = DataSources(events_available=False, unavailable_kinds=("NetworkPolicy",))
    report = _ask(context(objects, journal, sources=sources))
    assert report.verdict == ConcludedReason.INCONCLUSIVE
    assert report.findings[0].category == Category.CRASH_LOOP
    assert report.findings[0].confidence < 60
    text = "\n".join(report.unknowns)
    assert "Prometheus is not configured" in text
    assert "Events could not be read" in text
    assert "NetworkPolicy objects could not be read" in text
    assert "only covers since 2024-05-01T10:10:00Z" in text


def test_unknowns_for_unreachable_prometheus_missing_request_metrics_and_journal_gap() -> None:
    journal = journal_of()
    journal.seed([], gap_start=at(-20), gap_end=at(3))
    sources = DataSources(
        prometheus_configured=True,
        prometheus_reachable=False,
        services_without_request_metrics=(ref("Service", "web"),),
        notes=("Ingress controller metrics are not scraped.",),
    )
    report = _ask(context(shop_app("web"), journal, sources=sources))
    text = "\n".join(report.unknowns)
    assert "Prometheus was unreachable" in text
    assert "No request metrics for Service shop/web" in text
    assert "gap from 2024-05-01T09:40:00Z to 2024-05-01T10:03:00Z" in text
    assert "Ingress controller metrics are not scraped." in text


def test_a_prometheus_without_request_series_for_the_namespace_counts_as_missing_metrics() -> None:
    def missing(sources: DataSources) -> bool:
        return data_gaps(context(shop_app("web"), sources=sources))[0].metrics_missing

    reachable = {"prometheus_configured": True, "prometheus_reachable": True}
    assert missing(DataSources())
    assert missing(DataSources(**reachable, namespaces_without_request_metrics=("shop",)))
    assert not missing(DataSources(**reachable))


def test_failed_or_partial_metric_queries_lower_the_confidence_of_what_they_support() -> None:
    whole = DataSources(prometheus_configured=True, prometheus_reachable=True)
    incomplete = DataSources(prometheus_configured=True, prometheus_reachable=True, metrics_incomplete=True)
    assert data_gaps(context(shop_app("web"), sources=incomplete))[0].metrics_missing
    assert not data_gaps(context(shop_app("web"), sources=whole))[0].metrics_missing

    def top(sources: DataSources) -> int:
        objects = [*_front(), *_payments(status(ready=True))]
        metrics = [signal(ref("Service", "payments"), "error_rate", 6.0, magnitude=30.0)]
        report = _ask(context(objects, _rolled_out(), metrics=metrics, sources=sources), target="payments")
        assert report.findings[0].category == Category.BAD_ROLLOUT, report
        return report.findings[0].confidence

    assert top(incomplete) < top(whole)


def test_expired_events_are_an_unknown_for_old_windows() -> None:
    report = _ask(context(shop_app("web"), start=0, end=30, now=240))
    assert any("Events before" in line for line in report.unknowns)


def test_user_can_exclude_a_draining_node() -> None:
    objects = [
        *shop_app("web", node_name="node-c", pod_statuses=[status(ready=False), status(ready=False)]),
        node("node-c", ready=False, ready_since=6),
    ]
    excluded = _ask(context(objects), context_lines=("ignore node-c, it is being drained",))
    assert all(finding.ref != ref("Node", "node-c") for finding in excluded.findings)
    assert any("Excluded as the user asked: Node node-c" in line for line in excluded.unknowns)
    plain = _ask(context(objects))
    assert plain.findings[0].ref == ref("Node", "node-c")


def test_user_stated_change_fills_a_journal_gap() -> None:
    journal = ChangeJournal(started_at=at(-600))
    journal.seed([], gap_start=at(-10), gap_end=at(20))
    objects = [*_front(), *_payments(crashing_status(7))]
    report = _ask(context(objects, journal), context_lines=("we deployed payments 1.9 at 10:05",))
    top = report.findings[0]
    assert (top.category, top.ref) == (Category.BAD_ROLLOUT, ref("Deployment", "payments"))
    assert "stated by the user" in top.summary
    assert any("taken from the user's context, unverified" in line for line in report.unknowns)
    assert any("UTC assumed" in line for line in report.unknowns)


def test_user_stated_change_boosts_the_matching_record() -> None:
    objects = [*_front(), *_payments(crashing_status(7))]
    plain = _ask(context(objects, _rolled_out()))
    hinted = _ask(context(objects, _rolled_out()), context_lines=("we deployed payments 1.9 at 10:05",))
    assert hinted.findings[0].confidence > plain.findings[0].confidence
    assert not any("unverified" in line for line in hinted.unknowns)


def test_a_sentence_naming_two_objects_finds_the_one_that_changed() -> None:
    objects = [*_front(), *_payments(crashing_status(7))]
    report = investigate(
        context(objects, _rolled_out()),
        ref("Deployment", "checkout"),
        "why is checkout failing since the payments deploy?",
        [],
        [],
    )
    assert not any("no record" in line for line in report.unknowns), report.unknowns
    assert report.findings[0].ref == ref("Deployment", "payments")


def test_target_is_read_from_the_question() -> None:
    ctx = context([*_front(), *_payments(crashing_status(7))], _rolled_out())
    report = investigate(ctx, None, "why is checkout failing since 10:05?", [], [])
    assert report.target == ref("Deployment", "checkout")
    assert report.findings[0].path[0] == "Deployment/shop/checkout"


def test_without_a_target_everything_is_in_scope() -> None:
    ctx = context([*_front(), *_payments(crashing_status(7))], _rolled_out())
    report = investigate(ctx, None, "what is wrong?", [], [])
    assert report.target is None
    assert report.findings[0].ref == ref("Deployment", "payments")


def test_contradictory_signals_are_named() -> None:
    ctx = context(_front(), metrics=[signal(ref("Service", "checkout"), "error_rate", 6)])
    report = _ask(ctx)
    assert report.findings[0].category == Category.APPLICATION_ERROR
    assert any("error spike while all 2 pods" in line for line in report.unknowns)


def test_abnormal_things_off_the_path_are_mentioned_not_blamed() -> None:
    objects = [*_front(), *shop_app("batch", pod_statuses=[crashing_status(6)], pods=1, rs_hash="bt111")]
    report = _ask(context(objects))
    assert report.verdict == ConcludedReason.NO_FAULT_FOUND
    assert any("not on the dependency path" in line and "batch" in line for line in report.unknowns)


def test_two_independent_causes_are_flagged_as_ambiguous() -> None:
    objects = [
        *shop_app("web", env={"A_URL": "http://alpha:8080", "B_URL": "http://beta:8080"}, rs_hash="wb111"),
        *shop_app("alpha", pods=1, pod_statuses=[crashing_status(6)], rs_hash="al111"),
        *shop_app("beta", pods=1, pod_statuses=[crashing_status(6)], rs_hash="be111"),
    ]
    report = _ask(context(objects))
    assert any("about equally likely" in line for line in report.unknowns)


def test_hypothesis_about_a_deploy_that_did_not_happen() -> None:
    ctx = context([*_front(), *_payments(crashing_status(7))], _rolled_out())
    report = _ask(ctx, hypotheses=("the 10:20 deploy",))
    assert report.hypotheses[0].verdict == HypothesisVerdict.RULED_OUT
    gap_journal = journal_of()
    gap_journal.seed([], gap_start=at(15), gap_end=at(25))
    blind = _ask(context([*_front(), *_payments(crashing_status(7))], gap_journal), hypotheses=("the 10:20 deploy",))
    assert blind.hypotheses[0].verdict == HypothesisVerdict.UNKNOWN


def test_hypothesis_about_a_deploy_after_the_failures_is_ruled_out() -> None:
    journal = journal_of()
    change(
        journal,
        deployment("web", containers=[container(image="web:1")]),
        deployment("web", containers=[container(image="web:2")]),
        20,
    )
    objects = [*_front(), *_payments(crashing_status(7))]
    report = _ask(context(objects, journal), target="checkout", hypotheses=("the 10:20 deploy",))
    assert report.hypotheses[0].verdict == HypothesisVerdict.RULED_OUT
    assert "before" in report.hypotheses[0].reason


def test_a_rollout_blamed_for_errors_that_began_before_it_is_ruled_out() -> None:
    # checkout's error rate rose at 10:06 and it was released at 10:20 (a would-be fix): the errors are credibly
    # checkout's own, which neither supports nor clears the rollout; their timing clears it.
    journal = journal_of()
    old = deployment("checkout", containers=[container(image="checkout:1", ports=[("http", 8080)])])
    change(journal, old, deployment("checkout", containers=[container(image="checkout:2", ports=[("http", 8080)])]), 20)
    ctx = context(_front(), journal, metrics=[signal(ref("Service", "checkout"), "error_rate", 6)])
    report = _ask(ctx, target="checkout", hypotheses=("the rollout of checkout", "checkout errors"))
    assert report.findings[0].category == Category.APPLICATION_ERROR
    rollout, errors = report.hypotheses
    assert rollout.verdict == HypothesisVerdict.RULED_OUT, rollout
    assert rollout.reason == "symptoms began at 10:06:00Z, before Deployment shop/checkout changed at 10:20:00Z"
    assert errors.verdict == HypothesisVerdict.SUPPORTED, errors  # a hypothesis about the errors themselves


def test_database_hypothesis_finds_db_like_objects() -> None:
    objects = [*_front(), *shop_app("redis", pods=1, rs_hash="rd111"), *_payments(crashing_status(7))]
    report = _ask(context(objects, _rolled_out()), target="checkout", hypotheses=("the database is slow",))
    result = report.hypotheses[0]
    assert result.verdict == HypothesisVerdict.RULED_OUT
    assert "redis" in result.reason


def test_category_hypotheses_need_their_data() -> None:
    ctx = context(shop_app("web"), sources=DataSources())
    report = _ask(ctx, hypotheses=("cpu throttling", "a network policy", "a bad node"))
    assert [r.verdict for r in report.hypotheses] == [
        HypothesisVerdict.UNKNOWN,
        HypothesisVerdict.RULED_OUT,
        HypothesisVerdict.UNKNOWN,
    ]


def test_hint_parsing() -> None:
    snapshot = ClusterSnapshot.from_objects([*_front(), deployment("payments"), node("node-c")])
    hints = parse_hints(
        "why is checkout slow?",
        ["ignore node-c, it is being drained", "we deployed payments 1.9 at 10:05", "the cache is fine"],
        snapshot,
        at(30),
    )
    assert hints.excluded == {ref("Node", "node-c")}
    assert [(c.subject, c.time) for c in hints.stated_changes] == [(ref("Deployment", "payments"), at(5))]
    assert ref("Deployment", "checkout") in hints.mentioned
    assert question_target("why is checkout slow?", snapshot) == ref("Deployment", "checkout")
    assert question_target("is web or checkout broken?", snapshot) is None


def test_clock_times_roll_back_a_day_when_in_the_future() -> None:
    assert clock_times("at 23:50", at(30)) == [("23:50", at(30).replace(hour=23, minute=50) - (at(1440) - at(0)))]
    assert clock_times("at 09:58:30 UTC", at(30))[0][1] == at(-1.5)
    assert clock_times("version 1.9 on port 8080", at(30)) == []


def test_missing_target_falls_back_to_its_namespace() -> None:
    ctx = context([*_front(), *_payments(crashing_status(7))], _rolled_out())
    report = _ask(ctx, target="ghost")
    assert any("Deployment shop/ghost was not found" in line for line in report.unknowns)
    assert report.findings[0].ref == ref("Deployment", "payments")


def test_namespace_target_covers_only_that_namespace() -> None:
    objects = [*_front(), *shop_app("other", pod_statuses=[crashing_status(6)], pods=1, rs_hash="ot111")]
    far = shop_app("far", pod_statuses=[crashing_status(6)], pods=1)
    for obj in far:
        obj["metadata"]["namespace"] = "elsewhere"
    ctx = context([*objects, *far])
    report = investigate(ctx, ObjectRef("Namespace", "", "shop"), "what is broken in shop?", [], [])
    assert {finding.ref.namespace for finding in report.findings} == {"shop"}


def test_a_journal_gap_before_every_object_was_created_is_no_unknown() -> None:
    """The watch saw the whole life of objects created after the gap: nothing about them can be missing."""

    def created_at(objects: list[dict[str, Any]], minutes: float) -> list[dict[str, Any]]:
        for item in objects:
            item["metadata"]["creationTimestamp"] = at(minutes).strftime("%Y-%m-%dT%H:%M:%SZ")
        return objects

    journal = journal_of()
    journal.seed([], gap_start=at(-20), gap_end=at(3))
    young = data_gaps(context(created_at(shop_app("web"), 5), journal))
    assert not young[0].journal_incomplete
    assert not any("gap" in line for line in young[1])
    older = data_gaps(context([*created_at(shop_app("web"), 5), *created_at(shop_app("api"), 1)], journal))
    assert older[0].journal_incomplete
    assert any("gap from" in line for line in older[1])
