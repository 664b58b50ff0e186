"""CMP messages in and out: DER <-> frozen dataclasses (RFC 4210 section 5, RFC 4211,
RFC 9480, RFC 9481 section 6 for the protection parameters).

Decoding is strict: one DER PKIMessage and nothing after it (asn1crypto's strict load),
header and body re-encoded must give back the received bytes (so an indefinite length,
a long-form length or a DEFAULT value spelled out is refused: DER at the TLV level), and
certificates must parse with cryptography's own strict DER parser. Hostile-input limits
(size, counts) are checked here, before anything else looks at the message.

Nothing outside this module and asn1.py imports asn1crypto; the rest of the package sees
only the dataclasses below and bytes (DER of names, keys, certificates).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from asn1crypto import algos, core, crl, csr, keys
from asn1crypto import x509 as ax509
from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier

from protocols.cmp import asn1

MAX_MESSAGE_BYTES = 128 * 1024
MAX_EXTRA_CERTS = 16
MAX_ITEMS = 16  # CertReqMsgs, RevDetails, certConf entries, genm/generalInfo entries

PVNO_CMP2000 = 2
PVNO_CMP2021 = 3

# HMAC algorithm identifiers (RFC 9481 6.2.1; hmac-sha1 has two OIDs in the wild and
# OpenSSL's default `-mac hmac-sha1` sends the IANA one, 1.3.6.1.5.5.8.1.2).
HMAC_OIDS: dict[str, str] = {
    "1.3.6.1.5.5.8.1.2": "sha1",
    "1.2.840.113549.2.7": "sha1",
    "1.2.840.113549.2.8": "sha224",
    "1.2.840.113549.2.9": "sha256",
    "1.2.840.113549.2.10": "sha384",
    "1.2.840.113549.2.11": "sha512",
}
HMAC_OID_OF: dict[str, str] = {
    "sha1": "1.2.840.113549.2.7",
    "sha224": "1.2.840.113549.2.8",
    "sha256": "1.2.840.113549.2.9",
    "sha384": "1.2.840.113549.2.10",
    "sha512": "1.2.840.113549.2.11",
}
DIGEST_OIDS: dict[str, str] = {
    "1.3.14.3.2.26": "sha1",
    "2.16.840.1.101.3.4.2.4": "sha224",
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
}
DIGEST_OID_OF: dict[str, str] = {name: oid for oid, name in DIGEST_OIDS.items()}

# Signature algorithms for protection and POPO (RFC 9481 section 3): scheme and hash.
SIGNATURE_OIDS: dict[str, tuple[str, str]] = {
    "1.2.840.10045.4.3.1": ("ecdsa", "sha224"),
    "1.2.840.10045.4.3.2": ("ecdsa", "sha256"),
    "1.2.840.10045.4.3.3": ("ecdsa", "sha384"),
    "1.2.840.10045.4.3.4": ("ecdsa", "sha512"),
    "1.2.840.113549.1.1.14": ("rsa", "sha224"),
    "1.2.840.113549.1.1.11": ("rsa", "sha256"),
    "1.2.840.113549.1.1.12": ("rsa", "sha384"),
    "1.2.840.113549.1.1.13": ("rsa", "sha512"),
    "1.2.840.113549.1.1.10": ("rsa-pss", ""),  # hash from the parameters
    "1.3.101.112": ("ed25519", ""),
    "1.3.101.113": ("ed448", ""),
}
SIGNATURE_OID_OF: dict[tuple[str, str], str] = {
    v: k for k, v in SIGNATURE_OIDS.items() if v[1] and k != "1.2.840.10045.4.3.1"
}

_RSA_OID = "1.2.840.113549.1.1.1"
_EC_OID = "1.2.840.10045.2.1"


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
        return self.info(asn1.OID_IT_IMPLICIT_CONFIRM) is not None


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


# --- decoding -------------------------------------------------------------------------------

_BODY_NAMES = {
    "ir": "ir",
    "ip": "ip",
    "cr": "cr",
    "cp": "cp",
    "p10cr": "p10cr",
    "kur": "kur",
    "kup": "kup",
    "rr": "rr",
    "rp": "rp",
    "pkiconf": "pkiconf",
    "genm": "genm",
    "genp": "genp",
    "error": "error",
    "cert_conf": "certConf",
    "poll_req": "pollReq",
    "poll_rep": "pollRep",
}


def decode_message(data: bytes) -> Message:
    """Parse one DER PKIMessage; DecodeError for anything else."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise DecodeError(f"message larger than {MAX_MESSAGE_BYTES} bytes")
    violation = der_violation(data)
    try:
        msg = asn1.PKIMessage.load(data, strict=violation is None)
        raw_header = msg["header"]
        header_der = raw_header.dump()
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise DecodeError(violation or f"not a PKIMessage: {exc}") from None
    try:
        header = _decode_header(raw_header)
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise DecodeError(violation or f"PKIHeader does not parse: {exc}") from None
    if violation is not None:
        # The header could be read: the error answer can still echo its transactionID.
        raise DecodeError(violation, header)
    try:
        raw_body = msg["body"]
        body = _decode_body(raw_body)
        protected = _sequence(header_der + raw_body.dump())
        protection = msg["protection"]
        protection_bits = None if isinstance(protection, core.Void) else _bit_bytes(protection)
        extra = msg["extra_certs"]
        extra_certs: tuple[bytes, ...] = ()
        if not isinstance(extra, core.Void):
            if len(extra) > MAX_EXTRA_CERTS:
                raise DecodeError(f"more than {MAX_EXTRA_CERTS} extraCerts", header)
            extra_certs = tuple(_strict_certificate(c.dump()) for c in extra)
    except DecodeError as exc:
        exc.header = exc.header or header
        raise
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise DecodeError(f"PKIBody does not parse: {exc}", header) from None
    return Message(header, body, protected, protection_bits, extra_certs)


