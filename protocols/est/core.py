"""EST decisions, free of I/O: binding settings, who may enroll, which profile, what the
CSR attributes say, and what a parked (manual-approval) request answers next.

Rules (RFC 7030 with the RFC 8951 clarifications):
- Authentication per binding (RFC 7030 3.2.3, 3.3.2): HTTP Basic, a TLS client
  certificate, either, or both. A credential that is presented and wrong is refused even
  when another one would do; 401 (with a Basic challenge) whenever HTTP Basic can still
  fix the request, 403 when only a certificate could.
- simplereenroll (RFC 7030 4.2.2): the TLS client certificate is the certificate being
  renewed; the new CSR has the same subject and subjectAltName unless the binding allows
  a change.
- Profile: the certificate being renewed keeps its profile; otherwise the binding's
  default, or, when the CSR requests a KeyUsage, the allowed profile granting exactly
  those bits (keyEncipherment and keyAgreement count as one: the issuer picks the one
  that fits the key, see catalogue.toml reading 2).
- Manual approval (RFC 7030 4.2.3): 202 + Retry-After until an officer decides; the
  client's retry with the same public key finds the decision.
- Identity linking (RFC 7030 3.5), when the binding asks for it: the CSR's
  challengePassword is the base64 tls-unique of the connection it came on.
Time is passed in; nothing here reads a clock, a socket or the store.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from ca_core.approvals import ApprovalState
from ca_core.errors import PolicyViolation, ProfileNotEnabled
from ca_core.model import KeyAlgorithm
from protocols.est.codec import (
    CHALLENGE_PASSWORD,
    EXTENSION_REQUEST,
    IntegerValue,
    KeyUsageRequest,
    OidValue,
    WantedAttribute,
)
from protocols.est.errors import EstError

PROFILES = (
    "est-digital-signature",
    "est-key-encipherment",
    "est-non-repudiation",
    "est-signature-key-encipherment",
)
PENDING_NAMESPACE = "est-pending"
# How long a parked request keeps its place: a client retrying after this starts over.
PENDING_RETENTION = dt.timedelta(days=30)

_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
_RSA_ENCRYPTION = "1.2.840.113549.1.1.1"
_ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2"
_SHA256_WITH_RSA = "1.2.840.113549.1.1.11"
_CURVE_OIDS = {
    KeyAlgorithm.EC_P256: "1.2.840.10045.3.1.7",
    KeyAlgorithm.EC_P384: "1.3.132.0.34",
    KeyAlgorithm.EC_P521: "1.3.132.0.35",
}


class Operation(StrEnum):
    ENROLL = "simpleenroll"
    REENROLL = "simplereenroll"
    SERVERKEYGEN = "serverkeygen"


class AuthMode(StrEnum):
    BASIC = "basic"
    CLIENT_CERT = "client-cert"
    EITHER = "either"
    BOTH = "both"


# --- binding settings ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EstSettings:
    """The EST keys of a binding's settings (ceg's own keys, like `default`, pass through)."""

    authentication: AuthMode = AuthMode.EITHER
    # Client certificates this binding's CA issued (and that are in service) authenticate.
    accept_issued_certificates: bool = True
    # PEM CA certificates whose directly issued client certificates authenticate (a device
    # maker's issuing CA); the HTTPS listener trusts them too.
    trust_anchors: tuple[str, ...] = ()
    manual_approval: bool = False
    retry_after_seconds: int = 60
    # simplereenroll may change subject / subjectAltName (RFC 7030 4.2.2 leaves it to policy).
    allow_name_change: bool = False
    key_types: tuple[KeyAlgorithm, ...] = tuple(KeyAlgorithm)
    profile_by_key_usage: bool = True
    server_keygen: bool = True
    # Refuse enrollment over plain HTTP (RFC 7030 3.3: EST runs over TLS).
    require_https: bool = True
    # RFC 7030 3.5: the CSR's challengePassword must carry the TLS connection's tls-unique
    # (so the proof of possession is bound to the authenticated channel); TLS 1.2 only,
    # since tls-unique is not defined for TLS 1.3.
    link_identity: bool = False
    default: bool = False

    @classmethod
    def parse(cls, settings: Mapping[str, Any]) -> EstSettings:
        """Check binding settings; ValueError names the bad key."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(settings) - known - {"allowed_profiles", "default_profile"})
        if unknown:
            raise ValueError(
                f"unknown EST setting(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        base = cls()
        values: dict[str, Any] = {}
        for key in ("accept_issued_certificates", "manual_approval", "allow_name_change"):
            values[key] = _boolean(settings, key, getattr(base, key))
        for key in ("profile_by_key_usage", "server_keygen", "require_https", "link_identity", "default"):
            values[key] = _boolean(settings, key, getattr(base, key))
        raw_mode = settings.get("authentication", base.authentication.value)
        try:
            values["authentication"] = AuthMode(raw_mode)
        except ValueError:
            modes = ", ".join(m.value for m in AuthMode)
            raise ValueError(f"authentication: {raw_mode!r} is not one of {modes}") from None
        retry = settings.get("retry_after_seconds", base.retry_after_seconds)
        if not isinstance(retry, int) or isinstance(retry, bool) or not 1 <= retry <= 86_400:
            raise ValueError("retry_after_seconds: an integer from 1 to 86400")
        values["retry_after_seconds"] = retry
        values["key_types"] = _key_types(settings.get("key_types", [k.value for k in base.key_types]))
        values["trust_anchors"] = _anchors(settings.get("trust_anchors", []))
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        return {
            "authentication": self.authentication.value,
            "accept_issued_certificates": self.accept_issued_certificates,
            "trust_anchors": list(self.trust_anchors),
            "manual_approval": self.manual_approval,
            "retry_after_seconds": self.retry_after_seconds,
            "allow_name_change": self.allow_name_change,
            "key_types": [k.value for k in self.key_types],
            "profile_by_key_usage": self.profile_by_key_usage,
            "server_keygen": self.server_keygen,
            "require_https": self.require_https,
            "link_identity": self.link_identity,
            "default": self.default,
        }


def _boolean(settings: Mapping[str, Any], key: str, default: bool) -> bool:
    value = settings.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"{key}: true or false")
    return value


