"""Replays scenarios against the lab with the real operator, in batches of scenarios that run side by side.

One batch, each scenario in its own namespace:
1. create every world and wait until it settles (pods Ready, or deliberately failing pods started);
2. date each fault (t=0) a few seconds ahead, staggered so answers do not queue behind each other, serve and
   backfill the metrics with that reference (one Prometheus restart for the batch);
3. at t=0 apply each fault; at t=after create the Investigation; a watch times the answer;
4. score, clean up. Scenarios with `prometheus: down` run in their own batches, Prometheus stopped before their
   Investigations are created and started again afterwards.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from kubernetes import watch

from inquest.api import models
from inquest.lab import bench as lab_bench
from inquest.lab import cluster, exporter, kwok, operator
from inquest.lab.scenarios import scoring
from inquest.lab.scenarios.kube import JSON_PATCH, MERGE, STRATEGIC, ScenarioKube
from inquest.lab.scenarios.model import FaultStep, PrometheusCondition, Scenario, substitute
from inquest.lab.shapes import SeriesPoint, SeriesSpec

RUN_LABEL = "bench.inquest.dev/run"
SETTLE_TIMEOUT_SECONDS = 90.0
ANSWER_TIMEOUT_SECONDS = 60.0
# Time from dating the faults to t=0: the backfill and Prometheus's restart fit in it.
LEAD_SECONDS = 20.0
STAGGER_SECONDS = 2.0


def progress(message: str) -> None:
    cluster.progress(f"[scenarios] {message}")


@dataclass
class ScenarioRun:
    scenario: Scenario
    namespace: str
    cluster_objects: list[tuple[str, str]] = field(default_factory=list)
    series: list[SeriesSpec] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    fault_time: float = 0.0
    created_monotonic: float | None = None
    answered_monotonic: float | None = None
    status: dict[str, Any] | None = None
    error: str | None = None

    @property
    def manifests(self) -> list[dict[str, Any]]:
        return [substitute(manifest, self.namespace) for manifest in self.scenario.world]


class AnswerWatch:
    """One watch over this run's Investigations: records when each is first seen answered (generation 1).
    `custom` is a CustomObjectsApi; the Investigations carry the label RUN_LABEL=run_id."""

    def __init__(self, custom: Any, run_id: str) -> None:
        self._custom = custom
        self._run_id = run_id
        self._answers: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        self._condition = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="answer-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            stream = watch.Watch()  # type: ignore[no-untyped-call]
            try:
                for event in stream.stream(  # type: ignore[no-untyped-call]
                    self._custom.list_cluster_custom_object,
                    models.GROUP,
                    models.VERSION,
                    models.PLURAL,
                    label_selector=f"{RUN_LABEL}={self._run_id}",
                    timeout_seconds=30,
                ):
                    self._observe(event["object"])
                    if self._stop.is_set():
                        break
            except Exception as error:  # a dropped watch is re-established; answers are also polled on timeout
                if self._stop.is_set():  # the lab went down after the run: nothing to say
                    break
                progress(f"answer watch restarted after {type(error).__name__}")
                time.sleep(0.5)
            finally:
                stream.stop()  # type: ignore[no-untyped-call]

    def _observe(self, investigation: dict[str, Any]) -> None:
        seen = time.monotonic()
        status = investigation.get("status") or {}
        reason = scoring.concluded_reason(status)
        if status.get("observedGeneration") != 1 or reason in (None, "Investigating"):
            return
        key = (investigation["metadata"]["namespace"], investigation["metadata"]["name"])
        with self._condition:
            self._answers.setdefault(key, (seen, status))
            self._condition.notify_all()

    def wait(self, namespace: str, name: str, timeout: float) -> tuple[float, dict[str, Any]] | None:
        deadline = time.monotonic() + timeout
        with self._condition:
            while (namespace, name) not in self._answers:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._condition.wait(min(remaining, 1.0))
            return self._answers[(namespace, name)]


class Runner:
    def __init__(self, lab: cluster.Lab, parallel: int = 8) -> None:
        self.lab = lab
        self.parallel = max(1, parallel)
        self.kube = ScenarioKube(lab, pool_size=4 * self.parallel)
        self.run_id = secrets.token_hex(4)
        self.answers = AnswerWatch(self.kube.custom, self.run_id)

    def close(self) -> None:
        self.answers.stop()
        self.kube.close()

    def run(self, scenarios: list[Scenario]) -> list[scoring.ScenarioScore]:
        self.answers.start()
        # Scenarios of like length share a batch, so short ones do not wait for long ones.
        by_length = sorted(scenarios, key=lambda s: (s.duration_seconds, s.name))
        down = [s for s in by_length if s.conditions.prometheus == PrometheusCondition.DOWN]
        up = [s for s in by_length if s.conditions.prometheus != PrometheusCondition.DOWN]
        batches = [(batch, False) for batch in _chunks(up, self.parallel)]
        batches += [(batch, True) for batch in _chunks(down, self.parallel)]
        scores: list[scoring.ScenarioScore] = []
        for index, (batch, prometheus_down) in enumerate(batches, start=1):
            names = ", ".join(s.name for s in batch)
            condition = ", Prometheus down" if prometheus_down else ""
            progress(f"batch {index}/{len(batches)} ({len(batch)} scenarios{condition}): {names}")
            scores += self._run_batch(batch, prometheus_down)
            done = len(scores)
            right = sum(1 for s in scores if s.top1)
            progress(f"{done}/{len(scenarios)} scenarios done, top1 right so far {right}/{done}")
        return sorted(scores, key=lambda score: score.name)

    # --- one batch ------------------------------------------------------------------------------------------

    def _run_batch(self, batch: list[Scenario], prometheus_down: bool) -> list[scoring.ScenarioScore]:
        runs = [ScenarioRun(s, f"sc-{s.name}-{secrets.token_hex(2)}") for s in batch]
        if not self.lab.alive(operator.COMPONENT):
            # Never score a batch against no operator: that would count as wrong answers, not as a dead process.
            progress("the operator is not running (stopped from outside?); starting it again")
            operator.start_operator(self.lab)
            for run in runs:
                run.notes.append("the operator had stopped before this batch and was started again")
        try:
            self._each(runs, self._create_world, "create the world")
            self._each(runs, self._settle, "settle")
            self._publish_metrics(runs)
            if prometheus_down:
                self._stop_prometheus_before_first_investigation(runs)
            self._each(runs, self._fault_and_investigate, "fault and investigate")
        finally:
            if prometheus_down and not self.lab.alive("prometheus"):
                progress("starting Prometheus again")
                self.lab.start_component("prometheus")
            # The operator's log, read once for the batch: each scenario's line gives its query count and time.
            answers = {
                line.group("name"): line for line in lab_bench.answer_lines(self.lab) if line.group("generation") == "1"
            }
            scores = [self._score(run, answers.get(f"{run.namespace}/{run.scenario.name}")) for run in runs]
            self._cleanup(runs)
        return scores

    def _each(self, runs: list[ScenarioRun], step: Callable[[ScenarioRun], None], title: str) -> None:
        def guarded(run: ScenarioRun) -> None:
            if run.error is not None:
                return
            try:
                step(run)
            except Exception as error:
                run.error = f"{title}: {type(error).__name__}: {_short(error)}"
                progress(f"{run.scenario.name}: FAILED to {run.error}")

        with ThreadPoolExecutor(max_workers=self.parallel) as pool:
            list(pool.map(guarded, runs))

    def _create_world(self, run: ScenarioRun) -> None:
        namespace_body: Any = {"metadata": {"name": run.namespace, "labels": {RUN_LABEL: self.run_id}}}
        self.kube.core.create_namespace(namespace_body)
        cluster.wait_for_default_service_account(self.lab, run.namespace)
        for manifest in run.manifests:
            kind, namespace, name = self.kube.create(manifest, run.namespace)
            if namespace is None:
                run.cluster_objects.append((kind, name))

    def _settle(self, run: ScenarioRun) -> None:
        deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
        waiting: list[str] = []
        while time.monotonic() < deadline:
            waiting = self._unsettled(run.namespace)
            if not waiting:
                return
            time.sleep(0.5)
        run.notes.append(f"not settled after {SETTLE_TIMEOUT_SECONDS:.0f}s: {', '.join(waiting[:5])}")
        progress(f"{run.scenario.name}: {run.notes[-1]}; going on")

    def _unsettled(self, namespace: str) -> list[str]:
        waiting = []
        for workload_kind in ("Deployment", "StatefulSet", "ReplicaSet"):
            for item in self.kube.list_items(workload_kind, namespace):
                if workload_kind == "ReplicaSet" and item["metadata"].get("ownerReferences"):
                    continue
                spec, status = item.get("spec") or {}, item.get("status") or {}
                wanted = spec.get("replicas", 1)
                have = status.get("replicas") or 0
                if have < wanted:
                    waiting.append(f"{workload_kind}/{item['metadata']['name']} has {have}/{wanted} pods")
        for pod in self.kube.list_items("Pod", namespace):
            if not _pod_settled(pod):
                waiting.append(f"Pod/{pod['metadata']['name']}")
        return waiting

    def _publish_metrics(self, runs: list[ScenarioRun]) -> None:
        now = time.time()
        live = [run for run in runs if run.error is None]
        for offset, run in enumerate(live):
            run.fault_time = now + LEAD_SECONDS + offset * STAGGER_SECONDS
            if run.scenario.conditions.prometheus != PrometheusCondition.ABSENT:
                run.series = self._series_for(run)
        specs = [spec for run in live for spec in run.series]
        if live:
            last = max(run.fault_time + run.scenario.investigation.after for run in live)
            progress(
                f"faults from {time.strftime('%H:%M:%S', time.localtime(now + LEAD_SECONDS))}; "
                f"the last Investigation is created in {last - now:.0f} s"
            )
        if not specs:
            return
        history = max(run.scenario.history_seconds for run in live)
        progress(f"serving {len(specs)} series with {history / 3600:g} h of history (Prometheus restarts)")
        self.lab.add_series(specs, history_seconds=history + LEAD_SECONDS)

    def _series_for(self, run: ScenarioRun) -> list[SeriesSpec]:
        specs = []
        history_start = -run.scenario.history_seconds - LEAD_SECONDS
        for series in run.scenario.metrics:
            points = list(series.points)
            if points[0].at > history_start:
                # The first value holds back to the start of the history.
                points = [SeriesPoint(at=history_start, value=points[0].value), *points]
            template = series.model_copy(update={"points": points, "labels": substitute(series.labels, run.namespace)})
            base = {"namespace": run.namespace}
            if series.for_each_pod is None:
                specs.append(template.spec(run.fault_time, base))
                continue
            for pod in self.kube.list_items("Pod", run.namespace):
                labels = pod["metadata"].get("labels") or {}
                if all(labels.get(key) == value for key, value in series.for_each_pod.items()):
                    container = pod["spec"]["containers"][0]["name"]
                    extra = {**base, "pod": pod["metadata"]["name"], "container": container}
                    specs.append(template.spec(run.fault_time, extra))
        return specs

    def _stop_prometheus_before_first_investigation(self, runs: list[ScenarioRun]) -> None:
        starts = [run.fault_time + run.scenario.investigation.after for run in runs if run.error is None]
        if not starts:
            return

        def stop_later() -> None:
            time.sleep(max(0.0, min(starts) - 2.0 - time.time()))
            progress("stopping Prometheus (scenarios with prometheus: down)")
            self.lab.stop_component("prometheus")

        threading.Thread(target=stop_later, name="stop-prometheus", daemon=True).start()

    def _fault_and_investigate(self, run: ScenarioRun) -> None:
        _sleep_until(run.fault_time)
        for step in run.scenario.fault:
            self._apply(run, step)
        _sleep_until(run.fault_time + run.scenario.investigation.after)
        body = {
            "apiVersion": models.API_VERSION,
            "kind": models.KIND,
            "metadata": {"name": run.scenario.name, "labels": {RUN_LABEL: self.run_id}},
            "spec": substitute(run.scenario.investigation.spec, run.namespace),
        }
        run.created_monotonic = time.monotonic()
        self.kube.custom.create_namespaced_custom_object(
            models.GROUP, models.VERSION, run.namespace, models.PLURAL, body
        )
        answer = self.answers.wait(run.namespace, run.scenario.name, ANSWER_TIMEOUT_SECONDS)
        if answer is None:
            run.error = f"no answer within {ANSWER_TIMEOUT_SECONDS:.0f}s of creating the Investigation"
            return
        run.answered_monotonic, run.status = answer

    def _apply(self, run: ScenarioRun, step: FaultStep) -> None:
        namespace = run.namespace
        if step.wait is not None:
            time.sleep(step.wait)
        elif step.create is not None:
            kind, created_namespace, name = self.kube.create(substitute(step.create, namespace), namespace)
            if created_namespace is None:
                run.cluster_objects.append((kind, name))
        elif step.delete is not None:
            self.kube.delete(step.delete.kind, substitute(step.delete.name, namespace), namespace)
        elif step.scale is not None:
            replicas = {"spec": {"replicas": step.scale.replicas}}
            self.kube.patch(step.scale.kind, substitute(step.scale.name, namespace), namespace, replicas, MERGE)
        elif step.patch is not None:
            patch = step.patch
            body: Any
            if patch.strategic is not None:
                body, content_type = patch.strategic, STRATEGIC
            elif patch.merge is not None:
                body, content_type = patch.merge, MERGE
            else:
                body, content_type = patch.json_patch, JSON_PATCH
            name = substitute(patch.name, namespace)
            self.kube.patch(patch.kind, name, namespace, substitute(body, namespace), content_type)
        elif step.annotate is not None:
            annotate = step.annotate
            annotations = {"metadata": {"annotations": substitute(annotate.annotations, namespace)}}
            if annotate.name is not None:
                names = [substitute(annotate.name, namespace)]
            else:
                names = self.kube.names_matching(annotate.kind, namespace, annotate.selector or {})
                if not names:
                    run.notes.append(f"annotate: no {annotate.kind} matched {annotate.selector}")
            for name in names:
                self.kube.patch(annotate.kind, name, namespace, annotations, MERGE)

    # --- scores and cleanup ----------------------------------------------------------------------------------

    def _score(self, run: ScenarioRun, line: re.Match[str] | None) -> scoring.ScenarioScore:
        scenario = run.scenario
        if run.status is None:
            result = scoring.failed(scenario.name, scenario.expect, run.error or "not run")
        else:
            result = scoring.score(scenario.name, scenario.expect.resolved(run.namespace), run.namespace, run.status)
            assert run.created_monotonic is not None
            assert run.answered_monotonic is not None
            result.latency_millis = round((run.answered_monotonic - run.created_monotonic) * 1000, 1)
            if line is not None:
                result.operator_millis = float(line.group("total"))
                result.prometheus_millis = float(line.group("prometheus"))
                result.prometheus_queries = int(line.group("queries"))
        result.tags = list(scenario.tags)
        result.notes = list(run.notes)
        return result

    def _cleanup(self, runs: list[ScenarioRun]) -> None:
        current = exporter.read_series_file(self.lab.series_file)
        finished = {run.namespace for run in runs}
        exporter.write_series_file(
            self.lab.series_file, [spec for spec in current if spec.labels.get("namespace") not in finished]
        )
        for run in runs:
            for kind, name in run.cluster_objects:
                try:
                    self.kube.delete(kind, name, None)
                except Exception as error:
                    progress(f"{run.scenario.name}: could not delete {kind}/{name}: {_short(error)}")
            try:
                self.kube.core.delete_namespace(run.namespace)
            except Exception as error:
                progress(f"{run.scenario.name}: could not delete namespace {run.namespace}: {_short(error)}")


def _pod_settled(pod: dict[str, Any]) -> bool:
    """Ready; or deliberately failing (a simulated failure has started, or the pod cannot be scheduled); or done."""
    status = pod.get("status") or {}
    phase = status.get("phase")
    if phase in ("Succeeded", "Failed"):
        return True
    conditions = {c["type"]: c for c in status.get("conditions") or []}
    if conditions.get("Ready", {}).get("status") == "True":
        return True
    scheduled = conditions.get("PodScheduled", {})
    if scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
        return True
    annotations = pod["metadata"].get("annotations") or {}
    return kwok.POD_FAILURE_ANNOTATION in annotations and bool(status.get("containerStatuses"))


def _chunks(items: list[Scenario], size: int) -> Iterator[list[Scenario]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.time()))


def _short(error: Exception, limit: int = 400) -> str:
    text = str(error).replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "..."


@contextmanager
def operator_for(lab: cluster.Lab) -> Iterator[None]:
    """The operator as its own process; started here unless one runs already (then left running)."""
    started = not lab.alive(operator.COMPONENT)
    if started:
        operator.start_operator(lab)
    try:
        yield
    finally:
        if started:
            operator.stop_operator(lab)
