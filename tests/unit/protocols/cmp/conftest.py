"""A CMP server for message-level tests: CmpServer.handle called with bytes, on a CA
hierarchy, with a clock the test can move. No HTTP."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from ca_core.clock import ManualClock
from ca_core.keys.file import FileKeyStore, generate_private_key
from ca_core.model import KeyAlgorithm, Requester
from ca_core.services import Services, open_services
from protocols._shared.web import Binding
from protocols.cmp import core
from protocols.cmp.server import CmpServer, CrlSource, ServerState
from tests.support import cmp_client
from tests.support.cmp_client import MacCredential, Session, SignatureCredential
from tests.support.hierarchy import make_hierarchy

REFERENCE = "device-ref"
SECRET = b"open sesame"


@dataclass
class CmpHarness:
    services: Services
    clock: ManualClock
    root: str
    issuing: str
    settings: dict[str, Any] = field(default_factory=dict)
    allowed_profiles: tuple[str, ...] = core.PROFILES
    crls: CrlSource | None = None
    state: ServerState = field(default_factory=ServerState)

    @property
    def mac(self) -> MacCredential:
        return MacCredential(REFERENCE, SECRET)

    async def chain(self) -> tuple[bytes, ...]:
        return (await self.services.authority.get(self.issuing)).chain

    async def ca_name(self) -> bytes:
        return x509.load_der_x509_certificate((await self.chain())[0]).subject.public_bytes()

    def binding(self) -> Binding:
        settings = core.CmpSettings.parse(self.settings).as_dict()
        return Binding("cmp", self.issuing, self.allowed_profiles, self.allowed_profiles[0], True, settings)

    async def send(self, data: bytes, label: str | None = None) -> bytes:
        server = CmpServer(self.services, self.state, crls=self.crls)
        return await server.handle(self.binding(), data, Requester("cmp", remote_addr="127.0.0.1"), label)

    def session(self, credential: cmp_client.Credential | None = None, **kwargs: Any) -> Session:
        kwargs.setdefault("now", self.clock.now)
        return Session(credential if credential is not None else self.mac, self.send, **kwargs)

    async def enroll(
        self, key: Any = None, subject: str = "CN=device.example", **kwargs: Any
    ) -> SignatureCredential:
        """ir with the shared secret, then certConf: a certificate and key to sign with."""
        key = key or generate_private_key(KeyAlgorithm.EC_P256)
        session = self.session()
        answer = await session.exchange(
            cmp_client.CertReqBody("ir", (cmp_client.cert_request(key, subject, **kwargs),))
        )
        certificate = cmp_client.issued_certificate(answer)
        await session.exchange(cmp_client.cert_conf(certificate))
        return SignatureCredential(certificate, key, (await self.chain())[:-1])

    async def responder_certificate(self) -> bytes:
        return (await self.state.responders.get(self.services, self.issuing)).certificate


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[CmpHarness]:
    clock = ManualClock(dt.datetime.now(dt.UTC).replace(microsecond=0))
    services = await open_services(
        f"sqlite+aiosqlite:///{tmp_path}/ceg.db",
        FileKeyStore(tmp_path / "keys", b"test-passphrase"),
        "http://127.0.0.1:8080",
        clock=clock,
    )
    root, issuing = await make_hierarchy(services)
    await services.credentials.create_shared_secret(
        REFERENCE, {"protocol": "cmp", "ca": issuing}, secret=SECRET.decode()
    )
    yield CmpHarness(services, clock, root, issuing)
    await services.close()
