"""Faults of the control plane and of inquest itself, in a lab of their own: the operator SIGKILLed while
investigations are under way, the API server restarted under them, and watches expiring (410 Gone). Every
Investigation concludes exactly once per generation: one round, at most one Event, its notification delivered and
not repeated."""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import config

from inquest.api import models
from inquest.lab import cluster, operator
from inquest.lab.faultproxy import FaultProxy, Healthy, Slow, running_fault_proxy
from inquest.lab.kubehelpers import Cluster, deployment
from inquest.lab.waiting import wait_for

pytestmark = pytest.mark.lab

# Longer than an investigation's engine time, shorter than the Prometheus budget (3 s): answers stay in flight.
SLOW_PROMETHEUS_SECONDS = 2.0


class Receiver:
    """A webhook receiver that notes when each notification arrived and when its answer was sent."""

    def __init__(self) -> None:
        self.received: list[tuple[str, int, float, float]] = []  # uid, generation, arrived, answered
        self.refused = 0
        self.refusing = False
        received, receiver = self.received, self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                arrived = time.monotonic()
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                if receiver.refusing:
                    receiver.refused += 1
                    self.send_response(503)
                    self.end_headers()
                    return
                self.send_response(200)
                self.end_headers()
                investigation = body["investigation"]
                generation = int(body["observedGeneration"])
                received.append((investigation["uid"], generation, arrived, time.monotonic()))

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Restarts:
    """A lab of its own, with the operator behind a fault proxy for Prometheus and notifying a webhook."""

    def __init__(self, lab: cluster.Lab, api: Any, proxy: FaultProxy, receiver: Receiver, namespace: str) -> None:
        self.lab, self.proxy, self.receiver, self.namespace = lab, proxy, receiver, namespace
        self.kube = Cluster(api, namespace)
        self.metrics_port = 0
        self.arguments: list[str] = []

    def start(self) -> None:
        operator.start_operator(self.lab, *self.arguments, prometheus=False)

    def investigations(self) -> dict[str, dict[str, Any]]:
        found = self.kube.custom.list_namespaced_custom_object(
            models.GROUP, models.VERSION, self.namespace, models.PLURAL
        )
        return {item["metadata"]["name"]: item for item in found["items"]}

    def answered(self) -> list[str]:
        return [
            name
            for name, item in self.investigations().items()
            if (item.get("status") or {}).get("observedGeneration") == item["metadata"]["generation"]
        ]

    def create(self, name: str, spec: dict[str, Any]) -> None:
        body = {"apiVersion": models.API_VERSION, "kind": models.KIND, "metadata": {"name": name}, "spec": spec}
        self.kube.custom.create_namespaced_custom_object(
            models.GROUP, models.VERSION, self.namespace, models.PLURAL, body
        )

    def answer_events(self) -> Counter[str]:
        """Events of the answers (not NotificationFailed and the like), per Investigation uid."""
        reasons = {"RootCauseIdentified", "Inconclusive", "NoFaultFound", "InvestigationFailed"}
        events = self.kube.core.list_namespaced_event(
            self.namespace, field_selector="involvedObject.kind=Investigation"
        ).items
        return Counter(event.involved_object.uid for event in events if event.reason in reasons)

    def informer_restarts(self) -> dict[str, float]:
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).read().decode()
        totals: Counter[str] = Counter()
        for match in re.finditer(r'^inquest_informer_restarts_total\{[^}]*reason="(\w+)"[^}]*\} (\S+)$', text, re.M):
            totals[match.group(1)] += float(match.group(2))
        return dict(totals)


