"""Notifications over real HTTP: local aiohttp receivers on 127.0.0.1 stand in for Slack, PagerDuty and a
webhook. The Notifier and its dispatcher are the real ones; only the Secrets and the status/Event callbacks are
in memory. No lab needed."""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web

from inquest.api import models
from inquest.categories import Category, ConcludedReason, EvidenceSource
from inquest.notify import InvestigationRef, Notifier, NotifyConfig

UID = "0b7d3c52-8f0e-4a59-b1f4-3f6f0f3c9a10"
INVESTIGATION = InvestigationRef("shop", "checkout-failing", UID, "Deployment/shop/checkout")
SLACK_TOKEN = "T0001/B0001/slackSecretToken123"
ROUTING_KEY = "pdRoutingKey0123456789abcdef0123"
WEBHOOK_AUTH = "Bearer webhook-secret-42"
T0 = datetime(2026, 11, 25, 14, 39, 12, tzinfo=UTC)


def answer(confidence: int = 82, resolved: bool | None = None, healthy: bool = False) -> models.InvestigationStatus:
    findings = (
        []
        if healthy
        else [
            models.Finding(
                rank=1,
                ref=models.ObjectRef(kind="Deployment", namespace="shop", name="payments"),
                category=Category.BAD_ROLLOUT,
                confidence=confidence,
                summary="Deployment shop/payments rollout was followed by crashes",
                path=["Deployment/shop/checkout", "Service/shop/payments", "Deployment/shop/payments"],
                evidence=[
                    models.Evidence(
                        source=EvidenceSource.KUBERNETES, time=T0 - timedelta(seconds=index), detail=f"crash {index}"
                    )
                    for index in range(5)
                ],
            )
        ]
    )
    verdict = ConcludedReason.NO_FAULT_FOUND if healthy else ConcludedReason.ROOT_CAUSE_IDENTIFIED
    status = models.InvestigationStatus(
        observed_generation=1,
        summary="No symptoms remain." if healthy else "payments 1.9.0 crashes on start since its rollout.",
        root_cause=None
        if healthy
        else models.RootCause(ref=findings[0].ref, category=findings[0].category, confidence=confidence),
        findings=findings,
        unknowns=["Prometheus is not configured: error rates were not checked."],
        concluded_time=T0,
    )
    status.set_condition(
        models.Condition(
            type=models.CONCLUDED, status=models.ConditionStatus.TRUE, reason=verdict, last_transition_time=T0
        )
    )
    if resolved is not None:
        status.set_condition(
            models.Condition(
                type="SymptomsResolved",
                status=models.ConditionStatus.TRUE if resolved else models.ConditionStatus.FALSE,
                reason="SymptomsResolved" if resolved else "SymptomsReturned",
                last_transition_time=T0,
            )
        )
    return status


