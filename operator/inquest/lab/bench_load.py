"""`python -m inquest.lab bench-load`: many Investigations at once while pods churn, into docs/trust.md.

Builds a world with bench_scale's builder (by default 10,000 kwok pods in 1,000 Deployments over 10 namespaces,
10,000 Events and 50,000 series), starts the operator as its own identity with its metrics port open, answers one
Investigation to know its cache is warm, then starts a churner: threads that merge-patch an annotation on the pods,
round-robin, paced to a rate (by default 150 per second: the floor of 100 must hold while the Investigations take
the CPU). After `seconds_before` of churn, it creates every Investigation at once from parallel threads and waits
for each to conclude, while the churn goes on. Then it stops the churn and counts:

- concluded against created, by name: a missing one is listed, never dropped;
- latency from each create call to the moment one watch over the run's Investigations (AnswerWatch, as the
  scenario runner uses) first sees status.observedGeneration 1 with a Concluded reason other than Investigating;
- the churn rate three ways: the churner's own count of successful patches, the API server's (the admin's pod
  patches in the audit log) and the operator's (its `inquest_cache_updates_observed_total{kind="Pod"}`);
- the operator's requests from the audit log while the Investigations ran (see `count_audit` for the rules);
- Events whose involvedObject is one of the Investigations, per Investigation;
- rounds per Investigation from their final status, the operator's peak RSS (sampled every 0.5 s), and its
  informer restarts, informer stalls and kopf watch restarts (from its metrics, before and after).

A run whose churn fell below MIN_CHURN_PER_SECOND, or where an Investigation did not conclude, is invalid: the
figures say so, and the command exits non-zero.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from inquest.api import models
from inquest.clients.kube import api_client_from_kubeconfig
from inquest.lab import bench as lab_bench
from inquest.lab import cluster, operator, procs, stats
from inquest.lab.bench_scale import RssSampler, ScaleWorld, WorldShape, investigate_and_wait, populate
from inquest.lab.scenarios.runner import RUN_LABEL, AnswerWatch

FIGURES_START = "<!-- load-figures:start -->"
FIGURES_END = "<!-- load-figures:end -->"
NAMESPACE_PREFIX = "load"
# The floor: a run below it proves nothing about load and says so.
MIN_CHURN_PER_SECOND = 100.0
CHURN_ANNOTATION = "load.inquest.dev/tick"
# Enough for 150 a second while the API server takes up to 150 ms a patch under load.
CHURN_THREADS = 24
CREATE_THREADS = 32
# After the last answer: the Event a status patch is followed by, and the audit log's own write, land by then.
SETTLE_SECONDS = 2.0
READ_VERBS = frozenset({"get", "list", "watch"})
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


@dataclass(frozen=True)
class LoadOptions:
    pods: int = 10_000
    deployments: int = 1_000
    namespaces: int = 10
    events: int = 10_000
    series: bool = True
    investigations: int = 200
    churn_per_second: float = 150.0
    seconds_before: float = 30.0
    # Per Investigation, from its create call.
    answer_timeout: float = 900.0
    output: Path | None = Path("docs/trust.md")
    lab_name: str | None = None

    @property
    def shape(self) -> WorldShape:
        return WorldShape(self.pods, self.deployments, self.events, self.namespaces, NAMESPACE_PREFIX, self.series)


def progress(message: str) -> None:
    cluster.progress(f"[{NAMESPACE_PREFIX}] {message}")


# --- the churn -------------------------------------------------------------------------------------------------


class Churner:
    """Merge-patches CHURN_ANNOTATION on the pods, round-robin, from several threads; the n-th patch is due
    n / rate seconds after the start, and a thread that is late sends at once (it catches up)."""

    def __init__(self, kubeconfig: Path, pods: list[tuple[str, str]], rate: float, threads: int = CHURN_THREADS):
        self.rate = rate
        self._pods = pods
        self._threads = threads
        self._api = api_client_from_kubeconfig(str(kubeconfig), threads)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._next = 0
        self._workers: list[threading.Thread] = []
        self.completed: list[float] = []  # monotonic time of each successful patch
        self.failures = 0
        self.last_error = ""
        self.started = 0.0
        self.stopped = 0.0
        self.started_wall = datetime.now(UTC)
        self.stopped_wall = self.started_wall

    def start(self) -> None:
        self.started, self.started_wall = time.monotonic(), datetime.now(UTC)
        self._workers = [threading.Thread(target=self._work, name=f"churn-{index}") for index in range(self._threads)]
        self._workers.append(threading.Thread(target=self._report, name="churn-report", daemon=True))
        for worker in self._workers:
            worker.start()

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=30)
        self.stopped, self.stopped_wall = time.monotonic(), datetime.now(UTC)
        self._api.close()

    def rate_between(self, start: float, end: float) -> float:
        with self._lock:
            done = sum(1 for moment in self.completed if start <= moment <= end)
        return done / max(end - start, 1e-6)

    def _work(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                index = self._next
                self._next += 1
            delay = self.started + index / self.rate - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return
            namespace, name = self._pods[index % len(self._pods)]
            try:
                self._patch(namespace, name, index)
            except Exception as error:  # counted and shown; the run goes on (the rate says what it achieved)
                with self._lock:
                    self.failures += 1
                    self.last_error = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
            else:
                with self._lock:
                    self.completed.append(time.monotonic())

    def _patch(self, namespace: str, name: str, index: int) -> None:
        """One merge patch through the client's connection pool, its answer read as bytes: the generated
        method's argument validation and V1Pod parsing cost milliseconds of this process's CPU per call."""
        method, url, headers, body, post = self._api.param_serialize(
            method="PATCH",
            resource_path=f"/api/v1/namespaces/{namespace}/pods/{name}",
            header_params={"Content-Type": "application/merge-patch+json", "Accept": "application/json"},
            body={"metadata": {"annotations": {CHURN_ANNOTATION: str(index)}}},
            auth_settings=["BearerToken"],
        )
        response = self._api.call_api(method, url, headers, body, post, _request_timeout=30).response
        try:
            if response.status >= 400:
                raise RuntimeError(f"HTTP {response.status}: {response.data[:200].decode(errors='replace')}")
            response.data  # noqa: B018  (drained, so that the connection goes back to the pool)
        finally:
            response.release_conn()

    def _report(self) -> None:
        while not self._stop.wait(10):
            now = time.monotonic()
            recent = self.rate_between(now - 10, now)
            done = len(self.completed)
            progress(f"churn: {done} pod updates, {recent:.0f}/s over the last 10 s, {self.failures} failed")


# --- CPU, the operator's metrics and the audit log ------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds a process has used (its threads included, its children not); 0 once gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, summed over its cores (/proc/stat)."""
    values = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle and iowait
    ticks = os.sysconf("SC_CLK_TCK")
    return (sum(values) - idle) / ticks, sum(values) / ticks


