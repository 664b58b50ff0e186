"""`/metrics`: Prometheus text exposition (format 0.0.4) from a small in-house registry.

Measured:
- `ceg_http_requests_total{protocol,status}` and `ceg_http_request_seconds{protocol}`:
  every request, by the front-end or API its path belongs to;
- `ceg_issuances_total{ca,profile,outcome}` and `ceg_issuance_seconds{outcome}`: every
  IssuanceService.issue call (an observer; ca_core knows no metrics library);
- `ceg_signing_seconds{algorithm}`: the signature alone.

Why in-house rather than prometheus_client: the registry lives on the app (no module
globals), and several worker processes are summed without that library's environment
variable set before import. With `ceg serve --workers N`, each worker writes a snapshot
of its own series every second to `<data dir>/run/metrics/worker-<pid>.json`; whichever
worker answers a scrape adds the other workers' latest snapshots to its live values, so
`/metrics` shows the whole server (other workers' figures at most about a second old).
Counters stay monotonic because a worker's file outlives it until `ceg serve` restarts.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import math
import os
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from ca_core.issuance import IssuanceOutcome
from gateway.api.routing import Handler

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SNAPSHOT_SECONDS = 1.0
_MAX_SERIES = 5000  # per metric: label values come from the app (CA and profile ids), still bounded


class Counter:
    kind = "counter"

    def __init__(self, name: str, help_text: str, labels: Sequence[str]) -> None:
        self.name, self.help, self.labels = name, help_text, tuple(labels)
        self.values: dict[tuple[str, ...], float] = {}

    def inc(self, labels: tuple[str, ...], amount: float = 1.0) -> None:
        if labels in self.values or len(self.values) < _MAX_SERIES:
            self.values[labels] = self.values.get(labels, 0.0) + amount

    def snapshot(self) -> dict[str, Any]:
        return {"|".join(k): v for k, v in self.values.items()}

    def merged(self, snapshots: Iterable[Mapping[str, Any]]) -> dict[tuple[str, ...], float]:
        total = dict(self.values)
        for snap in snapshots:
            for key, value in snap.items():
                labels = tuple(key.split("|")) if self.labels else ()
                total[labels] = total.get(labels, 0.0) + float(value)
        return total

    def render(self, snapshots: Iterable[Mapping[str, Any]]) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        for labels, value in sorted(self.merged(snapshots).items()):
            lines.append(f"{self.name}{_labels(self.labels, labels)} {_number(value)}")
        return lines


class Histogram:
    kind = "histogram"

    def __init__(
        self, name: str, help_text: str, labels: Sequence[str], buckets: Sequence[float] = LATENCY_BUCKETS
    ) -> None:
        self.name, self.help, self.labels = name, help_text, tuple(labels)
        self.buckets = tuple(buckets)
        # per label set: [count per bucket (not cumulative) ..., count above the last, sum]
        self.values: dict[tuple[str, ...], list[float]] = {}

    def observe(self, labels: tuple[str, ...], value: float) -> None:
        series = self.values.get(labels)
        if series is None:
            if len(self.values) >= _MAX_SERIES:
                return
            series = self.values[labels] = [0.0] * (len(self.buckets) + 2)
        index = bisect.bisect_left(self.buckets, value)  # the first bucket with value <= bound
        series[index] += 1
        series[-1] += value

    def snapshot(self) -> dict[str, Any]:
        return {"|".join(k): list(v) for k, v in self.values.items()}

    def merged(self, snapshots: Iterable[Mapping[str, Any]]) -> dict[tuple[str, ...], list[float]]:
        total = {k: list(v) for k, v in self.values.items()}
        for snap in snapshots:
            for key, series in snap.items():
                labels = tuple(key.split("|")) if self.labels else ()
                mine = total.setdefault(labels, [0.0] * (len(self.buckets) + 2))
                if len(series) == len(mine):
                    for i, v in enumerate(series):
                        mine[i] += float(v)
        return total

    def render(self, snapshots: Iterable[Mapping[str, Any]]) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        for labels, series in sorted(self.merged(snapshots).items()):
            cumulative = 0.0
            for bound, count in zip(self.buckets, series, strict=False):
                cumulative += count
                lines.append(
                    f"{self.name}_bucket{_labels((*self.labels, 'le'), (*labels, _number(bound)))} {_number(cumulative)}"
                )
            cumulative += series[len(self.buckets)]
            lines.append(
                f"{self.name}_bucket{_labels((*self.labels, 'le'), (*labels, '+Inf'))} {_number(cumulative)}"
            )
            lines.append(f"{self.name}_sum{_labels(self.labels, labels)} {_number(series[-1])}")
            lines.append(f"{self.name}_count{_labels(self.labels, labels)} {_number(cumulative)}")
        return lines


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str]) -> str:
    if not names:
        return ""
    return "{" + ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=False)) + "}"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class GatewayMetrics:
    """The gateway's metrics; also the IssuanceService observer."""

    def __init__(self) -> None:
        self.requests = Counter(
            "ceg_http_requests_total",
            "HTTP requests by protocol (path family) and status.",
            ("protocol", "status"),
        )
        self.request_seconds = Histogram(
            "ceg_http_request_seconds", "HTTP request handling time by protocol.", ("protocol",)
        )
        self.issuances = Counter(
            "ceg_issuances_total",
            "Certificate issuance requests by CA, profile and outcome (issued or an error code).",
            ("ca", "profile", "outcome"),
        )
        self.issuance_seconds = Histogram(
            "ceg_issuance_seconds", "Time of IssuanceService.issue, checks to stored.", ("outcome",)
        )
        self.signing_seconds = Histogram(
            "ceg_signing_seconds", "Time to sign one certificate, by CA key algorithm.", ("algorithm",)
        )
        self.metrics: tuple[Counter | Histogram, ...] = (
            self.requests,
            self.request_seconds,
            self.issuances,
            self.issuance_seconds,
            self.signing_seconds,
        )

    # IssuanceObserver
    def observe(self, outcome: IssuanceOutcome) -> None:
        result = "issued" if outcome.error is None else outcome.error
        self.issuances.inc((outcome.ca, outcome.profile, result))
        self.issuance_seconds.observe(("issued" if outcome.error is None else "refused",), outcome.seconds)
        if outcome.signing_seconds is not None:
            self.signing_seconds.observe((outcome.algorithm or "unknown",), outcome.signing_seconds)

    def snapshot(self) -> dict[str, Any]:
        return {m.name: m.snapshot() for m in self.metrics}

    def render(self, others: Sequence[Mapping[str, Any]] = ()) -> str:
        lines: list[str] = []
        for metric in self.metrics:
            lines += metric.render([o.get(metric.name, {}) for o in others])
        lines += [
            "# HELP ceg_metrics_workers Worker processes whose figures this scrape sums.",
            "# TYPE ceg_metrics_workers gauge",
            f"ceg_metrics_workers {len(others) + 1}",
        ]
        return "\n".join(lines) + "\n"


