"""CMP <-> the common issuance request, and ceg errors -> CMP failInfo.

- A CertTemplate (RFC 4211 5) becomes an IssuanceRequest with the public key whose
  possession core.check_popo proved (`pop_verified=True`); its subject, subjectAltName,
  validity and the request extensions the catalogue knows are carried over. KeyUsage,
  ExtendedKeyUsage and basicConstraints are the profile's to decide, so requested values
  are ignored, as they are in a CSR; any other critical extension is refused
  (unacceptedExtension), any other non-critical one ignored.
- kur (RFC 9483 4.1.3): what the template leaves out is taken from the certificate being
  updated, which the request renews (`renewal_of`).
- Errors (RFC 9483 3.6.4 and 4): each ceg error category maps to one failInfo bit, and the
  details of internal errors never reach the wire.
"""

from __future__ import annotations

import logging

from cryptography import x509

from ca_core.errors import (
    BadCsr,
    BadRequest,
    BadSubjectAltName,
    CegError,
    Conflict,
    ExtensionNotAllowed,
    Forbidden,
    InvalidState,
    NotFound,
    PolicyViolation,
    ProfileNotEnabled,
    RateLimited,
    Unauthorized,
    UnsupportedKey,
)
from ca_core.model import IssuanceRequest, RequestedExtension, Requester
from ca_core.profiles import REQUEST_EXTENSION_OIDS
from protocols.cmp import codec
from protocols.cmp.codec import CertTemplate
from protocols.cmp.errors import CmpFailure

log = logging.getLogger(__name__)

_SUBJECT_ALT_NAME = "2.5.29.17"
# Decided by the profile, never by the requester (catalogue.toml, module docstring).
_PROFILE_DECIDES = {
    "2.5.29.15",  # keyUsage
    "2.5.29.37",  # extKeyUsage
    "2.5.29.19",  # basicConstraints
    "2.5.29.14",  # subjectKeyIdentifier
    "2.5.29.35",  # authorityKeyIdentifier
}
_REQUESTABLE = frozenset(REQUEST_EXTENSION_OIDS.values())


def issuance_request(
    ca: str,
    profile: str,
    requester: Requester,
    template: CertTemplate,
    old_certificate: x509.Certificate | None = None,
    renewal_of: str | None = None,
) -> IssuanceRequest:
    assert template.public_key is not None
    subject = _subject(template, old_certificate)
    sans, extensions = _extensions(template)
    if sans is None and old_certificate is not None:
        try:
            sans = tuple(
                old_certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            )
        except x509.ExtensionNotFound:
            sans = None
    return IssuanceRequest(
        ca=ca,
        profile=profile,
        requester=requester,
        public_key=template.public_key,
        pop_verified=True,
        subject=subject,
        subject_alt_names=sans,
        not_before=template.not_before,
        not_after=template.not_after,
        extensions=extensions,
        renewal_of=renewal_of,
    )


def _subject(template: CertTemplate, old: x509.Certificate | None) -> x509.Name | None:
    if template.subject is None:
        return old.subject if old is not None else None
    try:
        return codec.to_x509_name(template.subject)
    except ValueError as exc:
        raise CmpFailure("badCertTemplate", f"the template subject is not usable: {exc}") from None


def _extensions(
    template: CertTemplate,
) -> tuple[tuple[x509.GeneralName, ...] | None, tuple[RequestedExtension, ...]]:
    seen: set[str] = set()
    sans: tuple[x509.GeneralName, ...] | None = None
    requested: list[RequestedExtension] = []
    for ext in template.extensions:
        if ext.oid in seen:
            raise CmpFailure("badCertTemplate", f"extension {ext.oid} appears twice")
        seen.add(ext.oid)
        if ext.oid == _SUBJECT_ALT_NAME:
            try:
                sans = codec.subject_alt_names(ext.value)
            except ValueError as exc:
                raise CmpFailure("badCertTemplate", f"subjectAltName does not parse: {exc}") from None
        elif ext.oid in _REQUESTABLE:
            requested.append(RequestedExtension(ext.oid, ext.value, ext.critical))
        elif ext.oid in _PROFILE_DECIDES:
            continue
        elif ext.critical:
            raise CmpFailure("unacceptedExtension", f"critical extension {ext.oid} cannot be honoured")
    return sans, tuple(requested)


def failure_for(error: CegError) -> CmpFailure:
    """The CMP failure for a ceg error (internal details stay in the log)."""
    if isinstance(error, ExtensionNotAllowed):
        return CmpFailure("unacceptedExtension", error.message)
    if isinstance(error, UnsupportedKey | BadSubjectAltName | ProfileNotEnabled | PolicyViolation):
        return CmpFailure("badCertTemplate", error.message)
    if isinstance(error, BadCsr):
        return CmpFailure("badDataFormat", error.message)
    if isinstance(error, BadRequest):
        return CmpFailure("badRequest", error.message)
    if isinstance(error, Unauthorized | Forbidden):
        return CmpFailure("notAuthorized", error.message)
    if isinstance(error, NotFound):
        return CmpFailure("badCertId", error.message)
    if isinstance(error, InvalidState):
        return CmpFailure("systemUnavail", error.message)
    if isinstance(error, Conflict):
        return CmpFailure("badRequest", error.message)
    if isinstance(error, RateLimited):
        return CmpFailure("systemUnavail", f"{error.message}; retry after {int(error.retry_after)} s")
    log.error("CMP request failed inside ceg: %s", error.message, extra={"code": error.code})
    return CmpFailure("systemFailure", "internal error")