class CpuWindow:
    """CPU use of the lab's components, this process and the whole machine between `start()` and `stop()`."""

    def __init__(self, lab: cluster.Lab) -> None:
        self._pids = {component: process.pid for component, process in lab.processes.items()}
        self._pids["benchmark (churner, watch)"] = os.getpid()
        self._before: dict[str, float] = {}
        self._machine_before = (0.0, 0.0)
        self._started = 0.0
        self.cores_by_component: dict[str, float] = {}
        self.machine_busy_cores = 0.0

    def start(self) -> None:
        self._before = {name: cpu_seconds(pid) for name, pid in self._pids.items()}
        self._machine_before = machine_busy_seconds()
        self._started = time.monotonic()

    def stop(self) -> None:
        seconds = max(time.monotonic() - self._started, 1e-6)
        self.cores_by_component = {
            name: (cpu_seconds(pid) - self._before[name]) / seconds for name, pid in self._pids.items()
        }
        busy, total = machine_busy_seconds()
        cores = os.cpu_count() or 1
        spent = max(total - self._machine_before[1], 1e-6)
        self.machine_busy_cores = (busy - self._machine_before[0]) / spent * cores


def scrape(port: int) -> dict[str, float]:
    """The operator's metrics, summed over labels except `kind` (kept as `name{kind}`)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    values: dict[str, float] = defaultdict(float)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            kind = sample.labels.get("kind")
            values[f"{sample.name}{{{kind}}}" if kind else sample.name] += sample.value
    return dict(values)


@dataclass
class AuditCounts:
    """The operator's requests in a window, and the admin's pod patches (the churn as the API server saw it)."""

    reads: int = 0
    watches: int = 0  # included in reads
    writes: int = 0
    status_patches: Counter[str] = field(default_factory=Counter)  # per Investigation name
    event_creates: int = 0
    other_writes: Counter[str] = field(default_factory=Counter)  # "verb resource"
    churn_patches: int = 0


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def audit_entries(path: Path) -> Iterator[dict[str, Any]]:
    """The audit log's entries by the operator or the admin, each request once (its last stage)."""
    latest: dict[str, dict[str, Any]] = {}
    with path.open(errors="replace") as log:
        for line in log:
            if cluster.OPERATOR_USER not in line and cluster.ADMIN_USER not in line:
                continue
            entry = json.loads(line)
            latest[entry["auditID"]] = entry
    yield from latest.values()