def _key_types(raw: Any) -> tuple[KeyAlgorithm, ...]:
    if not isinstance(raw, list | tuple) or not raw:
        raise ValueError("key_types: a non-empty list of " + ", ".join(k.value for k in KeyAlgorithm))
    out: list[KeyAlgorithm] = []
    for item in raw:
        try:
            algorithm = KeyAlgorithm(item)
        except ValueError:
            raise ValueError(
                f"key_types: {item!r} is not one of {', '.join(k.value for k in KeyAlgorithm)}"
            ) from None
        if algorithm not in out:
            out.append(algorithm)
    return tuple(out)


def _anchors(raw: Any) -> tuple[str, ...]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list | tuple):
        raise ValueError("trust_anchors: a list of PEM certificates")
    out: list[str] = []
    for i, pem in enumerate(raw):
        if not isinstance(pem, str):
            raise ValueError(f"trust_anchors[{i}]: a PEM string")
        try:
            certificates = x509.load_pem_x509_certificates(pem.encode())
        except ValueError as exc:
            raise ValueError(f"trust_anchors[{i}]: not a PEM certificate ({exc})") from None
        if not certificates:
            raise ValueError(f"trust_anchors[{i}]: no certificate in it")
        out.append(pem.strip() + "\n")
    return tuple(out)


# --- authentication ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Credential:
    """The outcome of checking one credential: accepted (principal), refused (problem), or
    absent (neither)."""

    principal: str | None = None
    problem: str | None = None

    @property
    def accepted(self) -> bool:
        return self.principal is not None


ABSENT = Credential()


def basic_challenge(ca: str) -> dict[str, str]:
    return {"WWW-Authenticate": f'Basic realm="ceg EST {ca}", charset="UTF-8"'}


