"""The lab fault proxy's pure parts: what a request is matched on, and the bodies each fault serves, read back by
the operator's own response parser (its behaviour in front of a real Prometheus is proven by the lab tests)."""

from __future__ import annotations

import json
import re
import urllib.parse

import pytest

from inquest.clients.prometheus import parse_query_response
from inquest.lab.faultproxy import (
    DEFAULT_WARNING,
    FaultRule,
    Healthy,
    InvalidJson,
    Partial,
    ServerError,
    Slow,
    describe_request,
    error_body,
    mode_name,
    partial_body,
    truncated_body,
)

QUERY = 'sum by (code) (rate(http_requests_total{namespace="shop"}[2m]))'


def matrix(count: int, warnings: list[str] | None = None) -> bytes:
    document: dict[str, object] = {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [{"metric": {"code": str(200 + index)}, "values": [[1.0, str(index)]]} for index in range(count)],
        },
    }
    if warnings is not None:
        document["warnings"] = warnings
    return json.dumps(document).encode()


def test_a_request_is_described_by_its_path_and_expressions_from_the_form_and_the_url() -> None:
    form = urllib.parse.urlencode({"query": QUERY, "start": "1", "end": "2", "step": "15"}).encode()
    assert describe_request("/api/v1/query_range", "", form) == f"/api/v1/query_range {QUERY}"
    names = urllib.parse.urlencode({"match[]": '{__name__=~"up|http_requests_total"}', "start": "0"})
    assert describe_request("/api/v1/label/__name__/values", names, b"") == (
        '/api/v1/label/__name__/values {__name__=~"up|http_requests_total"}'
    )
    assert describe_request("/api/v1/label/__name__/values", "", b"") == "/api/v1/label/__name__/values"


def test_a_rule_applies_its_mode_only_to_the_requests_it_matches() -> None:
    everything = FaultRule(ServerError(502))
    assert everything.mode_for("/api/v1/query 1") == ServerError(502)
    some = FaultRule(Slow(3.0), matching="http_requests_total")
    assert some.mode_for(f"/api/v1/query_range {QUERY}") == Slow(3.0)
    assert some.mode_for("/api/v1/query_range up") == Healthy()
    assert FaultRule().mode_for("/api/v1/query 1") == Healthy()
    with pytest.raises(re.error, match="unterminated"):
        FaultRule(InvalidJson(), matching="(")


@pytest.mark.parametrize(
    ("mode", "name"),
    [(Healthy(), "Healthy"), (Slow(1.5), "Slow"), (ServerError(), "ServerError"), (InvalidJson(), "InvalidJson")],
)
def test_modes_are_counted_by_name(mode: Healthy | Slow | ServerError | InvalidJson, name: str) -> None:
    assert mode_name(mode) == name


def test_modes_refuse_values_that_would_not_be_the_fault_they_name() -> None:
    with pytest.raises(ValueError, match="5xx"):
        ServerError(404)
    with pytest.raises(ValueError, match="zero or more"):
        Slow(-1.0)
    with pytest.raises(ValueError, match="between 0 and 1"):
        Partial(drop_share=1.5)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_server_error_is_the_apis_error_envelope_and_reads_as_that_status(status: int) -> None:
    body = error_body(status)
    document = json.loads(body)
    assert document["status"] == "error"
    result = parse_query_response(QUERY, status, body)
    assert result.error is not None
    assert result.error.startswith(f"HTTP {status} {document['errorType']}: fault injected"), result.error


@pytest.mark.parametrize("body", [matrix(3), matrix(0), b"{}", b'{"a":1}'])
def test_a_truncated_answer_is_never_json(body: bytes) -> None:
    cut = truncated_body(body)
    assert len(cut) < len(body)
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut)
    result = parse_query_response(QUERY, 200, cut)
    assert result.error is not None
    assert result.error.startswith("invalid JSON in the response"), result.error


def test_partial_adds_its_warning_to_those_already_there_and_keeps_the_data_by_default() -> None:
    marked = partial_body(matrix(4, warnings=["store eu-1 timed out"]), Partial())
    result = parse_query_response(QUERY, 200, marked)
    assert result.ok
    assert result.partial
    assert result.warnings == ["store eu-1 timed out", DEFAULT_WARNING]
    assert len(result.series) == 4


@pytest.mark.parametrize(("share", "kept"), [(0.5, 2), (0.25, 3), (1.0, 0), (0.0, 4)])
def test_partial_drops_the_last_share_of_the_results(share: float, kept: int) -> None:
    result = parse_query_response(QUERY, 200, partial_body(matrix(4), Partial("one store down", share)))
    assert result.warnings == ["one store down"]
    assert [series.labels["code"] for series in result.series] == [str(200 + index) for index in range(kept)]


def test_partial_marks_answers_that_are_not_query_results_and_leaves_failures_alone() -> None:
    names = json.loads(partial_body(b'{"status": "success", "data": ["up", "http_requests_total"]}', Partial()))
    assert names == {"status": "success", "data": ["up", "http_requests_total"], "warnings": [DEFAULT_WARNING]}
    failure = error_body(503)
    assert partial_body(failure, Partial()) == failure
    assert partial_body(b"<html>bad gateway</html>", Partial()) == b"<html>bad gateway</html>"
