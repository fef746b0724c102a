"""The metric catalog: which PromQL to run for which signal, and how to read the series it returns.

A template is one query per namespace (or one per cluster for node and DNS metrics) that returns every series
of its family, grouped by the labels that name objects; the analysis (signals.py) maps series to objects,
aggregates them per workload or Service and finds onsets. Templates are pydantic models so a ConfigMap can
override them (Catalog.merged). Placeholders in `query`:

    {ns}      the namespace matcher, escaped: namespace="shop" (empty for cluster-scoped templates)
    {window}  the rate window that fits the step: 120s
    {by}      the grouping labels, derived from the template's label mapping: namespace, pod, code

Only these three names are replaced, so PromQL's own braces stay as written: `http_requests_total{{ns}}`
is the selector `http_requests_total{namespace="shop"}`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from inquest.engine.context import Direction, Signal
from inquest.metrics.onset import OnsetPolicy
from inquest.metrics.promql import check_label_name, check_metric_name, matcher, regex_alternation


class ExtraSignal(StrEnum):
    """Signal names beyond the engine's: kept on MetricSignal and shown as evidence, not interpreted (yet)."""

    CONTAINER_RESTARTS = "container_restarts"
    CONTAINER_WAITING = "container_waiting"
    CONTAINER_TERMINATED = "container_terminated"
    REPLICAS_UNAVAILABLE = "replicas_unavailable"
    HPA_AT_MAX = "hpa_at_max"
    PVC_PENDING = "pvc_pending"
    QUOTA_SATURATION = "quota_saturation"
    VOLUME_SATURATION = "volume_saturation"


class Side(StrEnum):
    SERVER = "server"
    CLIENT = "client"


class Scope(StrEnum):
    NAMESPACE = "namespace"  # one query per investigated namespace
    CLUSTER = "cluster"  # one query for the cluster (nodes, CoreDNS)


class Kind(StrEnum):
    REQUESTS = "requests"  # a request rate split by a status label: gives request_rate and an error ratio
    VALUE = "value"  # the query's value is the signal: a latency, a saturation ratio, a level
    TARGETS = "targets"  # `up`: 1 scraped, 0 down; read for gaps, never as a signal


# How an object label's value is turned into an ObjectRef (signals.py):
#   Pod      the pod's workload (through the snapshot's owner chain, guessed from the name for gone pods)
#   Workload a Deployment/StatefulSet/DaemonSet/Job of that name (Deployment when none is known)
#   Service  a Service of that name (a workload of that name when no such Service exists)
#   Host     a host name such as payments.shop.svc.cluster.local:8080: the Service or workload it names,
#            only when it exists in the snapshot (anything else is outside the cluster)
#   Node     a node name or an instance address (the port is dropped)
#   any other Kind is taken literally: PersistentVolumeClaim, HorizontalPodAutoscaler, ResourceQuota, ...
MAPPED_KINDS = frozenset({"Pod", "Workload", "Service", "Host", "Node"})

_KIND_PATTERN = re.compile(r"[A-Z][A-Za-z]*")
_PLACEHOLDER = re.compile(r"\{(ns|window|by)\}")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ObjectLabel(_Model):
    """A series label naming an object; in a list the first label present (with a known value) wins."""

    label: str
    kind: str
    namespace_label: str | None = None  # where the object's namespace is; None: the series' namespace
    side: Side | None = None  # only for series of this side (span metrics name the callee differently)

    @field_validator("label", "namespace_label")
    @classmethod
    def _label_name(cls, value: str | None) -> str | None:
        return None if value is None else check_label_name(value)

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        if _KIND_PATTERN.fullmatch(value) is None:
            raise ValueError(f"kind must be a Kubernetes kind or one of {sorted(MAPPED_KINDS)}, got {value!r}")
        return value


class ErrorMatch(_Model):
    """Which series count as errors: the first of `labels` present fully matches `pattern`."""

    labels: tuple[str, ...]
    pattern: str

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(check_label_name(name) for name in value)

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        re.compile(value)
        return value

    def is_error(self, labels: Mapping[str, str]) -> bool:
        value = next((labels[name] for name in self.labels if name in labels), None)
        return value is not None and re.fullmatch(self.pattern, value) is not None


class SideRule(_Model):
    """The label telling client-side from server-side series; series with other values are skipped."""

    label: str
    values: dict[str, Side]

    @field_validator("label")
    @classmethod
    def _label(cls, value: str) -> str:
        return check_label_name(value)