# --- DER at the TLV level (X.690 8.1, 10, 11) ------------------------------------------------

MAX_NESTING = 24
# Universal types DER always encodes primitive (X.690 10.2, 8.x): BOOLEAN, INTEGER, BIT
# STRING, OCTET STRING, NULL, OID, ENUMERATED, the string and time types.
_PRIMITIVE_ONLY = frozenset({1, 2, 3, 4, 5, 6, 10, 12, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 30})


class _NotDer(Exception):
    pass


def der_violation(data: bytes) -> str | None:
    """Why `data` is not exactly one DER TLV, or None: definite and minimal lengths,
    constructed SEQUENCE/SET, primitive strings, canonical BOOLEAN, INTEGER and NULL,
    bounded nesting. (SET OF order and omitted DEFAULTs are left to the schema.)"""
    try:
        end = _tlv(data, 0, len(data), 0)
    except _NotDer as exc:
        return f"not DER: {exc}"
    except IndexError:
        return "not DER: truncated"
    if end != len(data):
        return "not DER: bytes after the message"
    return None


def _tlv(data: bytes, pos: int, limit: int, depth: int) -> int:
    if depth > MAX_NESTING:
        raise _NotDer("nested too deeply")
    first = data[pos]
    pos += 1
    number = first & 0x1F
    if number == 0x1F:  # high tag number form: base 128, minimal, at least 31
        if data[pos] == 0x80:
            raise _NotDer("non-minimal tag number")
        number = 0
        while True:
            byte = data[pos]
            pos += 1
            number = (number << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
            if number > 0xFFFFFF:
                raise _NotDer("tag number too large")
        if number < 0x1F:
            raise _NotDer("high tag number form for a low tag")
    length = data[pos]
    pos += 1
    if length == 0x80:
        raise _NotDer("indefinite length")
    if length > 0x80:
        count = length & 0x7F
        if count > 4:
            raise _NotDer("length too large")
        raw = data[pos : pos + count]
        if len(raw) != count or raw[0] == 0:
            raise _NotDer("non-minimal length")
        length = int.from_bytes(raw, "big")
        if length < 0x80:
            raise _NotDer("non-minimal length")
        pos += count
    end = pos + length
    if end > limit:
        raise _NotDer("length beyond its container")
    constructed = bool(first & 0x20)
    if first >> 6 == 0:  # universal
        if number in (16, 17) and not constructed:
            raise _NotDer("primitive SEQUENCE or SET")
        if number in _PRIMITIVE_ONLY:
            if constructed:
                raise _NotDer("constructed string or value")
            value = data[pos:end]
            if number == 1 and value not in (b"\x00", b"\xff"):
                raise _NotDer("BOOLEAN is not 00 or FF")
            if number in (2, 10) and (
                not value or (len(value) > 1 and (value[:2] < b"\x00\x80" or value[:2] >= b"\xff\x80"))
            ):
                raise _NotDer("INTEGER not in its shortest form")
            if number == 5 and value:
                raise _NotDer("NULL with contents")
            if number == 3 and (not value or value[0] > 7 or (len(value) == 1 and value[0] != 0)):
                raise _NotDer("malformed BIT STRING")
    if constructed:
        inner = pos
        while inner < end:
            inner = _tlv(data, inner, end, depth + 1)
    return end


def _sequence(contents: bytes) -> bytes:
    return b"\x30" + _length(len(contents)) + contents


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _bit_bytes(value: core.OctetBitString) -> bytes:
    # Signatures and MACs are whole octets; unused bits would mean a malformed value.
    contents = value.contents
    if not contents or contents[0] != 0:
        raise DecodeError("protection or signature BIT STRING has unused bits")
    return bytes(contents[1:])


def _strict_certificate(der: bytes) -> bytes:
    try:
        x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise DecodeError(f"a certificate does not parse: {exc}") from None
    return der


def _int(value: Any) -> int:
    """An INTEGER's value whatever its named-number map says."""
    return int.from_bytes(bytes(value.contents), "big", signed=True)


def _optional(value: Any) -> Any:
    return None if isinstance(value, core.Void) else value


def _octets(value: Any) -> bytes | None:
    value = _optional(value)
    return None if value is None else bytes(value.native)


def _free_text(value: Any) -> tuple[str, ...]:
    value = _optional(value)
    if value is None:
        return ()
    if len(value) > MAX_ITEMS:
        raise DecodeError(f"PKIFreeText with more than {MAX_ITEMS} strings")
    return tuple(str(s.native) for s in value)


def _decode_header(raw: asn1.PKIHeader) -> Header:
    general_info: tuple[InfoItem, ...] = ()
    info = _optional(raw["general_info"])
    if info is not None:
        if len(info) > MAX_ITEMS:
            raise DecodeError(f"generalInfo with more than {MAX_ITEMS} entries")
        general_info = tuple(_info_item(i) for i in info)
    alg = _optional(raw["protection_alg"])
    message_time = _optional(raw["message_time"])
    return Header(
        pvno=_int(raw["pvno"]),
        sender=raw["sender"].dump(),
        recipient=raw["recipient"].dump(),
        message_time=message_time.native if message_time is not None else None,
        protection_alg=decode_protection_algorithm(alg) if alg is not None else None,
        sender_kid=_octets(raw["sender_kid"]),
        recip_kid=_octets(raw["recip_kid"]),
        transaction_id=_octets(raw["transaction_id"]),
        sender_nonce=_octets(raw["sender_nonce"]),
        recip_nonce=_octets(raw["recip_nonce"]),
        free_text=_free_text(raw["free_text"]),
        general_info=general_info,
    )


def _info_item(raw: asn1.InfoTypeAndValue) -> InfoItem:
    value = _optional(raw["info_value"])
    return InfoItem(raw["info_type"].dotted, value.dump() if value is not None else None)


def decode_protection_algorithm(alg: Any) -> ProtectionAlgorithm:
    """AlgorithmIdentifier (asn1crypto) -> a protection algorithm we can act on."""
    oid = alg["algorithm"].dotted
    params = _optional(alg["parameters"])
    if oid == asn1.OID_PASSWORD_BASED_MAC:
        if params is None:
            return UnknownAlgorithm(oid, "PasswordBasedMac without parameters")
        p = asn1.PBMParameter.load(params.dump(), strict=True)
        owf = DIGEST_OIDS.get(p["owf"]["algorithm"].dotted)
        mac = HMAC_OIDS.get(p["mac"]["algorithm"].dotted)
        if owf is None or mac is None:
            return UnknownAlgorithm(oid, "unsupported owf or mac in PBMParameter")
        return Pbm(
            bytes(p["salt"].native), owf, int(p["iteration_count"].native), mac, p["mac"]["algorithm"].dotted
        )
    if oid == asn1.OID_PBMAC1:
        if params is None:
            return UnknownAlgorithm(oid, "PBMAC1 without parameters")
        p = algos.Pbmac1Params.load(params.dump(), strict=True)
        kdf = p["key_derivation_func"]
        if kdf["algorithm"].dotted != asn1.OID_PBKDF2:
            return UnknownAlgorithm(oid, "PBMAC1 with a KDF other than PBKDF2")
        kp = kdf["parameters"]
        if kp["salt"].name != "specified" or isinstance(kp["key_length"], core.Void):
            return UnknownAlgorithm(oid, "PBKDF2 needs a specified salt and a keyLength (RFC 9481 6.1.2)")
        prf = HMAC_OIDS.get(kp["prf"]["algorithm"].dotted)
        mac = HMAC_OIDS.get(p["message_auth_scheme"]["algorithm"].dotted)
        if prf is None or mac is None:
            return UnknownAlgorithm(oid, "unsupported PBKDF2 prf or PBMAC1 MAC")
        return Pbmac1(
            bytes(kp["salt"].chosen.native),
            int(kp["iteration_count"].native),
            int(kp["key_length"].native),
            prf,
            mac,
        )
    return _signature_algorithm(oid, params)


def _signature_algorithm(oid: str, params: Any) -> ProtectionAlgorithm:
    known = SIGNATURE_OIDS.get(oid)
    if known is None:
        return UnknownAlgorithm(oid)
    scheme, hash_name = known
    if scheme != "rsa-pss":
        return SignatureAlgorithm(oid, scheme, hash_name)
    if params is None:
        return UnknownAlgorithm(oid, "RSASSA-PSS without parameters")
    p = algos.RSASSAPSSParams.load(params.dump(), strict=True)
    hash_name = DIGEST_OIDS.get(p["hash_algorithm"]["algorithm"].dotted, "")
    mgf = p["mask_gen_algorithm"]
    mgf_hash = DIGEST_OIDS.get(mgf["parameters"]["algorithm"].dotted, "")
    if not hash_name or mgf["algorithm"].native != "mgf1" or mgf_hash != hash_name:
        return UnknownAlgorithm(oid, "RSASSA-PSS needs MGF1 with the same SHA-2 hash")
    return SignatureAlgorithm(oid, "rsa-pss", hash_name, int(p["salt_length"].native))


def _decode_body(raw: asn1.PKIBody) -> Body:
    name = raw.name
    kind = _BODY_NAMES.get(name)
    if kind is None:
        return UnsupportedBody(name)
    value = raw.chosen
    if kind in ("ir", "cr", "kur"):
        if len(value) > MAX_ITEMS:
            raise DecodeError(f"more than {MAX_ITEMS} CertReqMsg")
        return CertReqBody(kind, tuple(_cert_req_msg(m) for m in value))
    if kind == "p10cr":
        return P10crBody(bytes(value.untag().dump()))
    if kind in ("ip", "cp", "kup"):
        return _cert_rep(kind, value)
    if kind == "certConf":
        if len(value) > MAX_ITEMS:
            raise DecodeError(f"more than {MAX_ITEMS} CertStatus")
        return CertConfBody(tuple(_cert_status(s) for s in value))
    if kind == "pkiconf":
        return PkiConfBody()
    if kind == "pollReq":
        if len(value) > MAX_ITEMS:
            raise DecodeError(f"more than {MAX_ITEMS} pollReq entries")
        return PollReqBody(tuple(int(p["cert_req_id"].native) for p in value))
    if kind == "pollRep":
        return PollRepBody(
            tuple(
                PollRepEntry(
                    int(p["cert_req_id"].native), int(p["check_after"].native), _free_text(p["reason"])
                )
                for p in value
            )
        )
    if kind == "rr":
        if len(value) > MAX_ITEMS:
            raise DecodeError(f"more than {MAX_ITEMS} RevDetails")
        return RevReqBody(tuple(_rev_details(d) for d in value))
    if kind == "rp":
        revoked = _optional(value["rev_certs"])
        return RevRepBody(
            tuple(_status_info(s) for s in value["status"]),
            tuple(CertId(c["issuer"].dump(), int(c["serial_number"].native)) for c in revoked or ()),
        )
    if kind in ("genm", "genp"):
        if len(value) > MAX_ITEMS:
            raise DecodeError(f"more than {MAX_ITEMS} InfoTypeAndValue")
        return GenBody(kind, tuple(_info_item(i) for i in value))
    # error
    code = _optional(value["error_code"])
    return ErrorBody(
        _status_info(value["pki_status_info"]),
        int(code.native) if code is not None else None,
        _free_text(value["error_details"]),
    )


def _status_info(raw: asn1.PKIStatusInfo) -> StatusInfo:
    status = raw["status"].native
    fail = _optional(raw["fail_info"])
    bits: frozenset[str] = frozenset()
    if fail is not None:
        bits = frozenset(str(b) if not isinstance(b, int) else f"bit{b}" for b in fail.native)
    return StatusInfo(str(status), bits, _free_text(raw["status_string"]))


def _time(value: Any) -> dt.datetime | None:
    value = _optional(value)
    return None if value is None else value.native


def _template(raw: asn1.CertTemplate) -> CertTemplate:
    unexpected = tuple(
        name for name in ("signing_alg", "issuer_uid", "subject_uid") if _optional(raw[name]) is not None
    )
    validity = _optional(raw["validity"])
    extensions = _optional(raw["extensions"])
    subject = _optional(raw["subject"])
    issuer = _optional(raw["issuer"])
    public_key = _optional(raw["public_key"])
    serial = _optional(raw["serial_number"])
    version = _optional(raw["version"])
    return CertTemplate(
        subject=_untagged(subject),
        issuer=_untagged(issuer),
        public_key=_untagged(public_key),
        not_before=_time(validity["not_before"]) if validity is not None else None,
        not_after=_time(validity["not_after"]) if validity is not None else None,
        extensions=tuple(
            Extension(e["extn_id"].dotted, bool(e["critical"].native), e["extn_value"].contents)
            for e in extensions or ()
        ),
        serial_number=int(serial.native) if serial is not None else None,
        version=_int(version) if version is not None else None,
        unexpected_fields=unexpected,
    )


def _untagged(value: Any) -> bytes | None:
    """The DER of a tagged field's value as it would stand alone (universal tag)."""
    if value is None:
        return None
    return bytes(value.untag().dump()) if value.explicit or value.implicit else bytes(value.dump())


def _cert_req_msg(raw: asn1.CertReqMsg) -> CertRequest:
    request = raw["cert_req"]
    controls = tuple(
        InfoItem(c["type"].dotted, c["value"].dump()) for c in _optional(request["controls"]) or ()
    )
    old: CertId | None = None
    for control in controls:
        if control.oid == asn1.OID_REGCTRL_OLD_CERT_ID and control.value is not None:
            parsed = asn1.CertId.load(control.value, strict=True)
            old = CertId(parsed["issuer"].dump(), int(parsed["serial_number"].native))
    return CertRequest(
        cert_req_id=int(request["cert_req_id"].native),
        template=_template(request["cert_template"]),
        der=request.dump(),
        popo=_popo(_optional(raw["popo"]), request.dump()),
        old_cert_id=old,
        controls=controls,
    )


def _popo(raw: Any, cert_request_der: bytes) -> Popo | None:
    if raw is None:
        return None
    if raw.name == "ra_verified":
        return Popo("raVerified")
    if raw.name in ("key_encipherment", "key_agreement"):
        return Popo("keyEncipherment" if raw.name == "key_encipherment" else "keyAgreement")
    signing = raw.chosen
    alg = signing["algorithm_identifier"]
    algorithm = _signature_algorithm(alg["algorithm"].dotted, _optional(alg["parameters"]))
    poposk = _optional(signing["poposk_input"])
    if poposk is None:
        return Popo("signature", algorithm, _bit_bytes(signing["signature"]), cert_request_der)
    auth = poposk["auth_info"]
    sender = auth.chosen.untag().dump() if auth.name == "sender" else None
    mac = None
    if auth.name == "public_key_mac":
        pk = auth.chosen
        mac = PkMac(decode_protection_algorithm(pk["alg_id"]), _bit_bytes(pk["value"]))
    return Popo(
        "signature",
        algorithm,
        _bit_bytes(signing["signature"]),
        poposk.untag().dump(),
        input_sender=sender,
        input_mac=mac,
        input_public_key=poposk["public_key"].dump(),
    )


def _cert_rep(kind: str, raw: asn1.CertRepMessage) -> CertRepBody:
    responses = []
    for r in raw["response"]:
        pair = _optional(r["certified_key_pair"])
        cert = None
        if pair is not None and pair["cert_or_enc_cert"].name == "certificate":
            cert = pair["cert_or_enc_cert"].chosen.untag().dump()
        responses.append(CertResponse(int(r["cert_req_id"].native), _status_info(r["status"]), cert))
    ca_pubs = _optional(raw["ca_pubs"])
    return CertRepBody(kind, tuple(responses), tuple(c.dump() for c in ca_pubs or ()))


def _cert_status(raw: asn1.CertStatus) -> CertConfirmation:
    status = _optional(raw["status_info"])
    hash_alg = _optional(raw["hash_alg"])
    return CertConfirmation(
        bytes(raw["cert_hash"].native),
        int(raw["cert_req_id"].native),
        _status_info(status) if status is not None else None,
        DIGEST_OIDS.get(hash_alg["algorithm"].dotted, "unknown") if hash_alg is not None else None,
    )


_REASON_OID = "2.5.29.21"
_INVALIDITY_OID = "2.5.29.24"


def _rev_details(raw: asn1.RevDetails) -> RevDetails:
    template = raw["cert_details"]
    serial = _optional(template["serial_number"])
    issuer = _optional(template["issuer"])
    others = tuple(
        name
        for name in (
            "version",
            "signing_alg",
            "validity",
            "subject",
            "public_key",
            "issuer_uid",
            "subject_uid",
            "extensions",
        )
        if _optional(template[name]) is not None
    )
    reason = None
    invalidity = None
    for ext in _optional(raw["crl_entry_details"]) or ():
        oid = ext["extn_id"].dotted
        if oid == _REASON_OID:
            reason = _int(core.Enumerated.load(ext["extn_value"].contents, strict=True))
        elif oid == _INVALIDITY_OID:
            invalidity = core.GeneralizedTime.load(ext["extn_value"].contents, strict=True).native
    return RevDetails(
        int(serial.native) if serial is not None else None,
        _untagged(issuer),
        reason,
        invalidity,
        others,
    )


# --- names and general names -----------------------------------------------------------------


def directory_name(name_der: bytes) -> bytes:
    """GeneralName DER of directoryName(name)."""
    return ax509.GeneralName(name="directory_name", value=ax509.Name.load(name_der)).dump()


NULL_DN_NAME = ax509.Name.build({}).dump()


def directory_name_of(general_name_der: bytes) -> bytes | None:
    """The Name DER inside a directoryName GeneralName, None for other choices."""
    gn = ax509.GeneralName.load(general_name_der)
    if gn.name != "directory_name":
        return None
    return bytes(gn.chosen.untag().dump())


def is_null_dn(name_der: bytes) -> bool:
    return len(ax509.Name.load(name_der).chosen) == 0


def same_name(a_der: bytes, b_der: bytes) -> bool:
    """RFC 5280 7.1 name comparison (asn1crypto normalises case and whitespace)."""
    try:
        return bool(ax509.Name.load(a_der) == ax509.Name.load(b_der))
    except (ValueError, TypeError):
        return False


def name_text(name_der: bytes | None) -> str:
    if name_der is None:
        return "(none)"
    try:
        return to_x509_name(name_der).rfc4514_string() or "(NULL-DN)"
    except ValueError:
        return "(unreadable name)"


def general_name_text(general_name_der: bytes) -> str:
    inner = directory_name_of(general_name_der)
    if inner is not None:
        return name_text(inner)
    return ax509.GeneralName.load(general_name_der).name


def to_x509_name(name_der: bytes) -> x509.Name:
    """An asn1crypto-read Name as a cryptography Name (string values only)."""
    name = ax509.Name.load(name_der)
    rdns = []
    for rdn in name.chosen:
        attributes = []
        for atv in rdn:
            value = atv["value"].native
            if not isinstance(value, str):
                raise ValueError(f"name attribute {atv['type'].dotted} is not a string")
            attributes.append(x509.NameAttribute(ObjectIdentifier(atv["type"].dotted), value))
        rdns.append(x509.RelativeDistinguishedName(attributes))
    return x509.Name(rdns)


def subject_alt_names(extension_value: bytes) -> tuple[x509.GeneralName, ...]:
    """The GeneralNames of a subjectAltName extnValue, as cryptography objects."""
    names = ax509.GeneralNames.load(extension_value, strict=True)
    return tuple(_to_x509_general_name(gn) for gn in names)


def _to_x509_general_name(gn: ax509.GeneralName) -> x509.GeneralName:
    kind = gn.name
    if kind == "dns_name":
        return x509.DNSName(gn.native)
    if kind == "rfc822_name":
        return x509.RFC822Name(gn.native)
    if kind == "uniform_resource_identifier":
        return x509.UniformResourceIdentifier(gn.native)
    if kind == "ip_address":
        raw = bytes(gn.chosen.contents)
        if len(raw) not in (4, 16):
            raise ValueError("an IP address SAN must be 4 or 16 octets")
        return x509.IPAddress(ipaddress.ip_address(raw))
    if kind == "directory_name":
        return x509.DirectoryName(to_x509_name(gn.chosen.untag().dump()))
    if kind == "registered_id":
        return x509.RegisteredID(ObjectIdentifier(gn.chosen.dotted))
    if kind == "other_name":
        other = gn.chosen
        return x509.OtherName(ObjectIdentifier(other["type_id"].dotted), other["value"].untag().dump())
    raise ValueError(f"GeneralName {kind} is not supported")


def spki_of_certificate(cert_der: bytes) -> bytes:
    return bytes(ax509.Certificate.load(cert_der)["tbs_certificate"]["subject_public_key_info"].dump())


# --- encoding -------------------------------------------------------------------------------


def _alg_id(algorithm: ProtectionAlgorithm) -> algos.AlgorithmIdentifier:
    if isinstance(algorithm, Pbm):
        params = asn1.PBMParameter(
            {
                "salt": algorithm.salt,
                "owf": {"algorithm": DIGEST_OID_OF[algorithm.owf]},
                "iteration_count": algorithm.iterations,
                "mac": {"algorithm": algorithm.mac_oid},
            }
        )
        return algos.AlgorithmIdentifier({"algorithm": asn1.OID_PASSWORD_BASED_MAC, "parameters": params})
    if isinstance(algorithm, Pbmac1):
        params = algos.Pbmac1Params(
            {
                "key_derivation_func": {
                    "algorithm": "pbkdf2",
                    "parameters": {
                        "salt": algos.Pbkdf2Salt(name="specified", value=algorithm.salt),
                        "iteration_count": algorithm.iterations,
                        "key_length": algorithm.key_length,
                        "prf": {"algorithm": HMAC_OID_OF[algorithm.prf], "parameters": core.Null()},
                    },
                },
                "message_auth_scheme": {"algorithm": HMAC_OID_OF[algorithm.mac], "parameters": core.Null()},
            }
        )
        return algos.AlgorithmIdentifier({"algorithm": asn1.OID_PBMAC1, "parameters": params})
    if isinstance(algorithm, SignatureAlgorithm):
        if algorithm.scheme == "rsa-pss":
            params = algos.RSASSAPSSParams(
                {
                    "hash_algorithm": {"algorithm": algorithm.hash},
                    "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": algorithm.hash}},
                    "salt_length": algorithm.pss_salt_length or 32,
                }
            )
            return algos.AlgorithmIdentifier({"algorithm": algorithm.oid, "parameters": params})
        if algorithm.scheme == "rsa":
            return algos.AlgorithmIdentifier({"algorithm": algorithm.oid, "parameters": core.Null()})
        return algos.AlgorithmIdentifier({"algorithm": algorithm.oid})
    raise ValueError(f"cannot encode algorithm {algorithm.oid}")


