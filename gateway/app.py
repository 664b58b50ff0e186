"""The app factory: services, protocol sub-apps, CA artifacts, health probes.

One sub-application per protocol prefix; its routes carry `{ca}` and a middleware
resolves `{ca}` to the gateway binding on each request, so a CA or binding added at run
time through the API works without a restart (ARCHITECTURE.md section 4).
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ca_core.errors import NotFound
from ca_core.model import CaState
from ca_core.services import Services
from gateway.assembly import open_gateway_services
from gateway.bindings import BindingRegistry
from gateway.config import Config
from gateway.frontends import discover
from gateway.jobs import jobs_context
from gateway.keys import BINDINGS, CONFIG, FRONTENDS
from gateway.middlewares import request_context
from protocols._shared.web import BINDING, SERVICES, Frontend

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
AppHook = Callable[[web.Application], None]

# Extra sub-applications (management APIs, status endpoints, web UI) register here as
# (module, function) pairs, each `function(app)` adding its routes to the root app.
_ROUTE_INSTALLERS: tuple[tuple[str, str], ...] = (
    ("gateway.api", "install"),
    ("gateway.status_routes", "install"),
)


def binding_middleware(frontend: Frontend) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def resolve_binding(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.match_info.http_exception is not None:
            return await handler(request)
        ca = request.match_info.get("ca")
        binding = await request.config_dict[BINDINGS].resolve(frontend.name, ca)
        if binding is None or not binding.enabled:
            what = f"CA {ca!r}" if ca else "the default CA"
            return frontend.error_response(404, f"{frontend.name} is not enabled for {what}")
        request[BINDING] = binding
        return await handler(request)

    return resolve_binding


async def ca_certificate(request: web.Request) -> web.Response:
    """`/ca/{ca}.crt` (DER, the AIA caIssuers target) and `/ca/{ca}.pem` (chain)."""
    services = request.config_dict[SERVICES]
    name = request.match_info["file"]
    ca_id, _, ext = name.rpartition(".")
    if ext not in ("crt", "pem", "der"):
        raise web.HTTPNotFound(text="use /ca/{ca}.crt or /ca/{ca}.pem\n")
    try:
        ca = await services.authority.get(ca_id)
    except NotFound:
        raise web.HTTPNotFound(text=f"no CA {ca_id}\n") from None
    if ca.state is not CaState.ACTIVE or not ca.chain:
        raise web.HTTPNotFound(text=f"CA {ca_id} is {ca.state.value}\n")
    if ext == "pem":
        pem = b"".join(
            x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM) for der in ca.chain
        )
        return web.Response(body=pem, content_type="application/pem-certificate-chain")
    return web.Response(body=ca.der, content_type="application/pkix-cert")


async def healthz(request: web.Request) -> web.Response:
    # The pid tells which worker process answered (several share the port).
    return web.json_response({"status": "ok", "pid": os.getpid()})


async def readyz(request: web.Request) -> web.Response:
    """Ready when the database answers and every active CA's key is reachable."""
    services = request.config_dict[SERVICES]
    problems: list[str] = []
    try:
        cas = await services.authority.list()
    except Exception as exc:
        return web.json_response({"status": "unavailable", "problems": [f"database: {exc!r}"]}, status=503)
    for record in cas:
        if record.state is CaState.ACTIVE and record.key_ref:
            try:
                ca = await services.authority.get(record.id)
                if ca.signer is None:
                    problems.append(f"key of {record.id}: not loaded")
            except Exception as exc:
                problems.append(f"key of {record.id}: {exc}")
    status = 200 if not problems else 503
    return web.json_response(
        {"status": "ok" if not problems else "unavailable", "problems": problems}, status=status
    )


def services_context(
    config: Config, run_migrations: bool
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        services = await open_gateway_services(config, run_migrations=run_migrations)
        app[SERVICES] = services
        frontends = app[FRONTENDS]
        app[BINDINGS] = BindingRegistry(services, frontends)
        try:
            yield
        finally:
            await services.close()

    return ctx


def create_app(
    config: Config,
    services: Services | None = None,
    frontends: dict[str, Frontend] | None = None,
    run_migrations: bool = True,
    extra: tuple[AppHook, ...] = (),
) -> web.Application:
    """The root application. With `services` given (tests), the caller owns their lifetime."""
    app = web.Application(middlewares=[request_context()], client_max_size=1024 * 1024)
    app[CONFIG] = config
    found = frontends if frontends is not None else discover()
    app[FRONTENDS] = found
    if services is None:
        app.cleanup_ctx.append(services_context(config, run_migrations))
        # Scheduled work (CRLs, OCSP, expiry) when the app owns its services; one worker
        # of the cluster leads (gateway/jobs.py). Tests that inject services run jobs by hand.
        app.cleanup_ctx.append(jobs_context)
    else:
        app[SERVICES] = services
        app[BINDINGS] = BindingRegistry(services, found)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/ca/{file}", ca_certificate)
    for frontend in found.values():
        for prefix in frontend.prefixes:
            sub = frontend.application()
            sub.middlewares.append(binding_middleware(frontend))
            app.add_subapp(prefix.rstrip("/"), sub)
    for module_name, function_name in _ROUTE_INSTALLERS:
        module = __import__(module_name, fromlist=[function_name])
        getattr(module, function_name)(app)
    for hook in extra:
        hook(app)
    return app


def route_summary(app: web.Application) -> list[dict[str, Any]]:
    return [
        {"method": r.method, "path": r.resource.canonical if r.resource else ""} for r in app.router.routes()
    ]
