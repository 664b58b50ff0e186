"""SCEP wire format (RFC 8894): pkiMessage in and out, CertRep, GetCACaps and the
base64 `message=` of a GET PKIOperation.

- 3.2.1: a pkiMessage is a CMS SignedData whose signed attributes carry transactionID,
  messageType, senderNonce (requests) or pkiStatus, failInfo, recipientNonce (CertRep),
  and whose content is the DER of an EnvelopedData (the messageData, 3.2.2).
- 3.3: messageData per type: PKCSReq/RenewalReq a PKCS#10, CertPoll an IssuerAndSubject,
  GetCert and GetCRL an IssuerAndSerialNumber; a SUCCESS CertRep a certs-only SignedData.
- 3.5.2: GetCACaps is a list of keywords, one per line.
- 4.3: a PKIOperation by GET carries the pkiMessage base64-encoded in `message`.

Both directions are here (parsing requests and building them, building CertReps and
parsing them), so tests, the benchmark and the Intune front-end speak SCEP with the same
code. This module and protocols/_shared/cms.py are the only users of asn1crypto for SCEP.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from asn1crypto import core
from asn1crypto import x509 as asn1_x509
from cryptography import x509

from protocols._shared import cms
from protocols.scep.errors import FailInfo, MalformedMessage, ScepFailure

OID_MESSAGE_TYPE = "2.16.840.1.113733.1.9.2"
OID_PKI_STATUS = "2.16.840.1.113733.1.9.3"
OID_FAIL_INFO = "2.16.840.1.113733.1.9.4"
OID_SENDER_NONCE = "2.16.840.1.113733.1.9.5"
OID_RECIPIENT_NONCE = "2.16.840.1.113733.1.9.6"
OID_TRANSACTION_ID = "2.16.840.1.113733.1.9.7"
OID_FAIL_INFO_TEXT = "1.3.6.1.5.5.7.24.1"  # id-scep-failInfoText (RFC 8894 3.2.1.4.5)

MAX_TRANSACTION_ID = 128
MAX_GET_MESSAGE_CHARS = 700_000  # base64 of cms.MAX_MESSAGE_BYTES, plus slack for %-escapes
NONCE_BYTES = 16

CONTENT_TYPE_PKI_MESSAGE = "application/x-pki-message"
CONTENT_TYPE_CA_CERT = "application/x-x509-ca-cert"
CONTENT_TYPE_CA_RA_CERT = "application/x-x509-ca-ra-cert"
CONTENT_TYPE_NEXT_CA_CERT = "application/x-x509-next-ca-cert"


class MessageType(StrEnum):
    CERT_REP = "3"
    RENEWAL_REQ = "17"
    UPDATE_REQ = "18"  # dropped by RFC 8894; refused with badRequest
    PKCS_REQ = "19"
    CERT_POLL = "20"  # GetCertInitial in older drafts
    GET_CERT = "21"
    GET_CRL = "22"


class PkiStatus(StrEnum):
    SUCCESS = "0"
    FAILURE = "2"
    PENDING = "3"


# --- attribute values --------------------------------------------------------------------


def _text(der: bytes | None, what: str) -> str | None:
    if der is None:
        return None
    try:
        value = core.Asn1Value.load(der).native
    except (ValueError, TypeError) as exc:
        raise MalformedMessage(f"{what} does not parse: {exc}") from None
    if not isinstance(value, str):
        raise MalformedMessage(f"{what} is not a string")
    return value


def _octets(der: bytes | None, what: str) -> bytes | None:
    if der is None:
        return None
    try:
        value = core.OctetString.load(der).native
    except (ValueError, TypeError) as exc:
        raise MalformedMessage(f"{what} does not parse: {exc}") from None
    return bytes(value)


# --- requests in ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PkiMessage:
    """A pkiMessage as read from the wire, signature not yet checked."""

    message_type: str  # a MessageType value, or whatever unknown value the client sent
    transaction_id: str
    sender_nonce: bytes | None
    signed: cms.SignedMessage

    @property
    def digest_algorithm(self) -> str:
        return self.signed.digest_algorithm

    @property
    def signing_time(self) -> dt.datetime | None:
        try:
            return self.signed.signing_time
        except cms.CmsError:
            return None


def decode_pki_message(der: bytes) -> PkiMessage:
    """Read a pkiMessage's envelope and SCEP attributes. MalformedMessage when it is not
    one (the caller answers HTTP 400: there is nothing to address a CertRep to)."""
    try:
        signed = cms.parse_signed(der)
    except cms.CmsError as exc:
        raise MalformedMessage(exc.message) from None
    transaction_id = _text(signed.attribute(OID_TRANSACTION_ID), "transactionID")
    message_type = _text(signed.attribute(OID_MESSAGE_TYPE), "messageType")
    if not transaction_id or not message_type:
        raise MalformedMessage("pkiMessage without transactionID or messageType")
    if len(transaction_id) > MAX_TRANSACTION_ID or not transaction_id.isprintable():
        raise MalformedMessage(f"transactionID is not printable or longer than {MAX_TRANSACTION_ID}")
    nonce = _octets(signed.attribute(OID_SENDER_NONCE), "senderNonce")
    return PkiMessage(message_type.strip(), transaction_id, nonce or None, signed)


def verify_pki_message(message: PkiMessage) -> x509.Certificate:
    """Check the requester's signature (RFC 8894 3.2.1); returns its certificate."""
    try:
        return cms.verify_signed(message.signed)
    except cms.CmsError as exc:
        if exc.problem is cms.CmsProblem.UNSUPPORTED_ALGORITHM:
            raise ScepFailure(FailInfo.BAD_ALG, exc.message) from None
        raise ScepFailure(FailInfo.BAD_MESSAGE_CHECK, exc.message) from None


