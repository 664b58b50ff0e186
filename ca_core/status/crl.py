"""The full CRL of one CA, encoded by hand and signed through the CA's Signer (I/O-free).

RFC 5280 section 5: a v2 CertificateList whose TBSCertList carries
- crlExtensions: authorityKeyIdentifier (5.2.1), cRLNumber (5.2.3), and X.509's
  expiredCertsOnCRL (ITU-T X.509 9.6.2.9, OID 2.5.29.60): ceg never drops a revoked
  certificate when it expires, so the extension names the CA's own notBefore;
- per entry: reasonCode (5.3.1; absent for `unspecified`, as 5.3.1 recommends) and
  invalidityDate (5.3.2). Held certificates appear with certificateHold; a full CRL drops
  them again after unhold (5.3.1's removeFromCRL is for delta CRLs only).

Entries are encoded straight into bytes in one loop: a million entries take about a
second here, where building one cryptography object per entry takes minutes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from ca_core.keys import Signer
from ca_core.model import KeyAlgorithm, RevocationReason
from ca_core.status import der

# (serial as stored: lower-case hex; revocation time; reason name or None; invalidity date)
RevokedEntry = tuple[str, dt.datetime, str | None, dt.datetime | None]

_AUTHORITY_KEY_IDENTIFIER = der.oid("2.5.29.35")
_CRL_NUMBER = der.oid("2.5.29.20")
_EXPIRED_CERTS_ON_CRL = der.oid("2.5.29.60")
_REASON_CODE = der.oid("2.5.29.21")
_INVALIDITY_DATE = der.oid("2.5.29.24")

# The whole reasonCode Extension, per reason: entries reuse these bytes.
_REASON_EXTENSIONS: dict[str | None, bytes] = {
    reason.value: der.extension(_REASON_CODE, der.enumerated(reason.code))
    for reason in RevocationReason
    if reason is not RevocationReason.UNSPECIFIED
}


@dataclass(frozen=True, slots=True)
class CrlContent:
    """Everything a CRL says, before it is signed."""

    issuer_name: bytes  # DER of the CA certificate's subject Name
    authority_key_id: bytes  # the CA's subjectKeyIdentifier
    number: int
    this_update: dt.datetime
    next_update: dt.datetime
    expired_certs_since: dt.datetime
    signature_algorithm: KeyAlgorithm


def encode_entries(entries: Iterable[RevokedEntry]) -> tuple[bytes, int]:
    """The revokedCertificates contents (without its SEQUENCE header), and the entry count."""
    parts: list[bytes] = []
    append = parts.append
    serial_of = der.serial_from_hex
    length = der.length
    reasons = _REASON_EXTENSIONS
    invalidity_oid = _INVALIDITY_DATE
    # Revocation times repeat (bulk revocations, same second): encode each second once.
    times: dict[dt.datetime, bytes] = {}
    count = 0
    for serial, revoked_at, reason, invalidity in entries:
        count += 1
        when = revoked_at.replace(microsecond=0)
        encoded_time = times.get(when)
        if encoded_time is None:
            encoded_time = times[when] = der.x509_time(when)
        body = serial_of(serial) + encoded_time
        exts = reasons.get(reason, b"")
        if invalidity is not None:
            exts += der.extension(invalidity_oid, der.generalized_time(invalidity))
        if exts:
            body += b"\x30" + length(len(exts)) + exts
        append(b"\x30" + length(len(body)) + body)
    return b"".join(parts), count


def encode_tbs(content: CrlContent, revoked: bytes) -> bytes:
    """TBSCertList (RFC 5280 5.1.2) around already encoded revokedCertificates contents."""
    extensions = b"".join(
        (
            der.extension(_AUTHORITY_KEY_IDENTIFIER, der.sequence(der.tlv(0x80, content.authority_key_id))),
            der.extension(_CRL_NUMBER, der.integer(content.number)),
            der.extension(_EXPIRED_CERTS_ON_CRL, der.generalized_time(content.expired_certs_since)),
        )
    )
    return der.sequence(
        der.integer(1),  # v2: extensions are present
        der.signature_algorithm(content.signature_algorithm),
        content.issuer_name,
        der.x509_time(content.this_update),
        der.x509_time(content.next_update),
        der.tlv(0x30, revoked) if revoked else b"",  # absent, not empty, when nothing is revoked
        der.explicit(0, der.sequence(extensions)),
    )


def assemble(tbs: bytes, algorithm: KeyAlgorithm, signature: bytes) -> bytes:
    """CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue }."""
    return der.sequence(tbs, der.signature_algorithm(algorithm), der.bit_string(signature))


def sign_crl(content: CrlContent, entries: Iterable[RevokedEntry], signer: Signer) -> tuple[bytes, int]:
    """Encode and sign; returns the CRL DER and its entry count. Blocking for large lists."""
    if signer.algorithm is not content.signature_algorithm:
        raise ValueError("the CRL's signature algorithm must be the signer's")
    revoked, count = encode_entries(entries)
    tbs = encode_tbs(content, revoked)
    return assemble(tbs, signer.algorithm, signer.sign(tbs)), count
