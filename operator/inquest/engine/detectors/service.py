"""ServiceMisconfig: a Service (or an Ingress) that routes to nothing: its selector matches no pods, its
targetPort matches no container port, or an Ingress names a Service or port that does not exist."""

from __future__ import annotations

from inquest.categories import Category, EvidenceSource
from inquest.engine.candidates import Candidate, Evidence
from inquest.engine.context import Direction, EvidenceContext, MetricSignal, Signal
from inquest.engine.detectors.common import (
    after,
    change_evidence,
    change_headline,
    earliest,
    label,
    services_selecting,
    signal_evidence,
)
from inquest.engine.graph import EdgeType
from inquest.engine.journal import ChangeRecord, ChangeType
from inquest.engine.objects import Ingress, Pod, Service, Workload
from inquest.engine.refs import ObjectRef
from inquest.engine.timeutil import short_time

_ROUTING_FIELDS = ("selector", "ports[")


def _selected_pods(ctx: EvidenceContext, service: Service) -> list[Pod]:
    return [
        pod
        for labels, pods in ctx.snapshot.pods_by_labels(service.meta.namespace).items()
        if service.selects(dict(labels))
        for pod in pods
        if pod.meta.deleted is None
    ]


def _selected_templates(ctx: EvidenceContext, service: Service) -> list[Workload]:
    return [
        workload
        for workload in ctx.snapshot.workloads(service.meta.namespace)
        if workload.meta.kind != "ReplicaSet" and service.selects(workload.template.labels)
    ]


def _unmatched_target_ports(service: Service, pods: list[Pod]) -> list[str]:
    """Service ports whose targetPort no selected container declares (only judged when containers declare ports)."""
    declared_names = {port.name for pod in pods for c in pod.spec.containers for port in c.ports if port.name}
    declared_numbers = {str(port.port) for pod in pods for c in pod.spec.containers for port in c.ports}
    if not declared_names and not declared_numbers:
        return []
    return [
        f"{port.name or port.port}->{port.target_port}"
        for port in service.ports
        if port.target_port not in declared_names and port.target_port not in declared_numbers
    ]


def _ready_endpoint_count(ctx: EvidenceContext, service: Service) -> int | None:
    slices = [
        item for item in ctx.snapshot.endpoint_slices(service.meta.namespace) if item.service_name == service.meta.name
    ]
    if not slices:
        return None
    return sum(len(item.ready_pods) for item in slices)


def _has_dependents(ctx: EvidenceContext, ref: ObjectRef) -> bool:
    return any(edge.type != EdgeType.OWNED_BY for edge in ctx.graph.edges_to(ref))


def _traffic_failing(
    ctx: EvidenceContext, service: Service, backends: list[Workload], record: ChangeRecord | None
) -> list[MetricSignal]:
    """Metric signs that traffic through the Service fails (since its edit, when there is one): it or its
    backends receive fewer requests, its callers' calls to it fail, its callers' own error rate rises."""
    callee = {service.ref, *(workload.ref for workload in backends)}
    callers = {
        ctx.workload_of(edge.source) for edge in ctx.graph.edges_to(service.ref) if edge.type != EdgeType.OWNED_BY
    }
    callers |= {front for caller in callers for front in services_selecting(ctx, caller)}
    found = []
    for signal in ctx.signals((Signal.NETWORK_ERRORS, Signal.ERROR_RATE, Signal.REQUEST_RATE)):
        if record is not None and not after(signal.onset_time, record.time):
            continue
        if signal.signal_name == Signal.REQUEST_RATE:
            failing = signal.ref in callee and signal.direction == Direction.DOWN
        elif signal.signal_name == Signal.NETWORK_ERRORS:
            failing = signal.ref in callee and signal.direction == Direction.UP
        else:  # the callee's own errors are its own; its callers' errors are what it fails to serve them
            failing = signal.ref in callers - callee and signal.direction == Direction.UP
        if failing:
            found.append(signal)
    return sorted(found, key=lambda signal: signal.onset_time)


