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

# (serial as stored: lower-case hex; revocation time; reason name or None; invalidity date).
# Times are datetimes (aware, or naive UTC) or, straight from SQLite, the stored UTC text
# 'YYYY-MM-DD HH:MM:SS.ffffff', which is sliced into DER without a datetime in between.
StoredTime = dt.datetime | str
RevokedEntry = tuple[str, StoredTime, str | None, StoredTime | None]

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


# One-octet DER lengths, and the UTCTime header: the entry loop's building blocks.
_SHORT = [bytes((n,)) for n in range(128)]
_UTC_TIME = b"\x17\x0d"


def _stored_text(value: str) -> bool:
    """Is this SQLite's stored form 'YYYY-MM-DD HH:MM:SS[.ffffff]' (no offset: UTC)?"""
    size = len(value)
    return (
        (size == 19 or (size == 26 and value[19] == "."))
        and value[4] == "-"
        and value[7] == "-"
        and value[10] == " "
        and value[13] == ":"
        and value[16] == ":"
    )


def _digits(value: str, century: bool) -> bytes:
    """'YYYY-MM-DD HH:MM:SS...' -> b'[YY]YYMMDDHHMMSSZ'."""
    return (
        value[0 if century else 2 : 4]
        + value[5:7]
        + value[8:10]
        + value[11:13]
        + value[14:16]
        + value[17:19]
        + "Z"
    ).encode()


def _parsed(value: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not a stored time: {value!r}") from None
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)


def _generalized_time(value: StoredTime) -> bytes:
    if isinstance(value, str):
        if _stored_text(value) and value[:4].isdigit():
            return b"\x18\x0f" + _digits(value, century=True)
        value = _parsed(value)
    return der.generalized_time(value)


def _utc_time(value: StoredTime) -> bytes:
    """UTCTime (or GeneralizedTime from 2050) of a naive-UTC or aware time, whole seconds."""
    if isinstance(value, str):
        if _stored_text(value) and value[:4].isdigit() and "1950" <= value[:4] < "2050":
            return _UTC_TIME + _digits(value, century=False)
        value = _parsed(value)
    if value.tzinfo is not None and value.utcoffset():
        value = value.astimezone(dt.UTC)
    year = value.year
    if 1950 <= year < 2050:
        return _UTC_TIME + b"%02d%02d%02d%02d%02d%02dZ" % (
            year % 100,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
        )
    return der.generalized_time(value)


def encode_entries(entries: Iterable[RevokedEntry]) -> tuple[bytes, int]:
    """The revokedCertificates contents (without its SEQUENCE header), and the entry count.

    The hot loop of a large CRL: everything is inlined for entries under 128 octets (all
    of ceg's: 16-octet serials), with the general encoders as the fallback.
    """
    parts: list[bytes] = []
    append = parts.append
    fromhex = bytes.fromhex
    short = _SHORT
    reasons = _REASON_EXTENSIONS
    invalidity_oid = _INVALIDITY_DATE
    count = 0
    for serial, revoked_at, reason, invalidity in entries:
        count += 1
        if len(serial) & 1:
            serial = "0" + serial
        raw = fromhex(serial)
        if raw[0] & 0x80:
            raw = b"\x00" + raw
        elif raw[0] == 0 and len(raw) > 1:  # not how serials are stored; be exact anyway
            raw = der.serial_from_hex(serial)[2:]
        size = len(raw)  # at most 20 octets (RFC 5280 4.1.2.2); the store keeps 40 hex digits
        body = b"\x02" + (short[size] if size < 128 else der.length(size)) + raw + _utc_time(revoked_at)
        exts = reasons.get(reason, b"")
        if invalidity is not None:
            exts += der.extension(invalidity_oid, _generalized_time(invalidity))
        if exts:
            body += b"\x30" + short[len(exts)] + exts
        size = len(body)
        append(b"\x30" + (short[size] if size < 128 else der.length(size)) + body)
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


def sign_encoded(content: CrlContent, revoked: bytes, signer: Signer) -> bytes:
    """Wrap already encoded entries (see `encode_entries`) into a CRL signed by `signer`."""
    if signer.algorithm is not content.signature_algorithm:
        raise ValueError("the CRL's signature algorithm must be the signer's")
    tbs = encode_tbs(content, revoked)
    return assemble(tbs, signer.algorithm, signer.sign(tbs))


def sign_crl(content: CrlContent, entries: Iterable[RevokedEntry], signer: Signer) -> tuple[bytes, int]:
    """Encode and sign; returns the CRL DER and its entry count. Blocking for large lists."""
    revoked, count = encode_entries(entries)
    return sign_encoded(content, revoked, signer), count
