"""Just enough DER (ITU-T X.690 section 10) to build CRLs and OCSP responses by hand.

cryptography's CRL builder copies its entry list on every addition (100,000 entries take
~12 s), and its OCSP builder answers one certificate per response; so the TBSCertList
(RFC 5280 5.1) and the OCSP ResponseData (RFC 6960 4.2.1) are encoded here and only the
signature comes from the Signer. Everything is definite-length, minimal DER.
"""

from __future__ import annotations

import datetime as dt

from ca_core.model import KeyAlgorithm

NULL = b"\x05\x00"
TRUE = b"\x01\x01\xff"


def length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(raw),)) + raw


def tlv(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + length(len(content)) + content


def sequence(*parts: bytes) -> bytes:
    return tlv(0x30, b"".join(parts))


def explicit(number: int, content: bytes) -> bytes:
    """A constructed context-specific tag [number] EXPLICIT around `content`."""
    return tlv(0xA0 | number, content)


def integer(value: int) -> bytes:
    if value == 0:
        return b"\x02\x01\x00"
    size = (value.bit_length() + 8) // 8 if value > 0 else ((-value - 1).bit_length() + 8) // 8
    return tlv(0x02, value.to_bytes(size, "big", signed=True))


def serial_from_hex(serial_hex: str) -> bytes:
    """The INTEGER for a stored (lower-case hex) serial number, without going through int."""
    if len(serial_hex) % 2:
        serial_hex = "0" + serial_hex
    raw = bytes.fromhex(serial_hex).lstrip(b"\x00") or b"\x00"
    if raw[0] & 0x80:
        raw = b"\x00" + raw
    return b"\x02" + length(len(raw)) + raw


def enumerated(value: int) -> bytes:
    return tlv(0x0A, value.to_bytes(1, "big"))


def octet_string(content: bytes) -> bytes:
    return tlv(0x04, content)


def bit_string(content: bytes) -> bytes:
    return tlv(0x03, b"\x00" + content)


def oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    body = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return tlv(0x06, bytes(body))


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def generalized_time(value: dt.datetime) -> bytes:
    """GeneralizedTime in whole seconds, Zulu (RFC 5280 4.1.2.5.2)."""
    return b"\x18\x0f" + _utc(value).strftime("%Y%m%d%H%M%SZ").encode()


def x509_time(value: dt.datetime) -> bytes:
    """UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 5.1.2.4)."""
    value = _utc(value)
    if 1950 <= value.year < 2050:
        return b"\x17\x0d" + value.strftime("%y%m%d%H%M%SZ").encode()
    return generalized_time(value)


def extension(extn_id: bytes, value: bytes, critical: bool = False) -> bytes:
    """Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }."""
    return sequence(extn_id, TRUE if critical else b"", octet_string(value))


# AlgorithmIdentifier of each CA key type's fixed signature pair (ARCHITECTURE.md 6):
# ECDSA without parameters (RFC 5758 3.2), RSA PKCS#1 v1.5 with NULL (RFC 4055 5).
_SIGNATURE_ALGORITHMS = {
    KeyAlgorithm.EC_P256: sequence(oid("1.2.840.10045.4.3.2")),
    KeyAlgorithm.EC_P384: sequence(oid("1.2.840.10045.4.3.3")),
    KeyAlgorithm.EC_P521: sequence(oid("1.2.840.10045.4.3.4")),
    KeyAlgorithm.RSA_2048: sequence(oid("1.2.840.113549.1.1.11"), NULL),
    KeyAlgorithm.RSA_3072: sequence(oid("1.2.840.113549.1.1.11"), NULL),
    KeyAlgorithm.RSA_4096: sequence(oid("1.2.840.113549.1.1.13"), NULL),
}


def signature_algorithm(algorithm: KeyAlgorithm) -> bytes:
    return _SIGNATURE_ALGORITHMS[algorithm]
