"""The Prometheus client: settings, response parsing with plain data, and protocol behaviours via a stub peer.

The aiohttp stub only produces what a real Prometheus cannot easily be made to do (5xx, invalid JSON,
stalls, trickled bodies, warnings) and records what arrives (headers, form, connections). Real queries,
escaping and outages are proven against the lab's Prometheus in tests/integration/test_prometheus_client_lab.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from aiohttp import web
from pydantic import ValidationError

from inquest.clients.prometheus import (
    MAX_POINTS_PER_SERIES,
    PrometheusClient,
    PrometheusSettings,
    QueryResult,
    RangeQuery,
    Series,
    describe_request_error,
    parse_query_response,
)
from inquest.lab import procs

NOW = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
# Generous slack for a shared 2-core machine: what matters is "about the budget", not "forever".
SCHEDULING_SLACK_SECONDS = 0.75


def body(document: object) -> bytes:
    return json.dumps(document).encode()


def matrix(*series: tuple[dict[str, str], list[list[Any]]], warnings: list[str] | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "status": "success",
        "data": {"resultType": "matrix", "result": [{"metric": labels, "values": values} for labels, values in series]},
    }
    if warnings is not None:
        document["warnings"] = warnings
    return document


# --- parsing, with plain data -------------------------------------------------------------------------------


def test_parse_matrix() -> None:
    document = matrix(
        ({"__name__": "up", "job": "a"}, [[1714557600, "1"], [1714557615.5, "0"]]),
        ({"__name__": "up", "job": "b"}, [[1714557600, "NaN"], [1714557615, "+Inf"], [1714557630, "-Inf"]]),
    )
    result = parse_query_response("up", 200, body(document), 0.25)
    assert result.ok
    assert not result.partial
    assert result.elapsed_seconds == 0.25
    assert result.series[0] == Series({"__name__": "up", "job": "a"}, [(1714557600.0, 1.0), (1714557615.5, 0.0)])
    labels, samples = result.series[1]  # a Series unpacks as (labels, samples)
    assert labels["job"] == "b"
    assert samples[0][1] != samples[0][1]  # NaN
    assert samples[1][1] == float("inf")
    assert samples[2][1] == float("-inf")


def test_parse_vector_and_scalar() -> None:
    vector = {
        "status": "success",
        "data": {"resultType": "vector", "result": [{"metric": {"pod": 'a"b'}, "value": [1714557600.123, "42"]}]},
    }
    assert parse_query_response("q", 200, body(vector)).series == [Series({"pod": 'a"b'}, [(1714557600.123, 42.0)])]
    scalar = {"status": "success", "data": {"resultType": "scalar", "result": [1714557600, "1"]}}
    assert parse_query_response("1", 200, body(scalar)).series == [Series({}, [(1714557600.0, 1.0)])]
    empty = {"status": "success", "data": {"resultType": "vector", "result": []}}
    assert parse_query_response("q", 200, body(empty)) == QueryResult("q")


def test_parse_warnings_mark_a_partial_result() -> None:
    document = matrix(({"job": "a"}, [[1, "1"]]), warnings=["store eu-1 did not answer: partial response"])
    result = parse_query_response("q", 200, body(document))
    assert result.ok
    assert result.partial
    assert result.warnings == ["store eu-1 did not answer: partial response"]
    assert len(result.series) == 1


def test_parse_native_histogram_samples_are_left_out() -> None:
    document = {
        "status": "success",
        "data": {"resultType": "vector", "result": [{"metric": {"job": "a"}, "histogram": [1, {"count": "3"}]}]},
    }
    assert parse_query_response("q", 200, body(document)).series == [Series({"job": "a"}, [])]


@pytest.mark.parametrize(
    ("status", "payload", "expected"),
    [
        (
            400,
            body({"status": "error", "errorType": "bad_data", "error": "1:5: parse error: unexpected }"}),
            "HTTP 400 bad_data: 1:5: parse error: unexpected }",
        ),
        (
            503,
            body({"status": "error", "errorType": "unavailable", "error": "too many queries"}),
            "HTTP 503 unavailable: too many queries",
        ),
        (502, b"<html>Bad Gateway</html>\n", "HTTP 502: <html>Bad Gateway</html>"),
        (503, b"", "HTTP 503: (empty body)"),
        (200, b"not json{", "invalid JSON in the response"),
        (200, b'{"status": "success", "data": {"resultType": "matrix", "result": [', "invalid JSON in the response"),
        (200, body({"status": "error", "errorType": "timeout", "error": "query timed out"}), "query failed timeout"),
        (200, body(["not", "an", "object"]), "query failed: "),
        (200, body({"status": "success", "data": {"resultType": "string", "result": [1, "x"]}}), "unexpected"),
        (200, body({"status": "success", "data": {"resultType": "matrix", "result": [{"values": []}]}}), "unexpected"),
        (200, body(matrix(({"job": "a"}, [[1, "1", "extra"]]))), "unexpected response shape"),
        (200, body(matrix(({"job": "a"}, [[1, "one"]]))), "unexpected response shape"),
        (
            200,
            body({"status": "success", "data": {"resultType": "vector", "result": [{"metric": {"a": 1}}]}}),
            "unexpected",
        ),
    ],
)
def test_parse_failures_become_errors(status: int, payload: bytes, expected: str) -> None:
    result = parse_query_response("q", status, payload, 0.5)
    assert (result.error or "").startswith(expected), result.error
    assert not result.ok
    assert result.series == []
    assert result.elapsed_seconds == 0.5


def test_error_text_is_kept_short() -> None:
    result = parse_query_response("q", 500, b"x" * 100_000)
    assert result.error is not None
    assert len(result.error) < 400


def test_range_query_validation() -> None:
    assert RangeQuery("up", NOW - timedelta(hours=1), NOW, 15).step_seconds == 15
    with pytest.raises(ValueError, match="before start"):
        RangeQuery("up", NOW, NOW - timedelta(minutes=1), 15)
    with pytest.raises(ValueError, match="step_seconds must be a positive number"):
        RangeQuery("up", NOW - timedelta(hours=1), NOW, 0)
    with pytest.raises(ValueError, match="query is empty"):
        RangeQuery("  ", NOW - timedelta(hours=1), NOW, 15)
    with pytest.raises(ValueError, match=f"limit of {MAX_POINTS_PER_SERIES}"):
        RangeQuery("up", NOW - timedelta(days=7), NOW, 15)


def test_settings_defaults_and_url_normalisation() -> None:
    settings = PrometheusSettings(url="http://prometheus.monitoring:9090/")
    assert settings.url == "http://prometheus.monitoring:9090"
    assert (settings.query_timeout_seconds, settings.budget_seconds, settings.max_concurrency) == (2.0, 3.0, 4)
    assert PrometheusSettings(url="https://mimir.example/prometheus/").url == "https://mimir.example/prometheus"


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"url": "prometheus:9090"}, "must be http(s)://"),
        ({"url": "ftp://prometheus"}, "must be http(s)://"),
        ({"url": "http://user:pw@prometheus"}, "credentials"),
        ({"url": "http://prometheus/api/v1"}, "without /api/v1"),
        ({"url": "http://prometheus?x=1"}, "query or fragment"),
        ({"bearer_token": "t", "basic_auth_username": "u"}, "one authentication method"),
        ({"bearer_token": "t", "bearer_token_file": "/token"}, "one authentication method"),
        ({"basic_auth_password": "p"}, "needs basic_auth_username"),
        ({"bearer_token": "t", "extra_headers": {"Authorization": "Basic x"}}, "conflicts"),
        ({"extra_headers": {"X Scope": "a"}}, "invalid HTTP header name"),
        ({"extra_headers": {"X-Scope-OrgID": "a\r\nInjected: 1"}}, "CR, LF or NUL"),
        ({"ca_file": "/ca.crt", "insecure_skip_verify": True}, "contradict"),
        ({"query_timeout_seconds": 0}, "greater than 0"),
        ({"max_concurrency": 0}, "greater than or equal to 1"),
        ({"unknown": 1}, "Extra inputs"),
    ],
)
def test_settings_refuse_bad_configuration(fields: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(problem)):
        PrometheusSettings.model_validate({"url": "http://prometheus:9090", **fields})


def test_settings_repr_hides_secrets() -> None:
    settings = PrometheusSettings(
        url="http://p:9090", bearer_token="s3cret-token", extra_headers={"X-Api-Key": "s3cret-key"}
    )
    assert "s3cret" not in repr(settings)


def test_describe_a_refused_connection_through_the_wrapping() -> None:
    with pytest.raises(requests.ConnectionError) as refused:
        requests.get(f"http://127.0.0.1:{procs.free_port()}/", timeout=2)
    assert describe_request_error(refused.value, 2, "127.0.0.1:1") == ("connection refused by 127.0.0.1:1", False)
    assert describe_request_error(requests.ReadTimeout("slow"), 2, "h") == ("timeout after 2s", True)
    assert describe_request_error(RuntimeError("odd"), 2, "h") == ("request failed: RuntimeError: odd", False)


# --- protocol behaviours, against a stub peer ---------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class SeenRequest:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]
    query: dict[str, str]
    client_port: int


@dataclass
class StubPeer:
    url: str
    seen: list[SeenRequest] = field(default_factory=list)
    handlers: dict[str, Handler] = field(default_factory=dict)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def settings(self, **overrides: Any) -> PrometheusSettings:
        return PrometheusSettings.model_validate({"url": self.url, **overrides})


async def ok_matrix(_request: web.Request) -> web.StreamResponse:
    return web.json_response(matrix(({"__name__": "up", "job": "stub"}, [[1714557600, "1"]])))


async def ok_names(_request: web.Request) -> web.StreamResponse:
    return web.json_response({"status": "success", "data": ["up", "http_requests_total"]})


@pytest.fixture
async def stub() -> AsyncIterator[StubPeer]:
    peer = StubPeer(url="")

    async def dispatch(request: web.Request) -> web.StreamResponse:
        form = {key: str(value) for key, value in (await request.post()).items()}
        peername = request.transport.get_extra_info("peername") if request.transport else None
        peer.seen.append(
            SeenRequest(
                request.method,
                request.path,
                dict(request.headers),
                form,
                dict(request.query),
                peername[1] if peername else -1,
            )
        )
        endpoint = request.path.rsplit("/api/v1/", 1)[-1]
        default: Handler = ok_names if endpoint.startswith("label/") else ok_matrix
        return await peer.handlers.get(endpoint, default)(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", dispatch)
    runner = web.AppRunner(app, shutdown_timeout=0.2)
    await runner.setup()
    port = procs.free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    peer.url = f"http://127.0.0.1:{port}"
    try:
        yield peer
    finally:
        peer.release.set()  # lets stalled handlers end before the server stops
        await runner.cleanup()


MakeClient = Callable[[PrometheusSettings], PrometheusClient]


@pytest.fixture
def make_client() -> Iterator[MakeClient]:
    clients: list[PrometheusClient] = []

    def build(settings: PrometheusSettings) -> PrometheusClient:
        client = PrometheusClient(settings)
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.close()


def stalling(peer: StubPeer) -> Handler:
    async def handler(_request: web.Request) -> web.StreamResponse:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(peer.release.wait(), timeout=30)
        return web.json_response(matrix())

    return handler


async def test_a_range_query_posts_the_form_to_api_v1(stub: StubPeer, make_client: MakeClient) -> None:
    client = make_client(stub.settings())
    result = await client.query_range('up{job="a"}', NOW - timedelta(minutes=10), NOW, 15)
    assert result.ok, result.error
    assert result.series == [Series({"__name__": "up", "job": "stub"}, [(1714557600.0, 1.0)])]
    [seen] = stub.seen
    assert (seen.method, seen.path) == ("POST", "/api/v1/query_range")
    assert seen.form == {
        "query": 'up{job="a"}',
        "start": str(int((NOW - timedelta(minutes=10)).timestamp())),
        "end": str(int(NOW.timestamp())),
        "step": "15",
        "timeout": "2000ms",  # the server stops working when we stop waiting
    }


async def test_an_instant_query_sends_its_time(stub: StubPeer, make_client: MakeClient) -> None:
    client = make_client(stub.settings())
    await client.query("up", at=NOW + timedelta(milliseconds=250))
    await client.query("up")
    assert stub.seen[0].form["time"] == f"{NOW.timestamp() + 0.25:.2f}"
    assert "time" not in stub.seen[1].form
    assert stub.seen[0].path == "/api/v1/query"


async def test_a_path_prefix_is_kept(stub: StubPeer, make_client: MakeClient) -> None:
    client = make_client(PrometheusSettings(url=f"{stub.url}/prometheus/"))
    assert await client.ping()
    assert await client.metric_names() == {"up", "http_requests_total"}
    assert [seen.path for seen in stub.seen] == ["/prometheus/api/v1/query", "/prometheus/api/v1/label/__name__/values"]


async def test_http_5xx_is_an_error_without_retries(stub: StubPeer, make_client: MakeClient) -> None:
    async def unavailable(_request: web.Request) -> web.StreamResponse:
        return web.Response(status=503, text="upstream connect error")

    stub.handlers["query_range"] = unavailable
    client = make_client(stub.settings())
    started = time.monotonic()
    result = await client.query_range("up", NOW - timedelta(minutes=5), NOW, 15)
    assert result.error == "HTTP 503: upstream connect error"
    assert len(stub.seen) == 1  # the library's default would retry with back-off, past the budget
    assert time.monotonic() - started < 1
    assert client.figures().errors == 1


async def test_invalid_json_is_an_error(stub: StubPeer, make_client: MakeClient) -> None:
    async def garbage(_request: web.Request) -> web.StreamResponse:
        return web.Response(text='{"status": "success", "data": ', content_type="application/json")

    stub.handlers["query"] = garbage
    client = make_client(stub.settings())
    result = await client.query("up")
    assert (result.error or "").startswith("invalid JSON"), result.error


async def test_partial_results_carry_the_warnings(stub: StubPeer, make_client: MakeClient) -> None:
    async def partial(_request: web.Request) -> web.StreamResponse:
        document = matrix(({"job": "a"}, [[1714557600, "3"]]), warnings=["receiver eu-2 unreachable"])
        return web.json_response(document)

    stub.handlers["query_range"] = partial
    client = make_client(stub.settings())
    result = await client.query_range("up", NOW - timedelta(minutes=5), NOW, 15)
    assert result.ok
    assert result.partial
    assert result.warnings == ["receiver eu-2 unreachable"]
    assert result.series == [Series({"job": "a"}, [(1714557600.0, 3.0)])]


async def test_a_stalled_query_times_out_and_the_coroutine_returns(stub: StubPeer, make_client: MakeClient) -> None:
    stub.handlers["query"] = stalling(stub)
    client = make_client(stub.settings(query_timeout_seconds=0.4))
    started = time.monotonic()
    result = await client.query("up")
    elapsed = time.monotonic() - started
    assert result.error == "timeout after 0.4s"
    assert 0.35 <= elapsed < 0.4 + SCHEDULING_SLACK_SECONDS
    assert client.figures().timeouts == 1


async def test_a_trickling_body_is_cut_at_the_timeout(stub: StubPeer, make_client: MakeClient) -> None:
    async def trickle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        # Every write beats the per-read timeout; only a total limit ends it.
        for _ in range(300):
            if stub.release.is_set():
                break
            await response.write(b" ")
            await asyncio.sleep(0.05)
        return response

    stub.handlers["query"] = trickle
    client = make_client(stub.settings(query_timeout_seconds=0.5, max_concurrency=1))
    result = await client.query("up")
    assert result.error == "timeout after 0.5s"
    # With a single worker, a prompt answer to the next query shows the thread gave up the body too.
    stub.handlers["query"] = ok_matrix
    started = time.monotonic()
    follow_up = await client.query("up")
    assert follow_up.ok, follow_up.error
    assert time.monotonic() - started < 0.5 + SCHEDULING_SLACK_SECONDS


async def test_a_batch_returns_every_result_in_order_within_the_budget(stub: StubPeer, make_client: MakeClient) -> None:
    async def by_query(request: web.Request) -> web.StreamResponse:
        query = str((await request.post())["query"])
        if query == "slow":
            return await stalling(stub)(request)
        if query == "unavailable":
            return web.Response(status=503, text="overloaded")
        if query == "garbage":
            return web.Response(text="<html>", content_type="text/html")
        return await ok_matrix(request)

    stub.handlers["query_range"] = by_query
    client = make_client(stub.settings(query_timeout_seconds=0.5))
    texts = ["good", "slow", "unavailable", "garbage", "good"]
    queries = [RangeQuery(text, NOW - timedelta(minutes=5), NOW, 15) for text in texts]
    started = time.monotonic()
    results = await client.run_batch(queries, budget_seconds=1.0)
    elapsed = time.monotonic() - started
    assert [result.query for result in results] == texts
    assert [result.error for result in results] == [
        None,
        "timeout after 0.5s",
        "HTTP 503: overloaded",
        results[3].error,
        None,
    ]
    assert (results[3].error or "").startswith("invalid JSON")
    assert elapsed < 1.0 + SCHEDULING_SLACK_SECONDS
    figures = client.figures()
    assert (figures.queries_sent, figures.errors, figures.timeouts) == (5, 3, 1)
    assert figures.total_query_seconds >= 0.5


async def test_a_batch_larger_than_the_pool_stops_at_the_budget(stub: StubPeer, make_client: MakeClient) -> None:
    stub.handlers["query_range"] = stalling(stub)
    client = make_client(stub.settings(query_timeout_seconds=2, max_concurrency=2))
    queries = [RangeQuery(f"q{index}", NOW - timedelta(minutes=5), NOW, 15) for index in range(6)]
    started = time.monotonic()
    results = await client.run_batch(queries, budget_seconds=0.6)
    elapsed = time.monotonic() - started
    assert elapsed < 0.6 + SCHEDULING_SLACK_SECONDS
    assert [result.error for result in results[:2]] == ["timeout after 0.6s", "timeout after 0.6s"]
    for result in results[2:]:
        assert (result.error or "").startswith("not run: the budget ran out"), result.error
    assert client.figures().queries_sent == 2  # the queued ones were dropped, never sent


async def test_connections_are_kept_open_and_reused(stub: StubPeer, make_client: MakeClient) -> None:
    client = make_client(stub.settings())
    for _ in range(5):
        assert (await client.query("up")).ok
    assert await client.metric_names() is not None  # through PrometheusConnect, on the same session
    assert len({seen.client_port for seen in stub.seen}) == 1
    queries = [RangeQuery(f"q{index}", NOW - timedelta(minutes=5), NOW, 15) for index in range(12)]
    assert all(result.ok for result in await client.run_batch(queries))
    assert len({seen.client_port for seen in stub.seen}) <= client.settings.max_concurrency


async def test_bearer_token_and_tenant_header_arrive(stub: StubPeer, make_client: MakeClient) -> None:
    client = make_client(stub.settings(bearer_token="t0ken", extra_headers={"X-Scope-OrgID": "team-a"}))
    await client.query("up")
    await client.metric_names()
    for seen in stub.seen:  # the query path and the library's call alike
        assert seen.headers["Authorization"] == "Bearer t0ken"
        assert seen.headers["X-Scope-OrgID"] == "team-a"
        assert seen.headers["User-Agent"].startswith("inquest/")


async def test_basic_auth_arrives(stub: StubPeer, make_client: MakeClient) -> None:
    client = make_client(stub.settings(basic_auth_username="reader", basic_auth_password="pa:ss"))
    await client.query("up")
    await client.metric_names()
    # base64("reader:pa:ss")
    assert [seen.headers["Authorization"] for seen in stub.seen] == ["Basic cmVhZGVyOnBhOnNz"] * 2


async def test_a_rotated_token_file_is_picked_up(stub: StubPeer, make_client: MakeClient, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("first\n")
    client = make_client(stub.settings(bearer_token_file=str(token_file)))
    await client.query("up")
    token_file.write_text("second-token\n")
    await client.query("up")
    assert [seen.headers["Authorization"] for seen in stub.seen] == ["Bearer first", "Bearer second-token"]
    token_file.unlink()
    result = await client.query("up")
    assert (result.error or "").startswith("cannot read bearer_token_file"), result.error
    assert len(stub.seen) == 2


async def test_metric_names_are_cached_and_failures_are_not(stub: StubPeer, make_client: MakeClient) -> None:
    client = make_client(stub.settings())
    assert await client.metric_names() == {"up", "http_requests_total"}
    assert await client.metric_names() == {"up", "http_requests_total"}
    assert len(stub.seen) == 1
    assert "start" in stub.seen[0].query  # only recently active families

    async def unavailable(_request: web.Request) -> web.StreamResponse:
        return web.Response(status=503, text="down")

    stub.handlers["label/__name__/values"] = unavailable
    uncached = make_client(stub.settings(metric_names_ttl_seconds=0))
    assert await uncached.metric_names() is None
    assert await uncached.metric_names() is None
    assert len(stub.seen) == 3
    assert uncached.figures().errors == 2


async def test_cached_metric_names_look_again_for_the_expected_names_they_lack(
    stub: StubPeer, make_client: MakeClient
) -> None:
    existing = ["up", "http_requests_total"]

    async def names(request: web.Request) -> web.StreamResponse:
        selector = request.query.get("match[]")
        if selector is None:
            return web.json_response({"status": "success", "data": existing})
        wanted = re.fullmatch(r'\{__name__=~"(.*)"\}', selector)
        assert wanted is not None, selector
        found = [name for name in wanted.group(1).split("|") if name in existing]
        return web.json_response({"status": "success", "data": found})

    stub.handlers["label/__name__/values"] = names
    client = make_client(stub.settings())
    assert await client.metric_names(expected={"up", "istio_requests_total"}) == {"up", "http_requests_total"}
    assert len(stub.seen) == 1  # a fresh list is the whole answer
    # A family that appears after the list was cached is found by the next call, through a narrow look-up ...
    existing.append("istio_requests_total")
    assert await client.metric_names(expected={"up", "istio_requests_total", "x_total"}) == {
        "up",
        "http_requests_total",
        "istio_requests_total",
    }
    assert stub.seen[1].query["match[]"] == '{__name__=~"istio_requests_total|x_total"}'
    assert "start" in stub.seen[1].query
    # ... and kept: names the cache has are not asked for again, nor is anything when nothing is expected.
    assert "istio_requests_total" in (await client.metric_names(expected={"istio_requests_total"}) or set())
    assert await client.metric_names() == {"up", "http_requests_total", "istio_requests_total"}
    assert len(stub.seen) == 2

    async def unavailable(_request: web.Request) -> web.StreamResponse:
        return web.Response(status=503, text="down")

    # When the narrow look-up fails, the cached list stands (the absent name stays absent, nothing is lost).
    stub.handlers["label/__name__/values"] = unavailable
    assert await client.metric_names(expected={"x_total"}) == {"up", "http_requests_total", "istio_requests_total"}
    assert len(stub.seen) == 3


async def test_metric_names_with_invalid_json_is_none(stub: StubPeer, make_client: MakeClient) -> None:
    async def garbage(_request: web.Request) -> web.StreamResponse:
        return web.Response(text="{", content_type="application/json")

    stub.handlers["label/__name__/values"] = garbage
    client = make_client(stub.settings())
    assert await client.metric_names() is None


async def test_ping_is_false_on_a_server_error(stub: StubPeer, make_client: MakeClient) -> None:
    async def failing(_request: web.Request) -> web.StreamResponse:
        return web.Response(status=500, text="boom")

    client = make_client(stub.settings())
    assert await client.ping()
    stub.handlers["query"] = failing
    assert not await client.ping()


async def test_an_oversized_response_is_refused(stub: StubPeer, make_client: MakeClient) -> None:
    async def huge(_request: web.Request) -> web.StreamResponse:
        return web.Response(body=b" " * 200_000, content_type="application/json")

    stub.handlers["query"] = huge
    client = make_client(stub.settings(max_response_bytes=100_000))
    result = await client.query("up")
    assert result.error == "response larger than 100000 bytes: narrow the query"


async def test_connection_refused_and_closed_client(make_client: MakeClient) -> None:
    port = procs.free_port()
    client = make_client(PrometheusSettings(url=f"http://127.0.0.1:{port}"))
    result = await client.query("up")
    assert result.error == f"connection refused by 127.0.0.1:{port}"
    assert not await client.ping()
    assert await client.metric_names() is None
    client.close()
    assert (await client.query("up")).error == "client is closed"
    assert await client.run_batch([RangeQuery("up", NOW - timedelta(minutes=1), NOW, 15)]) == [
        QueryResult("up", error="client is closed")
    ]
