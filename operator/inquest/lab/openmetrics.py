"""History for the lab's series as OpenMetrics text, and backfilling it into Prometheus with promtool.

Samples carry the same job and instance labels that the scrape attaches, so the backfilled history and
the live samples are one series. The text is streamed line by line: long histories never sit in memory.
"""

from __future__ import annotations

import math
import os
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from inquest.lab.errors import LabError
from inquest.lab.prometheus_config import LAB_INSTANCE, LAB_JOB
from inquest.lab.shapes import SeriesSpec, exposition_type, series_key, start_time, value_at

DEFAULT_PROMTOOL = "/usr/bin/promtool"


@dataclass(frozen=True)
class MetricFamily:
    name: str  # without a counter's '_total', as OpenMetrics names families
    type: str
    series: tuple[SeriesSpec, ...]


@dataclass(frozen=True)
class BackfillResult:
    samples: int
    series: int
    blocks: tuple[Path, ...]
    promtool_output: str


def escape_label_value(value: str) -> str:
    """Escaping shared by OpenMetrics and the Prometheus text format 0.0.4."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def format_labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{key}="{escape_label_value(value)}"' for key, value in labels.items()) + "}"


def format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def format_timestamp(seconds: float) -> str:
    # Prometheus keeps milliseconds; more digits would only add noise to the file.
    text = f"{seconds:.3f}".rstrip("0").rstrip(".")
    return text or "0"


def family_name(spec: SeriesSpec) -> str:
    return spec.name.removesuffix("_total") if exposition_type(spec) == "counter" else spec.name


def group_families(specs: Sequence[SeriesSpec]) -> list[MetricFamily]:
    """Groups series into families (OpenMetrics wants each family's lines together), in first-seen order."""
    families: dict[str, list[SeriesSpec]] = {}
    types: dict[str, str] = {}
    seen: set[str] = set()
    for spec in specs:
        key = series_key(spec)
        if key in seen:
            raise ValueError(f"series {key} is defined twice")
        seen.add(key)
        name = family_name(spec)
        kind = exposition_type(spec)
        if name in types and types[name] != kind:
            raise ValueError(f"metric family {name!r} is both a {types[name]} and a {kind} ({spec.name})")
        types[name] = kind
        families.setdefault(name, []).append(spec)
    return [MetricFamily(name, types[name], tuple(members)) for name, members in families.items()]


def sample_times(start: float, end: float, step_seconds: float) -> Iterator[float]:
    """start, start+step, ... up to end, and end itself so a backfill reaches exactly the moment it was asked to."""
    if step_seconds <= 0:
        raise ValueError(f"step_seconds must be > 0, got {step_seconds}")
    if end < start:
        return
    index = 0
    t = start
    while t <= end:
        yield t
        index += 1
        t = start + index * step_seconds  # multiply, not add, so long ranges do not drift
    if end - (start + (index - 1) * step_seconds) > 0.0005:
        yield end


def openmetrics_lines(
    specs: Sequence[SeriesSpec],
    start: float,
    end: float,
    step_seconds: float,
    job: str = LAB_JOB,
    instance: str = LAB_INSTANCE,
) -> Iterator[str]:
    """The OpenMetrics exposition of every series over [start, end], one line (with newline) at a time."""
    for family in group_families(specs):
        yield f"# TYPE {family.name} {family.type}\n"
        for spec in family.series:
            label_text = format_labels({"job": job, "instance": instance, **spec.labels})
            prefix = f"{spec.name}{label_text} "
            first = max(start, start_time(spec))
            # Keep the sample grid anchored at start even when the series begins later.
            if first > start:
                skipped = math.ceil((first - start) / step_seconds)
                first = start + skipped * step_seconds
            for t in sample_times(first, end, step_seconds):
                value = value_at(spec, t)
                if value is not None:
                    yield f"{prefix}{format_value(value)} {format_timestamp(t)}\n"
    yield "# EOF\n"


def write_openmetrics(
    specs: Sequence[SeriesSpec],
    start: float,
    end: float,
    step_seconds: float,
    out: TextIO,
    job: str = LAB_JOB,
    instance: str = LAB_INSTANCE,
) -> int:
    """Writes the exposition to out; returns the number of samples written."""
    samples = 0
    for line in openmetrics_lines(specs, start, end, step_seconds, job=job, instance=instance):
        out.write(line)
        if not line.startswith("#"):
            samples += 1
    return samples


def backfill(
    specs: Sequence[SeriesSpec],
    start: float,
    end: float,
    step_seconds: float,
    data_dir: Path,
    promtool: str = DEFAULT_PROMTOOL,
    job: str = LAB_JOB,
    instance: str = LAB_INSTANCE,
    timeout_seconds: float = 600.0,
) -> BackfillResult:
    """Writes TSDB blocks with the series' history over [start, end] into data_dir (a Prometheus storage path).

    Run it before Prometheus starts (it loads blocks at start-up), with end at the moment it starts, so the
    first scrape follows the history without a gap.
    """
    if not Path(promtool).exists():
        raise LabError("promtool", f"binary not found: {promtool} (install the Debian package prometheus)")
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    blocks_before = {entry.name for entry in data_dir.iterdir()}
    # Beside data_dir rather than in /tmp: a long history can be large and /tmp may be a small tmpfs.
    handle, scratch_name = tempfile.mkstemp(prefix=".backfill-", suffix=".om", dir=data_dir.parent)
    scratch = Path(scratch_name)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", buffering=1 << 20) as out:
            samples = write_openmetrics(specs, start, end, step_seconds, out, job=job, instance=instance)
        if samples == 0:
            return BackfillResult(0, 0, (), "")
        command = [promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet", str(scratch), str(data_dir)]
        try:
            completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout_seconds, check=False)
        except subprocess.TimeoutExpired as error:
            raise LabError(
                "promtool",
                f"backfill timed out after {timeout_seconds:.0f}s: {' '.join(command)}",
                _tail(_as_text(error.stdout) + _as_text(error.stderr)),
            ) from error
        output = completed.stdout + completed.stderr
        if completed.returncode != 0:
            raise LabError(
                "promtool", f"backfill failed (exit {completed.returncode}): {' '.join(command)}", _tail(output)
            )
    finally:
        scratch.unlink(missing_ok=True)
    blocks = tuple(
        sorted(
            entry for entry in data_dir.iterdir() if entry.name not in blocks_before and (entry / "meta.json").exists()
        )
    )
    series = sum(1 for spec in specs if start_time(spec) <= end)
    return BackfillResult(samples, series, blocks, output)


def _as_text(output: str | bytes | None) -> str:
    if output is None:
        return ""
    return output.decode(errors="replace") if isinstance(output, bytes) else output


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.splitlines()[-lines:])
