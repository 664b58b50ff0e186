"""SCEP to the common issuance request and back (ARCHITECTURE.md section 3).

- A PKCSReq/RenewalReq's PKCS#10 becomes an IssuanceRequest whose key the CSR's
  signature has proven (`pop_verified`): the subject, SANs and the request extensions
  the profile accepts are taken from it; the challengePassword never leaves this layer
  (it would otherwise sit in a pending approval's stored request).
- A CegError becomes a failInfo (RFC 8894 3.2.1.4.5). SCEP's failInfo vocabulary is
  small: every refusal of the request itself is badRequest.
"""

from __future__ import annotations

from cryptography import x509

from ca_core.errors import CegError, NotFound
from ca_core.model import IssuanceRequest, RequestedExtension, Requester
from ca_core.profiles import Profile
from ca_core.x509.csr import ParsedCsr
from protocols.scep.core import MS_TEMPLATE_NAME
from protocols.scep.errors import FailInfo, ScepFailure


def template_name(csr: x509.CertificateSigningRequest) -> str | None:
    """The Microsoft certificateTemplateName a CSR asks for (a BMPString), if any."""
    from asn1crypto import core

    for ext in _extensions(csr):
        if ext.oid.dotted_string == MS_TEMPLATE_NAME and isinstance(ext.value, x509.UnrecognizedExtension):
            try:
                value = core.Asn1Value.load(ext.value.value).native
            except (ValueError, TypeError):
                return None
            return value if isinstance(value, str) else None
    return None


def _extensions(csr: x509.CertificateSigningRequest) -> list[x509.Extension[x509.ExtensionType]]:
    try:
        return list(csr.extensions)
    except ValueError:
        return []


def requested_extensions(
    csr: x509.CertificateSigningRequest, profile: Profile
) -> tuple[RequestedExtension, ...]:
    """The CSR's extensions the profile lets a request add; the rest (key usages, basic
    constraints...) are the profile's to decide and are ignored, as every SCEP CA does."""
    out = []
    for ext in _extensions(csr):
        oid = ext.oid.dotted_string
        if profile.accepts_extension(oid):
            out.append(RequestedExtension(oid, ext.value.public_bytes(), ext.critical))
    return tuple(out)


def to_issuance_request(
    ca: str,
    profile: Profile,
    csr: ParsedCsr,
    requester: Requester,
    renewal_of: str | None = None,
    request_key: str | None = None,
) -> IssuanceRequest:
    return IssuanceRequest(
        ca=ca,
        profile=profile.id,
        requester=requester,
        public_key=csr.public_key_der,
        pop_verified=True,  # the CSR's own signature was verified by parse_csr
        subject=csr.subject,
        subject_alt_names=csr.subject_alt_names(),
        extensions=requested_extensions(csr.csr, profile),
        renewal_of=renewal_of,
        request_key=request_key,
    )


def fail_info_for(error: CegError) -> FailInfo:
    if isinstance(error, NotFound):
        return FailInfo.BAD_CERT_ID
    return FailInfo.BAD_REQUEST


def failure_of(error: CegError, audited: bool) -> ScepFailure:
    return ScepFailure(fail_info_for(error), error.message, audited=audited)
