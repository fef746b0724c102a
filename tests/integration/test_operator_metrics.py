"""Root causes only metrics can show, answered by the operator from the lab's real Prometheus.

Each scenario serves its series from the lab exporter with two hours of backfilled history, so the onset
detector has a baseline before the Investigation's window (lookback 10m; the plan queries 30 minutes more before
it). A fault dated in the past (`reference` a couple of minutes ago) is all history plus live scrapes; a fault
that must come after a change made by the test (a rollout, a Service edit) is dated just after that change, and
the test waits until enough live samples past it exist: with the plan's 15 s step and 120 s rate window, a
sustained departure needs three departing points, so about a minute.

Every scenario has a distractor: a change that did not cause it, or a metric that is high but steady.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from inquest.clients.prometheus import PrometheusClient, PrometheusSettings
from inquest.engine.context import EvidenceContext
from inquest.engine.investigate import IDENTIFIED_THRESHOLD
from inquest.engine.journal import ChangeJournal
from inquest.engine.ranker import UNGATED_CAP
from inquest.engine.snapshot import ClusterSnapshot
from inquest.engine.unknowns import data_gaps
from inquest.lab import cluster
from inquest.lab.kubehelpers import Cluster, concluded_reason, deployment, explain, service
from inquest.lab.shapes import SeriesSpec
from inquest.lab.waiting import wait_for
from inquest.metrics.collector import MetricsCollector

pytestmark = pytest.mark.lab

HISTORY_SECONDS = 2 * 3600
LOOKBACK = "10m"
# Live samples a fault needs before its onset is a sustained departure: three 15 s steps past the first departing
# point, one step for the grid's alignment, and a scrape (5 s) plus margin for a busy machine.
SUSTAINED_AFTER_SECONDS = 75.0
SINCE_START = -HISTORY_SECONDS - 300  # series points that hold from before the backfilled history


@pytest.fixture
def kube(running_operator: cluster.Lab, admin_api: Any, namespace: str) -> Cluster:
    return Cluster(admin_api, namespace)


# --- series ----------------------------------------------------------------------------------------------------


def counter(
    name: str, labels: dict[str, str], points: list[tuple[float, float]], reference: float, noise: float = 0.02
) -> SeriesSpec:
    """A counter whose per-second rate follows `points` (seconds relative to `reference`, the fault's t=0)."""
    return SeriesSpec.model_validate(
        {
            "name": name,
            "type": "counter",
            "labels": labels,
            "points": [{"at": at, "value": value} for at, value in points],
            "reference_time": reference,
            "noise": noise,
        }
    )


def prometheus_query(lab: cluster.Lab, query: str) -> list[Any]:
    url = f"{lab.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=5) as response:
        result: list[Any] = json.loads(response.read())["data"]["result"]
    return result


def publish(lab: cluster.Lab, specs: list[SeriesSpec], probe: str) -> None:
    """Serves the series with their history (Prometheus restarts to load it) and waits until a query sees them."""
    lab.add_series(specs, history_seconds=HISTORY_SECONDS)
    wait_for(lambda: prometheus_query(lab, probe), f"Prometheus to answer {probe}", timeout=30, interval=0.5)


def wait_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.time()))


# --- the cluster -----------------------------------------------------------------------------------------------


def serving(name: str, replicas: int = 2, calls: str | None = None, **container: Any) -> dict[str, Any]:
    """A Deployment whose container declares its port 8080 (and calls `calls` on port 8080, if given)."""
    env = [{"name": "UPSTREAM_ADDR", "value": f"{calls}:8080"}] if calls else None
    manifest = deployment(name, replicas=replicas, env=env)
    spec = manifest["spec"]["template"]["spec"]["containers"][0]
    spec["ports"] = [{"name": "http", "containerPort": 8080}]
    spec.update(container)
    return manifest


# --- answers ---------------------------------------------------------------------------------------------------


def ask(kube: Cluster, name: str, kind: str, target: str, question: str, **more: Any) -> dict[str, Any]:
    """Creates the Investigation (a 10-minute lookback) and returns it concluded; the answer is printed."""
    time.sleep(0.5)  # the operator's watch cache trails what the test just saw through the API
    spec = {"target": {"kind": kind, "name": target}, "question": question, "lookback": LOOKBACK, **more}
    found = kube.investigate(name, spec)
    print(explain(found))
    return found


