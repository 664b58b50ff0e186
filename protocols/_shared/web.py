"""What a protocol front-end and the gateway agree on (ARCHITECTURE.md section 4).

Defined here, not in `gateway`, because protocols may not import the gateway: the
gateway fills these keys, front-ends read them.

- `SERVICES` (app key, on the root app): the CA core's `Services`; read it from a
  sub-app's handler with `request.config_dict[SERVICES]`.
- `BINDING` (request key): the `Binding` that `{ca}` resolved to, set by the gateway's
  middleware on each protocol sub-app before the handler runs.
- `CLIENT_CERT` (request key): DER of the TLS client certificate, or None.
- `REQUEST_ID` (request key): the id logged with the request and put in audit entries.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from aiohttp import web

from ca_core.model import Requester
from ca_core.services import Services

SERVICES = web.AppKey("ceg.services", Services)
CLIENT_CERT = web.RequestKey("ceg.client_cert", bytes | None)  # type: ignore[arg-type]
REQUEST_ID = web.RequestKey("ceg.request_id", str)


@dataclass(frozen=True)
class Binding:
    """A gateway binding: one protocol on one issuing CA, with its settings.

    `settings` holds the protocol's own keys (authentication, approval, ...) as checked by
    the front-end's `check_settings`.
    """

    protocol: str
    ca: str
    allowed_profiles: tuple[str, ...]
    default_profile: str
    enabled: bool = True
    settings: Mapping[str, Any] = field(default_factory=dict)

    def choose_profile(self, requested: str | None) -> str:
        """The requested profile if this binding allows it, else the default."""
        from ca_core.errors import ProfileNotEnabled

        if requested is None or requested == "":
            return self.default_profile
        if requested not in self.allowed_profiles:
            raise ProfileNotEnabled(
                f"profile {requested!r} is not offered here; allowed: {', '.join(self.allowed_profiles)}",
                profile=requested,
            )
        return requested


BINDING = web.RequestKey("ceg.binding", Binding)


@dataclass(frozen=True, slots=True)
class PeriodicJob:
    """Work a front-end needs done on a schedule (e.g. revoking unconfirmed CMP
    certificates). A front-end lists them in an optional `periodic_jobs` attribute; the
    gateway's job runner runs them on the cluster's leader."""

    name: str
    every_seconds: float
    run: Callable[[Services], Awaitable[object]]


@runtime_checkable
class Frontend(Protocol):
    """One protocol front-end, found through the `ceg.protocols` entry-point group.

    Optional besides `periodic_jobs`: `async create_challenge(services, ca, subject,
    ttl_seconds, actor)`, for front-ends whose bindings hand out one-time challenges
    (SCEP); the administration API offers it for any front-end that has it."""

    name: str  # "acme", "est", ...
    prefixes: tuple[str, ...]  # static mount points, e.g. ("/.well-known/cmp/p/", "/cmp/")
    service: str  # the CA service (profile set) it issues from, e.g. "privatessl", "est"

    def application(self) -> web.Application:
        """A fresh sub-application; routes carry `{ca}` (called once per prefix)."""
        ...

    def default_settings(self, ca: str) -> dict[str, Any]:
        """Settings for a new binding on `ca` when the operator gives none."""
        ...

    def check_settings(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        """Validate binding settings; raise ValueError naming the bad key."""
        ...

    def error_response(self, status: int, message: str) -> web.StreamResponse:
        """The protocol's native error for problems found before its handler runs."""
        ...

    async def demo_setup(self, services: Services, binding: Binding, base_url: str) -> dict[str, Any]:
        """For `ceg init --demo`: create this protocol's demo credentials on `binding` and
        return its section of demo.json (endpoint URLs and credentials)."""
        ...


def services_of(request: web.Request) -> Services:
    return request.config_dict[SERVICES]


def binding_of(request: web.Request) -> Binding:
    binding: Binding = request[BINDING]
    return binding


def client_certificate(request: web.Request) -> bytes | None:
    cert: bytes | None = request.get(CLIENT_CERT)
    return cert


def requester_of(request: web.Request, protocol: str, principal: str = "anonymous") -> Requester:
    return Requester(
        protocol=protocol,
        principal=principal,
        remote_addr=request.remote,
        request_id=request.get(REQUEST_ID),
    )


async def read_body(request: web.Request, limit: int = 256 * 1024) -> bytes:
    """The request body, refused with 413 beyond `limit` bytes (before it is all read)."""
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=size)
        chunks.append(chunk)
    return b"".join(chunks)