class Thresholds(_Model):
    """The levels a change must reach to count (see onset.OnsetPolicy)."""

    floor: float = Field(0.0, ge=0)
    min_level: float = 0.0
    min_ratio: float | None = Field(None, gt=1)  # None: the catalog's default


_SERVER_OBJECTS = (
    ObjectLabel(label="pod", kind="Pod"),
    ObjectLabel(label="deployment", kind="Deployment"),
    ObjectLabel(label="workload", kind="Workload"),
    ObjectLabel(label="service", kind="Service"),
)
_POD = (ObjectLabel(label="pod", kind="Pod"),)
_NODE = (
    ObjectLabel(label="node", kind="Node"),
    ObjectLabel(label="kubernetes_node", kind="Node"),
    ObjectLabel(label="nodename", kind="Node"),
    ObjectLabel(label="instance", kind="Node"),
)


class QueryTemplate(_Model):
    name: str
    group: str  # what is missing when no template of the group can run: "request metrics"
    signal: str  # VALUE: the signal; REQUESTS: the error signal (the request rate is `request_signal`)
    metrics: tuple[str, ...]  # every metric the query needs (discovery)
    query: str
    kind: Kind = Kind.VALUE
    scope: Scope = Scope.NAMESPACE
    namespace_label: str | None = None  # None: the catalog's
    namespace_optional: bool = False  # also match series without the namespace label (resolved by name)
    subject: tuple[ObjectLabel, ...] = _SERVER_OBJECTS  # empty: the callee
    caller: tuple[ObjectLabel, ...] = ()
    callee: tuple[ObjectLabel, ...] = ()
    side: Side = Side.SERVER
    side_rule: SideRule | None = None
    errors: ErrorMatch | None = None
    request_signal: str | None = Signal.REQUEST_RATE
    bad: tuple[Direction, ...] = (Direction.UP,)
    aggregate: Literal["sum", "max", "mean"] = "max"  # how a workload's series combine
    keep_apart: tuple[str, ...] = ()  # labels that split a workload's series: container, reason, resource
    extra_by: tuple[str, ...] = ()
    thresholds: Thresholds = Thresholds()
    request_thresholds: Thresholds = Thresholds(floor=0.05, min_level=0.2)
    unit: Literal["ratio", "per_second", "seconds", "milliseconds", "count", "per_minute"] = "ratio"
    seasonal: bool = True  # compared with the day before (traffic has daily peaks; state metrics do not)
    enabled: bool = True

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("a template needs at least one metric")
        return tuple(check_metric_name(name) for name in value)

    @field_validator("namespace_label")
    @classmethod
    def _namespace_label(cls, value: str | None) -> str | None:
        return None if value is None else check_label_name(value)

    @field_validator("keep_apart", "extra_by")
    @classmethod
    def _label_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(check_label_name(name) for name in value)

    @model_validator(mode="after")
    def _consistent(self) -> QueryTemplate:
        if self.kind == Kind.REQUESTS and self.errors is None:
            raise ValueError(f"template {self.name}: a requests template needs `errors`")
        if not self.subject and not self.callee:
            raise ValueError(f"template {self.name}: needs `subject` or `callee` labels")
        if self.scope == Scope.NAMESPACE and "{ns}" not in self.query:
            raise ValueError(f"template {self.name}: a namespaced query must use the {{ns}} placeholder")
        return self

    @property
    def object_labels(self) -> tuple[ObjectLabel, ...]:
        return self.subject or self.callee

    def by_labels(self, namespace_label: str, aliases: Mapping[str, str]) -> tuple[str, ...]:
        """The grouping labels: everything the mapping reads, plus the alias sources of those labels."""
        wanted: list[str] = [namespace_label]
        for item in (*self.subject, *self.caller, *self.callee):
            wanted.append(item.label)
            if item.namespace_label:
                wanted.append(item.namespace_label)
        if self.side_rule is not None:
            wanted.append(self.side_rule.label)
        if self.errors is not None and self.kind == Kind.REQUESTS:
            wanted += self.errors.labels
        wanted += [*self.keep_apart, *self.extra_by]
        wanted += [source for source, target in aliases.items() if target in wanted]
        return tuple(dict.fromkeys(wanted))


