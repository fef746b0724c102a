"""Object references: the identity of every node in the graph, every journal record and every finding."""

from __future__ import annotations

from dataclasses import dataclass

# Kinds without a namespace; their refs carry namespace "".
CLUSTER_SCOPED_KINDS = frozenset({"Node", "Namespace", "PersistentVolume", "StorageClass"})


@dataclass(frozen=True, slots=True, order=True)
class ObjectRef:
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        if not self.namespace:
            return f"{self.kind}/{self.name}"
        return f"{self.kind}/{self.namespace}/{self.name}"

    @classmethod
    def parse(cls, text: str) -> ObjectRef:
        """Reads `Kind/namespace/name` or, for cluster-scoped kinds, `Kind/name`."""
        parts = text.split("/")
        if len(parts) == 3:
            return cls(parts[0], parts[1], parts[2])
        if len(parts) == 2:
            return cls(parts[0], "", parts[1])
        raise ValueError(f"not an object reference (Kind/namespace/name): {text!r}")


def node_ref(name: str) -> ObjectRef:
    return ObjectRef("Node", "", name)
