"""The scenario benchmark's outputs: a table on stdout, JSON, the markdown block in docs/benchmarks.md and the
PNG plots (a latency CDF and a reliability diagram) beside it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from inquest.lab.scenarios import scoring

FIGURES_START = "<!-- scenario-figures:start -->"
FIGURES_END = "<!-- scenario-figures:end -->"
LATENCY_PLOT = "scenario-latency-cdf.png"
RELIABILITY_PLOT = "scenario-reliability.png"


def _mark(flag: bool) -> str:
    return "yes" if flag else "-"


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.0f}%"


def _millis(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} ms"


def table(scores: list[scoring.ScenarioScore]) -> str:
    header = ("scenario", "top1", "top3", "cat", "verdict", "answer", "top finding", "conf", "latency")
    rows = [header]
    for s in scores:
        answer = s.actual_verdict or "none"
        if not s.verdict:
            answer += f" (want {s.expected_verdict})"
        top = s.top_finding or "-"
        if s.top_category:
            top += f" {s.top_category}"
        if s.confident_wrong:
            top += "  CONFIDENT-WRONG"
        if s.error:
            top = f"ERROR: {s.error}"
        confidence = "-" if s.top_confidence is None else f"{s.top_confidence}"
        latency = "-" if s.latency_millis is None else f"{s.latency_millis:.0f} ms"
        rows.append(
            (
                s.name,
                _mark(s.top1),
                _mark(s.top3),
                _mark(s.category),
                _mark(s.verdict),
                answer,
                top,
                confidence,
                latency,
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(header) - 1)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=False)) + "  " + row[-1]
        for row in rows
    ]
    return "\n".join(lines)


def summary_lines(summary: dict[str, Any], share: float | None) -> list[str]:
    return [
        f"scenarios {summary['scenarios']}: top1 {_percent(summary['top1'])}, top3 {_percent(summary['top3'])}, "
        f"category {_percent(summary['category'])}, verdict {_percent(summary['verdict'])}",
        f"confidentWrong {summary['confidentWrong']}, noFaultFalsePositive {summary['noFaultFalsePositive']}, "
        f"Brier {summary['brier']}, ECE {summary['ece']}",
        f"latency p50 {_millis(summary['latencyP50Millis'])}, p95 {_millis(summary['latencyP95Millis'])}, "
        f"max {_millis(summary['latencyMaxMillis'])}; Prometheus share of the operator's time {_percent(share)}",
    ]


def as_json(scores: list[scoring.ScenarioScore], machine: str) -> dict[str, Any]:
    return {
        "measured": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine,
        "summary": scoring.summarize(scores),
        "prometheusShare": scoring.prometheus_share(scores),
        "scenarios": [s.as_json() for s in scores],
    }


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")


def markdown_block(scores: list[scoring.ScenarioScore], machine: str, source: str) -> str:
    summary = scoring.summarize(scores)
    share = scoring.prometheus_share(scores)
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    rows = [
        ("Scenarios", f"{summary['scenarios']} ({source})"),
        ("top1 / top3", f"{_percent(summary['top1'])} / {_percent(summary['top3'])}"),
        ("Category right (top1 right and its category expected)", _percent(summary["category"])),
        ("Verdict right", _percent(summary["verdict"])),
        ("Confident and wrong (top1 wrong at >= 70%; must be 0)", str(summary["confidentWrong"])),
        ("No-fault false positives (a finding >= 50% on a control)", str(summary["noFaultFalsePositive"])),
        ("Brier score / ECE (5 bins) of the top1 confidence", f"{summary['brier']} / {summary['ece']}"),
        (
            "Latency, create to Concluded (p50 / p95 / max)",
            f"{_millis(summary['latencyP50Millis'])} / {_millis(summary['latencyP95Millis'])} / "
            f"{_millis(summary['latencyMaxMillis'])}",
        ),
        ("Prometheus share of the operator's answer time", _percent(share)),
    ]
    lines = [FIGURES_START, f"Measured {today} on {machine}.", "", "| Figure | Value |", "| --- | ---: |"]
    lines += [f"| {title} | {value} |" for title, value in rows]
    lines += ["", "| Scenario | top1 | top3 | category | verdict | top finding | confidence | latency |"]
    lines += ["| --- | :---: | :---: | :---: | :---: | --- | ---: | ---: |"]
    for s in scores:
        top = s.top_finding or (f"error: {s.error}" if s.error else "none")
        category = f" ({s.top_category})" if s.top_category else ""
        confidence = "-" if s.top_confidence is None else f"{s.top_confidence}%"
        latency = "-" if s.latency_millis is None else f"{s.latency_millis:.0f} ms"
        verdict = s.actual_verdict or "none"
        lines.append(
            f"| {s.name} | {_mark(s.top1)} | {_mark(s.top3)} | {_mark(s.category)} | {_mark(s.verdict)} {verdict} "
            f"| {top}{category} | {confidence} | {latency} |"
        )
    lines += ["", f"![Latency CDF]({LATENCY_PLOT}) ![Reliability diagram]({RELIABILITY_PLOT})", FIGURES_END]
    return "\n".join(lines)


def plot(scores: list[scoring.ScenarioScore], directory: Path) -> list[Path]:
    """The latency CDF and the reliability diagram, as PNG files in `directory`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    latencies = sorted(s.latency_millis for s in scores if s.latency_millis is not None)
    figure, axes = plt.subplots(figsize=(6, 4))
    if latencies:
        fractions = [(index + 1) / len(latencies) for index in range(len(latencies))]
        axes.step(latencies, fractions, where="post")
    axes.set_xlabel("latency, create to Concluded (ms)")
    axes.set_ylabel("fraction of scenarios")
    axes.set_title(f"Investigation latency ({len(latencies)} scenarios)")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    latency_path = directory / LATENCY_PLOT
    figure.savefig(latency_path, dpi=100)
    plt.close(figure)

    points = [s.calibration_point for s in scores if s.calibration_point is not None]
    bins = scoring.calibration_bins(points)
    figure, axes = plt.subplots(figsize=(5, 5))
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    filled = [(mean, accuracy, count) for count, mean, accuracy in bins if count]
    if filled:
        axes.plot([m for m, _, _ in filled], [a for _, a, _ in filled], marker="o", label="inquest (top1)")
        for mean, accuracy, count in filled:
            axes.annotate(f"n={count}", (mean, accuracy), textcoords="offset points", xytext=(5, -10))
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_xlabel("top1 confidence")
    axes.set_ylabel("fraction right")
    axes.set_title("Reliability of the top finding's confidence")
    axes.legend(loc="lower right")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    reliability_path = directory / RELIABILITY_PLOT
    figure.savefig(reliability_path, dpi=100)
    plt.close(figure)
    return [latency_path, reliability_path]
