"""Trust: a notifier that is down, or an intake that is flooded, does not slow investigations.

One lab and one operator of this module's own (`--intake-port`, `--intake-token-file`, `--notify-config` with the
notifiers' URLs in a mounted-Secret directory, `--metrics-port`), so no other test's operator answers these
Investigations. Every condition runs the same
workload: WAVES waves of PER_WAVE Investigations, one wave every WAVE_GAP seconds, each asking about the
crash-looping Deployment shop/payments. An Investigation's latency runs from just before its create call to the
moment a watch shows its status answering generation 1. The baseline is that workload with a healthy notifier;
the bounds below were chosen after measuring (docs/trust.md has the figures).
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from kubernetes import client, watch
from kubernetes import config as kube_config

from inquest.api import models
from inquest.intake.alertmanager import investigation_name
from inquest.lab import cluster, operator, procs
from inquest.lab.flood import NO_ANSWER, REPEATED_GROUP, FloodPlan, FloodResult, Kind, group_key, notification
from inquest.lab.kubehelpers import Cluster, deployment
from inquest.lab.stats import percentile
from inquest.lab.waiting import wait_for
from inquest.notify.routes import NOTIFIABLE_VERDICTS

pytestmark = pytest.mark.lab

WAVES, PER_WAVE, WAVE_GAP = 7, 3, 1.5
# Measured (docs/trust.md): p95 0.06-0.25 s and every answer under 0.27 s, in every condition and run. The
# bounds leave room for a 2-core machine that other labs share, and still catch a notifier or a flood that holds
# investigations up (a black-hole attempt alone takes timeoutSeconds, 2 s).
P95_MARGIN_SECONDS = 1.0  # over the baseline's p95
MAX_LATENCY_SECONDS = 2.5
# Answered -> the healthy receiver has the notice while another notifier is down: under one timeoutSeconds, so a
# notice that waits for a hung attempt to time out fails it.
HEALTHY_NOTICE_SECONDS = 1.0
CREATIONS_PER_MINUTE = 60
TOKEN = "trust-isolation-token-0123456789"
SHOP = "shop"
SECRETS = "notify-secrets"
CONDITIONS = ("healthy", "refused", "blackhole", "unavailable", "flood", "storm")
FLOOD_ALERTS = "flood-alerts"  # where the floods' valid alert groups open their Investigations
STORM_ALERTS = "storm-alerts"
DELIVERY = {
    "timeoutSeconds": 2,
    "maxAttempts": 3,
    "initialBackoffSeconds": 0.5,
    "maxBackoffSeconds": 2,
    "maxConcurrency": 4,
}
WORKLOAD_SPEC = {
    "target": {"kind": "Deployment", "name": "payments", "namespace": SHOP},
    "question": "why is payments crashing?",
    "lookback": "15m",
}
RETRY_AFTER_SECONDS = 1  # what the unavailable receiver asks for
REPORT: dict[str, dict[str, Any]] = {}


# --- the receivers --------------------------------------------------------------------------------------------


class Receivers:
    """The notifiers' far ends: `/ok` (200) and `/unavailable` (503, Retry-After) on one threaded HTTP server; a
    black hole that accepts connections and never reads or answers; and a port nobody listens on."""

    def __init__(self) -> None:
        self.notices: dict[str, list[tuple[float, str]]] = {"/ok": [], "/unavailable": []}
        notices = self.notices

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length))
                notices.setdefault(self.path, []).append((time.monotonic(), body["investigation"]["name"]))
                if self.path == "/unavailable":
                    self.send_response(503)
                    self.send_header("Retry-After", str(RETRY_AFTER_SECONDS))
                else:
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http_port = self.http.server_address[1]
        self.black_hole = socket.socket()
        self.black_hole.bind(("127.0.0.1", 0))
        self.black_hole.listen(256)
        self.black_hole_port = self.black_hole.getsockname()[1]
        self.held: list[socket.socket] = []
        self.closed_port = procs.free_port()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self.http.serve_forever, daemon=True),
            threading.Thread(target=self._swallow, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _swallow(self) -> None:
        self.black_hole.settimeout(0.2)
        while not self._stop.is_set():
            try:
                connection, _ = self.black_hole.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.held.append(connection)  # never read, never answered, never closed until the end

    def urls(self) -> dict[str, str]:
        return {
            "healthy": f"http://127.0.0.1:{self.http_port}/ok",
            "unavailable": f"http://127.0.0.1:{self.http_port}/unavailable",
            "blackhole": f"http://127.0.0.1:{self.black_hole_port}/hook",
            "refused": f"http://127.0.0.1:{self.closed_port}/hook",
        }

    def close(self) -> None:
        self._stop.set()
        self.http.shutdown()
        self.http.server_close()
        for connection in self.held:
            connection.close()
        self.black_hole.close()


# --- the lab and the operator ---------------------------------------------------------------------------------


@dataclass
class Isolation:
    lab: cluster.Lab
    kube: Cluster
    receivers: Receivers
    intake_url: str
    metrics_url: str


def notify_document(receivers: Receivers) -> dict[str, Any]:
    """Every answer of every condition's namespace goes to the healthy notifier; the three down ones add theirs."""
    every_verdict = [str(verdict) for verdict in NOTIFIABLE_VERDICTS]
    everywhere = [f"iso-{condition}" for condition in CONDITIONS]
    routes = [{"notifiers": ["healthy"], "namespaces": everywhere, "verdicts": every_verdict}]
    routes += [
        {"notifiers": [down], "namespaces": [f"iso-{down}"], "verdicts": every_verdict}
        for down in ("refused", "blackhole", "unavailable")
    ]
    return {
        "notifiers": [
            {"name": name, "type": "Webhook", "secretRef": {"namespace": SECRETS, "name": "notifiers", "key": name}}
            for name in receivers.urls()
        ],
        "routes": routes,
        "delivery": DELIVERY,
    }


