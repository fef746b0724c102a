"""Builds the lab's binaries from the Go module proxy into the cache, once.

kube-apiserver, kube-controller-manager and kube-scheduler cannot be `go install`ed: k8s.io/kubernetes
replaces its staging modules with ./staging paths. A generated wrapper module requires
k8s.io/kubernetes and replaces each staging module with its published v0.x twin, whose list is read
from the real go.mod. etcd's server module has the same shape and gets its own wrapper.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from inquest.lab import paths

KUBERNETES_COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
APT_PACKAGES = {"prometheus": "/usr/bin/prometheus", "promtool": "/usr/bin/promtool"}
ETCD_STAGING = ("api", "client/pkg", "client/v2", "client/v3", "pkg", "raft")


class BuildError(RuntimeError):
    """A build step failed; the message names the step, the command and the tail of its log."""


@dataclass(frozen=True)
class Step:
    name: str
    output: Path | None
    run: Callable[[Path], None]


def log(message: str) -> None:
    print(f"[inquest build] {message}", file=sys.stderr, flush=True)


def tail(path: Path, lines: int = 30) -> str:
    try:
        content = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(content[-lines:])


def go_environment() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"CGO_ENABLED": "0", "GOTOOLCHAIN": "local", "GOFLAGS": "-buildvcs=false -mod=mod"})
    return env


def run_logged(
    step: str, command: Sequence[str], log_path: Path, cwd: Path | None = None, env: dict[str, str] | None = None
) -> str:
    """Runs a command with its output appended to log_path; raises BuildError with the log tail."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("a") as handle:
        handle.write(f"$ {' '.join(command)}\n")
        handle.flush()
        completed = subprocess.run(
            list(command),
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=handle,
            text=True,
            check=False,
        )
        handle.write(completed.stdout)
    if completed.returncode != 0:
        raise BuildError(
            f"step {step!r} failed (exit {completed.returncode}): {' '.join(command)}\n"
            f"log: {log_path}\n--- last lines ---\n{tail(log_path)}"
        )
    return completed.stdout


def binary_path(name: str, version: str) -> Path:
    return paths.bin_dir() / name / version / name


def staging_modules(kubernetes_gomod: str) -> list[str]:
    """Module paths that k8s.io/kubernetes's go.mod replaces with ./staging directories."""
    pattern = re.compile(r"^\s*(k8s\.io/[\w.\-/]+)\s*=>\s*\./staging/", re.MULTILINE)
    return sorted(set(pattern.findall(kubernetes_gomod)))


def staging_version(kubernetes_version: str) -> str:
    """The published twin of a staging module: v1.32.13 -> v0.32.13."""
    match = re.fullmatch(r"v1\.(\d+)\.(\d+)", kubernetes_version)
    if not match:
        raise BuildError(f"unsupported Kubernetes version {kubernetes_version!r}: expected v1.MINOR.PATCH")
    return f"v0.{match.group(1)}.{match.group(2)}"


def kubernetes_wrapper_gomod(kubernetes_version: str, modules: Sequence[str]) -> str:
    twin = staging_version(kubernetes_version)
    replaces = "\n".join(f"\t{module} => {module} {twin}" for module in modules)
    return (
        "module inquest.dev/lab/kubernetes-build\n\n"
        "go 1.23.0\n\n"
        # A dependency's godebug line is ignored, so the wrapper repeats kubernetes' own.
        "godebug default=go1.23\n\n"
        f"require k8s.io/kubernetes {kubernetes_version}\n\n"
        f"replace (\n{replaces}\n)\n"
    )


def etcd_wrapper_gomod(etcd_version: str) -> str:
    replaces = "\n".join(
        f"\tgo.etcd.io/etcd/{module}/v3 => go.etcd.io/etcd/{module}/v3 {etcd_version}"
        if module != "client/v2"
        else f"\tgo.etcd.io/etcd/client/v2 => go.etcd.io/etcd/client/v2 {v2_version(etcd_version)}"
        for module in ETCD_STAGING
    )
    return (
        "module inquest.dev/lab/etcd-build\n\n"
        "go 1.23.0\n\n"
        f"require go.etcd.io/etcd/server/v3 {etcd_version}\n\n"
        f"replace (\n{replaces}\n)\n"
    )