def signature_algorithm_for(scheme: str, hash_name: str) -> SignatureAlgorithm:
    return SignatureAlgorithm(SIGNATURE_OID_OF[(scheme, hash_name)], scheme, hash_name)


def _free_text_value(texts: Sequence[str]) -> asn1.PKIFreeText:
    return asn1.PKIFreeText([core.UTF8String(t) for t in texts])


def _status_value(status: StatusInfo) -> asn1.PKIStatusInfo:
    value: dict[str, Any] = {"status": status.status}
    if status.text:
        value["status_string"] = _free_text_value(status.text)
    if status.fail_info:
        value["fail_info"] = asn1.PKIFailureInfo(set(status.fail_info))
    return asn1.PKIStatusInfo(value)


def _header_value(header: Header) -> asn1.PKIHeader:
    value: dict[str, Any] = {
        "pvno": header.pvno,
        "sender": ax509.GeneralName.load(header.sender),
        "recipient": ax509.GeneralName.load(header.recipient),
    }
    if header.message_time is not None:
        value["message_time"] = core.GeneralizedTime(header.message_time.replace(microsecond=0))
    if header.protection_alg is not None:
        value["protection_alg"] = _alg_id(header.protection_alg)
    for key in ("sender_kid", "recip_kid", "transaction_id", "sender_nonce", "recip_nonce"):
        if getattr(header, key) is not None:
            value[key] = getattr(header, key)
    if header.free_text:
        value["free_text"] = _free_text_value(header.free_text)
    if header.general_info:
        value["general_info"] = asn1.GeneralInfo(
            [
                asn1.InfoTypeAndValue(
                    {"info_type": i.oid, "info_value": core.Any.load(i.value)}
                    if i.value is not None
                    else {"info_type": i.oid}
                )
                for i in header.general_info
            ]
        )
    return asn1.PKIHeader(value)


