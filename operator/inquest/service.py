"""Runs an investigation for each new spec generation and writes the answer: the orchestration layer.

It reads only the in-memory cache (never lists the API server), runs the pure engine in a worker thread on a
copy of what it needs, and answers exactly once per generation: one Event on a verdict transition (named after
the generation, so it cannot be posted twice), then the status. The notifier resumes, after a restart, the
deliveries of answers the killed process did not finish.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from inquest import reporting
from inquest.api import models
from inquest.cache import ClusterCache
from inquest.categories import ConcludedReason
from inquest.clients.kube import InvolvedObject, KubeWriter
from inquest.engine.context import EvidenceContext
from inquest.engine.investigate import investigate
from inquest.engine.refs import ObjectRef as EngineRef
from inquest.engine.report import Report
from inquest.engine.snapshot import ClusterSnapshot
from inquest.metrics.collector import MetricsCollector
from inquest.notify import InvestigationRef, Notifier
from inquest.observability import Observability

logger = logging.getLogger(__name__)

# A change this long before the window still counts: a cause precedes its symptoms.
CHANGE_LOOKBACK = timedelta(minutes=30)


@dataclass(frozen=True)
class ServiceSettings:
    engine_threads: int = 2
    # How often a Continuous investigation re-checks its evidence.
    continuous_interval: timedelta = timedelta(seconds=15)
    # Every this many re-checks, one GET confirms the Investigation still exists: its deletion may have happened
    # while the watch that reports deletions was down.
    existence_check_every: int = 20


@dataclass(frozen=True)
class Request:
    namespace: str
    name: str
    uid: str
    generation: int
    spec: models.InvestigationSpec
    previous_status: models.InvestigationStatus | None
    raw_status: dict[str, Any] | None


class InvestigationService:
    def __init__(
        self,
        cache: ClusterCache,
        writer: KubeWriter,
        settings: ServiceSettings | None = None,
        metrics: MetricsCollector | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        notifier: Notifier | None = None,
        observability: Observability | None = None,
    ) -> None:
        self._cache = cache
        self._observability = observability
        self._notifier = notifier
        self._writer = writer
        self._settings = settings or ServiceSettings()
        self._clock = clock
        self._metrics = metrics or MetricsCollector(None)
        self._executor = ThreadPoolExecutor(max_workers=self._settings.engine_threads, thread_name_prefix="engine")
        self._in_flight: dict[tuple[str, str], int] = {}
        self._watchers: dict[tuple[str, str], tuple[int, asyncio.Task[None]]] = {}

    def reconfigure(
        self,
        metrics: MetricsCollector | None = None,
        continuous_interval: timedelta | None = None,
        notifier: Notifier | None = None,
    ) -> Notifier | None:
        """A live configuration change: the next investigation (or re-check) uses it. Returns the notifier it
        replaced, for the caller to close once its deliveries are done."""
        replaced = None
        if notifier is not None:
            replaced, self._notifier = self._notifier, notifier
        if metrics is not None:
            self._metrics = metrics
        if continuous_interval is not None:
            self._settings = replace(self._settings, continuous_interval=continuous_interval)
        return replaced

    def forget(self, namespace: str, name: str) -> None:
        self._in_flight.pop((namespace, name), None)
        self._stop_watching((namespace, name))

    def _stop_watching(self, key: tuple[str, str]) -> None:
        entry = self._watchers.pop(key, None)
        if entry is not None:
            entry[1].cancel()

    async def close(self) -> None:
        for key in list(self._watchers):
            self._stop_watching(key)
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def handle(self, raw: Mapping[str, Any]) -> None:
        """One Investigation as the watch delivered it; investigates if its generation is not answered yet."""
        metadata = raw.get("metadata", {})
        namespace, name = metadata.get("namespace", ""), metadata.get("name", "")
        generation = int(metadata.get("generation") or 1)
        raw_status = raw.get("status") or None
        key = (namespace, name)
        if raw_status and raw_status.get("observedGeneration") == generation:
            if self._notifier is not None:  # after a restart: deliveries the killed process did not finish
                self._notifier.resume(InvestigationRef.from_raw(raw), raw_status)
            self._keep_watching(raw, generation)
            return
        if self._in_flight.get(key) == generation:
            return
        self._in_flight[key] = generation
        started = self._clock()
        involved = InvolvedObject(namespace=namespace, name=name, uid=metadata.get("uid", ""))
        previous = _previous_status(raw_status)
        try:
            request = Request(
                namespace=namespace,
                name=name,
                uid=involved.uid,
                generation=generation,
                spec=models.InvestigationSpec.model_validate(raw.get("spec") or {}),
                previous_status=previous,
                raw_status=raw_status,
            )
            report = await self._run_engine(request, started)
            concluded = self._clock()
            status = reporting.concluded_status(previous, report, generation, started, concluded)
            # The Event goes first, under a name fixed by the generation: a process killed between the two writes
            # answers again after its restart, and the API server refuses the second Event as a duplicate.
            await self._announce(involved, previous, generation, report.verdict, reporting.event_message(report))
            await self._writer.patch_status(namespace, name, reporting.status_patch(raw_status, status))
            if self._observability is not None:
                self._observability.answered(report.verdict, (self._clock() - started).total_seconds())
            if self._notifier is not None:  # returns at once; delivery runs in the background
                self._notifier.on_concluded(InvestigationRef.from_raw(raw), status)
            self._keep_watching({**raw, "status": reporting.status_patch(None, status)}, generation)
        except (ValidationError, ValueError) as error:
            await self._fail(involved, previous, raw_status, generation, started, f"Invalid spec: {_describe(error)}")
        except Exception as error:
            logger.exception("investigation %s/%s generation %s failed", namespace, name, generation)
            await self._fail(involved, previous, raw_status, generation, started, f"Investigation failed: {error}")
        finally:
            if self._in_flight.get(key) == generation:
                del self._in_flight[key]

    def _keep_watching(self, raw: Mapping[str, Any], generation: int) -> None:
        """Continuous mode: one background re-check loop per Investigation, for its current generation."""
        metadata = raw.get("metadata", {})
        key = (metadata.get("namespace", ""), metadata.get("name", ""))
        continuous = (raw.get("spec") or {}).get("mode") == "Continuous"
        current = self._watchers.get(key)
        if current is not None and (not continuous or current[0] != generation):
            self._stop_watching(key)
            current = None
        if continuous and current is None:
            task = asyncio.create_task(self._watch(raw, generation), name=f"continuous {key[0]}/{key[1]}")
            self._watchers[key] = (generation, task)

    async def _watch(self, raw: Mapping[str, Any], generation: int) -> None:
        metadata = raw.get("metadata", {})
        namespace, name = metadata.get("namespace", ""), metadata.get("name", "")
        involved = InvolvedObject(namespace=namespace, name=name, uid=metadata.get("uid", ""))
        raw_status: dict[str, Any] | None = dict(raw.get("status") or {}) or None
        status = _previous_status(raw_status)
        spec = models.InvestigationSpec.model_validate(raw.get("spec") or {})
        checks = 0
        while True:
            await asyncio.sleep(self._settings.continuous_interval.total_seconds())
            checks += 1
            try:
                if checks % self._settings.existence_check_every == 0 and not await self._still_there(
                    namespace, name, generation
                ):
                    return
                request = Request(namespace, name, involved.uid, generation, spec, status, raw_status)
                now = self._clock()
                report = await self._run_engine(request, now)
                if status is not None and reporting.fingerprint_of_status(status) == reporting.fingerprint(report):
                    continue
                refreshed = reporting.refreshed_status(status, report, generation, now, self._clock())
                await self._writer.patch_status(namespace, name, reporting.status_patch(raw_status, refreshed))
                message = reporting.findings_changed_message(status, refreshed)
                await self._writer.post_event(involved, "FindingsChanged", message)
                if self._notifier is not None:  # a resolution goes on to on_resolved
                    self._notifier.on_findings_changed(InvestigationRef.from_raw(raw), status, refreshed)
                status, raw_status = refreshed, refreshed.to_api()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("continuous re-check of %s/%s failed; trying again later", namespace, name)

    async def _still_there(self, namespace: str, name: str, generation: int) -> bool:
        """False, and the re-check loop forgotten, if the Investigation was deleted (or edited: its new generation
        has a loop of its own) without this process hearing of it."""
        current = await self._writer.get_investigation(namespace, name)
        if current is not None and int((current.get("metadata") or {}).get("generation") or 0) == generation:
            return True
        logger.info(
            "continuous re-check of %s/%s generation %d stops: it was deleted or edited", namespace, name, generation
        )
        entry = self._watchers.get((namespace, name))
        if entry is not None and entry[0] == generation:
            del self._watchers[(namespace, name)]
        return False

    async def _run_engine(self, request: Request, now: datetime) -> Report:
        window = models.resolve_window(request.spec, now)
        target = request.spec.target_reference(request.namespace) if request.spec.target else None
        scope_namespace = (target.namespace if target and target.namespace else None) or request.namespace
        # Copies taken on the event loop, so the worker thread never sees the cache change under it.
        projections = [*self._cache.projections([scope_namespace]), *self._cache.events([scope_namespace])]
        journal = self._cache.journal.copy()
        collection = await self._metrics.collect([scope_namespace], window.start, window.end)
        engine_target = (
            EngineRef(target.kind, "" if target.kind in ("Node", "Namespace") else scope_namespace, target.name)
            if target
            else None
        )

        def work() -> Report:
            snapshot = ClusterSnapshot.of(projections)
            analysis, data_sources = collection.analyse(snapshot)
            context = EvidenceContext(
                snapshot=snapshot,
                journal=journal,
                window_start=window.start,
                window_end=window.end,
                now=now,
                metrics=analysis.signals,
                metric_edges=analysis.edges,
                data_sources=data_sources,
                change_lookback=CHANGE_LOOKBACK,
            )
            return investigate(
                context,
                engine_target,
                request.spec.question or "",
                list(request.spec.hypotheses),
                list(request.spec.context),
            )

        report = await asyncio.get_running_loop().run_in_executor(self._executor, work)
        # One line per answer, in a fixed shape the benchmarks read back.
        logger.info(
            "answered %s/%s generation %d: %s in %.0f ms; prometheus: %d queries, %.0f ms",
            request.namespace,
            request.name,
            request.generation,
            report.verdict,
            (self._clock() - now).total_seconds() * 1000,
            collection.queries,
            collection.elapsed_seconds * 1000,
        )
        return report

    async def _announce(
        self,
        involved: InvolvedObject,
        previous: models.InvestigationStatus | None,
        generation: int,
        verdict: str,
        message: str,
    ) -> None:
        """At most one Event per generation, when the verdict changes; a follow-up with the same verdict adds a
        round, not an Event. A failure to post is logged: the answer itself is in the status."""
        before = previous.condition(models.CONCLUDED) if previous else None
        if before is not None and before.reason == verdict:
            return
        reason = reporting.EVENT_REASONS.get(ConcludedReason(verdict))
        if reason:
            warning = verdict in (ConcludedReason.FAILED, ConcludedReason.INCONCLUSIVE)
            try:
                await self._writer.post_event(
                    involved, reason, message, warning=warning, key=f"generation-{generation}"
                )
            except Exception:
                logger.exception("could not post %s on %s/%s", reason, involved.namespace, involved.name)

    async def _fail(
        self,
        involved: InvolvedObject,
        previous: models.InvestigationStatus | None,
        raw_status: dict[str, Any] | None,
        generation: int,
        started: datetime,
        message: str,
    ) -> None:
        status = reporting.failed_status(previous, message, generation, started, self._clock())
        try:
            await self._announce(involved, previous, generation, ConcludedReason.FAILED, message)
            await self._writer.patch_status(
                involved.namespace, involved.name, reporting.status_patch(raw_status, status)
            )
            if self._observability is not None:
                self._observability.answered(ConcludedReason.FAILED, (self._clock() - started).total_seconds())
        except Exception:
            logger.exception("could not record the failure of %s/%s", involved.namespace, involved.name)


def _previous_status(raw_status: Mapping[str, Any] | None) -> models.InvestigationStatus | None:
    if not raw_status:
        return None
    try:
        return models.InvestigationStatus.model_validate(raw_status)
    except ValidationError:
        logger.warning("ignoring an unreadable previous status")
        return None


def _describe(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(
            f"spec.{'.'.join(str(part) for part in item['loc'])}: {item['msg']}" for item in error.errors()
        )
    return str(error).strip() or type(error).__name__
