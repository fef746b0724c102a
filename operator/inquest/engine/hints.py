"""Reads the question and the user's context for hints: objects named, objects to ignore, changes people
say they made ("we deployed payments 1.9 at 10:05"). Hints steer the search; they are never evidence alone."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from inquest.engine.refs import ObjectRef
from inquest.engine.snapshot import ClusterSnapshot
from inquest.engine.timeutil import iso

_EXCLUDE = re.compile(
    r"\b(ignore|ignoring|exclude|excluding|skip|drain|drained|draining|maintenance|expected|known issue|unrelated"
    r"|not related|planned)\b",
    re.IGNORECASE,
)
_CHANGE = re.compile(
    r"\b(deploy|deployed|deploying|rolled out|rollout|released?|upgraded?|updated?|changed?|edited|applied|bumped"
    r"|scaled|migrated)\b",
    re.IGNORECASE,
)
_CLOCK = re.compile(
    r"(?<![\d:])(?P<hour>[01]?\d|2[0-3]):(?P<minute>[0-5]\d)(?::(?P<second>[0-5]\d))?(?![\d:])\s*(?P<zone>utc|z)?", re.I
)
_TOKEN = re.compile(r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?", re.IGNORECASE)
_SENTENCE_BREAK = re.compile(r"[.;,!?\n]+(?=\s|$)")
# Kinds a stated change most likely means, first match wins.
_CHANGE_KIND_PREFERENCE = (
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ConfigMap",
    "Secret",
    "NetworkPolicy",
    "ResourceQuota",
    "HorizontalPodAutoscaler",
    "Service",
    "Ingress",
    "Node",
)


@dataclass(frozen=True, slots=True)
class StatedChange:
    text: str
    subject: ObjectRef
    time: datetime | None
    # Every object the sentence names that could have been changed, best guess first ("checkout fails since
    # the payments deploy" names two); the journal decides which one it was.
    alternatives: tuple[ObjectRef, ...] = ()

    @property
    def candidates(self) -> tuple[ObjectRef, ...]:
        return (self.subject, *(ref for ref in self.alternatives if ref != self.subject))


@dataclass(slots=True)
class Hints:
    excluded: set[ObjectRef] = field(default_factory=set)
    mentioned: set[ObjectRef] = field(default_factory=set)
    stated_changes: list[StatedChange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def is_excluded(self, ref: ObjectRef) -> bool:
        return ref in self.excluded


def sentences(text: str) -> list[str]:
    return [part.strip() for part in _SENTENCE_BREAK.split(text) if part.strip()]


def named_objects(text: str, snapshot: ClusterSnapshot) -> list[ObjectRef]:
    """Objects whose exact name appears as a word in the text (any kind, Nodes included)."""
    by_name: dict[str, list[ObjectRef]] = {}
    for ref in snapshot.objects:
        if ref.kind not in ("Pod", "ReplicaSet", "EndpointSlice"):
            by_name.setdefault(ref.name.lower(), []).append(ref)
    found: list[ObjectRef] = []
    for token in _TOKEN.findall(text):
        for ref in by_name.get(token.lower(), []):
            if ref not in found:
                found.append(ref)
    return found


def clock_times(text: str, reference: datetime) -> list[tuple[str, datetime]]:
    """Clock times in the text (`10:05`, `10:05:30 UTC`) on the reference's UTC day; a time later than the
    reference by over an hour is read as the day before."""
    found = []
    day = reference.astimezone(UTC)
    for match in _CLOCK.finditer(text):
        moment = day.replace(
            hour=int(match["hour"]), minute=int(match["minute"]), second=int(match["second"] or 0), microsecond=0
        )
        if moment > reference + timedelta(hours=1):
            moment -= timedelta(days=1)
        found.append((match.group(0).strip(), moment))
    return found


def _change_subjects(refs: Iterable[ObjectRef]) -> list[ObjectRef]:
    return sorted(
        (ref for ref in refs if ref.kind in _CHANGE_KIND_PREFERENCE),
        key=lambda ref: (_CHANGE_KIND_PREFERENCE.index(ref.kind), ref),
    )


def parse_hints(question: str, user_context: Iterable[str], snapshot: ClusterSnapshot, reference: datetime) -> Hints:
    hints = Hints()
    texts = [question, *user_context]
    for text in texts:
        for sentence in sentences(text):
            names = named_objects(sentence, snapshot)
            hints.mentioned.update(names)
            if _EXCLUDE.search(sentence):
                hints.excluded.update(names)
                continue
            if not _CHANGE.search(sentence):
                continue
            subjects = _change_subjects(names)
            if not subjects:
                continue
            times = clock_times(sentence, reference)
            when = times[0][1] if times else None
            if times and not re.search(r"utc|z\b", times[0][0], re.IGNORECASE):
                hints.notes.append(f"Read '{times[0][0]}' in \"{sentence}\" as {iso(times[0][1])} (UTC assumed).")
            hints.stated_changes.append(StatedChange(sentence, subjects[0], when, tuple(subjects[1:])))
    hints.mentioned -= hints.excluded
    return hints


def question_target(question: str, snapshot: ClusterSnapshot) -> ObjectRef | None:
    """The object a question is about when it names exactly one workload or Service name."""
    preferred = ("Deployment", "StatefulSet", "DaemonSet", "Service", "Ingress", "Job", "CronJob", "Node")
    named = [ref for ref in named_objects(question, snapshot) if ref.kind in preferred]
    if not named:
        return None
    names = {ref.name for ref in named}
    if len(names) != 1:
        return None
    return sorted(named, key=lambda ref: preferred.index(ref.kind))[0]