def _template_value(t: CertTemplate) -> asn1.CertTemplate:
    value: dict[str, Any] = {}
    if t.version is not None:
        value["version"] = t.version
    if t.serial_number is not None:
        value["serial_number"] = t.serial_number
    if t.issuer is not None:
        value["issuer"] = ax509.Name.load(t.issuer)
    if t.not_before is not None or t.not_after is not None:
        validity: dict[str, Any] = {}
        if t.not_before is not None:
            validity["not_before"] = ax509.Time(name="general_time", value=t.not_before)
        if t.not_after is not None:
            validity["not_after"] = ax509.Time(name="general_time", value=t.not_after)
        value["validity"] = validity
    if t.subject is not None:
        value["subject"] = ax509.Name.load(t.subject)
    if t.public_key is not None:
        value["public_key"] = keys.PublicKeyInfo.load(t.public_key)
    if t.extensions:
        value["extensions"] = ax509.Extensions(
            [
                ax509.Extension(
                    {
                        "extn_id": e.oid,
                        "critical": e.critical,
                        "extn_value": core.ParsableOctetString(e.value),
                    }
                )
                for e in t.extensions
            ]
        )
    if not value:
        # asn1crypto takes a Sequence built from {} for "not set"; an empty template is set.
        return asn1.CertTemplate.load(b"\x30\x00")
    return asn1.CertTemplate(value)


