"""The ACME objects ceg stores (RFC 8555 section 7.1): accounts, orders, authorizations
and their challenges, as frozen values with their JSON documents for the state store.

These are internal records, not wire objects: codec.py renders them for clients (with
URLs, computed statuses and RFC 3339 times); core.py decides their transitions.
`version` is the state store's compare-and-set version, never part of the document.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class AccountStatus(StrEnum):
    VALID = "valid"
    DEACTIVATED = "deactivated"
    REVOKED = "revoked"


class OrderStatus(StrEnum):
    PENDING = "pending"
    READY = "ready"
    PROCESSING = "processing"
    VALID = "valid"
    INVALID = "invalid"


class AuthzStatus(StrEnum):
    PENDING = "pending"
    VALID = "valid"
    INVALID = "invalid"
    DEACTIVATED = "deactivated"
    EXPIRED = "expired"
    REVOKED = "revoked"


class ChallengeStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    VALID = "valid"
    INVALID = "invalid"


def _ts(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _dt(value: Any) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def _req_dt(value: Any) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


@dataclass(frozen=True, slots=True, order=True)
class Identifier:
    """An ACME identifier: type "dns" or "ip" (RFC 8738), value in canonical form."""

    type: str
    value: str

    def to_json(self) -> dict[str, str]:
        return {"type": self.type, "value": self.value}


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    ca: str
    status: AccountStatus
    jwk: dict[str, Any]
    thumbprint: str
    contact: tuple[str, ...]
    tos_agreed: bool
    created: dt.datetime
    eab_kid: str | None = None
    version: int = field(default=0, compare=False)

    def to_doc(self) -> dict[str, Any]:
        return {
            "ca": self.ca,
            "status": self.status.value,
            "jwk": self.jwk,
            "thumbprint": self.thumbprint,
            "contact": list(self.contact),
            "tos": self.tos_agreed,
            "created": _ts(self.created),
            "eab_kid": self.eab_kid,
        }

    @classmethod
    def from_doc(cls, key: str, doc: dict[str, Any], version: int) -> Account:
        return cls(
            id=key,
            ca=doc["ca"],
            status=AccountStatus(doc["status"]),
            jwk=doc["jwk"],
            thumbprint=doc["thumbprint"],
            contact=tuple(doc.get("contact", ())),
            tos_agreed=bool(doc.get("tos")),
            created=_req_dt(doc["created"]),
            eab_kid=doc.get("eab_kid"),
            version=version,
        )


@dataclass(frozen=True, slots=True)
class Challenge:
    id: str
    type: str
    token: str
    status: ChallengeStatus = ChallengeStatus.PENDING
    validated: dt.datetime | None = None
    error: dict[str, Any] | None = None
    processing_since: dt.datetime | None = None

    def to_doc(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "token": self.token,
            "status": self.status.value,
            "validated": _ts(self.validated),
            "error": self.error,
            "processing_since": _ts(self.processing_since),
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Challenge:
        return cls(
            id=doc["id"],
            type=doc["type"],
            token=doc["token"],
            status=ChallengeStatus(doc["status"]),
            validated=_dt(doc.get("validated")),
            error=doc.get("error"),
            processing_since=_dt(doc.get("processing_since")),
        )


@dataclass(frozen=True, slots=True)
class Authorization:
    id: str
    ca: str
    account: str
    identifier: Identifier  # the base name: "*.example.com" is example.com, wildcard
    wildcard: bool
    status: AuthzStatus
    expires: dt.datetime
    challenges: tuple[Challenge, ...]
    created: dt.datetime
    validated: dt.datetime | None = None
    version: int = field(default=0, compare=False)

    def challenge(self, challenge_id: str) -> Challenge | None:
        return next((c for c in self.challenges if c.id == challenge_id), None)

    def to_doc(self) -> dict[str, Any]:
        return {
            "ca": self.ca,
            "account": self.account,
            "identifier": self.identifier.to_json(),
            "wildcard": self.wildcard,
            "status": self.status.value,
            "expires": _ts(self.expires),
            "challenges": [c.to_doc() for c in self.challenges],
            "created": _ts(self.created),
            "validated": _ts(self.validated),
        }

    @classmethod
    def from_doc(cls, key: str, doc: dict[str, Any], version: int) -> Authorization:
        ident = doc["identifier"]
        return cls(
            id=key,
            ca=doc["ca"],
            account=doc["account"],
            identifier=Identifier(ident["type"], ident["value"]),
            wildcard=bool(doc.get("wildcard")),
            status=AuthzStatus(doc["status"]),
            expires=_req_dt(doc["expires"]),
            challenges=tuple(Challenge.from_doc(c) for c in doc["challenges"]),
            created=_req_dt(doc["created"]),
            validated=_dt(doc.get("validated")),
            version=version,
        )


@dataclass(frozen=True, slots=True)
class Order:
    id: str
    ca: str
    account: str
    status: OrderStatus  # as last stored; core.order_status gives the current one
    expires: dt.datetime
    identifiers: tuple[Identifier, ...]  # as requested, wildcards with their "*."
    authzs: tuple[str, ...]
    profile: str
    created: dt.datetime
    not_before: dt.datetime | None = None
    not_after: dt.datetime | None = None
    error: dict[str, Any] | None = None
    certificate: str | None = None  # serial (hex) once valid
    replaces: str | None = None  # serial (hex) of the certificate this order renews
    processing_since: dt.datetime | None = None
    certificate_der: bytes | None = None  # kept with the order so a download reads one document
    version: int = field(default=0, compare=False)

    def to_doc(self) -> dict[str, Any]:
        return {
            "ca": self.ca,
            "account": self.account,
            "status": self.status.value,
            "expires": _ts(self.expires),
            "certificate_der": base64.b64encode(self.certificate_der).decode()
            if self.certificate_der
            else None,
            "identifiers": [i.to_json() for i in self.identifiers],
            "authzs": list(self.authzs),
            "profile": self.profile,
            "created": _ts(self.created),
            "not_before": _ts(self.not_before),
            "not_after": _ts(self.not_after),
            "error": self.error,
            "certificate": self.certificate,
            "replaces": self.replaces,
            "processing_since": _ts(self.processing_since),
        }

    @classmethod
    def from_doc(cls, key: str, doc: dict[str, Any], version: int) -> Order:
        return cls(
            id=key,
            ca=doc["ca"],
            account=doc["account"],
            status=OrderStatus(doc["status"]),
            expires=_req_dt(doc["expires"]),
            identifiers=tuple(Identifier(i["type"], i["value"]) for i in doc["identifiers"]),
            authzs=tuple(doc["authzs"]),
            profile=doc["profile"],
            created=_req_dt(doc["created"]),
            not_before=_dt(doc.get("not_before")),
            not_after=_dt(doc.get("not_after")),
            error=doc.get("error"),
            certificate=doc.get("certificate"),
            replaces=doc.get("replaces"),
            processing_since=_dt(doc.get("processing_since")),
            certificate_der=base64.b64decode(doc["certificate_der"]) if doc.get("certificate_der") else None,
            version=version,
        )
