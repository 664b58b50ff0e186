"""CMP front-end: Certificate Management Protocol (RFC 4210 as updated by RFC 9480, CRMF
RFC 4211), the Lightweight CMP Profile (RFC 9483), HTTP transfer (RFC 6712 / RFC 9811).

Mounted at `/.well-known/cmp/p/` and `/cmp/`: POST to `/{ca}` (or `/{ca}/{operation}`
with an RFC 9483 operation label). Requests: ir, cr, kur, p10cr, certConf, pollReq, rr,
genm (caCerts, rootCaCert, certReqTemplate, crlStatusList) and error.

Modules: codec (a package, the only importer of asn1crypto: ASN.1 schema, TLV-level DER
check, message model, DER in and out), oids, protection (MAC, signature, POPO and path
checks), core (I/O-free decisions and transaction states), translate (to the common
IssuanceRequest; ceg errors to failInfo), server (one exchange, with the CA core),
responder (the CA's signing credential for CMP), confirmation (revoking certificates
never confirmed), errors (CmpFailure), routes (aiohttp).

Periodic work: `confirmation.revoke_overdue(services)`, listed in `frontend.periodic_jobs`,
revokes certificates whose certConf did not arrive in time; the gateway's job runner
calls it about once a minute.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from ca_core.services import Services
from protocols._shared.web import Binding, PeriodicJob
from protocols.cmp import confirmation, core, routes
from protocols.cmp.errors import CmpFailure

__all__ = ["CmpFrontend", "PeriodicJob", "frontend"]

DEMO_REFERENCE = "cmp-demo"


class CmpFrontend:
    name = "cmp"
    prefixes = ("/.well-known/cmp/p/", "/cmp/")
    service = "cmp"
    periodic_jobs = (PeriodicJob("cmp-revoke-unconfirmed", 60.0, confirmation.revoke_overdue),)

    def application(self) -> web.Application:
        return routes.application()

    def default_settings(self, ca: str) -> dict[str, Any]:
        return {
            "allowed_profiles": list(core.PROFILES),
            "default_profile": core.PROFILES[0],
            **core.CmpSettings().as_dict(),
        }

    def check_settings(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        return core.CmpSettings.parse(settings).as_dict()

    def error_response(self, status: int, message: str) -> web.StreamResponse:
        bit = "wrongAuthority" if status == 404 else "badRequest"
        return routes.error_message(status, CmpFailure(bit, message))

    async def demo_setup(self, services: Services, binding: Binding, base_url: str) -> dict[str, Any]:
        """A shared secret for MAC-protected requests (`openssl cmp -ref ... -secret pass:...`)."""
        issued = await services.credentials.create_shared_secret(
            DEMO_REFERENCE, {"protocol": "cmp", "ca": binding.ca}, actor="init"
        )
        return {
            "url": f"{base_url}/.well-known/cmp/p/{binding.ca}",
            "reference": DEMO_REFERENCE,
            "secret": issued.secret,
        }


frontend = CmpFrontend()
