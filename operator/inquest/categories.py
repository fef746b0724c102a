"""Enumerations shared by the API, the engine and the benchmark, so that each means the same everywhere."""

from __future__ import annotations

from enum import StrEnum


class Category(StrEnum):
    """What kind of root cause a finding names."""

    IMAGE_PULL = "ImagePull"
    CRASH_LOOP = "CrashLoop"
    OOM_KILLED = "OOMKilled"
    CPU_THROTTLING = "CPUThrottling"
    PROBE_FAILURE = "ProbeFailure"
    BAD_ROLLOUT = "BadRollout"
    CONFIG_CHANGE = "ConfigChange"
    SERVICE_MISCONFIG = "ServiceMisconfig"
    NETWORK_POLICY = "NetworkPolicy"
    NETWORK_DEGRADATION = "NetworkDegradation"
    SCHEDULING = "Scheduling"
    QUOTA = "Quota"
    CAPACITY = "Capacity"
    SCALED_TO_ZERO = "ScaledToZero"
    STORAGE = "Storage"
    NODE_FAILURE = "NodeFailure"
    APPLICATION_ERROR = "ApplicationError"
    NO_FAULT = "NoFault"


class ConcludedReason(StrEnum):
    """The reason of the Investigation's `Concluded` condition."""

    INVESTIGATING = "Investigating"
    ROOT_CAUSE_IDENTIFIED = "RootCauseIdentified"
    INCONCLUSIVE = "Inconclusive"
    NO_FAULT_FOUND = "NoFaultFound"
    FAILED = "Failed"


class EvidenceSource(StrEnum):
    KUBERNETES = "Kubernetes"
    JOURNAL = "Journal"
    PROMETHEUS = "Prometheus"
    GRAPH = "Graph"


class HypothesisVerdict(StrEnum):
    SUPPORTED = "Supported"
    RULED_OUT = "RuledOut"
    UNKNOWN = "Unknown"


class TargetKind(StrEnum):
    DEPLOYMENT = "Deployment"
    STATEFUL_SET = "StatefulSet"
    DAEMON_SET = "DaemonSet"
    REPLICA_SET = "ReplicaSet"
    POD = "Pod"
    SERVICE = "Service"
    INGRESS = "Ingress"
    JOB = "Job"
    CRON_JOB = "CronJob"
    NODE = "Node"
    NAMESPACE = "Namespace"


class Mode(StrEnum):
    ONCE = "Once"
    CONTINUOUS = "Continuous"
