"""What is wrong with each pod inside the window, from its container states and its Events.

Present state counts only when the window is current; otherwise a problem needs a timestamp inside the window
(a termination, an Event). A restart three days ago is not a problem now."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from inquest.engine.context import EvidenceContext
from inquest.engine.objects import ContainerStatus, Event, Pod
from inquest.engine.objects.meta import find_condition
from inquest.engine.refs import ObjectRef

IMAGE_PULL_REASONS = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull", "RegistryUnavailable"}
)
CONFIG_ERROR_REASONS = frozenset({"CreateContainerConfigError", "CreateContainerError"})
# A container that started this recently may simply not be ready yet.
STARTUP_GRACE = timedelta(minutes=1)


class Mechanism(StrEnum):
    IMAGE_PULL = "image pull failure"
    CRASH = "crash"
    OOM = "OOMKilled"
    PROBE = "probe failure"
    CONFIG_ERROR = "container config error"
    UNSCHEDULABLE = "unschedulable"
    MOUNT = "volume mount failure"
    EVICTED = "evicted"


@dataclass(frozen=True, slots=True)
class PodProblem:
    pod: ObjectRef
    mechanism: Mechanism
    onset: datetime | None
    detail: str
    container: str = ""
    exit_code: int | None = None
    events: tuple[Event, ...] = ()


def classify_event(event: Event) -> Mechanism | None:
    """The pod problem an Event reports, if any."""
    reason, message = event.reason, event.message.lower()
    if reason in ("Failed", "BackOff", "InspectFailed", "ErrImageNeverPull") and (
        "pull" in message or "image" in message
    ):
        return Mechanism.IMAGE_PULL
    if reason == "Failed" and ("createcontainerconfigerror" in message or "not found" in message):
        return Mechanism.CONFIG_ERROR
    if reason == "BackOff":
        return Mechanism.CRASH
    if reason == "Unhealthy" or (reason == "Killing" and "probe" in message):
        return Mechanism.PROBE
    if reason == "FailedScheduling":
        return Mechanism.UNSCHEDULABLE
    if reason in ("FailedMount", "FailedAttachVolume"):
        if "configmap" in message or "secret" in message:
            return Mechanism.CONFIG_ERROR
        return Mechanism.MOUNT
    if reason == "Evicted":
        return Mechanism.EVICTED
    return None


def _earliest(*moments: datetime | None) -> datetime | None:
    present = [moment for moment in moments if moment is not None]
    return min(present) if present else None


def _container_problems(
    ctx: EvidenceContext, pod: Pod, status: ContainerStatus, by_mechanism: dict[Mechanism, list[Event]]
) -> list[PodProblem]:
    current = ctx.window_is_current
    problems = []

    def first_event(mechanism: Mechanism) -> datetime | None:
        return _earliest(*(event.first_seen for event in by_mechanism.get(mechanism, [])))

    def events_of(mechanism: Mechanism) -> tuple[Event, ...]:
        return tuple(by_mechanism.get(mechanism, ()))

    if status.waiting_reason in IMAGE_PULL_REASONS and current:
        detail = f"container {status.name}: {status.waiting_reason} {status.waiting_message}".strip()
        onset = first_event(Mechanism.IMAGE_PULL) or pod.start_time or pod.meta.created
        problems.append(
            PodProblem(
                pod.ref, Mechanism.IMAGE_PULL, onset, detail, status.name, events=events_of(Mechanism.IMAGE_PULL)
            )
        )
    if status.waiting_reason in CONFIG_ERROR_REASONS and current:
        detail = f"container {status.name}: {status.waiting_reason}: {status.waiting_message}"
        onset = first_event(Mechanism.CONFIG_ERROR) or pod.start_time or pod.meta.created
        problems.append(
            PodProblem(
                pod.ref, Mechanism.CONFIG_ERROR, onset, detail, status.name, events=events_of(Mechanism.CONFIG_ERROR)
            )
        )
    restarted_in_window = ctx.in_window(status.last_finished_at)
    crash_looping_now = status.waiting_reason == "CrashLoopBackOff" and current
    terminated_in_window = ctx.in_window(status.terminated_at) and status.terminated_reason not in ("", "Completed")
    if restarted_in_window or crash_looping_now or terminated_in_window:
        reason = status.last_reason if (restarted_in_window or crash_looping_now) else status.terminated_reason
        exit_code = status.last_exit_code if (restarted_in_window or crash_looping_now) else status.terminated_exit_code
        killed_by_probe = any("liveness" in event.message.lower() for event in by_mechanism.get(Mechanism.PROBE, []))
        if reason == "OOMKilled":
            mechanism = Mechanism.OOM
        elif killed_by_probe:
            mechanism = Mechanism.PROBE
        else:
            mechanism = Mechanism.CRASH
        when = status.last_finished_at if restarted_in_window else status.terminated_at
        onset = _earliest(first_event(mechanism), when if ctx.in_window(when) else None)
        what = (
            "OOMKilled" if mechanism == Mechanism.OOM else f"terminated ({reason or 'unknown'}, exit code {exit_code})"
        )
        looping = ", now in CrashLoopBackOff" if crash_looping_now else ""
        detail = f"container {status.name} {what}; {status.restart_count} restarts{looping}"
        problems.append(PodProblem(pod.ref, mechanism, onset, detail, status.name, exit_code, events_of(mechanism)))
    elif (
        not status.init
        and status.running_since is not None
        and not status.ready
        and (by_mechanism.get(Mechanism.PROBE) or (current and status.running_since < ctx.now - STARTUP_GRACE))
    ):
        probe_events = by_mechanism.get(Mechanism.PROBE, [])
        ready = find_condition(pod.conditions, "Ready")
        transition = ready.last_transition if ready is not None else None
        onset = first_event(Mechanism.PROBE) or (transition if ctx.in_window(transition) else None)
        message = probe_events[0].message if probe_events else "running but not ready"
        detail = f"container {status.name}: {message}"
        problems.append(PodProblem(pod.ref, Mechanism.PROBE, onset, detail, status.name, events=tuple(probe_events)))
    return problems


def _pod_level_problems(ctx: EvidenceContext, pod: Pod, by_mechanism: dict[Mechanism, list[Event]]) -> list[PodProblem]:
    problems = []
    scheduled = find_condition(pod.conditions, "PodScheduled")
    waiting_for_a_node = pod.phase == "Pending" and not pod.node_name
    unschedulable_now = (
        ctx.window_is_current and waiting_for_a_node and scheduled is not None and scheduled.reason == "Unschedulable"
    )
    scheduling_events = by_mechanism.get(Mechanism.UNSCHEDULABLE, [])
    if (scheduling_events and (waiting_for_a_node or not ctx.window_is_current)) or unschedulable_now:
        message = scheduling_events[-1].message if scheduling_events else (scheduled.message if scheduled else "")
        onset = _earliest(*(event.first_seen for event in scheduling_events)) or (
            scheduled.last_transition if scheduled else None
        )
        problems.append(
            PodProblem(
                pod.ref, Mechanism.UNSCHEDULABLE, onset, f"unschedulable: {message}", events=tuple(scheduling_events)
            )
        )
    if pod.phase == "Failed" and pod.reason == "Evicted":
        eviction_events = by_mechanism.get(Mechanism.EVICTED, [])
        onset = _earliest(*(event.first_seen for event in eviction_events))
        if onset is not None or (ctx.window_is_current and ctx.in_window(pod.start_time)):
            problems.append(
                PodProblem(pod.ref, Mechanism.EVICTED, onset, f"evicted: {pod.message}", events=tuple(eviction_events))
            )
    return problems


def _from_events_only(
    pod: ObjectRef, by_mechanism: dict[Mechanism, list[Event]], seen: set[Mechanism]
) -> list[PodProblem]:
    """Problems only Events still show (the state has moved on, or the pod is gone)."""
    problems = []
    for mechanism, events in by_mechanism.items():
        if mechanism in seen or not events:
            continue
        onset = _earliest(*(event.first_seen for event in events))
        problems.append(PodProblem(pod, mechanism, onset, events[-1].message, events=tuple(events)))
    return problems


def _covered(ctx: EvidenceContext, pod: Pod, problems: list[PodProblem]) -> set[Mechanism]:
    """Mechanisms already explained by state; an OOM kill or a liveness kill also explains the restart back-off.
    A pod that is bound to a node now was scheduled: its FailedScheduling Events tell of a wait that is over, which
    a current window does not count (a past window does, from the pod-level check)."""
    covered = {problem.mechanism for problem in problems}
    if covered & {Mechanism.OOM, Mechanism.PROBE}:
        covered.add(Mechanism.CRASH)
    if pod.node_name and ctx.window_is_current:
        covered.add(Mechanism.UNSCHEDULABLE)
    return covered


def analyse_pods(ctx: EvidenceContext) -> dict[ObjectRef, list[PodProblem]]:
    events_by_pod: dict[ObjectRef, dict[Mechanism, list[Event]]] = defaultdict(lambda: defaultdict(list))
    for event in ctx.events():
        if event.involved.kind != "Pod":
            continue
        mechanism = classify_event(event)
        if mechanism is not None and (event.is_warning or mechanism == Mechanism.PROBE):
            events_by_pod[event.involved][mechanism].append(event)
    result: dict[ObjectRef, list[PodProblem]] = {}
    for pod in ctx.snapshot.pods():
        by_mechanism = events_by_pod.get(pod.ref, {})
        problems = [
            problem for status in pod.containers for problem in _container_problems(ctx, pod, status, by_mechanism)
        ]
        problems += _pod_level_problems(ctx, pod, by_mechanism)
        problems += _from_events_only(pod.ref, by_mechanism, _covered(ctx, pod, problems))
        if problems:
            result[pod.ref] = problems
    for pod_ref, by_mechanism in events_by_pod.items():
        if pod_ref not in result and ctx.snapshot.get(pod_ref) is None:
            problems = _from_events_only(pod_ref, by_mechanism, set())
            if problems:
                result[pod_ref] = problems
    return result
