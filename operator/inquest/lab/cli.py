"""The lab: a real control plane, kwok and Prometheus on 127.0.0.1.

build   build or install the lab's binaries into the cache (idempotent)
up      start a lab instance (idempotent)
down    stop it, by PID, and remove its data
status  show its components
env     print `export` lines for kubectl and Prometheus: eval "$(python -m inquest.lab env)"
demo    start a lab with the shop application
bench   the scored scenario benchmark (tests/scenarios): accuracy, calibration and latency
bench-lab       measure build times, warm start and memory into docs/lab.md
bench-scale     the operator against 10,000 pods, 100,000 Events and 50,000 series into docs/benchmarks.md
bench-load      200 Investigations at once while 10,000 pods churn at 100+ updates/s into docs/trust.md
bench-operator  measure investigation latency and cache memory into docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from inquest.lab import build
from inquest.lab.errors import LabError
from inquest.lab.scenarios.model import ScenarioError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m inquest.lab", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("build", help="build or install the lab's binaries into the cache")
    default_name = os.environ.get("INQUEST_LAB_NAME", "default")
    bench = commands.add_parser("bench", help="run the scored scenario benchmark")
    bench.add_argument("--scenarios", type=Path, default=None, help="directory of scenario files (tests/scenarios)")
    bench.add_argument("--only", default=None, help="run only the scenario with this name")
    bench.add_argument("--tag", default=None, help="run only the scenarios that carry this tag")
    bench.add_argument("--json", dest="json_output", type=Path, default=None, help="write the scores as JSON here")
    bench.add_argument("--output", type=Path, default=None, help="markdown file for the figures (plots go beside it)")
    bench.add_argument("--parallel", type=int, default=8, help="scenarios run side by side (default: %(default)s)")
    bench.add_argument("--name", default=None, help="use this running lab instead of starting a private one")
    scale = commands.add_parser("bench-scale", help="the operator against 10,000 pods, 100,000 Events, 50,000 series")
    scale.add_argument("--pods", type=int, default=10_000)
    scale.add_argument("--deployments", type=int, default=1_000)
    scale.add_argument("--events", type=int, default=100_000)
    scale.add_argument("--namespaces", type=int, default=10)
    scale.add_argument("--investigations", type=int, default=100)
    scale.add_argument("--output", type=Path, default=None, help="markdown file for the figures (docs/benchmarks.md)")
    scale.add_argument("--name", default=None, help="use this running lab instead of starting a private one")
    load = commands.add_parser(
        "bench-load", help="many Investigations at once while pods churn: latency, memory, API requests, Events"
    )
    load.add_argument("--pods", type=int, default=10_000)
    load.add_argument("--deployments", type=int, default=None, help="default: a tenth of --pods")
    load.add_argument("--namespaces", type=int, default=10)
    load.add_argument("--events", type=int, default=10_000, help="Events about the pods, made before the run")
    load.add_argument("--no-series", dest="series", action="store_false", help="no Prometheus series for the pods")
    load.add_argument("--investigations", type=int, default=200, help="created at once (default: %(default)s)")
    load.add_argument(
        "--churn-per-second", type=float, default=150.0, help="pod updates per second to send (default: %(default)s)"
    )
    load.add_argument(
        "--seconds-before", type=float, default=30.0, help="churn before the Investigations (default: %(default)s)"
    )
    load.add_argument(
        "--answer-timeout", type=float, default=900.0, help="seconds each may take to conclude (default: %(default)s)"
    )
    load.add_argument("--output", type=Path, default=Path("docs/trust.md"), help="markdown file for the figures")
    load.add_argument("--name", default=None, help="use this running lab instead of starting a private one")
    bench_lab = commands.add_parser("bench-lab", help="measure the lab into a markdown file")
    bench_lab.add_argument("--output", type=Path, default=Path("docs/lab.md"))
    bench_lab.add_argument("--starts", type=int, default=3, help="warm starts to time (default: %(default)s)")
    bench_operator = commands.add_parser("bench-operator", help="measure investigation latency and cache memory")
    bench_operator.add_argument("--output", type=Path, default=Path("docs/benchmarks.md"))
    bench_operator.add_argument("--count", type=int, default=100, help="investigations to time (default: %(default)s)")
    for command, help_text in (
        ("up", "start a lab instance"),
        ("down", "stop a lab instance"),
        ("status", "show a lab instance"),
        ("env", "print export lines for a lab"),
        ("demo", "start a lab with the shop application"),
    ):
        sub = commands.add_parser(command, help=help_text)
        sub.add_argument("--name", default=default_name, help="instance name (default: %(default)s)")
        if command == "up":
            sub.add_argument(
                "--port-base", type=int, default=None, help="use consecutive ports from this one instead of free ones"
            )
        if command == "down":
            sub.add_argument("--keep-data", action="store_true", help="keep the data and logs directory")
        if command == "env":
            sub.add_argument(
                "--as",
                dest="identity",
                choices=("admin", "operator"),
                default="admin",
                help="the identity the kubeconfig uses (default: %(default)s)",
            )
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    if arguments.command == "build":
        return build.main()
    from inquest.lab import cluster

    try:
        if arguments.command == "up":
            cluster.up(arguments.name, arguments.port_base)
        elif arguments.command == "down":
            cluster.down(arguments.name, keep_data=arguments.keep_data)
        elif arguments.command == "status":
            print("\n".join(cluster.status(arguments.name)))
        elif arguments.command == "demo":
            from inquest.lab import demo

            demo.run(arguments.name)
        elif arguments.command == "bench":
            from inquest.lab.scenarios import bench as scenario_bench

            options = scenario_bench.BenchOptions(
                scenarios=arguments.scenarios or scenario_bench.DEFAULT_SCENARIOS,
                only=arguments.only,
                tag=arguments.tag,
                json_output=arguments.json_output,
                markdown_output=arguments.output,
                parallel=arguments.parallel,
                lab_name=arguments.name,
            )
            scenario_bench.run(options)
        elif arguments.command == "bench-scale":
            from inquest.lab import bench_scale

            bench_scale.run(
                bench_scale.ScaleOptions(
                    pods=arguments.pods,
                    deployments=arguments.deployments,
                    events=arguments.events,
                    namespaces=arguments.namespaces,
                    investigations=arguments.investigations,
                    output=arguments.output,
                    lab_name=arguments.name,
                )
            )
        elif arguments.command == "bench-load":
            from inquest.lab import bench_load

            figures = bench_load.run(
                bench_load.LoadOptions(
                    pods=arguments.pods,
                    deployments=arguments.deployments or max(1, arguments.pods // 10),
                    namespaces=arguments.namespaces,
                    events=arguments.events,
                    series=arguments.series,
                    investigations=arguments.investigations,
                    churn_per_second=arguments.churn_per_second,
                    seconds_before=arguments.seconds_before,
                    answer_timeout=arguments.answer_timeout,
                    output=arguments.output,
                    lab_name=arguments.name,
                )
            )
            if figures.problems:
                print(f"[inquest lab] bench-load INVALID: {'; '.join(figures.problems)}", file=sys.stderr)
                return 1
        elif arguments.command == "bench-lab":
            from inquest.lab import bench as lab_bench

            lab_bench.run(arguments.output, arguments.starts)
        elif arguments.command == "bench-operator":
            from inquest.lab import bench_operator

            bench_operator.run(arguments.output, arguments.count)
        elif arguments.command == "env":
            lab = cluster.Lab.load(arguments.name)
            if lab is None:
                print(
                    f"lab {arguments.name!r} is not running: start it with `python -m inquest.lab up`", file=sys.stderr
                )
                return 1
            print("\n".join(lab.env_lines(arguments.identity)))
    except ScenarioError as error:
        print(f"[inquest lab] invalid scenarios:\n{error}", file=sys.stderr)
        return 2
    except (LabError, build.BuildError) as error:
        print(f"[inquest lab] FAILED: {error}", file=sys.stderr)
        return 1
    return 0
