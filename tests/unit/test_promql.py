"""PromQL construction with plain data: escaping, name grammar, regex alternation, selectors.

The same rules are proven against a real Prometheus in tests/integration/test_prometheus_client_lab.py.
"""

from __future__ import annotations

import re

import pytest

from inquest.metrics.promql import (
    PROMQL_RESERVED_WORDS,
    check_label_name,
    check_metric_name,
    escape_label_value,
    matcher,
    regex_alternation,
    regex_escape,
    selector,
    string_literal,
)

# Go's double-quoted string escapes, as the PromQL lexer accepts them: enough to decode what we produce.
_GO_ESCAPE = re.compile(r'\\(u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[abfnrtv\\"])')
_GO_SIMPLE = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", '"': '"'}


def decode_go_string_content(content: str) -> str:
    """Reads a literal's content the way Prometheus does; fails on anything it would reject."""
    assert "\n" not in content, "a raw newline ends a PromQL string: 'unterminated quoted string'"
    unescaped_quote = re.search(r'(?<!\\)(?:\\\\)*"', content)
    assert unescaped_quote is None, f"an unescaped quote closes the literal early: {content!r}"

    def replace(match: re.Match[str]) -> str:
        escape = match.group(1)
        if escape[0] in "uU":
            return chr(int(escape[1:], 16))
        return _GO_SIMPLE[escape]

    decoded = _GO_ESCAPE.sub(replace, content)
    leftover = _GO_ESCAPE.sub("", content)
    assert "\\" not in leftover, f"an escape Prometheus does not know: {content!r}"
    return decoded


NASTY_VALUES = [
    "",
    "plain",
    'a"b',
    "a\\b",
    "trailing\\",
    '\\"',
    "a\nb",
    "a\r\nb",
    "a\tb",
    "{}",
    '"} or vector(1) or {x="',
    '"}) or vector(1) #',
    "'single'",
    "`backtick`",
    "a\x00b\x01\x1f\x7f",
    "\u0085next line",
    "a\u2028b\u2029c",
    "bidi\u202eevil\u2066",
    "zero\u200bwidth",
    "é日本😀",
    "\U000e0001tag",
    "no\u00a0break",
    ".*",
    "a|b",
    "$(whoami)",
]


@pytest.mark.parametrize("value", NASTY_VALUES)
def test_escaped_values_decode_back_to_the_same_text(value: str) -> None:
    escaped = escape_label_value(value)
    assert decode_go_string_content(escaped) == value
    assert string_literal(value) == f'"{escaped}"'


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", ""),
        ("web-1", "web-1"),
        ('a"b', 'a\\"b'),
        ("a\\b", "a\\\\b"),
        ("a\nb", "a\\nb"),
        ("a\rb\tc", "a\\rb\\tc"),
        ("{}", "{}"),
        ('"} or vector(1) or {x="', '\\"} or vector(1) or {x=\\"'),
        ("'", "'"),  # \' is an unknown escape inside double quotes, so a single quote stays raw
        ("\x00\x1b\x7f", "\\u0000\\u001b\\u007f"),
        ("\u0085\u2028\u202e\u200b", "\\u0085\\u2028\\u202e\\u200b"),
        ("\U000e0001", "\\U000e0001"),
        ("é日本😀", "é日本😀"),
    ],
)
def test_escape_label_value_output(value: str, expected: str) -> None:
    assert escape_label_value(value) == expected


def test_a_lone_surrogate_is_refused_with_its_position() -> None:
    with pytest.raises(ValueError, match=r"lone surrogate U\+D800 at index 1"):
        escape_label_value("a\ud800b")


def test_escape_label_value_refuses_non_strings() -> None:
    with pytest.raises(ValueError, match="must be a string"):
        escape_label_value(3)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["a", "_", "__name__", "pod", "k8s_app", "A1_b2", "le"])
