"""Trust proofs: the operator survives a Prometheus that is stopped, slow, failing, talking nonsense or partial.

A dedicated lab runs one operator whose Prometheus URL is the lab fault proxy (inquest.lab.faultproxy) in front of
the lab's real Prometheus. The world is one where the answer rests on Prometheus: a release of `checkout` after
which 70% of its requests fail while its pods stay Ready, so only the request metrics show the failure. Each test
asks once through a healthy proxy (the baseline) and once under its fault (a new Investigation on the same world),
and asserts that the faulted answer

- concludes within the Prometheus budget plus MARGIN_SECONDS, measured from creation to the Concluded status;
- names Prometheus and the kind of gap in `unknowns`;
- has a top confidence strictly below the baseline's;
- was answered after the operator met the fault (the proxy counted its requests under that mode).

The operator keeps the metric names a healthy answer listed, so those faults are first met by the range queries;
the cold tests restart the operator under the fault, so that metric discovery meets it. The findings are written
up in docs/trust.md (Prometheus faults).
"""

from __future__ import annotations

import json
import os
import secrets
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from inquest.api import models
from inquest.lab import cluster, operator
from inquest.lab.faultproxy import (
    FaultMode,
    FaultProxy,
    InvalidJson,
    Partial,
    ServerError,
    Slow,
    mode_name,
    running_fault_proxy,
)
from inquest.lab.kubehelpers import Cluster, deployment, explain, service
from inquest.lab.shapes import SeriesSpec
from inquest.lab.waiting import wait_for

pytestmark = pytest.mark.lab

BUDGET_SECONDS = 3.0
QUERY_TIMEOUT_SECONDS = 2.0
# Beyond the Prometheus budget: the watch event reaching the operator, the engine, the status patch, our polling.
MARGIN_SECONDS = 2.0
HISTORY_SECONDS = 2 * 3600
SINCE_START = -HISTORY_SECONDS - 300  # series points that hold from before the backfilled history
# Three departing 15 s steps past the first, the grid's alignment, a 5 s scrape and slack (see test_operator_metrics).
SUSTAINED_AFTER_SECONDS = 75.0
# The errors begin this long after the release is made: an onset dated a step or two early still follows it.
ERRORS_AFTER_RELEASE_SECONDS = 15.0
POLL_SECONDS = 0.05


@dataclass(frozen=True)
class World:
    lab: cluster.Lab
    kube: Cluster
    proxy: FaultProxy
    released: float  # epoch seconds: when checkout 1.9 was released
    errors_from: float  # epoch seconds: when its requests began to fail


@dataclass(frozen=True)
class Answer:
    found: dict[str, Any]
    seconds: float  # from the create call to a Concluded status for generation 1 (polled)

    @property
    def unknowns(self) -> list[str]:
        return list(self.found["status"].get("unknowns") or [])

    @property
    def top_confidence(self) -> int:
        """The first finding's confidence; 0 when the answer names none."""
        findings = self.found["status"].get("findings") or []
        return int(findings[0]["confidence"]) if findings else 0


# --- the lab ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fault_lab() -> Iterator[cluster.Lab]:
    """Its own lab, so this operator is the only one answering Investigations there."""
    name = f"trust-prom-{os.getpid()}"
    started = cluster.up(name)
    try:
        yield started
    finally:
        cluster.down(name)


@pytest.fixture(scope="module")
def proxy(fault_lab: cluster.Lab) -> Iterator[FaultProxy]:
    with running_fault_proxy(fault_lab.prometheus_url) as running:
        yield running


