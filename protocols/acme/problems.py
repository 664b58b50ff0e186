"""ACME problem documents (RFC 8555 section 6.7, RFC 7807).

Every refusal of the ACME front-end is an `AcmeProblem`: a type from the registry
(RFC 8555 6.7 and 9.7.4; RFC 9773 adds alreadyReplaced; draft-ietf-acme-profiles adds
invalidProfile), a detail for people, an HTTP status and, when several identifiers fail
at once, subproblems naming each identifier (RFC 8555 6.7.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

ERROR_NS = "urn:ietf:params:acme:error:"
PROBLEM_CONTENT_TYPE = "application/problem+json"


class ProblemType(StrEnum):
    ACCOUNT_DOES_NOT_EXIST = "accountDoesNotExist"
    ALREADY_REPLACED = "alreadyReplaced"
    ALREADY_REVOKED = "alreadyRevoked"
    BAD_CSR = "badCSR"
    BAD_NONCE = "badNonce"
    BAD_PUBLIC_KEY = "badPublicKey"
    BAD_REVOCATION_REASON = "badRevocationReason"
    BAD_SIGNATURE_ALGORITHM = "badSignatureAlgorithm"
    CAA = "caa"
    COMPOUND = "compound"
    CONNECTION = "connection"
    DNS = "dns"
    EXTERNAL_ACCOUNT_REQUIRED = "externalAccountRequired"
    INCORRECT_RESPONSE = "incorrectResponse"
    INVALID_CONTACT = "invalidContact"
    INVALID_PROFILE = "invalidProfile"
    MALFORMED = "malformed"
    ORDER_NOT_READY = "orderNotReady"
    RATE_LIMITED = "rateLimited"
    REJECTED_IDENTIFIER = "rejectedIdentifier"
    SERVER_INTERNAL = "serverInternal"
    TLS = "tls"
    UNAUTHORIZED = "unauthorized"
    UNSUPPORTED_CONTACT = "unsupportedContact"
    UNSUPPORTED_IDENTIFIER = "unsupportedIdentifier"
    USER_ACTION_REQUIRED = "userActionRequired"

    @property
    def urn(self) -> str:
        return ERROR_NS + self.value


# The status each type is sent with unless the raiser says otherwise (RFC 8555 6.7 leaves
# the choice to the server; these follow Boulder's and Pebble's practice).
_DEFAULT_STATUS: dict[ProblemType, int] = {
    ProblemType.UNAUTHORIZED: 403,
    ProblemType.ORDER_NOT_READY: 403,
    ProblemType.RATE_LIMITED: 429,
    ProblemType.SERVER_INTERNAL: 500,
    ProblemType.ALREADY_REPLACED: 409,
}


@dataclass(frozen=True, slots=True)
class Subproblem:
    type: ProblemType
    detail: str
    identifier: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type.urn, "detail": self.detail, "identifier": dict(self.identifier)}


class AcmeProblem(Exception):
    """An ACME error; the routes' middleware turns it into application/problem+json."""

    def __init__(
        self,
        type: ProblemType,
        detail: str,
        status: int | None = None,
        subproblems: tuple[Subproblem, ...] = (),
        algorithms: tuple[str, ...] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.type = type
        self.detail = detail
        self.status = status or _DEFAULT_STATUS.get(type, 400)
        self.subproblems = subproblems
        self.algorithms = algorithms
        self.headers = dict(headers or {})

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type.urn, "detail": self.detail, "status": self.status}
        if self.subproblems:
            body["subproblems"] = [s.to_json() for s in self.subproblems]
        if self.algorithms:
            body["algorithms"] = list(self.algorithms)
        return body

    def __repr__(self) -> str:
        return f"AcmeProblem({self.type.value!r}, {self.detail!r}, {self.status})"


def malformed(detail: str, status: int = 400) -> AcmeProblem:
    return AcmeProblem(ProblemType.MALFORMED, detail, status)


def unauthorized(detail: str) -> AcmeProblem:
    return AcmeProblem(ProblemType.UNAUTHORIZED, detail, 403)


def not_found(what: str) -> AcmeProblem:
    return AcmeProblem(ProblemType.MALFORMED, f"no such {what}", 404)


def problem_from_json(doc: dict[str, Any]) -> AcmeProblem:
    """Rebuild a problem stored on a challenge or an order (the inverse of to_json)."""
    raw = str(doc.get("type", "")).removeprefix(ERROR_NS)
    try:
        kind = ProblemType(raw)
    except ValueError:
        kind = ProblemType.SERVER_INTERNAL
    return AcmeProblem(kind, str(doc.get("detail", "")), int(doc.get("status", 400)))
