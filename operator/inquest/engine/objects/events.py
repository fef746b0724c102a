"""Events from both APIs (core/v1 and events.k8s.io/v1) in one shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from inquest.engine.objects.meta import JsonObject, Projection, mapping, optional_int, read_meta, text
from inquest.engine.redaction import redact
from inquest.engine.refs import CLUSTER_SCOPED_KINDS, ObjectRef
from inquest.engine.timeutil import parse_time


@dataclass(frozen=True, slots=True)
class Event(Projection):
    involved: ObjectRef = field(default_factory=lambda: ObjectRef("", "", ""))
    reason: str = ""
    type: str = "Normal"
    message: str = ""
    count: int = 1
    first_time: datetime | None = None
    last_time: datetime | None = None
    source: str = ""

    @property
    def is_warning(self) -> bool:
        return self.type == "Warning"

    @property
    def first_seen(self) -> datetime | None:
        return self.first_time or self.last_time

    @property
    def last_seen(self) -> datetime | None:
        return self.last_time or self.first_time


def project_event(obj: JsonObject) -> Event:
    """core/v1 carries involvedObject/message/count/firstTimestamp/lastTimestamp; events.k8s.io/v1 carries
    regarding/note/deprecated*/eventTime; both may carry a series."""
    meta = read_meta(obj, "Event")
    regarding = mapping(obj.get("involvedObject") or obj.get("regarding"))
    kind = text(regarding.get("kind"))
    involved = ObjectRef(
        kind,
        "" if kind in CLUSTER_SCOPED_KINDS else text(regarding.get("namespace")) or meta.namespace,
        text(regarding.get("name")),
    )
    series = mapping(obj.get("series"))
    event_time = parse_time(obj.get("eventTime"))
    first = parse_time(obj.get("firstTimestamp") or obj.get("deprecatedFirstTimestamp")) or event_time
    last = (
        parse_time(series.get("lastObservedTime"))
        or parse_time(obj.get("lastTimestamp") or obj.get("deprecatedLastTimestamp"))
        or event_time
        or first
    )
    count = optional_int(series.get("count")) or optional_int(obj.get("count") or obj.get("deprecatedCount")) or 1
    source = mapping(obj.get("source"))
    return Event(
        meta=meta,
        involved=involved,
        reason=text(obj.get("reason")),
        type=text(obj.get("type")) or "Normal",
        message=redact(text(obj.get("message") if "message" in obj else obj.get("note"))),
        count=count,
        first_time=first or meta.created,
        last_time=last or meta.created,
        source=text(source.get("component")) or text(obj.get("reportingController")),
    )
