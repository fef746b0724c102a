"""The Prometheus client and PromQL escaping against the lab's REAL Prometheus (2.42).

Hostile label values are exported through the lab exporter and scraped, then selected with selectors built
by inquest.metrics.promql: each selector must match exactly its intended series, with no parse error and
no series the query did not ask for (an injected `or vector(1)` would add a label-less one).
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from inquest.clients.prometheus import PrometheusClient, PrometheusSettings, QueryResult, RangeQuery
from inquest.lab import cluster
from inquest.lab.exporter import read_series_file, write_series_file
from inquest.lab.shapes import SeriesSpec
from inquest.lab.waiting import wait_for
from inquest.metrics.promql import PROMQL_RESERVED_WORDS, regex_alternation, selector

pytestmark = pytest.mark.lab

HEARTBEATS = "inquest_lab_heartbeats_total"
HOSTILE_METRIC = "inquest_test_promql_hostile_values"
SCHEDULING_SLACK_SECONDS = 1.0

# Label values an object name, an annotation or an Investigation field could carry. All of them survive the
# text exposition format (it escapes backslash, quote and newline), so each one is a real scraped series.
HOSTILE_VALUES: dict[str, str] = {
    "plain": "checkout-7d9f",
    "double_quote": 'say "hi"',
    "single_quote": "it's",
    "backtick": "`raw`",
    "backslash": "C:\\temp\\",
    "escaped_quote_lookalike": '\\"',
    "braces": "{}{{}}",
    "close_and_or": '"} or vector(1) or {x="',
    "close_paren_comment": '"}) or vector(1) # ',
    "newline": "line one\nline two",
    "crlf_tab": "a\r\n\tb",
    "control": "nul\x00bell\x07esc\x1bdel\x7f",
    "unicode": "café 日本 😀",
    "bidi_and_zero_width": "abc\u202edcba\u200b\u2028",
    "regex_any": ".*",
    "regex_alternation": "a|b",
    "regex_group": "(x)[y]{2}+?^$",
    "empty_looking": " ",
}

# Never exported: if escaping failed, these would either break the parser or select extra series.
INJECTIONS_THAT_MUST_MATCH_NOTHING = [
    'x"} or vector(1) or up{y="',
    'x"} or vector(1) or {y="',
    '"} or up or {a="',
    '\\"} or vector(1) or {y=\\"',
    '"}) or vector(1) or absent(nothing{a="',
    "x\\",
    "\\",
    '"',
    ".+",
]


@dataclass(frozen=True)
class HostileSeries:
    run: str  # a label unique to this test run, so older runs' series never interfere


def api_query(prometheus_url: str, expression: str) -> list[dict[str, Any]]:
    """A plain API call for setting up and waiting; the client under test is not used for it."""
    data = urllib.parse.urlencode({"query": expression}).encode()
    request = urllib.request.Request(f"{prometheus_url}/api/v1/query", data=data)
    with urllib.request.urlopen(request, timeout=5) as response:
        result: list[dict[str, Any]] = json.load(response)["data"]["result"]
        return result


@pytest.fixture(scope="module")
def hostile_series(lab: cluster.Lab) -> Iterator[HostileSeries]:
    run = secrets.token_hex(4)
    original = read_series_file(lab.series_file)
    now = time.time()
    hostile = [
        SeriesSpec.model_validate(
            {
                "name": HOSTILE_METRIC,
                "type": "gauge",
                "labels": {"run": run, "case": case, "object": value},
                "points": [{"at": "-1m", "value": index + 1}],
                "reference_time": now,
            }
        )
        for index, (case, value) in enumerate(HOSTILE_VALUES.items())
    ]
    write_series_file(lab.series_file, [*original, *hostile])
    try:
        wait_for(
            lambda: len(api_query(lab.prometheus_url, f'{HOSTILE_METRIC}{{run="{run}"}}')) == len(HOSTILE_VALUES),
            "Prometheus to scrape every hostile series",
            timeout=45,
            interval=0.5,
        )
        yield HostileSeries(run)
    finally:
        write_series_file(lab.series_file, original)


@pytest.fixture
async def client(lab: cluster.Lab) -> AsyncIterator[PrometheusClient]:
    prometheus = PrometheusClient(PrometheusSettings(url=lab.prometheus_url))
    try:
        yield prometheus
    finally:
        prometheus.close()


def labels_of(result: QueryResult) -> list[dict[str, str]]:
    assert result.error is None, result.error
    assert not result.partial, result.warnings
    return [series.labels for series in result.series]


async def test_range_query_on_the_heartbeat_series(client: PrometheusClient, lab: cluster.Lab) -> None:
    end = datetime.now(UTC)
    result = await client.query_range(selector(HEARTBEATS, {"lab": lab.name}), end - timedelta(minutes=30), end, 15)
    assert result.error is None, result.error
    [series] = result.series
    labels, samples = series
    assert labels == {"__name__": HEARTBEATS, "job": "inquest-lab", "instance": "lab-exporter", "lab": lab.name}
    assert len(samples) >= 100  # 30 min at 15 s, backfilled history and live scrapes alike
    values = [value for _timestamp, value in samples]
    assert values == sorted(values), "a counter without resets only grows"
    assert samples[-1][0] == pytest.approx(end.timestamp(), abs=15)


async def test_a_batch_of_real_queries_within_the_budget(client: PrometheusClient, lab: cluster.Lab) -> None:
    end = datetime.now(UTC)
    heartbeats = selector(HEARTBEATS, {"lab": lab.name})
    queries = [
        RangeQuery(f"rate({heartbeats}[{window}m])", end - timedelta(hours=1), end, 15) for window in range(1, 9)
    ]
    started = time.monotonic()
    results = await client.run_batch(queries, budget_seconds=3)
    assert time.monotonic() - started < 3
    assert [result.query for result in results] == [query.query for query in queries]
    for result in results:
        assert result.error is None, result.error
        [series] = result.series
        # The heartbeat counts 1/s. Other tests restart Prometheus, and a scrape gap lowers the rate around it,
        # so the hour's peak is 1/s and no sample exceeds it.
        rates = [value for _, value in series.samples]
        assert max(rates) == pytest.approx(1.0, rel=0.1)
        assert all(0 <= rate <= 1.1 for rate in rates)
    figures = client.figures()
    assert figures.queries_sent == len(queries)
    assert figures.errors == 0


@pytest.mark.parametrize("case", list(HOSTILE_VALUES))
async def test_each_hostile_value_selects_exactly_its_series(
    case: str, client: PrometheusClient, hostile_series: HostileSeries
) -> None:
    value = HOSTILE_VALUES[case]
    matchers = {"run": hostile_series.run, "object": value}
    found = labels_of(await client.query(selector(HOSTILE_METRIC, matchers)))
    assert len(found) == 1, found
    assert found[0]["case"] == case
    assert found[0]["object"] == value  # byte for byte, as exported

    # The same value through a regex matcher: regex-escaped, then string-escaped.
    pattern = regex_alternation([value])
    regex_matchers = [("run", "=", hostile_series.run), ("object", "=~", pattern)]
    assert [labels["case"] for labels in labels_of(await client.query(selector(HOSTILE_METRIC, regex_matchers)))] == [
        case
    ]

    excluded = labels_of(
        await client.query(selector(HOSTILE_METRIC, [("run", "=", hostile_series.run), ("object", "!=", value)]))
    )
    assert len(excluded) == len(HOSTILE_VALUES) - 1
    assert case not in {labels["case"] for labels in excluded}


async def test_regex_alternations_select_exactly_the_named_series(
    client: PrometheusClient, hostile_series: HostileSeries
) -> None:
    async def cases_matching(values: list[str], operator: str = "=~") -> set[str]:
        matchers = [("run", "=", hostile_series.run), ("object", operator, regex_alternation(values))]
        return {labels["case"] for labels in labels_of(await client.query(selector(HOSTILE_METRIC, matchers)))}

    # '.*' and 'a|b' as literal names must not turn into "anything" or "a or b".
    assert await cases_matching([".*", "a|b"]) == {"regex_any", "regex_alternation"}
    assert await cases_matching(["a", "b", "x", "anything", ""]) == set()
    assert await cases_matching(list(HOSTILE_VALUES.values())) == set(HOSTILE_VALUES)
    chosen = ['say "hi"', "line one\nline two", "C:\\temp\\", "(x)[y]{2}+?^$"]
    assert await cases_matching(chosen, "!~") == set(HOSTILE_VALUES) - {
        "double_quote",
        "newline",
        "backslash",
        "regex_group",
    }


@pytest.mark.parametrize("injection", INJECTIONS_THAT_MUST_MATCH_NOTHING)
async def test_injection_attempts_match_nothing_and_parse(
    injection: str, client: PrometheusClient, hostile_series: HostileSeries
) -> None:
    for operator, value in (("=", injection), ("=~", regex_alternation([injection]))):
        matchers = [("run", "=", hostile_series.run), ("object", operator, value)]
        result = await client.query(selector(HOSTILE_METRIC, matchers))
        assert result.error is None, f"{operator}: {result.error}"
        assert result.series == [], f"{operator} {injection!r} selected {result.series}"
    # Used inside a larger expression, the selector still stands for one operand only.
    wrapped = f"sum by (case) ({selector(HOSTILE_METRIC, {'run': hostile_series.run, 'object': injection})})"
    assert labels_of(await client.query(wrapped)) == []


async def test_the_control_experiment_unescaped_values_do_inject(
    client: PrometheusClient, hostile_series: HostileSeries
) -> None:
    """Without escaping, the same values break the query or change its meaning: the tests above can fail."""

    def naive(value: str) -> str:
        return f'{HOSTILE_METRIC}{{run="{hostile_series.run}", object="{value}"}}'

    injected = await client.query(naive('x"} or vector(1) or up{y="'))
    assert injected.error is None
    assert {} in [series.labels for series in injected.series], "vector(1) got in"
    broken = await client.query(naive(HOSTILE_VALUES["close_and_or"]))
    assert "parse error" in (broken.error or ""), broken.error
    raw_newline = await client.query(naive(HOSTILE_VALUES["newline"]))
    assert (raw_newline.error or "").startswith("HTTP 400 bad_data"), raw_newline.error
    assert "unterminated quoted string" in (raw_newline.error or "")


async def test_the_string_literal_rules_the_escaping_relies_on(client: PrometheusClient) -> None:
    """Prometheus 2.42's double-quoted literals: which escapes it accepts and which it refuses."""
    accepted = {
        r'"a\"b"': 'a"b',
        r'"a\\b"': "a\\b",
        r'"a\nb"': "a\nb",
        r'"a\rb\tc"': "a\rb\tc",
        r'"\u0000\u001b\u007f\u0085\u202e"': "\x00\x1b\x7f\x85\u202e",
        r'"\U0001f600"': "😀",
        '"{}\'`"': "{}'`",
        '"raw\ttab"': "raw\ttab",
    }
    for literal, expected in accepted.items():
        result = await client.query(f'label_replace(vector(1), "v", {literal}, "", "")')
        assert result.error is None, f"{literal}: {result.error}"
        assert result.series[0].labels == {"v": expected}, literal
    refused = {
        '"a\nb"': "unterminated quoted string",
        r'"a\'b"': "unknown escape sequence",
        r'"a\qb"': "unknown escape sequence",
        r'"\ud800"': "invalid Unicode code point",
    }
    for literal, problem in refused.items():
        result = await client.query(f'label_replace(vector(1), "v", {literal}, "", "")')
        assert problem in (result.error or ""), f"{literal}: {result.error}"


