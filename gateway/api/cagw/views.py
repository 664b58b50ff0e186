"""ceg objects -> CA Gateway REST API v1 JSON bodies, each with its `type` discriminator.

Conventions of the API: serial numbers in lower-case hex without separators;
`certificateData` is base64 DER without line breaks; `validityPeriod` is the ISO 8601
interval `start/end`; times are UTC with a `Z`.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from ca_core.authority import CertificateAuthority
from ca_core.model import CaKind, CertificateRecord, CertStatus
from ca_core.profiles import Profile
from ca_core.status.events import CertificateEvent
from gateway.api.cagw.selection import Selection
from gateway.api.cagw.translate import SAN_TYPES, SUBJECT_VARIABLE_DESCRIPTIONS
from gateway.api.errors import Failure

CONNECTOR = "com.ceg.EmbeddedCA"


def b64(der: bytes) -> str:
    return base64.b64encode(der).decode()


def when(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def period(not_before: dt.datetime, not_after: dt.datetime) -> str:
    return f"{when(not_before)}/{when(not_after)}"


def ca_name(ca: CertificateAuthority) -> str:
    if ca.certificate is not None:
        cns = ca.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if cns:
            return str(cns[0].value)
    return ca.id


def ca_view(ca: CertificateAuthority, selection: Selection, prefix: str) -> dict[str, Any]:
    """One CA; its certificate and chain only when `$fields` asks (`ca.certificate`, `ca.chain`)."""
    view: dict[str, Any] = {
        "id": ca.id,
        "name": ca_name(ca),
        "properties": {
            "issuer_dn": ca.record.subject,
            "connector_name": CONNECTOR,
            "type": "root" if ca.kind is not CaKind.ISSUING else "issuing",
            "state": ca.state.value,
            "key_algorithm": ca.record.key_algorithm.value if ca.record.key_algorithm else None,
            "ocsp": ca.ocsp_enabled,
            "services": list(ca.services),
        },
    }
    if ca.record.certificate is not None:
        if selection.wants(f"{prefix}.certificate"):
            view["certificate"] = {"certificateData": b64(ca.der)}
        if selection.wants(f"{prefix}.chain"):
            # The CA's certificate comes separately; the chain holds what is above it
            # (a root's chain is itself, so a client always finds the self-signed anchor).
            above = ca.chain[1:] or ca.chain[:1]
            view["chain"] = [{"certificateData": b64(d)} for d in above]
    return selection.prune(view, prefix)


def profile_view(profile: Profile) -> dict[str, Any]:
    return {
        "id": profile.id,
        "name": profile.description or profile.id,
        "protocols": ["cagw"],
        # The product's profiles put no constraint on the subject or SANs (seed, Appendix).
        "subjectVariableRequirements": [
            {"name": name, "description": text, "required": False}
            for name, text in SUBJECT_VARIABLE_DESCRIPTIONS.items()
        ],
        "subjectAltNameRequirements": [{"type": t, "required": False} for t in SAN_TYPES],
        "requestedProperties": [],
        "properties": {
            "service": profile.service,
            "keyUsage": list(profile.key_usage),
            "extendedKeyUsage": [o.dotted_string for o in profile.extended_key_usage],
            "defaultValidityDays": profile.validity.default_days,
            "maxValidityDays": profile.validity.max_days,
        },
    }


_SIGNATURE_NAMES = {
    "1.2.840.10045.4.3.2": "ecdsa-with-SHA256",
    "1.2.840.10045.4.3.3": "ecdsa-with-SHA384",
    "1.2.840.10045.4.3.4": "ecdsa-with-SHA512",
    "1.2.840.113549.1.1.11": "sha256WithRSAEncryption",
    "1.2.840.113549.1.1.12": "sha384WithRSAEncryption",
    "1.2.840.113549.1.1.13": "sha512WithRSAEncryption",
}


def certificate_view(record: CertificateRecord, now: dt.datetime) -> dict[str, Any]:
    cert = x509.load_der_x509_certificate(record.der)
    oid = cert.signature_algorithm_oid.dotted_string
    public_key = cert.public_key()
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    status = record.effective_status(now)
    view: dict[str, Any] = {
        "status": status.value,
        "versionNumber": "3",
        "serialNumber": record.serial,
        "signatureAlgID": oid,
        "certificateSignatureAlg": _SIGNATURE_NAMES.get(oid, oid),
        "issuerName": cert.issuer.rfc4514_string(),
        "subjectName": cert.subject.rfc4514_string(),
        "rfc2253EncodedSubjectName": cert.subject.rfc4514_string(),
        "rfc2253EscapedSubjectName": cert.subject.rfc4514_string(),
        "validityPeriod": period(record.not_before, record.not_after),
        "subjectPublicKeyInfo": {
            "publicKeyAlg": "RSA" if "RSA" in type(public_key).__name__ else "EC",
            "subjectPublicKey": b64(spki),
        },
        "profileId": record.profile,
        "certificateData": b64(record.der),
    }
    if status in (CertStatus.REVOKED, CertStatus.HELD) and record.revoked_at is not None:
        view["revocationInfo"] = {
            "revocationDate": when(record.revoked_at),
            "reason": record.revocation_reason.value if record.revocation_reason else "unspecified",
            "compromiseDate": when(record.invalidity_date) if record.invalidity_date else None,
            "comment": None,
        }
    return {"type": "CertificateResponse", "certificate": view}


def enrollment_view(
    serial: str,
    subject: str,
    not_before: dt.datetime,
    not_after: dt.datetime,
    body: str,
    chain: Iterable[bytes],
) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": serial,
        "serialNumber": serial,
        "subjectName": subject,
        "status": "ISSUED",
        "body": body,
        "validityPeriod": period(not_before, not_after),
        "properties": {},
    }
    chain_list = [{"certificateData": b64(d)} for d in chain]
    if chain_list:
        view["chain"] = chain_list
    return {"type": "EnrollmentResponse", "enrollment": view}


def action_view(
    action_id: str, kind: str, status: str, reason: str | None, comment: str | None, succeed: bool
) -> dict[str, Any]:
    return {
        "type": "ActionResponse",
        "action": {
            "type": kind,
            "id": action_id,
            "status": status,
            "reason": reason,
            "comment": comment,
            "succeedIfAlreadyInRequestedState": succeed,
            "properties": {},
        },
    }


def event_view(event: CertificateEvent, selection: Selection) -> dict[str, Any]:
    view: dict[str, Any] = {
        "action": event.event,
        "event": event.seq,
        "eventDate": when(event.at),
        "serialNumber": event.serial,
        "reason": event.reason,
        "detail": None,
    }
    if event.der is not None:
        view["certificate"] = b64(event.der)
    return selection.prune(view, "events")


def error_body(failure: Failure) -> dict[str, Any]:
    error: dict[str, Any] = {"code": failure.code, "message": failure.message}
    if failure.target:
        error["target"] = failure.target
    error["details"] = list(failure.details)
    return {"type": "ErrorResponse", "error": error}


def message(text: str) -> Mapping[str, Any]:
    return {"code": "OK", "message": text}
