"""The hook the service calls: routing, Secrets, status records and NotificationFailed Events. HTTP is scripted."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from notify_builders import CONCLUDED_AT, INVESTIGATION, UID, config_document, finding, healthy, status

from inquest.api import models
from inquest.categories import ConcludedReason
from inquest.notify import dispatcher as dispatch
from inquest.notify.dispatcher import Dispatcher, HttpRequest, ResultCallback, Timing
from inquest.notify.hook import Notifier, newly_resolved
from inquest.notify.payloads import InvestigationRef
from inquest.notify.routes import DeliverySettings, NotifyConfig

NOW = datetime(2026, 11, 25, 14, 40, tzinfo=UTC)
SLACK_URL = "https://hooks.slack.com/services/T0000/B0000/slack-secret-token"
SECRETS = {
    "slack-url": SLACK_URL,
    "pagerduty-key": "pd-routing-key-0123456789abcdef",
    "servicenow-url": "https://example.service-now.com/api/x_inquest/notify",
    "servicenow-auth": "Basic c2VjcmV0OnNlY3JldA==",
}


class ApiError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"({status})")
        self.status = status


class FakeKube:
    """Secrets, status records and Events, as the lead's callbacks would write them."""

    def __init__(self, secrets: dict[str, Any] | None = None) -> None:
        self.secrets = dict(SECRETS if secrets is None else secrets)
        self.reads: list[str] = []
        self.records: list[tuple[str, list[dict[str, Any]]]] = []
        self.events: list[tuple[str, str, str]] = []

    async def read_secret_key(self, namespace: str, name: str, key: str) -> str:
        self.reads.append(key)
        value = self.secrets.get(key)
        if isinstance(value, Exception):
            raise value
        if value is None:
            raise KeyError(key)
        return str(value)

    async def record_status(self, investigation: InvestigationRef, notifications: list[models.Notification]) -> None:
        self.records.append((investigation.uid, [item.to_api() for item in notifications]))

    async def post_event(self, investigation: InvestigationRef, reason: str, message: str) -> None:
        self.events.append((investigation.uid, reason, message))

    def latest(self) -> dict[str, dict[str, Any]]:
        return {item["notifier"]: item for item in self.records[-1][1]}


class Fixture:
    def __init__(
        self,
        kube: FakeKube,
        script: list[dispatch._Attempt] | None = None,
        document: dict[str, Any] | None = None,
        now: datetime = NOW,
        **delivery: Any,
    ) -> None:
        self.kube = kube
        self.posts: list[HttpRequest] = []
        self.script: Iterator[dispatch._Attempt] = iter(script or [])
        fixture = self

        class Scripted(Dispatcher):
            async def _post(self, request: HttpRequest) -> dispatch._Attempt:
                fixture.posts.append(request)
                return next(fixture.script, dispatch._Attempt(ok=True, retryable=False, message="accepted (HTTP 200)"))

        def factory(settings: DeliverySettings, on_result: ResultCallback, timing: Timing) -> Dispatcher:
            return Scripted(settings, on_result, timing)

        async def no_sleep(_: float) -> None:
            return None

        self.notifier = Notifier(
            NotifyConfig.model_validate(document or config_document(**delivery)),
            kube,
            kube.record_status,
            kube.post_event,
            Timing(sleep=no_sleep, clock=lambda: now),
            dispatcher_factory=factory,
        )

    def posted(self, host: str) -> list[HttpRequest]:
        return [post for post in self.posts if host in post.url]


@pytest.fixture
def kube() -> FakeKube:
    return FakeKube()


