"""NetworkPolicy: a policy created or changed in the window that cuts traffic the graph says is needed:
callers of the pods it selects that its ingress rules do not admit, callees its egress rules do not reach, DNS."""

from __future__ import annotations

from collections.abc import Mapping

from inquest.categories import Category, EvidenceSource
from inquest.engine.candidates import Candidate, Evidence
from inquest.engine.context import EvidenceContext, Signal
from inquest.engine.detectors.common import (
    after,
    change_evidence,
    earliest,
    label,
    services_selecting,
    signal_evidence,
    signals_on,
)
from inquest.engine.graph import EdgeType
from inquest.engine.journal import ChangeRecord, ChangeType
from inquest.engine.objects import NetworkPolicy, Pod, Service, Workload
from inquest.engine.podstate import Mechanism
from inquest.engine.refs import ObjectRef
from inquest.engine.timeutil import short_time

_CALL_EDGES = (EdgeType.CALLS, EdgeType.DECLARED, EdgeType.METRIC)
_TRAFFIC_SIGNALS = (Signal.ERROR_RATE, Signal.LATENCY, Signal.NETWORK_ERRORS)


def _labels_of(ctx: EvidenceContext, ref: ObjectRef) -> Mapping[str, str] | None:
    projection = ctx.snapshot.get(ref)
    if isinstance(projection, Pod):
        return projection.meta.labels
    if isinstance(projection, Workload):
        return projection.template.labels
    return None


def _selected(ctx: EvidenceContext, policy: NetworkPolicy) -> set[ObjectRef]:
    """Workloads (or bare pods) whose pods the policy selects."""
    return {ctx.workload_of(edge.source) for edge in ctx.graph.edges_to(policy.ref) if edge.type == EdgeType.POLICY}


def _services_of(ctx: EvidenceContext, workloads: set[ObjectRef]) -> set[ObjectRef]:
    services: set[ObjectRef] = set()
    for workload in workloads:
        for pod in ctx.snapshot.pods_of(workload):
            services.update(edge.source for edge in ctx.graph.edges_to(pod.ref) if edge.type == EdgeType.ROUTES_TO)
    return services


def _service_ports(ctx: EvidenceContext, service_ref: ObjectRef) -> set[str]:
    """The destination ports traffic to a Service arrives on: its targetPorts, by name and by number."""
    service = ctx.snapshot.get_as(service_ref, Service)
    if service is None:
        return set()
    ports = {port.target_port for port in service.ports}
    for edge in ctx.graph.edges_from(service_ref):
        backend = ctx.snapshot.get_as(edge.target, Pod)
        if backend is not None:
            for container in backend.spec.containers:
                ports |= {str(port.port) for port in container.ports if port.name in ports}
    return ports


def _blocked_callers(ctx: EvidenceContext, policy: NetworkPolicy, services: set[ObjectRef]) -> set[ObjectRef]:
    blocked: set[ObjectRef] = set()
    for service in services:
        ports = _service_ports(ctx, service) or None
        for edge in ctx.graph.edges_to(service):
            if edge.type not in _CALL_EDGES or edge.via_pods:
                continue
            caller = ctx.workload_of(edge.source)
            labels = _labels_of(ctx, edge.source)
            if labels is not None and not policy.allows_ingress_from(edge.source.namespace, labels, ports):
                blocked.add(caller)
    return blocked


def _blocked_callees(ctx: EvidenceContext, policy: NetworkPolicy, selected: set[ObjectRef]) -> set[ObjectRef]:
    blocked: set[ObjectRef] = set()
    for workload in selected:
        for edge in ctx.graph.edges_from(workload):
            if edge.type not in _CALL_EDGES:
                continue
            backends = [e.target for e in ctx.graph.edges_from(edge.target) if e.type == EdgeType.ROUTES_TO]
            ports = _service_ports(ctx, edge.target) or None
            if any(
                (labels := _labels_of(ctx, backend)) is not None
                and not policy.allows_egress_to(backend.namespace, labels, ports)
                for backend in backends
            ):
                blocked.add(edge.target)
    return blocked


def _blocks_dns(policy: NetworkPolicy) -> bool:
    if "Egress" not in policy.policy_types:
        return False
    for rule in policy.egress:
        if not rule.ports or any(port.endswith("/53") or port.endswith("/*") for port in rule.ports):
            return False
    return True


def _policy_candidate(ctx: EvidenceContext, policy: NetworkPolicy, record: ChangeRecord) -> Candidate:
    selected = _selected(ctx, policy)
    services = _services_of(ctx, selected)
    blocked_callers = _blocked_callers(ctx, policy, services)
    blocked_callees = _blocked_callees(ctx, policy, selected)
    dns = _blocks_dns(policy) and bool(selected)
    cut = []
    if blocked_callers:
        cut.append(f"denies ingress from {', '.join(label(ref) for ref in sorted(blocked_callers)[:3])}")
    if blocked_callees:
        cut.append(f"denies egress to {', '.join(label(ref) for ref in sorted(blocked_callees)[:3])}")
    if dns:
        cut.append("denies DNS (no egress to port 53)")
    affected = {policy.ref} | blocked_callers | services | (selected if (blocked_callees or dns) else set())
    for caller in blocked_callers | (selected if (blocked_callees or dns) else set()):
        affected |= services_selecting(ctx, caller)
    signals = [
        signal for signal in signals_on(ctx, affected, _TRAFFIC_SIGNALS) if after(signal.onset_time, record.time)
    ]
    probe_failures = [
        problem
        for pod_ref, problems in ctx.pod_problems().items()
        if ctx.workload_of(pod_ref) in affected
        for problem in problems
        if problem.mechanism in (Mechanism.PROBE, Mechanism.CRASH) and after(problem.onset, record.time)
    ]
    evidence = [change_evidence(record)]
    if cut:
        evidence.append(Evidence(EvidenceSource.GRAPH, record.time, policy.ref, "; ".join(cut)))
    evidence += [signal_evidence(signal) for signal in signals[:3]]
    evidence += [Evidence(EvidenceSource.KUBERNETES, p.onset, p.pod, p.detail) for p in probe_failures[:2]]
    failing = bool(signals or probe_failures)
    base = 20.0
    if cut:
        base = 60.0 if failing else 40.0
    action = "created" if record.change == ChangeType.CREATED else "changed"
    effect = "; ".join(cut) if cut else f"selects {len(selected)} workload(s); no blocked dependency found"
    return Candidate(
        ref=policy.ref,
        category=Category.NETWORK_POLICY,
        base_score=base,
        summary=f"{label(policy.ref)} {action} at {short_time(record.time)}: {effect}",
        evidence=evidence,
        explains=affected if cut else {policy.ref},
        onset_time=record.time,
        change=record,
        symptom_onset=earliest([*(s.onset_time for s in signals), *(p.onset for p in probe_failures)]),
        has_failure_evidence=failing,
    )


def detect_network_policy(ctx: EvidenceContext) -> list[Candidate]:
    candidates = []
    for record in ctx.changes(kinds=("NetworkPolicy",)):
        if record.change == ChangeType.DELETED:
            continue
        policy = ctx.snapshot.get_as(record.ref, NetworkPolicy)
        if policy is not None:
            candidates.append(_policy_candidate(ctx, policy, record))
    return candidates