class OnsetSettings(_Model):
    k: float = Field(4.0, gt=0)
    soft_k: float = Field(2.0, gt=0)
    min_ratio: float = Field(1.5, gt=1)
    relative_floor: float = Field(0.05, ge=0)
    sustain: int = Field(4, ge=1)
    sustain_fraction: float = Field(0.75, gt=0, le=1)
    min_baseline_points: int = Field(6, ge=2)
    daily_tolerance: float = Field(0.5, ge=0, le=1)

    def policy(self, thresholds: Thresholds, directions: tuple[Direction, ...]) -> OnsetPolicy:
        return OnsetPolicy(
            k=self.k,
            soft_k=self.soft_k,
            min_ratio=thresholds.min_ratio or self.min_ratio,
            floor=thresholds.floor,
            relative_floor=self.relative_floor,
            min_level=thresholds.min_level,
            sustain=self.sustain,
            sustain_fraction=self.sustain_fraction,
            min_baseline_points=self.min_baseline_points,
            directions=directions,
            daily_tolerance=self.daily_tolerance,
        )


_HTTP_5XX = r"5\d\d"
_GRPC_ERRORS = "Unknown|DeadlineExceeded|Unimplemented|Internal|Unavailable|DataLoss"
_CONTAINERS = 'container!="", container!="POD"'
_THROTTLED = f"container_cpu_cfs_throttled_periods_total{{{{ns}}, {_CONTAINERS}}}"


def _mean_latency(metric: str) -> str:
    """Mean latency from a histogram or summary: rate(sum)/rate(count), the same for both."""
    return (
        f"sum by ({{by}}) (rate({metric}_sum{{{{ns}}}}[{{window}}]))"
        f" / sum by ({{by}}) (rate({metric}_count{{{{ns}}}}[{{window}}]))"
    )


def _request_rate(metric: str, matchers: str = "{ns}") -> str:
    selector = f"{metric}{{{matchers}}}" if matchers else metric
    return f"sum by ({{by}}) (rate({selector}[{{window}}]))"


_ISTIO_SIDES = SideRule(
    label="reporter", values={"source": Side.CLIENT, "destination": Side.SERVER, "waypoint": Side.SERVER}
)
_ISTIO_CALLER = (ObjectLabel(label="source_workload", kind="Workload", namespace_label="source_workload_namespace"),)
_ISTIO_CALLEE = (
    ObjectLabel(label="destination_service_name", kind="Service", namespace_label="destination_service_namespace"),
    ObjectLabel(label="destination_workload", kind="Workload", namespace_label="destination_workload_namespace"),
)
_SPAN_SIDES = SideRule(
    label="span_kind",
    values={
        "SPAN_KIND_SERVER": Side.SERVER,
        "SPAN_KIND_CONSUMER": Side.SERVER,
        "SPAN_KIND_CLIENT": Side.CLIENT,
        "SPAN_KIND_PRODUCER": Side.CLIENT,
    },
)
_SPAN_CALLER = (ObjectLabel(label="service_name", kind="Workload", side=Side.CLIENT),)
_SPAN_CALLEE = (
    ObjectLabel(label="peer_service", kind="Host", side=Side.CLIENT),
    ObjectLabel(label="server_address", kind="Host", side=Side.CLIENT),
    ObjectLabel(label="net_peer_name", kind="Host", side=Side.CLIENT),
    ObjectLabel(label="service_name", kind="Workload", side=Side.SERVER),
)


def _http_requests(name: str, metric: str, status_labels: tuple[str, ...], pattern: str = _HTTP_5XX) -> QueryTemplate:
    return QueryTemplate(
        name=name,
        group="request metrics",
        signal=Signal.ERROR_RATE,
        kind=Kind.REQUESTS,
        metrics=(metric,),
        query=_request_rate(metric),
        errors=ErrorMatch(labels=status_labels, pattern=pattern),
        thresholds=Thresholds(floor=0.01, min_level=0.02),
        aggregate="sum",
    )


def _latency(name: str, metric: str, unit: Literal["seconds", "milliseconds"], **extra: Any) -> QueryTemplate:
    floor = 0.005 if unit == "seconds" else 5.0
    fields: dict[str, Any] = {
        "name": name,
        "group": "latency metrics",
        "signal": Signal.LATENCY,
        "metrics": (f"{metric}_sum", f"{metric}_count"),
        "query": _mean_latency(metric),
        "thresholds": Thresholds(floor=floor),
        "aggregate": "mean",
        "unit": unit,
    }
    fields.update(extra)
    return QueryTemplate(**fields)


