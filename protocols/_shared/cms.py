"""CMS (RFC 5652) pieces several protocols share."""

from __future__ import annotations

from collections.abc import Sequence

from asn1crypto import cms


def certs_only(certificates: Sequence[bytes]) -> bytes:
    """A degenerate SignedData ("certs-only", RFC 5652 5.2; RFC 7030 4.1.3; RFC 8894 3.4):
    no content, no signers, just the certificates. Returns the DER ContentInfo.

    Written out directly (the bytes asn1crypto would produce, a test checks it): it is on
    every enrollment's hot path, and building it through asn1crypto costs ~0.1 ms."""
    for der in certificates:
        if len(der) < 2 or der[0] != 0x30:
            raise ValueError("not a DER certificate")
    # SET OF in DER (X.690 11.6): elements in ascending order of their encodings.
    cert_set = b"".join(sorted(certificates))
    signed_data = _tlv(
        0x30,
        _VERSION_1 + _EMPTY_SET + _DATA_CONTENT_INFO + _tlv(0xA0, cert_set) + _EMPTY_SET,
    )
    return _tlv(0x30, _SIGNED_DATA_OID + _tlv(0xA0, signed_data))


_VERSION_1 = b"\x02\x01\x01"
_EMPTY_SET = b"\x31\x00"
_DATA_CONTENT_INFO = b"\x30\x0b\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x01"  # { id-data }
_SIGNED_DATA_OID = b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x02"


def _tlv(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes((tag, size)) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + content


def certificates_of(content_info_der: bytes) -> list[bytes]:
    """The certificates of a certs-only (or any) SignedData."""
    info = cms.ContentInfo.load(content_info_der)
    if info["content_type"].native != "signed_data":
        raise ValueError("not a CMS SignedData")
    certs = info["content"]["certificates"]
    return [c.chosen.dump() for c in certs] if certs else []