def ref(kind: str, namespace: str, name: str) -> dict[str, str]:
    return {"kind": kind, "namespace": namespace, "name": name}


def root_cause(found: dict[str, Any], kind: str, name: str, category: str) -> dict[str, Any]:
    """Asserts the verdict and the root cause; returns the top finding."""
    status = found["status"]
    namespace = found["metadata"]["namespace"]
    assert concluded_reason(found) == "RootCauseIdentified", explain(found)
    assert status["rootCause"]["ref"] == ref(kind, namespace, name), explain(found)
    assert status["rootCause"]["category"] == category, explain(found)
    top: dict[str, Any] = status["findings"][0]
    assert (top["ref"], top["category"], top["confidence"]) == (
        status["rootCause"]["ref"],
        category,
        status["rootCause"]["confidence"],
    )
    return top


def prometheus_evidence(finding: dict[str, Any], *metrics: str) -> list[dict[str, Any]]:
    """Prometheus evidence items whose PromQL query reads all of `metrics` (scoped to the finding's namespace)."""
    namespace = finding["ref"]["namespace"]
    found = [
        item
        for item in finding["evidence"]
        if item["source"] == "Prometheus"
        and item.get("query")
        and all(metric in item["query"] for metric in metrics)
        and namespace in item["query"]
    ]
    assert found, json.dumps(finding, indent=1)
    return found


def finding_on(found: dict[str, Any], kind: str, name: str, category: str | None = None) -> dict[str, Any] | None:
    for finding in found["status"].get("findings") or []:
        if (finding["ref"]["kind"], finding["ref"]["name"]) == (kind, name) and (
            category is None or finding["category"] == category
        ):
            return finding
    return None


def assert_not_blamed(found: dict[str, Any], *names: str) -> None:
    """Distractors may be listed as weak leads, never as a credible cause."""
    for finding in found["status"].get("findings") or []:
        if finding["ref"]["name"] in names:
            assert finding["confidence"] < IDENTIFIED_THRESHOLD, explain(found)


# --- 1. a rollout and the error rate after it --------------------------------------------------------------------


def _request_series(namespace: str, name: str, reference: float, errors_from: float | None = None) -> list[SeriesSpec]:
    """http_requests_total of a Service: 20 requests/s, 0.1% of them 5xx; from `errors_from` on, 70% fail."""
    labels = {"namespace": namespace, "service": name}
    ok: list[tuple[float, float]] = [(SINCE_START, 20.0)]
    failed: list[tuple[float, float]] = [(SINCE_START, 0.02)]
    if errors_from is not None:
        ok.append((errors_from, 6.0))
        failed.append((errors_from, 14.0))
    return [
        counter("http_requests_total", {**labels, "code": "200"}, ok, reference),
        counter("http_requests_total", {**labels, "code": "500"}, failed, reference),
    ]


def test_a_rollout_followed_by_errors_is_the_root_cause_though_no_pod_fails(kube: Cluster, lab: cluster.Lab) -> None:
    ns = kube.namespace
    for name in ("checkout", "catalog"):
        kube.deploy(serving(name))
        kube.core.create_namespaced_service(ns, service(name))
    # Distractor: catalog is released first and keeps serving as before.
    kube.release_image("catalog", "2.4")
    rolled = kube.release_image("checkout", "1.9")
    fault = time.time() + 2  # the new release starts failing requests (its pods stay Ready)
    specs = [*_request_series(ns, "checkout", fault, errors_from=0), *_request_series(ns, "catalog", fault)]
    publish(lab, specs, f'http_requests_total{{namespace="{ns}", service="checkout"}}')
    wait_until(fault + SUSTAINED_AFTER_SECONDS)
    assert all(pod.status.phase == "Running" for pod in kube.pods("checkout"))
    found = ask(kube, "why-5xx", "Deployment", "checkout", "why does checkout return 5xx?")

    top = root_cause(found, "Deployment", "checkout", "BadRollout")
    assert 70 <= top["confidence"] <= 95, explain(found)
    assert "1.9" in top["summary"]
    journal = [item for item in top["evidence"] if item["source"] == "Journal"]
    assert journal, explain(found)
    assert "1.9" in journal[0]["detail"], explain(found)
    errors = prometheus_evidence(top, "http_requests_total")
    assert "error ratio rose" in errors[0]["detail"], explain(found)
    onset = datetime.fromisoformat(errors[0]["time"].replace("Z", "+00:00"))
    assert rolled - timedelta(seconds=1) <= onset <= rolled + timedelta(seconds=60), (rolled, onset)
    assert not any(item["source"] == "Kubernetes" and "crash" in item["detail"] for item in top["evidence"])
    assert_not_blamed(found, "catalog")
    unknowns = found["status"]["unknowns"]
    assert not any("Prometheus was unreachable" in text for text in unknowns), unknowns
    assert not any("No request metrics for Service" in text for text in unknowns), unknowns
    # Kubernetes alone would call checkout healthy: the answer says so.
    assert any(f"{ns}/checkout: the error ratio rose" in text and "pods are Ready" in text for text in unknowns)