def _span_requests(name: str, metric: str) -> QueryTemplate:
    return QueryTemplate(
        name=name,
        group="request metrics",
        signal=Signal.ERROR_RATE,
        kind=Kind.REQUESTS,
        metrics=(metric,),
        query=_request_rate(metric),
        namespace_label="k8s_namespace_name",
        namespace_optional=True,
        subject=(),
        caller=_SPAN_CALLER,
        callee=_SPAN_CALLEE,
        side_rule=_SPAN_SIDES,
        errors=ErrorMatch(labels=("status_code",), pattern="STATUS_CODE_ERROR"),
        thresholds=Thresholds(floor=0.01, min_level=0.02),
        aggregate="sum",
    )


def _span_latency(name: str, metric: str) -> QueryTemplate:
    return _latency(
        name,
        metric,
        "milliseconds",
        namespace_label="k8s_namespace_name",
        namespace_optional=True,
        subject=(),
        caller=_SPAN_CALLER,
        callee=_SPAN_CALLEE,
        side_rule=_SPAN_SIDES,
    )


def _ksm(name: str, signal: str, query: str, metrics: tuple[str, ...], **extra: Any) -> QueryTemplate:
    fields: dict[str, Any] = {
        "name": name,
        "group": "Kubernetes state metrics (kube-state-metrics)",
        "signal": signal,
        "metrics": metrics,
        "query": query,
        "subject": _POD,
        "seasonal": False,
        "thresholds": Thresholds(floor=0.5, min_level=0.5),
        "aggregate": "sum",
        "unit": "count",
    }
    fields.update(extra)
    return QueryTemplate(**fields)


