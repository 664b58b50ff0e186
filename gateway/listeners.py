"""HTTP and HTTPS listeners, TLS client certificates, worker processes.

- HTTPS asks for a client certificate without requiring one (CERT_OPTIONAL): EST, CMP
  and the APIs use it when it is there. Trust anchors are every CA ceg manages plus the
  configured files, refreshed while running so a new CA's certificates are accepted.
  Which certificate a given endpoint accepts is that endpoint's decision.
- `--workers N` starts N processes that share the ports (SO_REUSEPORT) and the database;
  the parent runs the migrations once before they start.
- Each worker runs on uvloop unless `server.event_loop = "asyncio"`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import logging
import multiprocessing
import os
import signal
import ssl
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ca_core.model import CaState
from ca_core.services import Services
from gateway.app import create_app
from gateway.config import Config
from protocols._shared.web import SERVICES

log = logging.getLogger(__name__)
_TRUST_REFRESH_SECONDS = 30.0


class TrustAnchors:
    """The client-certificate trust store of the HTTPS listener, growing as CAs appear.

    Besides every active CA, it loads the PEM certificates a gateway binding lists under
    `trust_anchors` in its settings (EST: a device maker's CA), so the handshake accepts
    those clients; the binding's front-end still decides what each certificate may do.
    An SSLContext cannot forget a CA, so anchors removed from a binding stay trusted at
    the TLS level until restart (the front-end stops accepting them at once).
    """

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        self._loaded: set[str] = set()

    async def refresh(self, services: Services) -> int:
        added = 0
        for record in await services.authority.list():
            if record.state is CaState.ACTIVE and record.certificate and record.id not in self._loaded:
                pem = x509.load_der_x509_certificate(record.certificate).public_bytes(
                    serialization.Encoding.PEM
                )
                self._context.load_verify_locations(cadata=pem.decode())
                self._loaded.add(record.id)
                added += 1
        for binding in await services.store.bindings.list():
            added += self._load_binding_anchors(binding.protocol, binding.ca, binding.settings)
        return added

    def _load_binding_anchors(self, protocol: str, ca: str, settings: dict[str, object]) -> int:
        anchors = settings.get("trust_anchors") or []
        if isinstance(anchors, str):
            anchors = [anchors]
        added = 0
        for pem in anchors if isinstance(anchors, list) else []:
            if not isinstance(pem, str):
                continue
            digest = "pem:" + hashlib.sha256(pem.encode()).hexdigest()
            if digest in self._loaded:
                continue
            try:
                self._context.load_verify_locations(cadata=pem)
            except (ssl.SSLError, ValueError):
                log.warning("binding %s/%s: a trust anchor does not load", protocol, ca)
            else:
                added += 1
            self._loaded.add(digest)
        return added


def server_ssl_context(config: Config) -> ssl.SSLContext | None:
    cert, key = config.path(config.server.tls_cert), config.path(config.server.tls_key)
    if not cert.exists() or not key.exists():
        log.warning("HTTPS disabled: %s or %s missing", cert, key)
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert), str(key))
    context.verify_mode = ssl.CERT_OPTIONAL
    for extra in config.server.client_ca_files:
        context.load_verify_locations(cafile=str(config.path(extra)))
    return context


async def run_worker(config: Config, reuse_port: bool, ready: asyncio.Event | None = None) -> None:
    """Serve until SIGTERM/SIGINT, then finish in-flight requests (graceful shutdown)."""
    app = create_app(config, run_migrations=False)
    if reuse_port:  # one of several workers: /metrics sums the siblings' figures too
        from gateway.api.metrics import share_between_workers

        share_between_workers(app, metrics_directory(config))
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=config.server.shutdown_timeout)
    await runner.setup()
    services = app[SERVICES]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    host = config.server.host
    sites = [web.TCPSite(runner, host, config.server.http_port, reuse_port=reuse_port)]
    context = server_ssl_context(config)
    anchors = None
    if context is not None:
        anchors = TrustAnchors(context)
        await anchors.refresh(services)
        sites.append(
            web.TCPSite(runner, host, config.server.https_port, ssl_context=context, reuse_port=reuse_port)
        )
    for site in sites:
        await site.start()
    tune_collector()
    log.info(
        "serving",
        extra={"pid": os.getpid(), "http": config.server.http_port, "https": config.server.https_port},
    )
    if ready is not None:
        ready.set()
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), _TRUST_REFRESH_SECONDS)
            if anchors is not None and not stop.is_set():
                with contextlib.suppress(Exception):
                    await anchors.refresh(services)
    finally:
        await runner.cleanup()


# Collections of the youngest generation after this many net new container objects
# (CPython's default is 700), and of the older ones after 50 and 100 of those.
GC_THRESHOLDS = (10_000, 50, 100)


def tune_collector() -> None:
    """Once a worker is serving. What is alive now (modules, the app, its caches) lives
    as long as the process, so the cyclic collector stops scanning it (gc.freeze); and
    it runs less often: a request makes thousands of short-lived objects, nearly all
    freed by reference counting, and at the default threshold a collection ran every
    few requests (3.5% of a worker's CPU under ACME load, in perf)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def metrics_directory(config: Config) -> Path:
    return config.data_dir / "run" / "metrics"


def run_loop(config: Config, main: Coroutine[Any, Any, None]) -> None:
    """Run a worker to completion on the configured event loop."""
    if config.server.event_loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main)
    else:
        asyncio.run(main)


def _worker_main(data_dir: str, overrides: dict[str, object]) -> None:
    from gateway.cli import configure_logging, load_with_overrides

    config = load_with_overrides(Path(data_dir), overrides)
    configure_logging(config)
    run_loop(config, run_worker(config, reuse_port=True))


def serve(config: Config, workers: int, overrides: dict[str, object]) -> int:
    """Run `workers` processes (1 = this process) after migrating the database once."""
    from ca_core.store.migrate import migrate_sync

    migrate_sync(config.database.resolved_url(config.data_dir))
    if workers <= 1:
        run_loop(config, run_worker(config, reuse_port=False))
        return 0
    from gateway.api.metrics import clear_shared

    clear_shared(metrics_directory(config))  # counters restart with the server
    spawn = multiprocessing.get_context("spawn")
    children = [
        spawn.Process(target=_worker_main, args=(str(config.data_dir), overrides), name=f"ceg-worker-{i}")
        for i in range(workers)
    ]
    for child in children:
        child.start()

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.is_alive() and child.pid:
                os.kill(child.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code = 0
    for child in children:
        child.join()
        code = code or (child.exitcode or 0)
    return code
