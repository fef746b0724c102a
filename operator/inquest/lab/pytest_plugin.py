"""pytest fixtures: `lab` (one lab instance per session) and `namespace` (a fresh namespace per test).

With INQUEST_LAB_NAME set to a running instance, tests use it; otherwise the session starts its own
instance and stops it at the end.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from inquest.lab import cluster


@pytest.fixture(scope="session")
def lab() -> Iterator[cluster.Lab]:
    requested = os.environ.get("INQUEST_LAB_NAME")
    if requested:
        running = cluster.Lab.load(requested)
        if running is None:
            pytest.fail(f"INQUEST_LAB_NAME={requested} but that lab is not running (python -m inquest.lab up)")
        yield running
        return
    name = f"pytest-{os.getpid()}"
    started = cluster.up(name)
    try:
        yield started
    finally:
        cluster.down(name)


@pytest.fixture(scope="session")
def admin_api(lab: cluster.Lab) -> Iterator[Any]:
    """An official-kubernetes-client ApiClient with the lab's admin identity."""
    from kubernetes import config

    client = config.new_client_from_config(config_file=str(lab.kubeconfig_admin))  # type: ignore[no-untyped-call]
    yield client
    client.close()


@pytest.fixture(scope="session")
def running_operator(lab: cluster.Lab) -> Iterator[cluster.Lab]:
    """The operator, as `python -m inquest run` with its own restricted identity, for the whole session."""
    from inquest.lab import operator

    operator.start_operator(lab, "--continuous-interval-seconds=2")
    yield lab
    operator.stop_operator(lab)


@pytest.fixture
def namespace(lab: cluster.Lab, request: pytest.FixtureRequest) -> Iterator[str]:
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"t-{slug}-{secrets.token_hex(2)}"
    lab.api("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    cluster.wait_for_default_service_account(lab, name)
    yield name
    lab.api("DELETE", f"/api/v1/namespaces/{name}")
