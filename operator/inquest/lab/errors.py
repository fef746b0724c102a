"""The lab's one error type: it always names the component, the command and the tail of its log."""

from __future__ import annotations


class LabError(RuntimeError):
    def __init__(self, component: str, action: str, log_tail: str = "") -> None:
        self.component = component
        self.action = action
        self.log_tail = log_tail
        message = f"lab component {component!r}: {action}"
        if log_tail.strip():
            message += f"\n--- last lines of its log ---\n{log_tail.rstrip()}"
        super().__init__(message)
