"""The lab's failures are clear: they name the component, the command and the tail of its log."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from inquest.lab import cluster, procs
from inquest.lab.errors import LabError


def test_a_component_that_dies_on_start_reports_its_log(tmp_path: Path) -> None:
    process = procs.start("widgetd", ["sh", "-c", f"echo 'listen failed: bad flag' ; exit 7 # {tmp_path}"],
                          tmp_path / "widgetd.log")
    with pytest.raises(LabError) as failure:
        procs.wait_until(process, str(tmp_path), lambda: False, timeout_seconds=10, what="ready")
    assert failure.value.component == "widgetd"
    assert "exited while starting" in str(failure.value)
    assert "listen failed: bad flag" in failure.value.log_tail


def test_a_component_that_never_gets_ready_times_out(tmp_path: Path) -> None:
    process = procs.start("slowd", ["sh", "-c", f"echo still warming; sleep 30 # {tmp_path}"], tmp_path / "s.log")
    try:
        with pytest.raises(LabError, match="not ready after 1s") as failure:
            procs.wait_until(process, str(tmp_path), lambda: False, timeout_seconds=1, what="ready")
        assert "still warming" in failure.value.log_tail
    finally:
        procs.stop(process, str(tmp_path))
    assert not procs.is_alive(process, str(tmp_path))


def test_stop_leaves_processes_it_did_not_start(tmp_path: Path) -> None:
    ours = procs.start("ours", ["sleep", "30"], tmp_path / "ours.log")
    # A PID whose command line lacks the instance marker is not ours, so it is left alone.
    procs.stop(ours, marker=str(tmp_path / "elsewhere"))
    assert procs.is_alive(ours, "sleep")
    procs.stop(ours, marker="sleep")
    assert not procs.is_alive(ours, "sleep")


def test_up_refuses_a_taken_port_and_names_the_component() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        with pytest.raises(LabError) as failure:
            cluster.up(f"port-test-{taken}", port_base=taken)
    assert failure.value.component == "etcd"
    assert f"127.0.0.1:{taken} is already in use" in str(failure.value)
    assert cluster.Lab.load(f"port-test-{taken}") is None