def encode_cert_request(cert_req_id: int, template: CertTemplate, controls: Sequence[InfoItem] = ()) -> bytes:
    """DER of a CertRequest (what the requester signs for a signature POPO)."""
    value: dict[str, Any] = {"cert_req_id": cert_req_id, "cert_template": _template_value(template)}
    if controls:
        value["controls"] = asn1.Controls(
            [
                asn1.AttributeTypeAndValue({"type": c.oid, "value": core.Any.load(c.value or b"")})
                for c in controls
            ]
        )
    return bytes(asn1.CertRequest(value).dump())


def encode_cert_id(issuer_name_der: bytes, serial: int) -> bytes:
    return bytes(
        asn1.CertId(
            {"issuer": ax509.GeneralName.load(directory_name(issuer_name_der)), "serial_number": serial}
        ).dump()
    )


def _popo_value(popo: Popo) -> asn1.ProofOfPossession:
    if popo.method == "raVerified":
        return asn1.ProofOfPossession(name="ra_verified", value=core.Null())
    if popo.method != "signature" or popo.algorithm is None:
        raise ValueError(f"cannot encode POPO {popo.method}")
    signing: dict[str, Any] = {
        "algorithm_identifier": algos.SignedDigestAlgorithm.load(_alg_id(popo.algorithm).dump()),
        "signature": core.OctetBitString(popo.signature),
    }
    return asn1.ProofOfPossession(name="signature", value=asn1.POPOSigningKey(signing))


