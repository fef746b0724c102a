"""From query results to what the engine reads: MetricSignals on objects, MetricEdges between them, and notes.

Series are mapped to objects (a pod to its workload through the snapshot, a Service, a node ...), combined per
object (a workload's pods summed or maxed), and each combined series goes through onset detection. Then the
two views of a call are compared, because their disagreement locates the fault:

- callers see errors, the callee sees no requests: traffic does not reach it (a Service selector or port, a
  NetworkPolicy): `network_errors` on the callee's Service, which the NetworkPolicy detector counts as
  failure evidence, and a note naming the likely wiring;
- callers see errors, the callee sees traffic but no errors: they fail between the two: `network_errors`;
- callers see latency rise while the callee's own latency is flat: `network_latency` on the callee's Service.

Gaps become notes and never read as health: targets down (up == 0), series that stop while their pod still
exists, metrics of pods that no longer exist, failed queries, namespaces without request metrics.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from statistics import median
from typing import Protocol

from inquest.engine.context import Direction, MetricEdge, MetricSignal, Signal
from inquest.engine.objects import CronJob, Job, Pod, Service, Workload
from inquest.engine.refs import CLUSTER_SCOPED_KINDS, ObjectRef
from inquest.engine.snapshot import ClusterSnapshot
from inquest.metrics.catalog import Catalog, Kind, ObjectLabel, Plan, PlannedQuery, QueryTemplate, Scope, Side
from inquest.metrics.onset import Onset, OnsetPolicy, Sample, clean, detect_onset

# Label values that name nothing (Istio writes "unknown" for calls it could not attribute).
_UNKNOWN_VALUES = frozenset({"", "unknown", "-", "<nil>"})
_WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job", "ReplicaSet")
# web-7d9f8c6b5-x2x9z: a Deployment's pod (ReplicaSet hash, then the pod suffix); db-0: a StatefulSet's.
_DEPLOYMENT_POD = re.compile(r"(.+)-[a-z0-9]{5,10}-[a-z0-9]{5}")
_STATEFUL_POD = re.compile(r"(.+)-\d+")
_MAX_NAMES = 3
_FINISHED = frozenset({"Succeeded", "Failed"})  # finished pods stop exporting metrics by design
# The callee lost at least this share of what its callers see failing: those requests never reached it.
_LOST_SHARE = 0.5
_MAX_WARNING_CHARS = 200


class ResultLike(Protocol):
    """What build_signals reads of a Prometheus range-query result (the client's QueryResult fits)."""

    @property
    def series(self) -> Sequence[tuple[Mapping[str, str], Sequence[tuple[float, float]]]]: ...

    @property
    def error(self) -> str | None: ...

    @property
    def partial(self) -> bool: ...

    @property
    def warnings(self) -> Sequence[str]: ...


@dataclass(frozen=True, slots=True)
class QueryOutcome:
    """A plain result, for callers and tests that do not go through the HTTP client."""

    series: Sequence[tuple[Mapping[str, str], Sequence[tuple[float, float]]]] = ()
    error: str | None = None
    partial: bool = False
    warnings: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class MetricsAnalysis:
    signals: tuple[MetricSignal, ...] = ()
    edges: tuple[MetricEdge, ...] = ()
    notes: tuple[str, ...] = ()  # for DataSources.notes: every gap and contradiction, said plainly
    services_without_request_metrics: tuple[ObjectRef, ...] = ()
    # No request series at all, or only failed or partial answers: request metrics there cannot clear anything.
    namespaces_without_request_metrics: tuple[str, ...] = ()
    # Queries of the window that failed or came back partial: what was seen may be missing what matters.
    incomplete_queries: int = 0


def label(ref: ObjectRef) -> str:
    return f"{ref.kind} {ref.namespace}/{ref.name}" if ref.namespace else f"{ref.kind} {ref.name}"


def _shorten(text: str) -> str:
    """A server's own words (a warning) in one line of bounded length."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= _MAX_WARNING_CHARS else flat[: _MAX_WARNING_CHARS - 1] + "…"


def _clock(moment: float) -> str:
    return datetime.fromtimestamp(moment, tz=UTC).strftime("%H:%M:%SZ")


def _names(refs: Iterable[ObjectRef]) -> str:
    names = sorted({ref.name for ref in refs})
    shown = ", ".join(names[:_MAX_NAMES])
    return shown + (f" and {len(names) - _MAX_NAMES} more" if len(names) > _MAX_NAMES else "")


class _Resolver:
    """Label values to ObjectRefs through the snapshot, with the lookups cached."""

    def __init__(self, snapshot: ClusterSnapshot) -> None:
        self.snapshot = snapshot
        self._backends: dict[ObjectRef, ObjectRef | None] = {}
        self._fronts: dict[ObjectRef, ObjectRef] = {}
        self._node_names = {node.meta.name for node in snapshot.nodes()}

    def exists(self, ref: ObjectRef) -> bool:
        return self.snapshot.get(ref) is not None

    def pod_workload(self, pod: ObjectRef) -> ObjectRef:
        """A pod's outermost controller; for a pod gone from the snapshot, guessed from its generated name."""
        if self.exists(pod):
            return self.snapshot.top_owner(pod)
        stem = pod.name
        for _ in range(2):  # web-7d9f8-abcde -> ReplicaSet web-7d9f8 -> Deployment web; db-0 -> StatefulSet db
            stem = stem.rsplit("-", 1)[0]
            for kind in _WORKLOAD_KINDS:
                candidate = ObjectRef(kind, pod.namespace, stem)
                if self.exists(candidate):
                    return self.snapshot.top_owner(candidate)
        if (found := _DEPLOYMENT_POD.fullmatch(pod.name)) is not None:
            return ObjectRef("Deployment", pod.namespace, found.group(1))
        if (found := _STATEFUL_POD.fullmatch(pod.name)) is not None:
            return ObjectRef("StatefulSet", pod.namespace, found.group(1))
        return pod

    def workload_named(self, namespace: str, name: str) -> ObjectRef | None:
        for kind in _WORKLOAD_KINDS:
            candidate = ObjectRef(kind, namespace, name)
            if self.exists(candidate):
                return self.snapshot.top_owner(candidate)
        return None

    def backend(self, service: ObjectRef) -> ObjectRef | None:
        """The single workload a Service selects (by pod template labels), if there is exactly one."""
        if service not in self._backends:
            found = self.snapshot.get_as(service, Service)
            workloads: set[ObjectRef] = set()
            if found is not None and found.selector:
                for candidate in self.snapshot.all(Workload, service.namespace):
                    if candidate.meta.kind != "ReplicaSet" and found.selects(candidate.template.labels):
                        workloads.add(candidate.ref)
                jobs: list[Job | CronJob] = [*self.snapshot.jobs(service.namespace)]
                jobs += self.snapshot.cron_jobs(service.namespace)
                for item in jobs:
                    if found.selects(item.template.labels):
                        workloads.add(self.snapshot.top_owner(item.ref))
            self._backends[service] = workloads.pop() if len(workloads) == 1 else None
        return self._backends[service]

    def identity(self, ref: ObjectRef) -> ObjectRef:
        """What a Service and its workload have in common, so both sides of a call can be compared."""
        if ref.kind == "Service":
            return self.backend(ref) or ref
        return ref

    def front(self, ref: ObjectRef) -> ObjectRef:
        """The Service in front of a workload when there is exactly one (network signals belong on it)."""
        if ref.kind == "Service":
            return ref
        if ref not in self._fronts:
            fronts = {
                service.ref for service in self.snapshot.services(ref.namespace) if self.backend(service.ref) == ref
            }
            self._fronts[ref] = fronts.pop() if len(fronts) == 1 else ref
        return self._fronts[ref]

    def resolve(self, item: ObjectLabel, value: str, namespace: str, must_exist: bool) -> ObjectRef | None:
        kind = item.kind
        if kind == "Pod":
            pod = ObjectRef("Pod", namespace, value)
            return None if must_exist and not self.exists(pod) else self.pod_workload(pod)
        if kind == "Workload":
            found = self.workload_named(namespace, value)
            if found is None and self.exists(ObjectRef("Service", namespace, value)):
                found = self.backend(ObjectRef("Service", namespace, value)) or ObjectRef("Service", namespace, value)
            return found or (None if must_exist else ObjectRef("Deployment", namespace, value))
        if kind in ("Service", "Host"):
            if kind == "Host":
                value, namespace = _parse_host(value, namespace)
                must_exist = True  # a host not in the cluster is an external dependency: nothing to map to
            service = ObjectRef("Service", namespace, value)
            if self.exists(service):
                return service
            return self.workload_named(namespace, value) or (None if must_exist else service)
        if kind == "Node":
            name = _strip_port(value)
            if self._node_names and name not in self._node_names:
                return None
            return ObjectRef("Node", "", name)
        ref = ObjectRef(kind, "" if kind in CLUSTER_SCOPED_KINDS else namespace, value)
        return None if must_exist and not self.exists(ref) else ref


def _strip_port(value: str) -> str:
    if value.startswith("["):  # [fd00::1]:9100
        return value[1:].split("]", 1)[0]
    host, separator, port = value.rpartition(":")
    return host if separator and port.isdigit() and ":" not in host else value


def _parse_host(value: str, namespace: str) -> tuple[str, str]:
    """payments.shop.svc.cluster.local:8080 -> (payments, shop); payments:8080 -> (payments, <namespace>)."""
    host = _strip_port(value.split("://", 1)[-1].split("/", 1)[0])
    parts = host.split(".")
    if len(parts) >= 2 and (len(parts) == 2 or parts[2] == "svc"):
        return parts[0], parts[1]
    return parts[0], namespace


def _combine(how: str, items: list[float]) -> float:
    if how == "sum":
        return sum(items)
    if how == "max":
        return max(items)
    return sum(items) / len(items)


@dataclass(frozen=True, slots=True)
class _UnitKey:
    template: str
    subject: ObjectRef
    side: Side
    apart: tuple[str, ...]


@dataclass(slots=True)
class _Unit:
    """One object's combined view from one template (and one side of the call)."""

    key: _UnitKey
    template: QueryTemplate
    query: str
    values: dict[float, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[float, float] = field(default_factory=lambda: defaultdict(float))
    previous_values: dict[float, list[float]] = field(default_factory=lambda: defaultdict(list))
    previous_errors: dict[float, float] = field(default_factory=lambda: defaultdict(float))

    def combined(self, previous: bool = False) -> list[Sample]:
        values = self.previous_values if previous else self.values
        how = "sum" if self.template.kind == Kind.REQUESTS else self.template.aggregate
        return clean((moment, _combine(how, items)) for moment, items in values.items() if items)

    def error_ratio(self, previous: bool = False) -> list[Sample]:
        """errors/total wherever there is enough traffic for the ratio to mean something."""
        errors = self.previous_errors if previous else self.errors
        floor = self.template.request_thresholds.floor
        return [
            (moment, errors.get(moment, 0.0) / total) for moment, total in self.combined(previous) if total >= floor
        ]


@dataclass(frozen=True, slots=True)
class _Finding:
    unit: _Unit
    signal: str
    onset: Onset
    describe: str  # what changed, e.g. "error ratio"
    unit_name: str  # how its values read: ratio, per_second, seconds ...


@dataclass(slots=True)
class _PodSeen:
    first: float
    last: float
    in_window: bool


class _Analysis:
    def __init__(self, plan: Plan, results: Mapping[PlannedQuery, ResultLike], snapshot: ClusterSnapshot) -> None:
        self.plan = plan
        self.catalog: Catalog = plan.catalog
        self.results = results
        self.snapshot = snapshot
        self.resolver = _Resolver(snapshot)
        self.window_start = plan.window_start.timestamp()
        self.window_end = plan.window_end.timestamp()
        self.units: dict[_UnitKey, _Unit] = {}
        self.edges: dict[tuple[ObjectRef, ObjectRef], MetricEdge] = {}
        self.notes: list[str] = []
        self.pods_seen: dict[ObjectRef, _PodSeen] = {}  # pods named by request and target series
        self.gone_pods: dict[ObjectRef, set[ObjectRef]] = defaultdict(set)  # workload -> pods not in the snapshot
        self.targets_down: dict[tuple[ObjectRef, str], list[float]] = defaultdict(list)
        self.request_namespaces: set[str] = set()  # namespaces where a request query ran and answered
        self.request_seen: set[str] = set()  # namespaces where request series came back
        self.request_blind: list[str] = []  # namespaces with no request series, or only incomplete ones
        # Namespaces where a request query failed or came back partial: what came back cannot clear a change.
        self.request_incomplete: set[str] = set()
        self.incomplete_queries = 0
        self.signals: dict[tuple[ObjectRef, str], MetricSignal] = {}
        self.snapshot_namespaces = snapshot.namespaces()

    # Reading the results.

    def read(self) -> None:
        self.notes += self.plan.notes
        # One unknown for everything discovery did not find: each group named, without drowning the others.
        if self.plan.missing_summary:
            self.notes.append(self.plan.missing_summary)
        failures: dict[str, list[str]] = defaultdict(list)
        for planned in self.plan.queries:
            template = self.catalog.template(planned.template)
            result = self.results.get(planned)
            where = f"namespace {planned.namespace}" if planned.namespace else "the cluster"
            if result is None or result.error:
                if not planned.previous_day:
                    reason = result.error if result is not None and result.error else "not answered"
                    failures[f"{template.group} in {where}"].append(f"{template.name}: {reason}")
                    self._incomplete(template, planned)
                continue
            if result.partial and not planned.previous_day:
                warning = f" (warning: {_shorten(result.warnings[0])})" if result.warnings else ""
                self.notes.append(f"Prometheus returned partial data for {template.name} in {where}{warning}.")
                self._incomplete(template, planned)
            if template.kind == Kind.REQUESTS and planned.namespace is not None and not planned.previous_day:
                self.request_namespaces.add(planned.namespace)
            for labels, samples in result.series:
                self._read_series(planned, template, self._aliased(labels), samples)
        for what, reasons in failures.items():
            self.notes.append(
                f"Prometheus queries for {what} failed ({'; '.join(reasons[:2])}): those signals are unknown."
            )

    def _incomplete(self, template: QueryTemplate, planned: PlannedQuery) -> None:
        self.incomplete_queries += 1
        if template.kind == Kind.REQUESTS and planned.namespace is not None:
            self.request_incomplete.add(planned.namespace)

    def _aliased(self, labels: Mapping[str, str]) -> dict[str, str]:
        renamed = dict(labels)
        for source, target in self.catalog.label_aliases.items():
            if source in renamed and not renamed.get(target):
                renamed[target] = renamed[source]
        return renamed

    def _pick(
        self,
        items: Sequence[ObjectLabel],
        labels: Mapping[str, str],
        side: Side,
        namespace: str,
        must_exist: bool,
    ) -> tuple[ObjectRef, ObjectLabel, str] | None:
        for item in items:
            value = labels.get(item.label, "")
            if (item.side is not None and item.side != side) or value in _UNKNOWN_VALUES:
                continue
            item_namespace = labels.get(item.namespace_label, "") if item.namespace_label else ""
            if item_namespace in _UNKNOWN_VALUES:
                item_namespace = namespace
            ref = self.resolver.resolve(item, value, item_namespace, must_exist or not item_namespace)
            if ref is not None:
                return ref, item, value
        return None

    def _read_series(
        self,
        planned: PlannedQuery,
        template: QueryTemplate,
        labels: Mapping[str, str],
        samples: Sequence[tuple[float, float]],
    ) -> None:
        namespace_value = labels.get(self.catalog.namespace_label_of(template), "")
        if template.scope == Scope.NAMESPACE and namespace_value and namespace_value != planned.namespace:
            return  # another namespace's series: it is analysed with that namespace, if at all
        namespace = namespace_value or planned.namespace or ""
        must_exist = template.namespace_optional and not namespace_value
        side = template.side
        if template.side_rule is not None and template.side_rule.label in labels:
            mapped = template.side_rule.values.get(labels[template.side_rule.label])
            if mapped is None:
                return  # e.g. internal spans: neither end of a call
            side = mapped
        callee = self._pick(template.callee, labels, side, namespace, must_exist)
        caller = self._pick(template.caller, labels, side, namespace, must_exist)
        subject = self._pick(template.subject, labels, side, namespace, must_exist) if template.subject else callee
        if subject is None:
            return
        subject_ref, subject_label, subject_value = subject
        points = clean(samples)
        if not planned.previous_day:
            if subject_label.kind == "Pod":
                self._saw_pod(template, ObjectRef("Pod", namespace, subject_value), subject_ref, points)
            if template.kind == Kind.REQUESTS and planned.namespace is not None and points:
                self.request_seen.add(planned.namespace)
            if caller is not None and callee is not None and any(value > 0 for _, value in points):
                self._add_edge(template, side, caller[0], callee[0])
        if template.kind == Kind.TARGETS:
            if not planned.previous_day:
                where = labels.get("job") or labels.get("instance") or subject_value
                self.targets_down[(subject_ref, where)] += [
                    moment for moment, value in points if value == 0 and self._in_window(moment)
                ]
            return
        apart = tuple(labels.get(name, "") for name in template.keep_apart)
        key = _UnitKey(template.name, subject_ref, side, apart)
        unit = self.units.get(key)
        if unit is None:
            unit = self.units[key] = _Unit(key, template, planned.query)
        is_error = template.errors is not None and template.errors.is_error(labels)
        values = unit.previous_values if planned.previous_day else unit.values
        errors = unit.previous_errors if planned.previous_day else unit.errors
        for moment, value in points:
            values[moment].append(value)
            if is_error:
                errors[moment] += value

    def _in_window(self, moment: float) -> bool:
        return self.window_start <= moment <= self.window_end

    def _saw_pod(self, template: QueryTemplate, pod: ObjectRef, workload: ObjectRef, points: list[Sample]) -> None:
        if not points:
            return
        in_window = any(self._in_window(moment) for moment, _ in points)
        if not self.resolver.exists(pod):
            if in_window and pod.namespace in self.snapshot_namespaces:
                self.gone_pods[workload].add(pod)
            return
        if template.kind not in (Kind.REQUESTS, Kind.TARGETS):
            return  # state metrics (KSM) legitimately come and go; scrape liveness shows in these two
        seen = self.pods_seen.get(pod)
        first, last = points[0][0], points[-1][0]
        if seen is None:
            self.pods_seen[pod] = _PodSeen(first, last, in_window)
        else:
            seen.first, seen.last = min(seen.first, first), max(seen.last, last)
            seen.in_window = seen.in_window or in_window

    def _add_edge(self, template: QueryTemplate, side: Side, caller: ObjectRef, callee: ObjectRef) -> None:
        if self.resolver.identity(caller) == self.resolver.identity(callee):
            return
        metric = template.metrics[0]
        self.edges.setdefault(
            (caller, callee), MetricEdge(caller, callee, metric, f"calls seen in {metric} ({side.value} side)")
        )

    # Finding onsets.

    def findings(self) -> list[_Finding]:
        found: list[_Finding] = []
        settings = self.catalog.onset
        for unit in self.units.values():
            template = unit.template
            if template.kind == Kind.REQUESTS:
                policy = settings.policy(template.thresholds, template.bad)
                onset = self._detect(template, policy, unit.error_ratio(), unit.error_ratio(previous=True))
                if onset is not None:
                    found.append(_Finding(unit, template.signal, onset, "error ratio", "ratio"))
                if template.request_signal:
                    policy = settings.policy(template.request_thresholds, (Direction.UP, Direction.DOWN))
                    onset = self._detect(template, policy, unit.combined(), unit.combined(previous=True))
                    if onset is not None:
                        found.append(_Finding(unit, template.request_signal, onset, "request rate", "per_second"))
                continue
            policy = settings.policy(template.thresholds, template.bad)
            onset = self._detect(template, policy, unit.combined(), unit.combined(previous=True))
            if onset is not None:
                words = _DESCRIPTIONS.get(template.signal, template.signal.replace("_", " "))
                found.append(_Finding(unit, template.signal, onset, words, template.unit))
        return sorted(found, key=lambda item: (item.onset.time, str(item.unit.key.subject), item.signal))

    def _detect(
        self, template: QueryTemplate, policy: OnsetPolicy, samples: list[Sample], previous: list[Sample]
    ) -> Onset | None:
        return detect_onset(samples, self.window_start, self.window_end, policy, previous if template.seasonal else ())

    # Comparing the two sides of a call and emitting signals.

    def emit(self, findings: list[_Finding]) -> None:
        by_identity: dict[tuple[ObjectRef, Side, bool], list[_Unit]] = defaultdict(list)
        for unit in self.units.values():
            latency = unit.template.signal == Signal.LATENCY
            if unit.template.kind == Kind.REQUESTS or latency:
                by_identity[(self.resolver.identity(unit.key.subject), unit.key.side, latency)].append(unit)
        server_moved = {
            (self.resolver.identity(item.unit.key.subject), item.signal)
            for item in findings
            if item.unit.key.side == Side.SERVER and item.onset.direction == Direction.UP
        }
        for item in findings:
            unit = item.unit
            subject = unit.key.subject
            if unit.key.side == Side.SERVER:
                self._signal(subject, item.signal, item, _describe(item))
                continue
            identity = self.resolver.identity(subject)
            is_latency = item.signal == Signal.LATENCY
            servers = by_identity.get((identity, Side.SERVER, is_latency), [])
            if not servers:
                self._signal(subject, item.signal, item, _describe(item, "as seen by its callers"))
            elif (identity, item.signal) in server_moved or item.onset.direction != Direction.UP:
                continue  # the server's own view says it (or, for traffic, says it better)
            elif is_latency:
                self._network_latency(item, identity)
            elif item.signal == unit.template.signal:
                self._network_errors(item, identity, servers)

    def _network_latency(self, item: _Finding, identity: ObjectRef) -> None:
        service = self.resolver.front(identity)
        self._signal(service, Signal.NETWORK_LATENCY, item, _describe(item, "seen by callers only"))
        self.notes.append(
            f"Callers of {label(service)} see its latency rise from {_format(item.onset.baseline, item.unit_name)} "
            f"to {_format(item.onset.current, item.unit_name)} since {_clock(item.onset.time)} while its own "
            "(server-side) latency is flat: the time is lost between them (network, proxy, DNS or connection setup)."
        )

    def _network_errors(self, item: _Finding, identity: ObjectRef, servers: list[_Unit]) -> None:
        service = self.resolver.front(identity)
        errors = _format(item.onset.current, "ratio")
        usual, received, lost = self._traffic_lost(item, servers)
        if received < item.unit.template.request_thresholds.floor or lost:
            if lost and received >= item.unit.template.request_thresholds.floor:
                short = "receives fewer requests"
                since = f"{short} ({_format(usual, 'per_second')} before, {_format(received, 'per_second')} since)"
            else:
                short = since = "receives no requests"
            self._signal(
                service, Signal.NETWORK_ERRORS, item, _describe(item, f"seen by callers while {service.name} {short}")
            )
            self.notes.append(
                f"Callers of {label(service)} see {errors} errors since {_clock(item.onset.time)} while it {since}: "
                "traffic is not reaching it. Check the Service's selector and targetPort against its pods, and "
                "NetworkPolicies between the callers and it."
            )
            return
        detail = _describe(item, f"seen by callers only; {service.name} reports none")
        self._signal(service, Signal.NETWORK_ERRORS, item, detail)
        self.notes.append(
            f"Callers of {label(service)} see {errors} errors since {_clock(item.onset.time)} that it does not "
            "report itself: the requests fail between them (network, proxy or connection limits)."
        )

    def _traffic_lost(self, item: _Finding, servers: list[_Unit]) -> tuple[float, float, bool]:
        """(the callee's usual request rate, its rate since the callers' errors began, whether it lost about as
        much as they see failing). Requests that fail before they reach the callee are missing from its own count;
        requests that fail after it handled them are not. Medians, all of the callee's server-side series summed;
        the callers' failures and the callee's loss are read at the same moments, so the lag of rate windows after
        a cut-off affects both alike."""
        traffic: dict[float, float] = defaultdict(float)
        for unit in servers:
            for moment, value in unit.combined():
                traffic[moment] += value
        before = [value for moment, value in traffic.items() if moment < self.window_start]
        since = [value for moment, value in traffic.items() if moment >= item.onset.time]
        failing = [value for moment, value in item.unit.errors.items() if moment >= item.onset.time]
        usual = median(before) if before else 0.0
        received = median(since) if since else 0.0
        lost = bool(failing) and usual - received >= _LOST_SHARE * median(failing) > 0
        return usual, received, lost

    def _signal(self, ref: ObjectRef, name: str, item: _Finding, detail: str) -> None:
        onset = item.onset
        signal = MetricSignal(
            ref, name, onset.moment, onset.direction, round(onset.magnitude, 3), item.unit.query, detail
        )
        known = self.signals.get((ref, name))
        if known is None or signal.onset_time < known.onset_time:
            self.signals[(ref, name)] = signal

    # Gaps and contradictions.

    def gap_notes(self) -> None:
        stale_after = max(
            3 * self.plan.step_seconds,
            self.plan.rate_window_seconds + 2 * self.catalog.scrape_interval_seconds,
        )
        for (workload, job), zeros in sorted(self.targets_down.items(), key=lambda item: str(item[0])):
            if zeros:
                self.notes.append(
                    f"Prometheus could not scrape {job} of {label(workload)} between {_clock(min(zeros))} and "
                    f"{_clock(max(zeros))} (up == 0): its metrics for that time are unknown, not healthy."
                )
        stale: dict[ObjectRef, list[tuple[ObjectRef, float]]] = defaultdict(list)
        for pod, seen in self.pods_seen.items():
            projection = self.snapshot.get_as(pod, Pod)
            if projection is None or projection.meta.deleted is not None or projection.phase in _FINISHED:
                continue
            if seen.last < self.window_end - stale_after:
                stale[self.resolver.pod_workload(pod)].append((pod, seen.last))
        for workload, pods in sorted(stale.items(), key=lambda item: str(item[0])):
            since = min(last for _, last in pods)
            self.notes.append(
                f"No metrics from pod(s) {_names(pod for pod, _ in pods)} of {label(workload)} since {_clock(since)} "
                "although they still exist: their state after that is unknown, not healthy."
            )
        for workload, gone in sorted(self.gone_pods.items(), key=lambda item: str(item[0])):
            self.notes.append(
                f"Metrics in the window came from {len(gone)} pod(s) of {label(workload)} that no longer exist "
                f"({_names(gone)}): they were replaced or deleted, so their Kubernetes state cannot be checked."
            )

    def ready_contradictions(self) -> None:
        for (ref, name), signal in sorted(self.signals.items(), key=lambda item: str(item[0])):
            if name != Signal.ERROR_RATE or signal.direction != Direction.UP:
                continue
            workload = self.resolver.identity(ref)
            pods = [pod for pod in self.snapshot.pods_of(workload) if pod.meta.deleted is None]
            if workload.kind != "Pod" and pods and all(pod.ready for pod in pods):
                self.notes.append(
                    f"{label(workload)}: the error ratio rose (x{signal.magnitude:g}) since "
                    f"{_clock(signal.onset_time.timestamp())} while all {len(pods)} of its pods are Ready: "
                    "readiness does not see this failure, so Kubernetes state alone would call it healthy."
                )

    def uncovered_services(self) -> list[ObjectRef]:
        covered: set[ObjectRef] = set()
        for unit in self.units.values():
            if unit.template.kind == Kind.REQUESTS and unit.values:
                covered |= {unit.key.subject, self.resolver.identity(unit.key.subject)}
        missing: list[ObjectRef] = []
        for namespace in self.plan.namespaces:
            if namespace not in self.request_seen or namespace in self.request_incomplete:
                self.request_blind.append(namespace)
            if namespace not in self.request_namespaces:
                continue
            if namespace not in self.request_seen:
                self.notes.append(
                    f"No request metrics came back for namespace {namespace}: error rates and traffic there are "
                    "unknown, not healthy."
                )
                continue
            for service in self.snapshot.services(namespace):
                if not service.selector or service.type == "ExternalName":
                    continue
                if service.ref not in covered and self.resolver.identity(service.ref) not in covered:
                    missing.append(service.ref)
        return sorted(missing)


_DESCRIPTIONS: dict[str, str] = {
    Signal.LATENCY: "mean latency",
    Signal.NETWORK_LATENCY: "mean latency",
    Signal.CPU_THROTTLING: "throttled share of CPU periods",
    Signal.CPU_SATURATION: "CPU usage against its limit",
    Signal.MEMORY_SATURATION: "working set against its memory limit",
    Signal.NETWORK_ERRORS: "network errors",
}


def _format(value: float, unit: str) -> str:
    if unit == "ratio":
        percent = value * 100
        return f"{percent:.1f}%" if abs(percent) < 10 else f"{percent:.0f}%"
    if unit == "seconds":
        return f"{value * 1000:.0f} ms" if abs(value) < 1 else f"{value:.2f} s"
    if unit == "milliseconds":
        return f"{value:.0f} ms" if abs(value) < 1000 else f"{value / 1000:.2f} s"
    if unit == "per_second":
        return f"{value:.3g}/s"
    if unit == "per_minute":
        return f"{value:.3g}/min"
    return f"{value:.3g}"


def _describe(item: _Finding, context: str = "") -> str:
    """`error ratio rose from 0.1% to 31% (http_requests_total)`; the engine appends `since <time>`."""
    onset, unit = item.onset, item.unit
    verb = "rose" if onset.direction == Direction.UP else "fell"
    apart = [f"{name} {value}" for name, value in zip(unit.template.keep_apart, unit.key.apart, strict=True) if value]
    source = [unit.template.metrics[0], *apart]
    if context:
        source.append(context)
    elif unit.template.side_rule is not None:
        source.append(f"{unit.key.side.value} side")
    return (
        f"{item.describe} {verb} from {_format(onset.baseline, item.unit_name)} to "
        f"{_format(onset.current, item.unit_name)} ({', '.join(source)})"
    )


def build_signals(
    plan: Plan,
    results: Mapping[PlannedQuery, ResultLike],
    snapshot: ClusterSnapshot,
) -> MetricsAnalysis:
    """Signals, edges and notes from the answers to a plan's queries (a query without an answer is a gap)."""
    analysis = _Analysis(plan, results, snapshot)
    analysis.read()
    analysis.emit(analysis.findings())
    analysis.gap_notes()
    analysis.ready_contradictions()
    uncovered = analysis.uncovered_services()
    signals = sorted(analysis.signals.values(), key=lambda item: (item.onset_time, str(item.ref), item.signal_name))
    edges = sorted(analysis.edges.values(), key=lambda edge: (str(edge.caller), str(edge.callee)))
    return MetricsAnalysis(
        signals=tuple(signals),
        edges=tuple(edges),
        notes=tuple(dict.fromkeys(analysis.notes)),
        services_without_request_metrics=tuple(uncovered),
        namespaces_without_request_metrics=tuple(analysis.request_blind),
        incomplete_queries=analysis.incomplete_queries,
    )
