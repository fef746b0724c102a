"""`python -m inquest.lab bench-scale`: the operator against a large cluster, into docs/benchmarks.md.

Builds, in a lab: 10,000 kwok pods from 1,000 Deployments (10 namespaces), 100,000 Events about them and about
50,000 Prometheus series (five per pod, scraped live). Then starts the operator, as its own identity, and measures:
the warm-up (operator start to the first answered Investigation, created as soon as it is alive: kopf lists every
watched kind first), the latency of 100 Investigations one at a time, the operator's peak resident memory
(sampled every 0.5 s from its start), and the Prometheus queries per investigation (from its answer log lines).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from inquest.api import models
from inquest.clients.kube import api_client_from_kubeconfig
from inquest.lab import bench as lab_bench
from inquest.lab import cluster, exporter, operator, stats
from inquest.lab.shapes import SeriesSpec
from inquest.lab.waiting import wait_for

FIGURES_START = "<!-- scale-figures:start -->"
FIGURES_END = "<!-- scale-figures:end -->"
NAMESPACE_PREFIX = "scale"
NODE_PODS = 1000
WORKERS = 8

T = TypeVar("T")


@dataclass(frozen=True)
class WorldShape:
    """What `populate` builds: kwok pods from Deployments (each with a Service) spread over namespaces named
    `{prefix}-NN`, Events about the pods, and five Prometheus series per pod (when `series`)."""

    pods: int = 10_000
    deployments: int = 1_000
    events: int = 100_000
    namespaces: int = 10
    prefix: str = NAMESPACE_PREFIX
    series: bool = True


@dataclass(frozen=True)
class ScaleOptions:
    pods: int = 10_000
    deployments: int = 1_000
    events: int = 100_000
    namespaces: int = 10
    investigations: int = 100
    output: Path | None = Path("docs/benchmarks.md")
    lab_name: str | None = None

    @property
    def shape(self) -> WorldShape:
        return WorldShape(self.pods, self.deployments, self.events, self.namespaces)


@dataclass
class ScaleFigures:
    options: ScaleOptions
    build_seconds: dict[str, float]
    series: int
    warm_up_seconds: float
    latencies: list[float]
    queries: list[int]
    prometheus_millis: list[float]
    peak_rss_mib: float
    rss_after_mib: float


def progress(message: str, prefix: str = NAMESPACE_PREFIX) -> None:
    cluster.progress(f"[{prefix}] {message}")


def parallel(
    items: list[T], work: Callable[[T], Any], title: str, report_every: int, prefix: str = NAMESPACE_PREFIX
) -> float:
    """Runs `work` over the items on a thread pool, reporting progress; returns the seconds taken."""
    started = time.monotonic()
    done = 0
    lock = threading.Lock()

    def counted(item: T) -> None:
        nonlocal done
        work(item)
        with lock:
            done += 1
            if done % report_every == 0 or done == len(items):
                rate = done / max(time.monotonic() - started, 1e-6)
                progress(f"{title}: {done}/{len(items)} ({rate:.0f}/s)", prefix)

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        list(pool.map(counted, items))
    return time.monotonic() - started


def _created_or_present(create: Callable[[], object]) -> None:
    try:
        create()
    except ApiException as error:
        if error.status != 409:
            raise


class ScaleWorld:
    def __init__(self, lab: cluster.Lab, shape: WorldShape) -> None:
        self.lab = lab
        self.shape = shape
        self.api = api_client_from_kubeconfig(str(lab.kubeconfig_admin), 2 * WORKERS)
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)
        self.namespaces = [f"{shape.prefix}-{index:02d}" for index in range(shape.namespaces)]
        per_namespace = shape.deployments // shape.namespaces
        self.deployments = [(ns, f"svc-{index:03d}") for ns in self.namespaces for index in range(per_namespace)]
        self.replicas = max(1, shape.pods // max(1, len(self.deployments)))

    def progress(self, message: str) -> None:
        progress(message, self.shape.prefix)

    def close(self) -> None:
        self.api.close()

    def build(self) -> dict[str, float]:
        seconds: dict[str, float] = {}
        nodes = -(-self.shape.pods // NODE_PODS) + 1
        started = time.monotonic()
        for index in range(nodes):
            name = f"{self.shape.prefix}-node-{index:02d}"
            if not cluster.exists(self.lab, f"/api/v1/nodes/{name}"):
                # Room for 1,000 pods of 100m CPU and 256Mi memory each.
                cluster.add_node(self.lab, name, cpu="128", memory="512Gi", pods=str(NODE_PODS))
        seconds["nodes"] = time.monotonic() - started
        self.progress(f"{nodes} nodes added")
        for namespace in self.namespaces:
            # A lab given by name may hold the world from an earlier run: what exists is kept.
            if not cluster.exists(self.lab, f"/api/v1/namespaces/{namespace}"):
                self.lab.api("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
        for namespace in self.namespaces:
            cluster.wait_for_default_service_account(self.lab, namespace)
        seconds["deployments"] = parallel(
            self.deployments, self._create_deployment, "Deployments and Services", 100, self.shape.prefix
        )
        started = time.monotonic()
        wait_for(self._pods_ready, f"{self.shape.pods} pods ready", timeout=1800, interval=5)
        seconds["pods ready"] = time.monotonic() - started
        return seconds

    def _create_deployment(self, item: tuple[str, str]) -> None:
        namespace, name = item
        depends = f"svc-{(int(name[-3:]) + 1) % len(self.deployments):03d}.{namespace}.svc:8080"
        body: Any = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": self.replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {
                        "containers": [
                            {
                                "name": "app",
                                "image": f"registry.example.com/{name}:1.0",
                                "ports": [{"containerPort": 8080}],
                                "env": [{"name": "UPSTREAM_ADDR", "value": depends}],
                                "resources": {"limits": {"memory": "256Mi", "cpu": "100m"}},
                            }
                        ]
                    },
                },
            },
        }
        _created_or_present(lambda: self.apps.create_namespaced_deployment(namespace, body))
        service: Any = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [{"port": 8080, "targetPort": 8080}]},
        }
        _created_or_present(lambda: self.core.create_namespaced_service(namespace, service))

    def _pods_ready(self) -> bool:
        ready = 0
        for namespace in self.namespaces:
            for deployment in self.apps.list_namespaced_deployment(namespace).items:
                ready += (deployment.status.ready_replicas or 0) if deployment.status else 0
        wanted = self.replicas * len(self.deployments)
        self.progress(f"pods ready: {ready}/{wanted}")
        return ready >= wanted

    def pods(self) -> list[tuple[str, str, str]]:
        """(namespace, pod, app) of every pod, read page by page."""
        found: list[tuple[str, str, str]] = []
        for namespace in self.namespaces:
            token = None
            while True:
                page: Any = self.core.list_namespaced_pod(namespace, limit=500, _continue=token)
                for pod in page.items:
                    found.append((namespace, str(pod.metadata.name), str((pod.metadata.labels or {}).get("app", ""))))
                token = page.metadata._continue
                if not token:
                    break
        return found

    def series(self, pods: list[tuple[str, str, str]]) -> list[SeriesSpec]:
        now = time.time()
        specs = []

        def spec(name: str, kind: str, labels: dict[str, str], value: float) -> SeriesSpec:
            return SeriesSpec(
                name=name,
                type="counter" if kind == "counter" else "gauge",
                labels=labels,
                points=[{"at": 0, "value": value}],
                reference_time=now,
            )

        for namespace, pod, app in pods:
            base = {"namespace": namespace, "pod": pod}
            container = {**base, "container": "app"}
            specs += [
                spec("http_requests_total", "counter", {**base, "service": app, "code": "200"}, 10.0),
                spec("http_requests_total", "counter", {**base, "service": app, "code": "500"}, 0.01),
                spec("container_cpu_usage_seconds_total", "counter", container, 0.02),
                spec("container_memory_working_set_bytes", "gauge", container, 64 * 2**20),
                spec(
                    "kube_pod_container_resource_limits",
                    "gauge",
                    {**container, "resource": "memory", "unit": "byte"},
                    256 * 2**20,
                ),
            ]
        return specs

    def events(self, pods: list[tuple[str, str, str]]) -> float:
        reasons = [("Normal", "Scheduled"), ("Normal", "Pulled"), ("Normal", "Created"), ("Normal", "Started")]
        reasons += [("Warning", "BackOff"), ("Warning", "Unhealthy")]
        plan = [(index, pods[index % len(pods)], reasons[index % len(reasons)]) for index in range(self.shape.events)]

        def post(item: tuple[int, tuple[str, str, str], tuple[str, str]]) -> None:
            index, (namespace, pod, _), (event_type, reason) = item
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            body: Any = {
                "metadata": {"name": f"{pod}.{index:06x}"},
                "involvedObject": {"kind": "Pod", "namespace": namespace, "name": pod, "apiVersion": "v1"},
                "reason": reason,
                "message": f"{reason} for container app (scale benchmark event {index})",
                "type": event_type,
                "source": {"component": "kubelet"},
                "firstTimestamp": stamp,
                "lastTimestamp": stamp,
                "count": 1,
            }
            self.core.create_namespaced_event(namespace, body)

        return parallel(plan, post, "Events", max(1, min(5000, self.shape.events // 10)), self.shape.prefix)


class RssSampler:
    """Samples a process's resident memory every 0.5 s in a thread, from `with` to its end."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0.0
        self.samples: list[tuple[float, float]] = []  # (monotonic time, MiB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            resident = lab_bench.resident_mib(self.pid)
            self.samples.append((time.monotonic(), resident))
            self.peak = max(self.peak, resident)
            self._stop.wait(0.5)

    def peak_between(self, start: float, end: float) -> float:
        return max((mib for moment, mib in self.samples if start <= moment <= end), default=0.0)