def test_valid_label_names(name: str) -> None:
    assert check_label_name(name) == name


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "empty"),
        ("1a", "invalid label name '1a'"),
        ("a-b", "invalid label name 'a-b'"),
        ("a.b", "invalid label name"),
        ("a:b", "invalid label name"),  # colons are for metric names only
        ("é", "invalid label name"),
        ("a b", "invalid label name"),
        ("pod\n", "invalid label name"),  # `$` would accept a trailing newline; fullmatch does not
        ('a="x",b', "invalid label name"),
    ],
)
def test_invalid_label_names_name_the_problem(name: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        check_label_name(name)


@pytest.mark.parametrize("name", ["up", "http_requests_total", "job:rate5m:sum", ":weird", "_x"])
def test_valid_metric_names(name: str) -> None:
    assert check_metric_name(name) == name


@pytest.mark.parametrize("name", ["", "1up", "http-requests", "a{b}", "up\n", "up or vector(1)", "é"])
def test_invalid_metric_names(name: str) -> None:
    with pytest.raises(ValueError, match="metric name"):
        check_metric_name(name)


def test_matcher_renders_each_operator() -> None:
    assert matcher("namespace", "shop") == 'namespace="shop"'
    assert matcher("namespace", "shop", "!=") == 'namespace!="shop"'
    assert matcher("pod", "web\\-1|web\\-2", "=~") == 'pod=~"web\\\\-1|web\\\\-2"'
    assert matcher("pod", "canary.*", "!~") == 'pod!~"canary.*"'


def test_matcher_refuses_bad_operator_and_name() -> None:
    with pytest.raises(ValueError, match=r"invalid match operator '==' for label 'pod'"):
        matcher("pod", "x", "==")
    with pytest.raises(ValueError, match="invalid label name"):
        matcher("pod-name", "x")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("web-1", "web-1"),  # '-' is only special inside a character class
        ("a.b", "a\\.b"),
        (".*", "\\.\\*"),
        ("a|b", "a\\|b"),
        ("(x)[y]{2}", "\\(x\\)\\[y\\]\\{2\\}"),
        ("^start$", "\\^start\\$"),
        ("1+1?", "1\\+1\\?"),
        ("back\\slash", "back\\\\slash"),
        ("é 😀\n", "é 😀\n"),
    ],
)
def test_regex_escape(value: str, expected: str) -> None:
    assert regex_escape(value) == expected


@pytest.mark.parametrize("value", NASTY_VALUES)
def test_regex_escaped_values_match_only_themselves(value: str) -> None:
    # Python's re reads QuoteMeta escapes the same way RE2 does; Prometheus anchors like fullmatch.
    pattern = re.compile(regex_escape(value), re.DOTALL)
    assert pattern.fullmatch(value)
    assert not pattern.fullmatch(value + "x")
    assert not pattern.fullmatch("x" + value)


def test_regex_alternation_keeps_order_and_drops_duplicates() -> None:
    assert regex_alternation(["web-1", "web.2", "web-1"]) == "web-1|web\\.2"
    pattern = re.compile(regex_alternation(["a|b", ".*", "c"]))
    assert [candidate for candidate in ["a|b", "a", "b", ".*", "anything", "c"] if pattern.fullmatch(candidate)] == [
        "a|b",
        ".*",
        "c",
    ]


def test_regex_alternation_refuses_empty_and_single_strings() -> None:
    with pytest.raises(ValueError, match="at least one value"):
        regex_alternation([])
    with pytest.raises(ValueError, match="not a single string"):
        regex_alternation("web-1")


def test_selector_from_a_mapping() -> None:
    assert selector("up", {}) == "up"
    assert selector("up") == "up"
    assert (
        selector("http_requests_total", {"namespace": "shop", "pod": 'x"}'})
        == 'http_requests_total{namespace="shop", pod="x\\"}"}'
    )


def test_selector_from_triples_with_a_regex_of_literal_names() -> None:
    pods = regex_alternation(["web-1.a", 'evil"} or vector(1) or {x="'])
    rendered = selector("container_cpu_usage_seconds_total", [("namespace", "=", "shop"), ("pod", "=~", pods)])
    assert rendered == (
        'container_cpu_usage_seconds_total{namespace="shop", pod=~"web-1\\\\.a|evil\\"\\\\}'
        ' or vector\\\\(1\\\\) or \\\\{x=\\""}'
    )
    # The regex survives the string escaping intact.
    literal = re.search(r'pod=~"((?:[^"\\]|\\.)*)"', rendered)
    assert literal is not None
    assert decode_go_string_content(literal.group(1)) == pods


@pytest.mark.parametrize("keyword", ["bool", "on", "ignoring", "group_left", "atan2", "inf", "NaN", "Inf", "sum"])
def test_selector_for_a_keyword_named_metric_uses_name_matcher(keyword: str) -> None:
    assert keyword.lower() in PROMQL_RESERVED_WORDS
    assert selector(keyword, {"job": "x"}) == f'{{__name__="{keyword}", job="x"}}'
    assert selector(keyword) == f'{{__name__="{keyword}"}}'


def test_selector_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="invalid metric name"):
        selector("up or vector(1)", {})
    with pytest.raises(ValueError, match="__name__"):
        selector("up", {"__name__": "down"})
    with pytest.raises(ValueError, match=r"matchers\[0\] must be a \(name, operator, value\) tuple"):
        selector("up", [("job", "x")])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="not a string"):
        selector("up", "job=x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="invalid match operator"):
        selector("up", [("job", "x", "=")])  # (name, value, op) order by mistake
    with pytest.raises(ValueError, match="invalid label name"):
        selector("up", {"bad-name": "x"})
