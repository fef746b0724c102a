"""The lab exporter: serves the current value of every lab series at /metrics for Prometheus to scrape.

Series come from a JSON file (a list of series specs) that is re-read whenever it is replaced, so the lab and
scenarios add series by rewriting it with write_series_file. Values are computed at request time from the
same shape functions as the backfill. Prometheus attaches job and instance; the exporter never sets them.

    python -m inquest.lab.exporter --port PORT --series-file PATH
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from aiohttp import web
from pydantic import TypeAdapter

from inquest.lab.openmetrics import format_labels, format_value, group_families
from inquest.lab.shapes import SeriesSpec, value_at

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

logger = logging.getLogger("inquest.lab.exporter")

_SPEC_LIST = TypeAdapter(list[SeriesSpec])
_FileSignature = tuple[int, int, int]


def write_series_file(path: Path, specs: Sequence[SeriesSpec]) -> None:
    """Replaces the series file atomically (temp file + rename): the exporter never reads half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps([spec.model_dump(mode="json") for spec in specs], indent=1)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(payload)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def read_series_file(path: Path) -> list[SeriesSpec]:
    return _SPEC_LIST.validate_json(Path(path).read_bytes())


class SeriesStore:
    """The series from the file, reloaded when the file is replaced or modified (inode, mtime or size change)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.specs: list[SeriesSpec] = []
        self.error: str | None = None
        self._signature: _FileSignature | None = None
        self._lock = threading.Lock()

    def refresh(self) -> list[SeriesSpec]:
        with self._lock:
            try:
                stat = self.path.stat()
            except FileNotFoundError:
                self.specs, self.error, self._signature = [], None, None
                return self.specs
            signature = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            if signature == self._signature:
                return self.specs
            try:
                specs = read_series_file(self.path)
                group_families(specs)  # rejects duplicate series and mixed types before serving them
            except (OSError, ValueError) as error:  # ValidationError is a ValueError
                # Keep serving the last good series; the error shows in /healthz and the log.
                self.error = f"{self.path}: {error}"
                logger.error("series file not loaded, keeping %d series: %s", len(self.specs), self.error)
            else:
                self.specs, self.error = specs, None
                logger.info("loaded %d series from %s", len(specs), self.path)
            self._signature = signature
            return self.specs


def render_exposition(specs: Sequence[SeriesSpec], now: float) -> str:
    """Prometheus text format 0.0.4, without timestamps (the scrape stamps them)."""
    lines: list[str] = []
    for family in group_families(specs):
        samples: list[str] = []
        for spec in family.series:
            value = value_at(spec, now)
            if value is not None:
                samples.append(f"{spec.name}{format_labels(spec.labels)} {format_value(value)}\n")
        if samples:
            # The 0.0.4 format names a counter's family by its full sample name, '_total' included.
            # ... and calls OpenMetrics' 'unknown' type 'untyped'.
            kind = "untyped" if family.type == "unknown" else family.type
            lines.append(f"# TYPE {family.series[0].name} {kind}\n")
            lines.extend(samples)
    return "".join(lines)


def create_app(series_file: Path, clock: Callable[[], float] = time.time) -> web.Application:
    store = SeriesStore(series_file)

    async def metrics(_request: web.Request) -> web.Response:
        specs = await asyncio.to_thread(store.refresh)
        body = render_exposition(specs, clock())
        return web.Response(body=body.encode(), headers={"Content-Type": CONTENT_TYPE})

    async def healthz(_request: web.Request) -> web.Response:
        specs = await asyncio.to_thread(store.refresh)
        return web.json_response({"status": "ok", "series": len(specs), "series_file_error": store.error})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    return app


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m inquest.lab.exporter", description="Serves the lab's metric series."
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--series-file", type=Path, required=True)
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(arguments.series_file)
    web.run_app(app, host="127.0.0.1", port=arguments.port, access_log=None, print=None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