def v2_version(etcd_version: str) -> str:
    """etcd's client/v2 module is tagged v2.305.x alongside v3.5.x."""
    match = re.fullmatch(r"v3\.5\.(\d+)", etcd_version)
    if not match:
        raise BuildError(f"unsupported etcd version {etcd_version!r}: expected v3.5.PATCH")
    return f"v2.305.{match.group(1)}"


def kubernetes_ldflags(kubernetes_version: str) -> str:
    major, minor = kubernetes_version.lstrip("v").split(".")[:2]
    build_date = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    values = {
        "gitVersion": kubernetes_version,
        "gitMajor": major,
        "gitMinor": minor,
        "gitTreeState": "clean",
        "buildDate": build_date,
    }
    flags = ["-s", "-w"]
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {package}.{key}={value}" for key, value in values.items()]
    return " ".join(flags)


def prepare_kubernetes_wrapper(work: Path, log_path: Path) -> None:
    version = paths.KUBERNETES_VERSION
    info = run_logged(
        "read k8s.io/kubernetes go.mod",
        ["go", "mod", "download", "-json", f"k8s.io/kubernetes@{version}"],
        log_path,
        env=go_environment(),
    )
    gomod_path = json.loads(info).get("GoMod")
    if not gomod_path:
        raise BuildError(f"go mod download gave no GoMod path for k8s.io/kubernetes@{version}; log: {log_path}")
    modules = staging_modules(Path(gomod_path).read_text())
    if len(modules) < 20:
        raise BuildError(f"found only {len(modules)} staging modules in {gomod_path}; refusing to guess")
    log(f"  {len(modules)} staging modules replaced with {staging_version(version)}")
    work.mkdir(parents=True, exist_ok=True)
    (work / "go.mod").write_text(kubernetes_wrapper_gomod(version, modules))
    # Without an explicit version, `go get` would upgrade k8s.io/kubernetes to the newest release.
    packages = [f"k8s.io/kubernetes/cmd/{component}@{version}" for component in KUBERNETES_COMPONENTS]
    run_logged("resolve kubernetes modules", ["go", "get", *packages], log_path, cwd=work, env=go_environment())
    run_logged("download kubernetes modules", ["go", "mod", "download"], log_path, cwd=work, env=go_environment())
    (work / ".ready").touch()


