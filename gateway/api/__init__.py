"""The management APIs and metrics, installed on the root app by gateway/app.py:

- `/cagw/v1/...`: the CA Gateway REST API v1 (gateway/api/cagw), mutual TLS;
- `/api/v1/...`: ceg's administration API (gateway/api/admin), bearer tokens or mTLS;
- `/metrics`: Prometheus text (gateway/api/metrics.py).

Authentication and roles: gateway/api/auth.py. Error statuses: gateway/api/errors.py.
OpenAPI documents: gateway/api/openapi.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from gateway.api import admin, cagw, metrics
from gateway.api.auth import AUTHENTICATOR, Authenticator
from protocols._shared.web import SERVICES

# Path families for the request counter, besides each front-end's own prefixes.
_FIXED_FAMILIES = {
    "/cagw/": "cagw",
    "/api/": "api",
    "/ca/": "ca",
    "/crl/": "crl",
    "/ocsp/": "ocsp",
    "/ui/": "ui",
    "/healthz": "probe",
    "/readyz": "probe",
    "/metrics": "metrics",
}


def install(app: web.Application) -> None:
    """Add both APIs, /metrics and the request counter to the root application."""
    from gateway.keys import FRONTENDS

    families = dict(_FIXED_FAMILIES)
    for frontend in app[FRONTENDS].values():
        for prefix in frontend.prefixes:
            families.setdefault(prefix, frontend.name)
    app[metrics.METRICS] = metrics.GatewayMetrics()
    app[AUTHENTICATOR] = Authenticator()
    app.middlewares.append(metrics.middleware(metrics.protocol_classifier(families)))
    app.cleanup_ctx.append(_attach)
    app.cleanup_ctx.append(metrics.publish_snapshots)
    app.router.add_get("/metrics", metrics.metrics_endpoint)
    app.add_subapp(cagw.PREFIX, cagw.application())
    app.add_subapp(admin.PREFIX, admin.application())


async def _attach(app: web.Application) -> AsyncIterator[None]:
    """Once services exist (opened by an earlier cleanup context, or given): the observer."""
    issuance = app[SERVICES].issuance
    observer = app[metrics.METRICS]
    issuance.add_observer(observer)
    try:
        yield
    finally:
        issuance.remove_observer(observer)