def investigate_and_wait(world: ScaleWorld, name: str, namespace: str, target: str, timeout: float) -> float:
    body = {
        "apiVersion": models.API_VERSION,
        "kind": models.KIND,
        "metadata": {"name": name},
        "spec": {"target": {"kind": "Deployment", "name": target}},
    }
    started = time.monotonic()
    world.custom.create_namespaced_custom_object(models.GROUP, models.VERSION, namespace, models.PLURAL, body)

    def answered() -> bool:
        found: Any = world.custom.get_namespaced_custom_object(
            models.GROUP, models.VERSION, namespace, models.PLURAL, name
        )
        return bool((found.get("status") or {}).get("observedGeneration") == 1)

    wait_for(answered, f"Investigation {namespace}/{name}", timeout=timeout, interval=0.01)
    return time.monotonic() - started


@dataclass
class Populated:
    build_seconds: dict[str, float]
    pods: list[tuple[str, str, str]]  # (namespace, pod, app)
    series: int


def populate(lab: cluster.Lab, world: ScaleWorld) -> Populated:
    """Builds the world's shape into the lab and waits until Prometheus has scraped its series."""
    shape = world.shape
    series_text = f" and {shape.pods * 5} series" if shape.series else ""
    world.progress(
        f"building {shape.pods} pods in {shape.deployments} Deployments over {shape.namespaces} namespaces, "
        f"{shape.events} Events{series_text}"
    )
    build_seconds = world.build()
    pods = world.pods()
    specs = world.series(pods) if shape.series else []
    if specs:
        exporter.write_series_file(lab.series_file, [*exporter.read_series_file(lab.series_file), *specs])
        world.progress(f"{len(specs)} series served by the exporter")
    if shape.events:
        build_seconds["events"] = world.events(pods)
    if specs:
        wait_for(
            lambda: _scraped_series(lab, world.shape.prefix) >= len(specs),
            f"Prometheus to scrape {len(specs)} series",
            timeout=300,
        )
    return Populated(build_seconds, pods, len(specs))


