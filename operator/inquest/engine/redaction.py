"""Removes credentials from text the engine keeps (env values, args, event messages) before anything stores it."""

from __future__ import annotations

import re

REDACTED = "[REDACTED]"

# Names whose values are credentials whatever they look like (env var names, `key=value` keys).
_SENSITIVE_NAME = re.compile(
    r"(password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential|authorization"
    r"|auth[_-]?key|session[_-]?key)",
    re.IGNORECASE,
)

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # PEM private keys, whole block.
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)", re.DOTALL), REDACTED),
    # scheme://user:password@host -> keep the user and host, drop the password.
    (re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*):[^@\s/]+@"), rf"\1:{REDACTED}@"),
    # Authorization headers and bearer/basic tokens.
    (re.compile(r"\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE), rf"\1 {REDACTED}"),
    # JSON web tokens.
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), REDACTED),
    # AWS access key ids, GitHub and Slack tokens.
    (re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"), REDACTED),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}\b"), REDACTED),
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b"), REDACTED),
    # key=value / key: value / "key": "value" where the key names a credential.
    (
        re.compile(
            r"""(?P<key>["']?[\w.-]*"""
            + _SENSITIVE_NAME.pattern
            + r"""[\w.-]*["']?\s*[=:]\s*)(?!(?:bearer|basic)\s|\[REDACTED\])"""
            + r"""(?P<value>"[^"]*"|'[^']*'|[^\s"'&;,}]+)""",
            re.IGNORECASE,
        ),
        rf"\g<key>{REDACTED}",
    ),
)


def redact(text: str) -> str:
    """The text with every credential-looking value replaced by `[REDACTED]`; harmless text is unchanged."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def is_sensitive_name(name: str) -> bool:
    """An env var or key name whose value is a credential whatever it looks like (DB_PASSWORD, API_TOKEN...)."""
    return bool(_SENSITIVE_NAME.search(name))


def redact_named_value(name: str, value: str) -> str:
    """An env value: fully hidden when its name says it is a credential, otherwise scrubbed by `redact`."""
    if value and is_sensitive_name(name):
        return REDACTED
    return redact(value)
