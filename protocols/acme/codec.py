"""ACME resources on the wire (RFC 8555 sections 7.1, 7.3-7.6; RFC 9773; draft-ietf-acme-profiles).

Requests: the JSON payloads of newAccount, newOrder, finalize, keyChange and revokeCert,
checked for type and size into small frozen values. Responses: the JSON of the
directory, accounts, orders, authorizations and challenges, rendered from model.py's
records with their URLs and RFC 3339 times. ARI certificate identifiers (RFC 9773 4.1)
are encoded and decoded here too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from protocols.acme.jws import b64url, b64url_decode
from protocols.acme.model import Account, Authorization, AuthzStatus, Challenge, Order, OrderStatus
from protocols.acme.problems import AcmeProblem, ProblemType, malformed
from protocols.acme.settings import AcmeSettings

ACME_TYPES = ("application/jose+json",)
PEM_CHAIN = "application/pem-certificate-chain"


def rfc3339(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: object, what: str) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise malformed(f"{what} must be an RFC 3339 date-time")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise malformed(f"{what} must be an RFC 3339 date-time") from None
    if parsed.tzinfo is None:
        raise malformed(f"{what} needs a time zone")
    return parsed.astimezone(dt.UTC)


@dataclass(frozen=True, slots=True)
class Urls:
    """Every URL of one ACME directory, from its base (scheme://host/acme/{ca})."""

    base: str

    @property
    def directory(self) -> str:
        return f"{self.base}/directory"

    @property
    def new_nonce(self) -> str:
        return f"{self.base}/new-nonce"

    @property
    def new_account(self) -> str:
        return f"{self.base}/new-account"

    @property
    def new_order(self) -> str:
        return f"{self.base}/new-order"

    @property
    def revoke_cert(self) -> str:
        return f"{self.base}/revoke-cert"

    @property
    def key_change(self) -> str:
        return f"{self.base}/key-change"

    @property
    def renewal_info(self) -> str:
        return f"{self.base}/renewal-info"

    def account(self, account_id: str) -> str:
        return f"{self.base}/acct/{account_id}"

    def orders(self, account_id: str) -> str:
        return f"{self.base}/acct/{account_id}/orders"

    def order(self, order_id: str) -> str:
        return f"{self.base}/order/{order_id}"

    def finalize(self, order_id: str) -> str:
        return f"{self.base}/order/{order_id}/finalize"

    def authz(self, authz_id: str) -> str:
        return f"{self.base}/authz/{authz_id}"

    def challenge(self, authz_id: str, challenge_id: str) -> str:
        return f"{self.base}/chall/{authz_id}/{challenge_id}"

    def certificate(self, order_id: str, alternate: int = 0) -> str:
        suffix = f"/{alternate}" if alternate else ""
        return f"{self.base}/cert/{order_id}{suffix}"

    def account_id(self, kid: object) -> str | None:
        """The account id a JWS `kid` names, if it is one of this directory's account URLs."""
        prefix = f"{self.base}/acct/"
        if not isinstance(kid, str) or not kid.startswith(prefix):
            return None
        rest = kid[len(prefix) :]
        return rest if rest and "/" not in rest else None


# --- requests ---------------------------------------------------------------------------------------


def payload_object(payload: Any, what: str) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise malformed(f"the {what} payload must be a JSON object")
    return payload


@dataclass(frozen=True, slots=True)
class NewAccountRequest:
    contact: Any
    tos_agreed: bool
    only_return_existing: bool
    external_account_binding: dict[str, Any] | None


def new_account_request(payload: Any) -> NewAccountRequest:
    doc = payload_object(payload, "newAccount")
    tos, existing = doc.get("termsOfServiceAgreed", False), doc.get("onlyReturnExisting", False)
    if not isinstance(tos, bool) or not isinstance(existing, bool):
        raise malformed("termsOfServiceAgreed and onlyReturnExisting are booleans")
    eab = doc.get("externalAccountBinding")
    if eab is not None and not isinstance(eab, dict):
        raise malformed("externalAccountBinding must be a JWS object")
    return NewAccountRequest(doc.get("contact"), tos, existing, eab)


@dataclass(frozen=True, slots=True)
class NewOrderRequest:
    identifiers: Any
    not_before: dt.datetime | None
    not_after: dt.datetime | None
    profile: str | None
    replaces: str | None


def new_order_request(payload: Any) -> NewOrderRequest:
    doc = payload_object(payload, "newOrder")
    profile, replaces = doc.get("profile"), doc.get("replaces")
    if profile is not None and (not isinstance(profile, str) or len(profile) > 64):
        raise malformed("profile must be a profile name")
    if replaces is not None and (not isinstance(replaces, str) or len(replaces) > 512):
        raise malformed("replaces must be an ARI certificate identifier")
    return NewOrderRequest(
        doc.get("identifiers"),
        parse_time(doc.get("notBefore"), "notBefore"),
        parse_time(doc.get("notAfter"), "notAfter"),
        profile,
        replaces,
    )


def finalize_request(payload: Any) -> bytes:
    doc = payload_object(payload, "finalize")
    csr = b64url_decode(doc.get("csr"), "csr")
    if not csr:
        raise AcmeProblem(ProblemType.BAD_CSR, "the csr is empty")
    return csr


@dataclass(frozen=True, slots=True)
class RevocationRequest:
    certificate: bytes
    reason: int


def revocation_request(payload: Any) -> RevocationRequest:
    doc = payload_object(payload, "revokeCert")
    reason = doc.get("reason", 0)
    if isinstance(reason, bool) or not isinstance(reason, int):
        raise AcmeProblem(ProblemType.BAD_REVOCATION_REASON, "reason must be an integer CRLReason code")
    return RevocationRequest(b64url_decode(doc.get("certificate"), "certificate"), reason)


@dataclass(frozen=True, slots=True)
class KeyChangeRequest:
    account: str
    old_key: dict[str, Any]


def key_change_request(payload: Any) -> KeyChangeRequest:
    doc = payload_object(payload, "keyChange inner JWS")
    account, old_key = doc.get("account"), doc.get("oldKey")
    if not isinstance(account, str) or not isinstance(old_key, dict):
        raise malformed("the keyChange inner payload needs account (URL) and oldKey (JWK)")
    return KeyChangeRequest(account, old_key)


def authz_update(payload: Any) -> bool:
    """True when the payload asks for deactivation (7.5.2)."""
    doc = payload_object(payload, "authorization")
    if doc.get("status") != "deactivated":
        raise malformed('an authorization can only be updated with {"status": "deactivated"}')
    return True


# --- ARI certificate identifiers (RFC 9773 4.1) ------------------------------------------------------


def serial_bytes(serial: int) -> bytes:
    """The DER INTEGER contents of a positive serial (leading zero when the top bit is set)."""
    return serial.to_bytes(serial.bit_length() // 8 + 1, "big")


def ari_cert_id(authority_key_id: bytes, serial: int) -> str:
    return f"{b64url(authority_key_id)}.{b64url(serial_bytes(serial))}"


def parse_ari_cert_id(cert_id: str) -> tuple[bytes, int]:
    aki_text, dot, serial_text = cert_id.partition(".")
    if not dot or not aki_text or not serial_text:
        raise malformed("an ARI certificate identifier is base64url(AKI).base64url(serial)")
    aki, raw_serial = b64url_decode(aki_text, "ARI key identifier"), b64url_decode(serial_text, "ARI serial")
    if not raw_serial or len(raw_serial) > 21 or raw_serial[0] & 0x80:
        raise malformed("the ARI serial is not a positive DER integer")
    return aki, int.from_bytes(raw_serial, "big")


# --- responses --------------------------------------------------------------------------------------


def directory_json(urls: Urls, settings: AcmeSettings, profiles: Mapping[str, str]) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "externalAccountRequired": settings.eab_required,
        "profiles": dict(profiles),
    }
    if settings.terms_of_service:
        meta["termsOfService"] = settings.terms_of_service
    if settings.website:
        meta["website"] = settings.website
    if settings.caa_identities:
        meta["caaIdentities"] = list(settings.caa_identities)
    return {
        "newNonce": urls.new_nonce,
        "newAccount": urls.new_account,
        "newOrder": urls.new_order,
        "revokeCert": urls.revoke_cert,
        "keyChange": urls.key_change,
        "renewalInfo": urls.renewal_info,
        "meta": meta,
    }


def account_json(account: Account, urls: Urls) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "status": account.status.value,
        "contact": list(account.contact),
        "orders": urls.orders(account.id),
        "key": account.jwk,
        "createdAt": rfc3339(account.created),
    }
    if account.tos_agreed:
        doc["termsOfServiceAgreed"] = True
    return doc


