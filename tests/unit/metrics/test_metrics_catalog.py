"""The catalog: default templates, planning with and without discovery, steps, escaping and overrides."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from inquest.engine.context import Signal
from inquest.metrics.catalog import (
    DEFAULT_CATALOG,
    Catalog,
    ErrorMatch,
    Kind,
    QueryTemplate,
    Scope,
    choose_step,
    plan_queries,
    rate_window,
    render_query,
)

START = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
END = START + timedelta(minutes=30)


def _balanced(query: str) -> bool:
    depth = {"(": 0, "{": 0, "[": 0}
    closing = {")": "(", "}": "{", "]": "["}
    in_string = False
    previous = ""
    for character in query:
        if character == '"' and previous != "\\":
            in_string = not in_string
        elif not in_string and character in depth:
            depth[character] += 1
        elif not in_string and character in closing:
            depth[closing[character]] -= 1
            if depth[closing[character]] < 0:
                return False
        previous = character
    return not in_string and all(count == 0 for count in depth.values())


def test_default_catalog_covers_the_common_exporters() -> None:
    metrics = {metric for template in DEFAULT_CATALOG.templates for metric in template.metrics}
    for expected in (
        "kube_pod_container_status_restarts_total",
        "kube_horizontalpodautoscaler_status_current_replicas",
        "kube_horizontalpodautoscaler_spec_max_replicas",
        "container_cpu_usage_seconds_total",
        "container_cpu_cfs_throttled_periods_total",
        "container_cpu_cfs_periods_total",
        "container_memory_working_set_bytes",
        "kube_pod_container_resource_limits",
        "kubelet_volume_stats_used_bytes",
        "node_cpu_seconds_total",
        "http_requests_total",
        "http_server_requests_seconds_count",
        "http_request_duration_seconds_sum",
        "grpc_server_handled_total",
        "istio_requests_total",
        "istio_request_duration_milliseconds_sum",
        "traces_span_metrics_calls_total",
        "calls_total",
        "coredns_dns_responses_total",
        "coredns_dns_request_duration_seconds_count",
        "kube_persistentvolumeclaim_status_phase",
        "kube_resourcequota",
    ):
        assert expected in metrics
    signals = {template.signal for template in DEFAULT_CATALOG.templates}
    assert {str(signal) for signal in Signal} <= signals | {Signal.REQUEST_RATE}


@pytest.mark.parametrize("template", DEFAULT_CATALOG.templates, ids=lambda template: template.name)
def test_every_default_template_renders_to_complete_promql(template: QueryTemplate) -> None:
    namespace = "shop" if template.scope == Scope.NAMESPACE else None
    query = render_query(template, DEFAULT_CATALOG, namespace, 120)
    assert not re.search(r"\{(ns|window|by)\}", query)
    assert _balanced(query), query
    assert "by ()" not in query
    for metric in template.metrics:
        assert metric in query
    if namespace is not None:
        assert ('"shop|"' if template.namespace_optional else '"shop"') in query


def test_requests_templates_group_by_the_status_and_object_labels() -> None:
    query = render_query(DEFAULT_CATALOG.template("http_requests"), DEFAULT_CATALOG, "shop", 120)
    by = re.search(r"sum by \(([^)]*)\)", query)
    assert by is not None
    labels = {item.strip() for item in by.group(1).split(",")}
    assert {"namespace", "pod", "service", "code", "status"} <= labels
    assert 'rate(http_requests_total{namespace="shop"}[120s])' in query


def test_istio_filters_on_the_destination_namespace_and_keeps_both_ends() -> None:
    query = render_query(DEFAULT_CATALOG.template("istio_requests"), DEFAULT_CATALOG, "shop", 60)
    assert 'istio_requests_total{destination_service_namespace="shop"}' in query
    for name in ("reporter", "source_workload", "destination_service_name", "response_code"):
        assert name in query


def test_namespace_is_escaped_in_every_planned_query() -> None:
    odd = 'we"ird\\ns'
    plan = plan_queries(DEFAULT_CATALOG, None, [odd], START, END)
    namespaced = [query for query in plan.queries if query.namespace == odd]
    assert namespaced
    for planned in namespaced:
        assert odd not in planned.query  # never raw
        if DEFAULT_CATALOG.template(planned.template).namespace_optional:
            # A regex matcher: the backslash is regex-escaped, then the pattern is string-escaped.
            assert '=~"we\\"ird\\\\\\\\ns|"' in planned.query
        else:
            assert '="we\\"ird\\\\ns"' in planned.query


def test_optional_namespace_matches_the_literal_name_or_no_label() -> None:
    query = render_query(DEFAULT_CATALOG.template("span_calls"), DEFAULT_CATALOG, "shop.v2", 60)
    assert 'k8s_namespace_name=~"shop\\\\.v2|"' in query


def test_plan_without_discovery_plans_everything_and_says_so() -> None:
    plan = plan_queries(DEFAULT_CATALOG, None, ["shop", "db"], START, END)
    assert plan.discovery_failed
    assert plan.missing == ()
    assert any("discovery failed" in note for note in plan.notes)
    current = [query for query in plan.queries if not query.previous_day]
    enabled = [template for template in DEFAULT_CATALOG.templates if template.enabled]
    namespaced = sum(1 for template in enabled if template.scope == Scope.NAMESPACE)
    clustered = sum(1 for template in enabled if template.scope == Scope.CLUSTER)
    assert len(current) == 2 * namespaced + clustered
    assert {query.namespace for query in current} == {"shop", "db", None}
    assert plan.planned_templates() == {template.name for template in enabled}


def test_previous_day_queries_shadow_seasonal_templates_only() -> None:
    plan = plan_queries(DEFAULT_CATALOG, None, ["shop"], START, END)
    previous = [query for query in plan.queries if query.previous_day]
    assert previous
    for query in previous:
        assert DEFAULT_CATALOG.template(query.template).seasonal
        assert query.end == END - timedelta(days=1)
        assert query.start == plan.range_start - timedelta(days=1)
    assert "restarts" not in {query.template for query in previous}
    no_history = DEFAULT_CATALOG.model_copy(update={"compare_previous_day": False})
    assert not any(query.previous_day for query in plan_queries(no_history, None, ["shop"], START, END).queries)


def test_plan_with_discovery_runs_what_exists_and_names_what_is_missing() -> None:
    families = {"up", "http_requests_total", "container_memory_working_set_bytes", "kube_pod_container_resource_limits"}
    plan = plan_queries(DEFAULT_CATALOG, families, ["shop"], START, END)
    assert not plan.discovery_failed
    assert plan.planned_templates() == {"targets", "http_requests", "memory_saturation"}
    missing = "\n".join(plan.missing)
    assert "no request metrics" not in missing
    assert "no latency metrics found for namespace shop (looked for http_request_duration_seconds," in missing
    assert "no CPU metrics (cAdvisor) found for namespace shop" in missing
    # Cluster-wide exporters are not "for a namespace".
    assert "no node metrics (node-exporter) found (looked for node_cpu_seconds_total" in missing
    assert "no DNS metrics (CoreDNS) found (looked for" in missing


def test_missing_request_metrics_sentence_lists_what_was_looked_for() -> None:
    plan = plan_queries(DEFAULT_CATALOG, {"up"}, ["shop", "db"], START, END)
    sentence = next(item for item in plan.missing if item.startswith("no request metrics"))
    assert sentence.startswith(
        "no request metrics found for namespaces shop and db (looked for http_requests_total, "
        "http_server_requests_seconds_count,"
    )
    assert sentence.endswith("…)")


def test_metadata_family_names_count_as_discovered() -> None:
    families = {"http_request_duration_seconds", "istio_requests"}  # /api/v1/metadata style
    plan = plan_queries(DEFAULT_CATALOG, families, ["shop"], START, END)
    assert {"http_request_latency", "http_request_duration", "istio_requests"} <= plan.planned_templates()


def test_disabled_templates_are_neither_planned_nor_missing() -> None:
    catalog = DEFAULT_CATALOG.merged({"templates": [{"name": "node_cpu", "enabled": False}]})
    plan = plan_queries(catalog, None, ["shop"], START, END)
    assert "node_cpu" not in plan.planned_templates()
    assert "node_memory" in plan.planned_templates()


@pytest.mark.parametrize(
    "window", [timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2), timedelta(hours=12), timedelta(days=3)]
)
def test_step_keeps_range_queries_between_about_100_and_300_points(window: timedelta) -> None:
    plan = plan_queries(DEFAULT_CATALOG, None, ["shop"], START, START + window)
    points = (plan.window_end - plan.range_start).total_seconds() / plan.step_seconds
    assert 100 <= points <= 300
    assert plan.step_seconds >= DEFAULT_CATALOG.min_step_seconds
    assert plan.rate_window_seconds >= 2 * plan.step_seconds
    assert plan.rate_window_seconds >= 4 * DEFAULT_CATALOG.scrape_interval_seconds
    assert f"[{int(plan.rate_window_seconds)}s]" in plan.queries[1].query


def test_lookback_is_clamped() -> None:
    short = plan_queries(DEFAULT_CATALOG, None, [], START, START + timedelta(minutes=5))
    assert short.window_start - short.range_start == timedelta(minutes=30)
    long = plan_queries(DEFAULT_CATALOG, None, [], START, START + timedelta(days=1))
    assert long.window_start - long.range_start == timedelta(hours=6)


def test_choose_step_and_rate_window() -> None:
    assert choose_step(3600, 15, 300) == 15
    assert choose_step(3600, 5, 300) == 15  # 12 s wanted: the next nice step
    assert choose_step(10 * 86400, 15, 300) == 3600
    assert rate_window(15, 30) == 120
    assert rate_window(300, 5) == 600


def test_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="must end after"):
        plan_queries(DEFAULT_CATALOG, None, ["shop"], END, START)


def test_no_namespaces_plans_cluster_templates_only() -> None:
    plan = plan_queries(DEFAULT_CATALOG, None, [], START, END)
    assert {query.namespace for query in plan.queries} == {None}


def test_merged_overrides_replace_fields_add_templates_and_settings() -> None:
    catalog = DEFAULT_CATALOG.merged(
        {
            "scrape_interval_seconds": 5,
            "namespace_label": "kubernetes_namespace",
            "templates": [
                {"name": "http_requests", "thresholds": {"floor": 0.05, "min_level": 0.1}},
                {
                    "name": "queue_depth",
                    "group": "queue metrics",
                    "signal": "queue_depth",
                    "metrics": ["rabbitmq_queue_messages"],
                    "query": "max by ({by}) (rabbitmq_queue_messages{{ns}})",
                    "subject": [{"label": "queue", "kind": "Service"}],
                },
            ],
        }
    )
    assert catalog.scrape_interval_seconds == 5
    assert catalog.template("http_requests").thresholds.floor == 0.05
    assert catalog.template("http_requests").kind == Kind.REQUESTS  # untouched fields stay
    query = render_query(catalog.template("queue_depth"), catalog, "shop", 60)
    assert query == 'max by (kubernetes_namespace, queue) (rabbitmq_queue_messages{kubernetes_namespace="shop"})'
    assert DEFAULT_CATALOG.scrape_interval_seconds == 30  # the default is not modified


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ({"name": "x", "signal": "s", "group": "g", "metrics": ["bad-name"], "query": "{ns}"}, "invalid metric name"),
        ({"name": "x", "signal": "s", "group": "g", "metrics": ["m"], "query": "m"}, "{ns} placeholder"),
        (
            {"name": "x", "signal": "s", "group": "g", "metrics": ["m"], "query": "m{{ns}}", "kind": "requests"},
            "needs `errors`",
        ),
        (
            {
                "name": "x",
                "signal": "s",
                "group": "g",
                "metrics": ["m"],
                "query": "m{{ns}}",
                "subject": [{"label": "bad label", "kind": "Pod"}],
            },
            "invalid label name",
        ),
        (
            {
                "name": "x",
                "signal": "s",
                "group": "g",
                "metrics": ["m"],
                "query": "m{{ns}}",
                "subject": [{"label": "pod", "kind": "not a kind"}],
            },
            "kind must be",
        ),
    ],
)
def test_invalid_templates_are_rejected(template: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        DEFAULT_CATALOG.merged({"templates": [template]})


def test_duplicate_template_names_are_rejected() -> None:
    template = DEFAULT_CATALOG.template("http_requests")
    with pytest.raises(ValidationError, match="duplicate template names: http_requests"):
        Catalog(templates=(template, template))


def test_error_match_reads_the_first_status_label_present() -> None:
    match = ErrorMatch(labels=("code", "status"), pattern=r"5\d\d")
    assert match.is_error({"code": "503"})
    assert not match.is_error({"code": "200", "status": "500"})
    assert match.is_error({"status": "500"})
    assert not match.is_error({"code": "5000"})
    assert not match.is_error({})


def test_catalog_round_trips_through_json() -> None:
    assert Catalog.model_validate_json(DEFAULT_CATALOG.model_dump_json()) == DEFAULT_CATALOG
