"""Change records rebuilt after a restart from what the cluster still shows: ReplicaSet revisions and Events.

ReplicaSet history gives rollouts (each ReplicaSet's creation is a template change); ScalingReplicaSet Events give
scales that happened after a ReplicaSet was created. A rollback reuses an old ReplicaSet, so its time is unknown
here: such a revision is dated by its ReplicaSet's creation and says so in the note."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from datetime import timedelta

from inquest.engine.diff import FieldChange, diff_fields, template_fields
from inquest.engine.journal import ChangeRecord, ChangeSource, ChangeType
from inquest.engine.objects import Event, Workload
from inquest.engine.refs import ObjectRef

# "Scaled down replica set web-7d9 from 2 to 0" (1.29+) or "Scaled down replica set web-7d9 to 0" (before).
_SCALING_MESSAGE = re.compile(r"Scaled (?:up|down) replica set (?P<set>\S+) (?:from (?P<old>\d+) )?to (?P<new>\d+)")
# A scale this close to its ReplicaSet's creation is a rollout step, already covered by the revision record.
_ROLLOUT_STEP = timedelta(minutes=2)


def _revision_number(replica_set: Workload) -> int:
    return int(replica_set.revision) if replica_set.revision.isdigit() else 0


def _deployment_history(replica_sets: Iterable[Workload]) -> dict[ObjectRef, list[Workload]]:
    history: dict[ObjectRef, list[Workload]] = defaultdict(list)
    for replica_set in replica_sets:
        owner = replica_set.meta.controller
        if replica_set.meta.kind == "ReplicaSet" and owner is not None and owner.kind == "Deployment":
            history[ObjectRef("Deployment", replica_set.meta.namespace, owner.name)].append(replica_set)
    for sets in history.values():
        sets.sort(key=_revision_number)
    return history


def records_from_replicasets(replica_sets: Iterable[Workload]) -> list[ChangeRecord]:
    """One rollout record per ReplicaSet with a creation time, diffed against the previous revision's template."""
    records = []
    for deployment, sets in _deployment_history(replica_sets).items():
        previous: Workload | None = None
        for replica_set in sets:
            created = replica_set.meta.created
            if created is None:
                previous = replica_set
                continue
            old_fields = template_fields(previous.template) if previous else {}
            changes = diff_fields(old_fields, template_fields(replica_set.template))
            # The pod-template-hash label differs on every ReplicaSet; it is not a change anyone made.
            changes = [change for change in changes if change.path != "template.labels"]
            revision_change = FieldChange("revision", previous.revision if previous else None, replica_set.revision)
            rolled_back = previous is not None and previous.meta.created is not None and created < previous.meta.created
            records.append(
                ChangeRecord(
                    time=created,
                    kind=deployment.kind,
                    namespace=deployment.namespace,
                    name=deployment.name,
                    change=ChangeType.CREATED if replica_set.revision == "1" else ChangeType.UPDATED,
                    fields=(revision_change, *changes),
                    reconstructed=True,
                    source=ChangeSource.REPLICASET_REVISION,
                    note=(
                        f"from ReplicaSet {replica_set.meta.name}"
                        + ("; a rollback to an older ReplicaSet, real time unknown" if rolled_back else "")
                    ),
                )
            )
            previous = replica_set
    return records


def records_from_events(events: Iterable[Event], replica_sets: Iterable[Workload]) -> list[ChangeRecord]:
    """Scales of a Deployment's newest ReplicaSet that were not part of its rollout (e.g. a scale to zero)."""
    newest: dict[str, Workload] = {}
    for deployment, sets in _deployment_history(replica_sets).items():
        if sets:
            newest[f"{deployment.namespace}/{sets[-1].meta.name}"] = sets[-1]
    records = []
    for event in events:
        if event.reason != "ScalingReplicaSet" or event.involved.kind != "Deployment" or event.last_seen is None:
            continue
        match = _SCALING_MESSAGE.search(event.message)
        if match is None:
            continue
        replica_set = newest.get(f"{event.involved.namespace}/{match['set']}")
        if replica_set is None:
            continue
        created = replica_set.meta.created
        if created is not None and abs(event.last_seen - created) <= _ROLLOUT_STEP:
            continue
        records.append(
            ChangeRecord(
                time=event.last_seen,
                kind="Deployment",
                namespace=event.involved.namespace,
                name=event.involved.name,
                change=ChangeType.SCALED,
                fields=(FieldChange("replicas", match["old"], match["new"]),),
                reconstructed=True,
                source=ChangeSource.EVENT,
                note=f"from Event: {event.message}",
            )
        )
    return records
