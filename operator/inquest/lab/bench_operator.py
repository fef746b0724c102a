"""`make bench` (operator part): Investigation latency without Prometheus, and memory per 1,000 cached pods.

Latency is measured from the client's create call to the client seeing the status with the answer, against
the operator running in the lab as its own identity. Memory is measured twice: the operator's resident set
before and after 1,000 real (kwok) pods appear, and the cache's own allocations for 1,000 pods (tracemalloc).
"""

from __future__ import annotations

import copy
import json
import os
import re
import statistics
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client, config

from inquest.api import models
from inquest.cache import ClusterCache
from inquest.lab import bench as lab_bench
from inquest.lab import cluster, demo, operator, stats
from inquest.lab.waiting import wait_for

FIGURES_START = "<!-- operator-figures:start -->"
FIGURES_END = "<!-- operator-figures:end -->"
TARGETS = ("checkout", "payments", "web", "gateway", "cart", "redis")


def shop_series(reference: float) -> list[Any]:
    """Request and latency series for every shop Service, so investigations have real queries to run."""
    from inquest.lab.shapes import SeriesSpec

    specs = []
    for service in TARGETS:
        for code, rate in (("200", 20.0), ("500", 0.05)):
            specs.append(
                SeriesSpec.model_validate({
                    "name": "http_requests_total", "type": "counter", "reference_time": reference, "noise": 0.05,
                    "labels": {"namespace": demo.SHOP_NAMESPACE, "service": service, "code": code},
                    "points": [{"at": -3600, "value": rate}],
                })
            )  # fmt: skip
        for suffix, rate in (("sum", 0.6), ("count", 20.0)):
            specs.append(
                SeriesSpec.model_validate({
                    "name": f"http_request_duration_seconds_{suffix}", "type": "counter", "reference_time": reference,
                    "labels": {"namespace": demo.SHOP_NAMESPACE, "service": service}, "noise": 0.05,
                    "points": [{"at": -3600, "value": rate}],
                })
            )  # fmt: skip
    return specs


def measure_latency(lab: cluster.Lab, count: int, prefix: str) -> list[float]:
    api = config.new_client_from_config(config_file=str(lab.kubeconfig_admin))  # type: ignore[no-untyped-call]
    custom = client.CustomObjectsApi(api)
    latencies: list[float] = []
    try:
        for index in range(count):
            name = f"{prefix}-{index}"
            body = {
                "apiVersion": models.API_VERSION,
                "kind": models.KIND,
                "metadata": {"name": name},
                "spec": {"target": {"kind": "Deployment", "name": TARGETS[index % len(TARGETS)]}},
            }
            started = time.monotonic()
            custom.create_namespaced_custom_object(
                models.GROUP, models.VERSION, demo.SHOP_NAMESPACE, models.PLURAL, body
            )

            def answered(name: str = name) -> bool:
                found: Any = custom.get_namespaced_custom_object(
                    models.GROUP, models.VERSION, demo.SHOP_NAMESPACE, models.PLURAL, name
                )
                return bool((found.get("status") or {}).get("observedGeneration") == 1)

            wait_for(answered, f"Investigation {name}", timeout=30, interval=0.005)
            latencies.append(time.monotonic() - started)
            if (index + 1) % 10 == 0:
                cluster.progress(f"latency: {index + 1}/{count} investigations")
    finally:
        api.close()
    return latencies


def synthetic_pod(index: int) -> dict[str, Any]:
    """A pod as a watch delivers it, managedFields included, so the projection's savings are real."""
    name = f"load-{index // 10}-{index:05d}"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "load",
            "uid": f"00000000-0000-0000-0000-{index:012d}",
            "labels": {"app": f"load-{index // 10}", "pod-template-hash": "5d9c7b"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"load-{index // 10}-5d9c7b",
                                 "uid": "1", "controller": True}],
            "managedFields": [{"manager": "kube-controller-manager", "operation": "Update",
                               "fieldsV1": {f"f:{key}": {} for key in range(40)}}],
            "creationTimestamp": "2026-11-25T10:00:00Z",
        },
        "spec": {
            "nodeName": f"node-{index % 3}",
            "containers": [{
                "name": "app", "image": "registry.example.com/load:1.0",
                "env": [{"name": "PAYMENTS_ADDR", "value": "payments:8080"}],
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
            }],
        },
        "status": {
            "phase": "Running", "podIP": f"10.244.{index // 250}.{index % 250}", "startTime": "2026-11-25T10:00:01Z",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-25T10:00:02Z"}],
            "containerStatuses": [{"name": "app", "ready": True, "restartCount": 0, "started": True,
                                   "image": "registry.example.com/load:1.0",
                                   "state": {"running": {"startedAt": "2026-11-25T10:00:02Z"}}}],
        },
    }  # fmt: skip