def create_namespace(lab: cluster.Lab, name: str) -> None:
    lab.api("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    cluster.wait_for_default_service_account(lab, name)


@pytest.fixture(scope="module")
def isolation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Isolation]:
    name = f"trust-isolation-{os.getpid()}"
    lab = cluster.up(name)
    api_client = kube_config.new_client_from_config(config_file=str(lab.kubeconfig_admin))  # type: ignore[no-untyped-call]
    receivers = Receivers()
    try:
        for namespace in (SHOP, FLOOD_ALERTS, STORM_ALERTS, *(f"iso-{condition}" for condition in CONDITIONS)):
            create_namespace(lab, namespace)
        kube = Cluster(api_client, SHOP)
        kube.deploy(deployment("payments"))
        kube.release_crashing("payments", "registry.example.com/payments:1.9")

        files = tmp_path_factory.mktemp("isolation")
        document = notify_document(receivers)
        (files / "notify.yaml").write_text(yaml.safe_dump(document))
        # The notifiers' URLs as the kubelet mounts a Secret: DIR/NAME/KEY.
        mounted = files / "secrets" / "notifiers"
        mounted.mkdir(parents=True)
        for key, url in receivers.urls().items():
            (mounted / key).write_text(url)
        (files / "token").write_text(f"{TOKEN}\n")
        intake_port, metrics_port = procs.free_port(), procs.free_port()
        operator.start_operator(
            lab,
            f"--intake-port={intake_port}",
            f"--intake-token-file={files / 'token'}",
            f"--intake-max-creations-per-minute={CREATIONS_PER_MINUTE}",
            f"--notify-config={files / 'notify.yaml'}",
            f"--secrets-dir={files / 'secrets'}",
            f"--secrets-namespace={SECRETS}",
            f"--metrics-port={metrics_port}",
        )
        intake_url = f"http://127.0.0.1:{intake_port}/alertmanager"
        # One answer before any measurement: the operator's first-answer costs are no condition's.
        Cluster(api_client, "iso-healthy").investigate("warm-up", WORKLOAD_SPEC)
        wait_for(lambda: _reachable(f"http://127.0.0.1:{intake_port}/healthz"), "the intake", timeout=30)
        yield Isolation(lab, kube, receivers, intake_url, f"http://127.0.0.1:{metrics_port}/metrics")
    finally:
        receivers.close()
        try:
            operator.stop_operator(lab)
        finally:
            api_client.close()
            cluster.down(name)
        if REPORT:
            print("\ntrust isolation figures:", json.dumps(REPORT, indent=1))