def test_a_rollout_after_the_errors_began_is_counter_evidence(kube: Cluster, lab: cluster.Lab) -> None:
    ns = kube.namespace
    kube.deploy(serving("checkout"))
    kube.core.create_namespaced_service(ns, service("checkout"))
    fault = time.time() - 150  # the errors began two and a half minutes ago ...
    publish(lab, _request_series(ns, "checkout", fault, errors_from=0), f'http_requests_total{{namespace="{ns}"}}')
    kube.release_image("checkout", "1.9.1")  # ... and a release (a would-be fix, say) came after them
    found = ask(
        kube,
        "why-5xx-still",
        "Deployment",
        "checkout",
        "why does checkout return 5xx?",
        hypotheses=["the rollout of checkout 1.9.1"],
    )

    status = found["status"]
    assert status.get("rootCause", {}).get("category") != "BadRollout", explain(found)
    top = status["findings"][0]
    assert (top["ref"], top["category"]) == (ref("Deployment", ns, "checkout"), "ApplicationError"), explain(found)
    prometheus_evidence(top, "http_requests_total")
    assert top["confidence"] <= UNGATED_CAP, explain(found)  # no dated trigger behind it
    expected = "RootCauseIdentified" if top["confidence"] >= IDENTIFIED_THRESHOLD else "Inconclusive"
    assert concluded_reason(found) == expected, explain(found)
    [hypothesis] = status["hypotheses"]
    assert hypothesis["verdict"] == "RuledOut", explain(found)
    assert hypothesis["reason"].startswith("symptoms began at"), explain(found)
    assert f"before Deployment {ns}/checkout changed at" in hypothesis["reason"], explain(found)
    rollout = finding_on(found, "Deployment", "checkout", "BadRollout")
    if rollout is not None:  # listed only as a weak lead, with the timing against it
        assert rollout["confidence"] < IDENTIFIED_THRESHOLD, explain(found)
        against = [item["detail"] for item in rollout["evidence"] if item["detail"].startswith("Against:")]
        assert any("after the first symptom" in detail for detail in against), explain(found)


# --- 2. CPU throttling -----------------------------------------------------------------------------------------


def test_cpu_throttling_without_pod_failure(kube: Cluster, lab: cluster.Lab) -> None:
    ns = kube.namespace
    limited = {"resources": {"limits": {"cpu": "500m"}, "requests": {"cpu": "500m"}}}
    kube.deploy(serving("api", **limited))
    kube.deploy(serving("worker", replicas=1, **limited))
    kube.core.create_namespaced_service(ns, service("api"))
    fault = time.time() - 120
    specs = []
    for app, throttled in (("api", [(SINCE_START, 0.2), (0, 6.0)]), ("worker", [(SINCE_START, 3.0)])):
        # Distractor: worker is throttled too (30% of its periods), but steadily: nothing changed there.
        for pod in kube.pods(app):
            labels = {"namespace": ns, "pod": pod.metadata.name, "container": "app"}
            specs.append(counter("container_cpu_cfs_periods_total", labels, [(SINCE_START, 10.0)], fault))
            specs.append(counter("container_cpu_cfs_throttled_periods_total", labels, throttled, fault))
    api = {"namespace": ns, "service": "api"}
    specs += _request_series(ns, "api", fault)
    specs.append(counter("http_request_duration_seconds_count", api, [(SINCE_START, 20.0)], fault))
    specs.append(counter("http_request_duration_seconds_sum", api, [(SINCE_START, 1.0), (0, 8.0)], fault))
    publish(lab, specs, f'container_cpu_cfs_throttled_periods_total{{namespace="{ns}"}}')
    found = ask(kube, "why-slow", "Deployment", "api", "why is api slow?")

    top = root_cause(found, "Deployment", "api", "CPUThrottling")
    assert IDENTIFIED_THRESHOLD <= top["confidence"] <= UNGATED_CAP, explain(found)  # a mechanism, no trigger
    assert "500m" in top["summary"]
    throttling = prometheus_evidence(
        top, "container_cpu_cfs_throttled_periods_total", "container_cpu_cfs_periods_total"
    )
    assert "throttled share of CPU periods rose" in throttling[0]["detail"]
    latency = prometheus_evidence(top, "http_request_duration_seconds_sum")
    assert "mean latency rose" in latency[0]["detail"]
    assert finding_on(found, "Deployment", "worker") is None, explain(found)
    assert all(pod.status.phase == "Running" for pod in kube.pods("api"))
    unknowns = found["status"]["unknowns"]
    assert not any("CPU metrics (cAdvisor)" in text or "latency metrics" in text for text in unknowns), unknowns


