"""CMS (RFC 5652) pieces several protocols share."""

from __future__ import annotations

from collections.abc import Sequence

from asn1crypto import cms
from asn1crypto import x509 as asn1_x509


def certs_only(certificates: Sequence[bytes]) -> bytes:
    """A degenerate SignedData ("certs-only", RFC 5652 5.2; RFC 7030 4.1.3; RFC 8894 3.4):
    no content, no signers, just the certificates. Returns the DER ContentInfo."""
    signed = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [],
            "encap_content_info": {"content_type": "data"},
            "certificates": [asn1_x509.Certificate.load(der) for der in certificates],
            "signer_infos": [],
        }
    )
    return cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump()


def certificates_of(content_info_der: bytes) -> list[bytes]:
    """The certificates of a certs-only (or any) SignedData."""
    info = cms.ContentInfo.load(content_info_der)
    if info["content_type"].native != "signed_data":
        raise ValueError("not a CMS SignedData")
    certs = info["content"]["certificates"]
    return [c.chosen.dump() for c in certs] if certs else []
