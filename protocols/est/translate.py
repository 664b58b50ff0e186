"""EST requests to the common IssuanceRequest, and CA-core errors to EST's HTTP answers.

Status codes (RFC 7030 4.2.3, RFC 8951 section 4; RFC 9110 for their meaning):
bad request and policy refusals 400, unauthenticated 401 (with a Basic challenge),
forbidden 403, unknown 404, conflicting state 409, rate limited 429 with Retry-After,
anything internal 500 without details (they stay in the log and the audit trail).
"""

from __future__ import annotations

import math
from collections.abc import Collection

from ca_core.errors import Category, CegError, RateLimited
from ca_core.model import IssuanceRequest, Requester
from protocols.est.codec import CsrView
from protocols.est.core import basic_challenge
from protocols.est.errors import EstError

_STATUS = {
    Category.BAD_REQUEST: 400,
    Category.POLICY: 400,
    Category.UNAUTHORIZED: 401,
    Category.FORBIDDEN: 403,
    Category.NOT_FOUND: 404,
    Category.CONFLICT: 409,
    Category.RATE_LIMITED: 429,
}


def enrollment_request(
    ca: str,
    profile: str,
    csr: CsrView,
    requester: Requester,
    accepted_extensions: Collection[str],
    renewal_of: str | None = None,
) -> IssuanceRequest:
    """simpleenroll / simplereenroll: the CSR itself (its signature is the proof of
    possession); requested extensions the profile does not accept are left out."""
    return IssuanceRequest(
        ca=ca,
        profile=profile,
        requester=requester,
        csr=csr.der,
        extensions=tuple(e for e in csr.extensions if e.oid in accepted_extensions),
        renewal_of=renewal_of,
    )


def keygen_request(
    ca: str,
    profile: str,
    csr: CsrView,
    public_key_der: bytes,
    requester: Requester,
    accepted_extensions: Collection[str],
) -> IssuanceRequest:
    """serverkeygen: the names come from the CSR, the key is the one the server just made
    (RFC 7030 4.4.1: the CSR's own key and signature are ignored)."""
    return IssuanceRequest(
        ca=ca,
        profile=profile,
        requester=requester,
        public_key=public_key_der,
        pop_verified=True,
        subject=csr.subject,
        subject_alt_names=csr.subject_alt_names,
        extensions=tuple(e for e in csr.extensions if e.oid in accepted_extensions),
    )


def error_for(exc: CegError, ca: str) -> EstError:
    """The EST answer to a CA-core refusal."""
    status = _STATUS.get(exc.category, 500)
    if status == 500:
        return EstError(500, "internal error; the request id in X-Request-Id identifies it in the log")
    headers: dict[str, str] = {}
    if status == 401:
        headers.update(basic_challenge(ca))
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    return EstError(status, exc.message, headers)