def _body_value(body: Body) -> asn1.PKIBody:
    if isinstance(body, CertReqBody):
        messages = []
        for req in body.requests:
            msg: dict[str, Any] = {"cert_req": asn1.CertRequest.load(req.der)}
            if req.popo is not None:
                msg["popo"] = _popo_value(req.popo)
            messages.append(asn1.CertReqMsg(msg))
        return asn1.PKIBody(name=body.kind, value=asn1.CertReqMessages(messages))
    if isinstance(body, P10crBody):
        return asn1.PKIBody(name="p10cr", value=csr.CertificationRequest.load(body.csr))
    if isinstance(body, CertRepBody):
        responses = []
        for r in body.responses:
            item: dict[str, Any] = {"cert_req_id": r.cert_req_id, "status": _status_value(r.status)}
            if r.certificate is not None:
                item["certified_key_pair"] = {
                    "cert_or_enc_cert": asn1.CertOrEncCert(
                        name="certificate", value=asn1.CMPCertificate.load(r.certificate)
                    )
                }
            responses.append(asn1.CertResponse(item))
        rep: dict[str, Any] = {"response": asn1.CertResponses(responses)}
        if body.ca_pubs:
            rep["ca_pubs"] = asn1.CMPCertificates([asn1.CMPCertificate.load(c) for c in body.ca_pubs])
        return asn1.PKIBody(name=body.kind, value=asn1.CertRepMessage(rep))
    if isinstance(body, CertConfBody):
        statuses = []
        for c in body.confirmations:
            item = {"cert_hash": c.cert_hash, "cert_req_id": c.cert_req_id}
            if c.status is not None:
                item["status_info"] = _status_value(c.status)
            if c.hash_alg is not None:
                item["hash_alg"] = {"algorithm": DIGEST_OID_OF[c.hash_alg]}
            statuses.append(asn1.CertStatus(item))
        return asn1.PKIBody(name="cert_conf", value=asn1.CertConfirmContent(statuses))
    if isinstance(body, PkiConfBody):
        return asn1.PKIBody(name="pkiconf", value=core.Null())
    if isinstance(body, PollReqBody):
        return asn1.PKIBody(
            name="poll_req", value=asn1.PollReqContent([{"cert_req_id": i} for i in body.cert_req_ids])
        )
    if isinstance(body, PollRepBody):
        entries = []
        for e in body.entries:
            entry: dict[str, Any] = {"cert_req_id": e.cert_req_id, "check_after": e.check_after}
            if e.reason:
                entry["reason"] = _free_text_value(e.reason)
            entries.append(asn1.PollRep(entry))
        return asn1.PKIBody(name="poll_rep", value=asn1.PollRepContent(entries))
    if isinstance(body, RevReqBody):
        details = []
        for d in body.entries:
            template = CertTemplate(serial_number=d.serial, issuer=d.issuer)
            item = {"cert_details": _template_value(template)}
            extensions = []
            if d.reason is not None:
                extensions.append(
                    {
                        "extn_id": _REASON_OID,
                        "critical": False,
                        "extn_value": crl.CRLReason(d.reason).dump(),
                    }
                )
            if d.invalidity_date is not None:
                extensions.append(
                    {
                        "extn_id": _INVALIDITY_OID,
                        "critical": False,
                        "extn_value": core.GeneralizedTime(d.invalidity_date).dump(),
                    }
                )
            if extensions:
                item["crl_entry_details"] = ax509.Extensions(
                    [
                        ax509.Extension(
                            {
                                "extn_id": e["extn_id"],
                                "critical": False,
                                "extn_value": core.ParsableOctetString(e["extn_value"]),
                            }
                        )
                        for e in extensions
                    ]
                )
            details.append(asn1.RevDetails(item))
        return asn1.PKIBody(name="rr", value=asn1.RevReqContent(details))
    if isinstance(body, RevRepBody):
        rp: dict[str, Any] = {"status": asn1.PKIStatusInfos([_status_value(s) for s in body.statuses])}
        if body.revoked:
            rp["rev_certs"] = asn1.CertIds(
                [
                    asn1.CertId({"issuer": ax509.GeneralName.load(c.issuer), "serial_number": c.serial})
                    for c in body.revoked
                ]
            )
        return asn1.PKIBody(name="rp", value=asn1.RevRepContent(rp))
    if isinstance(body, GenBody):
        items = asn1.GenMsgContent(
            [
                asn1.InfoTypeAndValue(
                    {"info_type": i.oid, "info_value": core.Any.load(i.value)}
                    if i.value is not None
                    else {"info_type": i.oid}
                )
                for i in body.items
            ]
        )
        return asn1.PKIBody(name=body.kind, value=items)
    if isinstance(body, ErrorBody):
        err: dict[str, Any] = {"pki_status_info": _status_value(body.status)}
        if body.error_code is not None:
            err["error_code"] = body.error_code
        if body.details:
            err["error_details"] = _free_text_value(body.details)
        return asn1.PKIBody(name="error", value=asn1.ErrorMsgContent(err))
    raise ValueError(f"cannot encode a {body.kind} body")


