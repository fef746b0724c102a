"""The wrapper modules that let the Go module proxy build kube-apiserver and friends."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from inquest.lab import build

KUBERNETES_GOMOD_EXCERPT = """
module k8s.io/kubernetes

go 1.23.0

require (
\tk8s.io/api v0.0.0
\tk8s.io/client-go v0.0.0
\tgithub.com/spf13/cobra v1.8.1
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
\tk8s.io/kube-openapi => k8s.io/kube-openapi v0.0.0-20241105132330-32ad38e42d3f
)
"""


def test_staging_modules_are_read_from_the_replace_block() -> None:
    assert build.staging_modules(KUBERNETES_GOMOD_EXCERPT) == ["k8s.io/api", "k8s.io/client-go"]


def test_wrapper_pins_kubernetes_and_replaces_staging_with_published_twins() -> None:
    gomod = build.kubernetes_wrapper_gomod("v1.32.9", ["k8s.io/api", "k8s.io/client-go"])
    assert "require k8s.io/kubernetes v1.32.9" in gomod
    assert "\tk8s.io/api => k8s.io/api v0.32.9" in gomod
    assert "\tk8s.io/client-go => k8s.io/client-go v0.32.9" in gomod
    assert "godebug default=go1.23" in gomod


def test_staging_version_rejects_what_it_cannot_map() -> None:
    assert build.staging_version("v1.32.9") == "v0.32.9"
    with pytest.raises(build.BuildError, match=r"expected v1\.MINOR\.PATCH"):
        build.staging_version("1.32")


def test_ldflags_stamp_both_version_packages() -> None:
    flags = build.kubernetes_ldflags("v1.32.9")
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        assert f"-X {package}.gitVersion=v1.32.9" in flags
        assert f"-X {package}.gitMinor=32" in flags


def test_etcd_wrapper_replaces_its_sibling_modules() -> None:
    gomod = build.etcd_wrapper_gomod("v3.5.24")
    assert "require go.etcd.io/etcd/server/v3 v3.5.24" in gomod
    assert "go.etcd.io/etcd/client/v2 => go.etcd.io/etcd/client/v2 v2.305.24" in gomod
    assert "go.etcd.io/etcd/raft/v3 => go.etcd.io/etcd/raft/v3 v3.5.24" in gomod


def test_a_failing_step_names_itself_and_shows_its_log(tmp_path: Path) -> None:
    log_path = tmp_path / "step.log"
    with pytest.raises(build.BuildError) as failure:
        build.run_logged("compile widget", ["sh", "-c", "echo first; echo boom >&2; exit 3"], log_path)
    message = str(failure.value)
    assert "compile widget" in message
    assert "exit 3" in message
    assert "boom" in message


def test_kubebuilder_assets_take_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "kube-apiserver").write_text("#!/bin/sh\n")
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(assets))
    monkeypatch.setenv("INQUEST_CACHE", str(tmp_path / "cache"))
    assert build.locate("kube-apiserver") == assets / "kube-apiserver"
    # envtest ships no kube-scheduler, so the cache must supply it; here it is missing, and says so.
    with pytest.raises(build.BuildError, match="make setup"):
        build.locate("kube-scheduler")


@pytest.mark.skipif(shutil.which("go") is None, reason="needs the go command")
def test_an_unreachable_module_proxy_fails_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INQUEST_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GOMODCACHE", str(tmp_path / "modcache"))
    monkeypatch.setenv("GOPROXY", "http://127.0.0.1:9")  # the discard port: connection refused
    with pytest.raises(build.BuildError) as failure:
        build.prepare_kubernetes_wrapper(tmp_path / "work", tmp_path / "build.log")
    message = str(failure.value)
    assert "read k8s.io/kubernetes go.mod" in message
    assert "127.0.0.1:9" in message