def authenticate(mode: AuthMode, basic: Credential, certificate: Credential, ca: str) -> str:
    """The principal the binding's authentication mode accepts, or the EstError to answer."""
    challenge = basic_challenge(ca)
    if basic.problem is not None:
        raise EstError(401, basic.problem, challenge)
    if mode is AuthMode.BASIC:
        if basic.principal is not None:
            return basic.principal
        raise EstError(401, "HTTP Basic authentication is required", challenge)
    if mode is AuthMode.CLIENT_CERT:
        if certificate.principal is not None:
            return certificate.principal
        raise EstError(403, certificate.problem or "a trusted TLS client certificate is required")
    if mode is AuthMode.BOTH:
        if certificate.principal is None:
            raise EstError(
                403,
                (certificate.problem or "a trusted TLS client certificate is required")
                + " (this binding needs a client certificate and HTTP Basic)",
            )
        if basic.principal is None:
            raise EstError(401, "HTTP Basic authentication is required as well", challenge)
        return basic.principal
    if basic.principal is not None:
        return basic.principal
    if certificate.principal is not None:
        return certificate.principal
    reason = f"{certificate.problem}; " if certificate.problem else ""
    raise EstError(
        401, reason + "authenticate with HTTP Basic or a trusted TLS client certificate", challenge
    )


def basic_scope_problem(scope: Mapping[str, Any], ca: str) -> str | None:
    """Why a Basic credential with this scope may not enroll over EST on `ca` (or None)."""
    protocol = scope.get("protocol")
    if protocol is not None and protocol != "est":
        return f"this user is for {protocol}, not EST"
    allowed_cas = scope.get("cas")
    if scope.get("ca") not in (None, ca) or (allowed_cas is not None and ca not in allowed_cas):
        return f"this user may not enroll on CA {ca}"
    return None


def anchored(
    certificate: x509.Certificate, anchors: Sequence[x509.Certificate], now: dt.datetime
) -> x509.Certificate | None:
    """The configured anchor that directly issued `certificate` (or is it), if any.

    Python's ssl module hands over only the leaf, so the anchor must be its issuer; the
    listener has already checked the whole chain during the handshake.
    """
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        return None
    for anchor in anchors:
        if anchor == certificate:
            return anchor
        if anchor.subject != certificate.issuer:
            continue
        if not anchor.not_valid_before_utc <= now <= anchor.not_valid_after_utc:
            continue
        try:
            certificate.verify_directly_issued_by(anchor)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return anchor
    return None


def require_transport(settings: EstSettings, secure: bool) -> None:
    if settings.require_https and not secure:
        raise EstError(403, "EST enrollment needs HTTPS (RFC 7030 3.3)")


def check_identity_link(
    settings: EstSettings, challenge_password: str | None, tls_unique: bytes | None
) -> None:
    """RFC 7030 3.5: challengePassword = base64(tls-unique) of this very connection."""
    if not settings.link_identity:
        return
    if tls_unique is None:
        raise EstError(
            400,
            "this binding links identity and proof of possession (RFC 7030 3.5) with tls-unique, "
            "which needs a TLS 1.2 connection",
        )
    if challenge_password is None:
        raise EstError(400, "the CSR needs a challengePassword holding the base64 tls-unique (RFC 7030 3.5)")
    expected = base64.b64encode(tls_unique).decode()
    if not hmac.compare_digest(challenge_password.strip(), expected):
        raise EstError(400, "the CSR's challengePassword is not this connection's tls-unique (RFC 7030 3.5)")


# --- the request ---------------------------------------------------------------------------


def check_key_type(settings: EstSettings, public_key: object) -> KeyAlgorithm:
    """The key's type if this binding accepts it (UnsupportedKey / PolicyViolation if not)."""
    algorithm = KeyAlgorithm.of_public_key(public_key)
    if algorithm not in settings.key_types:
        raise PolicyViolation(
            f"key type {algorithm.value} is not accepted here; allowed: "
            + ", ".join(k.value for k in settings.key_types)
        )
    return algorithm