def _reachable(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


# --- the workload ---------------------------------------------------------------------------------------------


@dataclass
class Seen:
    """What the watch saw of one Investigation: when it was answered, its verdict, every notification state."""

    answered: float | None = None
    verdict: str = ""
    states: set[tuple[str, str]] = field(default_factory=set)
    notifications: dict[str, dict[str, Any]] = field(default_factory=dict)


class InvestigationWatch:
    """Watches one namespace's Investigations in a thread and timestamps each answer as it arrives."""

    def __init__(self, custom: client.CustomObjectsApi, namespace: str) -> None:
        self.custom = custom
        self.namespace = namespace
        self.seen: dict[str, Seen] = {}
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.listening = threading.Event()
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        resource_version: str | None = None
        while not self.stopped.is_set():
            stream = watch.Watch()  # type: ignore[no-untyped-call]
            options: dict[str, Any] = {"timeout_seconds": 2}
            if resource_version is not None:
                options["resource_version"] = resource_version
            self.listening.set()
            try:
                for event in stream.stream(  # type: ignore[no-untyped-call]
                    self.custom.list_namespaced_custom_object,
                    models.GROUP,
                    models.VERSION,
                    self.namespace,
                    models.PLURAL,
                    **options,
                ):
                    found = event["object"]
                    resource_version = found["metadata"]["resourceVersion"]
                    self._record(found)
                    if self.stopped.is_set():
                        stream.stop()  # type: ignore[no-untyped-call]
            except Exception as error:  # the watch ends with the test; before that, it says why and resumes
                if not self.stopped.is_set():
                    self.errors.append(f"{type(error).__name__}: {error}")
                    time.sleep(0.2)

    def _record(self, found: dict[str, Any]) -> None:
        now = time.monotonic()
        status = found.get("status") or {}
        with self.lock:
            seen = self.seen.setdefault(found["metadata"]["name"], Seen())
            if seen.answered is None and status.get("observedGeneration") == 1:
                seen.answered = now
                concluded = [item for item in status.get("conditions", []) if item["type"] == "Concluded"]
                seen.verdict = concluded[0]["reason"] if concluded else ""
            for item in status.get("notifications", []):
                seen.states.add((item["notifier"], item["state"]))
                seen.notifications[item["notifier"]] = item

    def snapshot(self) -> dict[str, Seen]:
        with self.lock:
            return {
                name: Seen(s.answered, s.verdict, set(s.states), dict(s.notifications)) for name, s in self.seen.items()
            }

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)


@dataclass
class Workload:
    created: dict[str, float]
    watch: InvestigationWatch

    def latencies(self) -> dict[str, float]:
        seen = self.watch.snapshot()
        answered = {name: item.answered for name, item in seen.items() if item.answered is not None}
        return {name: answered[name] - start for name, start in self.created.items() if name in answered}