def count_audit(
    path: Path, start: datetime, end: datetime, investigations: set[str], churn_window: tuple[datetime, datetime]
) -> AuditCounts:
    """Every request of the operator's identity received in [start, end], whatever it was for, once each (a
    watch has two entries, ResponseStarted and ResponseComplete, under one auditID). A watch counts when it is
    opened: the long watches the informers and kopf opened before the window deliver during it but are not
    counted. Reads are get, list and watch; writes are the rest. Also the admin's pod patches in `churn_window`."""
    counts = AuditCounts()
    for entry in audit_entries(path):
        received = _moment(entry["requestReceivedTimestamp"])
        reference = entry.get("objectRef") or {}
        subresource = reference.get("subresource")
        resource = reference.get("resource", "") + (f"/{subresource}" if subresource else "")
        verb = entry.get("verb", "")
        user = (entry.get("user") or {}).get("username")
        if user == cluster.ADMIN_USER:
            if verb == "patch" and resource == "pods" and churn_window[0] <= received <= churn_window[1]:
                counts.churn_patches += 1
            continue
        if user != cluster.OPERATOR_USER or not start <= received <= end:
            continue
        if verb in READ_VERBS:
            counts.reads += 1
            counts.watches += int(verb == "watch")
            continue
        counts.writes += 1
        if verb == "patch" and resource == "investigations/status" and reference.get("name") in investigations:
            counts.status_patches[reference["name"]] += 1
        elif verb == "create" and resource == "events":
            counts.event_creates += 1
        else:
            counts.other_writes[f"{verb} {resource}"] += 1
    return counts


# --- the run -----------------------------------------------------------------------------------------------------


@dataclass
class ChurnFigures:
    requested: float
    seconds: float
    churner_rate: float  # over the whole churn
    window_rate: float  # while the Investigations ran
    api_server_rate: float  # from the audit log, over the whole churn
    operator_rate: float | None  # Pod updates the operator's cache saw, over the whole churn
    failures: int
    last_error: str


@dataclass
class LoadFigures:
    options: LoadOptions
    build_seconds: dict[str, float]
    series: int
    created: list[str]
    create_failures: list[str]
    create_seconds: float
    latencies: dict[str, float]  # concluded ones only
    missing: dict[str, str]  # name: what its status said at the end
    verdicts: dict[str, int]
    rounds: dict[str, int]
    events: dict[str, int]
    churn: ChurnFigures
    audit: AuditCounts
    window_seconds: float
    peak_rss_mib: float
    window_peak_rss_mib: float
    rss_before_mib: float
    operator_counters: dict[str, float]  # deltas over the run
    cpu_cores: dict[str, float]  # while the Investigations ran, by lab component
    machine_busy_cores: float  # the same window, every process on the machine

    @property
    def problems(self) -> list[str]:
        found = []
        if self.missing or self.create_failures:
            found.append(
                f"{len(self.missing) + len(self.create_failures)} of {self.options.investigations} Investigations "
                "did not conclude"
            )
        slowest_view = min(self.churn.window_rate, self.churn.api_server_rate)
        if slowest_view < MIN_CHURN_PER_SECOND:
            found.append(f"the churn fell below {MIN_CHURN_PER_SECOND:.0f} updates/s ({slowest_view:.0f}/s)")
        return found


def _investigation(name: str, target: str, run_id: str) -> dict[str, Any]:
    return {
        "apiVersion": models.API_VERSION,
        "kind": models.KIND,
        "metadata": {"name": name, "labels": {RUN_LABEL: run_id}},
        "spec": {"target": {"kind": "Deployment", "name": target}},
    }