@dataclass(frozen=True, slots=True)
class Prepared:
    """A message ready for protection: sign or MAC `protected_part`, then `finish`."""

    protected_part: bytes
    _header: asn1.PKIHeader = field(repr=False)
    _body: asn1.PKIBody = field(repr=False)
    _extra_certs: tuple[bytes, ...] = ()

    def finish(self, protection: bytes | None) -> bytes:
        value: dict[str, Any] = {"header": self._header, "body": self._body}
        if protection is not None:
            value["protection"] = core.OctetBitString(protection)
        if self._extra_certs:
            value["extra_certs"] = asn1.CMPCertificates(
                [asn1.CMPCertificate.load(c) for c in self._extra_certs]
            )
        return bytes(asn1.PKIMessage(value).dump())


def prepare(header: Header, body: Body, extra_certs: Sequence[bytes] = ()) -> Prepared:
    header_value = _header_value(header)
    body_value = _body_value(body)
    protected = _sequence(header_value.dump() + body_value.dump())
    return Prepared(protected, header_value, body_value, tuple(extra_certs))


# --- general message values (RFC 9480 2.3 to 2.6, RFC 9483 4.3) ----------------------------

NULL_DER = core.Null().dump()


def encode_certificates(ders: Sequence[bytes]) -> bytes:
    """CaCertsValue / a SEQUENCE OF CMPCertificate."""
    return bytes(asn1.CMPCertificates([asn1.CMPCertificate.load(d) for d in ders]).dump())


def decode_certificates(value: bytes) -> tuple[bytes, ...]:
    return tuple(c.dump() for c in asn1.CMPCertificates.load(value, strict=True))


def decode_certificate(value: bytes) -> bytes:
    """RootCaCertValue: one CMPCertificate."""
    return _strict_certificate(asn1.CMPCertificate.load(value, strict=True).dump())


def encode_root_ca_key_update(
    new_with_new: bytes, new_with_old: bytes | None = None, old_with_new: bytes | None = None
) -> bytes:
    value: dict[str, Any] = {"new_with_new": asn1.CMPCertificate.load(new_with_new)}
    if new_with_old is not None:
        value["new_with_old"] = asn1.CMPCertificate.load(new_with_old)
    if old_with_new is not None:
        value["old_with_new"] = asn1.CMPCertificate.load(old_with_new)
    return bytes(asn1.RootCaKeyUpdateContent(value).dump())


