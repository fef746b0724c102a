"""Pure helpers the benchmarks share: one percentile definition, and the operator's answer log line."""

from __future__ import annotations

import math
import re

# The operator's log line per answer (service.py), read back for query counts and Prometheus time.
ANSWER_LINE = re.compile(
    r"answered (?P<name>\S+) generation (?P<generation>\d+): \S+ in (?P<total>[\d.]+) ms; "
    r"prometheus: (?P<queries>\d+) queries, (?P<prometheus>[\d.]+) ms"
)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]
