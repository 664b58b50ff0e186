"""Domain types shared by the CA core and every protocol front-end.

The common issuance request (ARCHITECTURE.md section 3) is `IssuanceRequest`; every
front-end ends in `IssuanceService.issue(request) -> IssuedCertificate`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NewType

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa

CaId = NewType("CaId", str)
ProfileId = NewType("ProfileId", str)


class KeyAlgorithm(StrEnum):
    """The six key types of the product specification (seed 1.1.1.3 and 1.1.2.2)."""

    EC_P256 = "ec-p256"
    EC_P384 = "ec-p384"
    EC_P521 = "ec-p521"
    RSA_2048 = "rsa-2048"
    RSA_3072 = "rsa-3072"
    RSA_4096 = "rsa-4096"

    @property
    def is_ec(self) -> bool:
        return self.value.startswith("ec-")

    @property
    def rsa_bits(self) -> int:
        return int(self.value.split("-")[1]) if not self.is_ec else 0

    @property
    def curve(self) -> ec.EllipticCurve:
        curves: dict[str, ec.EllipticCurve] = {
            "ec-p256": ec.SECP256R1(),
            "ec-p384": ec.SECP384R1(),
            "ec-p521": ec.SECP521R1(),
        }
        return curves[self.value]

    def signature_hash(self) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512:
        """The hash this key signs with when it is a CA key (the spec's fixed pairs)."""
        pairs: dict[str, hashes.SHA256 | hashes.SHA384 | hashes.SHA512] = {
            "ec-p256": hashes.SHA256(),
            "ec-p384": hashes.SHA384(),
            "ec-p521": hashes.SHA512(),
            "rsa-2048": hashes.SHA256(),
            "rsa-3072": hashes.SHA256(),
            "rsa-4096": hashes.SHA512(),
        }
        return pairs[self.value]

    @classmethod
    def of_public_key(cls, key: object) -> KeyAlgorithm:
        """Classify a subscriber or CA public key; raises UnsupportedKey for anything else."""
        from ca_core.errors import UnsupportedKey

        if isinstance(key, ec.EllipticCurvePublicKey):
            by_curve = {
                "secp256r1": cls.EC_P256,
                "secp384r1": cls.EC_P384,
                "secp521r1": cls.EC_P521,
            }
            found = by_curve.get(key.curve.name)
            if found is None:
                raise UnsupportedKey(f"EC key on curve {key.curve.name}")
            return found
        if isinstance(key, rsa.RSAPublicKey):
            by_size = {2048: cls.RSA_2048, 3072: cls.RSA_3072, 4096: cls.RSA_4096}
            found = by_size.get(key.key_size)
            if found is None:
                raise UnsupportedKey(f"RSA-{key.key_size} key")
            return found
        raise UnsupportedKey(f"{_key_type_name(key)} key")


def _key_type_name(key: object) -> str:
    """A readable name for a key ceg does not accept ("DSA-2048", "Ed25519")."""
    from cryptography.hazmat.primitives.asymmetric import dsa, ed448, ed25519, x448, x25519

    if isinstance(key, dsa.DSAPublicKey):
        return f"DSA-{key.key_size}"
    named = {
        ed25519.Ed25519PublicKey: "Ed25519",
        ed448.Ed448PublicKey: "Ed448",
        x25519.X25519PublicKey: "X25519",
        x448.X448PublicKey: "X448",
    }
    for cls, name in named.items():
        if isinstance(key, cls):
            return name
    return type(key).__name__.removeprefix("_")


class CertStatus(StrEnum):
    NORMAL = "normal"
    HELD = "held"
    REVOKED = "revoked"
    EXPIRED = "expired"


class RevocationReason(StrEnum):
    """RFC 5280 reason names the product supports (seed 1.1.3.1), with their CRLReason codes."""

    UNSPECIFIED = "unspecified"
    KEY_COMPROMISE = "keyCompromise"
    AFFILIATION_CHANGED = "affiliationChanged"
    SUPERSEDED = "superseded"
    CESSATION_OF_OPERATION = "cessationOfOperation"
    CERTIFICATE_HOLD = "certificateHold"

    @property
    def code(self) -> int:
        return {
            "unspecified": 0,
            "keyCompromise": 1,
            "affiliationChanged": 3,
            "superseded": 4,
            "cessationOfOperation": 5,
            "certificateHold": 6,
        }[self.value]

    @property
    def x509_flag(self) -> x509.ReasonFlags:
        return x509.ReasonFlags(self.value)


class CaKind(StrEnum):
    ROOT = "root"
    ISSUING = "issuing"
    EXTERNAL_ROOT = "external-root"  # a root we only hold the certificate of


class CaState(StrEnum):
    """Lifecycle of a CA (issue 2): provisioning -> (csr-ready ->) active -> deleting -> deleted."""

    PROVISIONING = "provisioning"
    CSR_READY = "csr-ready"
    ACTIVE = "active"
    DELETING = "deleting"
    DELETED = "deleted"


class Service(StrEnum):
    """Profile sets an issuing CA can enable (issue 2)."""

    PRIVATESSL = "privatessl"
    SMIME = "smime"
    SMARTCARD = "smartcard"
    CODESIGNING = "codesigning"
    INTUNE = "intune"
    WSTEP = "wstep"
    SCEP = "scep"
    MDMWS = "mdmws"
    CMP = "cmp"
    EST = "est"
    V2G = "v2g"


@dataclass(frozen=True, slots=True)
class Requester:
    """Who asked: the protocol, the authenticated principal, where from, and a request id."""

    protocol: str
    principal: str = "anonymous"
    remote_addr: str | None = None
    request_id: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "protocol": self.protocol,
            "principal": self.principal,
            "remote_addr": self.remote_addr,
            "request_id": self.request_id,
        }