def _create_all(
    lab: cluster.Lab, plan: list[tuple[str, str, str]], run_id: str
) -> tuple[dict[str, tuple[str, float]], list[str]]:
    """Creates every planned Investigation from parallel threads; returns name: (namespace, monotonic time of
    its create call), and the names whose create failed (with the reason)."""
    api = api_client_from_kubeconfig(str(lab.kubeconfig_admin), CREATE_THREADS)
    custom = client.CustomObjectsApi(api)
    created: dict[str, tuple[str, float]] = {}
    failures: list[str] = []
    lock = threading.Lock()

    def create(item: tuple[str, str, str]) -> None:
        name, namespace, target = item
        started = time.monotonic()
        try:
            custom.create_namespaced_custom_object(
                models.GROUP, models.VERSION, namespace, models.PLURAL, _investigation(name, target, run_id)
            )
        except Exception as error:
            with lock:
                failures.append(f"{namespace}/{name}: {type(error).__name__}: {str(error).splitlines()[0][:200]}")
            return
        with lock:
            created[name] = (namespace, started)

    try:
        with ThreadPoolExecutor(max_workers=min(CREATE_THREADS, max(1, len(plan)))) as pool:
            list(pool.map(create, plan))
    finally:
        api.close()
    return created, failures


def _wait_for_answers(
    answers: AnswerWatch, created: dict[str, tuple[str, float]], timeout: float
) -> tuple[dict[str, float], list[str]]:
    latencies: dict[str, float] = {}
    unanswered: list[str] = []
    last_report = time.monotonic()
    for index, (name, (namespace, started)) in enumerate(sorted(created.items(), key=lambda item: item[1][1])):
        answer = answers.wait(namespace, name, max(0.0, started + timeout - time.monotonic()))
        if answer is None:
            unanswered.append(name)
        else:
            latencies[name] = answer[0] - started
        if time.monotonic() - last_report >= 5 or index + 1 == len(created):
            last_report = time.monotonic()
            progress(f"concluded: {len(latencies)}/{len(created)}, not in time: {len(unanswered)}")
    return latencies, unanswered


def _final_states(world: ScaleWorld, run_id: str) -> dict[str, dict[str, Any]]:
    found: Any = world.custom.list_cluster_custom_object(
        models.GROUP, models.VERSION, models.PLURAL, label_selector=f"{RUN_LABEL}={run_id}"
    )
    return {item["metadata"]["name"]: item.get("status") or {} for item in found["items"]}


def _events_per_investigation(world: ScaleWorld, names: set[str]) -> dict[str, int]:
    counts: dict[str, int] = dict.fromkeys(names, 0)
    for namespace in world.namespaces:
        found = world.core.list_namespaced_event(namespace, field_selector=f"involvedObject.kind={models.KIND}")
        for event in found.items:
            involved = event.involved_object.name
            if involved in counts:
                # An Event posted again under the same name is counted by its count, not once.
                counts[involved] += max(1, event.count or 1)
    return counts


def _concluded_reason(status: dict[str, Any]) -> str:
    for condition in status.get("conditions") or []:
        if condition.get("type") == models.CONCLUDED:
            return str(condition.get("reason"))
    return "no Concluded condition"