def run_workload(kube: Cluster, namespace: str) -> Workload:
    """The same workload for every condition; returns once every Investigation is answered."""
    investigations = InvestigationWatch(kube.custom, namespace)
    investigations.listening.wait(5)
    created: dict[str, float] = {}
    first = time.monotonic()
    for wave in range(WAVES):
        pause = first + wave * WAVE_GAP - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        for index in range(PER_WAVE):
            name = f"{namespace}-{wave}-{index}"  # unique across conditions: the receivers see names
            body = {
                "apiVersion": models.API_VERSION,
                "kind": models.KIND,
                "metadata": {"name": name},
                "spec": WORKLOAD_SPEC,
            }
            created[name] = time.monotonic()
            kube.custom.create_namespaced_custom_object(models.GROUP, models.VERSION, namespace, models.PLURAL, body)
    workload = Workload(created, investigations)

    def all_answered() -> bool:
        return len(workload.latencies()) == len(created)

    try:
        wait_for(all_answered, f"every Investigation in {namespace} answered", timeout=120, interval=0.2)
    except BaseException:
        investigations.stop()
        raise
    return workload


def answered_for_real(workload: Workload) -> None:
    """A fast answer must be an answer: every verdict is one the engine reached, never Failed."""
    verdicts = Counter(workload.watch.snapshot()[name].verdict for name in workload.created)
    assert set(verdicts) <= {str(verdict) for verdict in NOTIFIABLE_VERDICTS}, verdicts


def figures(latencies: dict[str, float]) -> dict[str, float]:
    values = list(latencies.values())
    return {
        "p50": round(percentile(values, 0.5), 3),
        "p95": round(percentile(values, 0.95), 3),
        "max": round(max(values), 3),
        "count": len(values),
    }


@pytest.fixture(scope="module")
def baseline(isolation: Isolation) -> dict[str, float]:
    workload = run_workload(isolation.kube, "iso-healthy")
    try:
        wait_for(
            lambda: all(
                seen.notifications.get("healthy", {}).get("state") == "Sent"
                for seen in workload.watch.snapshot().values()
            ),
            "every baseline notification Sent",
            timeout=30,
        )
    finally:
        workload.watch.stop()
    answered_for_real(workload)
    measured = figures(workload.latencies())
    REPORT["healthy"] = {**measured, "notices": notice_delays(isolation, workload)}
    return measured


def notice_delays(isolation: Isolation, workload: Workload) -> dict[str, float]:
    """Answered -> the healthy receiver has the notice, per Investigation of this workload."""
    seen = workload.watch.snapshot()
    received: dict[str, float] = {}
    for at, name in isolation.receivers.notices["/ok"]:
        received.setdefault(name, at)
    delays = [
        received[name] - answered
        for name in workload.created
        if name in received and (answered := seen[name].answered) is not None
    ]
    if not delays:
        return {"count": 0}
    return {"p50": round(percentile(delays, 0.5), 3), "max": round(max(delays), 3), "count": len(delays)}


def assert_within_bounds(measured: dict[str, float], baseline: dict[str, float], condition: str) -> None:
    assert measured["count"] == WAVES * PER_WAVE, (condition, measured)
    assert measured["p95"] <= baseline["p95"] + P95_MARGIN_SECONDS, (condition, measured, baseline)
    assert measured["max"] <= MAX_LATENCY_SECONDS, (condition, measured, baseline)


def scrape(isolation: Isolation) -> dict[str, float]:
    """The operator's metrics, `name{labels}` -> value."""
    with urllib.request.urlopen(isolation.metrics_url, timeout=5) as response:
        text = response.read().decode()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            samples[key] = float(value)
    return samples


# --- the tests ------------------------------------------------------------------------------------------------


def test_baseline_every_investigation_is_answered_and_notified(
    isolation: Isolation, baseline: dict[str, float]
) -> None:
    assert baseline["count"] == WAVES * PER_WAVE
    assert baseline["max"] <= MAX_LATENCY_SECONDS, baseline
    notices = REPORT["healthy"]["notices"]
    assert notices["count"] == WAVES * PER_WAVE, notices
    assert notices["max"] <= HEALTHY_NOTICE_SECONDS, notices