@dataclass(frozen=True, slots=True)
class RequestedExtension:
    """An extension the requester asks for; `value` is the DER of extnValue's contents."""

    oid: str
    value: bytes
    critical: bool = False


@dataclass(frozen=True, slots=True)
class IssuanceRequest:
    """The one request every protocol builds (ARCHITECTURE.md section 3).

    Exactly one of `csr` (PKCS#10 DER, its signature always verified) or `public_key`
    (SubjectPublicKeyInfo DER whose possession the protocol has already proven) is set.
    `subject` / `subject_alt_names` left as None mean "take them from the CSR".
    """

    ca: str
    profile: str
    requester: Requester
    csr: bytes | None = None
    public_key: bytes | None = None
    pop_verified: bool = False
    subject: x509.Name | None = None
    subject_alt_names: tuple[x509.GeneralName, ...] | None = None
    not_before: dt.datetime | None = None
    not_after: dt.datetime | None = None
    validity: dt.timedelta | None = None
    extensions: tuple[RequestedExtension, ...] = ()
    renewal_of: str | None = None
    allow_internal_profile: bool = False
    # A protocol's idempotency key (at most 64 characters): a second request with the same
    # key gets the certificate the first one stored, never a second certificate (a retry
    # after a crash between storing the certificate and recording the protocol's outcome).
    request_key: str | None = None


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    der: bytes
    serial: int
    ca: str
    profile: str
    not_before: dt.datetime
    not_after: dt.datetime
    chain: tuple[bytes, ...] = ()  # issuing CA first, root last
    status: CertStatus = CertStatus.NORMAL

    @property
    def serial_hex(self) -> str:
        return serial_to_hex(self.serial)

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(self.der)


@dataclass(frozen=True, slots=True)
class CertificateRecord:
    """A stored certificate with its status."""

    serial: str  # lower-case hex, no separators
    ca: str
    profile: str
    subject: str
    sans: tuple[str, ...]
    status: CertStatus
    not_before: dt.datetime
    not_after: dt.datetime
    der: bytes
    issued_at: dt.datetime
    requester: dict[str, str | None] = field(default_factory=dict)
    renewal_of: str | None = None
    revoked_at: dt.datetime | None = None
    revocation_reason: RevocationReason | None = None
    invalidity_date: dt.datetime | None = None
    request_key: str | None = None

    @property
    def serial_int(self) -> int:
        return int(self.serial, 16)

    def effective_status(self, now: dt.datetime) -> CertStatus:
        """Held/revoked win over expiry; an unrevoked certificate past notAfter is expired."""
        if self.status is CertStatus.NORMAL and now >= self.not_after:
            return CertStatus.EXPIRED
        return self.status


def serial_to_hex(serial: int) -> str:
    return format(serial, "x")


def add_years(start: dt.datetime, years: int) -> dt.datetime:
    """The same instant `years` calendar years later (29 February becomes 28 February)."""
    try:
        return start.replace(year=start.year + years)
    except ValueError:
        return start.replace(year=start.year + years, day=28)


def utc(value: dt.datetime) -> dt.datetime:
    """Normalise to an aware UTC datetime (SQLite hands naive datetimes back)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)