def measure(lab: cluster.Lab, options: LoadOptions) -> LoadFigures:
    world = ScaleWorld(lab, options.shape)
    run_id = secrets.token_hex(4)
    try:
        populated = populate(lab, world)
        operator.stop_operator(lab)  # a lab given by name may run one already, without the metrics port
        metrics_port = procs.free_port()
        progress("starting the operator")
        process = operator.start_operator(lab, f"--metrics-port={metrics_port}")
        with RssSampler(process.pid) as sampler:
            first = world.deployments[0]
            investigate_and_wait(world, f"load-warm-up-{run_id}", first[0], first[1], timeout=600)
            rss_before = lab_bench.resident_mib(process.pid)
            progress(f"operator warm (RSS {rss_before:.0f} MiB); churning {options.churn_per_second:.0f} pod updates/s")
            before = scrape(metrics_port)
            pods = [(namespace, pod) for namespace, pod, _ in populated.pods]
            churner = Churner(lab.kubeconfig_admin, pods, options.churn_per_second)
            answers = AnswerWatch(world.custom, run_id)
            churner.start()
            try:
                time.sleep(options.seconds_before)
                answers.start()
                randomizer = random.Random(11)
                plan = []
                for index in range(options.investigations):
                    namespace, target = randomizer.choice(world.deployments)
                    plan.append((f"load-{run_id}-{index:03d}", namespace, target))
                progress(f"creating {len(plan)} Investigations at once")
                cpu = CpuWindow(lab)
                cpu.start()
                window_start, window_start_wall = time.monotonic(), datetime.now(UTC)
                created, create_failures = _create_all(lab, plan, run_id)
                create_seconds = time.monotonic() - window_start
                progress(f"{len(created)} created in {create_seconds:.1f} s; {len(create_failures)} failed")
                latencies, unanswered = _wait_for_answers(answers, created, options.answer_timeout)
                window_end = time.monotonic()
                cpu.stop()
            finally:
                churner.stop()
                answers.stop()
            time.sleep(SETTLE_SECONDS)
            audit_end_wall = datetime.now(UTC)
            after = scrape(metrics_port)
        finals = _final_states(world, run_id)
        names = set(created)
        churn_seconds = churner.stopped - churner.started
        operator_updates = after.get("inquest_cache_updates_observed_total{Pod}", 0.0) - before.get(
            "inquest_cache_updates_observed_total{Pod}", 0.0
        )
        progress("reading the audit log")
        # The operator's requests from the first create call to SETTLE_SECONDS after the last answer was seen.
        audit = count_audit(
            lab.audit_log, window_start_wall, audit_end_wall, names, (churner.started_wall, churner.stopped_wall)
        )
        counters = (
            "inquest_informer_restarts_total",
            "inquest_informer_stalls_total",
            "inquest_kopf_watch_restarts_total",
            "inquest_cache_events_evicted_total",
            "inquest_journal_records_evicted_total",
        )
        return LoadFigures(
            options=options,
            build_seconds=populated.build_seconds,
            series=populated.series,
            created=sorted(created),
            create_failures=create_failures,
            create_seconds=create_seconds,
            latencies=latencies,
            missing={name: _concluded_reason(finals.get(name, {})) for name in unanswered},
            verdicts=dict(Counter(_concluded_reason(finals.get(name, {})) for name in created)),
            rounds={name: len(finals.get(name, {}).get("rounds") or []) for name in created},
            events=_events_per_investigation(world, names),
            churn=ChurnFigures(
                requested=options.churn_per_second,
                seconds=churn_seconds,
                churner_rate=len(churner.completed) / max(churn_seconds, 1e-6),
                window_rate=churner.rate_between(window_start, window_end),
                api_server_rate=audit.churn_patches / max(churn_seconds, 1e-6),
                # Without the cache's gauges in its metrics, the operator is one that does not count updates.
                operator_rate=operator_updates / max(churn_seconds, 1e-6) if "inquest_cache_events" in after else None,
                failures=churner.failures,
                last_error=churner.last_error,
            ),
            audit=audit,
            window_seconds=window_end - window_start,
            peak_rss_mib=sampler.peak,
            window_peak_rss_mib=sampler.peak_between(window_start, window_end),
            rss_before_mib=rss_before,
            operator_counters={name: after.get(name, 0.0) - before.get(name, 0.0) for name in counters},
            cpu_cores=cpu.cores_by_component,
            machine_busy_cores=cpu.machine_busy_cores,
        )
    finally:
        operator.stop_operator(lab)
        world.close()


# --- the figures ---------------------------------------------------------------------------------------------------


