"""Kubernetes timestamps to aware UTC datetimes, and back to short human strings."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_time(raw: object) -> datetime | None:
    """RFC 3339 (`2024-05-01T10:05:00Z`, with or without fractions) to aware UTC; None for anything else."""
    if isinstance(raw, datetime):
        return raw if raw.tzinfo else raw.replace(tzinfo=UTC)
    if not isinstance(raw, str) or not raw:
        return None
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def short_time(moment: datetime | None) -> str:
    """`10:05:30Z` style, enough for summaries; the full timestamp lives in evidence."""
    if moment is None:
        return "an unknown time"
    return moment.astimezone(UTC).strftime("%H:%M:%SZ")


def since(moment: datetime | None) -> str:
    """`since 10:05:00Z`, or `(start unknown)` when there is no timestamp to say it with."""
    return f"since {short_time(moment)}" if moment is not None else "(start unknown)"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