def default_templates() -> tuple[QueryTemplate, ...]:
    return (
        # Scrape health: read for gaps (a target down is unknown, never healthy).
        QueryTemplate(
            name="targets",
            group="scrape targets",
            signal="up",
            kind=Kind.TARGETS,
            metrics=("up",),
            query="max by ({by}) (up{{ns}})",
            subject=_POD,
            extra_by=("job", "instance"),
            seasonal=False,
        ),
        # HTTP and gRPC RED metrics, server side, from the instrumented pods.
        _http_requests("http_requests", "http_requests_total", ("code", "status", "status_code")),
        _http_requests(
            "http_server_requests", "http_server_requests_seconds_count", ("status", "outcome"), r"5\d\d|SERVER_ERROR"
        ),
        _http_requests(
            "http_request_duration", "http_request_duration_seconds_count", ("code", "status_code", "status")
        ),
        _http_requests(
            "otel_http_server", "http_server_request_duration_seconds_count", ("http_response_status_code",)
        ),
        _http_requests("otel_http_server_legacy", "http_server_duration_milliseconds_count", ("http_status_code",)),
        _http_requests("grpc_server", "grpc_server_handled_total", ("grpc_code",), _GRPC_ERRORS),
        _latency("http_request_latency", "http_request_duration_seconds", "seconds"),
        _latency("http_server_requests_latency", "http_server_requests_seconds", "seconds"),
        _latency("otel_http_server_latency", "http_server_request_duration_seconds", "seconds"),
        _latency("otel_http_server_legacy_latency", "http_server_duration_milliseconds", "milliseconds"),
        _latency("grpc_server_latency", "grpc_server_handling_seconds", "seconds"),
        # Istio: both reporters, so calls are seen from the caller and from the callee.
        QueryTemplate(
            name="istio_requests",
            group="request metrics",
            signal=Signal.ERROR_RATE,
            kind=Kind.REQUESTS,
            metrics=("istio_requests_total",),
            query=_request_rate("istio_requests_total"),
            namespace_label="destination_service_namespace",
            subject=(),
            caller=_ISTIO_CALLER,
            callee=_ISTIO_CALLEE,
            side_rule=_ISTIO_SIDES,
            errors=ErrorMatch(labels=("response_code",), pattern=r"5\d\d|0"),
            thresholds=Thresholds(floor=0.01, min_level=0.02),
            aggregate="sum",
        ),
        _latency(
            "istio_latency",
            "istio_request_duration_milliseconds",
            "milliseconds",
            namespace_label="destination_service_namespace",
            subject=(),
            caller=_ISTIO_CALLER,
            callee=_ISTIO_CALLEE,
            side_rule=_ISTIO_SIDES,
        ),
        # OpenTelemetry span metrics (the connector's current and older names): client spans name the peer.
        _span_requests("span_calls", "traces_span_metrics_calls_total"),
        _span_requests("span_calls_legacy", "calls_total"),
        _span_latency("span_latency", "traces_span_metrics_duration_milliseconds"),
        _span_latency("span_latency_legacy", "duration_milliseconds"),
        # cAdvisor (with kube-state-metrics for limits).
        QueryTemplate(
            name="cpu_throttling",
            group="CPU metrics (cAdvisor)",
            signal=Signal.CPU_THROTTLING,
            metrics=("container_cpu_cfs_throttled_periods_total", "container_cpu_cfs_periods_total"),
            query=(
                f"sum by ({{by}}) (rate({_THROTTLED}[{{window}}]))"
                f" / sum by ({{by}}) (rate(container_cpu_cfs_periods_total{{{{ns}}, {_CONTAINERS}}}[{{window}}]))"
            ),
            subject=_POD,
            keep_apart=("container",),
            thresholds=Thresholds(floor=0.02, min_level=0.1),
        ),
        QueryTemplate(
            name="cpu_saturation",
            group="CPU metrics (cAdvisor)",
            signal=Signal.CPU_SATURATION,
            metrics=("container_cpu_usage_seconds_total", "kube_pod_container_resource_limits"),
            query=(
                f"sum by ({{by}}) (rate(container_cpu_usage_seconds_total{{{{ns}}, {_CONTAINERS}}}[{{window}}]))"
                ' / sum by ({by}) (kube_pod_container_resource_limits{{ns}, resource="cpu"})'
            ),
            subject=_POD,
            keep_apart=("container",),
            thresholds=Thresholds(floor=0.05, min_level=0.8),
        ),
        QueryTemplate(
            name="memory_saturation",
            group="memory metrics (cAdvisor)",
            signal=Signal.MEMORY_SATURATION,
            metrics=("container_memory_working_set_bytes", "kube_pod_container_resource_limits"),
            query=(
                f"max by ({{by}}) (container_memory_working_set_bytes{{{{ns}}, {_CONTAINERS}}})"
                ' / max by ({by}) (kube_pod_container_resource_limits{{ns}, resource="memory"})'
            ),
            subject=_POD,
            keep_apart=("container",),
            thresholds=Thresholds(floor=0.05, min_level=0.8, min_ratio=1.2),
            seasonal=False,
        ),
        QueryTemplate(
            name="pod_network_errors",
            group="network metrics (cAdvisor)",
            signal=Signal.NETWORK_ERRORS,
            metrics=("container_network_receive_errors_total", "container_network_transmit_errors_total"),
            query=(
                "sum by ({by}) (rate(container_network_receive_errors_total{{ns}}[{window}]))"
                " + sum by ({by}) (rate(container_network_transmit_errors_total{{ns}}[{window}]))"
            ),
            subject=_POD,
            aggregate="sum",
            thresholds=Thresholds(floor=0.05, min_level=0.2),
            unit="per_second",
        ),
        # kube-state-metrics: state over time, which the API snapshot only has for now.
        _ksm(
            "restarts",
            ExtraSignal.CONTAINER_RESTARTS,
            "60 * sum by ({by}) (rate(kube_pod_container_status_restarts_total{{ns}}[{window}]))",
            ("kube_pod_container_status_restarts_total",),
            thresholds=Thresholds(floor=0.05, min_level=0.1),
            unit="per_minute",
        ),
        _ksm(
            "waiting",
            ExtraSignal.CONTAINER_WAITING,
            "max by ({by}) (kube_pod_container_status_waiting_reason{{ns}})",
            ("kube_pod_container_status_waiting_reason",),
            keep_apart=("reason",),
        ),
        _ksm(
            "terminated",
            ExtraSignal.CONTAINER_TERMINATED,
            "max by ({by}) (kube_pod_container_status_last_terminated_reason{{ns}})",
            ("kube_pod_container_status_last_terminated_reason",),
            keep_apart=("reason",),
        ),
        _ksm(
            "replicas_unavailable",
            ExtraSignal.REPLICAS_UNAVAILABLE,
            "max by ({by}) (kube_deployment_status_replicas_unavailable{{ns}})",
            ("kube_deployment_status_replicas_unavailable",),
            subject=(ObjectLabel(label="deployment", kind="Deployment"),),
        ),
        _ksm(
            "hpa_at_max",
            ExtraSignal.HPA_AT_MAX,
            "max by ({by}) (kube_horizontalpodautoscaler_status_current_replicas{{ns}})"
            " / max by ({by}) (kube_horizontalpodautoscaler_spec_max_replicas{{ns}})",
            ("kube_horizontalpodautoscaler_status_current_replicas", "kube_horizontalpodautoscaler_spec_max_replicas"),
            subject=(ObjectLabel(label="horizontalpodautoscaler", kind="HorizontalPodAutoscaler"),),
            thresholds=Thresholds(floor=0.1, min_level=0.999, min_ratio=1.1),
            aggregate="max",
            unit="ratio",
        ),
        _ksm(
            "pvc_pending",
            ExtraSignal.PVC_PENDING,
            'max by ({by}) (kube_persistentvolumeclaim_status_phase{{ns}, phase="Pending"})',
            ("kube_persistentvolumeclaim_status_phase",),
            subject=(ObjectLabel(label="persistentvolumeclaim", kind="PersistentVolumeClaim"),),
            aggregate="max",
        ),
        _ksm(
            "quota_saturation",
            ExtraSignal.QUOTA_SATURATION,
            'max by ({by}) (kube_resourcequota{{ns}, type="used"})'
            ' / max by ({by}) (kube_resourcequota{{ns}, type="hard"} > 0)',
            ("kube_resourcequota",),
            subject=(ObjectLabel(label="resourcequota", kind="ResourceQuota"),),
            keep_apart=("resource",),
            thresholds=Thresholds(floor=0.05, min_level=0.95, min_ratio=1.1),
            aggregate="max",
            unit="ratio",
        ),
        # kubelet volume stats.
        QueryTemplate(
            name="volume_saturation",
            group="volume metrics (kubelet)",
            signal=ExtraSignal.VOLUME_SATURATION,
            metrics=("kubelet_volume_stats_used_bytes", "kubelet_volume_stats_capacity_bytes"),
            query=(
                "max by ({by}) (kubelet_volume_stats_used_bytes{{ns}})"
                " / max by ({by}) (kubelet_volume_stats_capacity_bytes{{ns}})"
            ),
            subject=(ObjectLabel(label="persistentvolumeclaim", kind="PersistentVolumeClaim"),),
            thresholds=Thresholds(floor=0.05, min_level=0.9, min_ratio=1.1),
            seasonal=False,
        ),
        # node-exporter: cluster-scoped.
        QueryTemplate(
            name="node_cpu",
            group="node metrics (node-exporter)",
            signal=Signal.CPU_SATURATION,
            metrics=("node_cpu_seconds_total",),
            query='1 - avg by ({by}) (rate(node_cpu_seconds_total{mode="idle"}[{window}]))',
            scope=Scope.CLUSTER,
            subject=_NODE,
            thresholds=Thresholds(floor=0.05, min_level=0.9, min_ratio=1.2),
        ),
        QueryTemplate(
            name="node_memory",
            group="node metrics (node-exporter)",
            signal=Signal.MEMORY_SATURATION,
            metrics=("node_memory_MemAvailable_bytes", "node_memory_MemTotal_bytes"),
            query="1 - max by ({by}) (node_memory_MemAvailable_bytes) / max by ({by}) (node_memory_MemTotal_bytes)",
            scope=Scope.CLUSTER,
            subject=_NODE,
            thresholds=Thresholds(floor=0.05, min_level=0.9, min_ratio=1.1),
            seasonal=False,
        ),
        QueryTemplate(
            name="node_network_errors",
            group="node metrics (node-exporter)",
            signal=Signal.NETWORK_ERRORS,
            metrics=("node_network_receive_errs_total", "node_network_transmit_errs_total"),
            query=(
                "sum by ({by}) (rate(node_network_receive_errs_total[{window}]))"
                " + sum by ({by}) (rate(node_network_transmit_errs_total[{window}]))"
            ),
            scope=Scope.CLUSTER,
            subject=_NODE,
            thresholds=Thresholds(floor=0.1, min_level=0.5),
            unit="per_second",
        ),
        # CoreDNS: SERVFAIL answers and slow answers are network symptoms for every client.
        QueryTemplate(
            name="coredns_responses",
            group="DNS metrics (CoreDNS)",
            signal=Signal.NETWORK_ERRORS,
            kind=Kind.REQUESTS,
            metrics=("coredns_dns_responses_total",),
            query=_request_rate("coredns_dns_responses_total", matchers=""),
            scope=Scope.CLUSTER,
            subject=_POD,
            errors=ErrorMatch(labels=("rcode",), pattern="SERVFAIL"),
            request_signal=None,
            thresholds=Thresholds(floor=0.005, min_level=0.01),
            aggregate="sum",
        ),
        _latency(
            "coredns_latency",
            "coredns_dns_request_duration_seconds",
            "seconds",
            group="DNS metrics (CoreDNS)",
            signal=Signal.NETWORK_LATENCY,
            query=(
                "sum by ({by}) (rate(coredns_dns_request_duration_seconds_sum[{window}]))"
                " / sum by ({by}) (rate(coredns_dns_request_duration_seconds_count[{window}]))"
            ),
            scope=Scope.CLUSTER,
            subject=_POD,
        ),
    )