def open_message_data(
    message: PkiMessage,
    recipients: Sequence[cms.KeyTransportRecipient],
    accepted_ciphers: frozenset[str],
    random_bytes: cms.RandomBytes,
) -> cms.Opened:
    """Decrypt the messageData (RFC 8894 3.2.2). Blocking: RSA key transport."""
    if message.signed.content is None:
        raise ScepFailure(FailInfo.BAD_REQUEST, "pkiMessage has no messageData")
    try:
        return cms.open_enveloped(message.signed.content, recipients, accepted_ciphers, random_bytes)
    except cms.CmsError as exc:
        if exc.problem is cms.CmsProblem.UNSUPPORTED_ALGORITHM:
            raise ScepFailure(FailInfo.BAD_ALG, exc.message) from None
        raise ScepFailure(FailInfo.BAD_MESSAGE_CHECK, exc.message) from None


class _IssuerAndSubject(core.Sequence):
    _fields = [("issuer", asn1_x509.Name), ("subject", asn1_x509.Name)]


def decode_issuer_and_subject(der: bytes) -> tuple[bytes, bytes]:
    """CertPoll messageData (RFC 8894 3.3.3): (issuer Name DER, subject Name DER)."""
    try:
        value = _IssuerAndSubject.load(der, strict=True)
        return bytes(value["issuer"].dump()), bytes(value["subject"].dump())
    except (ValueError, TypeError, KeyError) as exc:
        raise ScepFailure(FailInfo.BAD_REQUEST, f"IssuerAndSubject does not parse: {exc}") from None


def decode_issuer_and_serial(der: bytes) -> tuple[bytes, int]:
    """GetCert and GetCRL messageData (RFC 8894 3.3.4, 3.3.5)."""
    try:
        return cms.issuer_and_serial(der)
    except cms.CmsError as exc:
        raise ScepFailure(FailInfo.BAD_REQUEST, exc.message) from None


# --- CertRep out ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CertRep:
    """A CertRep before signing (RFC 8894 3.3.2). `message_data` is the DER of the
    EnvelopedData of a SUCCESS reply, None for FAILURE and PENDING."""

    transaction_id: str
    sender_nonce: bytes
    recipient_nonce: bytes | None
    status: PkiStatus
    fail_info: FailInfo | None = None
    fail_text: str | None = None
    message_data: bytes | None = None


def encode_cert_rep(reply: CertRep, signer: cms.ContentSigner, now: dt.datetime) -> bytes:
    """Sign a CertRep with the RA's key. Blocking when the key is (RSA, HSM)."""
    attributes = [
        cms.signed_attribute(OID_TRANSACTION_ID, core.PrintableString(reply.transaction_id)),
        cms.signed_attribute(OID_MESSAGE_TYPE, core.PrintableString(MessageType.CERT_REP.value)),
        cms.signed_attribute(OID_PKI_STATUS, core.PrintableString(reply.status.value)),
        cms.signed_attribute(OID_SENDER_NONCE, core.OctetString(reply.sender_nonce)),
    ]
    if reply.recipient_nonce is not None:
        attributes.append(cms.signed_attribute(OID_RECIPIENT_NONCE, core.OctetString(reply.recipient_nonce)))
    if reply.status is PkiStatus.FAILURE:
        assert reply.fail_info is not None
        attributes.append(cms.signed_attribute(OID_FAIL_INFO, core.PrintableString(reply.fail_info.value)))
        if reply.fail_text:
            attributes.append(
                cms.signed_attribute(OID_FAIL_INFO_TEXT, core.UTF8String(reply.fail_text[:200]))
            )
    return cms.sign_signed(
        signer,
        reply.message_data,
        attributes,
        certificates=[signer.certificate],
        signing_time=now.replace(microsecond=0),
    )


def seal_certificates(
    certificates: Sequence[bytes],
    recipient: bytes,
    cipher: str,
    random_bytes: cms.RandomBytes,
    crls: Sequence[bytes] = (),
    recipient_key: object = None,
) -> bytes:
    """A SUCCESS reply's messageData: a certs-only SignedData (the issued certificate, or
    a CRL for GetCRL) enveloped for the requester's certificate (RFC 8894 3.3.2)."""
    try:
        return cms.seal_enveloped(
            cms.certs_only(certificates, crls), recipient, cipher, random_bytes, recipient_key=recipient_key
        )
    except cms.CmsError as exc:
        raise ScepFailure(FailInfo.BAD_ALG, exc.message) from None