def _service_candidate(ctx: EvidenceContext, service: Service, record: ChangeRecord | None) -> Candidate | None:
    if not service.selector or service.type == "ExternalName":
        return None
    pods = _selected_pods(ctx, service)
    templates = _selected_templates(ctx, service)
    problems: list[str] = []
    if not pods and not templates:
        problems.append(
            f"selector {{{', '.join(f'{k}={v}' for k, v in sorted(service.selector.items()))}}} matches no pods"
        )
    unmatched = _unmatched_target_ports(service, pods)
    if unmatched:
        problems.append(f"targetPort not declared by its pods: {', '.join(unmatched)}")
    if not problems:
        return None
    if not ctx.window_is_current and record is None:
        return None  # present state says nothing about a past window without a dated change
    ready = _ready_endpoint_count(ctx, service)
    signals = _traffic_failing(ctx, service, templates, record)
    evidence = [Evidence(EvidenceSource.KUBERNETES, ctx.now, service.ref, "; ".join(problems))]
    evidence += [signal_evidence(signal) for signal in signals[:3]]
    if ready is not None:
        evidence.append(Evidence(EvidenceSource.KUBERNETES, ctx.now, service.ref, f"{ready} ready endpoints"))
    summary = f"{label(service.ref)}: {'; '.join(problems)}"
    if record is not None:
        evidence.insert(0, change_evidence(record))
        summary = (
            f"{label(service.ref)} was edited at {short_time(record.time)} ({change_headline(record)}): "
            + "; ".join(problems)
        )
    return Candidate(
        ref=service.ref,
        category=Category.SERVICE_MISCONFIG,
        base_score=(60.0 if record is not None else 40.0) + (5.0 if ready == 0 else 0.0),
        summary=summary,
        evidence=evidence,
        explains={service.ref} | {edge.source for edge in ctx.graph.edges_to(service.ref)},
        onset_time=record.time if record is not None else None,
        change=record,
        symptom_onset=earliest(signal.onset_time for signal in signals),
        has_failure_evidence=_has_dependents(ctx, service.ref) or ready == 0 or bool(signals),
    )


def _ingress_candidate(ctx: EvidenceContext, ingress: Ingress, record: ChangeRecord | None) -> Candidate | None:
    broken = []
    for backend in ingress.backends:
        service = ctx.snapshot.get_as(ObjectRef("Service", ingress.meta.namespace, backend.service_name), Service)
        if service is None:
            broken.append(f"backend Service {backend.service_name} does not exist")
        elif backend.service_port and not any(
            backend.service_port in (port.name, str(port.port)) for port in service.ports
        ):
            broken.append(f"Service {backend.service_name} has no port {backend.service_port}")
    if not broken or (record is None and not ctx.window_is_current):
        return None
    evidence = [Evidence(EvidenceSource.KUBERNETES, ctx.now, ingress.ref, "; ".join(broken))]
    if record is not None:
        evidence.insert(0, change_evidence(record))
    return Candidate(
        ref=ingress.ref,
        category=Category.SERVICE_MISCONFIG,
        base_score=60.0 if record is not None else 40.0,
        summary=f"{label(ingress.ref)}: {'; '.join(broken)}",
        evidence=evidence,
        explains={ingress.ref},
        onset_time=record.time if record is not None else None,
        change=record,
        has_failure_evidence=True,
    )


def detect_service_misconfig(ctx: EvidenceContext) -> list[Candidate]:
    latest: dict[ObjectRef, ChangeRecord] = {}
    for record in ctx.changes(kinds=("Service", "Ingress")):
        routing = record.change == ChangeType.CREATED or any(
            change.path.startswith(_ROUTING_FIELDS) or change.path.startswith("backends[") for change in record.fields
        )
        if routing and record.change != ChangeType.DELETED:
            latest[record.ref] = record
    candidates = []
    for service in ctx.snapshot.services():
        found = _service_candidate(ctx, service, latest.get(service.ref))
        if found is not None:
            candidates.append(found)
    for ingress in ctx.snapshot.ingresses():
        found = _ingress_candidate(ctx, ingress, latest.get(ingress.ref))
        if found is not None:
            candidates.append(found)
    return candidates
