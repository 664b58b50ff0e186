"""Fixtures for SCEP's message-level tests: CA-core services on a clock the tests move,
a root and an issuing CA, bindings saved the way the gateway saves them, a responder."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ca_core.clock import ManualClock
from ca_core.keys.file import FileKeyStore
from ca_core.model import Requester
from ca_core.services import Services, open_services
from gateway.bindings import binding_of
from protocols._shared.web import Binding
from protocols.scep import ScepResponder, frontend
from tests.support.hierarchy import make_hierarchy
from tests.support.scep_peer import ScepPeer

BASE_URL = "http://127.0.0.1:8080"
STATIC = "correct horse battery staple"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(dt.datetime.now(dt.UTC).replace(microsecond=0))


@pytest.fixture
async def scep_services(tmp_path: Path, clock: ManualClock) -> AsyncIterator[Services]:
    svc = await open_services(
        f"sqlite+aiosqlite:///{tmp_path}/ceg.db",
        FileKeyStore(tmp_path / "keys", b"test-passphrase"),
        BASE_URL,
        clock=clock,
    )
    await make_hierarchy(svc)
    yield svc
    await svc.close()


async def bind(services: Services, ca: str = "issuing", **settings: Any) -> Binding:
    """Save a SCEP binding as the gateway does (defaults, then check_settings)."""
    merged = {**frontend.default_settings(ca), **settings}
    stored = {
        **frontend.check_settings(merged),
        "allowed_profiles": merged["allowed_profiles"],
        "default_profile": merged["default_profile"],
    }
    record = await services.store.bindings.put("scep", ca, stored, services.clock.now())
    return binding_of(record)


@dataclass
class Scep:
    """A responder and its binding, with a helper to send one message."""

    services: Services
    responder: ScepResponder
    binding: Binding
    ra: bytes

    async def send(self, body: bytes) -> bytes:
        return await self.responder.pki_operation(
            self.binding, body, Requester("scep", remote_addr="127.0.0.1")
        )

    def peer(self, cn: str = "device.example", **kwargs: Any) -> ScepPeer:
        return ScepPeer.new(self.ra, cn, **kwargs)

    async def rebind(self, **settings: Any) -> None:
        self.binding = await bind(self.services, self.binding.ca, **settings)


@pytest.fixture
async def scep(scep_services: Services) -> Scep:
    binding = await bind(scep_services, challenge="static", challenge_password=STATIC)
    responder = frontend.responder(scep_services)
    identity = await responder.registration_authority.identity("issuing")
    return Scep(scep_services, responder, binding, identity.current.certificate)
