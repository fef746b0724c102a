"""From answers to signals, edges and notes: mapping, both sides of a call, gaps and contradictions."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from metrics_builders import (
    END,
    NS,
    START,
    Answers,
    app,
    at,
    curve,
    flat,
    plan,
    pod,
    shop,
    step,
)

from inquest.categories import Category
from inquest.clients.prometheus import QueryResult, Series
from inquest.engine.context import Direction, EvidenceContext, MetricSignal, Signal
from inquest.engine.detectors.network_policy import detect_network_policy
from inquest.engine.graph import EdgeType
from inquest.engine.journal import ChangeJournal
from inquest.engine.objects import project
from inquest.engine.refs import ObjectRef
from inquest.metrics.catalog import DEFAULT_CATALOG
from inquest.metrics.signals import MetricsAnalysis, QueryOutcome, build_signals

FRONTEND = ObjectRef("Deployment", NS, "frontend")
PAYMENTS = ObjectRef("Deployment", NS, "payments")
PAYMENTS_SVC = ObjectRef("Service", NS, "payments")
PAYMENT_PODS = ("payments-7d9f8c6b5-pod0", "payments-7d9f8c6b5-pod1")
NO_HISTORY = DEFAULT_CATALOG.model_copy(update={"compare_previous_day": False})


def only(analysis: MetricsAnalysis, name: str, ref: ObjectRef | None = None) -> MetricSignal:
    found = [item for item in analysis.signals if item.signal_name == name and (ref is None or item.ref == ref)]
    assert len(found) == 1, analysis.signals
    return found[0]


def names(analysis: MetricsAnalysis) -> set[tuple[str, ObjectRef]]:
    return {(item.signal_name, item.ref) for item in analysis.signals}


def http(pod_name: str, code: str, namespace: str = NS) -> dict[str, str]:
    return {"namespace": namespace, "pod": pod_name, "code": code}


def failing_payments(answers: Answers) -> Answers:
    """Each payments pod: 10 req/s of 200s throughout, 500s from minute 10 at 5 req/s."""
    planned = answers.plan
    for name in PAYMENT_PODS:
        answers.add("http_requests", [(http(name, "200"), curve(planned, flat(10)))])
        answers.add("http_requests", [(http(name, "500"), [p for p in curve(planned, flat(5)) if p[0] >= at(10)])])
    return answers


def analyse(answers: Answers, *extra: dict[str, object], ready: bool = True) -> MetricsAnalysis:
    return build_signals(answers.plan, answers, shop(*extra, ready=ready))


# Mapping series to objects.


def test_pod_series_map_to_their_deployment_with_an_error_ratio() -> None:
    analysis = analyse(failing_payments(Answers(plan(NO_HISTORY))))
    signal = only(analysis, Signal.ERROR_RATE)
    assert signal.ref == PAYMENTS
    assert signal.direction == Direction.UP
    assert abs(signal.onset_time - (START + timedelta(minutes=10))) <= timedelta(seconds=15)
    assert signal.magnitude > 30  # 0% -> 33%, divided by the 1% floor
    assert signal.detail == "error ratio rose from 0.0% to 33% (http_requests_total)"
    assert 'http_requests_total{namespace="shop"}' in signal.query
    # Traffic grew by the error share: x1.5 is a request-rate change too.
    assert only(analysis, Signal.REQUEST_RATE).ref == PAYMENTS


def test_ready_pods_with_a_high_error_ratio_are_named_as_a_contradiction() -> None:
    analysis = analyse(failing_payments(Answers(plan(NO_HISTORY))))
    note = next(note for note in analysis.notes if "Ready" in note)
    assert note.startswith("Deployment shop/payments: the error ratio rose")
    assert "all 2 of its pods are Ready" in note


def test_no_contradiction_when_pods_are_not_ready() -> None:
    analysis = analyse(failing_payments(Answers(plan(NO_HISTORY))), ready=False)
    assert not any("are Ready" in note for note in analysis.notes)


def test_series_of_other_namespaces_are_ignored() -> None:
    answers = Answers(plan(NO_HISTORY))
    answers.add("http_requests", [(http("payments-7d9f8c6b5-pod0", "500", "other"), curve(answers.plan, step(0, 5)))])
    assert analyse(answers).signals == ()


def test_service_and_deployment_labels_map_to_those_objects() -> None:
    answers = Answers(plan(NO_HISTORY))
    answers.add(
        "http_requests",
        [
            ({"namespace": NS, "service": "catalog", "code": "200"}, curve(answers.plan, step(10, 40))),
            ({"namespace": NS, "deployment": "frontend", "code": "200"}, curve(answers.plan, step(10, 40))),
        ],
    )
    analysis = analyse(answers)
    assert names(analysis) == {
        (Signal.REQUEST_RATE, ObjectRef("Service", NS, "catalog")),
        (Signal.REQUEST_RATE, FRONTEND),
    }


def test_legacy_label_names_are_aliased() -> None:
    answers = Answers(plan(NO_HISTORY))
    answers.add(
        "http_requests",
        [
            (
                {"kubernetes_namespace": NS, "kubernetes_pod_name": PAYMENT_PODS[0], "code": "200"},
                curve(answers.plan, step(10, 40)),
            )
        ],
    )
    assert only(analyse(answers), Signal.REQUEST_RATE).ref == PAYMENTS


def test_memory_rising_towards_the_limit_is_memory_saturation() -> None:
    answers = Answers(plan(NO_HISTORY))
    growth = curve(answers.plan, lambda minute: 0.45 if minute < 5 else min(0.45 + (minute - 5) * 0.03, 0.97))
    answers.add("memory_saturation", [({"namespace": NS, "pod": PAYMENT_PODS[0], "container": "app"}, growth)])
    signal = only(analyse(answers), Signal.MEMORY_SATURATION)
    assert signal.ref == PAYMENTS
    assert abs(signal.onset_time - (START + timedelta(minutes=5))) <= timedelta(minutes=1)
    assert signal.detail == (
        "working set against its memory limit rose from 45% to 97% (container_memory_working_set_bytes, container app)"
    )


def test_memory_growth_far_from_the_limit_is_not_saturation() -> None:
    answers = Answers(plan(NO_HISTORY))
    growth = curve(answers.plan, step(0.2, 0.5))
    answers.add("memory_saturation", [({"namespace": NS, "pod": PAYMENT_PODS[0], "container": "app"}, growth)])
    assert analyse(answers).signals == ()


def test_cpu_throttling_from_zero() -> None:
    answers = Answers(plan(NO_HISTORY))
    answers.add(
        "cpu_throttling",
        [({"namespace": NS, "pod": PAYMENT_PODS[1], "container": "app"}, curve(answers.plan, step(0, 0.6)))],
    )
    signal = only(analyse(answers), Signal.CPU_THROTTLING)
    assert signal.ref == PAYMENTS
    assert signal.magnitude == 30  # 60% over the 2% floor


def test_node_exporter_instance_maps_to_the_node() -> None:
    answers = Answers(plan(NO_HISTORY))
    answers.add(
        "node_cpu",
        [
            ({"instance": "node-a:9100"}, curve(answers.plan, step(0.3, 0.97))),
            ({"instance": "10.0.0.9:9100"}, curve(answers.plan, step(0.3, 0.97))),  # not a known node
        ],
        namespace=None,
    )
    assert names(analyse(answers)) == {(Signal.CPU_SATURATION, ObjectRef("Node", "", "node-a"))}


def test_coredns_servfail_is_a_network_error_on_coredns() -> None:
    answers = Answers(plan(NO_HISTORY))
    planned = answers.plan
    dns_pod = "coredns-5d78c9869d-abcde"
    answers.add(
        "coredns_responses",
        [
            ({"namespace": "kube-system", "pod": dns_pod, "rcode": "NOERROR"}, curve(planned, flat(100))),
            ({"namespace": "kube-system", "pod": dns_pod, "rcode": "SERVFAIL"}, curve(planned, step(0, 30))),
        ],
        namespace=None,
    )
    signal = only(analyse(answers), Signal.NETWORK_ERRORS)
    assert signal.ref == ObjectRef("Deployment", "kube-system", "coredns")  # guessed from the pod name


# Both sides of a call.


def istio(reporter: str, code: str, source: str = "frontend", destination: str = "payments") -> dict[str, str]:
    return {
        "reporter": reporter,
        "source_workload": source,
        "source_workload_namespace": NS,
        "destination_service_name": destination,
        "destination_service_namespace": NS,
        "destination_workload": destination,
        "destination_workload_namespace": NS,
        "response_code": code,
    }


def test_istio_calls_become_metric_edges_into_the_engine_graph() -> None:
    answers = Answers(plan(NO_HISTORY))
    answers.add("istio_requests", [(istio("source", "200"), curve(answers.plan, flat(20)))])
    answers.add("istio_requests", [(istio("source", "200", "ghost", "nowhere"), curve(answers.plan, flat(0)))])
    analysis = analyse(answers)
    assert [(edge.caller, edge.callee, edge.source_label) for edge in analysis.edges] == [
        (FRONTEND, PAYMENTS_SVC, "istio_requests_total")
    ]
    assert analysis.edges[0].detail == "calls seen in istio_requests_total (client side)"
    objects = [item for item in map(project, [*app("frontend"), *app("payments")]) if item is not None]
    ctx = EvidenceContext.build(objects, ChangeJournal(), START, END, metric_edges=analysis.edges)
    assert any(edge.type == EdgeType.METRIC and edge.target == PAYMENTS_SVC for edge in ctx.graph.edges_from(FRONTEND))


def test_callers_failing_while_the_callee_gets_no_traffic_points_at_wiring() -> None:
    answers = Answers(plan(NO_HISTORY))
    planned = answers.plan
    answers.add(
        "istio_requests",
        [
            (istio("source", "200"), curve(planned, step(20, 0))),
            (istio("source", "503"), curve(planned, step(0, 20))),
            (istio("destination", "200"), curve(planned, step(20, 0))),
        ],
    )
    analysis = analyse(answers)
    signal = only(analysis, Signal.NETWORK_ERRORS)
    assert signal.ref == PAYMENTS_SVC
    assert "payments receives no requests" in signal.detail
    assert (Signal.ERROR_RATE, FRONTEND) not in names(analysis)
    assert not any(item.signal_name == Signal.ERROR_RATE for item in analysis.signals)
    drop = only(analysis, Signal.REQUEST_RATE, PAYMENTS_SVC)
    assert drop.direction == Direction.DOWN
    note = next(note for note in analysis.notes if "traffic is not reaching it" in note)
    assert "selector and targetPort" in note
    assert "NetworkPolicies" in note


def test_callers_failing_as_the_callees_traffic_falls_points_at_wiring_before_it_reaches_zero() -> None:
    # Minutes after a cut-off, rate windows still count the callee's last requests: its traffic is falling, not
    # yet zero. That it lost about as many requests as its callers see failing says they never reached it.
    answers = Answers(plan(NO_HISTORY))
    planned = answers.plan
    cut = 28.5  # minutes after START; the window ends at 30

    def failed(minute: float) -> float:
        return 0.0 if minute < cut else min(20.0, 20.0 * (minute - cut) / 2)  # a 2-minute rate window

    answers.add(
        "istio_requests",
        [
            (istio("source", "200"), curve(planned, lambda minute: 20 - failed(minute))),
            (istio("source", "503"), curve(planned, failed)),
            (istio("destination", "200"), curve(planned, lambda minute: 20 - failed(minute))),
        ],
    )
    analysis = analyse(answers)
    signal = only(analysis, Signal.NETWORK_ERRORS)
    assert signal.ref == PAYMENTS_SVC
    assert "payments receives fewer requests" in signal.detail
    note = next(note for note in analysis.notes if "traffic is not reaching it" in note)
    assert "receives fewer requests (20/s before" in note
    assert not any("fail between them" in note for note in analysis.notes)


def test_callers_failing_while_the_callee_reports_no_errors_fail_in_between() -> None:
    answers = Answers(plan(NO_HISTORY))
    planned = answers.plan
    answers.add(
        "istio_requests",
        [
            (istio("source", "200"), curve(planned, flat(20))),
            (istio("source", "0"), curve(planned, step(0, 10))),
            (istio("destination", "200"), curve(planned, flat(20))),
        ],
    )
    analysis = analyse(answers)
    signal = only(analysis, Signal.NETWORK_ERRORS)
    assert signal.ref == PAYMENTS_SVC
    assert any("fail between them" in note for note in analysis.notes)


def test_errors_seen_on_both_sides_are_the_callees_own() -> None:
    answers = Answers(plan(NO_HISTORY))
    planned = answers.plan
    answers.add(
        "istio_requests",
        [
            (istio("source", "200"), curve(planned, flat(20))),
            (istio("source", "500"), curve(planned, step(0, 10))),
            (istio("destination", "200"), curve(planned, flat(20))),
            (istio("destination", "500"), curve(planned, step(0, 10))),
        ],
    )
    analysis = analyse(answers)
    assert {name for name, _ in names(analysis)} == {Signal.ERROR_RATE, Signal.REQUEST_RATE}
    assert only(analysis, Signal.ERROR_RATE).ref == PAYMENTS_SVC


def test_caller_only_errors_without_server_metrics_are_the_callees_error_rate() -> None:
    answers = Answers(plan(NO_HISTORY))
    planned = answers.plan
    answers.add(
        "istio_requests",
        [(istio("source", "200"), curve(planned, flat(20))), (istio("source", "500"), curve(planned, step(0, 10)))],
    )
    signal = only(analyse(answers), Signal.ERROR_RATE)
    assert signal.ref == PAYMENTS_SVC
    assert signal.detail.endswith("(istio_requests_total, as seen by its callers)")


def _istio_latency(answers: Answers, client: float, server: float) -> Answers:
    planned = answers.plan
    return answers.add(
        "istio_latency",
        [
            ({**istio("source", ""), "response_code": ""}, curve(planned, step(40, client))),
            ({**istio("destination", ""), "response_code": ""}, curve(planned, step(35, server))),
        ],
    )


def test_caller_latency_rising_with_flat_server_latency_is_network_latency() -> None:
    analysis = analyse(_istio_latency(Answers(plan(NO_HISTORY)), client=400, server=35))
    signal = only(analysis, Signal.NETWORK_LATENCY)
    assert signal.ref == PAYMENTS_SVC
    assert Signal.LATENCY not in {name for name, _ in names(analysis)}
    assert any("see its latency rise from 40 ms to 400 ms" in note for note in analysis.notes)


def test_latency_rising_on_both_sides_is_the_callees_latency() -> None:
    analysis = analyse(_istio_latency(Answers(plan(NO_HISTORY)), client=400, server=380))
    assert names(analysis) == {(Signal.LATENCY, PAYMENTS_SVC)}
    assert only(analysis, Signal.LATENCY).detail.endswith("(istio_request_duration_milliseconds_sum, server side)")


def test_span_metrics_give_edges_and_server_errors_without_namespace_labels() -> None:
    answers = Answers(plan(NO_HISTORY))
    planned = answers.plan
    client = {
        "service_name": "frontend",
        "span_kind": "SPAN_KIND_CLIENT",
        "peer_service": "payments",
        "status_code": "STATUS_CODE_UNSET",
    }
    external = {**client, "peer_service": "api.stripe.com:443"}
    server = {"service_name": "payments", "span_kind": "SPAN_KIND_SERVER", "status_code": "STATUS_CODE_UNSET"}
    answers.add(
        "span_calls",
        [
            (client, curve(planned, flat(20))),
            (external, curve(planned, flat(5))),
            (server, curve(planned, flat(20))),
            ({**server, "status_code": "STATUS_CODE_ERROR"}, curve(planned, step(0, 8))),
            ({**server, "service_name": "elsewhere"}, curve(planned, step(1, 50))),  # not in this namespace
            ({**server, "span_kind": "SPAN_KIND_INTERNAL"}, curve(planned, step(1, 50))),
        ],
    )
    analysis = analyse(answers)
    assert [(edge.caller, edge.callee) for edge in analysis.edges] == [(FRONTEND, PAYMENTS_SVC)]
    assert names(analysis) == {(Signal.ERROR_RATE, PAYMENTS)}


def test_span_peer_given_as_cluster_dns_name() -> None:
    answers = Answers(plan(NO_HISTORY))
    client = {
        "service_name": "frontend",
        "span_kind": "SPAN_KIND_CLIENT",
        "server_address": "payments.shop.svc.cluster.local:8080",
    }
    answers.add("span_calls", [(client, curve(answers.plan, flat(20)))])
    assert [(edge.caller, edge.callee) for edge in analyse(answers).edges] == [(FRONTEND, PAYMENTS_SVC)]


# Daily patterns.


def test_a_daily_traffic_peak_seen_yesterday_is_not_a_signal() -> None:
    answers = Answers(plan())
    series = {"namespace": NS, "pod": PAYMENT_PODS[0], "code": "200"}
    answers.add("http_requests", [(series, curve(answers.plan, step(10, 40)))])
    assert only(analyse(answers), Signal.REQUEST_RATE).direction == Direction.UP
    answers.add("http_requests", [(series, curve(answers.plan, step(10, 40), previous=True))], previous=True)
    assert analyse(answers).signals == ()


# Gaps: never read as health.


def test_targets_down_are_unknowns_not_signals() -> None:
    answers = Answers(plan(NO_HISTORY))
    target = {"namespace": NS, "pod": PAYMENT_PODS[0], "job": "payments", "instance": "10.0.0.5:8080"}
    answers.add("targets", [(target, curve(answers.plan, lambda minute: 0.0 if 12 <= minute < 20 else 1.0))])
    analysis = analyse(answers)
    assert analysis.signals == ()
    assert (
        "Prometheus could not scrape payments of Deployment shop/payments between 10:12:00Z and 10:19:45Z (up == 0): "
        "its metrics for that time are unknown, not healthy."
    ) in analysis.notes


def test_series_that_stop_while_their_pod_exists_are_unknown() -> None:
    answers = Answers(plan(NO_HISTORY))
    samples = [point for point in curve(answers.plan, flat(10)) if point[0] < at(15)]
    answers.add("http_requests", [(http(PAYMENT_PODS[1], "200"), samples)])
    answers.add("http_requests", [(http(PAYMENT_PODS[0], "200"), curve(answers.plan, flat(10)))])
    note = next(note for note in analyse(answers).notes if note.startswith("No metrics from pod(s)"))
    assert note.startswith(f"No metrics from pod(s) {PAYMENT_PODS[1]} of Deployment shop/payments since 10:14:45Z")


def test_finished_pods_stopping_is_not_a_gap() -> None:
    answers = Answers(plan(NO_HISTORY))
    done = pod("report-7d9f8c6b5-abcde", {"app": "report"}, "report-7d9f8c6b5", phase="Succeeded")
    samples = [point for point in curve(answers.plan, flat(10)) if point[0] < at(15)]
    answers.add("http_requests", [(http("report-7d9f8c6b5-abcde", "200"), samples)])
    assert not any(note.startswith("No metrics from") for note in analyse(answers, done).notes)


def test_metrics_of_pods_that_no_longer_exist_are_noted_and_still_mapped() -> None:
    answers = Answers(plan(NO_HISTORY))
    gone = "payments-5f6d7c8b9-x2x9z"  # a replaced ReplicaSet's pod
    answers.add("http_requests", [(http(gone, "200"), curve(answers.plan, flat(10)))])
    answers.add("http_requests", [(http(gone, "500"), curve(answers.plan, step(0, 10)))])
    analysis = analyse(answers)
    assert only(analysis, Signal.ERROR_RATE).ref == PAYMENTS
    assert any(
        note.startswith("Metrics in the window came from 1 pod(s) of Deployment shop/payments that no longer exist")
        and gone in note
        for note in analysis.notes
    )


def test_failed_and_unanswered_queries_are_notes() -> None:
    answers = Answers(plan(NO_HISTORY))
    answers[answers.query("http_requests")] = QueryOutcome(error="timeout after 10s")
    del answers[answers.query("istio_requests")]
    notes = "\n".join(analyse(answers).notes)
    assert (
        "Prometheus queries for request metrics in namespace shop failed (http_requests: timeout after 10s; " in notes
    )
    assert "istio_requests: not answered" in notes


def test_partial_answers_are_noted() -> None:
    answers = Answers(plan(NO_HISTORY))
    answers[answers.query("cpu_throttling")] = QueryOutcome(partial=True)
    assert "Prometheus returned partial data for cpu_throttling in namespace shop." in analyse(answers).notes


def test_a_partial_answer_quotes_the_servers_warning_and_counts_as_incomplete() -> None:
    answers = failing_payments(Answers(plan(NO_HISTORY)))
    warning = "store  eu-1\ndid not answer " + "x" * 300
    answers[answers.query("cpu_throttling")] = QueryOutcome(partial=True, warnings=(warning,))
    analysis = analyse(answers)
    [note] = [note for note in analysis.notes if note.startswith("Prometheus returned partial data")]
    assert note.startswith(
        "Prometheus returned partial data for cpu_throttling in namespace shop (warning: store eu-1 did"
    )
    assert len(note) < 300
    assert note.endswith("…).")
    assert analysis.incomplete_queries == 1
    assert analysis.namespaces_without_request_metrics == ()  # request metrics came back whole


def test_request_metrics_that_came_back_partial_or_failed_cannot_clear_the_namespace() -> None:
    whole = analyse(failing_payments(Answers(plan(NO_HISTORY))))
    assert (whole.incomplete_queries, whole.namespaces_without_request_metrics) == (0, ())
    partial = failing_payments(Answers(plan(NO_HISTORY)))
    planned = partial.query("http_requests")
    partial[planned] = QueryOutcome(series=partial[planned].series, partial=True, warnings=("a store timed out",))
    analysis = analyse(partial)
    assert only(analysis, Signal.ERROR_RATE).ref == PAYMENTS  # what came back is still read
    assert (analysis.incomplete_queries, analysis.namespaces_without_request_metrics) == (1, (NS,))
    failed = failing_payments(Answers(plan(NO_HISTORY)))
    failed[failed.query("istio_requests")] = QueryOutcome(error="HTTP 503: unavailable")
    analysis = analyse(failed)
    assert (analysis.incomplete_queries, analysis.namespaces_without_request_metrics) == (1, (NS,))


def test_discovery_gaps_become_notes() -> None:
    answers = Answers(plan(NO_HISTORY, families={"up"}))
    notes = analyse(answers).notes
    gaps = [note for note in notes if note.startswith("Not in Prometheus for shop, so not checked: ")]
    assert len(gaps) == 1, notes
    assert "request metrics (http_requests_total, …)" in gaps[0]
    assert "CPU metrics (cAdvisor) (container_cpu_cfs_throttled_periods_total, …)" in gaps[0]


def test_services_without_request_metrics_are_listed() -> None:
    analysis = analyse(failing_payments(Answers(plan(NO_HISTORY))))
    assert analysis.services_without_request_metrics == (
        ObjectRef("Service", NS, "catalog"),
        ObjectRef("Service", NS, "frontend"),
    )


def test_a_namespace_without_any_request_series_is_one_note_not_a_list() -> None:
    analysis = analyse(Answers(plan(NO_HISTORY)))
    assert analysis.services_without_request_metrics == ()
    assert (
        "No request metrics came back for namespace shop: error rates and traffic there are unknown, not healthy."
        in analysis.notes
    )


def test_namespaces_without_request_series_are_named_for_the_engine() -> None:
    # Whether request queries ran and came back empty, or the request families are not in Prometheus at all.
    assert analyse(Answers(plan(NO_HISTORY))).namespaces_without_request_metrics == (NS,)
    assert analyse(Answers(plan(NO_HISTORY, families={"up"}))).namespaces_without_request_metrics == (NS,)
    assert analyse(failing_payments(Answers(plan(NO_HISTORY)))).namespaces_without_request_metrics == ()


def test_nan_and_empty_answers_produce_nothing() -> None:
    answers = Answers(plan(NO_HISTORY))
    answers.add(
        "http_request_latency", [({"namespace": NS, "pod": PAYMENT_PODS[0]}, curve(answers.plan, flat(float("nan"))))]
    )
    assert analyse(answers).signals == ()


@pytest.mark.parametrize("seed", range(3))
def test_noisy_healthy_traffic_makes_no_signals(seed: int) -> None:
    rng = random.Random(seed)
    answers = Answers(plan(NO_HISTORY))
    for name in PAYMENT_PODS:
        answers.add("http_requests", [(http(name, "200"), curve(answers.plan, lambda _: 10 * (1 + rng.gauss(0, 0.1))))])
        answers.add(
            "http_requests", [(http(name, "500"), curve(answers.plan, lambda _: max(0.0, rng.gauss(0.01, 0.01))))]
        )
    assert analyse(answers).signals == ()


# End to end with the engine.


def test_network_policy_detector_uses_the_metric_edge_and_the_network_errors_signal() -> None:
    answers = Answers(plan(NO_HISTORY))
    planned = answers.plan
    answers.add(
        "istio_requests",
        [
            (istio("source", "200"), curve(planned, step(20, 0))),
            (istio("source", "503"), curve(planned, step(0, 20))),
            (istio("destination", "200"), curve(planned, step(20, 0))),
        ],
    )
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "lockdown", "namespace": NS, "uid": "uid-lockdown"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "payments"}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "admin"}}}]}],
        },
    }
    analysis = analyse(answers)
    objects = [*app("frontend"), *app("payments"), policy]
    journal = ChangeJournal(started_at=START - timedelta(days=1))
    journal.record(None, project(policy), START + timedelta(minutes=9, seconds=50))
    ctx = EvidenceContext.build(objects, journal, START, END, metrics=analysis.signals, metric_edges=analysis.edges)
    [candidate] = detect_network_policy(ctx)
    assert candidate.category == Category.NETWORK_POLICY
    assert "denies ingress from Deployment shop/frontend" in candidate.summary
    assert candidate.has_failure_evidence
    assert any("receives no requests" in item.detail for item in candidate.evidence)


def test_the_prometheus_clients_results_are_read_as_they_are() -> None:
    answers = failing_payments(Answers(plan(NO_HISTORY)))
    converted = {
        planned: QueryResult(
            query=planned.query, series=[Series(dict(labels), list(samples)) for labels, samples in outcome.series]
        )
        for planned, outcome in answers.items()
    }
    analysis = build_signals(answers.plan, converted, shop())
    assert only(analysis, Signal.ERROR_RATE).ref == PAYMENTS
