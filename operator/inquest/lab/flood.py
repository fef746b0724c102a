"""A flood of requests at the Alertmanager intake, run as its own process so that its CPU use and its GIL are not
the measuring test's.

`python -m inquest.lab.flood PLAN.json RESULT.json` sends the plan's requests, shuffled, at an even rate over the
plan's seconds with a bounded number in flight, and writes every answer: its kind, HTTP status and Retry-After.
The kinds are what an intake meets on a bad day: repeats of one alert group (dedupe), many distinct groups,
bodies that are not JSON or not a payload, bodies over the limit, and missing or wrong tokens.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

import aiohttp

OVERSIZED_BYTES: Final = 1024 * 1024 + 512
REPEATED_GROUP: Final = 10**9  # the number of the one group the repeats belong to, past every distinct one
NO_ANSWER: Final = 0  # the status recorded when the connection failed before any answer


class Kind(StrEnum):
    REPEAT = "repeat"  # the same notification of one group, again and again
    DISTINCT = "distinct"  # one notification per group, each group new
    MALFORMED = "malformed"
    OVERSIZED = "oversized"
    BAD_TOKEN = "badToken"


@dataclass(frozen=True)
class FloodPlan:
    url: str
    token: str
    namespace: str  # the group label `namespace` of the valid notifications: where their Investigations go
    target_namespace: str  # where the alerts' Deployment lives
    repeats: int
    distinct: int
    malformed: int
    oversized: int
    bad_token: int
    seconds: float
    concurrency: int = 32
    seed: int = 7
    distinct_offset: int = 0  # first group number, so a later flood can add new groups


@dataclass(frozen=True)
class Answer:
    kind: Kind
    status: int
    retry_after: str | None
    group: int | None = None  # the distinct group's number
    error: str = ""


@dataclass
class FloodResult:
    answers: list[Answer] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "answers": [asdict(answer) for answer in self.answers]}

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> FloodResult:
        answers = [
            Answer(Kind(item["kind"]), item["status"], item["retry_after"], item["group"], item["error"])
            for item in document["answers"]
        ]
        return cls(answers, float(document["seconds"]))


def group_key(group: int) -> str:
    return f'{{}}/{{severity="warning"}}:{{alertname="FloodAlert", instance="node-{group}"}}'


def notification(namespace: str, target_namespace: str, group: int) -> dict[str, Any]:
    """A version 4 notification of group number `group`, one firing alert naming the target's Deployment."""
    labels = {
        "alertname": "FloodAlert",
        "instance": f"node-{group}",
        "namespace": target_namespace,
        "deployment": "payments",
        "severity": "warning",
    }
    return {
        "version": "4",
        "groupKey": group_key(group),
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "inquest",
        "groupLabels": {"alertname": "FloodAlert", "instance": f"node-{group}", "namespace": namespace},
        "commonLabels": labels,
        "commonAnnotations": {"summary": f"payments errors seen from node-{group}"},
        "externalURL": "http://alertmanager.example",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": f"payments errors seen from node-{group}"},
                "startsAt": "2026-11-25T14:39:09Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.example/graph",
                "fingerprint": f"{group:016x}",
            }
        ],
    }


_MALFORMED_BODIES: Final = (
    b'{"version": ',  # not JSON
    b'{"version": "3", "groupKey": "x", "status": "firing", "alerts": []}',  # not version 4
    b"[1, 2, 3]",  # JSON, not an object
    b'{"version": "4", "groupKey": "x", "status": "firing", "alerts": [{"status": "pending", "labels": {}}]}',
)


def requests_of(plan: FloodPlan) -> list[tuple[Kind, int]]:
    """(kind, number) for every request, shuffled: the number is a distinct group's, else a running index."""
    wanted: list[tuple[Kind, int]] = [(Kind.REPEAT, index) for index in range(plan.repeats)]
    wanted += [(Kind.DISTINCT, plan.distinct_offset + index) for index in range(plan.distinct)]
    wanted += [(Kind.MALFORMED, index) for index in range(plan.malformed)]
    wanted += [(Kind.OVERSIZED, index) for index in range(plan.oversized)]
    wanted += [(Kind.BAD_TOKEN, index) for index in range(plan.bad_token)]
    random.Random(plan.seed).shuffle(wanted)
    return wanted


def _request(plan: FloodPlan, kind: Kind, number: int) -> tuple[bytes, dict[str, str]]:
    auth = {"Authorization": f"Bearer {plan.token}", "Content-Type": "application/json"}
    if kind == Kind.REPEAT:
        return json.dumps(notification(plan.namespace, plan.target_namespace, REPEATED_GROUP)).encode(), auth
    if kind == Kind.DISTINCT:
        return json.dumps(notification(plan.namespace, plan.target_namespace, number)).encode(), auth
    if kind == Kind.MALFORMED:
        return _MALFORMED_BODIES[number % len(_MALFORMED_BODIES)], auth
    if kind == Kind.OVERSIZED:
        return b" " * OVERSIZED_BYTES, auth
    body = json.dumps(notification(plan.namespace, plan.target_namespace, REPEATED_GROUP)).encode()
    wrong = {"Content-Type": "application/json"} if number % 2 else {**auth, "Authorization": "Bearer wrong-token"}
    return body, wrong


async def _send(session: aiohttp.ClientSession, plan: FloodPlan, kind: Kind, number: int) -> Answer:
    body, headers = _request(plan, kind, number)
    group = number if kind == Kind.DISTINCT else None
    try:
        async with session.post(plan.url, data=body, headers=headers) as response:
            await response.read()
            return Answer(kind, response.status, response.headers.get("Retry-After"), group)
    except (aiohttp.ClientError, TimeoutError) as error:
        return Answer(kind, NO_ANSWER, None, group, f"{type(error).__name__}: {error}"[:300])


async def flood(plan: FloodPlan) -> FloodResult:
    """Sends the plan; each request starts at its slot of an even schedule, at most `concurrency` in flight."""
    wanted = requests_of(plan)
    interval = plan.seconds / max(1, len(wanted))
    slots = asyncio.Semaphore(plan.concurrency)
    result = FloodResult()
    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=plan.concurrency, force_close=False)
    started = time.monotonic()
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:

        async def one(kind: Kind, number: int) -> None:
            try:
                result.answers.append(await _send(session, plan, kind, number))
            finally:
                slots.release()

        tasks: list[asyncio.Task[None]] = []
        for index, (kind, number) in enumerate(wanted):
            delay = started + index * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await slots.acquire()
            tasks.append(asyncio.create_task(one(kind, number)))
        await asyncio.gather(*tasks)
    result.seconds = time.monotonic() - started
    return result


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m inquest.lab.flood PLAN.json RESULT.json", file=sys.stderr)
        return 2
    plan = FloodPlan(**json.loads(Path(argv[0]).read_text()))
    result = asyncio.run(flood(plan))
    Path(argv[1]).write_text(json.dumps(result.to_json()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