@pytest.mark.parametrize(
    ("down", "failure"),
    [
        ("refused", "ClientConnectorError"),
        ("blackhole", "no answer within 2s"),
        ("unavailable", "refused (HTTP 503"),
    ],
)
def test_a_notifier_down_does_not_slow_investigations(
    isolation: Isolation, baseline: dict[str, float], down: str, failure: str
) -> None:
    namespace = f"iso-{down}"
    workload = run_workload(isolation.kube, namespace)
    measured = figures(workload.latencies())
    try:
        # Nothing silently dropped: each Investigation records Retrying, then Failed after every attempt, and
        # a NotificationFailed Event; the healthy notifier beside it is Sent.
        def settled() -> bool:
            seen = workload.watch.snapshot()
            return all(
                item.notifications.get(down, {}).get("state") == "Failed"
                and item.notifications.get("healthy", {}).get("state") == "Sent"
                for item in seen.values()
            )

        wait_for(settled, f"every {down} notification Failed and every healthy one Sent", timeout=120)
        seen = workload.watch.snapshot()
    finally:
        workload.watch.stop()
    notices = notice_delays(isolation, workload)
    REPORT[down] = {**measured, "notices": notices}
    answered_for_real(workload)
    assert_within_bounds(measured, baseline, down)
    for name, item in seen.items():
        record = item.notifications[down]
        assert (down, "Retrying") in item.states, (name, item.states)
        assert record["attempts"] == DELIVERY["maxAttempts"], record
        assert failure in record["message"], record
    events = isolation.kube.core.list_namespaced_event(namespace, field_selector="reason=NotificationFailed").items
    failed_for = Counter(event.involved_object.name for event in events if f"to {down} failed" in (event.message or ""))
    assert failed_for == Counter(dict.fromkeys(workload.created, 1))
    assert notices["count"] == WAVES * PER_WAVE
    assert notices["max"] <= HEALTHY_NOTICE_SECONDS, notices
    if down == "unavailable":
        # Retry-After is honoured: the receiver saw each Investigation's attempts at least that far apart.
        attempts: dict[str, list[float]] = {}
        for at, name in isolation.receivers.notices["/unavailable"]:
            attempts.setdefault(name, []).append(at)
        gaps = [later - earlier for times in attempts.values() for earlier, later in itertools.pairwise(times)]
        assert len(gaps) == WAVES * PER_WAVE * (DELIVERY["maxAttempts"] - 1)
        assert min(gaps) >= RETRY_AFTER_SECONDS - 0.05, min(gaps)
    samples = scrape(isolation)
    assert samples[f'inquest_notifications_total{{notifier="{down}",state="Failed"}}'] == WAVES * PER_WAVE


def run_flood(plan: FloodPlan, directory: Path) -> subprocess.Popen[bytes]:
    plan_file, result_file = directory / "plan.json", directory / "result.json"
    plan_file.write_text(json.dumps(asdict(plan)))
    return subprocess.Popen([sys.executable, "-m", "inquest.lab.flood", str(plan_file), str(result_file)])


def listed_investigations(kube: Cluster, namespace: str) -> list[dict[str, Any]]:
    listed = cast(
        dict[str, Any],
        kube.custom.list_namespaced_custom_object(models.GROUP, models.VERSION, namespace, models.PLURAL),
    )
    return list(listed["items"])


def alert_investigations(kube: Cluster, answered: bool = False, namespace: str = FLOOD_ALERTS) -> list[str]:
    """The Investigations the intake opened (with answered, only those whose generation 1 is answered)."""
    return sorted(
        str(item["metadata"]["name"])
        for item in listed_investigations(kube, namespace)
        if not answered or (item.get("status") or {}).get("observedGeneration") == 1
    )


def post_alert(url: str, group: int) -> tuple[int, str | None]:
    body = json.dumps(notification(FLOOD_ALERTS, SHOP, group)).encode()
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status), response.headers.get("Retry-After")
    except urllib.error.HTTPError as error:
        return int(error.code), error.headers.get("Retry-After")