async def test_a_conclusion_goes_to_every_routed_notifier_with_its_secrets(kube: FakeKube) -> None:
    fixture = Fixture(kube)
    fixture.notifier.on_concluded(INVESTIGATION, status())
    await fixture.notifier.wait_idle()
    slack, pagerduty, webhook = (
        fixture.posted("hooks.slack.com"),
        fixture.posted("events.pagerduty.com"),
        fixture.posted("service-now"),
    )
    assert len(slack) == len(pagerduty) == len(webhook) == 1
    assert slack[0].url == SLACK_URL
    assert "blocks" in slack[0].body
    assert pagerduty[0].url == "https://events.pagerduty.com/v2/enqueue"
    assert pagerduty[0].body["routing_key"] == SECRETS["pagerduty-key"]
    assert pagerduty[0].body["dedup_key"] == UID
    assert webhook[0].headers == {"Authorization": SECRETS["servicenow-auth"]}
    assert webhook[0].body["schema"] == "inquest.dev/notification/v1"
    # Every secret value is one the dispatcher keeps out of messages.
    assert SLACK_URL in slack[0].secrets
    assert SECRETS["servicenow-auth"] in webhook[0].secrets
    recorded = kube.latest()
    assert sorted(recorded) == ["oncall-slack", "pagerduty", "servicenow"]
    assert recorded["pagerduty"] == {
        "notifier": "pagerduty",
        "state": "Sent",
        "attempts": 1,
        "lastAttemptTime": "2026-11-25T14:40:00Z",
        "message": "accepted (HTTP 200)",
    }
    for _, notifications in kube.records:
        models.InvestigationStatus.model_validate({"notifications": notifications})
    assert kube.events == []


async def test_an_unchanged_answer_is_not_reposted_but_its_records_are_written_back(kube: FakeKube) -> None:
    fixture = Fixture(kube)
    fixture.notifier.on_concluded(INVESTIGATION, status())
    await fixture.notifier.wait_idle()
    writes = len(kube.records)
    # A follow-up round with the same findings (reworded): nothing is sent, the list is restored.
    fixture.notifier.on_concluded(INVESTIGATION, status(summary="Same cause, new words."))
    await fixture.notifier.wait_idle()
    assert len(fixture.posts) == 3
    assert len(kube.records) == writes + 1
    assert sorted(kube.latest()) == ["oncall-slack", "pagerduty", "servicenow"]
    # Materially different findings are sent again.
    fixture.notifier.on_concluded(INVESTIGATION, status(findings=[finding(confidence=95)]))
    await fixture.notifier.wait_idle()
    assert len(fixture.posts) == 6


async def test_routes_keep_a_low_confidence_answer_off_the_pager(kube: FakeKube) -> None:
    fixture = Fixture(kube)
    fixture.notifier.on_concluded(INVESTIGATION, status(findings=[finding(confidence=40)]))
    other = InvestigationRef("payments", "x", "uid-other", "Namespace/payments")
    fixture.notifier.on_concluded(other, status())
    await fixture.notifier.wait_idle()
    assert fixture.posted("pagerduty") == []
    assert len(fixture.posts) == 2  # slack and the webhook for shop; nothing for namespace payments


async def test_a_secret_that_cannot_be_read_fails_with_an_event_and_no_value_leaks(kube: FakeKube) -> None:
    kube.secrets["slack-url"] = ApiError(403)
    kube.secrets["servicenow-url"] = "not a url but a secret value"
    del kube.secrets["pagerduty-key"]
    fixture = Fixture(kube)
    fixture.notifier.on_concluded(INVESTIGATION, status())
    await fixture.notifier.wait_idle()
    assert fixture.posts == []
    recorded = kube.latest()
    assert {item["state"] for item in recorded.values()} == {"Failed"}
    assert recorded["oncall-slack"]["message"] == (
        "Secret inquest-system/inquest-notifiers key slack-url: forbidden; the operator needs get on that Secret "
        "(see docs/notifications.md) (after 1 attempt)"
    )
    assert "has no such key" in recorded["pagerduty"]["message"]
    assert "does not hold an http(s) URL" in recorded["servicenow"]["message"]
    assert sorted((reason, message.split(":")[0]) for _, reason, message in kube.events) == [
        ("NotificationFailed", "Notification to oncall-slack failed"),
        ("NotificationFailed", "Notification to pagerduty failed"),
        ("NotificationFailed", "Notification to servicenow failed"),
    ]
    assert not any("secret value" in message for _, _, message in kube.events)