def decode_root_ca_key_update(value: bytes) -> tuple[bytes, bytes | None, bytes | None]:
    parsed = asn1.RootCaKeyUpdateContent.load(value, strict=True)

    def cert(name: str) -> bytes | None:
        item = _optional(parsed[name])
        return None if item is None else bytes(item.untag().dump())

    return bytes(parsed["new_with_new"].dump()), cert("new_with_old"), cert("old_with_new")


@dataclass(frozen=True, slots=True)
class KeySpec:
    """What a certificate request template allows (RFC 9483 4.3.3 keySpec)."""

    ec_curves: tuple[str, ...] = ()  # named curve OIDs
    rsa_key_lengths: tuple[int, ...] = ()


def encode_cert_req_template(template: CertTemplate, key_spec: KeySpec) -> bytes:
    controls = []
    for curve in key_spec.ec_curves:
        alg = keys.PublicKeyAlgorithm(
            {"algorithm": "ec", "parameters": keys.ECDomainParameters(name="named", value=curve)}
        )
        controls.append(asn1.AttributeTypeAndValue({"type": asn1.OID_REGCTRL_ALG_ID, "value": alg}))
    if key_spec.rsa_key_lengths:
        alg = keys.PublicKeyAlgorithm({"algorithm": "rsa", "parameters": core.Null()})
        controls.append(asn1.AttributeTypeAndValue({"type": asn1.OID_REGCTRL_ALG_ID, "value": alg}))
        for length in key_spec.rsa_key_lengths:
            controls.append(
                asn1.AttributeTypeAndValue(
                    {"type": asn1.OID_REGCTRL_RSA_KEY_LEN, "value": core.Integer(length)}
                )
            )
    value: dict[str, Any] = {"cert_template": _template_value(template)}
    if controls:
        value["key_spec"] = asn1.Controls(controls)
    return bytes(asn1.CertReqTemplateContent(value).dump())


def decode_cert_req_template(value: bytes) -> tuple[CertTemplate, KeySpec]:
    parsed = asn1.CertReqTemplateContent.load(value, strict=True)
    curves: list[str] = []
    lengths: list[int] = []
    for control in _optional(parsed["key_spec"]) or ():
        if control["type"].dotted == asn1.OID_REGCTRL_ALG_ID:
            alg = keys.PublicKeyAlgorithm.load(control["value"].dump())
            if alg["algorithm"].native == "ec":
                curves.append(alg["parameters"].chosen.dotted)
        elif control["type"].dotted == asn1.OID_REGCTRL_RSA_KEY_LEN:
            lengths.append(int(core.Integer.load(control["value"].dump()).native))
    return _template(parsed["cert_template"]), KeySpec(tuple(curves), tuple(lengths))


def encode_cert_profile(names: Sequence[str]) -> bytes:
    return bytes(asn1.CertProfileValue([core.UTF8String(n) for n in names]).dump())


def decode_cert_profile(value: bytes) -> tuple[str, ...]:
    parsed = asn1.CertProfileValue.load(value, strict=True)
    if len(parsed) == 0 or len(parsed) > MAX_ITEMS:
        raise ValueError("certProfile needs 1 to 16 names")
    return tuple(str(n.native) for n in parsed)


@dataclass(frozen=True, slots=True)
class CrlStatus:
    """One CRLStatus of id-it-crlStatusList: where the CRL comes from and the thisUpdate the
    client already has."""

    distribution_points: tuple[str, ...]  # URIs of a fullName dpn
    issuers: tuple[bytes, ...]  # Name DER of directoryName issuers
    this_update: dt.datetime | None


def decode_crl_status_list(value: bytes) -> tuple[CrlStatus, ...]:
    parsed = asn1.CRLStatusListValue.load(value, strict=True)
    if len(parsed) == 0 or len(parsed) > MAX_ITEMS:
        raise ValueError("crlStatusList needs 1 to 16 entries")
    out = []
    for status in parsed:
        source = status["source"]
        uris: list[str] = []
        issuers: list[bytes] = []
        names = source.chosen.chosen if source.name == "dpn" and source.chosen.name == "full_name" else None
        if source.name == "issuer":
            names = source.chosen
        for gn in names or ():
            if gn.name == "uniform_resource_identifier":
                uris.append(str(gn.native))
            elif gn.name == "directory_name":
                issuers.append(bytes(gn.chosen.untag().dump()))
        out.append(CrlStatus(tuple(uris), tuple(issuers), _time(status["this_update"])))
    return tuple(out)


def encode_crl_status_list(entries: Sequence[CrlStatus]) -> bytes:
    values = []
    for e in entries:
        if e.distribution_points:
            source = asn1.CRLSource(
                name="dpn",
                value=ax509.DistributionPointName(
                    name="full_name",
                    value=[
                        ax509.GeneralName(name="uniform_resource_identifier", value=u)
                        for u in e.distribution_points
                    ],
                ),
            )
        else:
            source = asn1.CRLSource(
                name="issuer", value=[ax509.GeneralName.load(directory_name(n)) for n in e.issuers]
            )
        item: dict[str, Any] = {"source": source}
        if e.this_update is not None:
            item["this_update"] = ax509.Time(name="utc_time", value=e.this_update)
        values.append(asn1.CRLStatus(item))
    return bytes(asn1.CRLStatusListValue(values).dump())


def encode_crls(crl_ders: Sequence[bytes]) -> bytes:
    return bytes(asn1.CertificateLists([crl.CertificateList.load(c) for c in crl_ders]).dump())


def encode_generalized_time(value: dt.datetime) -> bytes:
    return bytes(core.GeneralizedTime(value.replace(microsecond=0)).dump())


def encode_revocation_reason(code: int) -> bytes:
    return bytes(crl.CRLReason(code).dump())
