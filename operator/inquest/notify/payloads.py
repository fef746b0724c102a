"""What inquest sends where engineers already work: Slack Block Kit messages, PagerDuty Events API v2 events and
a generic JSON document for any other receiver. Pure: an Investigation's status in, JSON-ready dicts out.

Every text taken from the cluster (summaries, evidence, unknowns) is escaped for Slack's mrkdwn, so an object or
an Event message cannot mention @channel or forge a link, and is cut to each format's documented limits.
docs/notifications.md shows each payload.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from inquest import reporting
from inquest.api import models
from inquest.categories import ConcludedReason

WEBHOOK_SCHEMA: Final = "inquest.dev/notification/v1"
CLIENT_NAME: Final = "inquest"

# Slack's documented Block Kit limits.
SLACK_MAX_BLOCKS: Final = 50
SLACK_HEADER_CHARS: Final = 150
SLACK_SECTION_CHARS: Final = 3000
SLACK_FIELD_CHARS: Final = 2000
SLACK_MAX_FIELDS: Final = 10
SLACK_MAX_CONTEXT_ELEMENTS: Final = 10
# Slack shows the top-level text in notifications; it allows far more, but a notification shows a line or two.
SLACK_FALLBACK_CHARS: Final = 3000
# PagerDuty's documented Events API v2 limits.
PAGERDUTY_SUMMARY_CHARS: Final = 1024
PAGERDUTY_DEDUP_KEY_CHARS: Final = 255
PAGERDUTY_SEVERITIES: Final = ("critical", "error", "warning", "info")

TOP_EVIDENCE: Final = 3


class NoticeKind(StrEnum):
    """Why a notice is sent."""

    CONCLUDED = "Concluded"  # a generation was answered
    FINDINGS_CHANGED = "FindingsChanged"  # a Continuous re-check changed the findings materially
    RESOLVED = "SymptomsResolved"  # a Continuous investigation's symptoms went away


@dataclass(frozen=True)
class InvestigationRef:
    """The Investigation a notice is about, as the watch delivered it."""

    namespace: str
    name: str
    uid: str
    target: str = ""  # Kind/namespace/name of what was investigated, e.g. Deployment/shop/checkout
    generation: int = 0  # metadata.generation of the spec; 0 when unknown

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any]) -> InvestigationRef:
        """From the raw object; never raises, even on a spec the service would refuse."""
        metadata = raw.get("metadata") or {}
        namespace, name = str(metadata.get("namespace") or ""), str(metadata.get("name") or "")
        spec = raw.get("spec") or {}
        target = spec.get("target") if isinstance(spec, Mapping) else None
        if isinstance(target, Mapping) and target.get("kind"):
            kind = str(target["kind"])
            if kind == "Namespace":
                text = f"Namespace/{target.get('name') or namespace}"
            elif kind == "Node":
                text = f"Node/{target.get('name') or ''}"
            else:
                text = f"{kind}/{target.get('namespace') or namespace}/{target.get('name') or ''}"
        else:
            text = f"Namespace/{namespace}"
        try:
            generation = int(metadata.get("generation") or 0)
        except (TypeError, ValueError):
            generation = 0
        return cls(
            namespace=namespace, name=name, uid=str(metadata.get("uid") or ""), target=text, generation=generation
        )

    @property
    def qualified_name(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def describe_command(self) -> str:
        return f"kubectl describe investigation {self.name} -n {self.namespace}"


@dataclass(frozen=True)
class Notice:
    """One thing to tell: an Investigation's status and why it is being sent."""

    kind: NoticeKind
    investigation: InvestigationRef
    status: models.InvestigationStatus
    cluster: str = ""

    @property
    def verdict(self) -> str:
        return verdict_of(self.status)

    @property
    def confidence(self) -> int:
        return confidence_of(self.status)

    @property
    def is_resolution(self) -> bool:
        return self.kind == NoticeKind.RESOLVED


def verdict_of(status: models.InvestigationStatus) -> str:
    concluded = status.condition(models.CONCLUDED)
    return str(concluded.reason) if concluded is not None else str(ConcludedReason.INVESTIGATING)


def confidence_of(status: models.InvestigationStatus) -> int:
    """The root cause's confidence, else the top finding's; 0 without findings."""
    if status.root_cause is not None:
        return status.root_cause.confidence
    return status.findings[0].confidence if status.findings else 0


def digest(notice: Notice) -> str:
    """What counts as a different message: a resolution, or a trigger with materially different findings (the
    verdict, and each finding's object, category and confidence to the nearest ten, as Continuous re-checks
    decide). Re-wordings, new evidence times and follow-up rounds with the same findings are not reposted."""
    material: Any = ["resolve"] if notice.is_resolution else ["trigger", reporting.fingerprint_of_status(notice.status)]
    encoded = json.dumps(material, separators=(",", ":"), sort_keys=True).encode()
    return hashlib.sha256(encoded).hexdigest()[:32]


