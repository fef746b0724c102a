"""`kubectl inquest`: ask inquest a question, read its answer, follow up, list, from where engineers already work.

kubectl runs any `kubectl-inquest` on PATH as `kubectl inquest ...`; it talks to the cluster of the current
kubeconfig (KUBECONFIG, --kubeconfig, --context or --kube-context) as that kubeconfig's user, namespace from -n,
else the context's namespace, else `default`.

    kubectl inquest ask deploy/checkout "why is checkout failing?" --wait
    kubectl inquest show ask-checkout-x7k2p
    kubectl inquest followup ask-checkout-x7k2p --context "we raised the heap size" --hypothesis "the api rollout"
    kubectl inquest list -A

Errors are one line on stderr and exit code 1.
"""

from __future__ import annotations

import argparse
import os
import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import ValidationError
from rich.console import Console, RenderableType

from inquest.api import models
from inquest.categories import TargetKind
from inquest.plugin import render
from inquest.plugin.kube import Conflict, InvestigationsApi, PluginError

PROG: Final = "kubectl inquest"
POLL_SECONDS: Final = 0.5
PATCH_ATTEMPTS: Final = 3
PIPE_WIDTH: Final = 140

KIND_ALIASES: Final[dict[str, TargetKind]] = {
    alias: kind
    for kind, aliases in (
        (TargetKind.DEPLOYMENT, ("deployment", "deployments", "deploy")),
        (TargetKind.STATEFUL_SET, ("statefulset", "statefulsets", "sts")),
        (TargetKind.DAEMON_SET, ("daemonset", "daemonsets", "ds")),
        (TargetKind.REPLICA_SET, ("replicaset", "replicasets", "rs")),
        (TargetKind.POD, ("pod", "pods", "po")),
        (TargetKind.SERVICE, ("service", "services", "svc")),
        (TargetKind.INGRESS, ("ingress", "ingresses", "ing")),
        (TargetKind.JOB, ("job", "jobs")),
        (TargetKind.CRON_JOB, ("cronjob", "cronjobs", "cj")),
        (TargetKind.NODE, ("node", "nodes", "no")),
        (TargetKind.NAMESPACE, ("namespace", "namespaces", "ns")),
    )
    for alias in aliases
}
_TARGET = re.compile(r"^(?P<kind>[A-Za-z]+)/(?P<name>[a-z0-9]([-a-z0-9.]*[a-z0-9])?)$")


# --- arguments -------------------------------------------------------------------------------------------------


def _connection_flags(parser: argparse.ArgumentParser, in_subcommand: bool, kube_context_flag: bool = True) -> None:
    # In a subcommand the defaults are SUPPRESS, so a flag given before the subcommand is not overwritten.
    default: Any = argparse.SUPPRESS if in_subcommand else None
    parser.add_argument("-n", "--namespace", default=default, help="namespace (default: the context's, else default)")
    parser.add_argument("--kubeconfig", default=default, help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    if kube_context_flag:
        parser.add_argument(
            "--context", dest="kube_context", default=default, help="kubeconfig context (also: --kube-context)"
        )
    parser.add_argument("--kube-context", dest="kube_context", default=default, help=argparse.SUPPRESS)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog=PROG,
        description="Ask inquest, the read-only AI SRE, why something is failing, and read its answers.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n")[2] if __doc__ else None,
    )
    _connection_flags(root, in_subcommand=False)
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ask = commands.add_parser("ask", help="start an Investigation (KIND/NAME optional, question optional)")
    _connection_flags(ask, in_subcommand=True)
    ask.add_argument("words", nargs="*", metavar='[KIND/NAME] ["question"]')
    ask.add_argument("--lookback", default=None, help="how far back to look, e.g. 30m, 2h, 1d (default: 30m)")
    ask.add_argument("--hypothesis", action="append", default=[], help="a suspicion to check (repeatable)")
    ask.add_argument("--name", default=None, help="the Investigation's name (default: generated)")
    ask.add_argument("--wait", action="store_true", help="wait for the answer and print the report")
    ask.add_argument("--timeout", type=float, default=60.0, help="seconds to wait with --wait (default: 60)")

    show = commands.add_parser("show", help="print an Investigation's report")
    _connection_flags(show, in_subcommand=True)
    show.add_argument("name")

    followup = commands.add_parser(
        "followup",
        help="add context or hypotheses to an Investigation and print the new round's answer",
        description="Here --context is a fact for the Investigation; the kubeconfig context is --kube-context.",
    )
    _connection_flags(followup, in_subcommand=True, kube_context_flag=False)
    followup.add_argument("name")
    followup.add_argument(
        "--context", dest="facts", action="append", default=[], help='a fact, e.g. "we raised the heap size today"'
    )
    followup.add_argument("--hypothesis", action="append", default=[], help="a suspicion to check (repeatable)")
    followup.add_argument("--question", default=None, help="replace the question")
    followup.add_argument("--no-wait", dest="wait", action="store_false", help="do not wait for the new round")
    followup.add_argument("--timeout", type=float, default=60.0, help="seconds to wait (default: 60)")

    listing = commands.add_parser("list", help="list Investigations")
    _connection_flags(listing, in_subcommand=True)
    listing.add_argument("-A", "--all-namespaces", action="store_true", help="in every namespace")
    return root