# --- 3. a Service that routes to nothing -------------------------------------------------------------------------


def test_a_callee_whose_service_port_was_changed_receives_no_traffic(kube: Cluster, lab: cluster.Lab) -> None:
    ns = kube.namespace
    kube.deploy(serving("inventory"))
    kube.deploy(serving("storefront", calls="inventory"))
    kube.core.create_namespaced_service(ns, service("inventory"))
    kube.core.create_namespaced_service(ns, service("storefront"))
    # Distractor: the caller is released just before (its requests are what fail).
    kube.release_image("storefront", "3.2")
    kube.core.patch_namespaced_service("inventory", ns, {"spec": {"ports": [{"port": 8080, "targetPort": 9090}]}})
    fault = time.time() + 2
    host = f"inventory.{ns}.svc.cluster.local:8080"
    client = {
        "namespace": ns,
        "k8s_namespace_name": ns,
        "service_name": "storefront",
        "span_kind": "SPAN_KIND_CLIENT",
        "server_address": host,
    }
    ok = [(SINCE_START, 15.0), (0, 0.0)]
    failing = [(SINCE_START, 0.01), (0, 15.0)]
    served = {"namespace": ns, "service": "inventory"}
    specs = [
        # The callers' client spans: every call fails from the edit on (connection refused) ...
        counter("traces_span_metrics_calls_total", {**client, "status_code": "STATUS_CODE_UNSET"}, ok, fault),
        counter("traces_span_metrics_calls_total", {**client, "status_code": "STATUS_CODE_ERROR"}, failing, fault),
        # ... and the callee's own request metrics: its traffic stops.
        counter("http_requests_total", {**served, "code": "200"}, ok, fault),
        counter("http_requests_total", {**served, "code": "500"}, [(SINCE_START, 0.01), (0, 0.0)], fault),
        # storefront's own traffic from its users carries on.
        *_request_series(ns, "storefront", fault),
    ]
    publish(lab, specs, f'traces_span_metrics_calls_total{{namespace="{ns}"}}')
    wait_until(fault + SUSTAINED_AFTER_SECONDS)
    found = ask(kube, "why-inventory-calls-fail", "Deployment", "storefront", "why do calls to inventory fail?")

    top = root_cause(found, "Service", "inventory", "ServiceMisconfig")
    assert 70 <= top["confidence"] <= 95, explain(found)
    assert "9090" in top["summary"], explain(found)
    calls = prometheus_evidence(top, "traces_span_metrics_calls_total")
    assert calls[0]["ref"] == ref("Service", ns, "inventory"), explain(found)
    assert "seen by callers while inventory receives" in calls[0]["detail"], explain(found)
    assert_not_blamed(found, "storefront")
    # The callers' failures are the edit's effect, not a network fault of their own.
    assert finding_on(found, "Service", "inventory", "NetworkDegradation") is None, explain(found)
    unknowns = " ".join(found["status"]["unknowns"])
    assert "traffic is not reaching it" in unknowns, explain(found)
    assert "fail between them" not in unknowns, explain(found)


# --- 4. the network between caller and callee -----------------------------------------------------------------