def ca_certificates(certificates: Sequence[bytes]) -> tuple[bytes, str]:
    """GetCACert body and content type (RFC 8894 4.2.1): one DER certificate as
    x-x509-ca-cert, several as a certs-only SignedData (x-x509-ca-ra-cert)."""
    if len(certificates) == 1:
        return certificates[0], CONTENT_TYPE_CA_CERT
    return cms.certs_only(certificates), CONTENT_TYPE_CA_RA_CERT


def capabilities_text(capabilities: Sequence[str]) -> bytes:
    return ("\n".join(capabilities) + "\n").encode()


def decode_get_message(value: str) -> bytes:
    """The pkiMessage of a GET PKIOperation (RFC 8894 4.3). Clients differ: standard or
    URL-safe alphabet, padded or not, '+' left unescaped (which query parsing turns into
    a space), line breaks from base64 encoders that wrap."""
    if len(value) > MAX_GET_MESSAGE_CHARS:
        raise MalformedMessage("message parameter is too long")
    cleaned = "".join(value.replace(" ", "+").split()).replace("-", "+").replace("_", "/")
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedMessage("message parameter is not base64") from None


# --- the client's side (tests, benchmark, and peers built on this package) -------------------


def encode_pki_request(
    message_type: MessageType,
    transaction_id: str,
    sender_nonce: bytes,
    message_data: bytes,
    recipient: bytes,
    signer: cms.ContentSigner,
    cipher: str,
    random_bytes: cms.RandomBytes,
    signing_time: dt.datetime | None = None,
    certificates: Sequence[bytes] = (),
) -> bytes:
    """A pkiMessage as a client builds it: `message_data` enveloped for `recipient` (the
    RA certificate) and signed by the requester's (self-signed or existing) certificate."""
    # A client may still choose single DES (old devices do); servers never answer with it.
    enveloped = cms.seal_enveloped(message_data, recipient, cipher, random_bytes, imitate_des=True)
    attributes = [
        cms.signed_attribute(OID_TRANSACTION_ID, core.PrintableString(transaction_id)),
        cms.signed_attribute(OID_MESSAGE_TYPE, core.PrintableString(message_type.value)),
        cms.signed_attribute(OID_SENDER_NONCE, core.OctetString(sender_nonce)),
    ]
    return cms.sign_signed(signer, enveloped, attributes, certificates, signing_time)


def encode_issuer_and_subject(issuer: x509.Name, subject: x509.Name) -> bytes:
    return bytes(
        _IssuerAndSubject(
            {
                "issuer": asn1_x509.Name.load(issuer.public_bytes()),
                "subject": asn1_x509.Name.load(subject.public_bytes()),
            }
        ).dump()
    )


def encode_issuer_and_serial(issuer: x509.Name, serial: int) -> bytes:
    from asn1crypto import cms as asn1_cms

    return bytes(
        asn1_cms.IssuerAndSerialNumber(
            {"issuer": asn1_x509.Name.load(issuer.public_bytes()), "serial_number": serial}
        ).dump()
    )


@dataclass(frozen=True, slots=True)
class CertRepView:
    """A CertRep as a client reads it."""

    transaction_id: str
    status: PkiStatus
    fail_info: FailInfo | None
    fail_text: str | None
    sender_nonce: bytes | None
    recipient_nonce: bytes | None
    message_data: bytes | None
    signer_certificate: bytes | None
    digest_algorithm: str


def decode_cert_rep(der: bytes, verify: bool = True) -> CertRepView:
    """Parse (and by default verify the signature of) a CertRep."""
    message = decode_pki_message(der)
    if message.message_type != MessageType.CERT_REP.value:
        raise MalformedMessage(f"messageType {message.message_type} is not CertRep")
    if verify:
        cms.verify_signed(message.signed)
    signed = message.signed
    status_text = _text(signed.attribute(OID_PKI_STATUS), "pkiStatus")
    if status_text not in {s.value for s in PkiStatus}:
        raise MalformedMessage(f"pkiStatus {status_text!r} is not one of RFC 8894's")
    status = PkiStatus(status_text)
    fail = _text(signed.attribute(OID_FAIL_INFO), "failInfo")
    return CertRepView(
        transaction_id=message.transaction_id,
        status=status,
        fail_info=FailInfo(fail) if fail is not None else None,
        fail_text=_text(signed.attribute(OID_FAIL_INFO_TEXT), "failInfoText"),
        sender_nonce=message.sender_nonce,
        recipient_nonce=_octets(signed.attribute(OID_RECIPIENT_NONCE), "recipientNonce"),
        message_data=signed.content,
        signer_certificate=signed.signer_certificate,
        digest_algorithm=signed.digest_algorithm,
    )