def check_renewal(
    subject: x509.Name,
    sans: Sequence[x509.GeneralName],
    asks_name_change: bool,
    current: x509.Certificate,
    allow_change: bool,
) -> None:
    """RFC 7030 4.2.2: the renewal CSR names the same subject and subjectAltNames.

    A ChangeSubjectName attribute (RFC 6402 2.6) is refused, not silently ignored; a
    binding that allows a change takes the new names from the CSR itself."""
    if asks_name_change:
        raise EstError(
            400,
            "ChangeSubjectName (RFC 6402 2.6) is not supported; where the binding allows "
            "a name change, put the new names in the CSR itself",
        )
    if allow_change:
        return
    if subject != current.subject:
        raise EstError(
            400,
            f"simplereenroll: the CSR subject {subject.rfc4514_string()!r} differs from the "
            f"certificate being renewed ({current.subject.rfc4514_string()!r})",
        )
    try:
        current_sans = set(current.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        current_sans = set()
    if set(sans) != current_sans:
        raise EstError(
            400, "simplereenroll: the CSR subjectAltName differs from the certificate being renewed"
        )


def _normalised(bits: frozenset[str] | Sequence[str]) -> frozenset[str]:
    # The key-establishment bit depends on the key type (RSA: keyEncipherment, EC:
    # keyAgreement); the issuer adapts it, so a request matches on either spelling.
    return frozenset("keyEstablishment" if b in ("keyEncipherment", "keyAgreement") else b for b in bits)


def choose_profile(
    allowed: Sequence[str],
    default: str,
    profile_bits: Mapping[str, Sequence[str]],
    requested_key_usage: frozenset[str] | None,
    by_key_usage: bool,
    previous: str | None = None,
) -> str:
    """The profile to issue from (see the module rules)."""
    if previous is not None and previous in allowed:
        return previous
    if requested_key_usage is None or not by_key_usage:
        return default
    wanted = _normalised(requested_key_usage)
    for profile in (default, *[p for p in allowed if p != default]):
        if _normalised(profile_bits.get(profile, ())) == wanted:
            return profile
    offered = "; ".join(f"{p} ({', '.join(profile_bits.get(p, ()))})" for p in allowed)
    raise ProfileNotEnabled(
        f"no profile here grants the requested key usage ({', '.join(sorted(requested_key_usage))}); "
        f"offered: {offered}"
    )


# --- CSR attributes (RFC 7030 4.5) ----------------------------------------------------------


def csr_attributes(
    settings: EstSettings, default_key_usage: Sequence[str], link_identity: bool = False
) -> list[WantedAttribute]:
    """What the binding wants in a CSR: key type and curve or size, the signature algorithm,
    the default profile's KeyUsage as an extension request, and challengePassword when
    the binding links identity and proof of possession."""
    wanted: list[WantedAttribute] = []
    if link_identity:
        wanted.append(WantedAttribute(CHALLENGE_PASSWORD))
    curves = [_CURVE_OIDS[k] for k in settings.key_types if k.is_ec]
    sizes = [k.rsa_bits for k in settings.key_types if not k.is_ec]
    if curves:
        wanted.append(WantedAttribute(_EC_PUBLIC_KEY, tuple(OidValue(c) for c in curves)))
    if sizes:
        wanted.append(WantedAttribute(_RSA_ENCRYPTION, tuple(IntegerValue(s) for s in sizes)))
    if curves:
        wanted.append(WantedAttribute(_ECDSA_WITH_SHA256))
    if sizes:
        wanted.append(WantedAttribute(_SHA256_WITH_RSA))
    if default_key_usage:
        wanted.append(WantedAttribute(EXTENSION_REQUEST, (KeyUsageRequest(frozenset(default_key_usage)),)))
    return wanted


# --- manual approval -------------------------------------------------------------------------


def pending_key(ca: str, operation: Operation, public_key_der: bytes) -> str:
    """Where a parked request is found again: the same CA, operation and public key."""
    digest = hashlib.sha256()
    digest.update(f"{ca}\0{operation.value}\0".encode())
    digest.update(public_key_der)
    return digest.hexdigest()


class NextStep(StrEnum):
    WAIT = "wait"  # 202 again
    DELIVER = "deliver"  # 200 with the certificate the officer's approval issued
    REFUSE = "refuse"  # the officer rejected it


@dataclass(frozen=True, slots=True)
class ParkedRequest:
    """The est-pending document: which approval request a public key waits on, and for whom."""

    approval_id: str
    principal: str

    def as_document(self) -> dict[str, Any]:
        return {"approval": self.approval_id, "principal": self.principal}

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> ParkedRequest:
        return cls(str(doc["approval"]), str(doc["principal"]))


def next_step(parked: ParkedRequest, principal: str, state: ApprovalState) -> NextStep:
    """What the client's retry gets, given the approval's state."""
    if parked.principal != principal:
        raise EstError(403, "this request is waiting for approval under another identity")
    if state is ApprovalState.PENDING:
        return NextStep.WAIT
    if state is ApprovalState.ISSUED:
        return NextStep.DELIVER
    return NextStep.REFUSE


def pending_expired(expires_at: dt.datetime | None, now: dt.datetime) -> bool:
    return expires_at is not None and expires_at <= now