# --- text helpers -----------------------------------------------------------------------------------------------


def cut(text: str, limit: int) -> str:
    """At most limit characters, ending with an ellipsis when shortened."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def escape_mrkdwn(text: str) -> str:
    """Slack's three control characters; `<!channel>` or `<https://x|y>` in cluster text stays literal."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut_escaped(text: str, limit: int) -> str:
    """Like cut, for escaped text: never ends inside an &amp;-style entity."""
    if len(text) <= limit:
        return text
    head = text[: max(0, limit - 1)]
    ampersand = head.rfind("&")
    if ampersand != -1 and ";" not in head[ampersand:]:
        head = head[:ampersand]
    return head + "…"


def _time(moment: datetime | None) -> str:
    return models.format_timestamp(moment.replace(microsecond=0)) if moment is not None else ""


def _ref(ref: models.ObjectRef) -> str:
    return ref.as_path_entry()


def _evidence_line(item: models.Evidence) -> str:
    when = f" {_time(item.time)}" if item.time else ""
    return f"[{item.source}{when}] {item.detail}"


_VERDICT_TITLES: Final[dict[str, tuple[str, str]]] = {
    ConcludedReason.ROOT_CAUSE_IDENTIFIED: (":rotating_light:", "Root cause identified"),
    ConcludedReason.INCONCLUSIVE: (":warning:", "Inconclusive"),
    ConcludedReason.NO_FAULT_FOUND: (":white_check_mark:", "No fault found"),
    ConcludedReason.FAILED: (":x:", "Investigation failed"),
    ConcludedReason.INVESTIGATING: (":hourglass:", "Investigating"),
}


def title(notice: Notice) -> tuple[str, str]:
    """(emoji shortcode, words) for the notice's headline."""
    if notice.is_resolution:
        return ":white_check_mark:", "Symptoms resolved"
    emoji, words = _VERDICT_TITLES.get(notice.verdict, (":mag:", notice.verdict))
    if notice.kind == NoticeKind.FINDINGS_CHANGED:
        words = f"Findings changed: {words[0].lower()}{words[1:]}"
    return emoji, words


def headline(notice: Notice) -> str:
    """One line, no markup: what happened where, e.g. for a PagerDuty summary or a fallback text."""
    where = notice.investigation.qualified_name
    status = notice.status
    if notice.is_resolution:
        return f"[{where}] Symptoms resolved: {status.summary or ''}".strip()
    if status.root_cause is not None and notice.verdict == ConcludedReason.ROOT_CAUSE_IDENTIFIED:
        cause = status.root_cause
        return f"[{where}] {cause.category} at {_ref(cause.ref)} ({cause.confidence}%): {status.summary or ''}".strip()
    return f"[{where}] {notice.verdict}: {status.summary or ''}".strip()


# --- Slack ------------------------------------------------------------------------------------------------------


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": cut_escaped(text, SLACK_SECTION_CHARS)}}


def _bullets(heading: str, lines: list[str], limit: int = SLACK_SECTION_CHARS) -> str:
    """`*heading*` and one escaped bullet per line, as many as fit in limit; what does not fit is counted."""
    text = f"*{heading}*"
    for index, line in enumerate(lines):
        bullet = "\n• " + escape_mrkdwn(" ".join(line.split()))
        remaining = len(lines) - index - 1
        tail = f"\n…and {remaining} more" if remaining else ""
        if len(text) + len(bullet) + len(tail) <= limit:
            text += bullet
            continue
        # The line does not fit whole: a shortened part of it when that is worth reading, then the count.
        room = limit - len(text) - len(tail)
        if room >= 40:
            return text + cut_escaped(bullet, room) + tail
        # The previous round left room for exactly this count.
        return text + f"\n…and {remaining + 1} more"
    return text


def slack_message(notice: Notice) -> dict[str, Any]:
    """An incoming-webhook message: a fallback `text` and Block Kit `blocks` (header, summary, root cause with
    category and confidence, the top 3 evidence items, the unknowns, and the kubectl command)."""
    status, investigation = notice.status, notice.investigation
    emoji, words = title(notice)
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": cut(f"{emoji} {words}: {investigation.qualified_name}", SLACK_HEADER_CHARS),
                "emoji": True,
            },
        },
        _section(escape_mrkdwn(status.summary or "(no summary)")),
    ]
    top = status.findings[0] if status.findings else None
    if not notice.is_resolution and top is not None:
        label = "Root cause" if status.root_cause is not None else "Top candidate"
        fields = [
            f"*{label}*\n`{escape_mrkdwn(_ref(top.ref))}`",
            f"*Category*\n{top.category}",
            f"*Confidence*\n{top.confidence}%",
            f"*Verdict*\n{notice.verdict}",
        ]
        if len(top.path) > 1:
            fields.append("*Path*\n" + escape_mrkdwn(" → ".join(top.path)))
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": cut_escaped(field, SLACK_FIELD_CHARS)}
                    for field in fields[:SLACK_MAX_FIELDS]
                ],
            }
        )
        if top.evidence:
            lines = [_evidence_line(item) for item in top.evidence[:TOP_EVIDENCE]]
            blocks.append(_section(_bullets("Evidence", lines)))
    if not notice.is_resolution and status.unknowns:
        blocks.append(_section(_bullets("Could not check", list(status.unknowns))))
    footer = f"inquest · {investigation.target}" if investigation.target else "inquest"
    if notice.cluster:
        footer += f" · cluster {notice.cluster}"
    blocks.append({"type": "divider"})
    blocks.append(
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": cut_escaped(f"`{investigation.describe_command}`", SLACK_FIELD_CHARS)},
                {"type": "mrkdwn", "text": cut_escaped(escape_mrkdwn(footer), SLACK_FIELD_CHARS)},
            ],
        }
    )
    return {"text": cut(f"{emoji} {headline(notice)}", SLACK_FALLBACK_CHARS), "blocks": blocks[:SLACK_MAX_BLOCKS]}