def test_latency_seen_only_by_the_caller_is_network_degradation(kube: Cluster, lab: cluster.Lab) -> None:
    ns = kube.namespace
    limited = {"resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "1"}}}
    kube.deploy(serving("payments", **limited))
    kube.deploy(serving("checkout", calls="payments"))
    for name in ("payments", "checkout"):
        kube.core.create_namespaced_service(ns, service(name))
    fault = time.time() - 120
    call = {
        "namespace": ns,
        "source_workload": "checkout",
        "source_workload_namespace": ns,
        "destination_service_name": "payments",
        "destination_service_namespace": ns,
        "destination_workload": "payments",
        "destination_workload_namespace": ns,
    }
    specs = []
    # Mean latency in ms is the rate of the duration sum (ms/s) over the rate of the count (requests/s).
    seen = {"source": [(SINCE_START, 20.0 * 15), (0, 20.0 * 300)], "destination": [(SINCE_START, 20.0 * 12)]}
    for reporter, durations in seen.items():
        labels = {**call, "reporter": reporter}
        specs.append(counter("istio_request_duration_milliseconds_count", labels, [(SINCE_START, 20.0)], fault))
        specs.append(counter("istio_request_duration_milliseconds_sum", labels, durations, fault))
        specs.append(counter("istio_requests_total", {**labels, "response_code": "200"}, [(SINCE_START, 20.0)], fault))
        specs.append(counter("istio_requests_total", {**labels, "response_code": "503"}, [(SINCE_START, 0.02)], fault))
    # Distractor: payments' CPU is throttled, steadily (a quarter of its periods, for hours).
    for pod in kube.pods("payments"):
        labels = {"namespace": ns, "pod": pod.metadata.name, "container": "app"}
        specs.append(counter("container_cpu_cfs_periods_total", labels, [(SINCE_START, 10.0)], fault))
        specs.append(counter("container_cpu_cfs_throttled_periods_total", labels, [(SINCE_START, 2.5)], fault))
    publish(lab, specs, f'istio_request_duration_milliseconds_sum{{namespace="{ns}"}}')
    found = ask(kube, "why-checkout-slow", "Deployment", "checkout", "why is checkout slow?")

    top = root_cause(found, "Service", "payments", "NetworkDegradation")
    assert IDENTIFIED_THRESHOLD <= top["confidence"] <= UNGATED_CAP, explain(found)
    latency = prometheus_evidence(top, "istio_request_duration_milliseconds_sum")
    assert "seen by callers only" in latency[0]["detail"], explain(found)
    unknowns = " ".join(found["status"]["unknowns"])
    assert "while its own (server-side) latency is flat" in unknowns, explain(found)
    assert finding_on(found, "Deployment", "payments", "CPUThrottling") is None, explain(found)


# --- 5. Prometheus down ----------------------------------------------------------------------------------------


def test_prometheus_down_is_an_unknown_and_lowers_confidence(kube: Cluster, lab: cluster.Lab) -> None:
    ns = kube.namespace
    kube.deploy(serving("payments"))
    kube.deploy(serving("orders", calls="payments"))
    kube.core.create_namespaced_service(ns, service("payments"))
    kube.core.create_namespaced_service(ns, service("orders"))
    # Both serve requests, and Prometheus has their history (the old payments pods keep serving: the error
    # rate stays flat). With Prometheus up the engine sees that much more than without it.
    fault = time.time()
    specs = [*_request_series(ns, "payments", fault), *_request_series(ns, "orders", fault)]
    publish(lab, specs, f'http_requests_total{{namespace="{ns}"}}')
    # Distractor: a label change on the caller (no template change, no restart).
    kube.apps.patch_namespaced_deployment("orders", ns, {"metadata": {"labels": {"team": "orders"}}})
    kube.release_crashing("payments", "registry.example.com/payments:2.0")
    with_metrics = ask(kube, "with-prometheus", "Deployment", "orders", "why is orders failing?")
    lab.stop_component("prometheus")
    try:
        started = time.monotonic()
        without = ask(kube, "without-prometheus", "Deployment", "orders", "why is orders failing?")
        elapsed = time.monotonic() - started
    finally:
        lab.start_component("prometheus")

    up = root_cause(with_metrics, "Deployment", "payments", "BadRollout")
    down = root_cause(without, "Deployment", "payments", "BadRollout")
    assert down["confidence"] < up["confidence"], (explain(with_metrics), explain(without))
    assert elapsed < 10, elapsed
    assert without["status"]["durationMillis"] < 5000, explain(without)
    unknowns = without["status"]["unknowns"]
    assert any(text.startswith("Prometheus was unreachable") for text in unknowns), unknowns
    assert any(lab.prometheus_url.removeprefix("http://") in text for text in unknowns), unknowns
    assert not any("unreachable" in text for text in with_metrics["status"]["unknowns"])
    assert_not_blamed(without, "orders")


# --- 6. Prometheus answering too slowly ------------------------------------------------------------------------


@asynccontextmanager
async def delaying_proxy(upstream: str, delay: Callable[[str, bytes], float]) -> AsyncIterator[str]:
    """An HTTP proxy in front of Prometheus that waits `delay(path, body)` seconds before forwarding."""
    session = aiohttp.ClientSession()

    async def forward(request: web.Request) -> web.Response:
        body = await request.read()
        await asyncio.sleep(delay(request.path, body))
        headers = {"Content-Type": request.headers.get("Content-Type", "application/x-www-form-urlencoded")}
        async with session.request(
            request.method, upstream + request.path_qs, data=body or None, headers=headers
        ) as answer:
            return web.Response(status=answer.status, body=await answer.read(), content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5)
    await runner.setup()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, listener)
    await site.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        await runner.cleanup()
        await session.close()