def render(figures: LoadFigures) -> str:
    options = figures.options
    created = len(figures.created)
    per = max(created, 1)
    latencies = [seconds * 1000 for seconds in figures.latencies.values()]
    events = list(figures.events.values())
    rounds = list(figures.rounds.values())
    audit = figures.audit
    churn = figures.churn
    build = ", ".join(f"{step} {seconds:.0f} s" for step, seconds in figures.build_seconds.items())
    counters = figures.operator_counters

    def cells(values: list[float], unit: str) -> str:
        if not values:
            return "n/a | n/a | n/a"
        middle = stats.percentile(values, 0.5)
        return f"{middle:.0f}{unit} | {stats.percentile(values, 0.95):.0f}{unit} | {max(values):.0f}{unit}"

    problems = figures.problems
    verdict = (
        "**INVALID run: " + "; ".join(problems) + ".**"
        if problems
        else f"Valid run: every Investigation concluded and the churn stayed above {MIN_CHURN_PER_SECOND:.0f}/s."
    )
    operator_rate = f"{churn.operator_rate:.0f}/s" if churn.operator_rate is not None else "not available"
    other_writes = ", ".join(f"{what} {count}" for what, count in sorted(audit.other_writes.items())) or "none"
    lines = [
        FIGURES_START,
        f"Measured {datetime.now(UTC):%Y-%m-%d} on {lab_bench.machine_line()}.",
        "",
        f"Cluster: {options.pods:,} kwok pods in {options.deployments:,} Deployments and Services over "
        f"{options.namespaces} namespaces, {options.events:,} Events, {figures.series:,} Prometheus series "
        f"(built in: {build}). {options.investigations} Investigations created at once from "
        f"{min(CREATE_THREADS, options.investigations)} threads (all created within {figures.create_seconds:.1f} s), "
        f"after {options.seconds_before:.0f} s of churn; the churn went on until the last one concluded "
        f"({figures.window_seconds:.0f} s later).",
        "",
        verdict,
        "",
        "| Figure | p50 | p95 | max |",
        "| --- | ---: | ---: | ---: |",
        f"| Latency, create call to Concluded seen by a watch ({len(latencies)} Investigations) | "
        f"{cells(latencies, ' ms')} |",
        f"| Events per Investigation | {cells([float(count) for count in events], '')} |",
        f"| Rounds per Investigation | {cells([float(count) for count in rounds], '')} |",
        "",
        "| Figure | Value |",
        "| --- | ---: |",
        f"| Concluded / created / planned | {len(figures.latencies)} / {created} / {options.investigations} |",
        f"| Verdicts | {', '.join(f'{reason} {count}' for reason, count in sorted(figures.verdicts.items()))} |",
        f"| Churn requested | {churn.requested:.0f} pod updates/s |",
        f"| Churn achieved, the churner's count (whole churn, {churn.seconds:.0f} s) | {churn.churner_rate:.1f}/s |",
        f"| Churn achieved, the churner's count while the Investigations ran | {churn.window_rate:.1f}/s |",
        f"| Churn achieved, the API server's audit log (admin pod patches, whole churn) | "
        f"{churn.api_server_rate:.1f}/s |",
        f"| Pod updates the operator's cache saw (whole churn) | {operator_rate} |",
        f"| Churn patches failed | {churn.failures} |",
        f"| Operator API requests per Investigation: reads (get, list, watch) | {audit.reads / per:.2f} |",
        f"| Operator API requests per Investigation: writes | {audit.writes / per:.2f} |",
        f"| of which status patches / Event creates / other | {sum(audit.status_patches.values()) / per:.2f} / "
        f"{audit.event_creates / per:.2f} / {sum(audit.other_writes.values()) / per:.2f} ({other_writes}) |",
        f"| Operator watches opened during the run (in the reads) | {audit.watches} |",
        f"| Operator peak RSS, whole run (sampled every 0.5 s) | {figures.peak_rss_mib:.0f} MiB |",
        f"| Operator peak RSS while the Investigations ran | {figures.window_peak_rss_mib:.0f} MiB |",
        f"| Operator RSS once warm, before the churn | {figures.rss_before_mib:.0f} MiB |",
        f"| Informer restarts / informer stalls / kopf watch restarts during the run | "
        f"{counters.get('inquest_informer_restarts_total', 0):.0f} / "
        f"{counters.get('inquest_informer_stalls_total', 0):.0f} / "
        f"{counters.get('inquest_kopf_watch_restarts_total', 0):.0f} |",
        f"| Cache Events evicted / journal records evicted during the run | "
        f"{counters.get('inquest_cache_events_evicted_total', 0):.0f} / "
        f"{counters.get('inquest_journal_records_evicted_total', 0):.0f} |",
        "",
        f"CPU while the Investigations ran, in cores (of {os.cpu_count()}): "
        + ", ".join(f"{name} {cores:.2f}" for name, cores in sorted(figures.cpu_cores.items(), key=lambda i: -i[1]))
        + f"; the whole machine (other processes included) {figures.machine_busy_cores:.2f}.",
    ]
    if figures.missing or figures.create_failures:
        lines += ["", "Not concluded:"]
        lines += [f"- {name}: {state}" for name, state in sorted(figures.missing.items())]
        lines += [f"- create failed: {failure}" for failure in figures.create_failures]
    if churn.last_error:
        lines += ["", f"Last churn failure: {churn.last_error}"]
    lines.append(FIGURES_END)
    return "\n".join(lines)


def run(options: LoadOptions) -> LoadFigures:
    existing = cluster.Lab.load(options.lab_name) if options.lab_name else None
    name = options.lab_name or f"bench-load-{os.getpid()}"
    lab = existing or cluster.up(name)
    try:
        figures = measure(lab, options)
    finally:
        if existing is None:
            cluster.down(name)
    block = render(figures)
    print(block)
    if options.output is not None:
        lab_bench.write_figures(options.output, block, FIGURES_START, FIGURES_END, "Trust")
    return figures