async def test_a_transient_secret_read_error_is_retried(kube: FakeKube) -> None:
    kube.secrets["slack-url"] = ApiError(500)
    fixture = Fixture(kube, maxAttempts=2)
    fixture.notifier.on_concluded(INVESTIGATION, status())
    await fixture.notifier.wait_idle()
    slack = kube.latest()["oncall-slack"]
    assert (slack["state"], slack["attempts"]) == ("Failed", 2)
    assert kube.reads.count("slack-url") == 2


async def test_secrets_are_cached_for_a_while(kube: FakeKube) -> None:
    fixture = Fixture(kube)
    fixture.notifier.on_concluded(INVESTIGATION, status())
    await fixture.notifier.wait_idle()
    fixture.notifier.on_concluded(InvestigationRef("shop", "other", "uid-2", "Namespace/shop"), status())
    await fixture.notifier.wait_idle()
    assert kube.reads.count("slack-url") == 1
    uncached = FakeKube()
    fixture = Fixture(uncached, secretCacheSeconds=0)
    fixture.notifier.on_concluded(INVESTIGATION, status())
    fixture.notifier.on_concluded(InvestigationRef("shop", "other", "uid-2", "Namespace/shop"), status())
    await fixture.notifier.wait_idle()
    assert uncached.reads.count("slack-url") == 2


async def test_retrying_is_recorded_and_only_a_final_failure_posts_an_event(kube: FakeKube) -> None:
    busy = dispatch._Attempt(ok=False, retryable=True, message="refused (HTTP 503)")
    document = config_document()
    document["routes"] = [{"notifiers": ["oncall-slack"]}]
    fixture = Fixture(kube, [busy, busy], document)
    fixture.notifier.on_concluded(INVESTIGATION, status())
    await fixture.notifier.wait_idle()
    states = [(records[0]["state"], records[0]["attempts"]) for _, records in kube.records]
    assert states == [("Retrying", 1), ("Retrying", 2), ("Sent", 3)]
    assert kube.records[0][1][0]["message"].startswith("refused (HTTP 503); retrying in ")
    assert kube.events == []


async def test_resolution_resolves_where_the_trigger_went(kube: FakeKube) -> None:
    fixture = Fixture(kube)
    faulty = status()
    fixture.notifier.on_concluded(INVESTIGATION, faulty)
    await fixture.notifier.wait_idle()
    fixture.notifier.on_findings_changed(INVESTIGATION, faulty, healthy(resolved=True))
    await fixture.notifier.wait_idle()
    resolves = fixture.posted("pagerduty")[1:]
    assert [post.body for post in resolves] == [
        {"routing_key": SECRETS["pagerduty-key"], "event_action": "resolve", "dedup_key": UID}
    ]
    assert "Symptoms resolved" in fixture.posted("slack")[1].body["blocks"][0]["text"]["text"]
    assert fixture.posted("service-now")[1].body["event"] == "SymptomsResolved"
    # The symptoms return: a new trigger, then the second resolution is sent too.
    returned = status(resolved=False)
    fixture.notifier.on_findings_changed(INVESTIGATION, healthy(resolved=True), returned)
    await fixture.notifier.wait_idle()
    fixture.notifier.on_findings_changed(INVESTIGATION, returned, healthy(resolved=True))
    await fixture.notifier.wait_idle()
    actions = [post.body["event_action"] for post in fixture.posted("pagerduty")]
    assert actions == ["trigger", "resolve", "trigger", "resolve"]