EXPECTED_STATUSES = {
    Kind.REPEAT: {200, 201, 503},
    Kind.DISTINCT: {201, 503},
    Kind.MALFORMED: {400, 422},
    Kind.OVERSIZED: {413},
    Kind.BAD_TOKEN: {401},
}


def send_until_created(url: str, groups: list[int], within: float) -> Counter[int]:
    """What Alertmanager does with a 503: sends the group again, here after the Retry-After it was given."""
    answers: Counter[int] = Counter()
    deadline = time.monotonic() + within
    pending = list(groups)
    while pending and time.monotonic() < deadline:
        status, retry_after = post_alert(url, pending[0])
        answers[status] += 1
        if status == 503:
            assert retry_after is not None
            time.sleep(max(1, int(retry_after)))
            continue
        assert status == 201, status
        pending.pop(0)
    assert pending == [], f"{len(pending)} groups still without their Investigation"
    return answers


def flood_while_investigating(
    isolation: Isolation, plan: FloodPlan, directory: Path, namespace: str
) -> tuple[FloodResult, Workload]:
    """The flood from its own process, and the workload while it runs; both finished on return."""
    flooding = run_flood(plan, directory)
    try:
        time.sleep(0.5)  # the flood is under way before the first Investigation
        workload = run_workload(isolation.kube, namespace)
        workload.watch.stop()
        assert flooding.wait(timeout=120) == 0
    finally:
        if flooding.poll() is None:
            flooding.kill()
    result = FloodResult.from_json(json.loads((directory / "result.json").read_text()))
    by_status = Counter(answer.status for answer in result.answers)
    by_kind = Counter((str(answer.kind), answer.status) for answer in result.answers)
    REPORT[namespace.removeprefix("iso-")] = {
        **figures(workload.latencies()),
        "requests": len(result.answers),
        "seconds": round(result.seconds, 1),
        "answers": {str(status): count for status, count in sorted(by_status.items())},
        "byKind": {f"{kind} {status}": count for (kind, status), count in sorted(by_kind.items())},
    }
    return result, workload


def assert_every_request_answered(result: FloodResult, requests: int) -> None:
    """2xx or 4xx, or 503 with Retry-After (which Alertmanager retries): nothing unanswered, nothing else."""
    assert len(result.answers) == requests
    assert [answer for answer in result.answers if answer.status == NO_ANSWER] == []
    for answer in result.answers:
        assert answer.status in EXPECTED_STATUSES[answer.kind], answer
        if answer.status == 503:
            assert 1 <= int(answer.retry_after or 0) <= 60, answer