@pytest.fixture(scope="module")
def world(fault_lab: cluster.Lab, proxy: FaultProxy) -> Iterator[World]:
    from kubernetes import config

    _start_operator(fault_lab, proxy)
    api_client = config.new_client_from_config(config_file=str(fault_lab.kubeconfig_admin))  # type: ignore[no-untyped-call]
    namespace = f"trust-prom-{secrets.token_hex(3)}"
    fault_lab.api(
        "POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    )
    cluster.wait_for_default_service_account(fault_lab, namespace)
    kube = Cluster(api_client, namespace)
    try:
        # An answer proves the operator's cache is live, so the journal sees the release as it is made.
        _ask(kube, "warm-up")
        released, errors_from = _build_world(fault_lab, kube)
        yield World(fault_lab, kube, proxy, released, errors_from)
    finally:
        operator.stop_operator(fault_lab)
        api_client.close()


def _start_operator(lab: cluster.Lab, proxy: FaultProxy) -> None:
    """The operator, pointed at the proxy instead of the lab's Prometheus (the defaults, spelled out)."""
    operator.start_operator(
        lab,
        f"--prometheus-url={proxy.url}",
        f"--prometheus-budget-seconds={BUDGET_SECONDS:g}",
        f"--prometheus-query-timeout-seconds={QUERY_TIMEOUT_SECONDS:g}",
        prometheus=False,
    )


def _counter(name: str, labels: dict[str, str], points: list[tuple[float, float]], reference: float) -> SeriesSpec:
    """A counter whose per-second rate follows `points` (seconds relative to `reference`)."""
    return SeriesSpec.model_validate(
        {
            "name": name,
            "type": "counter",
            "labels": labels,
            "points": [{"at": at, "value": value} for at, value in points],
            "reference_time": reference,
            "noise": 0.02,
        }
    )


def _requests(namespace: str, name: str, reference: float, errors_from: float | None) -> list[SeriesSpec]:
    """20 requests/s with 0.1% of them 5xx; from `errors_from` on, 70% fail."""
    labels = {"namespace": namespace, "service": name}
    ok: list[tuple[float, float]] = [(SINCE_START, 20.0)]
    failed: list[tuple[float, float]] = [(SINCE_START, 0.02)]
    if errors_from is not None:
        ok.append((errors_from, 6.0))
        failed.append((errors_from, 14.0))
    return [
        _counter("http_requests_total", {**labels, "code": "200"}, ok, reference),
        _counter("http_requests_total", {**labels, "code": "500"}, failed, reference),
    ]


def _build_world(lab: cluster.Lab, kube: Cluster) -> tuple[float, float]:
    """checkout and catalog serve requests; checkout's release 1.9 makes 70% of them fail, its pods stay Ready.
    Returns when the release was made and when the errors began."""
    ns = kube.namespace
    for name in ("checkout", "catalog"):
        manifest = deployment(name)
        manifest["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"name": "http", "containerPort": 8080}]
        kube.deploy(manifest)
        kube.core.create_namespaced_service(ns, service(name))
    released = kube.release_image("checkout", "1.9").timestamp()
    fault = max(released + ERRORS_AFTER_RELEASE_SECONDS, time.time() + 2)
    specs = [*_requests(ns, "checkout", fault, errors_from=0), *_requests(ns, "catalog", fault, errors_from=None)]
    lab.add_series(specs, history_seconds=HISTORY_SECONDS)  # restarts Prometheus to load the history
    probe = f'http_requests_total{{namespace="{ns}", service="checkout"}}'
    wait_for(lambda: _prometheus_has(lab, probe), f"Prometheus to answer {probe}", timeout=30, interval=0.5)
    time.sleep(max(0.0, fault + SUSTAINED_AFTER_SECONDS - time.time()))
    return released, fault


def _prometheus_has(lab: cluster.Lab, query: str) -> bool:
    """Straight to the lab's Prometheus, not through the proxy."""
    url = f"{lab.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return bool(json.loads(response.read())["data"]["result"])
    except OSError:
        return False  # still restarting


# --- asking -----------------------------------------------------------------------------------------------------


def _ask(kube: Cluster, name: str) -> Answer:
    time.sleep(0.5)  # the operator's watch cache trails what the test just saw through the API
    spec = {
        "target": {"kind": "Deployment", "name": "checkout"},
        "question": "why does checkout return 5xx?",
        "lookback": "10m",
    }
    body = {"apiVersion": models.API_VERSION, "kind": models.KIND, "metadata": {"name": name}, "spec": spec}
    started = time.monotonic()
    kube.custom.create_namespaced_custom_object(models.GROUP, models.VERSION, kube.namespace, models.PLURAL, body)

    def answered() -> dict[str, Any] | None:
        found = cast(
            dict[str, Any],
            kube.custom.get_namespaced_custom_object(models.GROUP, models.VERSION, kube.namespace, models.PLURAL, name),
        )
        status = found.get("status") or {}
        concluded = [c for c in status.get("conditions") or [] if c.get("type") == "Concluded"]
        done = concluded and concluded[0].get("reason") != "Investigating"
        return found if status.get("observedGeneration") == 1 and done else None

    found = wait_for(answered, f"Investigation {name} concluded", timeout=30, interval=POLL_SECONDS)
    return Answer(found, time.monotonic() - started)


def _gap(answer: Answer, kind: tuple[str, ...]) -> str:
    """The unknown that names Prometheus and the kind of gap (any of the phrases in `kind`)."""
    found = [text for text in answer.unknowns if "Prometheus" in text and any(phrase in text for phrase in kind)]
    assert found, explain(answer.found)
    return found[0]


def _assert_baseline(world: World, baseline: Answer) -> None:
    """The healthy answer rests on Prometheus: the release is blamed on the request metrics' evidence alone."""
    status = baseline.found["status"]
    when = f"released at {_clock(world.released)}, errors from {_clock(world.errors_from)}\n"
    assert _concluded(baseline) == "RootCauseIdentified", when + explain(baseline.found)
    top = status["findings"][0]
    assert (top["ref"]["name"], top["category"]) == ("checkout", "BadRollout"), when + explain(baseline.found)
    assert any(item["source"] == "Prometheus" for item in top["evidence"]), when + explain(baseline.found)
    assert not any(item["source"] == "Kubernetes" for item in top["evidence"]), when + explain(baseline.found)
    gaps = ("unreachable", "did not answer", "partial data", "queries for", "answered with an error", "invalid")
    assert not any("Prometheus" in text and any(gap in text for gap in gaps) for text in baseline.unknowns)


def _clock(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%H:%M:%SZ")


def _concluded(answer: Answer) -> str:
    conditions = answer.found["status"].get("conditions") or []
    return str(next(c["reason"] for c in conditions if c["type"] == "Concluded"))


def _assert_survived(label: str, baseline: Answer, faulted: Answer, kind: tuple[str, ...]) -> str:
    """Within the budget plus the margin, the gap named, the confidence lower; returns the unknown naming it."""
    gap = _gap(faulted, kind)
    engine_millis = faulted.found["status"].get("durationMillis")
    print(
        f"\nFAULT {label}: answered in {faulted.seconds:.2f} s (durationMillis {engine_millis}), {_concluded(faulted)};"
        f" top confidence {baseline.top_confidence} healthy -> {faulted.top_confidence}; unknown: {gap}"
    )
    for text in faulted.unknowns:
        if "metrics" in text and not text.startswith("Not in Prometheus"):
            print(f"  unknown: {text}")
    # Never "no fault": what could not be checked is said, in the summary too when nothing is confirmed.
    assert _concluded(faulted) in ("RootCauseIdentified", "Inconclusive"), explain(faulted.found)
    if _concluded(faulted) == "Inconclusive":
        assert "could not be checked without metrics" in faulted.found["status"]["summary"], explain(faulted.found)
    assert faulted.seconds <= BUDGET_SECONDS + MARGIN_SECONDS, (faulted.seconds, explain(faulted.found))
    assert faulted.top_confidence < baseline.top_confidence, (explain(baseline.found), explain(faulted.found))
    return gap


# --- the faults -------------------------------------------------------------------------------------------------

SLOW = Slow(5.0)  # longer than the per-query timeout and the whole budget
REQUEST_METRICS = "http_requests_total"


@pytest.mark.parametrize(
    ("label", "mode", "matching", "kind"),
    [
        ("slow", SLOW, None, ("timeout after", "no answer within")),
        ("server-error", ServerError(503), None, ("HTTP 503",)),
        ("invalid-json", InvalidJson(), None, ("invalid JSON",)),
        ("partial-warning", Partial(), None, ("returned partial data",)),
        ("partial-half-dropped", Partial(drop_share=0.5), None, ("returned partial data",)),
        ("request-metrics-slow", SLOW, REQUEST_METRICS, ("queries for request metrics", "timeout after")),
        ("request-metrics-error", ServerError(502), REQUEST_METRICS, ("queries for request metrics",)),
    ],
)
def test_a_faulty_prometheus_is_an_unknown_within_the_budget_and_lowers_confidence(
    world: World, label: str, mode: FaultMode, matching: str | None, kind: tuple[str, ...]
) -> None:
    world.proxy.heal()
    baseline = _ask(world.kube, f"{label}-healthy")
    world.proxy.reset_counts()
    world.proxy.set_fault(mode, matching)
    try:
        faulted = _ask(world.kube, f"{label}-faulted")
    finally:
        world.proxy.heal()
    seen = world.proxy.seen()

    _assert_baseline(world, baseline)
    gap = _assert_survived(label, baseline, faulted, kind)
    met = [request for request in seen if request.mode == mode_name(mode)]
    assert met, seen  # the operator's queries reached the proxy and were served the fault
    if matching is not None:
        assert all(REQUEST_METRICS in request.description for request in met), met
        assert any(request.mode == "Healthy" for request in seen), seen  # the others were answered
        assert REQUEST_METRICS.removesuffix("_total") in gap, gap  # the failed template is named
    if isinstance(mode, ServerError):
        assert f"HTTP {mode.status}" in gap, gap
    if isinstance(mode, Partial):
        assert mode.warning in gap, gap  # the server's own words


def test_a_stopped_prometheus_is_an_unknown_within_the_budget_and_lowers_confidence(world: World) -> None:
    world.proxy.heal()
    baseline = _ask(world.kube, "stopped-healthy")
    world.proxy.stop()
    try:
        faulted = _ask(world.kube, "stopped-faulted")
    finally:
        world.proxy.resume()

    _assert_baseline(world, baseline)
    # Nothing reaches a stopped server to be counted: the refusal names the proxy's own port instead.
    gap = _assert_survived("stopped", baseline, faulted, ("connection refused",))
    assert world.proxy.url.removeprefix("http://") in gap, gap
    assert _ask(world.kube, "stopped-resumed").top_confidence == baseline.top_confidence  # and it recovers


@pytest.mark.parametrize(
    ("label", "mode", "kind"),
    [
        ("cold-stopped", None, ("connection refused",)),
        ("cold-slow", SLOW, ("no answer within",)),
        ("cold-server-error", ServerError(500), ("answered with an error (HTTP 500",)),
        ("cold-invalid-json", InvalidJson(), ("gave an invalid answer (invalid JSON",)),
    ],
)
def test_an_operator_that_starts_during_the_fault_names_it_too(
    world: World, label: str, mode: FaultMode | None, kind: tuple[str, ...]
) -> None:
    """A fresh operator has no list of metric names yet, so discovery itself meets the fault (the other tests
    reuse the list a healthy answer fetched). Both answers come from a freshly started operator, so the restart's
    own gaps (a journal that begins at the start) weigh on both alike."""
    world.proxy.heal()
    _restart_operator(world)
    baseline = _ask(world.kube, f"{label}-healthy")
    world.proxy.reset_counts()
    if mode is None:
        world.proxy.stop()
    else:
        world.proxy.set_fault(mode)
    try:
        _restart_operator(world)
        faulted = _ask(world.kube, f"{label}-faulted")
    finally:
        world.proxy.heal()
        world.proxy.resume()

    _assert_baseline(world, baseline)
    gap = _assert_survived(label, baseline, faulted, kind)
    assert "metrics not checked" in gap, gap
    if mode is not None:
        assert world.proxy.counts()[mode_name(mode)] >= 2, world.proxy.seen()  # discovery and the probe after it
    else:
        assert world.proxy.url.removeprefix("http://") in gap, gap


def _restart_operator(world: World) -> None:
    operator.stop_operator(world.lab)
    _start_operator(world.lab, world.proxy)
