"""Services, EndpointSlices, Ingresses and NetworkPolicies: how traffic reaches pods, or is stopped."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from inquest.engine.objects.meta import (
    JsonObject,
    LabelSelector,
    Projection,
    mapping,
    mappings,
    optional_int,
    optional_text,
    read_meta,
    read_selector,
    string_map,
    strings,
    text,
)

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True, slots=True)
class ServicePort:
    name: str
    port: int | None
    target_port: str
    protocol: str = "TCP"
    node_port: int | None = None


@dataclass(frozen=True, slots=True)
class Service(Projection):
    type: str = "ClusterIP"
    selector: Mapping[str, str] = field(default_factory=dict)
    ports: tuple[ServicePort, ...] = ()
    external_name: str = ""

    def selects(self, labels: Mapping[str, str]) -> bool:
        """Whether pods with these labels are this Service's backends (a Service without selector has none)."""
        return bool(self.selector) and all(labels.get(key) == value for key, value in self.selector.items())


def project_service(obj: JsonObject) -> Service:
    spec = mapping(obj.get("spec"))
    return Service(
        meta=read_meta(obj, "Service"),
        type=text(spec.get("type")) or "ClusterIP",
        selector=string_map(spec.get("selector")),
        ports=tuple(
            ServicePort(
                name=text(port.get("name")),
                port=optional_int(port.get("port")),
                # targetPort defaults to port.
                target_port=text(port.get("targetPort")) or text(port.get("port")),
                protocol=text(port.get("protocol")) or "TCP",
                node_port=optional_int(port.get("nodePort")),
            )
            for port in mappings(spec.get("ports"))
        ),
        external_name=text(spec.get("externalName")),
    )


@dataclass(frozen=True, slots=True)
class Endpoint:
    addresses: tuple[str, ...]
    ready: bool
    serving: bool
    terminating: bool
    pod: str | None = None
    node: str | None = None


@dataclass(frozen=True, slots=True)
class EndpointSlice(Projection):
    service_name: str = ""
    ports: tuple[tuple[str, int | None], ...] = ()
    endpoints: tuple[Endpoint, ...] = ()

    @property
    def ready_pods(self) -> tuple[str, ...]:
        return tuple(endpoint.pod for endpoint in self.endpoints if endpoint.ready and endpoint.pod)

    @property
    def not_ready_pods(self) -> tuple[str, ...]:
        return tuple(endpoint.pod for endpoint in self.endpoints if not endpoint.ready and endpoint.pod)


def project_endpoint_slice(obj: JsonObject) -> EndpointSlice:
    meta = read_meta(obj, "EndpointSlice")
    endpoints = []
    for item in mappings(obj.get("endpoints")):
        conditions = mapping(item.get("conditions"))
        target = mapping(item.get("targetRef"))
        # A nil ready condition means ready (the API's documented default).
        ready = conditions.get("ready") is not False
        endpoints.append(
            Endpoint(
                addresses=strings(item.get("addresses")),
                ready=ready,
                serving=conditions.get("serving", ready) is not False,
                terminating=conditions.get("terminating") is True,
                pod=text(target.get("name")) if text(target.get("kind")) == "Pod" else None,
                node=optional_text(item.get("nodeName")),
            )
        )
    return EndpointSlice(
        meta=meta,
        service_name=meta.labels.get(SERVICE_NAME_LABEL, ""),
        ports=tuple((text(port.get("name")), optional_int(port.get("port"))) for port in mappings(obj.get("ports"))),
        endpoints=tuple(endpoints),
    )


@dataclass(frozen=True, slots=True)
class IngressBackend:
    host: str
    path: str
    service_name: str
    service_port: str


@dataclass(frozen=True, slots=True)
class Ingress(Projection):
    ingress_class: str = ""
    backends: tuple[IngressBackend, ...] = ()


def _read_backend(raw: object, host: str, path: str) -> IngressBackend | None:
    service = mapping(mapping(raw).get("service"))
    if not service:
        return None
    port = mapping(service.get("port"))
    return IngressBackend(host, path, text(service.get("name")), text(port.get("name")) or text(port.get("number")))


def project_ingress(obj: JsonObject) -> Ingress:
    spec = mapping(obj.get("spec"))
    backends = []
    default = _read_backend(spec.get("defaultBackend"), "*", "")
    if default:
        backends.append(default)
    for rule in mappings(spec.get("rules")):
        host = text(rule.get("host")) or "*"
        for path in mappings(mapping(rule.get("http")).get("paths")):
            backend = _read_backend(path.get("backend"), host, text(path.get("path")) or "/")
            if backend:
                backends.append(backend)
    return Ingress(
        meta=read_meta(obj, "Ingress"), ingress_class=text(spec.get("ingressClassName")), backends=tuple(backends)
    )