def compact_etcd(lab: cluster.Lab) -> int:
    """Writes one key outside the API server's prefix (so there is a newer revision) and compacts etcd's history
    up to it, through etcd's JSON gateway; returns the revision."""

    def call(path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{lab.ports['etcd']}{path}", json.dumps(body).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answer: dict[str, Any] = json.loads(response.read())
        return answer

    key, value = base64.b64encode(b"/inquest-lab/compaction-mark").decode(), base64.b64encode(b"1").decode()
    revision = int(call("/v3/kv/put", {"key": key, "value": value})["header"]["revision"])
    call("/v3/kv/compaction", {"revision": revision, "physical": True})
    return revision


@pytest.fixture(scope="module")
def restarts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Restarts]:
    from inquest.lab import procs

    name = f"trust-restarts-{os.getpid()}"
    lab = cluster.up(name)
    api = config.new_client_from_config(config_file=str(lab.kubeconfig_admin))  # type: ignore[no-untyped-call]
    receiver = Receiver()
    namespace = "restarts"
    lab.api("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    cluster.wait_for_default_service_account(lab, namespace)
    document = {
        "notifiers": [
            {"name": "hook", "type": "Webhook", "secretRef": {"namespace": namespace, "name": "hook", "key": "url"}}
        ],
        "routes": [
            {
                "notifiers": ["hook"],
                "namespaces": [namespace],
                "verdicts": ["RootCauseIdentified", "Inconclusive", "NoFaultFound"],
            }
        ],
        "delivery": {"timeoutSeconds": 2, "initialBackoffSeconds": 0.2},
    }
    # The webhook's URL as the kubelet would mount its Secret: DIR/<secret>/<key>.
    secrets_dir = Path(tmp_path_factory.mktemp("secrets"))
    (secrets_dir / "hook").mkdir()
    (secrets_dir / "hook" / "url").write_text(receiver.url)
    notify_file = Path(tmp_path_factory.mktemp("restarts")) / "notify.yaml"
    notify_file.write_text(yaml.safe_dump(document))
    try:
        with running_fault_proxy(lab.prometheus_url) as proxy:
            world = Restarts(lab, api, proxy, receiver, namespace)
            world.metrics_port = procs.free_port()
            world.arguments = [
                f"--prometheus-url={proxy.url}",
                f"--notify-config={notify_file}",
                f"--secrets-dir={secrets_dir}",
                f"--secrets-namespace={namespace}",
                f"--metrics-port={world.metrics_port}",
            ]
            world.kube.deploy(deployment("steady", replicas=2))
            world.start()
            yield world
    finally:
        operator.stop_operator(lab)
        receiver.close()
        api.close()
        cluster.down(name)


def test_a_killed_operator_answers_every_generation_exactly_once(restarts: Restarts) -> None:
    world = restarts
    world.proxy.set_fault(Slow(SLOW_PROMETHEUS_SECONDS))
    # Deliveries before the kill are refused and retried: only the restarted process can finish them.
    world.receiver.refusing = True
    names = [f"before-kill-{index}" for index in range(6)]

    def create_spaced() -> None:
        # Spaced so that when the first answer lands, later ones are still waiting on Prometheus.
        for name in names:
            world.create(name, {"target": {"kind": "Deployment", "name": "steady"}})
            time.sleep(SLOW_PROMETHEUS_SECONDS / 4)

    creating = threading.Thread(target=create_spaced)
    creating.start()
    wait_for(lambda: world.answered() or None, "a first answer", timeout=30, interval=0.05)
    wait_for(lambda: world.receiver.refused, "a first (refused) delivery attempt", timeout=10, interval=0.02)
    operator.kill_operator(world.lab)
    creating.join()
    killed_at = time.monotonic()
    answered_before_kill = set(world.answered())
    in_flight = set(names) - answered_before_kill
    print(f"at the kill: {len(answered_before_kill)} answered, {len(in_flight)} in flight")
    assert in_flight, "every answer was in before the kill: the test proves nothing, slow Prometheus down more"

    # While the operator is down: new Investigations, and a follow-up of an answered one (generation 2).
    later = [f"while-down-{index}" for index in range(3)]
    for name in later:
        world.create(name, {"target": {"kind": "Deployment", "name": "steady"}})
    followed_up = sorted(in_flight)[0]  # its first generation was never answered: the edit supersedes it
    world.kube.custom.patch_namespaced_custom_object(
        models.GROUP, models.VERSION, world.namespace, models.PLURAL, followed_up,
        {"spec": {"question": "did anything change on steady?"}},
    )  # fmt: skip
    world.proxy.set_fault(Healthy())
    world.receiver.refusing = False
    restarted_at = time.monotonic()
    world.start()

    everything = [*names, *later]
    wait_for(lambda: set(everything) <= set(world.answered()) or None, "every generation answered", timeout=60)
    print(f"all {len(everything)} answered {time.monotonic() - restarted_at:.1f} s after the restart began")
    time.sleep(2)  # time for any duplicate to show up
    investigations = world.investigations()
    events = world.answer_events()
    for name in everything:
        item = investigations[name]
        rounds = item["status"]["rounds"]
        generations = [round_["generation"] for round_ in rounds]
        assert generations == sorted(set(generations)), (name, generations)
        assert generations[-1] == item["metadata"]["generation"], (name, generations)
        verdicts = [round_["reason"] for round_ in rounds]
        transitions = sum(1 for index, verdict in enumerate(verdicts) if index == 0 or verdict != verdicts[index - 1])
        assert events[item["metadata"]["uid"]] == transitions, (name, verdicts, events[item["metadata"]["uid"]])
    for name in later:
        unknowns = investigations[name]["status"]["unknowns"]
        assert any("gap" in unknown for unknown in unknowns), (name, unknowns)

    def delivered() -> bool | None:
        current = world.investigations()
        for name in everything:
            item = current[name]
            records = item["status"].get("notifications") or []
            if not any(r["state"] == "Sent" and r.get("generation") == item["metadata"]["generation"] for r in records):
                return None
        return True

    try:
        wait_for(delivered, "every answer's notification recorded as Sent for its generation", timeout=30)
    except AssertionError:
        records = {
            name: (item["metadata"]["generation"], item["status"].get("notifications"))
            for name, item in world.investigations().items()
        }
        log = (world.lab.data_dir / "logs" / "operator.log").read_text().splitlines()
        noted = [line for line in log if "notif" in line.lower() or "secret" in line.lower()][-20:]
        raise AssertionError(f"notifications: {records}; receiver: {world.receiver.received}; log: {noted}") from None
    notices: dict[tuple[str, int], list[float]] = {}
    for uid, generation, _, answered in world.receiver.received:
        notices.setdefault((uid, generation), []).append(answered)
    for name in everything:
        item = investigations[name]
        uid, current = item["metadata"]["uid"], item["metadata"]["generation"]
        assert notices.get((uid, current)), f"{name}: generation {current} was never notified"
        if name in answered_before_kill:  # answered and refused before the kill, delivered after the restart
            assert min(notices[(uid, current)]) > killed_at, (name, notices[(uid, current)], killed_at)
        for generation in range(1, current + 1):
            answered_at = notices.get((uid, generation), [])
            # The one repeat nobody can rule out: the receiver answered just as the process died, before it could
            # record the delivery. Any other repeat is a bug.
            in_flight_at_kill = any(abs(moment - killed_at) < 0.5 for moment in answered_at)
            assert len(answered_at) <= (2 if in_flight_at_kill else 1), (name, generation, answered_at, killed_at)


def test_an_api_server_restart_mid_investigation_loses_nothing(restarts: Restarts) -> None:
    world = restarts
    operator.start_operator(world.lab, *world.arguments, prometheus=False)  # a no-op when it runs already
    process_before = world.lab.processes[operator.COMPONENT].pid
    restarts_before = world.informer_restarts()
    world.proxy.set_fault(Slow(SLOW_PROMETHEUS_SECONDS))
    names = [f"across-restart-{index}" for index in range(4)]
    for name in names:
        world.create(name, {"target": {"kind": "Deployment", "name": "steady"}})
    time.sleep(0.5)
    world.lab.stop_component("kube-apiserver")
    # The answers are reached while the API server is away; their writes must wait for it, not be lost.
    time.sleep(SLOW_PROMETHEUS_SECONDS + 2)
    compact_etcd(world.lab)  # the history the watches would resume from is gone when the API server is back
    world.lab.start_component("kube-apiserver")
    back_at = time.monotonic()
    world.proxy.set_fault(Healthy())
    wait_for(lambda: set(names) <= set(world.answered()) or None, "every answer after the restart", timeout=90)
    print(f"all {len(names)} answered {time.monotonic() - back_at:.1f} s after the API server was ready again")
    investigations = world.investigations()
    events = world.answer_events()
    for name in names:
        item = investigations[name]
        assert [round_["generation"] for round_ in item["status"]["rounds"]] == [1], name
        assert events[item["metadata"]["uid"]] == 1, name
    assert world.lab.processes[operator.COMPONENT].pid == process_before
    assert world.lab.alive(operator.COMPONENT), "the operator died with the API server"
    restarts_after = world.informer_restarts()
    print(f"informer restarts: before {restarts_before}, after {restarts_after}")
    # The watches resume from where they were; the restarted API server no longer has that history and answers
    # 410 Gone, and only then do the informers relist.
    assert restarts_after.get("error", 0) > restarts_before.get("error", 0), "the informers never saw the outage"
    assert restarts_after.get("expired", 0) > restarts_before.get("expired", 0), "no watch expired (410 Gone)"

    # The caches follow the cluster again: a crash that starts after the restart is found.
    world.kube.release_crashing("steady", "registry.example.com/steady:2.0")
    found = world.kube.investigate("after-restart", {"target": {"kind": "Deployment", "name": "steady"}})
    assert found["status"]["findings"], found["status"]
    assert found["status"]["findings"][0]["category"] in ("BadRollout", "CrashLoop"), found["status"]["findings"][0]
