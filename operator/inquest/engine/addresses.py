"""Finds in-cluster service addresses in env values and args (`payments:8080`, `payments.shop.svc`,
`http://payments.shop:8080/x`, `payments.shop.svc.cluster.local`). Candidates only: the graph keeps those that
name a Service that exists."""

from __future__ import annotations

import re

_HOST = re.compile(
    r"(?<![\w.@-])(?P<scheme>[a-z][a-z0-9+.-]*://(?:[^/\s@]*@)?)?"
    r"(?P<host>[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*)"
    r"(?::(?P<port>\d{1,5}))?"
)
_SERVICE_NAME = re.compile(r"^[a-z]([a-z0-9-]*[a-z0-9])?$")
# A bare value (`payments`) counts only under a variable named like an address.
_ADDRESS_VARIABLE = re.compile(r"(HOST|ADDR|ADDRESS|URL|URI|SERVICE|ENDPOINT|UPSTREAM|BACKEND|SERVER|DSN)", re.I)


def find_service_addresses(text: str, default_namespace: str, variable_name: str = "") -> set[tuple[str, str]]:
    """(namespace, service name) pairs that `text` may address."""
    lowered = text.lower()
    bare_allowed = bool(variable_name) and bool(_ADDRESS_VARIABLE.search(variable_name))
    found: set[tuple[str, str]] = set()
    for match in _HOST.finditer(lowered):
        host, port, scheme = match["host"], match["port"], match["scheme"]
        labels = host.split(".")
        explicit = bool(port or scheme)
        candidate: tuple[str, str] | None = None
        if (
            (len(labels) == 5 and labels[2:] == ["svc", "cluster", "local"])
            or (len(labels) == 3 and labels[2] == "svc")
            or (len(labels) == 2 and explicit)
        ):
            candidate = (labels[1], labels[0])
        elif len(labels) == 1 and (explicit or (bare_allowed and lowered.strip() == host)):
            candidate = (default_namespace, labels[0])
        if candidate and _SERVICE_NAME.match(candidate[1]) and _SERVICE_NAME.match(candidate[0]):
            found.add(candidate)
    return found
