"""Delegated OCSP responder certificates (RFC 6960 4.2.2.2), one current per CA.

Rules:
- Issued by the CA it answers for, from the basic-ocsp profile (30 days, EKU
  id-kp-OCSPSigning, id-pkix-ocsp-nocheck), through IssuanceService like any certificate.
- Its key is generated in the same key backend as the CA's (a PKCS#11 CA gets a PKCS#11
  responder key), with the CA key's algorithm.
- Which credential is current lives in the state store (namespace `ocsp-responder`, key =
  CA id), changed by compare-and-set: if two workers renew at once, one wins and the
  other destroys the key it made (its certificate stays on record, keyless and unused).
- Renewed by the scheduler when less than `renew_before` remains; on a request only when
  it could not cover a full response validity any more. The previous key is kept
  through one more renewal, so a worker still signing with it for a few seconds can.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from ca_core.authority import CertificateAuthority
from ca_core.clock import Clock, RandomBytes
from ca_core.errors import Conflict, InvalidState
from ca_core.issuance import IssuanceService
from ca_core.keys import KeyStore, Signer
from ca_core.model import IssuanceRequest, Requester, utc
from ca_core.store import Store

log = logging.getLogger(__name__)

NAMESPACE = "ocsp-responder"
PROFILE = "basic-ocsp"


@dataclass(frozen=True, slots=True)
class ResponderCredential:
    ca_id: str
    serial: str
    certificate: bytes
    key_ref: str
    not_after: dt.datetime

    def as_document(self) -> dict[str, Any]:
        return {
            "serial": self.serial,
            "certificate": self.certificate.hex(),
            "key_ref": self.key_ref,
            "not_after": self.not_after.isoformat(),
        }

    @classmethod
    def of_document(cls, ca_id: str, doc: dict[str, Any]) -> ResponderCredential:
        return cls(
            ca_id,
            doc["serial"],
            bytes.fromhex(doc["certificate"]),
            doc["key_ref"],
            utc(dt.datetime.fromisoformat(doc["not_after"])),
        )


class ResponderCertificates:
    def __init__(
        self,
        store: Store,
        keys: KeyStore,
        issuance: IssuanceService,
        clock: Clock,
        random_bytes: RandomBytes,
        executor: Executor | None = None,
        renew_before: dt.timedelta = dt.timedelta(days=10),
    ) -> None:
        self._store = store
        self._keys = keys
        self._issuance = issuance
        self._clock = clock
        self._random = random_bytes
        self._executor = executor
        self.renew_before = renew_before
        self._signers: dict[str, Signer] = {}

    async def _blocking(self, fn, *args):  # type: ignore[no-untyped-def]
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def current(self, ca_id: str) -> ResponderCredential | None:
        doc = await self._store.state.get(NAMESPACE, ca_id)
        if doc is None or not doc.document.get("current"):
            return None
        return ResponderCredential.of_document(ca_id, doc.document["current"])

    async def ensure(self, ca: CertificateAuthority, min_remaining: dt.timedelta) -> ResponderCredential:
        """The current credential, issuing a new one if there is none or it has less than
        `min_remaining` left."""
        doc = await self._store.state.get(NAMESPACE, ca.id)
        current = doc.document.get("current") if doc else None
        if current:
            credential = ResponderCredential.of_document(ca.id, current)
            if credential.not_after - self._clock.now() >= min_remaining:
                return credential
        return await self._issue(ca, doc.version if doc else None, doc.document if doc else {})

    async def renew_if_due(self, ca: CertificateAuthority) -> ResponderCredential | None:
        """The scheduler's call: renew when less than `renew_before` remains."""
        doc = await self._store.state.get(NAMESPACE, ca.id)
        current = doc.document.get("current") if doc else None
        if current:
            credential = ResponderCredential.of_document(ca.id, current)
            if credential.not_after - self._clock.now() >= self.renew_before:
                return None
        return await self._issue(ca, doc.version if doc else None, doc.document if doc else {})

    async def signer(self, credential: ResponderCredential) -> Signer:
        found = self._signers.get(credential.key_ref)
        if found is None:
            found = await self._blocking(self._keys.load, credential.key_ref)
            self._signers[credential.key_ref] = found
        return found

    async def _issue(
        self, ca: CertificateAuthority, version: int | None, document: dict[str, Any]
    ) -> ResponderCredential:
        ca_signer = ca.require_signer()
        now = self._clock.now()
        label = f"{ca.id}-ocsp-{now:%Y%m%d%H%M%S}-{self._random(4).hex()}"
        signer: Signer = await self._blocking(self._keys.generate, label, ca_signer.algorithm)
        try:
            spki = signer.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            issued = await self._issuance.issue(
                IssuanceRequest(
                    ca=ca.id,
                    profile=PROFILE,
                    requester=Requester("ocsp", "ceg"),
                    public_key=spki,
                    pop_verified=True,
                    subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{ca.id} OCSP Responder")]),
                    allow_internal_profile=True,
                )
            )
        except BaseException:
            await self._blocking(self._keys.destroy, signer.key_ref)
            raise
        credential = ResponderCredential(
            ca.id, issued.serial_hex, issued.der, signer.key_ref, issued.not_after
        )
        new_doc = {"current": credential.as_document(), "previous": document.get("current")}
        try:
            if version is None:
                await self._store.state.create(NAMESPACE, ca.id, new_doc, now)
            else:
                await self._store.state.put(NAMESPACE, ca.id, new_doc, now, expected_version=version)
        except Conflict:
            # Another worker renewed at the same moment: use theirs, retire this key.
            await self._blocking(self._keys.destroy, signer.key_ref)
            log.info("responder renewal lost a race", extra={"ca": ca.id, "serial": credential.serial})
            winner = await self.current(ca.id)
            if winner is None:
                raise InvalidState(f"no OCSP responder for {ca.id}", ca=ca.id) from None
            return winner
        self._signers[signer.key_ref] = signer
        retired = document.get("previous")
        if retired and retired.get("key_ref") not in (
            credential.key_ref,
            (document.get("current") or {}).get("key_ref"),
        ):
            self._signers.pop(retired["key_ref"], None)
            await self._blocking(self._keys.destroy, retired["key_ref"])
        log.info(
            "OCSP responder certificate issued",
            extra={"ca": ca.id, "serial": credential.serial, "not_after": credential.not_after.isoformat()},
        )
        return credential