def order_json(order: Order, status: OrderStatus, error: dict[str, Any] | None, urls: Urls) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "status": status.value,
        "expires": rfc3339(order.expires),
        "identifiers": [i.to_json() for i in order.identifiers],
        "authorizations": [urls.authz(a) for a in order.authzs],
        "finalize": urls.finalize(order.id),
        "profile": order.profile,
    }
    if order.not_before is not None:
        doc["notBefore"] = rfc3339(order.not_before)
    if order.not_after is not None:
        doc["notAfter"] = rfc3339(order.not_after)
    if order.replaces is not None:
        doc["replaces"] = order.replaces
    if status is OrderStatus.INVALID and error is not None:
        doc["error"] = error
    if status is OrderStatus.VALID and order.certificate:
        doc["certificate"] = urls.certificate(order.id)
    return doc


def challenge_json(challenge: Challenge, authz_id: str, urls: Urls) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "type": challenge.type,
        "url": urls.challenge(authz_id, challenge.id),
        "status": challenge.status.value,
        "token": challenge.token,
    }
    if challenge.validated is not None:
        doc["validated"] = rfc3339(challenge.validated)
    if challenge.error is not None:
        doc["error"] = challenge.error
    return doc


def authz_json(authz: Authorization, status: AuthzStatus, urls: Urls) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "identifier": authz.identifier.to_json(),
        "status": status.value,
        "expires": rfc3339(authz.expires),
        "challenges": [challenge_json(c, authz.id, urls) for c in authz.challenges],
    }
    if authz.wildcard:
        doc["wildcard"] = True
    return doc


def renewal_info_json(start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    return {"suggestedWindow": {"start": rfc3339(start), "end": rfc3339(end)}}