async def test_metrics_named_like_keywords_still_parse(client: PrometheusClient) -> None:
    for word in sorted(PROMQL_RESERVED_WORDS):
        for name in (word, word.upper()):
            result = await client.query(selector(name, {"job": "nothing-here"}))
            assert result.error is None, f"{name}: {result.error}"
            assert result.series == []


async def test_metric_names_discovers_the_families(
    client: PrometheusClient, hostile_series: HostileSeries, lab: cluster.Lab
) -> None:
    del hostile_series  # needed for its series only
    names = await client.metric_names()
    assert names is not None
    assert {HEARTBEATS, HOSTILE_METRIC, "up", "scrape_duration_seconds"} <= names
    sent = client.figures().queries_sent
    assert await client.metric_names() == names
    assert client.figures().queries_sent == sent, "the second call is answered from the cache"


async def test_with_prometheus_stopped_the_batch_fails_fast_within_the_budget(lab: cluster.Lab) -> None:
    client = PrometheusClient(PrometheusSettings(url=lab.prometheus_url, metric_names_ttl_seconds=0))
    try:
        assert await client.ping()
        end = datetime.now(UTC)
        queries = [
            RangeQuery(f"rate({HEARTBEATS}[{minutes}m])", end - timedelta(hours=1), end, 15) for minutes in (1, 5)
        ]
        lab.stop_component("prometheus")
        try:
            started = time.monotonic()
            results = await client.run_batch(queries * 4, budget_seconds=3)
            elapsed = time.monotonic() - started
            assert elapsed < 3 + SCHEDULING_SLACK_SECONDS
            assert len(results) == 8
            for result in results:
                assert (result.error or "").startswith("connection refused by 127.0.0.1:"), result.error
                assert result.series == []
            assert not await client.ping()
            assert await client.metric_names() is None
            assert client.figures().errors >= 9
        finally:
            lab.start_component("prometheus")
        # The same client (and its pooled session) recovers once Prometheus is back.
        assert await client.ping()
        assert (await client.query(HEARTBEATS)).error is None
    finally:
        client.close()
