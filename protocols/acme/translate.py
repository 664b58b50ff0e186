"""ACME to and from the CA core: an order and its CSR become the common IssuanceRequest
(RFC 8555 7.4), ACME reason codes become RevocationReasons (7.6), and CA-core errors
become problem documents (6.7). Internal errors never show their details on the wire.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging

from cryptography import x509
from cryptography.x509.oid import NameOID

from ca_core.errors import (
    BadCsr,
    BadSubjectAltName,
    Category,
    CegError,
    InvalidState,
    ProfileNotEnabled,
    RateLimited,
    UnsupportedKey,
)
from ca_core.model import IssuanceRequest, Requester, RevocationReason
from ca_core.x509.csr import ParsedCsr, parse_csr
from protocols.acme.core import csr_identifiers, issuance_key
from protocols.acme.model import Identifier, Order
from protocols.acme.problems import AcmeProblem, ProblemType
from protocols.acme.settings import AcmeSettings

log = logging.getLogger(__name__)

# RFC 5280 CRLReason codes an ACME client may give (7.6). certificateHold (6) is not
# revocation and removeFromCRL (8) is not a request a subscriber makes.
_REASONS = {
    0: RevocationReason.UNSPECIFIED,
    1: RevocationReason.KEY_COMPROMISE,
    3: RevocationReason.AFFILIATION_CHANGED,
    4: RevocationReason.SUPERSEDED,
    5: RevocationReason.CESSATION_OF_OPERATION,
}


def revocation_reason(code: int) -> RevocationReason:
    reason = _REASONS.get(code)
    if reason is None:
        raise AcmeProblem(
            ProblemType.BAD_REVOCATION_REASON,
            f"reason {code} is not accepted; use one of {', '.join(str(c) for c in sorted(_REASONS))}",
        )
    return reason


def problem_of(exc: CegError, finalizing: bool = False) -> AcmeProblem:
    """The ACME problem for a CA-core error. While finalizing, anything wrong with the
    request is the CSR's fault (badCSR), so the client knows to amend and retry."""
    if isinstance(exc, BadCsr | UnsupportedKey | BadSubjectAltName):
        return AcmeProblem(ProblemType.BAD_CSR, exc.message)
    if isinstance(exc, ProfileNotEnabled):
        return AcmeProblem(ProblemType.INVALID_PROFILE, exc.message)
    if isinstance(exc, RateLimited):
        return AcmeProblem(
            ProblemType.RATE_LIMITED,
            exc.message,
            429,
            headers={"Retry-After": str(int(exc.retry_after + 0.999))},
        )
    if finalizing and exc.category in (Category.BAD_REQUEST, Category.POLICY):
        return AcmeProblem(ProblemType.BAD_CSR, exc.message)
    if exc.category is Category.BAD_REQUEST:
        return AcmeProblem(ProblemType.MALFORMED, exc.message)
    if exc.category is Category.POLICY:
        return AcmeProblem(ProblemType.REJECTED_IDENTIFIER, exc.message)
    if exc.category in (Category.UNAUTHORIZED, Category.FORBIDDEN):
        return AcmeProblem(ProblemType.UNAUTHORIZED, exc.message, 403)
    if exc.category is Category.NOT_FOUND:
        return AcmeProblem(ProblemType.MALFORMED, exc.message, 404)
    if isinstance(exc, InvalidState):
        return AcmeProblem(ProblemType.MALFORMED, exc.message, 409)
    if exc.category is Category.CONFLICT:
        return AcmeProblem(ProblemType.MALFORMED, exc.message, 409)
    log.error("CA core error answered as serverInternal: %s", exc, extra={"code": exc.code})
    return AcmeProblem(ProblemType.SERVER_INTERNAL, "the CA could not complete the request", 500)


def parse_order_csr(der: bytes) -> tuple[ParsedCsr, set[Identifier], str | None]:
    """The CSR, the identifiers it names, and its CN if any. Its signature is checked
    once, by IssuanceService (a failure there is badCSR and reopens the order)."""
    try:
        parsed = parse_csr(der, verify_signature=False)
        sans = parsed.subject_alt_names()
    except CegError as exc:
        raise problem_of(exc, finalizing=True) from None
    dns = [n.value for n in sans if isinstance(n, x509.DNSName)]
    ips = [str(n.value) for n in sans if isinstance(n, x509.IPAddress)]
    others = [n for n in sans if not isinstance(n, x509.DNSName | x509.IPAddress)]
    if others:
        raise AcmeProblem(ProblemType.BAD_CSR, "the CSR asks for names other than DNS names and IP addresses")
    cns = parsed.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(cns) > 1:
        raise AcmeProblem(ProblemType.BAD_CSR, "the CSR has more than one common name")
    common_name = str(cns[0].value) if cns else None
    try:
        names = csr_identifiers(dns, ips, common_name)
    except ValueError:
        raise AcmeProblem(ProblemType.BAD_CSR, "the CSR names an invalid IP address") from None
    return parsed, names, common_name


def issuance_request(
    order: Order,
    csr_der: bytes,
    common_name: str | None,
    settings: AcmeSettings,
    requester: Requester,
) -> IssuanceRequest:
    """SANs come from the order (already proven); the CN only if the CSR asked for one
    of the order's names; validity from the order or the binding's default."""
    sans: list[x509.GeneralName] = [
        x509.DNSName(i.value) if i.type == "dns" else x509.IPAddress(ipaddress.ip_address(i.value))
        for i in order.identifiers
    ]
    names = {i.value for i in order.identifiers}
    if common_name is not None and common_name.lower() in names and len(common_name) <= 64:
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name.lower())])
    else:
        subject = x509.Name([])
    return IssuanceRequest(
        ca=order.ca,
        profile=order.profile,
        requester=requester,
        csr=csr_der,
        subject=subject,
        subject_alt_names=tuple(sans),
        not_before=order.not_before,
        not_after=order.not_after,
        validity=None if order.not_after else dt.timedelta(days=settings.default_validity_days),
        renewal_of=order.replaces,
        request_key=issuance_key(order),
    )