# --- PagerDuty --------------------------------------------------------------------------------------------------

_SEVERITIES: Final[dict[str, str]] = {
    ConcludedReason.ROOT_CAUSE_IDENTIFIED: "error",
    ConcludedReason.INCONCLUSIVE: "warning",
    ConcludedReason.FAILED: "warning",
    ConcludedReason.NO_FAULT_FOUND: "info",
    ConcludedReason.INVESTIGATING: "info",
}


def _finding_details(finding: models.Finding) -> dict[str, Any]:
    return {
        "rank": finding.rank,
        "object": _ref(finding.ref),
        "category": str(finding.category),
        "confidence": finding.confidence,
        "summary": finding.summary,
        "path": " -> ".join(finding.path),
        "evidence": [_evidence_line(item) for item in finding.evidence[:TOP_EVIDENCE]],
    }


def pagerduty_event(notice: Notice, routing_key: str, severity: str | None = None) -> dict[str, Any]:
    """A `trigger` (dedup_key = the Investigation's uid, so every answer of one Investigation updates one alert)
    with the findings in custom_details; for a resolution, the matching `resolve`."""
    dedup_key = notice.investigation.uid[:PAGERDUTY_DEDUP_KEY_CHARS]
    if notice.is_resolution:
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup_key}
    status, investigation = notice.status, notice.investigation
    chosen = severity if severity in PAGERDUTY_SEVERITIES else _SEVERITIES.get(notice.verdict, "info")
    source = investigation.target or investigation.qualified_name
    payload: dict[str, Any] = {
        "summary": cut(" ".join(headline(notice).split()), PAGERDUTY_SUMMARY_CHARS),
        "source": f"{notice.cluster}: {source}" if notice.cluster else source,
        "severity": chosen,
        "group": investigation.namespace,
        "class": str(status.root_cause.category) if status.root_cause else notice.verdict,
        "custom_details": {
            "investigation": investigation.qualified_name,
            "uid": investigation.uid,
            "verdict": notice.verdict,
            "summary": status.summary or "",
            "confidence": notice.confidence,
            "findings": [_finding_details(finding) for finding in status.findings],
            "unknowns": list(status.unknowns),
            "describe": investigation.describe_command,
        },
    }
    if status.root_cause is not None:
        payload["component"] = _ref(status.root_cause.ref)
        payload["custom_details"]["root_cause"] = _ref(status.root_cause.ref)
        payload["custom_details"]["category"] = str(status.root_cause.category)
    if status.concluded_time is not None:
        payload["timestamp"] = models.format_timestamp(status.concluded_time)
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "client": CLIENT_NAME,
        "payload": payload,
    }


# --- generic webhook --------------------------------------------------------------------------------------------


def webhook_payload(notice: Notice) -> dict[str, Any]:
    """The generic JSON document (schema inquest.dev/notification/v1): the Investigation, why this is sent, the
    verdict and the findings in the Investigation API's own shape (see the CRD for every field)."""
    status, investigation = notice.status, notice.investigation
    return {
        "schema": WEBHOOK_SCHEMA,
        "event": str(notice.kind),
        "dedupKey": investigation.uid,
        "cluster": notice.cluster or None,
        "investigation": {
            "namespace": investigation.namespace,
            "name": investigation.name,
            "uid": investigation.uid,
            "target": investigation.target,
            "describeCommand": investigation.describe_command,
        },
        "headline": headline(notice),
        "verdict": notice.verdict,
        "summary": status.summary or "",
        "confidence": notice.confidence,
        "rootCause": status.root_cause.to_api() if status.root_cause else None,
        "findings": [finding.to_api() for finding in status.findings],
        "unknowns": list(status.unknowns),
        "observedGeneration": status.observed_generation,
        "concludedTime": models.format_timestamp(status.concluded_time) if status.concluded_time else None,
    }
