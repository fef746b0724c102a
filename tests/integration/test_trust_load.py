"""Load, in its own lab: 25 Investigations created at once while 1,000 kwok pods churn at 100 or more updates per
second. The figures come from the same code as `python -m inquest.lab bench-load` (the long run, in `make bench`);
here they are judged: every Investigation concludes in time, in one round, with at most one Event, and the
operator's writes per Investigation stay within what the service is designed to make."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from inquest.lab import cluster
from inquest.lab.bench_load import MIN_CHURN_PER_SECOND, LoadFigures, LoadOptions, measure, render

pytestmark = pytest.mark.lab

INVESTIGATIONS = 25
# Per Investigation, from its create call to its Concluded status (the bench's own timeout). On this 2-core
# machine 25 at once conclude within about 10 s; the margin is for a machine shared with other labs.
ANSWER_TIMEOUT_SECONDS = 60.0
# The service writes once per generation: the status patch, then one Event because the Concluded reason changed
# (from none to the verdict). No notifier is configured, and kopf writes nothing (posting off, no finalizers).
WRITES_PER_INVESTIGATION = 2


@pytest.fixture(scope="module")
def figures() -> Iterator[LoadFigures]:
    name = f"trust-load-{os.getpid()}"
    lab = cluster.up(name)
    try:
        measured = measure(
            lab,
            LoadOptions(
                pods=1_000,
                deployments=100,
                namespaces=2,
                events=1_000,
                series=False,
                investigations=INVESTIGATIONS,
                churn_per_second=150.0,
                seconds_before=5.0,
                answer_timeout=ANSWER_TIMEOUT_SECONDS,
                output=None,
            ),
        )
        print(render(measured))  # shown with a failure (pytest's captured output of the setup)
        yield measured
    finally:
        cluster.down(name)


def test_every_investigation_concludes_within_the_timeout(figures: LoadFigures) -> None:
    assert figures.create_failures == []
    assert figures.missing == {}, f"not concluded in {ANSWER_TIMEOUT_SECONDS:.0f} s: {figures.missing}"
    assert len(figures.created) == INVESTIGATIONS
    assert sorted(figures.latencies) == figures.created
    assert max(figures.latencies.values()) < ANSWER_TIMEOUT_SECONDS
    assert "no Concluded condition" not in figures.verdicts
    assert figures.problems == []


def test_each_investigation_is_answered_in_exactly_one_round(figures: LoadFigures) -> None:
    assert figures.rounds == dict.fromkeys(figures.created, 1)


def test_at_most_one_event_per_investigation(figures: LoadFigures) -> None:
    assert set(figures.events) == set(figures.created)
    assert max(figures.events.values()) <= 1, figures.events
    # Every first answer changes the Concluded reason, so each has its one Event; the audit log agrees.
    assert sum(figures.events.values()) == figures.audit.event_creates == INVESTIGATIONS


def test_api_writes_per_investigation_are_a_status_patch_and_an_event(figures: LoadFigures) -> None:
    audit = figures.audit
    assert audit.status_patches == dict.fromkeys(figures.created, 1)
    assert audit.other_writes == {}
    assert audit.writes <= WRITES_PER_INVESTIGATION * INVESTIGATIONS
    # Investigations read the operator's cache, never the API: the only reads in the window are watches that
    # happen to be re-opened in it (one per informer at most).
    assert audit.reads < INVESTIGATIONS / 2, audit


def test_the_churn_reached_100_updates_per_second_in_every_view(figures: LoadFigures) -> None:
    churn = figures.churn
    assert churn.failures == 0, churn.last_error
    assert churn.window_rate >= MIN_CHURN_PER_SECOND
    assert churn.churner_rate >= MIN_CHURN_PER_SECOND
    assert churn.api_server_rate >= MIN_CHURN_PER_SECOND
    assert churn.operator_rate is not None
    assert churn.operator_rate >= MIN_CHURN_PER_SECOND


def test_the_operators_memory_and_watches_held(figures: LoadFigures) -> None:
    assert 0 < figures.peak_rss_mib < 500
    # 25 answers and a few thousand pod updates add little to a warm operator (134 to 135 MiB when measured).
    assert figures.window_peak_rss_mib - figures.rss_before_mib < 64
    assert figures.operator_counters["inquest_informer_restarts_total"] == 0
    assert figures.operator_counters["inquest_informer_stalls_total"] == 0
