"""CMP decisions and transaction state, free of I/O (RFC 4210 5.1 and 5.3, RFC 9483 3 and 4).

Rules:
- Header (RFC 9483 3.1, 3.5): pvno cmp2000 or cmp2021, else unsupportedVersion; sender a
  directoryName; recipient the NULL-DN, the issuing CA or its CMP responder, else
  wrongAuthority; transactionID and senderNonce of 128 to 512 bits (badRequest,
  badSenderNonce); messageTime, when present, within the binding's tolerance (badTime).
- A request must be protected; its protection is checked in server.py (MAC with the
  shared secret named by senderKID, or a signature by a certificate of this CA or under a
  trust anchor). Follow-up messages (certConf, pollReq, error) must come from the same
  identity that opened the transaction, with recipNonce equal to the senderNonce of
  ceg's last answer (badRecipientNonce).
- Transactions (one state document per CA and transactionID, kept TX_RETENTION after it
  ends, so a reused transactionID is refused with transactionIdInUse):

      first message  ir/cr/kur/p10cr --issued-----------------> unconfirmed | confirmed
                                     --manual approval--------> waiting
                     rr/genm/refused ------------------------> closed
      waiting     --pollReq: pending--------------------------> waiting (pollRep)
                  --pollReq: approved-------------------------> unconfirmed | confirmed
                  --pollReq: rejected-------------------------> closed
      unconfirmed --certConf accepted-------------------------> confirmed (pkiConf)
                  --certConf rejected / error / deadline------> revoked (certificate revoked)

  `confirmed` directly means implicit confirmation (asked by the client, allowed by the
  binding: RFC 4210 5.1.1.1). An unconfirmed certificate is revoked once its confirmation
  deadline passes (jobs.py); the deadline is sent as confirmWaitTime (RFC 4210 5.1.1.2).
- Proof of possession (RFC 4211 4): signature POPO over the CertRequest (or over
  POPOSigningKeyInput), verified with the template's key; raVerified only from a trusted
  RA; key encipherment / agreement POPO and central key generation are not offered.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from cryptography import x509

from ca_core.model import RevocationReason
from protocols.cmp import codec, oids, protection
from protocols.cmp.codec import (
    Body,
    CertConfBody,
    CertRequest,
    CertTemplate,
    GenBody,
    Header,
    InfoItem,
    Pbm,
    Pbmac1,
    ProtectionAlgorithm,
    StatusInfo,
)
from protocols.cmp.errors import CmpFailure

PROFILES = (
    "cmp-digital-signature",
    "cmp-key-encipherment",
    "cmp-non-repudiation",
    "cmp-signature-key-encipherment",
)
TX_NAMESPACE = "cmp-tx"
UNCONFIRMED = "unconfirmed"  # lookup value of transactions the grace job watches
# How long an ended transaction's id stays taken (replay protection for messages
# without messageTime) and how long a parked request may wait for an officer.
TX_RETENTION = dt.timedelta(days=2)
WAITING_RETENTION = dt.timedelta(days=30)
P10CR_CERT_REQ_ID = -1  # RFC 9483 4.1.4: the certReqId of a p10cr's response

FIRST_MESSAGES = ("ir", "cr", "kur", "p10cr", "rr", "genm")
CERTIFICATE_REQUESTS = ("ir", "cr", "kur", "p10cr")
FOLLOW_UPS = ("certConf", "pollReq", "error")
RESPONSE_KIND = {"ir": "ip", "cr": "cp", "kur": "kup", "p10cr": "cp"}

# RFC 9483 6.1 operation labels (the optional last path segment, RFC 9811 3.3): which
# first message each label carries and, for genm, which infoType.
OPERATION_LABELS: dict[str, tuple[str, str | None]] = {
    "initialization": ("ir", None),
    "certification": ("cr", None),
    "keyupdate": ("kur", None),
    "pkcs10": ("p10cr", None),
    "revocation": ("rr", None),
    "getcacerts": ("genm", oids.OID_IT_CA_CERTS),
    "getrootupdate": ("genm", oids.OID_IT_ROOT_CA_CERT),
    "getcertreqtemplate": ("genm", oids.OID_IT_CERT_REQ_TEMPLATE),
    "getcrls": ("genm", oids.OID_IT_CRL_STATUS_LIST),
}

# The CRLReason codes of RFC 5280 5.3.1 that ceg revokes with.
REASONS_BY_CODE: dict[int, RevocationReason] = {r.code: r for r in RevocationReason}


# --- binding settings ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CmpSettings:
    """The CMP keys of a binding's settings (`default` is ceg's own, passed through)."""

    # Park every certificate request for an officer; the client polls (RFC 9483 4.4).
    manual_approval: bool = False
    # Grant implicit confirmation when the client asks for it (RFC 4210 5.1.1.1).
    implicit_confirm: bool = True
    # How long an issued certificate waits for certConf before it is revoked.
    confirm_wait_seconds: int = 300
    # checkAfter of pollRep while a request waits for approval.
    poll_interval_seconds: int = 10
    # Accepted distance between messageTime and ceg's clock.
    message_time_tolerance_seconds: int = 300
    # PEM CA certificates whose (indirectly) issued certificates may sign requests
    # (a device maker's CA for IDevID-protected ir, RFC 9483 4.1.1).
    trust_anchors: tuple[str, ...] = ()
    # SHA-256 fingerprints (hex) of RA protection certificates: they may use raVerified
    # POPO, and revoke or update any certificate of this CA (RFC 9483 5).
    trusted_ras: tuple[str, ...] = ()
    default: bool = False

    @classmethod
    def parse(cls, settings: Mapping[str, Any]) -> CmpSettings:
        """Check binding settings; ValueError names the bad key."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(settings) - known - {"allowed_profiles", "default_profile"})
        if unknown:
            raise ValueError(
                f"unknown CMP setting(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        base = cls()
        values: dict[str, Any] = {}
        for key in ("manual_approval", "implicit_confirm", "default"):
            value = settings.get(key, getattr(base, key))
            if not isinstance(value, bool):
                raise ValueError(f"{key}: true or false")
            values[key] = value
        limits = {
            "confirm_wait_seconds": (10, 86_400),
            "poll_interval_seconds": (1, 3_600),
            "message_time_tolerance_seconds": (10, 86_400),
        }
        for key, (low, high) in limits.items():
            value = settings.get(key, getattr(base, key))
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise ValueError(f"{key}: an integer from {low} to {high}")
            values[key] = value
        values["trust_anchors"] = _anchors(settings.get("trust_anchors", []))
        values["trusted_ras"] = _fingerprints(settings.get("trusted_ras", []))
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        return {
            "manual_approval": self.manual_approval,
            "implicit_confirm": self.implicit_confirm,
            "confirm_wait_seconds": self.confirm_wait_seconds,
            "poll_interval_seconds": self.poll_interval_seconds,
            "message_time_tolerance_seconds": self.message_time_tolerance_seconds,
            "trust_anchors": list(self.trust_anchors),
            "trusted_ras": list(self.trusted_ras),
            "default": self.default,
        }

    def anchor_certificates(self) -> tuple[x509.Certificate, ...]:
        return tuple(x509.load_pem_x509_certificate(pem.encode()) for pem in self.trust_anchors)


def _anchors(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list | tuple):
        raise ValueError("trust_anchors: a list of PEM certificates")
    out = []
    for index, pem in enumerate(raw):
        try:
            cert = x509.load_pem_x509_certificate(str(pem).encode())
        except ValueError:
            raise ValueError(f"trust_anchors[{index}]: not a PEM certificate") from None
        try:
            is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if not is_ca:
            raise ValueError(f"trust_anchors[{index}]: not a CA certificate")
        out.append(str(pem).strip() + "\n")
    return tuple(out)


def _fingerprints(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list | tuple):
        raise ValueError("trusted_ras: a list of SHA-256 fingerprints")
    out = []
    for index, value in enumerate(raw):
        text = str(value).lower().replace(":", "").strip()
        if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
            raise ValueError(f"trusted_ras[{index}]: not a SHA-256 fingerprint (64 hex digits)")
        out.append(text)
    return tuple(out)


def fingerprint(certificate_der: bytes) -> str:
    return hashlib.sha256(certificate_der).hexdigest()


# --- who sent the request -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sender:
    """The authenticated origin of a request (after its protection checked out)."""

    kind: str  # "mac" | "signature"
    principal: str  # "ref:<the shared secret's reference>", or the certificate's subject
    owner: str  # "mac:<reference>" | "cert:<sha256>": who may continue the transaction
    secret: bytes | None = None
    mac_algorithm: Pbm | Pbmac1 | None = None
    certificate: bytes | None = None
    serial: str | None = None  # set when this CA issued the protection certificate
    trusted_ra: bool = False


# --- header and body checks ---------------------------------------------------------------------


def check_header(
    header: Header, now: dt.datetime, tolerance: dt.timedelta, own_names: Sequence[bytes]
) -> None:
    """Generic checks of RFC 9483 3.5 that need neither keys nor state."""
    if header.pvno not in (codec.PVNO_CMP2000, codec.PVNO_CMP2021):
        raise CmpFailure(
            "unsupportedVersion", f"pvno {header.pvno}; cmp2000 (2) and cmp2021 (3) are supported"
        )
    if codec.directory_name_of(header.sender) is None:
        raise CmpFailure("badRequest", "the sender must be a directoryName")
    recipient = codec.directory_name_of(header.recipient)
    if recipient is None:
        raise CmpFailure("wrongAuthority", "the recipient must be a directoryName")
    if not codec.is_null_dn(recipient) and not any(codec.same_name(recipient, n) for n in own_names):
        raise CmpFailure("wrongAuthority", f"this CA is not the recipient {codec.name_text(recipient)}")
    if header.transaction_id is None or not 16 <= len(header.transaction_id) <= 64:
        raise CmpFailure("badRequest", "transactionID must be present, 128 to 512 bits")
    if header.sender_nonce is None or not 16 <= len(header.sender_nonce) <= 64:
        raise CmpFailure("badSenderNonce", "senderNonce must be present, 128 to 512 bits")
    if header.message_time is not None and abs(header.message_time - now) > tolerance:
        raise CmpFailure(
            "badTime", f"messageTime {header.message_time.isoformat()} is too far from {now.isoformat()}"
        )


def check_operation(kind: str, label: str | None, body: Body) -> None:
    """The body must be a request ceg serves, and match the path's operation label."""
    if kind not in FIRST_MESSAGES and kind not in FOLLOW_UPS:
        raise CmpFailure("badRequest", f"{kind} is not a request ceg answers")
    if label is None or kind in FOLLOW_UPS:
        return
    expected_kind, info_type = OPERATION_LABELS[label]
    if kind != expected_kind:
        raise CmpFailure("badRequest", f"a {kind} message was sent to the {label} operation")
    if info_type is not None and isinstance(body, GenBody) and any(i.oid != info_type for i in body.items):
        raise CmpFailure("badRequest", f"the {label} operation takes only the matching genm infoType")


def check_kur_protection(sender: Sender, kind: str) -> None:
    """kur must be signed with the certificate being updated (RFC 9483 4.1.3)."""
    if kind == "kur" and sender.kind != "signature":
        raise CmpFailure("wrongIntegrity", "kur must be signature-protected with the certificate to update")


def requested_profile(header: Header) -> str | None:
    """The id-it-certProfile generalInfo (RFC 9480 2.11), its first name."""
    item = header.info(oids.OID_IT_CERT_PROFILE)
    if item is None or item.value is None:
        return None
    try:
        names = codec.decode_cert_profile(item.value)
    except ValueError as exc:
        raise CmpFailure("badRequest", f"id-it-certProfile does not parse: {exc}") from None
    return names[0]


def single_request(requests: Sequence[CertRequest]) -> CertRequest:
    if len(requests) != 1:
        raise CmpFailure("badRequest", "exactly one CertReqMsg per message (RFC 9483 4.1.1)")
    return requests[0]


def check_template(template: CertTemplate, ca_name: bytes) -> None:
    """RFC 4211 5 / RFC 9483 4.1.1: what a requester may put in a certificate template."""
    if template.unexpected_fields:
        raise CmpFailure(
            "badCertTemplate", f"the template must not carry {', '.join(template.unexpected_fields)}"
        )
    if template.serial_number is not None:
        raise CmpFailure("badCertTemplate", "the template must not carry a serialNumber")
    if template.version is not None and template.version != 2:
        raise CmpFailure("badCertTemplate", "the template version, when present, must be v3 (2)")
    if template.issuer is not None and not codec.same_name(template.issuer, ca_name):
        raise CmpFailure("wrongAuthority", f"the template names issuer {codec.name_text(template.issuer)}")
    if template.public_key is None:
        raise CmpFailure(
            "badCertTemplate", "the template needs a publicKey (central key generation is not offered)"
        )


def check_popo(request: CertRequest, header: Header, sender: Sender) -> None:
    """Proof of possession of the template's key (RFC 4211 4, RFC 9483 4.1.1)."""
    popo = request.popo
    if popo is None:
        raise CmpFailure("badPOP", "the request carries no proof of possession")
    if popo.method == "raVerified":
        if not sender.trusted_ra:
            raise CmpFailure("badPOP", "raVerified is accepted only from a trusted RA")
        return
    if popo.method != "signature":
        raise CmpFailure("badPOP", f"{popo.method} POPO is not supported; sign the request with the new key")
    algorithm = popo.algorithm
    if not isinstance(algorithm, codec.SignatureAlgorithm):
        oid = getattr(algorithm, "oid", "?")
        raise CmpFailure("badAlg", f"POPO signature algorithm {oid} is not supported")
    assert request.template.public_key is not None
    if popo.signed != request.der:
        # POPOSigningKeyInput: its key must be the template's and its authInfo the sender.
        if popo.input_public_key is not None and popo.input_public_key != request.template.public_key:
            raise CmpFailure("badPOP", "POPOSigningKeyInput names another public key")
        if popo.input_sender is not None and not codec.same_name(
            codec.directory_name_of(popo.input_sender) or b"", codec.directory_name_of(header.sender) or b""
        ):
            raise CmpFailure("badPOP", "POPOSigningKeyInput names another sender")
        if popo.input_mac is not None:
            _check_public_key_mac(popo.input_mac, request.template.public_key, sender)
    try:
        key = protection.load_public_key(request.template.public_key)
    except protection.ParameterError as exc:
        raise CmpFailure("badCertTemplate", str(exc)) from None
    if not protection.verify_signature(key, algorithm, popo.signed, popo.signature):
        raise CmpFailure("badPOP", "the POPO signature does not verify with the requested key")


def _check_public_key_mac(mac: codec.PkMac, spki: bytes, sender: Sender) -> None:
    if sender.secret is None or not isinstance(mac.algorithm, Pbm | Pbmac1):
        raise CmpFailure("badPOP", "publicKeyMAC needs a MAC-protected request")
    try:
        ok = protection.verify_mac(sender.secret, mac.algorithm, spki, mac.value)
    except protection.ParameterError as exc:
        raise CmpFailure("badAlg", str(exc)) from None
    if not ok:
        raise CmpFailure("badPOP", "publicKeyMAC does not verify")


def check_p10cr(csr_der: bytes) -> None:
    """The CSR's own signature is the proof of possession (RFC 9483 4.1.4)."""
    try:
        csr = x509.load_der_x509_csr(csr_der)
    except ValueError as exc:
        raise CmpFailure("badDataFormat", f"the PKCS#10 request does not parse: {exc}") from None
    try:
        valid = csr.is_signature_valid
    except Exception:  # cryptography raises several types for algorithms it cannot check
        raise CmpFailure("badAlg", "the PKCS#10 signature algorithm is not supported") from None
    if not valid:
        raise CmpFailure("badPOP", "the PKCS#10 signature does not verify")


# --- transactions -------------------------------------------------------------------------------


class TxState(StrEnum):
    # Claimed by a worker that is issuing: left so only if that worker stopped; the grace
    # job then revokes whatever it stored (found by `issuance_key`) and ends it.
    ISSUING = "issuing"
    WAITING = "waiting"
    UNCONFIRMED = "unconfirmed"
    CONFIRMED = "confirmed"
    REVOKED = "revoked"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Transaction:
    """One CMP transaction's state document (namespace `cmp-tx`, key `<ca>/<tid hex>`)."""

    ca: str
    kind: str  # the first message: ir, cr, kur, p10cr, rr, genm
    state: TxState
    owner: str
    nonce: bytes  # senderNonce of ceg's last answer: the next recipNonce
    pvno: int
    cert_req_id: int = 0
    serial: str | None = None
    cert_hash: bytes | None = None  # under the certificate's own signature hash
    implicit: bool = False  # implicit confirmation asked for and allowed
    approval_id: str | None = None
    confirm_by: dt.datetime | None = None
    profile: str | None = None
    version: int = 0

    @staticmethod
    def key(ca: str, transaction_id: bytes) -> str:
        return f"{ca}/{transaction_id.hex()}"

    def document(self) -> dict[str, Any]:
        return {
            "ca": self.ca,
            "kind": self.kind,
            "state": self.state.value,
            "owner": self.owner,
            "nonce": self.nonce.hex(),
            "pvno": self.pvno,
            "cert_req_id": self.cert_req_id,
            "serial": self.serial,
            "cert_hash": self.cert_hash.hex() if self.cert_hash else None,
            "implicit": self.implicit,
            "approval_id": self.approval_id,
            "confirm_by": self.confirm_by.isoformat() if self.confirm_by else None,
            "profile": self.profile,
        }

    @classmethod
    def from_document(cls, doc: Mapping[str, Any], version: int) -> Transaction:
        return cls(
            ca=doc["ca"],
            kind=doc["kind"],
            state=TxState(doc["state"]),
            owner=doc["owner"],
            nonce=bytes.fromhex(doc["nonce"]),
            pvno=int(doc["pvno"]),
            cert_req_id=int(doc.get("cert_req_id", 0)),
            serial=doc.get("serial"),
            cert_hash=bytes.fromhex(doc["cert_hash"]) if doc.get("cert_hash") else None,
            implicit=bool(doc.get("implicit")),
            approval_id=doc.get("approval_id"),
            confirm_by=dt.datetime.fromisoformat(doc["confirm_by"]) if doc.get("confirm_by") else None,
            profile=doc.get("profile"),
            version=version,
        )

    @property
    def response_kind(self) -> str:
        return RESPONSE_KIND.get(self.kind, "ip")

    def lookup(self) -> str | None:
        return UNCONFIRMED if self.state in (TxState.UNCONFIRMED, TxState.ISSUING) else None

    def expires_at(self, now: dt.datetime) -> dt.datetime | None:
        if self.state in (TxState.UNCONFIRMED, TxState.ISSUING):
            return None  # the grace job must see it; it ends the transaction itself
        if self.state is TxState.WAITING:
            return now + WAITING_RETENTION
        return now + TX_RETENTION


def issuance_key(tx_key: str, tx: Transaction) -> str:
    """The CA core's idempotency key of the certificate a claimed transaction issues: the
    grace job finds it with this if the worker stopped before recording it. The claim's
    nonce makes it one transaction's, even when an expired transactionID is used again."""
    return hashlib.sha256(f"cmp\0{tx_key}\0{tx.nonce.hex()}".encode()).hexdigest()


def claim(tx: Transaction, now: dt.datetime, confirm_wait: dt.timedelta) -> Transaction:
    """The document a certificate request starts with: issuing, watched by the grace job
    from `confirm_wait` on (a worker issues in milliseconds; one still issuing then stopped)."""
    return replace(tx, state=TxState.ISSUING, confirm_by=now + confirm_wait)


def closed(tx: Transaction) -> Transaction:
    return replace(tx, state=TxState.CLOSED, confirm_by=None)


def open_transaction(ca: str, kind: str, sender: Sender, header: Header, nonce: bytes) -> Transaction:
    """The document written (create-if-absent) before a first message is acted on."""
    return Transaction(ca, kind, TxState.CLOSED, sender.owner, nonce, header.pvno)


def issued(
    tx: Transaction,
    serial: str,
    certificate: x509.Certificate,
    implicit: bool,
    now: dt.datetime,
    confirm_wait: dt.timedelta,
    nonce: bytes,
) -> Transaction:
    """After issuance: confirmed at once (implicit confirmation) or awaiting certConf."""
    return replace(
        tx,
        state=TxState.CONFIRMED if implicit else TxState.UNCONFIRMED,
        serial=serial,
        cert_hash=protection.certificate_hash(certificate, None),
        implicit=implicit,
        confirm_by=None if implicit else now + confirm_wait,
        nonce=nonce,
        approval_id=None,
    )


def waiting(tx: Transaction, approval_id: str, implicit: bool, nonce: bytes, profile: str) -> Transaction:
    return replace(
        tx,
        state=TxState.WAITING,
        approval_id=approval_id,
        implicit=implicit,
        nonce=nonce,
        profile=profile,
        confirm_by=None,
    )


def check_follow_up(tx: Transaction | None, kind: str, sender: Sender, header: Header) -> Transaction:
    """A certConf/pollReq/error must continue a live transaction of the same sender."""
    if tx is None:
        raise CmpFailure("badRequest", f"{kind} for an unknown transactionID")
    if tx.owner != sender.owner:
        raise CmpFailure("notAuthorized", "the transaction was started by another sender")
    if header.recip_nonce != tx.nonce:
        raise CmpFailure("badRecipientNonce", "recipNonce is not the senderNonce of ceg's last message")
    if kind == "certConf" and tx.state is TxState.CONFIRMED and not tx.implicit:
        raise CmpFailure("certConfirmed", "the certificate is already confirmed")
    if kind == "certConf" and tx.state is not TxState.UNCONFIRMED:
        raise CmpFailure("badRequest", f"nothing to confirm: the transaction is {tx.state.value}")
    if kind == "pollReq" and tx.state is not TxState.WAITING:
        raise CmpFailure("badRequest", f"nothing to poll for: the transaction is {tx.state.value}")
    return tx


class Confirmation(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"


def check_confirmation(
    tx: Transaction, body: CertConfBody, now: dt.datetime, certificate: x509.Certificate | None = None
) -> Confirmation:
    """certConf (RFC 4210 5.3.18, RFC 9483 4.1.1): one CertStatus for the issued certificate.
    `certificate` is needed only when the client hashed with another algorithm (hashAlg)."""
    if tx.confirm_by is not None and now > tx.confirm_by:
        raise CmpFailure("badTime", "certConf came after confirmWaitTime; the certificate is revoked")
    if len(body.confirmations) != 1:
        raise CmpFailure("badRequest", "certConf must carry exactly one CertStatus")
    status = body.confirmations[0]
    if status.cert_req_id != tx.cert_req_id:
        raise CmpFailure("badCertId", f"certReqId {status.cert_req_id} is not {tx.cert_req_id}")
    if status.hash_alg is not None and tx.pvno < codec.PVNO_CMP2021:
        raise CmpFailure("badRequest", "hashAlg in CertStatus needs pvno cmp2021")
    if status.hash_alg is None and tx.cert_hash is not None:
        expected = tx.cert_hash
    else:
        if certificate is None:
            raise ValueError("the certificate is needed to check this certConf")
        try:
            expected = protection.certificate_hash(certificate, status.hash_alg)
        except protection.ParameterError as exc:
            raise CmpFailure("badAlg", str(exc)) from None
    if status.cert_hash != expected:
        raise CmpFailure("badCertId", "certHash does not match the issued certificate")
    return Confirmation.ACCEPTED if status.accepted else Confirmation.REJECTED


def needs_certificate(tx: Transaction, body: CertConfBody) -> bool:
    return tx.cert_hash is None or any(c.hash_alg is not None for c in body.confirmations)


def poll_ids_match(tx: Transaction, cert_req_ids: Sequence[int]) -> None:
    if list(cert_req_ids) != [tx.cert_req_id]:
        raise CmpFailure("badCertId", f"pollReq must name certReqId {tx.cert_req_id}")


# --- revocation -----------------------------------------------------------------------------------


def revocation_reason(code: int | None) -> RevocationReason:
    if code is None:
        return RevocationReason.UNSPECIFIED
    reason = REASONS_BY_CODE.get(code)
    if reason is None:
        raise CmpFailure("badRequest", f"revocation reason {code} is not supported")
    return reason


# --- replies ----------------------------------------------------------------------------------


def reply_header(
    request: Header | None,
    sender_name: bytes,
    now: dt.datetime | None,
    nonce: bytes,
    protection_alg: ProtectionAlgorithm | None = None,
    sender_kid: bytes | None = None,
    general_info: Sequence[InfoItem] = (),
) -> Header:
    """The header of ceg's answer to `request` (RFC 4210 5.1.1): the transactionID echoed,
    recipNonce = the request's senderNonce, a fresh senderNonce, the pvno the client used."""
    pvno = codec.PVNO_CMP2000
    recipient = codec.directory_name(codec.NULL_DN_NAME)
    if request is not None:
        pvno = request.pvno if request.pvno in (codec.PVNO_CMP2000, codec.PVNO_CMP2021) else pvno
        recipient = request.sender
    return Header(
        pvno=pvno,
        sender=codec.directory_name(sender_name),
        recipient=recipient,
        message_time=now,
        protection_alg=protection_alg,
        sender_kid=sender_kid,
        recip_kid=request.sender_kid if request is not None else None,
        transaction_id=request.transaction_id if request is not None else None,
        sender_nonce=nonce,
        recip_nonce=request.sender_nonce if request is not None else None,
        general_info=tuple(general_info),
    )


def implicit_confirm_item() -> InfoItem:
    return InfoItem(oids.OID_IT_IMPLICIT_CONFIRM, codec.NULL_DER)


def confirm_wait_item(deadline: dt.datetime) -> InfoItem:
    return InfoItem(oids.OID_IT_CONFIRM_WAIT_TIME, codec.encode_generalized_time(deadline))


def rejection(failure: CmpFailure) -> StatusInfo:
    return StatusInfo("rejection", failure.fail_info, (failure.text,))


def error_body(failure: CmpFailure) -> codec.ErrorBody:
    return codec.ErrorBody(rejection(failure), details=(failure.text,))


ACCEPTED = StatusInfo("accepted")
