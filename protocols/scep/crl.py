"""The CRL a GetCRL answers with (RFC 8894 3.3.5; RFC 5280 5).

A stopgap, kept to one function on purpose: the CA core's status service (CRL per CA,
regenerated on a schedule and after revocations, ARCHITECTURE.md section 7) is being
built on another branch. Until it lands, GetCRL builds a fresh CRL from the store here:
every revoked and held certificate of the CA, signed with the CA key, numbered from the
shared counter `crl:<ca>` (so numbers stay monotonic if the status service uses the same
counter). When the status service exists, `current_crl` should return its CRL instead.
"""

from __future__ import annotations

import asyncio
import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ca_core.model import CertificateRecord, CertStatus, RevocationReason
from ca_core.services import Services
from ca_core.store import CertificateQuery

NEXT_UPDATE = dt.timedelta(days=7)


async def _records(services: Services, ca: str, status: CertStatus) -> list[CertificateRecord]:
    out: list[CertificateRecord] = []
    offset = 0
    while True:
        page = await services.store.certificates.search(
            CertificateQuery(ca=ca, status=status, limit=500, offset=offset)
        )
        out.extend(page.items)
        if not page.has_more:
            return out
        offset += len(page.items)


def _entry(record: CertificateRecord, now: dt.datetime) -> x509.RevokedCertificate:
    builder = (
        x509.RevokedCertificateBuilder()
        .serial_number(record.serial_int)
        .revocation_date(record.revoked_at or now)
    )
    reason = record.revocation_reason
    if record.status is CertStatus.HELD:
        reason = RevocationReason.CERTIFICATE_HOLD
    if reason is not None and reason is not RevocationReason.UNSPECIFIED:
        builder = builder.add_extension(x509.CRLReason(reason.x509_flag), critical=False)
    if record.invalidity_date is not None:
        builder = builder.add_extension(x509.InvalidityDate(record.invalidity_date), critical=False)
    return builder.build()


async def current_crl(services: Services, ca_id: str) -> bytes:
    """A DER CRL of CA `ca_id`, signed now."""
    ca = await services.authority.get(ca_id)
    signer = ca.require_signer()
    assert ca.certificate is not None
    now = services.clock.now().replace(microsecond=0)
    records = [
        *await _records(services, ca_id, CertStatus.REVOKED),
        *await _records(services, ca_id, CertStatus.HELD),
    ]
    number = await services.store.counters.next_value(f"crl:{ca_id}")
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.certificate.subject)
        .last_update(now)
        .next_update(now + NEXT_UPDATE)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier(ca.key_identifier, None, None), critical=False)
    )
    for record in records:
        builder = builder.add_revoked_certificate(_entry(record, now))
    key, hash_algorithm = signer.private_key(), signer.algorithm.signature_hash()

    def sign() -> bytes:
        return builder.sign(key, hash_algorithm).public_bytes(Encoding.DER)  # type: ignore[arg-type]

    if signer.blocking:
        return await asyncio.get_running_loop().run_in_executor(services.executor, sign)
    return sign()
