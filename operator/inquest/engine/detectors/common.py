"""Helpers every detector uses: grouping pod problems by workload, finding Services, and building evidence."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from inquest.categories import EvidenceSource
from inquest.engine.candidates import Evidence
from inquest.engine.context import EvidenceContext, MetricSignal
from inquest.engine.graph import EdgeType
from inquest.engine.journal import ChangeRecord
from inquest.engine.objects import Event, Workload
from inquest.engine.podstate import Mechanism, PodProblem
from inquest.engine.refs import ObjectRef
from inquest.engine.timeutil import short_time

# Clocks differ and controllers lag: an effect this much "before" its cause still counts as after it.
CLOCK_TOLERANCE = timedelta(seconds=30)
# How long after a change its effects are still attributed to it.
EFFECT_HORIZON = timedelta(minutes=30)


def label(ref: ObjectRef) -> str:
    return f"{ref.kind} {ref.namespace}/{ref.name}" if ref.namespace else f"{ref.kind} {ref.name}"


def earliest(moments: Iterable[datetime | None]) -> datetime | None:
    present = [moment for moment in moments if moment is not None]
    return min(present) if present else None


def problems_by_workload(ctx: EvidenceContext, mechanisms: Iterable[Mechanism]) -> dict[ObjectRef, list[PodProblem]]:
    wanted = set(mechanisms)
    grouped: dict[ObjectRef, list[PodProblem]] = defaultdict(list)
    for pod_ref, problems in ctx.pod_problems().items():
        for problem in problems:
            if problem.mechanism in wanted:
                grouped[ctx.workload_of(pod_ref)].append(problem)
    return dict(grouped)


def services_selecting(ctx: EvidenceContext, ref: ObjectRef) -> set[ObjectRef]:
    """Services in front of a pod or of a workload's pods (by EndpointSlice/selector edges or template labels)."""
    projection = ctx.snapshot.get(ref)
    labels = projection.template.labels if isinstance(projection, Workload) else {}
    found = ctx.snapshot.services_selecting_labels(ref.namespace, labels) if labels else set()
    pods = [ref] if ref.kind == "Pod" else [pod.ref for pod in ctx.snapshot.pods_of(ref)]
    for pod in pods:
        found.update(edge.source for edge in ctx.graph.edges_to(pod) if edge.type == EdgeType.ROUTES_TO)
    return found


def affected_by_workload(ctx: EvidenceContext, workload: ObjectRef, pods: Iterable[ObjectRef] = ()) -> set[ObjectRef]:
    """The workload, the given pods and the Services in front of them: what its failure directly affects."""
    return {workload, *pods, *services_selecting(ctx, workload)}


def problem_evidence(problem: PodProblem) -> Evidence:
    return Evidence(EvidenceSource.KUBERNETES, problem.onset, problem.pod, problem.detail)


def event_evidence(event: Event) -> Evidence:
    repeated = f" (x{event.count})" if event.count > 1 else ""
    return Evidence(
        EvidenceSource.KUBERNETES, event.last_seen, event.involved, f"Event {event.reason}: {event.message}{repeated}"
    )


def change_evidence(record: ChangeRecord) -> Evidence:
    origin = " (reconstructed)" if record.reconstructed else ""
    return Evidence(EvidenceSource.JOURNAL, record.time, record.ref, record.describe() + origin)


def signal_evidence(signal: MetricSignal) -> Evidence:
    detail = signal.detail or f"{signal.signal_name} {signal.direction.value} x{signal.magnitude:g}"
    return Evidence(
        EvidenceSource.PROMETHEUS,
        signal.onset_time,
        signal.ref,
        f"{detail} since {short_time(signal.onset_time)}",
        signal.query,
    )


def signals_on(ctx: EvidenceContext, refs: Iterable[ObjectRef], names: Iterable[str]) -> list[MetricSignal]:
    wanted_refs = set(refs)
    return [signal for signal in ctx.signals(names) if signal.ref in wanted_refs]


_MECHANISM_WORDS = {
    Mechanism.IMAGE_PULL: "cannot pull its image",
    Mechanism.CRASH: "crash",
    Mechanism.OOM: "were OOMKilled",
    Mechanism.PROBE: "fail their probes",
    Mechanism.CONFIG_ERROR: "cannot start (container config error)",
    Mechanism.UNSCHEDULABLE: "cannot be scheduled",
    Mechanism.MOUNT: "cannot mount their volumes",
    Mechanism.EVICTED: "were evicted",
}


def describe_problems(problems: Iterable[PodProblem]) -> str:
    """`2 pods crash (exit code 1); 1 pod was OOMKilled`."""
    pods_by_mechanism: dict[Mechanism, set[ObjectRef]] = defaultdict(set)
    exit_codes: Counter[int] = Counter()
    for problem in problems:
        pods_by_mechanism[problem.mechanism].add(problem.pod)
        if problem.mechanism == Mechanism.CRASH and problem.exit_code is not None:
            exit_codes[problem.exit_code] += 1
    parts = []
    for mechanism, pods in sorted(pods_by_mechanism.items(), key=lambda item: -len(item[1])):
        count = f"{len(pods)} pod{'s' if len(pods) != 1 else ''}"
        words = _MECHANISM_WORDS[mechanism]
        if len(pods) == 1:
            words = (
                words.replace("were ", "was ")
                .replace("fail their", "fails its")
                .replace("cannot mount their", "cannot mount its")
            )
            words = "crashes" if words == "crash" else words
        if mechanism == Mechanism.CRASH and exit_codes:
            words += f" (exit code {exit_codes.most_common(1)[0][0]})"
        parts.append(f"{count} {words}")
    return "; ".join(parts)


def onset_of(problems: Iterable[PodProblem]) -> datetime | None:
    return earliest(problem.onset for problem in problems)


def after(moment: datetime | None, reference: datetime) -> bool:
    """Whether `moment` is at or after `reference` (within clock tolerance) and inside the effect horizon."""
    return moment is not None and reference - CLOCK_TOLERANCE <= moment <= reference + EFFECT_HORIZON


def _shorten(value: str | None, limit: int = 48) -> str:
    if value is None:
        return "<none>"
    return value if len(value) <= limit else value[: limit - 3] + "..."


def _short_path(path: str) -> str:
    """`template.containers[app].image` -> `image`; other paths stay as they are."""
    head, separator, tail = path.partition("].")
    return tail if separator and head.startswith("template.") else path


def change_headline(record: ChangeRecord, limit: int = 2) -> str:
    """The changed fields that matter most, short: `image payments:1.8 -> payments:1.9`."""
    fields = [change for change in record.fields if change.path not in ("revision", "data", "template.labels")]
    fields.sort(key=lambda change: (".image" not in change.path, "resources" not in change.path))
    parts = []
    for change in fields[:limit]:
        parts.append(f"{_short_path(change.path)} {_shorten(change.old)} -> {_shorten(change.new)}")
    if len(fields) > limit:
        parts.append(f"+{len(fields) - limit} more")
    if not parts and record.note:
        parts.append(record.note)
    return ", ".join(parts) or record.change.value.lower()