def parse_target(text: str) -> models.Target | None:
    """`deploy/checkout`, `Deployment/checkout`, `node/node-c`...; None when the text is not a known KIND/NAME."""
    match = _TARGET.match(text)
    if match is None:
        return None
    kind = KIND_ALIASES.get(match["kind"].lower())
    if kind is None:
        return None
    return models.Target(kind=kind, name=match["name"])


def ask_spec(words: Sequence[str], lookback: str | None, hypotheses: Sequence[str]) -> models.InvestigationSpec:
    """The spec `ask` creates: an optional KIND/NAME first, then the question (the remaining words)."""
    target = parse_target(words[0]) if words else None
    rest = list(words[1:] if target is not None else words)
    question = " ".join(rest).strip() or None
    try:
        return models.InvestigationSpec(
            target=target, question=question, lookback=lookback, hypotheses=list(hypotheses)
        )
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "spec"
        raise PluginError(f"{where}: {str(problem['msg']).removeprefix('Value error, ')}") from error


def generate_name_prefix(spec: models.InvestigationSpec) -> str:
    """`ask-<target>-`; the API server appends five random characters."""
    base = spec.target.name if spec.target is not None and spec.target.name else "namespace"
    slug = re.sub(r"[^a-z0-9-]+", "-", base.lower()).strip("-")[:40].strip("-") or "x"
    return f"ask-{slug}-"


# --- commands --------------------------------------------------------------------------------------------------


