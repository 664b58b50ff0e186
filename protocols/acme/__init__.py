"""The ACME front-end (RFC 8555, with RFC 8737 tls-alpn-01, RFC 8738 IP identifiers,
RFC 9773 renewal information and draft-ietf-acme-profiles), mounted at
`/acme/{ca}/directory`.

Modules: jws (JOSE in), codec (ACME JSON in and out), problems (error documents),
model (stored records), core (I/O-free decisions), nonces, settings (binding policy),
repository (the state store), validation (http-01, dns-01, tls-alpn-01 on the network),
auth (per-request JWS checks), translate (to and from the CA core), routes (handlers).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from aiohttp import web

from ca_core.services import Services
from protocols._shared.web import Binding
from protocols.acme.context import ACME_CONTEXT, AcmeContext
from protocols.acme.problems import AcmeProblem, ProblemType
from protocols.acme.routes import acme_envelope, add_routes, problem_response
from protocols.acme.settings import check_settings, default_settings


class AcmeFrontend:
    name = "acme"
    prefixes = ("/acme/",)
    service = "privatessl"

    def application(self) -> web.Application:
        app = web.Application(middlewares=[acme_envelope])
        app[ACME_CONTEXT] = AcmeContext()
        app.cleanup_ctx.append(_context_lifetime)
        add_routes(app)
        return app

    def default_settings(self, ca: str) -> dict[str, Any]:
        return default_settings()

    def check_settings(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        return check_settings(settings)

    def error_response(self, status: int, message: str) -> web.StreamResponse:
        kind = ProblemType.SERVER_INTERNAL if status >= 500 else ProblemType.MALFORMED
        return problem_response(AcmeProblem(kind, message, status))

    async def demo_setup(self, services: Services, binding: Binding, base_url: str) -> dict[str, Any]:
        """demo.json's `acme`: the directory, the validation settings, and an EAB key
        (the demo binding keeps EAB optional, so clients may use it or not)."""
        kid, hmac_key = await services.credentials.create_eab(
            "demo-acme-eab", {"ca": binding.ca, "protocol": self.name}, actor="init"
        )
        settings = binding.settings
        return {
            "directory": f"{base_url}/acme/{binding.ca}/directory",
            "http01_port": settings.get("http01_port", 80),
            "tls_alpn01_port": settings.get("tls_alpn01_port", 443),
            "dns_resolver": settings.get("dns_resolver", ""),
            "eab_required": bool(settings.get("eab_required", False)),
            "eab_kid": kid,
            "eab_hmac_key": hmac_key,
            "profiles": list(binding.allowed_profiles),
        }


async def _context_lifetime(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[ACME_CONTEXT].close()


frontend = AcmeFrontend()

__all__ = ["AcmeFrontend", "frontend"]
