"""The CA's CMP responder: the key and certificate that sign signature-protected answers
(RFC 4210 5.1.3.3, RFC 9483 3.2 and 3.3).

One per issuing CA. Its key is made by the key backend (an HSM key never leaves the HSM)
and certified by the CA itself under the internal profile `internal-cms-signer`. The
key reference and certificate live in the state store (namespace `cmp-responder`), so
every worker and replica signs with the same credential; whoever finds it missing or
near its end makes a new one, and a compare-and-set decides between two that raced
(the loser destroys the key it made). Workers keep it for CACHE_SECONDS.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import logging
import time
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from ca_core.errors import Conflict
from ca_core.keys import Signer, with_signer
from ca_core.model import IssuanceRequest, Requester
from ca_core.services import Services
from protocols.cmp import codec, protection

log = logging.getLogger(__name__)

NAMESPACE = "cmp-responder"
PROFILE = "internal-cms-signer"
RENEW_BEFORE = dt.timedelta(days=30)
CACHE_SECONDS = 60.0


def responder_subject(ca: str) -> x509.Name:
    """Fixed and predictable, so a request may name it as recipient before it exists."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ceg"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"CMP responder {ca}"),
        ]
    )


@dataclass(frozen=True)
class ResponderCredential:
    signer: Signer
    certificate: bytes
    subject: bytes  # Name DER
    key_identifier: bytes
    not_after: dt.datetime
    algorithm: codec.SignatureAlgorithm

    async def sign(self, data: bytes, services: Services) -> bytes:
        return await with_signer(self.signer.blocking, services.executor, self.signer.sign, data)


class Responders:
    """Per application: the responder credential of each CA, loaded, made or renewed on use."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[float, ResponderCredential]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, services: Services, ca: str) -> ResponderCredential:
        hit = self._cache.get(ca)
        if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1]
        lock = self._locks.setdefault(ca, asyncio.Lock())
        async with lock:
            hit = self._cache.get(ca)
            if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
                return hit[1]
            credential = await self._current(services, ca)
            self._cache[ca] = (time.monotonic(), credential)
            return credential

    async def _current(self, services: Services, ca: str) -> ResponderCredential:
        now = services.clock.now()
        for _ in range(3):
            doc = await services.store.state.get(NAMESPACE, ca)
            if doc is not None:
                credential = await _load(services, doc.document)
                if credential.not_after - now > RENEW_BEFORE:
                    return credential
            made = await _make(services, ca)
            document = {
                "key_ref": made.signer.key_ref,
                "certificate": base64.b64encode(made.certificate).decode(),
            }
            try:
                if doc is None:
                    await services.store.state.create(NAMESPACE, ca, document, now)
                else:
                    await services.store.state.put(NAMESPACE, ca, document, now, doc.version)
            except Conflict:
                # Another worker stored its credential first: use that one.
                await _destroy(services, made.signer.key_ref)
                continue
            log.info("CMP responder certificate issued", extra={"ca": ca})
            return made
        raise Conflict(f"could not settle the CMP responder credential of CA {ca}")


async def _load(services: Services, document: dict[str, str]) -> ResponderCredential:
    signer = await asyncio.get_running_loop().run_in_executor(
        services.executor, services.keys.load, document["key_ref"]
    )
    return _credential(signer, base64.b64decode(document["certificate"]))


async def _make(services: Services, ca_id: str) -> ResponderCredential:
    ca = await services.authority.get(ca_id)
    algorithm = ca.require_signer().algorithm
    label = f"cmp-responder-{ca_id}-{services.random_bytes(6).hex()}"
    signer = await asyncio.get_running_loop().run_in_executor(
        services.executor, services.keys.generate, label, algorithm
    )
    spki = signer.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    issued = await services.issuance.issue(
        IssuanceRequest(
            ca=ca_id,
            profile=PROFILE,
            requester=Requester("cmp", "responder"),
            public_key=spki,
            pop_verified=True,  # the key was made here, by the key backend
            subject=responder_subject(ca_id),
            allow_internal_profile=True,
        )
    )
    return _credential(signer, issued.der)


def _credential(signer: Signer, certificate_der: bytes) -> ResponderCredential:
    cert = x509.load_der_x509_certificate(certificate_der)
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    scheme, hash_name = protection.signature_algorithm_of_key(
        signer.public_key(), signer.algorithm.signature_hash().name
    )
    return ResponderCredential(
        signer=signer,
        certificate=certificate_der,
        subject=cert.subject.public_bytes(),
        key_identifier=ski,
        not_after=cert.not_valid_after_utc,
        algorithm=codec.signature_algorithm_for(scheme, hash_name),
    )


async def _destroy(services: Services, key_ref: str) -> None:
    try:
        await asyncio.get_running_loop().run_in_executor(services.executor, services.keys.destroy, key_ref)
    except Exception:  # a key left behind is harmless; the credential in use is another one
        log.warning("could not destroy an unused CMP responder key", extra={"key_ref": key_ref})