def measure(lab: cluster.Lab, options: ScaleOptions) -> ScaleFigures:
    world = ScaleWorld(lab, options.shape)
    try:
        populated = populate(lab, world)
        build_seconds = populated.build_seconds
        operator.stop_operator(lab)  # a lab given by name may run one already: warm-up starts from nothing
        progress("starting the operator")
        started = time.monotonic()
        process = operator.start_operator(lab)
        with RssSampler(process.pid) as sampler:
            first = world.deployments[0]
            investigate_and_wait(world, "scale-warm-up", first[0], first[1], timeout=600)
            warm_up = time.monotonic() - started
            progress(f"warm-up: first answer {warm_up:.1f} s after the operator started")
            randomizer = random.Random(7)
            latencies = []
            for index in range(options.investigations):
                namespace, target = randomizer.choice(world.deployments)
                latencies.append(investigate_and_wait(world, f"scale-{index:03d}", namespace, target, timeout=60))
                if (index + 1) % 10 == 0:
                    progress(f"investigations: {index + 1}/{options.investigations}")
            rss_after = lab_bench.resident_mib(process.pid)
        names = {f"scale-{index:03d}" for index in range(options.investigations)}
        lines = [line for line in lab_bench.answer_lines(lab) if line.group("name").split("/")[-1] in names]
        return ScaleFigures(
            options=options,
            build_seconds=build_seconds,
            series=populated.series,
            warm_up_seconds=warm_up,
            latencies=latencies,
            queries=[int(line.group("queries")) for line in lines],
            prometheus_millis=[float(line.group("prometheus")) for line in lines],
            peak_rss_mib=sampler.peak,
            rss_after_mib=rss_after,
        )
    finally:
        operator.stop_operator(lab)
        world.close()


