"""What `kubectl inquest` prints, built from plain Investigation dicts (as the API server returns them): pure.

Tolerant by design: a field it does not know is ignored and a missing one is left out, so an older plugin can
show a newer operator's status and the other way round.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from inquest.api import models

VERDICT_STYLES: Final = {
    "RootCauseIdentified": "bold red",
    "Inconclusive": "bold yellow",
    "NoFaultFound": "bold green",
    "Failed": "bold magenta",
    "Investigating": "bold cyan",
}
HYPOTHESIS_MARKS: Final = {"Supported": ("✔", "red"), "RuledOut": ("✘", "green"), "Unknown": ("?", "yellow")}
MAX_TIMELINE: Final = 40


# --- small accessors -------------------------------------------------------------------------------------------


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else []


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def ref_text(ref: Any) -> str:
    """`Kind/namespace/name`, or `Kind/name` for a cluster-scoped object."""
    ref = _map(ref)
    parts = [_text(ref.get("kind")), _text(ref.get("namespace")), _text(ref.get("name"))]
    return "/".join(part for part in parts if part)


def target_text(investigation: Mapping[str, Any]) -> str:
    spec = _map(investigation.get("spec"))
    target = _map(spec.get("target"))
    namespace = _text(_map(investigation.get("metadata")).get("namespace"))
    if not target:
        return f"Namespace/{namespace}" if namespace else "Namespace"
    return "/".join(part for part in (_text(target.get("kind")), _text(target.get("name"))) if part)


def verdict(investigation: Mapping[str, Any]) -> str:
    """The Concluded condition's reason; `Pending` before the operator has answered."""
    status = _map(investigation.get("status"))
    for condition in _list(status.get("conditions")):
        condition = _map(condition)
        if condition.get("type") == models.CONCLUDED:
            return _text(condition.get("reason")) or "Pending"
    return "Pending"


