"""Safe PromQL construction: every label value from an Investigation or the cluster goes through here.

A label value is data, never syntax. It is written as a double-quoted PromQL string literal whose escaping
was checked against Prometheus 2.42: inside double quotes the parser accepts the escapes \\a \\b \\f \\n \\r
\\t \\v \\\\ \\" and \\ooo \\xhh \\uhhhh \\Uhhhhhhhh; it rejects a raw newline ("unterminated quoted string"),
\\' and any other escape ("unknown escape sequence"), and a \\u escape of a surrogate. Regex matchers (=~, !~)
are anchored RE2 patterns, so literal names are regex-escaped first (regex_alternation) and the pattern is
then string-escaped like any other value.

Label and metric names cannot be quoted in Prometheus 2.x, so they are checked against the grammar and
rejected with a ValueError that names the problem.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Final, Literal, TypeAlias

MatchOperator: TypeAlias = Literal["=", "!=", "=~", "!~"]
# (label name, operator, value), in the order PromQL writes them: ("pod", "=~", "web-1|web-2").
MatcherSpec: TypeAlias = tuple[str, str, str]

MATCH_OPERATORS: Final[frozenset[str]] = frozenset({"=", "!=", "=~", "!~"})
METRIC_NAME_PATTERN: Final = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME_PATTERN: Final = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

# Words the PromQL lexer reads as keywords or numbers whatever their case: `bool{...}`, `on{...}` and
# `inf{...}` are parse errors in 2.42, so a metric with such a name is selected through __name__ instead.
# The aggregations parse as metric names today, but are kept here so a parser change cannot alter meaning.
PROMQL_RESERVED_WORDS: Final[frozenset[str]] = frozenset(
    {
        "and", "or", "unless", "atan2", "bool", "on", "ignoring", "group_left", "group_right", "by", "without",
        "offset", "start", "end", "inf", "nan", "sum", "avg", "count", "min", "max", "group", "stddev", "stdvar",
        "topk", "bottomk", "count_values", "quantile", "limitk", "limit_ratio", "smoothed", "anchored",
    }
)  # fmt: skip

# Go's regexp.QuoteMeta set: escaping exactly these makes any text a literal RE2 pattern.
_REGEX_METACHARACTERS: Final[frozenset[str]] = frozenset("\\.+*?()|[]{}^$")
_SHORT_ESCAPES: Final[dict[str, str]] = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Control, format (bidi overrides, zero-width) and line/paragraph separators: valid in a literal, but escaped
# so that a query pasted from a report shows what it really matches.
_ESCAPED_CATEGORIES: Final[frozenset[str]] = frozenset({"Cc", "Cf", "Zl", "Zp"})


def escape_label_value(value: str) -> str:
    """The content of a double-quoted PromQL string literal that denotes exactly `value`.

    Raises ValueError for text that is not valid Unicode (a lone surrogate): Prometheus keeps label values
    as UTF-8, so no series could carry it and a replacement character would match something else.
    """
    if not isinstance(value, str):
        raise ValueError(f"a label value must be a string, got {type(value).__name__}")
    pieces: list[str] = []
    for index, character in enumerate(value):
        short = _SHORT_ESCAPES.get(character)
        if short is not None:
            pieces.append(short)
            continue
        if character.isprintable():
            pieces.append(character)
            continue
        category = unicodedata.category(character)
        if category == "Cs":
            raise ValueError(
                f"label value is not valid Unicode: lone surrogate U+{ord(character):04X} at index {index}"
            )
        if category in _ESCAPED_CATEGORIES:
            code_point = ord(character)
            pieces.append(f"\\u{code_point:04x}" if code_point <= 0xFFFF else f"\\U{code_point:08x}")
        else:
            pieces.append(character)  # e.g. a no-break space or a private-use character: harmless as is
    return "".join(pieces)


def string_literal(value: str) -> str:
    """`value` as a complete double-quoted PromQL string literal, quotes included."""
    return f'"{escape_label_value(value)}"'


def check_label_name(name: str) -> str:
    """Returns the name if it is a valid Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*), else ValueError."""
    if not isinstance(name, str):
        raise ValueError(f"a label name must be a string, got {type(name).__name__}")
    if not name:
        raise ValueError("label name is empty")
    if LABEL_NAME_PATTERN.fullmatch(name) is None:
        raise ValueError(f"invalid label name {name!r}: must match [a-zA-Z_][a-zA-Z0-9_]*")
    return name


def check_metric_name(name: str) -> str:
    """Returns the name if it is a valid Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*), else ValueError."""
    if not isinstance(name, str):
        raise ValueError(f"a metric name must be a string, got {type(name).__name__}")
    if not name:
        raise ValueError("metric name is empty")
    if METRIC_NAME_PATTERN.fullmatch(name) is None:
        raise ValueError(f"invalid metric name {name!r}: must match [a-zA-Z_:][a-zA-Z0-9_:]*")
    return name


def matcher(name: str, value: str, op: str = "=") -> str:
    """One label matcher, e.g. `namespace="shop"`. For =~ and !~ the value is an RE2 pattern (see regex_alternation)."""
    check_label_name(name)
    if op not in MATCH_OPERATORS:
        raise ValueError(f"invalid match operator {op!r} for label {name!r}: use one of =, !=, =~, !~")
    return f"{name}{op}{string_literal(value)}"


def regex_escape(value: str) -> str:
    """`value` as an RE2 pattern that matches exactly that text (the QuoteMeta escaping, valid in RE2 and re)."""
    return "".join(f"\\{character}" if character in _REGEX_METACHARACTERS else character for character in value)


def regex_alternation(values: Iterable[str]) -> str:
    """An RE2 pattern matching exactly one of `values` (literal text, e.g. pod names): `web\\-1|web\\.2`.

    Prometheus anchors regex matchers (^(?:...)$), so the alternation needs no group. Duplicates are
    dropped, the order is kept. An empty string among the values also matches series without the label.
    """
    if isinstance(values, str):
        raise ValueError("regex_alternation takes a collection of values, not a single string")
    unique = list(dict.fromkeys(values))
    if not unique:
        raise ValueError("regex_alternation needs at least one value")
    for value in unique:
        if not isinstance(value, str):
            raise ValueError(f"regex_alternation values must be strings, got {type(value).__name__}")
    return "|".join(regex_escape(value) for value in unique)


def selector(metric: str, matchers: Mapping[str, str] | Sequence[MatcherSpec] = ()) -> str:
    """An instant vector selector such as `http_requests_total{namespace="shop", pod=~"web\\\\-1|web\\\\-2"}`.

    `matchers` is either a mapping of label name to value (equality) or (name, operator, value) triples.
    """
    check_metric_name(metric)
    rendered = [matcher(name, value, op) for name, op, value in _matcher_specs(matchers)]
    if metric.lower() in PROMQL_RESERVED_WORDS:
        return "{" + ", ".join([matcher("__name__", metric), *rendered]) + "}"
    if not rendered:
        return metric
    return metric + "{" + ", ".join(rendered) + "}"


def _matcher_specs(matchers: Mapping[str, str] | Sequence[MatcherSpec]) -> list[MatcherSpec]:
    if isinstance(matchers, Mapping):
        specs: list[MatcherSpec] = [(name, "=", value) for name, value in matchers.items()]
    elif isinstance(matchers, str):
        raise ValueError("matchers must be a mapping or a sequence of (name, operator, value), not a string")
    else:
        specs = []
        for position, spec in enumerate(matchers):
            if not isinstance(spec, tuple) or len(spec) != 3:
                raise ValueError(f"matchers[{position}] must be a (name, operator, value) tuple, got {spec!r}")
            specs.append(spec)
    for name, _op, _value in specs:
        if name == "__name__":
            # Prometheus rejects a selector that sets the metric name twice; the metric argument names it.
            raise ValueError("do not match __name__ in matchers: the metric argument names the metric")
    return specs