class WorkerShare:
    """Snapshots exchanged through files between the workers of one `ceg serve`."""

    def __init__(self, directory: Path, worker: str | None = None) -> None:
        self.directory = directory
        self.worker = worker or str(os.getpid())

    @property
    def own_file(self) -> Path:
        return self.directory / f"worker-{self.worker}.json"

    def write(self, metrics: GatewayMetrics) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.own_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(metrics.snapshot(), separators=(",", ":")))
        os.replace(tmp, self.own_file)  # readers never see half a file

    def others(self) -> list[dict[str, Any]]:
        found = []
        for path in sorted(self.directory.glob("worker-*.json")):
            if path == self.own_file:
                continue
            with contextlib.suppress(OSError, ValueError):
                data = json.loads(path.read_text())
                if isinstance(data, dict):
                    found.append(data)
        return found


def clear_shared(directory: Path) -> None:
    """Called by `ceg serve` before its workers start: counters restart with the server."""
    if directory.is_dir():
        for path in directory.glob("worker-*"):
            with contextlib.suppress(OSError):
                path.unlink()


METRICS = web.AppKey("ceg.metrics", GatewayMetrics)
SHARE = web.AppKey("ceg.metrics.share", WorkerShare)


def share_between_workers(app: web.Application, directory: Path) -> None:
    """Make this worker's /metrics include its sibling workers' figures (see module doc)."""
    app[SHARE] = WorkerShare(directory)


async def publish_snapshots(app: web.Application) -> AsyncIterator[None]:
    share = app.get(SHARE)
    task = None
    if share is not None:

        async def loop() -> None:
            while True:
                with contextlib.suppress(OSError):
                    share.write(app[METRICS])
                await asyncio.sleep(SNAPSHOT_SECONDS)

        task = asyncio.create_task(loop())
    try:
        yield
    finally:
        if task is not None and share is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            with contextlib.suppress(OSError):
                share.write(app[METRICS])  # final figures, so totals never go back


def protocol_classifier(prefixes: Mapping[str, str]) -> Any:
    """path -> family name, longest prefix first (`/.well-known/est/` before `/`)."""
    ordered = sorted(prefixes.items(), key=lambda kv: len(kv[0]), reverse=True)

    def classify(path: str) -> str:
        for prefix, name in ordered:
            if path.startswith(prefix) or path == prefix.rstrip("/"):
                return name
        return "other"

    return classify


def middleware(classify: Any) -> Any:
    @web.middleware
    async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
        metrics = request.app[METRICS]
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            family = classify(request.path)
            metrics.requests.inc((family, str(status)))
            metrics.request_seconds.observe((family,), time.perf_counter() - started)

    return count_requests


async def metrics_endpoint(request: web.Request) -> web.Response:
    share = request.app.get(SHARE)
    others = await asyncio.to_thread(share.others) if share is not None else []
    text = request.app[METRICS].render(others)
    return web.Response(
        body=text.encode(), headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
    )
