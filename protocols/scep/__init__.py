"""SCEP front-end (RFC 8894) at `/scep/{ca}` and `/scep/{ca}/pkiclient.exe`.

Layers, each reusable by the Intune front-end (SCEP plus Intune challenge validation):
- codec.py: pkiMessage and CertRep in and out (over protocols/_shared/cms.py);
- core.py: settings, capabilities, algorithm choices, transaction state (no I/O);
- challenge.py: the ChallengeVerifier protocol and the none/static/dynamic verifiers,
  and `create_challenge` (one-time challenges, `ceg scep challenge`);
- ra.py: the RA key and certificate per CA;
- responder.py: the operations over the CA core (GetCRL hands out the CA core's
  published CRL); routes.py: the HTTP layer.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

from ca_core.audit import AuditEntry
from ca_core.services import Services
from protocols._shared.web import Binding
from protocols.scep import challenge, routes
from protocols.scep.challenge import (
    ChallengeContext,
    ChallengeVerifier,
    IssuedChallenge,
    RememberedSecrets,
    VerifierFactory,
    challenge_verifiers,
    create_challenge,
)
from protocols.scep.core import DEFAULT_PROFILE, PROFILES, ChallengeMode, ScepSettings
from protocols.scep.responder import ScepResponder

__all__ = [
    "ChallengeContext",
    "ChallengeVerifier",
    "IssuedChallenge",
    "ScepFrontend",
    "ScepResponder",
    "create_challenge",
    "frontend",
]

_BINDING_KEYS = ("allowed_profiles", "default_profile")


class ScepFrontend:
    """The SCEP front-end; Intune makes another instance with its own name, prefix,
    service, profiles and verifier factory."""

    def __init__(
        self,
        name: str = "scep",
        prefixes: tuple[str, ...] = ("/scep/",),
        service: str = "scep",
        profiles: Sequence[str] = PROFILES,
        default_profile: str = DEFAULT_PROFILE,
        verifiers: VerifierFactory | None = None,
    ) -> None:
        self.name = name
        self.prefixes = prefixes
        self.service = service
        self._profiles = tuple(profiles)
        self._default_profile = default_profile
        self._verifiers = verifiers

    def responder(self, services: Services) -> ScepResponder:
        verifiers = self._verifiers or challenge_verifiers(RememberedSecrets())
        return ScepResponder(services, self.name, verifiers)

    def application(self) -> web.Application:
        return routes.build_application(self.name, self.responder)

    async def create_challenge(
        self, services: Services, ca: str, subject: str | None, ttl_seconds: int | None, actor: str
    ) -> IssuedChallenge:
        """A one-time challengePassword for this front-end's binding on `ca` (the optional
        Frontend hook the administration API calls)."""
        return await create_challenge(services, ca, subject, ttl_seconds, actor, self.name)

    def default_settings(self, ca: str) -> dict[str, Any]:
        # Dynamic challenges by default: nothing enrols until an operator hands one out.
        return {
            "allowed_profiles": list(self._profiles),
            "default_profile": self._default_profile,
            **ScepSettings().to_json(),
        }

    def check_settings(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        own = {k: v for k, v in settings.items() if k not in _BINDING_KEYS}
        checked = challenge.check_settings(own).to_json()
        if "default" in own:
            checked["default"] = own["default"]
        return checked

    def error_response(self, status: int, message: str) -> web.StreamResponse:
        return web.Response(status=status, text=message.rstrip() + "\n", content_type="text/plain")

    async def demo_setup(self, services: Services, binding: Binding, base_url: str) -> dict[str, Any]:
        """The demo binding uses a static challenge, and accepts legacy envelopes because
        Debian's scepclient encrypts its requests with single DES."""
        secret = base64.urlsafe_b64encode(services.random_bytes(18)).decode()
        settings = self.check_settings(
            {
                **binding.settings,
                "challenge": ChallengeMode.STATIC.value,
                "challenge_password": secret,
                "allow_legacy_clients": True,
            }
        )
        stored = {
            **settings,
            "allowed_profiles": list(binding.allowed_profiles),
            "default_profile": binding.default_profile,
        }
        now = services.clock.now()
        audit = AuditEntry(
            now, "binding.saved", "init", binding.ca, None, {"protocol": self.name, "settings": stored}
        )
        await services.store.bindings.put(self.name, binding.ca, stored, now, binding.enabled, audit)
        identity = await self.responder(services).registration_authority.identity(binding.ca)
        return {
            "url": f"{base_url.rstrip('/')}{self.prefixes[0]}{binding.ca}",
            "challenge": secret,
            # scepclient encrypts to every certificate GetCACert returns and cannot with an
            # EC CA certificate among them: `-ca-fingerprint <ra_sha256>` picks the RA.
            "ra_sha256": hashlib.sha256(identity.current.certificate).hexdigest(),
        }


frontend = ScepFrontend()
