"""The operator's /metrics against the lab: a dedicated operator for one namespace, scraped as Prometheus would.

It runs beside the session operator (which, when some other test started it, watches every namespace and may
answer the Investigation first), so nothing here depends on which operator answered: only on what this one's
cache holds and on the families its exposition names.
"""

from __future__ import annotations

import sys
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from inquest.lab import cluster, procs
from inquest.lab.kubehelpers import Cluster, deployment
from inquest.lab.operator import install_api
from inquest.lab.waiting import wait_for

pytestmark = pytest.mark.lab


def scrape(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert response.status == 200
        text = response.read().decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def pods_in_cache(families: dict[str, Any]) -> int:
    objects = families.get("inquest_cache_objects")
    if objects is None:
        return -1
    return int(sum(sample.value for sample in objects.samples if sample.labels.get("kind") == "Pod"))


@pytest.fixture
def metrics_port(lab: cluster.Lab, namespace: str) -> Iterator[int]:
    """`python -m inquest run --namespace <the test's> --metrics-port <free>`, stopped at the end."""
    install_api(lab)
    health, port = procs.free_port(), procs.free_port()
    # The admin identity: with --namespace, kopf lists and watches Namespaces, which the operator's generated
    # ClusterRole does not grant (it retries 403s forever); that gap is not what this test is about.
    command = [
        sys.executable, "-m", "inquest", "run",
        f"--kubeconfig={lab.kubeconfig_admin}",
        f"--liveness=http://127.0.0.1:{health}/healthz",
        f"--namespace={namespace}",
        f"--metrics-port={port}",
    ]  # fmt: skip
    log = lab.data_dir / "logs" / f"operator-metrics-{namespace}.log"
    process = procs.start("operator-metrics", command, log)
    marker = str(lab.data_dir)
    try:
        procs.wait_until(process, marker, lambda: procs.http_ok(f"http://127.0.0.1:{health}/healthz"), 60, "alive")
        procs.wait_until(process, marker, lambda: procs.http_ok(f"http://127.0.0.1:{port}/metrics"), 10, "serving")
        yield port
    finally:
        procs.stop(process, marker)


def test_metrics_count_the_namespaces_pods_and_name_the_verdicts(
    metrics_port: int, admin_api: Any, namespace: str
) -> None:
    kube = Cluster(admin_api, namespace)
    kube.deploy(deployment("web", replicas=2))
    created = len(kube.pods("web"))
    assert created == 2
    kube.investigate("metrics", {})  # answered by this operator or the session one: either will do
    families = wait_for(
        lambda: (found := scrape(metrics_port)) and pods_in_cache(found) == created and found,
        f"the metrics to count {created} pods",
    )
    assert "inquest_investigations_answered" in families
    answered = [
        sample for sample in families["inquest_investigations_answered"].samples if sample.name.endswith("_total")
    ]
    assert all(sample.value >= 0 for sample in answered)
    assert families["inquest_investigation_duration_seconds"].type == "histogram"
    assert families["inquest_journal_records"].samples[0].value >= 0
    assert "inquest_kopf_watch_restarts" in families