def cache_bytes_per_thousand_pods(pods: int = 5000) -> float:
    bodies = [synthetic_pod(index) for index in range(pods)]
    cache = ClusterCache()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for body in bodies:
        cache.observe(copy.deepcopy(body))
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    return grown / (pods / 1000)


def operator_rss_growth(lab: cluster.Lab, pods: int = 1000) -> tuple[float, float, float]:
    """The operator's RSS before and after `pods` kwok pods exist, and the time they took to appear."""
    process = lab.processes[operator.COMPONENT]
    before = lab_bench.resident_mib(process.pid)
    manifest = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "load"},
        "spec": {
            "replicas": pods,
            "selector": {"matchLabels": {"app": "load"}},
            "template": {
                "metadata": {"labels": {"app": "load"}},
                "spec": {"containers": [{"name": "app", "image": "registry.example.com/load:1.0"}]},
            },
        },
    }
    demo.kubectl(lab, "create", "namespace", "load")
    cluster.wait_for_default_service_account(lab, "load")
    started = time.monotonic()
    demo.kubectl(lab, "apply", "-n", "load", "-f", "-", input_text=json.dumps(manifest))

    def running() -> bool:
        output = demo.kubectl(lab, "get", "deployment", "load", "-n", "load", "-o", "jsonpath={.status.readyReplicas}")
        cluster.progress(f"memory: {output or 0}/{pods} pods ready")
        return output.strip() == str(pods)

    wait_for(running, f"{pods} pods", timeout=600, interval=3)
    elapsed = time.monotonic() - started
    time.sleep(5)  # let the watch stream drain into the cache
    return before, lab_bench.resident_mib(process.pid), elapsed


def render(
    plain: list[float],
    with_prometheus: list[float],
    prometheus_lines: list[re.Match[str]],
    per_thousand: float,
    rss: tuple[float, float, float],
) -> str:
    def row(title: str, values: list[float], unit: str = "") -> str:
        cells = [
            f"{value:.0f}{unit}" for value in (statistics.median(values), stats.percentile(values, 0.95), max(values))
        ]
        return f"| {title} | {' | '.join(cells)} |"

    before, after, elapsed = rss
    queries = [float(line.group("queries")) for line in prometheus_lines]
    prometheus_ms = [float(line.group("prometheus")) for line in prometheus_lines]
    rows = [
        FIGURES_START,
        f"Measured {datetime.now(UTC):%Y-%m-%d} on {lab_bench.machine_line()}.",
        "",
        "| Figure | p50 | p95 | max |",
        "| --- | ---: | ---: | ---: |",
        row(f"Latency, create to answered status, no Prometheus ({len(plain)} runs)", [v * 1000 for v in plain], " ms"),
        row(f"Latency with Prometheus ({len(with_prometheus)} runs)", [v * 1000 for v in with_prometheus], " ms"),
        row("Time in Prometheus per investigation", prometheus_ms, " ms"),
        row("Prometheus queries per investigation", queries),
        "",
        "| Memory | Value |",
        "| --- | ---: |",
        f"| Cache allocations per 1,000 pods (tracemalloc, 5,000 pods with managedFields) | "
        f"{per_thousand / 2**20:.2f} MiB |",
        f"| Operator RSS before / after 1,000 kwok pods | {before:.0f} / {after:.0f} MiB "
        f"(+{after - before:.0f} MiB; pods ready in {elapsed:.0f} s) |",
        FIGURES_END,
    ]
    return "\n".join(rows)


def run(output: Path, count: int = 100) -> None:
    name = f"bench-operator-{os.getpid()}"
    lab = cluster.up(name)
    try:
        demo.deploy_shop(lab)
        cluster.progress("series: request and latency series for the shop, with an hour of history")
        lab.add_series(shop_series(time.time()), history_seconds=3600)
        operator.start_operator(lab, prometheus=False)
        cluster.progress(f"latency without Prometheus: {count} investigations, one at a time")
        plain = measure_latency(lab, count, "plain")
        operator.stop_operator(lab)
        operator.start_operator(lab)
        cluster.progress(f"latency with Prometheus: {count} investigations, one at a time")
        with_prometheus = measure_latency(lab, count, "prom")
        names = {f"prom-{index}" for index in range(count)}
        lines = [line for line in lab_bench.answer_lines(lab) if line.group("name").split("/")[-1] in names]
        cluster.progress("memory: the cache's allocations for synthetic pods")
        per_thousand = cache_bytes_per_thousand_pods()
        rss = operator_rss_growth(lab)
    finally:
        cluster.down(name)
    block = render(plain, with_prometheus, lines, per_thousand, rss)
    print(block)
    lab_bench.write_figures(output, block, FIGURES_START, FIGURES_END, "Benchmarks")
