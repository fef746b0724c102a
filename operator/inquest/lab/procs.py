"""Starting, watching and stopping the lab's processes, by PID and only those the lab started."""

from __future__ import annotations

import os
import random
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from inquest.lab.errors import LabError


@dataclass
class ManagedProcess:
    component: str
    command: list[str]
    log_path: Path
    pid: int

    def to_dict(self) -> dict[str, object]:
        return {"component": self.component, "command": self.command, "log": str(self.log_path), "pid": self.pid}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> ManagedProcess:
        command = data["command"]
        assert isinstance(command, list)
        return cls(
            str(data["component"]), [str(part) for part in command], Path(str(data["log"])), int(str(data["pid"]))
        )


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log written)"


EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
# Listening ports are taken below the kernel's ephemeral range: a port the kernel hands out for binding to 0 is
# also what it hands to outgoing connections, which took one between the choice and the component's bind.
LISTEN_PORTS_WANTED = 12_000


def listen_port_range(ranges_text: str | None = None) -> range:
    """The ports below the ephemeral range (default Linux: 20768-32767)."""
    try:
        text = ranges_text if ranges_text is not None else EPHEMERAL_RANGE_FILE.read_text()
        ephemeral_start = int(text.split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_start = 32768
    return range(max(1024, ephemeral_start - LISTEN_PORTS_WANTED), max(1025, ephemeral_start))


def free_port() -> int:
    """A free loopback port outside the ephemeral range, or one the kernel picks if none is found."""
    candidates = listen_port_range()
    for _ in range(200):
        port = random.choice(candidates)
        if port_is_free(port):
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        chosen: int = probe.getsockname()[1]
        return chosen


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


_children: dict[int, subprocess.Popen[bytes]] = {}


def start(component: str, command: Sequence[str], log_path: Path, env: dict[str, str] | None = None) -> ManagedProcess:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    if not Path(command[0]).exists() and "/" in command[0]:
        raise LabError(component, f"binary not found: {command[0]} (run `make setup`)")
    with log_path.open("ab") as log_file:
        try:
            child = subprocess.Popen(
                list(command),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=env,
            )
        except OSError as error:
            raise LabError(component, f"could not start {' '.join(command)}: {error}") from error
    _children[child.pid] = child
    return ManagedProcess(component, list(command), log_path, child.pid)


def is_alive(process: ManagedProcess, marker: str) -> bool:
    """True if the PID still runs the command we started (PIDs get reused), identified by a path marker."""
    child = _children.get(process.pid)
    if child is not None:
        # Our own child: poll() is exact, while /proc/PID/cmdline can read empty during exec of a large binary.
        if child.poll() is None:
            return True
        # Gone: forget it at once, so that a later process given the same PID is never taken for it.
        _children.pop(process.pid, None)
        return False
    try:
        cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        stat = Path(f"/proc/{process.pid}/stat").read_text()
    except OSError:
        return False
    zombie = stat.rsplit(")", 1)[-1].split()[0] == "Z"
    return marker in cmdline and not zombie


def stop(process: ManagedProcess, marker: str, grace_seconds: float = 5.0) -> None:
    if not is_alive(process, marker):
        _reap(process.pid)
        return
    os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        _reap(process.pid)
        if not is_alive(process, marker):
            return
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    _reap(process.pid)


def kill(process: ManagedProcess, marker: str) -> None:
    """SIGKILL at once, no grace: the process gets no chance to finish anything (crash tests)."""
    if is_alive(process, marker):
        os.kill(process.pid, signal.SIGKILL)
    _reap(process.pid)


def _reap(pid: int) -> None:
    child = _children.pop(pid, None)
    if child is not None:
        try:
            child.wait(timeout=2)
        except subprocess.TimeoutExpired:
            _children[pid] = child


def wait_until(
    process: ManagedProcess, marker: str, check: Callable[[], bool], timeout_seconds: float, what: str
) -> None:
    """Polls check() until it holds; raises LabError with the log tail if the process dies or time runs out."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        if not is_alive(process, marker):
            raise LabError(
                process.component, f"exited while starting: {' '.join(process.command)}", log_tail(process.log_path)
            )
        if check():
            return
        if time.monotonic() > deadline:
            raise LabError(
                process.component,
                f"not {what} after {timeout_seconds:.0f}s: {' '.join(process.command)}",
                log_tail(process.log_path),
            )
        time.sleep(0.1)


def http_ok(url: str, token: str | None = None, ca_file: Path | None = None, expect: bytes | None = None) -> bool:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    context = None
    if url.startswith("https"):
        context = ssl.create_default_context(cafile=str(ca_file)) if ca_file else ssl._create_unverified_context()
    try:
        with urllib.request.urlopen(request, timeout=2, context=context) as response:
            body: bytes = response.read()
            return response.status == 200 and (expect is None or expect in body)
    except (urllib.error.URLError, OSError, ValueError):
        return False
