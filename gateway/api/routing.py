"""Route tables shared by both APIs: one list of (method, path, handler) per API, from
which the aiohttp sub-application is built and against which the OpenAPI document is
checked, plus a fallback that answers unknown paths (404) and wrong methods (405) in the
API's own error format instead of aiohttp's plain text."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # relative to the API's prefix, with {name} placeholders as in OpenAPI
    handler: Handler
    name: str  # OpenAPI operationId


def build(
    routes: Sequence[Route], middlewares: Sequence[Callable[..., Awaitable[web.StreamResponse]]]
) -> web.Application:
    app = web.Application(middlewares=list(middlewares))
    for route in routes:
        app.router.add_route(route.method, _aiohttp_path(route.path), route.handler, name=route.name)
    app.router.add_route("*", "/{fallback_tail:.*}", fallback)
    return app


def _aiohttp_path(path: str) -> str:
    # A subject DN may contain '/', so that one placeholder takes the rest of the segment run.
    return path.replace("{subjectDn}", "{subjectDn:.+}")


async def fallback(request: web.Request) -> web.StreamResponse:
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if "fallback_tail" in (resource.canonical or ""):
            continue
        match, methods = await resource.resolve(request)
        if match is None and methods:
            allowed |= set(methods)
    if allowed:
        raise web.HTTPMethodNotAllowed(request.method, sorted(allowed))
    raise web.HTTPNotFound(reason=f"no resource {request.path}")
