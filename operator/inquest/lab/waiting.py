"""Polling with a deadline, for tests and scripts that wait on a real cluster."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

ResultT = TypeVar("ResultT")


def wait_for(probe: Callable[[], ResultT | None], what: str, timeout: float = 30.0, interval: float = 0.2) -> ResultT:
    """Calls probe until it returns something truthy, and returns that; fails naming what it waited for."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
