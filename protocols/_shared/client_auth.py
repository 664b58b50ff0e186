"""Checking a TLS client certificate (or a CMS/CMP signer certificate) that claims to be
one this CA issued: it must be ours, byte for byte, and in service (not revoked, held
or expired). Used by EST (mTLS, simplereenroll), CMP (signature protection, kur) and
SCEP (RenewalReq)."""

from __future__ import annotations

from cryptography import x509

from ca_core.errors import Forbidden, Unauthorized
from ca_core.model import CertificateRecord, CertStatus
from ca_core.services import Services


async def issued_here(services: Services, ca: str, certificate_der: bytes) -> CertificateRecord:
    """The stored record of `certificate_der` if `ca` issued it and it is in service.

    Unauthorized: not a certificate of this CA. Forbidden: ours, but revoked, held or expired.
    """
    try:
        cert = x509.load_der_x509_certificate(certificate_der)
    except ValueError:
        raise Unauthorized("the client certificate does not parse") from None
    record = await services.store.certificates.get(format(cert.serial_number, "x"), ca=ca)
    if record is None or record.der != certificate_der:
        raise Unauthorized(f"the certificate was not issued by CA {ca}")
    status = record.effective_status(services.clock.now())
    if status is not CertStatus.NORMAL:
        raise Forbidden(f"the certificate {record.serial} is {status.value}", serial=record.serial)
    if services.clock.now() < record.not_before:
        raise Forbidden(f"the certificate {record.serial} is not valid yet", serial=record.serial)
    return record
