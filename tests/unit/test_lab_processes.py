"""The lab's failures are clear: they name the component, the command and the tail of its log."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest

from inquest.lab import cluster, procs
from inquest.lab.errors import LabError


def test_a_component_that_dies_on_start_reports_its_log(tmp_path: Path) -> None:
    process = procs.start(
        "widgetd", ["sh", "-c", f"echo 'listen failed: bad flag' ; exit 7 # {tmp_path}"], tmp_path / "widgetd.log"
    )
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


def test_stop_by_recorded_pid_leaves_a_process_that_is_not_ours(tmp_path: Path) -> None:
    # A PID read back from a state file may have been reused by an unrelated process: its command line
    # lacks the instance's marker, so stop must leave it running.
    stranger = subprocess.Popen(["sleep", "30"])
    try:
        recorded = procs.ManagedProcess("etcd", ["etcd"], tmp_path / "etcd.log", stranger.pid)
        procs.stop(recorded, marker=str(tmp_path))
        assert stranger.poll() is None
        procs.stop(recorded, marker="sleep 30")
        # Polled rather than wait(timeout): under load, wait() once timed out with the exit status already known.
        deadline = time.monotonic() + 15
        while stranger.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stranger.returncode is not None, "still running"
        assert stranger.returncode < 0, "stopped by a signal"
    finally:
        stranger.kill()
        stranger.wait()


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


def test_listen_ports_are_chosen_below_the_ephemeral_range() -> None:
    from inquest.lab import procs

    assert procs.listen_port_range("32768\t60999\n") == range(20768, 32768)
    assert procs.listen_port_range("5000 60999") == range(1024, 5000)
    assert procs.listen_port_range("garbage") == range(20768, 32768)
    chosen = {procs.free_port() for _ in range(20)}
    assert all(port in procs.listen_port_range() for port in chosen)
    assert all(procs.port_is_free(port) for port in chosen)