class Catalog(_Model):
    templates: tuple[QueryTemplate, ...] = Field(default_factory=default_templates)
    namespace_label: str = "namespace"
    # Older scrape configs name the standard labels differently; series labels are renamed before mapping.
    label_aliases: dict[str, str] = Field(
        default_factory=lambda: {
            "kubernetes_namespace": "namespace",
            "kubernetes_pod_name": "pod",
            "pod_name": "pod",
            "container_name": "container",
        }
    )
    scrape_interval_seconds: float = Field(30.0, gt=0)
    min_step_seconds: float = Field(15.0, gt=0)
    max_points: int = Field(300, ge=20)
    lookback_min: timedelta = timedelta(minutes=30)
    lookback_max: timedelta = timedelta(hours=6)
    compare_previous_day: bool = True
    onset: OnsetSettings = OnsetSettings()

    @field_validator("namespace_label")
    @classmethod
    def _namespace_label(cls, value: str) -> str:
        return check_label_name(value)

    @model_validator(mode="after")
    def _unique_names(self) -> Catalog:
        names = [template.name for template in self.templates]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate template names: {', '.join(duplicates)}")
        return self

    def template(self, name: str) -> QueryTemplate:
        for template in self.templates:
            if template.name == name:
                return template
        raise KeyError(name)

    def namespace_label_of(self, template: QueryTemplate) -> str:
        return template.namespace_label or self.namespace_label

    def merged(self, overrides: Mapping[str, Any]) -> Catalog:
        """This catalog with overrides (a ConfigMap's parsed YAML): top-level settings replace, `templates` merge
        by name (fields of an existing template are replaced, a new name is added, `enabled: false` disables)."""
        data = self.model_dump()
        templates = {template["name"]: template for template in data["templates"]}
        for key, value in overrides.items():
            if key != "templates":
                data[key] = value
                continue
            for item in value:
                name = item["name"]
                templates[name] = {**templates.get(name, {}), **item}
        data["templates"] = list(templates.values())
        return Catalog.model_validate(data)


