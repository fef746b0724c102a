"""`make bench` (lab part): build times, warm start time and resident memory, written into docs/lab.md."""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

from inquest.lab import cluster, demo, paths
from inquest.lab.stats import ANSWER_LINE

FIGURES_START = "<!-- lab-figures:start -->"
FIGURES_END = "<!-- lab-figures:end -->"


def answer_lines(lab: cluster.Lab) -> list[re.Match[str]]:
    """Every answer line the lab's operator has logged, oldest first."""
    text = (lab.data_dir / "logs" / "operator.log").read_text(errors="replace")
    return list(ANSWER_LINE.finditer(text))


def resident_mib(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else 0.0


def machine_line() -> str:
    cpu = "unknown CPU"
    try:
        match = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
        cpu = match.group(1).strip() if match else cpu
    except OSError:
        pass
    memory_kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))  # type: ignore[union-attr]
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory_kib / 1024 / 1024:.0f} GiB RAM, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def measure(starts: int) -> dict[str, object]:
    start_seconds: list[float] = []
    memory: dict[str, float] = {}
    for attempt in range(1, starts + 1):
        name = f"bench-{os.getpid()}-{attempt}"
        cluster.progress(f"warm start {attempt}/{starts}")
        began = time.monotonic()
        lab = cluster.up(name)
        start_seconds.append(time.monotonic() - began)
        try:
            if attempt == starts:
                cluster.progress("deploying the shop application to measure memory with a workload")
                demo.deploy_shop(lab)
                time.sleep(5)
                memory = {
                    component: round(resident_mib(process.pid), 1) for component, process in lab.processes.items()
                }
        finally:
            cluster.down(name)
    build_times = json.loads(paths.build_times_file().read_text()) if paths.build_times_file().exists() else {}
    return {"startSeconds": start_seconds, "memoryMiB": memory, "buildTimes": build_times}


def render(figures: dict[str, object]) -> str:
    starts = figures["startSeconds"]
    memory = figures["memoryMiB"]
    build_times = figures["buildTimes"]
    assert isinstance(starts, list)
    assert isinstance(memory, dict)
    assert isinstance(build_times, dict)
    lines = [
        FIGURES_START,
        f"Measured {datetime.now(UTC):%Y-%m-%d} on {machine_line()}.",
        "",
        "| Cold build step | Seconds | Date |",
        "| --- | ---: | --- |",
    ]
    for step, record in sorted(build_times.items()):
        lines.append(f"| {step} | {record['seconds']:.0f} | {record['date']} |")
    lines += [
        "",
        f"Warm start of the whole lab (binaries cached; {len(starts)} runs): "
        f"median {statistics.median(starts):.1f} s, min {min(starts):.1f} s, max {max(starts):.1f} s.",
        "",
        "| Component | Resident memory (MiB), shop app deployed |",
        "| --- | ---: |",
    ]
    lines += [f"| {component} | {mib:.0f} |" for component, mib in memory.items()]
    lines += [f"| **total** | **{sum(memory.values()):.0f}** |", FIGURES_END]
    return "\n".join(lines)


def write_figures(output: Path, block: str, start: str, end: str, title: str) -> None:
    """Replaces the block between the two markers in a markdown file (appends it, or creates the file, if absent)."""
    text = output.read_text() if output.exists() else f"# {title}\n\n{start}\n{end}\n"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.DOTALL)
    output.write_text(pattern.sub(lambda _: block, text) if pattern.search(text) else text + "\n" + block + "\n")
    cluster.progress(f"figures written to {output}")


def run(output: Path, starts: int = 3) -> None:
    figures = measure(starts)
    block = render(figures)
    print(block)
    write_figures(output, block, FIGURES_START, FIGURES_END, "The lab")
