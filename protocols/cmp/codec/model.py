"""The CMP message model: the frozen dataclasses the codec decodes into and encodes from
(RFC 4210 5.1 to 5.3, RFC 4211 5, RFC 9480 2), and the codec's hostile-input limits."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from protocols.cmp import oids

MAX_MESSAGE_BYTES = 128 * 1024
MAX_EXTRA_CERTS = 16
MAX_ITEMS = 16  # CertReqMsgs, RevDetails, certConf entries, genm/generalInfo entries

PVNO_CMP2000 = 2
PVNO_CMP2021 = 3


class DecodeError(ValueError):
    """The bytes are not a PKIMessage we can read. `header` is set when the header itself
    decoded (so the error response can still echo transactionID and nonces)."""

    def __init__(self, message: str, header: Header | None = None) -> None:
        super().__init__(message)
        self.header = header


# --- protection algorithms ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pbm:
    """PasswordBasedMac parameters (RFC 4210 5.1.3.1, RFC 4211 4.4)."""

    salt: bytes
    owf: str  # hashlib name of the one-way function
    iterations: int
    mac: str  # hashlib name of the HMAC hash
    mac_oid: str  # kept so a reply uses the identifier the client used


@dataclass(frozen=True, slots=True)
class Pbmac1:
    """PBMAC1 with PBKDF2 (RFC 8018 7.1, RFC 9481 6.1.2)."""

    salt: bytes
    iterations: int
    key_length: int
    prf: str  # hashlib name of PBKDF2's HMAC
    mac: str  # hashlib name of the message HMAC


@dataclass(frozen=True, slots=True)
class SignatureAlgorithm:
    oid: str
    scheme: str  # "ecdsa" | "rsa" | "rsa-pss" | "ed25519" | "ed448"
    hash: str  # hashlib name; "" for EdDSA
    pss_salt_length: int | None = None


@dataclass(frozen=True, slots=True)
class UnknownAlgorithm:
    oid: str
    reason: str = "not supported"


ProtectionAlgorithm = Pbm | Pbmac1 | SignatureAlgorithm | UnknownAlgorithm


# --- header and shared values ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InfoItem:
    """InfoTypeAndValue: `value` is the DER of infoValue, None when absent."""

    oid: str
    value: bytes | None = None


@dataclass(frozen=True, slots=True)
class StatusInfo:
    status: str  # PKIStatus name: accepted, grantedWithMods, rejection, waiting, ...
    fail_info: frozenset[str] = frozenset()
    text: tuple[str, ...] = ()

    @property
    def accepted(self) -> bool:
        return self.status in ("accepted", "grantedWithMods")


@dataclass(frozen=True, slots=True)
class Header:
    pvno: int
    sender: bytes  # GeneralName DER
    recipient: bytes  # GeneralName DER
    message_time: dt.datetime | None = None
    protection_alg: ProtectionAlgorithm | None = None
    sender_kid: bytes | None = None
    recip_kid: bytes | None = None
    transaction_id: bytes | None = None
    sender_nonce: bytes | None = None
    recip_nonce: bytes | None = None
    free_text: tuple[str, ...] = ()
    general_info: tuple[InfoItem, ...] = ()

    def info(self, oid: str) -> InfoItem | None:
        return next((item for item in self.general_info if item.oid == oid), None)

    @property
    def implicit_confirm(self) -> bool:
        return self.info(oids.OID_IT_IMPLICIT_CONFIRM) is not None


# --- bodies ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Extension:
    oid: str
    critical: bool
    value: bytes  # DER inside extnValue


@dataclass(frozen=True, slots=True)
class CertTemplate:
    subject: bytes | None = None  # Name DER
    issuer: bytes | None = None  # Name DER
    public_key: bytes | None = None  # SubjectPublicKeyInfo DER
    not_before: dt.datetime | None = None
    not_after: dt.datetime | None = None
    extensions: tuple[Extension, ...] = ()
    serial_number: int | None = None
    version: int | None = None
    # Fields RFC 4211 5 says the requester must leave out (signingAlg, issuerUID, subjectUID).
    unexpected_fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CertId:
    issuer: bytes  # GeneralName DER
    serial: int


@dataclass(frozen=True, slots=True)
class PkMac:
    algorithm: ProtectionAlgorithm
    value: bytes


@dataclass(frozen=True, slots=True)
class Popo:
    """ProofOfPossession (RFC 4211 4). For `signature`, `signed` is exactly the DER the
    signature covers: the CertRequest, or POPOSigningKeyInput when that is present."""

    method: str  # "raVerified" | "signature" | "keyEncipherment" | "keyAgreement"
    algorithm: ProtectionAlgorithm | None = None
    signature: bytes = b""
    signed: bytes = b""
    input_sender: bytes | None = None  # POPOSigningKeyInput.authInfo.sender
    input_mac: PkMac | None = None  # POPOSigningKeyInput.authInfo.publicKeyMAC
    input_public_key: bytes | None = None


@dataclass(frozen=True, slots=True)
class CertRequest:
    cert_req_id: int
    template: CertTemplate
    der: bytes = b""  # the CertRequest as sent (what a signature POPO signs)
    popo: Popo | None = None
    old_cert_id: CertId | None = None
    controls: tuple[InfoItem, ...] = ()


@dataclass(frozen=True, slots=True)
class CertReqBody:
    kind: str  # "ir" | "cr" | "kur"
    requests: tuple[CertRequest, ...]


@dataclass(frozen=True, slots=True)
class P10crBody:
    csr: bytes
    kind: str = "p10cr"


@dataclass(frozen=True, slots=True)
class CertResponse:
    cert_req_id: int
    status: StatusInfo
    certificate: bytes | None = None


@dataclass(frozen=True, slots=True)
class CertRepBody:
    kind: str  # "ip" | "cp" | "kup"
    responses: tuple[CertResponse, ...]
    ca_pubs: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class CertConfirmation:
    cert_hash: bytes
    cert_req_id: int
    status: StatusInfo | None = None
    hash_alg: str | None = None  # hashlib name, from cmp2021's hashAlg

    @property
    def accepted(self) -> bool:
        return self.status is None or self.status.accepted


@dataclass(frozen=True, slots=True)
class CertConfBody:
    confirmations: tuple[CertConfirmation, ...]
    kind: str = "certConf"


@dataclass(frozen=True, slots=True)
class PkiConfBody:
    kind: str = "pkiconf"


@dataclass(frozen=True, slots=True)
class PollReqBody:
    cert_req_ids: tuple[int, ...]
    kind: str = "pollReq"


@dataclass(frozen=True, slots=True)
class PollRepEntry:
    cert_req_id: int
    check_after: int
    reason: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PollRepBody:
    entries: tuple[PollRepEntry, ...]
    kind: str = "pollRep"


@dataclass(frozen=True, slots=True)
class RevDetails:
    serial: int | None
    issuer: bytes | None  # Name DER
    reason: int | None = None  # CRLReason code
    invalidity_date: dt.datetime | None = None
    other_fields: tuple[str, ...] = ()  # template fields besides serialNumber and issuer


@dataclass(frozen=True, slots=True)
class RevReqBody:
    entries: tuple[RevDetails, ...]
    kind: str = "rr"


@dataclass(frozen=True, slots=True)
class RevRepBody:
    statuses: tuple[StatusInfo, ...]
    revoked: tuple[CertId, ...] = ()
    kind: str = "rp"


@dataclass(frozen=True, slots=True)
class GenBody:
    kind: str  # "genm" | "genp"
    items: tuple[InfoItem, ...]


@dataclass(frozen=True, slots=True)
class ErrorBody:
    status: StatusInfo
    error_code: int | None = None
    details: tuple[str, ...] = ()
    kind: str = "error"


@dataclass(frozen=True, slots=True)
class UnsupportedBody:
    kind: str


Body = (
    CertReqBody
    | P10crBody
    | CertRepBody
    | CertConfBody
    | PkiConfBody
    | PollReqBody
    | PollRepBody
    | RevReqBody
    | RevRepBody
    | GenBody
    | ErrorBody
    | UnsupportedBody
)


@dataclass(frozen=True, slots=True)
class Message:
    header: Header
    body: Body
    protected_part: bytes = b""  # DER of ProtectedPart, what the protection covers
    protection: bytes | None = None
    extra_certs: tuple[bytes, ...] = ()