def test_a_flooded_intake_does_not_slow_investigations(
    isolation: Isolation, baseline: dict[str, float], tmp_path: Path
) -> None:
    distinct = 2 * CREATIONS_PER_MINUTE
    wait_for_an_empty_creation_window(isolation.kube)
    before = scrape(isolation)
    plan = FloodPlan(
        url=isolation.intake_url,
        token=TOKEN,
        namespace=FLOOD_ALERTS,
        target_namespace=SHOP,
        repeats=1200,
        distinct=distinct,
        malformed=600,
        oversized=150,
        bad_token=930,
        seconds=10,
    )
    result, workload = flood_while_investigating(isolation, plan, tmp_path, "iso-flood")
    by_status = Counter(answer.status for answer in result.answers)
    measured = figures(workload.latencies())
    answered_for_real(workload)
    assert_within_bounds(measured, baseline, "flood")
    assert_every_request_answered(result, 3000)

    # What the intake created is what its 201s say, and no more than the cap: the flood took under a minute.
    assert result.seconds < 50
    created = [answer for answer in result.answers if answer.status == 201]
    assert len(created) == CREATIONS_PER_MINUTE
    assert len(alert_investigations(isolation.kube)) == CREATIONS_PER_MINUTE

    # The groups refused are sent again, as Alertmanager would: then every group has its Investigation, once.
    groups = [*range(distinct), REPEATED_GROUP]
    served = {answer.group for answer in result.answers if answer.kind == Kind.DISTINCT and answer.status == 201}
    if any(answer.kind == Kind.REPEAT and answer.status in (200, 201) for answer in result.answers):
        served.add(REPEATED_GROUP)
    refused = [group for group in groups if group not in served]
    assert len(refused) == len(groups) - CREATIONS_PER_MINUTE
    retried = send_until_created(isolation.intake_url, refused, within=150)
    REPORT["flood"]["retried"] = {str(status): count for status, count in sorted(retried.items())}
    expected = sorted(investigation_name(group_key(group), "FloodAlert") for group in groups)
    assert alert_investigations(isolation.kube) == expected
    # ...and the operator answers every one of them.
    wait_for(
        lambda: len(alert_investigations(isolation.kube, answered=True)) == len(groups),
        "every Investigation the intake opened answered",
        timeout=60,
    )

    # The operator's metrics counted every answer.
    after = scrape(isolation)

    def counted(code: int, result: str) -> float:
        key = f'inquest_intake_requests_total{{code="{code}",result="{result}"}}'
        return after.get(key, 0) - before.get(key, 0)

    assert counted(503, "throttled") == by_status[503] + retried[503]
    assert counted(201, "created") == len(groups)
    assert counted(200, "unchanged") == by_status[200]
    assert counted(401, "rejected") == by_status[401]
    assert counted(413, "rejected") == by_status[413]
    assert counted(400, "rejected") + counted(422, "rejected") == by_status[400] + by_status[422]


def wait_for_an_empty_creation_window(kube: Cluster) -> None:
    """Until a minute has passed since the intake last created an Investigation (creationTimestamp is whole
    seconds, hence one more)."""
    created = [
        datetime.fromisoformat(item["metadata"]["creationTimestamp"])
        for namespace in (FLOOD_ALERTS, STORM_ALERTS)
        for item in listed_investigations(kube, namespace)
    ]
    if created:
        pause = (max(created) - datetime.now(UTC)).total_seconds() + 61
        time.sleep(max(0.0, pause))


def test_a_storm_of_new_alert_groups_is_capped_without_slowing_investigations(
    isolation: Isolation, baseline: dict[str, float], tmp_path: Path
) -> None:
    """A misconfigured group_by: 2,000 new groups in 10 s. Each past the cap costs the intake a read, and those
    reads must not queue in front of the service's writes."""
    wait_for_an_empty_creation_window(isolation.kube)
    before = scrape(isolation)
    plan = FloodPlan(
        url=isolation.intake_url,
        token=TOKEN,
        namespace=STORM_ALERTS,
        target_namespace=SHOP,
        repeats=0,
        distinct=2000,
        malformed=500,
        oversized=0,
        bad_token=500,
        seconds=10,
        distinct_offset=10_000,
    )
    result, workload = flood_while_investigating(isolation, plan, tmp_path, "iso-storm")
    measured = figures(workload.latencies())
    answered_for_real(workload)
    assert_within_bounds(measured, baseline, "storm")
    assert_every_request_answered(result, 3000)

    # The cap held, and what was created is exactly what the 201s say; every other group was told to come back.
    assert result.seconds < 50
    created = sorted(
        investigation_name(group_key(answer.group), "FloodAlert")
        for answer in result.answers
        if answer.status == 201 and answer.group is not None
    )
    assert len(created) == CREATIONS_PER_MINUTE
    assert alert_investigations(isolation.kube, namespace=STORM_ALERTS) == created
    refused = [answer for answer in result.answers if answer.status == 503]
    assert len(refused) == 2000 - CREATIONS_PER_MINUTE
    after = scrape(isolation)
    key = 'inquest_intake_requests_total{code="503",result="throttled"}'
    assert after[key] - before.get(key, 0) == len(refused)
