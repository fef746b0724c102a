"""inquest is read-only, proven by the API server's audit log.

In a lab of its own, the operator runs as its own identity bound to nothing but the Helm chart's rendered
ClusterRole(s), configured the chart's way (a ConfigMap, credentials as mounted files in --secrets-dir), through a
full set: investigations of a healthy Deployment, a bad rollout, a failing probe and a crashing Deployment, a
follow-up, a Continuous investigation that resolves, alerts posted to the intake, a webhook notifier, Prometheus.
Every request its identity made is then read back from the audit log and compared with a literal list, so a
regression shows what changed.

The lab's audit policy logs the operator's requests on Secrets with their responses (RequestResponse): that shows
what a list of Secrets sent it. Watch streams are not in the audit log (the API server logs a watch when it ends,
without the objects it streamed); that Secrets arrive through a watch as metadata only is tests/integration/
test_informer_lab.py::test_secrets_arrive_as_metadata_only.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from inquest.api import models
from inquest.engine.redaction import REDACTED
from inquest.intake.alertmanager import GROUP_ANNOTATION
from inquest.lab import build, cluster, operator, paths, procs
from inquest.lab.kubehelpers import SIM, Cluster, concluded_reason, deployment, explain, service
from inquest.lab.waiting import wait_for

pytestmark = pytest.mark.lab

CHART = Path(__file__).resolve().parents[2] / "helm" / "inquest"
RELEASE = "inquest"
SYSTEM = "inquest-system"  # the release namespace: its ConfigMap and the Secrets the chart would mount
SHOP = "trust-shop"
CONFIG_MAP = "inquest-config"
NOTIFIER_SECRET = "inquest-notifiers"
INTAKE_TOKEN = "trust-intake-token-0123456789"
NOTIFIER_AUTHORIZATION = "Bearer notifier-credential-0123456789abcdef"
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")
CRASHING = {f"{SIM}/container": "crashloop", f"{SIM}/interval": "1s"}  # kwok's simulated crash loop

# What the issue allows the operator to write: Investigations (patch or update; create, for the intake), their
# status, and Events.
ALLOWED_WRITES = {
    ("create", "inquest.dev", "investigations"),
    ("patch", "inquest.dev", "investigations"),
    ("update", "inquest.dev", "investigations"),
    ("patch", "inquest.dev", "investigations/status"),
    ("update", "inquest.dev", "investigations/status"),
    ("create", "", "events"),
    ("patch", "", "events"),
    ("create", "events.k8s.io", "events"),
    ("patch", "events.k8s.io", "events"),
}

# Credential-like values planted in the cluster: an env value, container args and an Event message.
PLANTED = {
    "env": "Pg-Secret-Value-77",
    "args": "hunter2-args",
    "aws": "AKIAIOSFODNN7EXAMPLE",
    "event-bearer": "abcdefghijklmnopqrstuvwxyz0123",
    "event-password": "hunter2-event",
}


# --- the lab, the receiver, the operator ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trust_lab() -> Iterator[cluster.Lab]:
    name = f"trust-readonly-{os.getpid()}"
    started = cluster.up(name)
    try:
        yield started
    finally:
        operator.stop_operator(started)
        cluster.down(name)


@pytest.fixture(scope="module")
def admin_client(trust_lab: cluster.Lab) -> Iterator[Any]:
    from kubernetes import config

    made = config.new_client_from_config(config_file=str(trust_lab.kubeconfig_admin))  # type: ignore[no-untyped-call]
    yield made
    made.close()


class Receiver:
    """A webhook receiver (aiohttp, on a loop of its own) that keeps every request it got."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._runner: web.AppRunner | None = None
        self.port = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    async def _start(self) -> int:
        async def receive(request: web.Request) -> web.Response:
            self.received.append((request.path, dict(request.headers), await request.json()))
            return web.json_response({"ok": True})

        app = web.Application()
        app.router.add_post("/{tail:.*}", receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        return int(self._runner.addresses[0][1])

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def bodies(self) -> list[dict[str, Any]]:
        return [body for _, _, body in self.received]

    def close(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.close()


def chart_roles(*settings: str) -> list[dict[str, Any]]:
    """The chart's ClusterRole(s), rendered by helm as a user's install would render them."""
    command = [
        str(build.locate("helm")), "template", RELEASE, str(CHART), "--namespace", SYSTEM,
        "--kube-version", paths.KUBERNETES_VERSION.lstrip("v"), "--show-only", "templates/clusterrole.yaml", *settings,
    ]  # fmt: skip
    rendered = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert rendered.returncode == 0, rendered.stderr
    roles = [document for document in yaml.safe_load_all(rendered.stdout) if document]
    assert roles
    assert all(role["kind"] == "ClusterRole" for role in roles)
    return roles


def wait_until_allowed(lab: cluster.Lab, checks: list[dict[str, str]]) -> None:
    """Until the authorizer allows the operator each of these (bindings reach its cache a moment after they are
    made); asked as the admin, so the operator's own record holds only what the operator did."""

    def allowed(attributes: dict[str, str]) -> bool:
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {"user": cluster.OPERATOR_USER, "resourceAttributes": attributes},
        }
        answer = lab.api("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", review)
        return bool(answer["status"].get("allowed"))

    for attributes in checks:
        wait_for(lambda attributes=attributes: allowed(attributes), f"the operator allowed {attributes}", timeout=15)


@dataclass
class Phase:
    """The operator's requests between two offsets of the audit log."""

    lab: cluster.Lab
    start: int = 0
    entries: list[dict[str, Any]] = field(default_factory=list)

    def begin(self) -> None:
        self.start = self.lab.audit_log.stat().st_size

    def end(self) -> None:
        time.sleep(1)  # the audit log is written asynchronously
        with self.lab.audit_log.open("rb") as log:
            log.seek(self.start)
            lines = log.read().decode().splitlines()
        needle = json.dumps(cluster.OPERATOR_USER)
        self.entries = [
            entry
            for entry in (json.loads(line) for line in lines if needle in line)
            if entry["user"]["username"] == cluster.OPERATOR_USER and entry["stage"] == "ResponseComplete"
        ]

    @property
    def used(self) -> set[tuple[str, str, str]]:
        return {request_key(entry) for entry in self.entries}

    def on(self, resource: str) -> list[dict[str, Any]]:
        return [entry for entry in self.entries if (entry.get("objectRef") or {}).get("resource") == resource]


def request_key(entry: dict[str, Any]) -> tuple[str, str, str]:
    """(verb, apiGroup, resource[/subresource]); a request without an object (discovery) is its path."""
    reference = entry.get("objectRef")
    if not reference:
        return entry["verb"], "(non-resource)", entry["requestURI"].split("?", 1)[0]
    resource = reference.get("resource", "")
    if reference.get("subresource"):
        resource += "/" + reference["subresource"]
    return entry["verb"], reference.get("apiGroup", ""), resource


def describe(used: set[tuple[str, str, str]], expected: set[tuple[str, str, str]]) -> str:
    return (
        f"\nnew (not in the expected list): {sorted(used - expected)}"
        f"\ngone (expected, not used): {sorted(expected - used)}"
    )


def assert_read_only(phase: Phase) -> None:
    """Only the allowed writes, no delete at all, every request authorized and none refused with 403."""
    writes = {key for key in phase.used if key[0] in WRITE_VERBS}
    assert writes <= ALLOWED_WRITES, f"writes the issue does not allow: {sorted(writes - ALLOWED_WRITES)}"
    assert not [key for key in phase.used if key[0] in ("delete", "deletecollection")]
    updates = {key for key in phase.used if key[0] == "update"}
    assert updates <= {("update", "inquest.dev", "investigations"), ("update", "inquest.dev", "investigations/status")}
    denied = [
        (request_key(entry), entry.get("requestURI"))
        for entry in phase.entries
        if entry.get("annotations", {}).get("authorization.k8s.io/decision") != "allow"
        or entry.get("responseStatus", {}).get("code") == 403
    ]
    assert denied == [], f"refused: the chart's role misses a rule for {denied}"


# --- the cluster the investigations look at ------------------------------------------------------------------------


def ensure_namespace(lab: cluster.Lab, name: str) -> None:
    if not cluster.exists(lab, f"/api/v1/namespaces/{name}"):
        lab.api("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        cluster.wait_for_default_service_account(lab, name)


def mounted_secrets(directory: Path, receiver: Receiver) -> dict[str, str]:
    """The notifier's Secret as the kubelet would mount it (DIR/NAME/KEY); returns its values."""
    values = {
        "webhook-url": receiver.url("/hook/notifier-path-credential-0123456789"),
        "webhook-authorization": NOTIFIER_AUTHORIZATION,
    }
    (directory / NOTIFIER_SECRET).mkdir(parents=True, exist_ok=True)
    for key, value in values.items():
        (directory / NOTIFIER_SECRET / key).write_text(value + "\n")
    return values


def operator_config(lab: cluster.Lab) -> dict[str, Any]:
    ref = {"namespace": SYSTEM, "name": NOTIFIER_SECRET}
    return {
        "prometheus": {"url": lab.prometheus_url},
        "watch": {"continuousIntervalSeconds": 2},
        "notifications": {
            "clusterName": "trust-lab",
            "notifiers": [
                {
                    "name": "tickets",
                    "type": "Webhook",
                    "secretRef": {**ref, "key": "webhook-url"},
                    "headers": [{"name": "Authorization", "secretRef": {**ref, "key": "webhook-authorization"}}],
                }
            ],
            "routes": [{"notifiers": ["tickets"], "verdicts": ["RootCauseIdentified", "Inconclusive", "NoFaultFound"]}],
            "delivery": {"timeoutSeconds": 2, "initialBackoffSeconds": 0.2},
        },
    }


def apply_config_map(lab: cluster.Lab, document: dict[str, Any]) -> None:
    path = f"/api/v1/namespaces/{SYSTEM}/configmaps"
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": CONFIG_MAP},
        "data": {"config.yaml": yaml.safe_dump(document)},
    }
    if cluster.exists(lab, f"{path}/{CONFIG_MAP}"):
        lab.api("PUT", f"{path}/{CONFIG_MAP}", body)
    else:
        lab.api("POST", path, body)


def post_alert(
    port: int, alertname: str, fingerprint: str, deployment_name: str, group_name: str = "PaymentsDown"
) -> tuple[int, dict[str, Any]]:
    """A firing alert in the group `group_name` (each phase has its own group, so its first post creates)."""
    alert = {
        "status": "firing",
        "labels": {"alertname": alertname, "namespace": SHOP, "deployment": deployment_name, "severity": "critical"},
        "annotations": {"summary": f"{deployment_name} is failing"},
        "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "endsAt": "0001-01-01T00:00:00Z",
        "fingerprint": fingerprint,
    }
    group = {"alertname": group_name, "namespace": SHOP}
    payload = {
        "version": "4", "groupKey": f'{{}}:{{alertname="{group_name}", namespace="{SHOP}"}}', "status": "firing",
        "receiver": "inquest", "groupLabels": group, "commonLabels": group, "commonAnnotations": {},
        "externalURL": "http://alertmanager.example", "alerts": [alert],
    }  # fmt: skip
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/alertmanager",
        data=json.dumps(payload).encode(),
        headers={"Authorization": f"Bearer {INTAKE_TOKEN}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def plant_an_event(kube: Cluster, pod: str) -> None:
    """A probe's Warning Event whose message carries credentials, as a probe echoing its target's answer can."""
    message = (
        f"Readiness probe failed: upstream said Authorization: Bearer {PLANTED['event-bearer']} is invalid; "
        f"retrying with password={PLANTED['event-password']}"
    )
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    kube.core.create_namespaced_event(
        SHOP,
        {
            "metadata": {"generateName": f"{pod}."},
            "involvedObject": {"apiVersion": "v1", "kind": "Pod", "namespace": SHOP, "name": pod},
            "reason": "Unhealthy",
            "message": message,
            "type": "Warning",
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "source": {"component": "kubelet"},
        },
    )


def release_with_credentials(kube: Cluster, name: str) -> str:
    """A rollout of a new image whose pods crash, its env and args carrying credentials; returns a crashing pod."""
    env = [
        {"name": "DB_DSN", "value": f"postgres://app:{PLANTED['env']}@db.{SHOP}:5432/orders"},
        {"name": "AWS_ACCESS_KEY", "value": PLANTED["aws"]},
    ]
    container = {
        "name": "app",
        "image": f"registry.example.com/{name}:1.9",
        "env": env,
        "args": ["--listen=:8080", "--db-password", PLANTED["args"], f"--aws-key={PLANTED['aws']}"],
    }
    template = {"metadata": {"annotations": CRASHING}, "spec": {"containers": [container]}}
    kube.apps.patch_namespaced_deployment(name, SHOP, {"spec": {"template": template}})

    def crashing() -> str | None:
        for pod in kube.pods(name):
            restarts = [status.restart_count or 0 for status in pod.status.container_statuses or []]
            if pod.spec.containers[0].image.endswith(":1.9") and max(restarts, default=0) >= 2:
                return str(pod.metadata.name)
        return None

    return wait_for(crashing, f"a crash-looping {name} pod of the new release")


def status_of(kube: Cluster, name: str) -> dict[str, Any]:
    found: dict[str, Any] = kube.custom.get_namespaced_custom_object(
        models.GROUP, models.VERSION, SHOP, models.PLURAL, name
    )
    return found


def investigations_by_intake(kube: Cluster, group_name: str) -> list[dict[str, Any]]:
    """The Investigations the intake opened for one alert group (named alert-<group>-<digest>)."""
    listed = kube.custom.list_namespaced_custom_object(models.GROUP, models.VERSION, SHOP, models.PLURAL)
    return [
        item
        for item in listed["items"]
        if GROUP_ANNOTATION in (item["metadata"].get("annotations") or {})
        and item["metadata"]["name"].startswith(f"alert-{group_name.lower()}-")
    ]


@dataclass
class World:
    """What every phase shares: the namespaces, the ConfigMap, the mounted-Secret files, the intake token."""

    lab: cluster.Lab
    kube: Cluster
    receiver: Receiver
    secrets_dir: Path
    token_file: Path
    notifier_values: dict[str, str]


@pytest.fixture(scope="module")
def world(
    trust_lab: cluster.Lab, admin_client: Any, receiver: Receiver, tmp_path_factory: pytest.TempPathFactory
) -> World:
    """The namespaces, the ConfigMap, the notifier's mounted Secret and two Deployments; each phase then starts the
    operator afresh (the phases run in file order; each also stands alone)."""
    lab = trust_lab
    for namespace in (SYSTEM, SHOP):
        ensure_namespace(lab, namespace)
    secrets_dir = tmp_path_factory.mktemp("secrets")
    notifier_values = mounted_secrets(secrets_dir, receiver)
    token_file = secrets_dir / "intake-token"
    token_file.write_text(INTAKE_TOKEN + "\n")
    apply_config_map(lab, operator_config(lab))
    kube = Cluster(admin_client, SHOP)
    # The cluster as the investigations find it: a healthy Deployment, and one about to be released badly.
    kube.deploy(deployment("web"))
    kube.core.create_namespaced_service(SHOP, service("web"))
    kube.deploy(deployment("payments"))
    kube.core.create_namespaced_service(SHOP, service("payments"))
    return World(lab, kube, receiver, secrets_dir, token_file, notifier_values)


def run_operator(
    world: World, roles: list[dict[str, Any]], *arguments: str, allowed: tuple[dict[str, str], ...] = ()
) -> Phase:
    """Starts the operator bound to `roles`, configured as the chart configures it, once the authorizer knows the
    bindings (and allows `allowed`); the phase's audit window opens just before."""
    operator.stop_operator(world.lab)
    operator.install_api(world.lab, roles)
    wait_until_allowed(
        world.lab,
        [
            {"verb": "list", "resource": "pods"},
            {"verb": "patch", "group": "inquest.dev", "resource": "investigations", "subresource": "status"},
            {"verb": "create", "group": "inquest.dev", "resource": "investigations", "namespace": SHOP},
            *allowed,
        ],
    )
    phase = Phase(world.lab)
    phase.begin()
    operator.start_operator(
        world.lab,
        f"--config-map={SYSTEM}/{CONFIG_MAP}",
        f"--secrets-namespace={SYSTEM}",
        *arguments,
        prometheus=False,  # the ConfigMap names it, as the chart's does
        roles=roles,
    )
    return phase


def finish(world: World, phase: Phase) -> None:
    operator.stop_operator(world.lab)  # every watch ends, so the API server logs it
    phase.end()
    print(f"\n{len(phase.entries)} requests as {cluster.OPERATOR_USER}:\n" + "\n".join(map(str, sorted(phase.used))))


def delivered(world: World, *names: str) -> None:
    def arrived() -> bool:
        return set(names) <= {body["investigation"]["name"] for body in world.receiver.bodies()}

    wait_for(arrived, f"webhook notifications for {', '.join(names)}", timeout=30)


# --- the full set, under the chart's default RBAC ------------------------------------------------------------------


@dataclass
class FullSet:
    phase: Phase
    answers: dict[str, dict[str, Any]]  # by Investigation name, as they ended
    events: dict[str, list[str]]  # the messages of each one's Events
    received: list[tuple[str, dict[str, str], dict[str, Any]]]  # what the notifier's receiver got


@pytest.fixture(scope="module")
def full_set(world: World) -> FullSet:
    kube = world.kube
    intake_port = procs.free_port()
    apply_config_map(world.lab, operator_config(world.lab))
    phase = run_operator(
        world,
        chart_roles(),
        f"--secrets-dir={world.secrets_dir}",
        f"--intake-port={intake_port}",
        f"--intake-token-file={world.token_file}",
    )
    try:
        healthy = kube.investigate("healthy-web", {"target": {"kind": "Deployment", "name": "web"}})
        assert concluded_reason(healthy) == "NoFaultFound", explain(healthy)

        release_with_credentials(kube, "payments")
        rollout = kube.investigate("why-payments", {"target": {"kind": "Deployment", "name": "payments"}})
        assert concluded_reason(rollout) in ("RootCauseIdentified", "Inconclusive"), explain(rollout)

        kube.deploy(deployment("api", replicas=1))
        plant_an_event(kube, str(kube.pods("api")[0].metadata.name))
        probed = kube.investigate("why-api", {"target": {"kind": "Deployment", "name": "api"}})
        assert probed["status"]["findings"], explain(probed)

        kube.deploy(deployment("crashy", replicas=1, annotations=CRASHING), wait_ready=False)
        wait_for(
            lambda: any(
                (status.restart_count or 0) >= 2
                for pod in kube.pods("crashy")
                for status in pod.status.container_statuses or []
            ),
            "crashy restarting",
        )
        crashy = kube.investigate("why-crashy", {"target": {"kind": "Deployment", "name": "crashy"}})
        assert crashy["status"]["findings"], explain(crashy)

        # A follow-up: a spec edit is a new round.
        kube.custom.patch_namespaced_custom_object(
            models.GROUP, models.VERSION, SHOP, models.PLURAL, "why-payments",
            {"spec": {"context": ["we rotated the database password today"], "hypotheses": ["the payments rollout"]}},
        )  # fmt: skip
        followed = kube.concluded("why-payments", generation=2)
        assert [entry["generation"] for entry in followed["status"]["rounds"]] == [1, 2]

        # A Continuous investigation whose symptoms go away.
        kube.crashing_bare_pod("flaky", "registry.example.com/flaky:1.0")
        kube.investigate(
            "watch-flaky", {"target": {"kind": "Pod", "name": "flaky"}, "mode": "Continuous", "lookback": "15s"}
        )
        kube.core.patch_namespaced_pod(
            "flaky", SHOP, {"metadata": {"annotations": {f"{SIM}/container": None, f"{SIM}/interval": None}}}
        )

        def resolved() -> bool:
            conditions = status_of(kube, "watch-flaky")["status"].get("conditions", [])
            return any(c["type"] == "SymptomsResolved" and c["status"] == "True" for c in conditions)

        wait_for(resolved, "watch-flaky SymptomsResolved", timeout=60)

        # Alertmanager: a first notification opens an Investigation, a second with another alert adds context.
        assert post_alert(intake_port, "PaymentsErrors", "aa01", "payments")[0] == 201
        (opened,) = wait_for(lambda: investigations_by_intake(kube, "PaymentsDown"), "the intake's Investigation")
        intake_name = opened["metadata"]["name"]
        kube.concluded(intake_name, generation=1)
        status_code, reply = post_alert(intake_port, "PaymentsLatency", "aa02", "payments")
        assert (status_code, reply["status"]) == (200, "updated"), reply
        kube.concluded(intake_name, generation=2)

        # The notifier delivered, its URL and header from the mounted files, and recorded it.
        names = ["healthy-web", "why-payments", "why-api", "why-crashy", "watch-flaky", intake_name]
        delivered(world, *names)

        def recorded() -> list[dict[str, Any]]:
            notifications = status_of(kube, "why-crashy")["status"].get("notifications", [])
            return [item for item in notifications if item["state"] == "Sent"]

        wait_for(recorded, "status.notifications Sent")
    finally:
        finish(world, phase)
    return FullSet(
        phase,
        {name: status_of(kube, name) for name in names},
        {name: [str(event.message) for event in kube.events_for(name)] for name in names},
        list(world.receiver.received),
    )


# Every (verb, apiGroup, resource[/subresource]) the operator's identity used, per phase, written out; requests
# without an object (API discovery) are named by their path. A change to what inquest asks for shows up, named.
EVERY_RUN = {
    # API discovery (kopf resolves the kinds it serves, the informers their groups).
    ("get", "(non-resource)", "/api"),
    ("get", "(non-resource)", "/api/v1"),
    ("get", "(non-resource)", "/apis"),
    ("get", "(non-resource)", "/apis/admissionregistration.k8s.io/v1"),
    ("get", "(non-resource)", "/apis/apiextensions.k8s.io/v1"),
    ("get", "(non-resource)", "/apis/inquest.dev/v1alpha1"),
    # The informers: a list then a watch of every kind the engine reads.
    ("list", "", "configmaps"), ("watch", "", "configmaps"),
    ("list", "", "events"), ("watch", "", "events"),
    ("list", "", "limitranges"), ("watch", "", "limitranges"),
    ("list", "", "nodes"), ("watch", "", "nodes"),
    ("list", "", "persistentvolumeclaims"), ("watch", "", "persistentvolumeclaims"),
    ("list", "", "pods"), ("watch", "", "pods"),
    ("list", "", "resourcequotas"), ("watch", "", "resourcequotas"),
    ("list", "", "services"), ("watch", "", "services"),
    ("list", "apps", "daemonsets"), ("watch", "apps", "daemonsets"),
    ("list", "apps", "deployments"), ("watch", "apps", "deployments"),
    ("list", "apps", "replicasets"), ("watch", "apps", "replicasets"),
    ("list", "apps", "statefulsets"), ("watch", "apps", "statefulsets"),
    ("list", "autoscaling", "horizontalpodautoscalers"), ("watch", "autoscaling", "horizontalpodautoscalers"),
    ("list", "batch", "cronjobs"), ("watch", "batch", "cronjobs"),
    ("list", "batch", "jobs"), ("watch", "batch", "jobs"),
    ("list", "discovery.k8s.io", "endpointslices"), ("watch", "discovery.k8s.io", "endpointslices"),
    ("list", "events.k8s.io", "events"), ("watch", "events.k8s.io", "events"),
    ("list", "networking.k8s.io", "ingresses"), ("watch", "networking.k8s.io", "ingresses"),
    ("list", "networking.k8s.io", "networkpolicies"), ("watch", "networking.k8s.io", "networkpolicies"),
    # kopf: the CRDs (to know Investigations are served) and the Investigations themselves.
    ("list", "apiextensions.k8s.io", "customresourcedefinitions"),
    ("watch", "apiextensions.k8s.io", "customresourcedefinitions"),
    ("list", "inquest.dev", "investigations"), ("watch", "inquest.dev", "investigations"),
    # The ConfigMap, read once at start (then followed by the configmaps watch above).
    ("get", "", "configmaps"),
    # The answers and the notification records, and the Events that announce them.
    ("patch", "inquest.dev", "investigations/status"),
    ("create", "", "events"),
}  # fmt: skip
# The intake: it reads the Investigation of an alert group, creates it, and patches its context on a repeat.
INTAKE = {
    ("get", "inquest.dev", "investigations"),
    ("create", "inquest.dev", "investigations"),
    ("patch", "inquest.dev", "investigations"),
}
EXPECTED_DEFAULT = EVERY_RUN | INTAKE


def test_the_operator_used_exactly_these_requests(full_set: FullSet) -> None:
    assert full_set.phase.used == EXPECTED_DEFAULT, describe(full_set.phase.used, EXPECTED_DEFAULT)


def test_it_wrote_only_what_the_issue_allows_and_every_request_was_authorized(full_set: FullSet) -> None:
    assert_read_only(full_set.phase)
    writes = {key for key in full_set.phase.used if key[0] in WRITE_VERBS}
    # Each kind of write the set exercises happened, so the check was not vacuous.
    assert {
        ("create", "inquest.dev", "investigations"),
        ("patch", "inquest.dev", "investigations"),
        ("patch", "inquest.dev", "investigations/status"),
        ("create", "", "events"),
    } <= writes


def test_it_made_no_request_on_secrets_yet_used_its_mounted_credentials(full_set: FullSet) -> None:
    assert full_set.phase.on("secrets") == []
    assert full_set.received
    assert {headers.get("Authorization") for _, headers, _ in full_set.received} == {NOTIFIER_AUTHORIZATION}
    assert {path for path, _, _ in full_set.received} == {"/hook/notifier-path-credential-0123456789"}


def test_planted_credentials_reach_neither_the_status_nor_the_events_nor_the_notifier(
    full_set: FullSet, world: World
) -> None:
    places = {
        "status": json.dumps([answer["status"] for answer in full_set.answers.values()]),
        "Events": json.dumps(full_set.events),
        "notifications": json.dumps([body for _, _, body in full_set.received]),
    }
    for where, text in places.items():
        for what, value in PLANTED.items():
            assert value not in text, f"the planted {what} credential reached the {where}"
        for what, value in world.notifier_values.items():
            assert value not in text, f"the notifier's own {what} reached the {where}"
    # The planted material did reach the answers and the notifications, redacted: the checks above could fail.
    rollout, probed = full_set.answers["why-payments"], full_set.answers["why-api"]
    shown = {
        "env": (rollout, f"postgres://app:{REDACTED}@db.{SHOP}:5432/orders"),
        "args": (rollout, f"--db-password {REDACTED} --aws-key={REDACTED}"),
        "event": (probed, f"Authorization: Bearer {REDACTED} is invalid; retrying with password={REDACTED}"),
    }
    for what, (answer, redacted) in shown.items():
        assert redacted in json.dumps(answer["status"]), f"the {what} is not in the answer: {explain(answer)}"
        assert redacted in places["notifications"], f"the {what} is not in the notifications"


# --- the documented exception: Secrets read through the API, opted into -------------------------------------------

READ_NAMED_SECRETS = "inquest-read-named-secrets"
INTAKE_SECRET = "intake-token"


@pytest.fixture(scope="module")
def api_secrets(world: World) -> Phase:
    """The notifier's Secret and the intake token as Secrets, read through the API with --notify-secrets-from-api
    and --intake-token-secret, granted by a Role with `get` on exactly those two names."""
    lab = world.lab
    apply_config_map(lab, operator_config(lab))
    for name, values in ((NOTIFIER_SECRET, world.notifier_values), (INTAKE_SECRET, {"token": INTAKE_TOKEN})):
        if not cluster.exists(lab, f"/api/v1/namespaces/{SYSTEM}/secrets/{name}"):
            secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": values}
            lab.api("POST", f"/api/v1/namespaces/{SYSTEM}/secrets", secret)
    rbac = "rbac.authorization.k8s.io"
    metadata = {"name": READ_NAMED_SECRETS, "namespace": SYSTEM}
    names = [NOTIFIER_SECRET, INTAKE_SECRET]
    rule = {"apiGroups": [""], "resources": ["secrets"], "resourceNames": names, "verbs": ["get"]}
    for collection, manifest in (
        ("roles", {"apiVersion": f"{rbac}/v1", "kind": "Role", "metadata": metadata, "rules": [rule]}),
        (
            "rolebindings",
            {
                "apiVersion": f"{rbac}/v1", "kind": "RoleBinding", "metadata": metadata,
                "roleRef": {"apiGroup": rbac, "kind": "Role", "name": READ_NAMED_SECRETS},
                "subjects": [{"apiGroup": rbac, "kind": "User", "name": cluster.OPERATOR_USER}],
            },
        ),
    ):  # fmt: skip
        if not cluster.exists(lab, f"/apis/{rbac}/v1/namespaces/{SYSTEM}/{collection}/{READ_NAMED_SECRETS}"):
            lab.api("POST", f"/apis/{rbac}/v1/namespaces/{SYSTEM}/{collection}", manifest)
    intake_port = procs.free_port()
    phase = run_operator(
        world,
        chart_roles(),
        "--notify-secrets-from-api",
        f"--intake-port={intake_port}",
        f"--intake-token-secret={SYSTEM}/{INTAKE_SECRET}",
        allowed=tuple(
            {"verb": "get", "resource": "secrets", "namespace": SYSTEM, "name": name}
            for name in (NOTIFIER_SECRET, INTAKE_SECRET)
        ),
    )
    try:
        answered = world.kube.investigate("api-secrets", {"target": {"kind": "Deployment", "name": "web"}})
        assert concluded_reason(answered) == "NoFaultFound", explain(answered)
        delivered(world, "api-secrets")
        status_code, reply = post_alert(intake_port, "WebErrors", "bb01", "web", group_name="WebDown")
        assert status_code == 201, reply  # the token read through the API let it in
    finally:
        finish(world, phase)
    return phase


# One notification per group here (no context patch); and `get` on the two named Secrets.
EXPECTED_API_SECRETS = EVERY_RUN | {
    ("get", "inquest.dev", "investigations"),
    ("create", "inquest.dev", "investigations"),
    ("get", "", "secrets"),
}


def test_the_opt_in_gets_exactly_the_named_secrets_through_its_role(api_secrets: Phase) -> None:
    assert_read_only(api_secrets)
    on_secrets = api_secrets.on("secrets")
    assert {(entry["verb"], entry["objectRef"]["namespace"], entry["objectRef"]["name"]) for entry in on_secrets} == {
        ("get", SYSTEM, NOTIFIER_SECRET),
        ("get", SYSTEM, INTAKE_SECRET),
    }
    for entry in on_secrets:
        reason = entry["annotations"]["authorization.k8s.io/reason"]
        assert f'RoleBinding "{READ_NAMED_SECRETS}/{SYSTEM}"' in reason, reason
    assert api_secrets.used == EXPECTED_API_SECRETS, describe(api_secrets.used, EXPECTED_API_SECRETS)


# --- watchSecrets: Secrets' metadata, never their values ---------------------------------------------------------

SECRET_VALUE = "db-password-that-must-not-travel"


@pytest.fixture(scope="module")
def watched_secrets(world: World) -> Phase:
    """The chart with config.watch.watchSecrets: its second ClusterRole, the ConfigMap saying so, and a Deployment
    that reads a Secret."""
    lab, kube = world.lab, world.kube
    if not cluster.exists(lab, f"/api/v1/namespaces/{SHOP}/secrets/db-credentials"):
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "db-credentials"},
            "stringData": {"password": SECRET_VALUE},
        }
        lab.api("POST", f"/api/v1/namespaces/{SHOP}/secrets", secret)
    reference = {"secretKeyRef": {"name": "db-credentials", "key": "password"}}
    kube.deploy(deployment("db-client", replicas=1, env=[{"name": "DB_PASSWORD", "valueFrom": reference}]))
    document = operator_config(lab)
    document["watch"]["watchSecrets"] = True
    apply_config_map(lab, document)
    phase = run_operator(
        world,
        chart_roles("--set", "config.watch.watchSecrets=true"),
        f"--secrets-dir={world.secrets_dir}",
        allowed=({"verb": "list", "resource": "secrets"},),
    )
    try:
        answered = kube.investigate("uses-a-secret", {"target": {"kind": "Deployment", "name": "db-client"}})
        assert concluded_reason(answered) == "NoFaultFound", explain(answered)
        delivered(world, "uses-a-secret")
    finally:
        finish(world, phase)
    return phase