class Commands:
    def __init__(self, api: InvestigationsApi, out: Console, err: Console, namespace: str | None) -> None:
        self.api = api
        self.out = out
        self.err = err
        self.namespace = namespace or api.connection.namespace

    def ask(self, arguments: argparse.Namespace) -> int:
        spec = ask_spec(arguments.words, arguments.lookback, arguments.hypothesis)
        metadata: dict[str, Any] = {"namespace": self.namespace}
        if arguments.name:
            metadata["name"] = arguments.name
        else:
            metadata["generateName"] = generate_name_prefix(spec)
        body = models.Investigation(metadata=metadata, spec=spec).to_api()
        created = self.api.create(self.namespace, body)
        name = str(created["metadata"]["name"])
        self.err.print(f"investigation.inquest.dev/{name} created in namespace {self.namespace}", highlight=False)
        if not arguments.wait:
            self.out.print(f"{PROG} show {name} -n {self.namespace}", highlight=False)
            return 0
        answered = self._wait(name, int(created["metadata"].get("generation") or 1), arguments.timeout)
        self._show(render.report(answered))
        return 0

    def show(self, arguments: argparse.Namespace) -> int:
        self._show(render.report(self.api.get(self.namespace, arguments.name)))
        return 0

    def followup(self, arguments: argparse.Namespace) -> int:
        if not (arguments.facts or arguments.hypothesis or arguments.question):
            raise PluginError("nothing to follow up with: give --context, --hypothesis or --question")
        for _ in range(PATCH_ATTEMPTS):
            current = self.api.get(self.namespace, arguments.name)
            spec = current.get("spec") or {}
            patch = followup_patch(spec, arguments.facts, arguments.hypothesis, arguments.question)
            if not patch:
                raise PluginError("nothing new: that context and those hypotheses are already in the spec")
            try:
                patched = self.api.patch_spec(
                    self.namespace, arguments.name, patch, current["metadata"].get("resourceVersion")
                )
            except Conflict:
                continue
            break
        else:
            raise PluginError(f"investigation {arguments.name} kept changing; try again")
        generation = int(patched["metadata"].get("generation") or 0)
        self.err.print(f"investigation.inquest.dev/{arguments.name} updated (generation {generation})", highlight=False)
        if not arguments.wait:
            return 0
        answered = self._wait(arguments.name, generation, arguments.timeout)
        self._show(render.round_answer(answered, generation))
        self.out.print(f"\nThe whole report: {PROG} show {arguments.name} -n {self.namespace}", highlight=False)
        return 0

    def list(self, arguments: argparse.Namespace) -> int:
        items = self.api.list(None if arguments.all_namespaces else self.namespace)
        if not items:
            where = "in any namespace" if arguments.all_namespaces else f"in namespace {self.namespace}"
            self.err.print(f"No investigations found {where}.", highlight=False)
            return 0
        self._show(render.investigations_table(items, datetime.now(UTC), arguments.all_namespaces), soft_wrap=True)
        return 0

    def _show(self, renderable: RenderableType, soft_wrap: bool = False) -> None:
        """To a terminal in colour; piped, as plain text without the tables' trailing padding."""
        if self.out.is_terminal:
            self.out.print(renderable, soft_wrap=soft_wrap)
            return
        with self.out.capture() as captured:
            self.out.print(renderable, soft_wrap=soft_wrap)
        lines = [line.rstrip() for line in captured.get().splitlines()]
        self.out.file.write("\n".join(lines) + "\n")

    def _wait(self, name: str, generation: int, timeout: float) -> dict[str, Any]:
        started = time.monotonic()
        what = f"{self.namespace}/{name} (generation {generation})"
        found: dict[str, Any] | None = None

        def probe() -> dict[str, Any] | None:
            nonlocal found
            found = self.api.get(self.namespace, name)
            return found if render.is_answered(found, generation) else None

        if self.err.is_terminal:
            with self.err.status(f"inquest is investigating {what}...") as spinner:
                answered = _poll(probe, timeout, lambda: spinner.update(_progress(what, started, found)))
        else:
            self.err.print(f"waiting for inquest to answer {what}...", highlight=False)
            answered = _poll(probe, timeout, lambda: None)
        if answered is None:
            raise PluginError(
                f"no answer for {what} within {timeout:.0f}s; is the inquest operator running and watching "
                f"namespace {self.namespace}? The Investigation stays: {PROG} show {name} -n {self.namespace}"
            )
        self.err.print(f"answered in {time.monotonic() - started:.1f}s", highlight=False)
        return answered


def followup_patch(
    spec: dict[str, Any], facts: Sequence[str], hypotheses: Sequence[str], question: str | None
) -> dict[str, Any]:
    """The merge patch of a follow-up: the lists with the new entries appended (lists are replaced whole)."""
    patch: dict[str, Any] = {}
    for field, added in (("context", facts), ("hypotheses", hypotheses)):
        existing = [item for item in spec.get(field) or [] if isinstance(item, str)]
        new = [item for item in dict.fromkeys(added) if item not in existing]
        if new:
            patch[field] = [*existing, *new]
    if question is not None and question != spec.get("question"):
        patch["question"] = question
    return patch


def _poll(
    probe: Callable[[], dict[str, Any] | None], timeout: float, tick: Callable[[], None]
) -> dict[str, Any] | None:
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            return None
        tick()
        time.sleep(POLL_SECONDS)


def _progress(what: str, started: float, found: dict[str, Any] | None) -> str:
    state = render.verdict(found) if found is not None else "Pending"
    return f"inquest is investigating {what}... {state}, {time.monotonic() - started:.0f}s"


# --- entry point -----------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parser().parse_args(argv)
    out = Console(highlight=False)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out = Console(highlight=False, width=PIPE_WIDTH)  # piped: wide lines, as kubectl prints them
    err = Console(stderr=True, highlight=False)
    try:
        api = InvestigationsApi(arguments.kubeconfig, arguments.kube_context)
        try:
            commands = Commands(api, out, err, arguments.namespace)
            handler: Callable[[argparse.Namespace], int] = getattr(commands, arguments.command)
            return handler(arguments)
        finally:
            api.close()
    except PluginError as error:
        err.print(f"error: {error}", markup=False, highlight=False, soft_wrap=True)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