def is_answered(investigation: Mapping[str, Any], generation: int | None = None) -> bool:
    """True once the status describes `generation` (default: the current metadata.generation)."""
    metadata = _map(investigation.get("metadata"))
    wanted = generation if generation is not None else metadata.get("generation")
    observed = _map(investigation.get("status")).get("observedGeneration")
    if not isinstance(wanted, int) or not isinstance(observed, int):
        return False
    return observed >= wanted and verdict(investigation) not in ("Pending", "Investigating")


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def short_time(value: Any) -> str:
    moment = parse_time(value)
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def age(created: Any, now: datetime) -> str:
    """kubectl's style: 45s, 12m, 5h, 3d."""
    moment = parse_time(created)
    if moment is None:
        return "-"
    seconds = max(0, int((now - moment).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * (2 if unit != "m" else 1):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _bar(confidence: int, width: int = 10) -> str:
    filled = max(0, min(width, round(confidence * width / 100)))
    return "█" * filled + "░" * (width - filled)


def _confidence(value: Any) -> int:
    return value if isinstance(value, int) else 0


# --- the report ------------------------------------------------------------------------------------------------


def report(investigation: Mapping[str, Any]) -> RenderableType:
    """The whole report, as `kubectl inquest show` prints it."""
    sections: list[RenderableType] = [header(investigation)]
    status = _map(investigation.get("status"))
    if not status:
        sections.append(Text("Not answered yet: is the inquest operator running and watching this namespace?"))
        return Group(*sections)
    findings = [_map(finding) for finding in _list(status.get("findings"))]
    for title, body in (
        ("Findings", findings_table(findings)),
        ("Evidence timeline", timeline_table(findings)),
        ("Dependency path", dependency_path(findings)),
        ("Hypotheses", hypotheses_table(_list(status.get("hypotheses")))),
        ("Unknowns", bullet_list(_list(status.get("unknowns")))),
        ("Rounds", rounds_table(_list(status.get("rounds")))),
        ("Notifications", notifications_table(_list(status.get("notifications")))),
    ):
        if body is not None:
            sections.extend([Text(""), Text(title, style="bold underline"), body])
    return Group(*sections)


def header(investigation: Mapping[str, Any]) -> RenderableType:
    metadata = _map(investigation.get("metadata"))
    spec = _map(investigation.get("spec"))
    status = _map(investigation.get("status"))
    name = f"{_text(metadata.get('namespace'))}/{_text(metadata.get('name'))}"
    lines = [Text.assemble(("Investigation ", "bold"), (name, "bold cyan"), f"  target {target_text(investigation)}")]
    if spec.get("question"):
        lines.append(Text.assemble(("Question: ", "bold"), _text(spec.get("question"))))
    window = _text(spec.get("lookback")) or (
        f"{_text(spec.get('since'))}..{_text(spec.get('until')) or 'now'}" if spec.get("since") else "30m"
    )
    lines.append(Text.assemble(("Window:   ", "bold"), window, f"   mode {_text(spec.get('mode')) or 'Once'}"))
    for item in _list(spec.get("context")):
        lines.append(Text.assemble(("Context:  ", "bold"), _text(item)))
    if status:
        reason = verdict(investigation)
        took = status.get("durationMillis")
        answered = f"  (answered {short_time(status.get('concludedTime'))}" + (
            f" in {took} ms)" if isinstance(took, int) else ")"
        )
        lines.append(Text.assemble(("Verdict:  ", "bold"), (reason, VERDICT_STYLES.get(reason, "bold")), answered))
        root = _map(status.get("rootCause"))
        if root:
            lines.append(
                Text.assemble(
                    ("Root cause: ", "bold"),
                    f"{ref_text(root.get('ref'))} ({_text(root.get('category'))}, "
                    f"{_confidence(root.get('confidence'))}% confidence)",
                )
            )
        if status.get("summary"):
            lines.append(Text.assemble(("Summary:  ", "bold"), _text(status.get("summary"))))
    return Group(*lines)


def findings_table(findings: Sequence[Mapping[str, Any]]) -> RenderableType | None:
    """One block per finding, most likely first: rank, confidence bar, category and object, then its summary."""
    if not findings:
        return None
    blocks: list[RenderableType] = []
    for finding in sorted(findings, key=lambda item: _confidence(item.get("rank")) or 99):
        confidence = _confidence(finding.get("confidence"))
        blocks.append(
            Text.assemble(
                (f"#{finding.get('rank', '?')}  ", "bold"),
                (_bar(confidence), _confidence_style(confidence)),
                f" {confidence:>3}%  ",
                (_text(finding.get("category")), "bold"),
                "  ",
                ref_text(finding.get("ref")),
            )
        )
        blocks.append(Padding(Text(_text(finding.get("summary"))), (0, 0, 0, 4), expand=False))
    return Group(*blocks)


def _confidence_style(confidence: int) -> str:
    return "red" if confidence >= 70 else "yellow" if confidence >= 40 else "dim"


def timeline_entries(findings: Iterable[Mapping[str, Any]]) -> list[tuple[datetime | None, int, Mapping[str, Any]]]:
    """Every finding's evidence, oldest first; evidence without a time (current state) last, by finding rank."""
    entries = [
        (parse_time(_map(item).get("time")), _confidence(finding.get("rank")), _map(item))
        for finding in findings
        for item in _list(finding.get("evidence"))
    ]
    latest = datetime.max.replace(tzinfo=UTC)
    return sorted(entries, key=lambda entry: (entry[0] or latest, entry[1]))


def timeline_table(findings: Sequence[Mapping[str, Any]]) -> RenderableType | None:
    entries = timeline_entries(findings)
    if not entries:
        return None
    table = Table(box=None, show_edge=False, pad_edge=False, expand=True)
    for column in ("TIME", "FINDING", "SOURCE"):
        table.add_column(column, no_wrap=True)
    table.add_column("OBJECT", ratio=2, overflow="fold")
    table.add_column("DETAIL", ratio=3, overflow="fold")
    for moment, rank, item in entries[:MAX_TIMELINE]:
        detail = _text(item.get("detail"))
        if item.get("query"):
            detail += f"\nquery: {_text(item.get('query'))}"
        table.add_row(
            moment.strftime("%Y-%m-%d %H:%M:%SZ") if moment else "(now)",
            f"#{rank}",
            _text(item.get("source")),
            ref_text(item.get("ref")) or "-",
            detail,
        )
    if len(entries) > MAX_TIMELINE:
        table.add_row("", "", "", "", f"... {len(entries) - MAX_TIMELINE} more")
    return table


def dependency_path(findings: Sequence[Mapping[str, Any]]) -> RenderableType | None:
    """The top finding's path from the symptom to the cause."""
    top = min(findings, key=lambda item: _confidence(item.get("rank")) or 99, default=None)
    path = [_text(step) for step in _list(top.get("path"))] if top else []
    if not path:
        return None
    text = Text()
    for index, step in enumerate(path):
        if index:
            text.append("  →  ", style="dim")
        text.append(step, style="bold" if index == len(path) - 1 else "")
    text.append("   (symptom → cause)", style="dim")
    return text


def hypotheses_table(hypotheses: Sequence[Any]) -> RenderableType | None:
    if not hypotheses:
        return None
    table = Table(box=None, show_edge=False, pad_edge=False, show_header=False)
    table.add_column("mark", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    table.add_column("hypothesis", overflow="fold")
    for raw in hypotheses:
        item = _map(raw)
        result = _text(item.get("verdict")) or "Unknown"
        mark, style = HYPOTHESIS_MARKS.get(result, ("?", "yellow"))
        reason = _text(item.get("reason"))
        table.add_row(
            Text(mark, style=style),
            Text(result, style=style),
            Text.assemble((f'"{_text(item.get("text"))}"', "bold"), f": {reason}" if reason else ""),
        )
    return table


def bullet_list(items: Sequence[Any]) -> RenderableType | None:
    if not items:
        return None
    return Group(*(Text(f"- {_text(item)}") for item in items))


def rounds_table(rounds: Sequence[Any]) -> RenderableType | None:
    if not rounds:
        return None
    table = Table(box=None, show_edge=False, pad_edge=False)
    for column in ("GEN", "CONCLUDED", "VERDICT", "ANSWER"):
        table.add_column(column, no_wrap=column != "ANSWER", overflow="fold")
    for raw in rounds:
        item = _map(raw)
        reason = _text(item.get("reason"))
        table.add_row(
            str(item.get("generation", "")),
            short_time(item.get("concludedTime")),
            Text(reason, style=VERDICT_STYLES.get(reason, "")),
            _text(item.get("answer")),
        )
    return table


def notifications_table(notifications: Sequence[Any]) -> RenderableType | None:
    if not notifications:
        return None
    table = Table(box=None, show_edge=False, pad_edge=False)
    for column in ("NOTIFIER", "STATE", "ATTEMPTS", "LAST ATTEMPT", "MESSAGE"):
        table.add_column(column, no_wrap=column != "MESSAGE", overflow="fold")
    for raw in notifications:
        item = _map(raw)
        table.add_row(
            _text(item.get("notifier")),
            _text(item.get("state")),
            str(item.get("attempts", "")),
            short_time(item.get("lastAttemptTime")),
            _text(item.get("message")),
        )
    return table


def round_answer(investigation: Mapping[str, Any], generation: int) -> RenderableType:
    """What a follow-up prints: the new round's answer and the verdicts on the hypotheses."""
    status = _map(investigation.get("status"))
    metadata = _map(investigation.get("metadata"))
    found = next((_map(item) for item in _list(status.get("rounds")) if _map(item).get("generation") == generation), {})
    reason = _text(found.get("reason")) or verdict(investigation)
    name = f"{_text(metadata.get('namespace'))}/{_text(metadata.get('name'))}"
    parts: list[RenderableType] = [
        Text.assemble(
            ("Round for generation ", "bold"),
            (str(generation), "bold"),
            (f" of {name}: ", "bold"),
            (reason, VERDICT_STYLES.get(reason, "bold")),
        ),
        # The round's answer is cut to one line; the summary is whole, and is this round's when it is the latest.
        Text(
            _text(status.get("summary"))
            if status.get("observedGeneration") == generation and status.get("summary")
            else _text(found.get("answer"))
        ),
    ]
    hypotheses = hypotheses_table(_list(status.get("hypotheses")))
    if hypotheses is not None:
        parts.extend([Text(""), Text("Hypotheses", style="bold underline"), hypotheses])
    path = dependency_path([_map(item) for item in _list(status.get("findings"))])
    if path is not None:
        parts.extend([Text(""), Text("Dependency path", style="bold underline"), path])
    return Group(*parts)


# --- the list --------------------------------------------------------------------------------------------------


def investigations_table(items: Sequence[Mapping[str, Any]], now: datetime, all_namespaces: bool) -> Text:
    """kubectl's table: columns padded to their widest cell, three spaces apart, never cut (print it soft-wrapped)."""
    columns = ["NAMESPACE"] if all_namespaces else []
    columns += ["NAME", "TARGET", "STATUS", "ROOT CAUSE", "CATEGORY", "CONFIDENCE", "ROUNDS", "AGE"]
    rows: list[list[str]] = []
    for item in sorted(items, key=_list_order):
        metadata = _map(item.get("metadata"))
        status = _map(item.get("status"))
        root = _map(status.get("rootCause"))
        row = [_text(metadata.get("namespace"))] if all_namespaces else []
        row += [
            _text(metadata.get("name")),
            target_text(item),
            verdict(item),
            _text(_map(root.get("ref")).get("name")) or "-",
            _text(root.get("category")) or "-",
            f"{root['confidence']}%" if isinstance(root.get("confidence"), int) else "-",
            str(len(_list(status.get("rounds")))),
            age(metadata.get("creationTimestamp"), now),
        ]
        rows.append(row)
    widths = [max(len(cells[index]) for cells in [columns, *rows]) for index in range(len(columns))]

    def line(cells: Sequence[str]) -> str:
        return "   ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()

    table = Text(line(columns), style="bold")
    for row in rows:
        table.append("\n" + line(row), style=VERDICT_STYLES.get(row[-6], "").replace("bold ", ""))
    return table


def _list_order(item: Mapping[str, Any]) -> tuple[str, str]:
    metadata = _map(item.get("metadata"))
    return (_text(metadata.get("namespace")), _text(metadata.get("name")))