# No intake in this phase; Secrets listed and watched as metadata.
EXPECTED_WATCH_SECRETS = EVERY_RUN | {("list", "", "secrets"), ("watch", "", "secrets")}


def test_with_watch_secrets_it_lists_and_watches_secrets_and_is_sent_only_metadata(watched_secrets: Phase) -> None:
    assert_read_only(watched_secrets)
    on_secrets = watched_secrets.on("secrets")
    assert {entry["verb"] for entry in on_secrets} == {"list", "watch"}
    lists = [entry for entry in on_secrets if entry["verb"] == "list"]
    for entry in lists:
        response = entry["responseObject"]
        assert response["kind"] == "PartialObjectMetadataList", response["kind"]
        assert response["items"], "the list held no Secret: nothing was shown"
        for item in response["items"]:
            assert set(item) <= {"kind", "apiVersion", "metadata"}, sorted(item)
    assert SECRET_VALUE not in json.dumps(on_secrets)
    # The API server does not log what a watch streamed: that side is test_informer_lab's to prove.
    watches = [entry for entry in on_secrets if entry["verb"] == "watch"]
    assert watches
    assert not [entry for entry in watches if "responseObject" in entry]
    assert watched_secrets.used == EXPECTED_WATCH_SECRETS, describe(watched_secrets.used, EXPECTED_WATCH_SECRETS)
