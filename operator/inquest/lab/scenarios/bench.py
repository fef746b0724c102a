"""`python -m inquest.lab bench`: the scored scenario benchmark against a lab and the real operator."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from inquest.lab import bench as lab_bench
from inquest.lab import cluster
from inquest.lab.scenarios import model, report, runner, scoring

DEFAULT_SCENARIOS = Path(__file__).resolve().parents[4] / "tests" / "scenarios"


@dataclass(frozen=True)
class BenchOptions:
    scenarios: Path = DEFAULT_SCENARIOS
    only: str | None = None
    tag: str | None = None
    json_output: Path | None = None
    markdown_output: Path | None = None
    parallel: int = 8
    lab_name: str | None = None


def run_scenarios(lab: cluster.Lab, scenarios: list[model.Scenario], parallel: int) -> list[scoring.ScenarioScore]:
    """Runs the scenarios with the operator (started here unless it runs already) and returns their scores."""
    with runner.operator_for(lab):
        bench_runner = runner.Runner(lab, parallel=parallel)
        try:
            return bench_runner.run(scenarios)
        finally:
            bench_runner.close()


def run(options: BenchOptions) -> list[scoring.ScenarioScore]:
    # Every file is validated before anything starts.
    scenarios = model.load_directory(options.scenarios, only=options.only, tag=options.tag)
    runner.progress(f"{len(scenarios)} scenarios from {options.scenarios}, {options.parallel} at a time")
    started = time.monotonic()
    existing = cluster.Lab.load(options.lab_name) if options.lab_name else None
    name = options.lab_name or f"bench-scenarios-{os.getpid()}"
    lab = existing or cluster.up(name)
    try:
        scores = run_scenarios(lab, scenarios, options.parallel)
    finally:
        if existing is None:
            cluster.down(name)
    machine = lab_bench.machine_line()
    summary = scoring.summarize(scores)
    share = scoring.prometheus_share(scores)
    print(report.table(scores))
    print()
    print("\n".join(report.summary_lines(summary, share)))
    runner.progress(f"finished in {time.monotonic() - started:.0f} s")
    if options.json_output is not None:
        report.write_json(options.json_output, report.as_json(scores, machine))
        runner.progress(f"JSON written to {options.json_output}")
    if options.markdown_output is not None:
        source = f"`{_relative(options.scenarios)}`" + (f", tag {options.tag}" if options.tag else "")
        block = report.markdown_block(scores, machine, source)
        lab_bench.write_figures(options.markdown_output, block, report.FIGURES_START, report.FIGURES_END, "Benchmarks")
        for path in report.plot(scores, options.markdown_output.parent):
            runner.progress(f"plot written to {path}")
    return scores


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