DEFAULT_CATALOG = Catalog()


@dataclass(frozen=True, slots=True)
class PlannedQuery:
    """One range query. `previous_day` queries cover the same span a day earlier (for daily patterns)."""

    template: str
    namespace: str | None
    query: str
    start: datetime
    end: datetime
    step_seconds: float
    previous_day: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    catalog: Catalog = field(compare=False)
    namespaces: tuple[str, ...]
    window_start: datetime
    window_end: datetime
    range_start: datetime  # window_start minus the lookback that gives the baseline
    step_seconds: float
    rate_window_seconds: float
    queries: tuple[PlannedQuery, ...]
    missing: tuple[str, ...] = ()  # one sentence per group of metrics that discovery did not find
    missing_summary: str = ""  # all of them in one short sentence, for unknowns
    notes: tuple[str, ...] = ()
    discovery_failed: bool = False

    def planned_templates(self) -> set[str]:
        return {query.template for query in self.queries}


# Steps a human would pick; the plan takes the smallest that keeps a range query under max_points.
_NICE_STEPS = (5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count", "_total")


def choose_step(span_seconds: float, min_step: float, max_points: int) -> float:
    """The smallest nice step (at least min_step) that covers the span in at most max_points points."""
    wanted = max(min_step, span_seconds / max_points)
    for step in _NICE_STEPS:
        if step >= wanted:
            return float(step)
    return float(math.ceil(wanted))


def rate_window(step: float, scrape_interval: float) -> float:
    """At least four scrapes (rate needs two samples, with margin for a missed one) and two steps (no gaps)."""
    return float(math.ceil(max(2 * step, 4 * scrape_interval)))


def _available(metric: str, families: set[str]) -> bool:
    """Discovery may list names (`x_count`) or metadata families (`x`, counters without `_total`)."""
    if metric in families:
        return True
    return any(metric.endswith(suffix) and metric.removesuffix(suffix) in families for suffix in _HISTOGRAM_SUFFIXES)


def render_query(template: QueryTemplate, catalog: Catalog, namespace: str | None, window_seconds: float) -> str:
    """The template's PromQL with its placeholders filled in; the namespace is escaped (promql.matcher)."""
    namespace_label = catalog.namespace_label_of(template)
    if namespace is None:
        ns = ""
    elif template.namespace_optional:
        ns = matcher(namespace_label, regex_alternation([namespace, ""]), "=~")
    else:
        ns = matcher(namespace_label, namespace)
    values = {
        "ns": ns,
        "window": f"{int(window_seconds)}s",
        "by": ", ".join(template.by_labels(namespace_label, catalog.label_aliases)),
    }
    return _PLACEHOLDER.sub(lambda found: values[found.group(1)], template.query)


def _family_names(metrics: tuple[str, ...]) -> list[str]:
    """`x_sum` and `x_count` read as the family `x` in a sentence."""
    names = []
    for metric in metrics:
        base = metric.removesuffix("_sum").removesuffix("_count")
        paired = base != metric and f"{base}_sum" in metrics and f"{base}_count" in metrics
        names.append(base if paired else metric)
    return list(dict.fromkeys(names))


def _join(words: Iterable[str]) -> str:
    items = list(words)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def plan_queries(
    catalog: Catalog,
    available_families: set[str] | None,
    namespaces: Iterable[str],
    window_start: datetime,
    window_end: datetime,
) -> Plan:
    """The range queries for an investigation window. `available_families=None` means discovery failed:
    every template is planned and the plan says so (empty answers then mean "absent", not "healthy")."""
    if window_end <= window_start:
        raise ValueError(f"the window must end after it starts ({window_start} .. {window_end})")
    targets = tuple(dict.fromkeys(namespaces))
    lookback = min(max(window_end - window_start, catalog.lookback_min), catalog.lookback_max)
    range_start = window_start - lookback
    step = choose_step((window_end - range_start).total_seconds(), catalog.min_step_seconds, catalog.max_points)
    window = rate_window(step, catalog.scrape_interval_seconds)
    day = timedelta(days=1)
    queries: list[PlannedQuery] = []
    runnable_groups: set[str] = set()
    looked_for: dict[str, list[str]] = {}
    for template in catalog.templates:
        if not template.enabled:
            continue
        looked_for.setdefault(template.group, []).extend(_family_names(template.metrics))
        if available_families is not None and not all(
            _available(metric, available_families) for metric in template.metrics
        ):
            continue
        runnable_groups.add(template.group)
        scopes: tuple[str | None, ...] = targets if template.scope == Scope.NAMESPACE else (None,)
        for namespace in scopes:
            query = render_query(template, catalog, namespace, window)
            queries.append(PlannedQuery(template.name, namespace, query, range_start, window_end, step))
            if template.seasonal and catalog.compare_previous_day:
                queries.append(
                    PlannedQuery(template.name, namespace, query, range_start - day, window_end - day, step, True)
                )
    missing: list[str] = []
    missing_short: list[str] = []
    notes: list[str] = []
    if available_families is None:
        notes.append(
            "Prometheus metric discovery failed: every query in the catalog was planned, and a query that "
            "returns nothing means those metrics are absent, not that all is well."
        )
    else:
        where = f" for namespace{'s' if len(targets) > 1 else ''} {_join(targets)}" if targets else ""
        for group, metrics in looked_for.items():
            if group in runnable_groups:
                continue
            names = list(dict.fromkeys(metrics))
            shown = ", ".join(names[:2]) + (", …" if len(names) > 2 else "")
            cluster_wide = all(
                template.scope == Scope.CLUSTER for template in catalog.templates if template.group == group
            )
            missing.append(f"no {group} found{'' if cluster_wide else where} (looked for {shown})")
            missing_short.append(f"{group} ({names[0]}{', …' if len(names) > 1 else ''})")
    return Plan(
        catalog=catalog,
        namespaces=targets,
        window_start=window_start,
        window_end=window_end,
        range_start=range_start,
        step_seconds=step,
        rate_window_seconds=window,
        queries=tuple(queries),
        missing=tuple(missing),
        missing_summary=(
            f"Not in Prometheus{(' for ' + _join(targets)) if targets else ''}, so not checked: "
            + "; ".join(missing_short)
            + "."
            if missing_short
            else ""
        ),
        notes=tuple(notes),
        discovery_failed=available_families is None,
    )