async def test_a_resolution_with_nothing_sent_before_goes_by_the_routes_of_the_old_answer(kube: FakeKube) -> None:
    fixture = Fixture(kube)
    # As after a restart: nothing remembered, the old answer was routed to every notifier.
    fixture.notifier.on_resolved(INVESTIGATION, status(), healthy())
    await fixture.notifier.wait_idle()
    assert len(fixture.posts) == 3
    # An old answer no route matched: nothing to resolve.
    quiet = Fixture(FakeKube())
    quiet.notifier.on_resolved(INVESTIGATION, status(ConcludedReason.NO_FAULT_FOUND, findings=[]), healthy())
    await quiet.notifier.wait_idle()
    assert quiet.posts == []


def test_newly_resolved() -> None:
    assert newly_resolved(status(), healthy(resolved=True))
    assert newly_resolved(None, healthy(resolved=True))
    assert not newly_resolved(healthy(resolved=True), healthy(resolved=True))
    assert not newly_resolved(status(), status(resolved=False))
    assert not newly_resolved(status(), healthy(resolved=None))


async def test_the_hook_never_raises_into_the_service(kube: FakeKube, caplog: pytest.LogCaptureFixture) -> None:
    fixture = Fixture(kube)
    fixture.notifier.on_concluded(INVESTIGATION, None)  # type: ignore[arg-type]
    fixture.notifier.on_resolved(INVESTIGATION, object(), healthy())  # type: ignore[arg-type]
    await fixture.notifier.wait_idle()
    assert fixture.posts == []
    assert "the investigation is unaffected" in caplog.text


async def test_a_failing_status_write_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    kube = FakeKube()

    async def gone(investigation: InvestigationRef, notifications: list[models.Notification]) -> None:
        raise ApiError(404)

    kube.record_status = gone  # type: ignore[method-assign]
    fixture = Fixture(kube)
    fixture.notifier.on_concluded(INVESTIGATION, status())
    await fixture.notifier.wait_idle()
    assert len(fixture.posts) == 3
    assert "could not record notifications on shop/checkout-failing" in caplog.text


async def test_for_kube_patches_only_the_notifications_and_posts_warning_events() -> None:
    class Writer:
        def __init__(self) -> None:
            self.patches: list[tuple[str, str, dict[str, Any]]] = []
            self.events: list[tuple[Any, str, str, bool]] = []

        async def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
            self.patches.append((namespace, name, patch))

        async def post_event(self, involved: Any, reason: str, message: str, warning: bool = False) -> None:
            self.events.append((involved, reason, message, warning))

        async def read_secret_key(self, namespace: str, name: str, key: str) -> str:
            raise ApiError(404)

    writer = Writer()
    notifier = Notifier.for_kube(NotifyConfig.model_validate(config_document()), writer)  # type: ignore[arg-type]
    notifier.on_concluded(INVESTIGATION, status())
    await notifier.wait_idle()
    await notifier.close()
    namespace, name, patch = writer.patches[-1]
    assert (namespace, name, list(patch)) == ("shop", "checkout-failing", ["notifications"])
    assert len(patch["notifications"]) == 3
    involved, reason, message, warning = writer.events[0]
    assert (involved.namespace, involved.name, involved.uid) == ("shop", "checkout-failing", UID)
    assert (reason, warning) == ("NotificationFailed", True)
    assert "the Secret does not exist" in message


async def test_kube_writer_reads_one_secret_key() -> None:
    from kubernetes import client

    from inquest.clients.kube import KubeWriter

    class Core:
        def __init__(self) -> None:
            self.calls: list[tuple[str, str]] = []

        def read_namespaced_secret(self, name: str, namespace: str) -> client.V1Secret:
            self.calls.append((namespace, name))
            return client.V1Secret(data={"url": base64.b64encode(b"https://hooks.example.com/x\n").decode()})

    writer = KubeWriter(client.ApiClient())
    core = Core()
    writer._core = core  # type: ignore[assignment]
    try:
        assert await writer.read_secret_key("ns", "notifiers", "url") == "https://hooks.example.com/x"
        with pytest.raises(KeyError, match="has no key 'token'"):
            await writer.read_secret_key("ns", "notifiers", "token")
    finally:
        writer.close()
    assert core.calls == [("ns", "notifiers"), ("ns", "notifiers")]