class Receivers:
    """Slack-, PagerDuty- and webhook-like endpoints on one loopback server, recording every request."""

    def __init__(self) -> None:
        self.requests: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.client_ports: dict[str, list[int]] = defaultdict(list)
        self.headers: dict[str, list[dict[str, str]]] = defaultdict(list)
        self.flaky_statuses: list[int] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.port = 0
        self.app = web.Application()
        self.app.router.add_post("/services/{token:.+}", self.slack)
        self.app.router.add_post("/v2/enqueue", self.pagerduty)
        self.app.router.add_post("/webhook", self.webhook)
        self.app.router.add_post("/flaky", self.flaky)
        self.app.router.add_post("/hang", self.hang)
        self.app.router.add_post("/slow", self.slow)
        self.app.router.add_post("/echo/{token}", self.echo)
        self.app.router.add_post("/moved", self.moved)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _record(self, name: str, request: web.Request) -> dict[str, Any]:
        body: dict[str, Any] = await request.json()
        self.requests[name].append(body)
        self.headers[name].append(dict(request.headers))
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.client_ports[name].append(peer[1] if peer else 0)
        return body

    async def slack(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != SLACK_TOKEN:
            return web.Response(status=404, text="no_service")
        body = await self._record("slack", request)
        if not isinstance(body.get("blocks"), list) or not body.get("text"):
            return web.Response(status=400, text="invalid_blocks")
        return web.Response(text="ok")

    async def pagerduty(self, request: web.Request) -> web.Response:
        body = await self._record("pagerduty", request)
        if body.get("routing_key") != ROUTING_KEY or body.get("event_action") not in ("trigger", "resolve"):
            return web.json_response({"status": "invalid event", "message": "Event object is invalid"}, status=400)
        return web.json_response(
            {"status": "success", "message": "Event processed", "dedup_key": body["dedup_key"]}, status=202
        )

    async def webhook(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != WEBHOOK_AUTH:
            return web.Response(status=401)
        await self._record("webhook", request)
        return web.json_response({"result": "created"})

    async def flaky(self, request: web.Request) -> web.Response:
        await self._record("flaky", request)
        return web.Response(status=self.flaky_statuses.pop(0) if self.flaky_statuses else 200)

    async def hang(self, request: web.Request) -> web.Response:
        await self._record("hang", request)
        await asyncio.sleep(3600)
        return web.Response()

    async def slow(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self._record("slow", request)
            await asyncio.sleep(0.1)
            return web.Response()
        finally:
            self.in_flight -= 1

    async def echo(self, request: web.Request) -> web.Response:
        return web.Response(status=404, text=f"nothing at {request.path}")

    async def moved(self, request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(self.url(f"/services/{SLACK_TOKEN}"))


@pytest.fixture
async def receivers() -> AsyncIterator[Receivers]:
    server = Receivers()
    runner = web.AppRunner(server.app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.port = runner.addresses[0][1]
    yield server
    await runner.cleanup()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class Recorder:
    """The status and Event callbacks, and the Secrets, in memory."""

    def __init__(self, secrets: dict[str, str]) -> None:
        self.secrets = secrets
        self.records: list[list[dict[str, Any]]] = []
        self.events: list[tuple[str, str]] = []
        self.changed = asyncio.Condition()

    async def read_secret_key(self, namespace: str, name: str, key: str) -> str:
        return self.secrets[key]

    async def record_status(self, investigation: InvestigationRef, notifications: list[models.Notification]) -> None:
        async with self.changed:
            self.records.append([item.to_api() for item in notifications])
            self.changed.notify_all()

    async def post_event(self, investigation: InvestigationRef, reason: str, message: str) -> None:
        self.events.append((reason, message))

    def latest(self) -> dict[str, dict[str, Any]]:
        return {item["notifier"]: item for item in (self.records[-1] if self.records else [])}

    async def wait_for_state(self, notifier: str, state: str, within: float = 5) -> dict[str, Any]:
        async with asyncio.timeout(within), self.changed:
            await self.changed.wait_for(lambda: self.latest().get(notifier, {}).get("state") == state)
            return self.latest()[notifier]


def secret(key: str) -> dict[str, str]:
    return {"namespace": "inquest-system", "name": "inquest-notifiers", "key": key}


def make_notifier(
    receivers: Receivers, notifiers: list[dict[str, Any]], secrets: dict[str, str], **delivery: Any
) -> tuple[Notifier, Recorder]:
    settings = {"timeoutSeconds": 2, "initialBackoffSeconds": 0.05, "maxBackoffSeconds": 0.2, **delivery}
    config = NotifyConfig.model_validate(
        {
            "notifiers": notifiers,
            "routes": [{"notifiers": [notifier["name"] for notifier in notifiers], "namespaces": ["shop"]}],
            "delivery": settings,
        }
    )
    recorder = Recorder(secrets)
    return Notifier(config, recorder, recorder.record_status, recorder.post_event), recorder


@pytest.fixture
def three(receivers: Receivers) -> tuple[Notifier, Recorder]:
    return make_notifier(
        receivers,
        [
            {"name": "slack", "type": "Slack", "secretRef": secret("slack")},
            {
                "name": "pagerduty",
                "type": "PagerDuty",
                "secretRef": secret("pagerduty"),
                "eventsUrl": receivers.url("/v2/enqueue"),
            },
            {
                "name": "servicenow",
                "type": "Webhook",
                "secretRef": secret("webhook"),
                "headers": [{"name": "Authorization", "secretRef": secret("webhook-auth")}],
            },
        ],
        {
            "slack": receivers.url(f"/services/{SLACK_TOKEN}"),
            "pagerduty": ROUTING_KEY,
            "webhook": receivers.url("/webhook"),
            "webhook-auth": WEBHOOK_AUTH,
        },
    )


async def test_each_receiver_gets_its_own_payload_shape(receivers: Receivers, three: tuple[Notifier, Recorder]) -> None:
    notifier, recorder = three
    notifier.on_concluded(INVESTIGATION, answer())
    await notifier.wait_idle()
    await notifier.close()

    (slack,) = receivers.requests["slack"]
    assert slack["blocks"][0]["type"] == "header"
    assert "Root cause identified: shop/checkout-failing" in slack["blocks"][0]["text"]["text"]
    assert all(len(block.get("text", {}).get("text", "")) <= 3000 for block in slack["blocks"])
    assert len(slack["blocks"]) <= 50
    evidence = next(block for block in slack["blocks"] if "*Evidence*" in block.get("text", {}).get("text", ""))
    assert evidence["text"]["text"].count("\n• ") == 3
    assert slack["blocks"][-1]["elements"][0]["text"] == "`kubectl describe investigation checkout-failing -n shop`"

    (trigger,) = receivers.requests["pagerduty"]
    assert (trigger["routing_key"], trigger["event_action"], trigger["dedup_key"]) == (ROUTING_KEY, "trigger", UID)
    assert trigger["payload"]["severity"] == "error"
    assert trigger["payload"]["source"] == "Deployment/shop/checkout"
    assert len(trigger["payload"]["summary"]) <= 1024
    assert trigger["payload"]["custom_details"]["findings"][0]["category"] == "BadRollout"

    (document,) = receivers.requests["webhook"]
    assert document["schema"] == "inquest.dev/notification/v1"
    assert document["findings"][0]["ref"] == {"kind": "Deployment", "namespace": "shop", "name": "payments"}
    assert receivers.headers["webhook"][0]["Authorization"] == WEBHOOK_AUTH
    assert receivers.headers["webhook"][0]["User-Agent"].startswith("inquest/")

    recorded = recorder.latest()
    assert {name: item["state"] for name, item in recorded.items()} == {
        "pagerduty": "Sent",
        "servicenow": "Sent",
        "slack": "Sent",
    }
    assert recorded["pagerduty"]["message"].startswith("accepted (HTTP 202: ")
    assert recorded["slack"]["message"] == "accepted (HTTP 200: ok)"
    assert recorder.events == []


async def test_a_second_identical_conclusion_is_not_reposted(
    receivers: Receivers, three: tuple[Notifier, Recorder]
) -> None:
    notifier, _ = three
    notifier.on_concluded(INVESTIGATION, answer())
    await notifier.wait_idle()
    notifier.on_concluded(INVESTIGATION, answer(confidence=84))  # the same findings, to the nearest ten
    await notifier.wait_idle()
    assert [len(receivers.requests[name]) for name in ("slack", "pagerduty", "webhook")] == [1, 1, 1]
    notifier.on_concluded(INVESTIGATION, answer(confidence=95))  # materially different
    await notifier.wait_idle()
    await notifier.close()
    assert [len(receivers.requests[name]) for name in ("slack", "pagerduty", "webhook")] == [2, 2, 2]
    # One shared session: the second message to a receiver reuses the first one's pooled connection.
    assert len(set(receivers.client_ports["slack"])) == 1


async def test_500_twice_then_200_is_retried_until_sent(receivers: Receivers) -> None:
    receivers.flaky_statuses = [500, 500]
    notifier, recorder = make_notifier(
        receivers, [{"name": "flaky", "type": "Webhook", "secretRef": secret("url")}], {"url": receivers.url("/flaky")}
    )
    notifier.on_concluded(INVESTIGATION, answer())
    await notifier.wait_idle()
    await notifier.close()
    assert len(receivers.requests["flaky"]) == 3
    assert receivers.requests["flaky"][0] == receivers.requests["flaky"][2]
    history = [(records[0]["state"], records[0]["attempts"]) for records in recorder.records]
    assert history == [("Retrying", 1), ("Retrying", 2), ("Sent", 3)]
    assert recorder.records[0][0]["message"].startswith("refused (HTTP 500")
    assert recorder.events == []


async def test_a_dead_receiver_never_slows_the_dispatch_call(receivers: Receivers) -> None:
    notifier, recorder = make_notifier(
        receivers,
        [
            {"name": "refused", "type": "Webhook", "secretRef": secret("refused")},
            {"name": "hanging", "type": "Webhook", "secretRef": secret("hanging")},
            {"name": "slack", "type": "Slack", "secretRef": secret("slack")},
        ],
        {
            "refused": f"http://127.0.0.1:{closed_port()}/webhook",
            "hanging": receivers.url("/hang"),
            "slack": receivers.url(f"/services/{SLACK_TOKEN}"),
        },
        timeoutSeconds=0.5,
        maxAttempts=2,
    )
    started = time.perf_counter()
    notifier.on_concluded(INVESTIGATION, answer())
    returned = time.perf_counter() - started
    assert returned < 0.1, f"on_concluded took {returned:.3f}s"
    # The live receiver is served at once, before the hanging one has even timed out once.
    slack = await recorder.wait_for_state("slack", "Sent", within=2)
    assert slack["attempts"] == 1
    assert "hanging" not in recorder.latest()
    refused = await recorder.wait_for_state("refused", "Failed")
    hanging = await recorder.wait_for_state("hanging", "Failed")
    await notifier.close()
    assert refused["attempts"] == hanging["attempts"] == 2
    assert "ClientConnectorError" in refused["message"]
    assert hanging["message"].startswith("no answer within 0.5s")
    assert sorted(message.split(":")[0] for reason, message in recorder.events if reason == "NotificationFailed") == [
        "Notification to hanging failed",
        "Notification to refused failed",
    ]


async def test_a_resolution_resolves_the_alert_its_trigger_opened(
    receivers: Receivers, three: tuple[Notifier, Recorder]
) -> None:
    notifier, _ = three
    faulty = answer()
    notifier.on_concluded(INVESTIGATION, faulty)
    await notifier.wait_idle()
    notifier.on_findings_changed(INVESTIGATION, faulty, answer(healthy=True, resolved=True))
    await notifier.wait_idle()
    await notifier.close()
    trigger, resolve = receivers.requests["pagerduty"]
    assert resolve == {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": trigger["dedup_key"]}
    assert "Symptoms resolved" in receivers.requests["slack"][1]["blocks"][0]["text"]["text"]
    assert receivers.requests["webhook"][1]["event"] == "SymptomsResolved"


async def test_concurrent_requests_are_bounded(receivers: Receivers) -> None:
    notifier, _ = make_notifier(
        receivers,
        [{"name": "slow", "type": "Webhook", "secretRef": secret("url")}],
        {"url": receivers.url("/slow")},
        maxConcurrency=2,
    )
    for index in range(6):
        notifier.on_concluded(InvestigationRef("shop", f"inv-{index}", f"uid-{index}", "Namespace/shop"), answer())
    await notifier.wait_idle()
    await notifier.close()
    assert len(receivers.requests["slow"]) == 6
    assert receivers.most_in_flight == 2


async def test_refusals_are_recorded_without_the_secret_and_redirects_are_not_followed(
    receivers: Receivers,
) -> None:
    notifier, recorder = make_notifier(
        receivers,
        [
            {"name": "echo", "type": "Slack", "secretRef": secret("echo")},
            {"name": "moved", "type": "Slack", "secretRef": secret("moved")},
        ],
        {"echo": receivers.url("/echo/tok-ABCDEF123"), "moved": receivers.url("/moved")},
    )
    notifier.on_concluded(INVESTIGATION, answer())
    await notifier.wait_idle()
    await notifier.close()
    recorded = recorder.latest()
    assert recorded["echo"]["state"] == "Failed"
    assert recorded["echo"]["attempts"] == 1  # a 404 is not retried
    assert "tok-ABCDEF123" not in recorded["echo"]["message"]
    assert recorded["echo"]["message"] == "refused (HTTP 404: nothing at [redacted]) (after 1 attempt)"
    assert recorded["moved"]["state"] == "Failed"
    assert "redirected (HTTP 307" in recorded["moved"]["message"]
    assert receivers.requests["slack"] == []
    assert not any("tok-ABCDEF123" in message for _, message in recorder.events)


# --- the running operator, in the lab ----------------------------------------------------------------------------


class ThreadedReceiver:
    """A plain HTTP receiver in a thread, for the lab test (whose steps are synchronous)."""

    def __init__(self) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.bodies: list[tuple[str, dict[str, Any]]] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                received.append((self.path, json.loads(self.rfile.read(length))))
                self.send_response(202 if self.path.startswith("/v2/") else 200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def at(self, path: str) -> list[dict[str, Any]]:
        return [body for seen, body in self.bodies if seen == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.lab
def test_the_running_operator_notifies_and_resolves(
    running_operator: Any, admin_api: Any, namespace: str, tmp_path: Any
) -> None:
    import base64
    import json

    import yaml
    from kubernetes import client

    from inquest.lab import operator
    from inquest.lab.cluster import OPERATOR_USER
    from inquest.lab.kubehelpers import SIM, Cluster, concluded_reason
    from inquest.lab.waiting import wait_for
    from inquest.notify.routes import secret_reader_rbac

    lab = running_operator
    kube = Cluster(admin_api, namespace)
    receiver = ThreadedReceiver()
    document = {
        "notifiers": [
            {
                "name": "ticketing",
                "type": "Webhook",
                "secretRef": {"namespace": namespace, "name": "notify", "key": "url"},
            },
            {
                "name": "pager",
                "type": "PagerDuty",
                "secretRef": {"namespace": namespace, "name": "notify", "key": "routing-key"},
                "eventsUrl": f"http://127.0.0.1:{receiver.port}/v2/enqueue",
            },
        ],
        "routes": [{"notifiers": ["ticketing", "pager"], "namespaces": [namespace]}],
        "delivery": {"timeoutSeconds": 2, "initialBackoffSeconds": 0.2},
    }
    config_file = tmp_path / "notify.yaml"
    config_file.write_text(yaml.safe_dump(document))
    kube.core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="notify"),
            data={
                "url": base64.b64encode(f"http://127.0.0.1:{receiver.port}/hook\n".encode()).decode(),
                "routing-key": base64.b64encode(ROUTING_KEY.encode()).decode(),
            },
        ),
    )
    rbac = client.RbacAuthorizationV1Api(admin_api)
    from inquest.notify.routes import NotifyConfig

    subject = {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": OPERATOR_USER}
    for manifest in secret_reader_rbac(NotifyConfig.model_validate(document), [subject]):
        create = rbac.create_namespaced_role if manifest["kind"] == "Role" else rbac.create_namespaced_role_binding
        create(namespace, manifest)

    operator.stop_operator(lab)
    # The documented exception: Secrets read through the API, with a Role granting get on exactly those.
    operator.start_operator(
        lab, "--continuous-interval-seconds=2", f"--notify-config={config_file}", "--notify-secrets-from-api"
    )
    try:
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "flaky", "labels": {"app": "flaky"}},
            "spec": {"containers": [{"name": "app", "image": "registry.example.com/flaky:1.0"}]},
        }
        kube.core.create_namespaced_pod(namespace, pod)
        wait_for(lambda: kube.core.read_namespaced_pod("flaky", namespace).status.phase == "Running", "Running")
        crash = {f"{SIM}/container": "crashloop", f"{SIM}/interval": "1s"}
        kube.core.patch_namespaced_pod("flaky", namespace, {"metadata": {"annotations": crash}})
        wait_for(
            lambda: kube.core.read_namespaced_pod("flaky", namespace).status.container_statuses[0].restart_count >= 2,
            "restarts",
        )
        found = kube.investigate(
            "watch-flaky", {"target": {"kind": "Pod", "name": "flaky"}, "mode": "Continuous", "lookback": "15s"}
        )
        verdict = concluded_reason(found)
        assert verdict in ("RootCauseIdentified", "Inconclusive"), found["status"]["summary"]
        uid = found["metadata"]["uid"]

        (concluded,) = wait_for(lambda: receiver.at("/hook"), "the webhook notification", timeout=15)
        assert concluded["event"] == "Concluded"
        assert concluded["investigation"]["uid"] == uid
        assert concluded["findings"][0]["category"] == "CrashLoop"
        (trigger,) = wait_for(lambda: receiver.at("/v2/enqueue"), "the PagerDuty trigger", timeout=15)
        assert (trigger["event_action"], trigger["dedup_key"], trigger["routing_key"]) == ("trigger", uid, ROUTING_KEY)

        def recorded() -> dict[str, Any] | None:
            current = kube.custom.get_namespaced_custom_object(
                models.GROUP, models.VERSION, namespace, models.PLURAL, "watch-flaky"
            )
            notifications = {item["notifier"]: item for item in current["status"].get("notifications", [])}
            sent = {name for name, item in notifications.items() if item["state"] == "Sent"}
            return notifications if sent == {"ticketing", "pager"} else None

        notifications = wait_for(recorded, "status.notifications Sent for both notifiers", timeout=15)
        assert notifications["pager"]["message"].startswith("accepted (HTTP 202")

        kube.core.patch_namespaced_pod(
            "flaky", namespace, {"metadata": {"annotations": {f"{SIM}/container": None, f"{SIM}/interval": None}}}
        )
        resolve = wait_for(
            lambda: [body for body in receiver.at("/v2/enqueue") if body["event_action"] == "resolve"],
            "the PagerDuty resolve",
            timeout=60,
        )
        assert resolve == [{"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": uid}]
        assert wait_for(
            lambda: [body for body in receiver.at("/hook") if body["event"] == "SymptomsResolved"], "the resolution"
        )
        assert wait_for(recorded, "status.notifications after the resolution", timeout=15)
        # Nothing twice: a re-check sends only when the findings changed materially (the verdict, or a finding's
        # object, category or confidence to the nearest ten), and then as an update of the same alert.
        events = receiver.at("/v2/enqueue")
        assert [body["event_action"] for body in events][-1] == "resolve"
        assert {body["dedup_key"] for body in events} == {uid}

        def material(body: dict[str, Any]) -> Any:
            details = body["payload"]["custom_details"]
            findings = [(f["object"], f["category"], f["confidence"] // 10) for f in details["findings"]]
            return (details["verdict"], findings)

        triggers = [material(body) for body in events if body["event_action"] == "trigger"]
        assert all(before != after for before, after in itertools.pairwise(triggers)), triggers
        kinds = [body["event"] for body in receiver.at("/hook")]
        assert kinds == ["Concluded"] + ["FindingsChanged"] * (len(triggers) - 1) + ["SymptomsResolved"]
    finally:
        operator.stop_operator(lab)
        operator.start_operator(lab, "--continuous-interval-seconds=2")
        receiver.close()
    # The operator read exactly that one Secret, with get, and nothing else of Secrets.
    secret_access = set()
    for line in lab.audit_log.read_text().splitlines():
        entry = json.loads(line)
        reference = entry.get("objectRef", {})
        # Other tests grant this identity Secrets in their own namespaces (the intake's token); cluster-wide
        # reads and this namespace's are what this test judges.
        if reference.get("namespace") not in (None, namespace):
            continue
        if entry["user"]["username"] == OPERATOR_USER and reference.get("resource") == "secrets":
            secret_access.add((entry["verb"], reference.get("namespace"), reference.get("name")))
    assert secret_access == {("get", namespace, "notify")}
