"""The reasoning core: pure functions from cluster snapshots to ranked findings (no API clients, no I/O)."""

from inquest.engine.candidates import Candidate, Evidence
from inquest.engine.context import DataSources, Direction, EvidenceContext, MetricEdge, MetricSignal, Signal
from inquest.engine.graph import DependencyGraph, Edge, EdgeType
from inquest.engine.graph_builder import build_graph
from inquest.engine.investigate import investigate
from inquest.engine.journal import ChangeJournal, ChangeRecord, ChangeSource, ChangeType, JournalGap
from inquest.engine.objects import project
from inquest.engine.redaction import redact
from inquest.engine.refs import ObjectRef
from inquest.engine.report import Finding, HypothesisResult, Report
from inquest.engine.snapshot import ClusterSnapshot

__all__ = [
    "Candidate",
    "ChangeJournal",
    "ChangeRecord",
    "ChangeSource",
    "ChangeType",
    "ClusterSnapshot",
    "DataSources",
    "DependencyGraph",
    "Direction",
    "Edge",
    "EdgeType",
    "Evidence",
    "EvidenceContext",
    "Finding",
    "HypothesisResult",
    "JournalGap",
    "MetricEdge",
    "MetricSignal",
    "ObjectRef",
    "Report",
    "Signal",
    "build_graph",
    "investigate",
    "project",
    "redact",
]