# --- resuming after a restart ---------------------------------------------------------------------------------------

ANSWERED = InvestigationRef("shop", "checkout-failing", UID, "Deployment/shop/checkout", generation=1)


def answered_status(*records: models.Notification) -> dict[str, Any]:
    answer = status()
    answer.notifications = list(records)
    return answer.to_api()


def record(notifier: str, state: models.NotificationState, generation: int | None = 1) -> models.Notification:
    return models.Notification(notifier=notifier, state=state, attempts=1, generation=generation, last_attempt_time=NOW)


async def test_a_restart_delivers_what_the_killed_process_left_undone(kube: FakeKube) -> None:
    fixture = Fixture(kube)
    sent = record("oncall-slack", models.NotificationState.SENT)
    retrying = record("pagerduty", models.NotificationState.RETRYING)
    fixture.notifier.resume(ANSWERED, answered_status(sent, retrying))
    await fixture.notifier.wait_idle()
    assert fixture.posted("hooks.slack.com") == []
    assert len(fixture.posted("events.pagerduty.com")) == 1
    assert len(fixture.posted("service-now")) == 1
    recorded = kube.latest()
    assert recorded["oncall-slack"] == sent.to_api()  # kept, not dropped by the write of the others
    assert recorded["pagerduty"]["state"] == "Sent"
    assert recorded["pagerduty"]["generation"] == 1
    # A second sighting of the same answer (e.g. the watch event of that write) delivers nothing more.
    fixture.notifier.resume(ANSWERED, answered_status())
    await fixture.notifier.wait_idle()
    assert len(fixture.posts) == 2


async def test_a_record_of_an_older_generation_does_not_count_as_delivered(kube: FakeKube) -> None:
    fixture = Fixture(kube)
    newer = InvestigationRef("shop", "checkout-failing", UID, "Deployment/shop/checkout", generation=2)
    older = [record(name, models.NotificationState.SENT) for name in ("oncall-slack", "pagerduty", "servicenow")]
    fixture.notifier.resume(newer, answered_status(*older))
    await fixture.notifier.wait_idle()
    assert len(fixture.posts) == 3
    assert {item["generation"] for item in kube.latest().values()} == {2}


async def test_nothing_is_resent_when_every_notifier_finished(kube: FakeKube) -> None:
    fixture = Fixture(kube)
    finished = [
        record("oncall-slack", models.NotificationState.SENT),
        record("pagerduty", models.NotificationState.FAILED),
        record("servicenow", models.NotificationState.SENT, generation=None),  # written before generations
    ]
    fixture.notifier.resume(ANSWERED, answered_status(*finished))
    await fixture.notifier.wait_idle()
    assert fixture.posts == []


async def test_an_answer_this_process_notified_is_not_resumed(kube: FakeKube) -> None:
    fixture = Fixture(kube)
    fixture.notifier.on_concluded(ANSWERED, status())
    fixture.notifier.resume(ANSWERED, answered_status())
    await fixture.notifier.wait_idle()
    assert len(fixture.posts) == 3


async def test_an_old_answer_is_not_delivered_after_a_restart(kube: FakeKube) -> None:
    from inquest.notify.hook import RESUME_WINDOW

    fixture = Fixture(kube, now=CONCLUDED_AT + RESUME_WINDOW + timedelta(minutes=1))
    fixture.notifier.resume(ANSWERED, answered_status())
    await fixture.notifier.wait_idle()
    assert fixture.posts == []
    # Just inside the window the same answer goes out: the check above is not vacuous.
    fresh = Fixture(FakeKube(), now=CONCLUDED_AT + RESUME_WINDOW - timedelta(minutes=1))
    fresh.notifier.resume(ANSWERED, answered_status())
    await fresh.notifier.wait_idle()
    assert len(fresh.posts) == 3
