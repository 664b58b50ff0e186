"""The registration authority identity of a SCEP binding (RFC 8894 2.1, 2.2, 3.1).

Clients encrypt their requests to an RSA key and verify replies signed by it, while the
issuing CA may well be EC (and should not decrypt anything anyway). So each CA served
over SCEP has an RA: an RSA-2048 key made in the key backend (file or PKCS#11) and a
certificate from that CA under the internal profile `internal-scep-ra`.

State lives in the store (namespace `<protocol>-ra`, key = CA id), so every worker and
replica uses one RA. The first request creates it; a request in the last third of its
certificate's life (or after the CA's certificate changed) renews it with a new key.
Racing workers are settled by compare-and-set: the loser discards its key. Former RA
keys are kept until their certificates expire, so a client that fetched the RA
certificate before a renewal can still be read.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ca_core.authority import CertificateAuthority
from ca_core.errors import Conflict, NotFound
from ca_core.keys import Signer
from ca_core.model import IssuanceRequest, KeyAlgorithm, Requester
from ca_core.services import Services
from ca_core.store import StateDocument
from protocols._shared import cms
from protocols.scep.core import ra_renewal_due, ra_subject

log = logging.getLogger(__name__)
RA_PROFILE = "internal-scep-ra"
RA_KEY = KeyAlgorithm.RSA_2048
_REFRESH_SECONDS = 30.0  # how soon another worker's RA renewal is seen here
_PREVIOUS_KEPT = 3
T = TypeVar("T")


@dataclass(frozen=True)
class RaKey:
    certificate: bytes
    key_ref: str
    signer: Signer
    not_before: dt.datetime
    not_after: dt.datetime

    @property
    def recipient(self) -> cms.KeyTransportRecipient:
        return cms.KeyTransportRecipient(self.certificate, self.signer.decrypt)

    def content_signer(self, digest: str) -> cms.ContentSigner:
        return cms.key_signer(self.certificate, self.signer.private_key(), digest)


@dataclass(frozen=True)
class RaIdentity:
    current: RaKey
    previous: tuple[RaKey, ...] = ()

    @property
    def recipients(self) -> tuple[cms.KeyTransportRecipient, ...]:
        return (self.current.recipient, *(k.recipient for k in self.previous))


def _entry(key_ref: str, certificate: bytes) -> dict[str, str]:
    return {"key_ref": key_ref, "certificate": base64.b64encode(certificate).decode()}


class RegistrationAuthority:
    """Finds, creates and renews the RA identity per CA for one protocol."""

    def __init__(self, services: Services, protocol: str = "scep") -> None:
        self._services = services
        self._protocol = protocol
        self._namespace = f"{protocol}-ra"
        self._cache: dict[str, tuple[float, RaIdentity]] = {}
        self._signers: dict[str, Signer] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def _blocking(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._services.executor, fn, *args)

    async def identity(self, ca_id: str, refresh: bool = False) -> RaIdentity:
        """The CA's RA identity, created or renewed when needed."""
        cached = self._cache.get(ca_id)
        fresh_enough = cached is not None and time.monotonic() - cached[0] < _REFRESH_SECONDS
        if cached is not None and fresh_enough and not refresh and not self._due(cached[1]):
            return cached[1]
        lock = self._locks.setdefault(ca_id, asyncio.Lock())
        async with lock:
            identity = await self._settle(ca_id)
            self._cache[ca_id] = (time.monotonic(), identity)
            return identity

    def _due(self, identity: RaIdentity) -> bool:
        return self._services.clock.now() >= identity.current.not_after

    async def _settle(self, ca_id: str) -> RaIdentity:
        ca = await self._services.authority.get(ca_id)
        ca.require_active()
        for _ in range(3):
            doc = await self._services.store.state.get(self._namespace, ca_id)
            if doc is not None:
                identity = await self._load(doc)
                if not self._needs_new(identity, ca):
                    return identity
            try:
                return await self._replace(ca, doc)
            except Conflict:
                continue  # another worker got there first: use theirs
        raise Conflict(f"the RA of CA {ca_id} keeps changing under this worker")

    def _needs_new(self, identity: RaIdentity, ca: CertificateAuthority) -> bool:
        cert = x509.load_der_x509_certificate(identity.current.certificate)
        if ca.certificate is None or cert.issuer != ca.certificate.subject:
            return True
        try:
            aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
        except x509.ExtensionNotFound:
            aki = None
        if aki is not None and aki != ca.key_identifier:
            return True  # the CA was re-keyed: an RA from the old key would not chain
        key = identity.current
        return ra_renewal_due(key.not_before, key.not_after, ca.not_after, self._services.clock.now())

    async def _load(self, doc: StateDocument) -> RaIdentity:
        current = await self._key(doc.document["current"])
        previous = []
        for entry in doc.document.get("previous", []):
            try:
                previous.append(await self._key(entry))
            except NotFound:
                continue
        return RaIdentity(current, tuple(previous))

    async def _key(self, entry: dict[str, str]) -> RaKey:
        key_ref = entry["key_ref"]
        signer = self._signers.get(key_ref)
        if signer is None:
            signer = await self._blocking(self._services.keys.load, key_ref)
            self._signers[key_ref] = signer
        der = base64.b64decode(entry["certificate"])
        cert = x509.load_der_x509_certificate(der)
        return RaKey(der, key_ref, signer, cert.not_valid_before_utc, cert.not_valid_after_utc)

    async def _replace(self, ca: CertificateAuthority, doc: StateDocument | None) -> RaIdentity:
        services = self._services
        label = f"{self._namespace}-{ca.id}-{services.random_bytes(6).hex()}"
        signer = await self._blocking(services.keys.generate, label, RA_KEY)
        try:
            spki = signer.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            assert ca.certificate is not None
            issued = await services.issuance.issue(
                IssuanceRequest(
                    ca=ca.id,
                    profile=RA_PROFILE,
                    requester=Requester(self._protocol, "ra"),
                    public_key=spki,
                    pop_verified=True,  # generated here, in our own key backend
                    subject=ra_subject(ca.id, ca.certificate.subject),
                    allow_internal_profile=True,
                )
            )
            now = services.clock.now()
            previous: list[dict[str, str]] = []
            dropped: list[dict[str, str]] = []
            if doc is not None:
                retired = [doc.document["current"], *doc.document.get("previous", [])]
                for entry in retired:
                    cert = x509.load_der_x509_certificate(base64.b64decode(entry["certificate"]))
                    if cert.not_valid_after_utc > now and len(previous) < _PREVIOUS_KEPT:
                        previous.append(entry)
                    else:
                        dropped.append(entry)
            document = {"current": _entry(signer.key_ref, issued.der), "previous": previous}
            if doc is None:
                await services.store.state.create(self._namespace, ca.id, document, now)
            else:
                await services.store.state.put(self._namespace, ca.id, document, now, doc.version)
        except BaseException:
            await self._blocking(services.keys.destroy, signer.key_ref)
            raise
        log.info("SCEP RA for CA %s is now certificate %s", ca.id, issued.serial_hex)
        for entry in dropped:  # expired RA keys: nothing can be addressed to them any more
            try:
                await self._blocking(services.keys.destroy, entry["key_ref"])
            except Exception:  # best effort: a leftover key harms nothing
                log.warning("could not destroy retired RA key %s", entry["key_ref"], exc_info=True)
        self._signers[signer.key_ref] = signer
        return await self._load(StateDocument(self._namespace, ca.id, document, 0, None, None, now, now))
