"""What keeps a flood of alert groups from becoming a flood of Investigations. Pure: the clock is given.

At most `max_creations_per_minute` Investigations are created in any 60 seconds (a sliding window, so a burst
can never exceed it either). A notification that would create one past that is refused with 503 and a
Retry-After of the seconds until the oldest creation in the window leaves it; repeats and updates of groups that
already have their Investigation are never refused. 503, not 429: Alertmanager's webhook integration retries 5xx
answers only (prometheus/alertmanager notify/webhook/webhook.go, its Retrier in notify/util.go), with its own
back-off, until the group's next flush; so a refused group is delivered again, not lost.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

WINDOW_SECONDS: Final = 60.0
DEFAULT_MAX_CREATIONS_PER_MINUTE: Final = 60


@dataclass(frozen=True)
class IntakeLimits:
    """max_creations_per_minute: 0 turns the cap off. max_in_flight: notifications that read or write Kubernetes at
    once (the client's threads are shared with the service, which has 4); max_waiting: notifications queued for a
    turn, past which a notification is answered 503 at once rather than queued."""

    max_creations_per_minute: int = DEFAULT_MAX_CREATIONS_PER_MINUTE
    max_in_flight: int = 2
    max_waiting: int = 100

    def __post_init__(self) -> None:
        if self.max_creations_per_minute < 0:
            raise ValueError("max_creations_per_minute must be 0 (no cap) or more")
        if self.max_in_flight < 1 or self.max_waiting < 0:
            raise ValueError("max_in_flight must be 1 or more and max_waiting 0 or more")


class CreationsThrottled(Exception):
    """The cap is reached; retry_after: whole seconds (at least 1) until a slot frees up."""

    def __init__(self, retry_after: int, limit: int) -> None:
        super().__init__(f"{limit} Investigations were created in the last minute (the intake's cap)")
        self.retry_after = retry_after


class CreationLimiter:
    """A sliding window of the times Investigations were created; one slot per creation."""

    def __init__(self, max_per_window: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._max = max_per_window
        self._clock = clock
        self._created: deque[float] = deque()

    def reserve(self) -> float:
        """Takes a slot for a creation about to be made and returns it; raises CreationsThrottled when none is free."""
        now = self._clock()
        if self._max <= 0:
            return now
        while self._created and now - self._created[0] >= WINDOW_SECONDS:
            self._created.popleft()
        if len(self._created) >= self._max:
            raise CreationsThrottled(max(1, math.ceil(self._created[0] + WINDOW_SECONDS - now)), self._max)
        self._created.append(now)
        return now

    def give_back(self, slot: float) -> None:
        """A reserved creation that did not happen (the group's Investigation existed after all, or the API
        failed): its slot is free again."""
        with contextlib.suppress(ValueError):  # already out of the window, or no cap
            self._created.remove(slot)

    @property
    def used(self) -> int:
        return len(self._created)
