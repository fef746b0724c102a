"""Removes credentials from text the engine keeps (env values, args, event messages) before anything stores it."""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "[REDACTED]"

# Names whose values are credentials whatever they look like (env var names, `key=value` keys).
_SENSITIVE_NAME = re.compile(
    r"(password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential|authorization"
    r"|auth[_-]?key|session[_-]?key|(?<![a-z])pass(?![a-z])|(?<![a-z])sig(?![a-z])|signature)",
    re.IGNORECASE,
)
# A command-line flag naming a credential, whose value may be the next argument: --password, -db-token.
_SENSITIVE_FLAG = re.compile(r"^--?[\w.-]*" + _SENSITIVE_NAME.pattern + r"[\w.-]*$", re.IGNORECASE)

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # PEM private keys, whole block.
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)", re.DOTALL), REDACTED),
    # scheme://user:password@host -> keep the user and host, drop the password.
    (re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*):[^@\s/]+@"), rf"\1:{REDACTED}@"),
    # Authorization headers and bearer/basic tokens.
    (re.compile(r"\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE), rf"\1 {REDACTED}"),
    # Any other Authorization scheme (token, ApiKey, Digest, AWS4-HMAC-SHA256...): the scheme stays, the rest goes.
    (
        re.compile(
            r"""(\b(?:proxy-)?authorization["']?\s*[:=]\s*["']?)(?!(?:bearer|basic)\s)"""
            r"""([A-Za-z][\w.+-]*)\s+[^\s"'][^"'\r\n]*""",
            re.IGNORECASE,
        ),
        rf"\1\2 {REDACTED}",
    ),
    # JSON web tokens.
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), REDACTED),
    # AWS access key ids, GitHub and Slack tokens.
    (re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"), REDACTED),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}\b"), REDACTED),
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b"), REDACTED),
    # GitHub fine-grained and GitLab personal tokens, Stripe keys, Google API keys, npm tokens.
    (re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"), REDACTED),
    (re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}"), REDACTED),
    (re.compile(r"\b[sr]k_(?:live|test)_[A-Za-z0-9]{10,}"), REDACTED),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{35}"), REDACTED),
    (re.compile(r"\bnpm_[A-Za-z0-9]{36}\b"), REDACTED),
    # Slack incoming webhooks: the path is the credential.
    (re.compile(r"(hooks\.slack\.com/(?:services|workflows|triggers)/)[A-Za-z0-9/_-]+"), rf"\1{REDACTED}"),
    # A flag naming a credential followed by its value as the next word: `--password hunter2`.
    (
        re.compile(
            r"""((?<![^\s"'])--?[\w.-]*"""
            + _SENSITIVE_NAME.pattern
            + r"""[\w.-]*\s+)(?![-\[])("[^"]*"|'[^']*'|[^\s"']+)""",
            re.IGNORECASE,
        ),
        rf"\1{REDACTED}",
    ),
    # key=value / key: value / "key": "value" where the key names a credential.
    (
        re.compile(
            r"""(?P<key>["']?[\w.-]*"""
            + _SENSITIVE_NAME.pattern
            + r"""[\w.-]*["']?\s*[=:]\s*)"""
            # Not again what an earlier pattern left: `Bearer [REDACTED]`, `token [REDACTED]`, quoted or not.
            + r"""(?!["']?(?:(?:bearer|basic)\s|(?:[A-Za-z][\w.+-]*\s+)?\[REDACTED\]))"""
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


def redact_arguments(arguments: Iterable[str]) -> tuple[str, ...]:
    """A command or its args: each scrubbed by `redact`, and the argument after a flag that names a credential
    (`["--password", "hunter2"]`) hidden whole, since joined back together they would read `--password hunter2`."""
    cleaned: list[str] = []
    hide_next = False
    for argument in arguments:
        if hide_next and argument and not argument.startswith("-"):
            cleaned.append(REDACTED)
        else:
            cleaned.append(redact(argument))
        hide_next = bool(_SENSITIVE_FLAG.match(argument))
    return tuple(cleaned)


def is_sensitive_name(name: str) -> bool:
    """An env var or key name whose value is a credential whatever it looks like (DB_PASSWORD, API_TOKEN...)."""
    return bool(_SENSITIVE_NAME.search(name))


def redact_named_value(name: str, value: str) -> str:
    """An env value: fully hidden when its name says it is a credential, otherwise scrubbed by `redact`."""
    if value and is_sensitive_name(name):
        return REDACTED
    return redact(value)