SLOW = 5.0
BUDGET = 2.0
SLACK = 0.5


async def _collect_through(proxy: str, namespace: str) -> tuple[Any, float]:
    client = PrometheusClient(PrometheusSettings(url=proxy, query_timeout_seconds=1, budget_seconds=BUDGET))
    try:
        end = datetime.now(UTC)
        started = time.monotonic()
        collection = await MetricsCollector(client).collect([namespace], end - timedelta(minutes=10), end)
        return collection, time.monotonic() - started
    finally:
        client.close()


@pytest.fixture(scope="module")
def served_namespace(lab: cluster.Lab) -> str:
    """A namespace (no cluster objects needed) whose request metrics Prometheus holds, live only."""
    namespace = f"slow-{int(time.time())}"
    lab.add_series(_request_series(namespace, "web", time.time()))  # no history: no restart needed
    probe = f'http_requests_total{{namespace="{namespace}"}}'
    wait_for(lambda: prometheus_query(lab, probe), "the new series", timeout=30, interval=0.5)
    return namespace


@pytest.mark.parametrize("slow", ["everything", "discovery", "range queries", "request metrics"])
async def test_a_slow_prometheus_costs_at_most_the_budget(lab: cluster.Lab, served_namespace: str, slow: str) -> None:
    namespace = served_namespace

    def delay(path: str, body: bytes) -> float:
        if slow == "everything":
            return SLOW
        if slow == "discovery":
            return SLOW if "/label/" in path else 0.0
        if slow == "range queries":
            return SLOW if path.endswith("/query_range") else 0.0
        return SLOW if b"http_requests_total" in body else 0.0

    async with delaying_proxy(lab.prometheus_url, delay) as proxy:
        collection, elapsed = await _collect_through(proxy, namespace)
        analysis, sources = collection.analyse(ClusterSnapshot.of([]))

    assert elapsed <= BUDGET + SLACK, elapsed
    assert collection.elapsed_seconds <= BUDGET + SLACK
    end = datetime.now(UTC)
    context = EvidenceContext.build([], ChangeJournal(), end - timedelta(minutes=10), end, data_sources=sources)
    gaps, unknowns = data_gaps(context)
    notes = " ".join(sources.notes)
    if slow in ("everything", "range queries"):
        assert not sources.prometheus_reachable
        assert gaps.metrics_missing
        assert unknowns[0].startswith("Prometheus was unreachable: error rates, latency"), unknowns
        assert collection.failure in unknowns, unknowns
    if slow == "everything":
        assert collection.failure == f"Prometheus unreachable at {proxy} (no answer within 1s): metrics not checked."
        assert collection.plan is None
    elif slow == "range queries":
        assert collection.failure is not None
        assert collection.failure.startswith("Prometheus did not answer any of")
        assert "timeout after 1s" in collection.failure, collection.failure
    elif slow == "discovery":  # queries still run, every template of the catalog, and the answer says why
        assert collection.failure is None
        assert sources.prometheus_reachable
        assert collection.plan is not None
        assert collection.plan.discovery_failed
        assert "Prometheus metric discovery failed: every query in the catalog was planned" in notes
        assert "http_requests" in collection.plan.planned_templates()
    else:
        assert collection.failure is None
        assert sources.prometheus_reachable
        assert (
            f"Prometheus queries for request metrics in namespace {namespace} failed (http_requests: timeout" in notes
        )
        assert "those signals are unknown" in notes
        assert not analysis.signals
