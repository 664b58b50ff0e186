"""EST front-end: Enrollment over Secure Transport (RFC 7030, clarified by RFC 8951).

Mounted at `/.well-known/est/`: `/{ca}/<operation>` for a CA's binding and
`/<operation>` for the default binding. Operations: cacerts, simpleenroll,
simplereenroll, serverkeygen, csrattrs, and fullcmc (answered 501: not offered).

Modules: codec (wire format), core (I/O-free decisions), auth (credentials against the
CA core), approval (parked requests), translate (to the common IssuanceRequest and
back), routes (aiohttp handlers).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from ca_core.services import Services
from protocols._shared.web import Binding
from protocols.est import core, routes

__all__ = ["EstFrontend", "frontend"]

DEMO_USER = "est-demo"


class EstFrontend:
    name = "est"
    prefixes = ("/.well-known/est/",)
    service = "est"

    def application(self) -> web.Application:
        return routes.application()

    def default_settings(self, ca: str) -> dict[str, Any]:
        return {
            "allowed_profiles": list(core.PROFILES),
            "default_profile": core.PROFILES[0],
            **core.EstSettings().as_dict(),
        }

    def check_settings(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        return core.EstSettings.parse(settings).as_dict()

    def error_response(self, status: int, message: str) -> web.StreamResponse:
        return routes.text_response(status, message)

    async def demo_setup(self, services: Services, binding: Binding, base_url: str) -> dict[str, Any]:
        """A Basic user allowed to enroll over EST on the demo CA."""
        user = await services.credentials.create_basic(
            DEMO_USER, {"protocol": "est", "ca": binding.ca}, actor="init"
        )
        return {
            "base": f"{base_url}/.well-known/est/{binding.ca}",
            "default_base": f"{base_url}/.well-known/est",
            "username": DEMO_USER,
            "password": user.secret,
        }


frontend = EstFrontend()