@dataclass(frozen=True, slots=True)
class NetworkPolicyPeer:
    pod_selector: LabelSelector | None = None
    namespace_selector: LabelSelector | None = None
    ip_block: str | None = None

    def describe(self) -> str:
        if self.ip_block:
            return f"ipBlock {self.ip_block}"
        parts = []
        if self.namespace_selector is not None:
            parts.append(f"namespaces({self.namespace_selector})")
        if self.pod_selector is not None:
            parts.append(f"pods({self.pod_selector})")
        return " ".join(parts)

    def admits(self, namespace: str, labels: Mapping[str, str], policy_namespace: str) -> bool:
        """Whether a pod (namespace, labels) is this peer. Namespace labels are unknown here, so a namespace
        selector is judged by the `kubernetes.io/metadata.name` label every namespace carries."""
        if self.ip_block:
            return False
        if self.namespace_selector is None:
            if namespace != policy_namespace:
                return False
        elif not self.namespace_selector.matches({NAMESPACE_NAME_LABEL: namespace}):
            return False
        return self.pod_selector is None or self.pod_selector.matches(labels)


@dataclass(frozen=True, slots=True)
class NetworkPolicyRule:
    peers: tuple[NetworkPolicyPeer, ...] = ()  # empty: every peer
    ports: tuple[str, ...] = ()  # empty: every port

    def describe(self) -> str:
        peers = ", ".join(peer.describe() for peer in self.peers) or "anyone"
        ports = ",".join(self.ports) or "all ports"
        return f"{peers} on {ports}"


@dataclass(frozen=True, slots=True)
class NetworkPolicy(Projection):
    pod_selector: LabelSelector = field(default_factory=LabelSelector)
    policy_types: tuple[str, ...] = ()
    ingress: tuple[NetworkPolicyRule, ...] = ()
    egress: tuple[NetworkPolicyRule, ...] = ()

    def selects(self, namespace: str, labels: Mapping[str, str]) -> bool:
        return namespace == self.meta.namespace and self.pod_selector.matches(labels)

    def allows_ingress_from(
        self, namespace: str, labels: Mapping[str, str], ports: Collection[str] | None = None
    ) -> bool:
        """Whether traffic from a pod (namespace, labels) to the selected pods is admitted; `ports` (numbers or
        names) narrows it to those destination ports, None means any port."""
        if "Ingress" not in self.policy_types:
            return True
        return _admits(self.ingress, namespace, labels, self.meta.namespace, ports)

    def allows_egress_to(self, namespace: str, labels: Mapping[str, str], ports: Collection[str] | None = None) -> bool:
        if "Egress" not in self.policy_types:
            return True
        return _admits(self.egress, namespace, labels, self.meta.namespace, ports)


def _admits(
    rules: tuple[NetworkPolicyRule, ...],
    namespace: str,
    labels: Mapping[str, str],
    policy_namespace: str,
    ports: Collection[str] | None,
) -> bool:
    for rule in rules:
        peer_allowed = not rule.peers or any(peer.admits(namespace, labels, policy_namespace) for peer in rule.peers)
        port_allowed = (
            not rule.ports
            or ports is None
            or any(port.endswith("/*") or port.split("/", 1)[1] in ports for port in rule.ports)
        )
        if peer_allowed and port_allowed:
            return True
    return False


def _read_rules(raw: object, peers_key: str) -> tuple[NetworkPolicyRule, ...]:
    rules = []
    for rule in mappings(raw):
        peers = tuple(
            NetworkPolicyPeer(
                pod_selector=read_selector(peer["podSelector"]) if "podSelector" in peer else None,
                namespace_selector=read_selector(peer["namespaceSelector"]) if "namespaceSelector" in peer else None,
                ip_block=text(mapping(peer.get("ipBlock")).get("cidr")) or None,
            )
            for peer in mappings(rule.get(peers_key))
        )
        ports = tuple(
            f"{text(port.get('protocol')) or 'TCP'}/{text(port.get('port')) or '*'}"
            for port in mappings(rule.get("ports"))
        )
        rules.append(NetworkPolicyRule(peers, ports))
    return tuple(rules)


def project_network_policy(obj: JsonObject) -> NetworkPolicy:
    spec = mapping(obj.get("spec"))
    policy_types = strings(spec.get("policyTypes"))
    if not policy_types:
        # The API's default: Ingress always, Egress only when egress rules are given.
        policy_types = ("Ingress", "Egress") if "egress" in spec else ("Ingress",)
    return NetworkPolicy(
        meta=read_meta(obj, "NetworkPolicy"),
        pod_selector=read_selector(spec.get("podSelector")),
        policy_types=policy_types,
        ingress=_read_rules(spec.get("ingress"), "from"),
        egress=_read_rules(spec.get("egress"), "to"),
    )