def _scraped_series(lab: cluster.Lab, prefix: str = NAMESPACE_PREFIX) -> int:
    import json
    import urllib.parse
    import urllib.request

    query = urllib.parse.urlencode({"query": 'count({__name__=~"http_requests_total|container_.*|kube_pod_.*"})'})
    try:
        with urllib.request.urlopen(f"{lab.prometheus_url}/api/v1/query?{query}", timeout=10) as response:
            result = json.loads(response.read())["data"]["result"]
    except OSError:
        return 0
    count = int(float(result[0]["value"][1])) if result else 0
    progress(f"Prometheus holds {count} of the series", prefix)
    return count


def render(figures: ScaleFigures) -> str:
    options = figures.options
    latencies = [value * 1000 for value in figures.latencies]
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    build = ", ".join(f"{step} {seconds:.0f} s" for step, seconds in figures.build_seconds.items())

    def cells(values: list[float], unit: str) -> str:
        if not values:
            return "n/a | n/a | n/a"
        middle = stats.percentile(values, 0.5)
        return f"{middle:.0f}{unit} | {stats.percentile(values, 0.95):.0f}{unit} | {max(values):.0f}{unit}"

    lines = [
        FIGURES_START,
        f"Measured {today} on {lab_bench.machine_line()}.",
        "",
        f"Cluster: {options.pods:,} kwok pods in {options.deployments:,} Deployments and Services over "
        f"{options.namespaces} namespaces, {options.events:,} Events, {figures.series:,} Prometheus series "
        f"(built in: {build}).",
        "",
        "| Figure | p50 | p95 | max |",
        "| --- | ---: | ---: | ---: |",
        f"| Latency, create to answered status ({len(latencies)} Investigations) | {cells(latencies, ' ms')} |",
        f"| Time in Prometheus per investigation | {cells(figures.prometheus_millis, ' ms')} |",
        f"| Prometheus queries per investigation | {cells([float(q) for q in figures.queries], '')} |",
        "",
        "| Figure | Value |",
        "| --- | ---: |",
        f"| Warm-up: operator start to its first answer (the informers list every watched kind first) | "
        f"{figures.warm_up_seconds:.1f} s |",
        f"| Operator peak RSS (sampled every 0.5 s from its start) | {figures.peak_rss_mib:.0f} MiB |",
        f"| Operator RSS after the investigations | {figures.rss_after_mib:.0f} MiB |",
        FIGURES_END,
    ]
    return "\n".join(lines)


def run(options: ScaleOptions) -> ScaleFigures:
    existing = cluster.Lab.load(options.lab_name) if options.lab_name else None
    name = options.lab_name or f"bench-scale-{os.getpid()}"
    lab = existing or cluster.up(name)
    try:
        figures = measure(lab, options)
    finally:
        if existing is None:
            cluster.down(name)
    block = render(figures)
    print(block)
    if options.output is not None:
        lab_bench.write_figures(options.output, block, FIGURES_START, FIGURES_END, "Benchmarks")
    return figures