def build_kubernetes_component(component: str, work: Path, output: Path, log_path: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_suffix(".partial")
    run_logged(
        f"build {component}",
        [
            "go",
            "build",
            "-trimpath",
            "-ldflags",
            kubernetes_ldflags(paths.KUBERNETES_VERSION),
            "-o",
            str(partial),
            f"k8s.io/kubernetes/cmd/{component}",
        ],
        log_path,
        cwd=work,
        env=go_environment(),
    )
    partial.rename(output)


def build_etcd(work: Path, output: Path, log_path: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    (work / "go.mod").write_text(etcd_wrapper_gomod(paths.ETCD_VERSION))
    env = go_environment()
    run_logged(
        "resolve etcd modules",
        ["go", "get", f"go.etcd.io/etcd/server/v3@{paths.ETCD_VERSION}"],
        log_path,
        cwd=work,
        env=env,
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_suffix(".partial")
    run_logged(
        "build etcd",
        ["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", str(partial), "go.etcd.io/etcd/server/v3"],
        log_path,
        cwd=work,
        env=env,
    )
    partial.rename(output)


def go_install(package: str, output: Path, log_path: Path) -> None:
    """`go install` into a scratch GOBIN, then move the binary to its versioned cache path."""
    gobin = output.parent / "gobin"
    env = go_environment()
    env["GOBIN"] = str(gobin)
    env["GOFLAGS"] = "-buildvcs=false"
    run_logged(f"go install {package}", ["go", "install", "-trimpath", "-ldflags", "-s -w", package], log_path, env=env)
    built = gobin / package.split("@")[0].rsplit("/", 1)[-1]
    built.rename(output)
    shutil.rmtree(gobin, ignore_errors=True)


def install_apt_packages(log_path: Path) -> None:
    missing = [package for package, path in APT_PACKAGES.items() if not Path(path).exists()]
    if not missing:
        return
    packages = ["prometheus"]  # ships promtool too
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    run_logged("apt-get update", [*sudo, "apt-get", "update", "-q"], log_path, env=env)
    run_logged(
        "apt-get install",
        [*sudo, "apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
        log_path,
        env=env,
    )


def record_time(name: str, seconds: float) -> None:
    record_path = paths.build_times_file()
    record: dict[str, object] = {}
    if record_path.exists():
        record = json.loads(record_path.read_text())
    record[name] = {"seconds": round(seconds, 1), "date": datetime.now(UTC).date().isoformat(), "cores": os.cpu_count()}
    record_path.parent.mkdir(parents=True, exist_ok=True)
    record_path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


def plan() -> list[Step]:
    kube_work = paths.cache_root() / "src" / f"kubernetes-{paths.KUBERNETES_VERSION}"
    etcd_work = paths.cache_root() / "src" / f"etcd-{paths.ETCD_VERSION}"
    steps = [
        Step("apt packages (prometheus, promtool)", None, install_apt_packages),
        Step("kubernetes modules", kube_work / ".ready", lambda p: prepare_kubernetes_wrapper(kube_work, p)),
    ]
    steps += [
        Step(
            component,
            binary_path(component, paths.KUBERNETES_VERSION),
            lambda p, c=component: build_kubernetes_component(  # type: ignore[misc]
                c, kube_work, binary_path(c, paths.KUBERNETES_VERSION), p
            ),
        )
        for component in KUBERNETES_COMPONENTS
    ]
    steps += [
        Step(
            "etcd",
            binary_path("etcd", paths.ETCD_VERSION),
            lambda p: build_etcd(etcd_work, binary_path("etcd", paths.ETCD_VERSION), p),
        ),
        Step(
            "kwok",
            binary_path("kwok", paths.KWOK_VERSION),
            lambda p: go_install(
                f"sigs.k8s.io/kwok/cmd/kwok@{paths.KWOK_VERSION}", binary_path("kwok", paths.KWOK_VERSION), p
            ),
        ),
        Step(
            "helm",
            binary_path("helm", paths.HELM_VERSION),
            lambda p: go_install(
                f"helm.sh/helm/v3/cmd/helm@{paths.HELM_VERSION}", binary_path("helm", paths.HELM_VERSION), p
            ),
        ),
    ]
    return steps


def step_needed(step: Step) -> bool:
    if step.output is None:
        return any(not Path(path).exists() for path in APT_PACKAGES.values())
    if step.name in KUBERNETES_COMPONENTS and kubebuilder_asset(step.name) is not None:
        return False
    return not step.output.exists()


def kubebuilder_asset(name: str) -> Path | None:
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if not assets:
        return None
    candidate = Path(assets) / name
    return candidate if candidate.is_file() else None


def build_all() -> None:
    steps = plan()
    if shutil.which("go") is None:
        raise BuildError("step 'find go' failed: the go command is not on PATH")
    for index, step in enumerate(steps, start=1):
        prefix = f"[{index}/{len(steps)}] {step.name}"
        if not step_needed(step):
            log(f"{prefix}: cached")
            continue
        log_path = paths.build_log_dir() / f"{step.name.split()[0]}.log"
        log(f"{prefix}: building (log: {log_path})")
        started = time.monotonic()
        step.run(log_path)
        elapsed = time.monotonic() - started
        record_time(step.name, elapsed)
        log(f"{prefix}: done in {elapsed:.0f}s")
    log("all lab binaries are in place")


def main() -> int:
    try:
        build_all()
    except BuildError as error:
        log(f"FAILED: {error}")
        return 1
    return 0


def locate(name: str) -> Path:
    """The binary the lab runs for a component: KUBEBUILDER_ASSETS first (envtest convention), then the cache."""
    versions = {"etcd": paths.ETCD_VERSION, "kwok": paths.KWOK_VERSION, "helm": paths.HELM_VERSION}
    versions.update({component: paths.KUBERNETES_VERSION for component in KUBERNETES_COMPONENTS})
    if name in ("prometheus", "promtool"):
        found = shutil.which(name) or APT_PACKAGES[name]
        candidate = Path(found)
    elif name in ("kubectl",):
        candidate = Path(shutil.which(name) or f"/usr/bin/{name}")
    else:
        asset = kubebuilder_asset(name) if name in (*KUBERNETES_COMPONENTS, "etcd") else None
        candidate = asset or binary_path(name, versions[name])
    if not candidate.is_file():
        raise BuildError(f"{name} is not installed at {candidate}: run `make setup` (python -m inquest.lab build)")
    return candidate
