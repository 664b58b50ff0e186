"""EST wire format: content types, base64 bodies, PKCS#10 in, certs-only, CSR attributes
and the server-keygen multipart out.

- RFC 7030 3.2.4 / 4.x and RFC 8951 section 3: every payload is the base64 (RFC 4648
  section 4) of DER, whatever a Content-Transfer-Encoding header says (any such header
  is ignored on requests). Bodies are accepted with or without line breaks; answers are
  sent in 64-column CRLF lines so `openssl base64 -d` (the RFC's own examples) reads them.
- RFC 7030 4.5.2 with the RFC 8951 section 4 clarification: CsrAttrs is a SEQUENCE OF
  AttrOrOID; an Attribute's values are of the type its OID defines.
- RFC 7030 4.4.2: the server-keygen answer is multipart/mixed, the PKCS#8 key first,
  then the certs-only certificate.

Hostile-input limits: the body is capped before decoding (MAX_BODY), the CSR by
`ca_core.x509.csr.MAX_CSR_BYTES`, and the Authorization header by length.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass

from asn1crypto import core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import ExtensionOID

from ca_core.model import RequestedExtension
from ca_core.x509.csr import MAX_CSR_BYTES
from protocols._shared.cms import certs_only
from protocols.est.errors import EstError

PKCS10 = "application/pkcs10"
PKCS7_MIME = "application/pkcs7-mime"
CERTS_ONLY = "application/pkcs7-mime; smime-type=certs-only"
CSRATTRS = "application/csrattrs"
PKCS8 = "application/pkcs8"
TEXT = "text/plain; charset=utf-8"

MAX_BODY = 128 * 1024  # a 64 KiB CSR in base64 with line breaks fits
_MAX_AUTHORIZATION = 4096
_LINE = 64

# RFC 7030 4.4.1.1 / 4.4.1.2: the client asks for its server-generated key to come back
# encrypted (symmetric or asymmetric key identifier attributes in the CSR).
DECRYPT_KEY_IDENTIFIER = "1.2.840.113549.1.9.16.2.37"
ASYMMETRIC_DECRYPT_KEY_IDENTIFIER = "1.2.840.113549.1.9.16.2.54"
CHALLENGE_PASSWORD = "1.2.840.113549.1.9.7"
CHANGE_SUBJECT_NAME = "1.3.6.1.5.5.7.7.36"  # id-cmc-changeSubjectName (RFC 6402 2.6)
EXTENSION_REQUEST = "1.2.840.113549.1.9.14"

_KEY_USAGE_FIELDS = (
    ("digital_signature", "digitalSignature"),
    ("content_commitment", "nonRepudiation"),
    ("key_encipherment", "keyEncipherment"),
    ("data_encipherment", "dataEncipherment"),
    ("key_agreement", "keyAgreement"),
    ("key_cert_sign", "keyCertSign"),
    ("crl_sign", "cRLSign"),
)
# Extensions the profile decides alone; anything else a CSR asks for is passed on as a
# requested extension (the profile keeps the ones it accepts).
_PROFILE_OWNED = {
    ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
    ExtensionOID.KEY_USAGE,
    ExtensionOID.EXTENDED_KEY_USAGE,
    ExtensionOID.BASIC_CONSTRAINTS,
    ExtensionOID.SUBJECT_KEY_IDENTIFIER,
    ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
}
_BASE64_WHITESPACE = re.compile(rb"[ \t\r\n]+")


# --- content types ---------------------------------------------------------------------------


def media_type(header: str | None) -> str:
    """`type/subtype` of a Content-Type header, lower-cased, without parameters."""
    return (header or "").split(";", 1)[0].strip().lower()


def require_media_type(header: str | None, expected: str) -> None:
    """415 unless the request's Content-Type is `expected` (parameters are allowed)."""
    found = media_type(header)
    if found != expected:
        shown = found or "none"
        raise EstError(415, f"Content-Type must be {expected} (got {shown})")


# --- base64 (RFC 8951 section 3) -------------------------------------------------------------


def decode_base64(body: bytes) -> bytes:
    """The DER inside a base64 body, with or without line breaks (RFC 8951 section 3).

    PEM armour around it ("-----BEGIN ...-----") is tolerated, since `openssl req`
    writes that by default; anything else outside the base64 alphabet is refused.
    """
    text = body.strip()
    if text.startswith(b"-----BEGIN"):
        lines = [line for line in text.splitlines() if not line.startswith(b"-----")]
        text = b"".join(lines)
    compact = _BASE64_WHITESPACE.sub(b"", text)
    if not compact:
        raise EstError(400, "empty body: expected base64-encoded DER")
    if len(compact) % 4:
        compact += b"=" * (-len(compact) % 4)  # tolerate a client that drops the padding
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise EstError(400, "body is not valid base64 (RFC 7030 / RFC 8951 section 3)") from None


def encode_base64(der: bytes) -> bytes:
    """Base64 in 64-column CRLF-terminated lines."""
    text = base64.b64encode(der)
    return b"".join(text[i : i + _LINE] + b"\r\n" for i in range(0, len(text), _LINE))


# --- HTTP Basic (RFC 7617) --------------------------------------------------------------------


def parse_basic_authorization(header: str | None) -> tuple[str, str] | None:
    """(username, password) from an `Authorization: Basic` header; None when there is none
    (or another scheme). A malformed Basic header is a 401, not an anonymous request."""
    if not header:
        return None
    if len(header) > _MAX_AUTHORIZATION:
        raise EstError(401, "Authorization header too long")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise EstError(401, "malformed HTTP Basic credentials") from None
    username, sep, password = decoded.partition(":")
    if not sep or not username:
        raise EstError(401, "malformed HTTP Basic credentials: expected username:password")
    return username, password


# --- PKCS#10 in -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CsrView:
    """What EST needs to know about a PKCS#10 before issuance verifies it.

    Its signature is not checked here: simpleenroll leaves that to the IssuanceService
    (which always verifies), and serverkeygen must ignore it (RFC 7030 4.4.1). What only
    some requests need (attributes, the encoded key) is read on demand.
    """

    der: bytes
    csr: x509.CertificateSigningRequest
    subject: x509.Name
    subject_alt_names: tuple[x509.GeneralName, ...]
    public_key: PublicKeyTypes
    key_usage: frozenset[str] | None  # requested KeyUsage bits (catalogue names), if any
    extensions: tuple[RequestedExtension, ...]

    def public_key_der(self) -> bytes:
        """The SubjectPublicKeyInfo DER."""
        return self.public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def challenge_password(self) -> str | None:
        for attribute in self._attributes():
            if attribute.oid.dotted_string == CHALLENGE_PASSWORD:
                value = attribute.value
                return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        return None

    def asks_encrypted_key(self) -> bool:
        """RFC 7030 4.4.1.1/4.4.1.2: the client wants its generated key encrypted."""
        wanted = {DECRYPT_KEY_IDENTIFIER, ASYMMETRIC_DECRYPT_KEY_IDENTIFIER}
        return any(a.oid.dotted_string in wanted for a in self._attributes())

    def asks_name_change(self) -> bool:
        """RFC 7030 4.2.2: a ChangeSubjectName attribute asks simplereenroll for new names."""
        return any(a.oid.dotted_string == CHANGE_SUBJECT_NAME for a in self._attributes())

    def _attributes(self) -> list[x509.Attribute]:
        try:
            return list(self.csr.attributes)
        except ValueError as exc:
            raise EstError(400, f"CSR attributes do not parse: {exc}") from None


def read_csr(body: bytes) -> CsrView:
    """Decode an EST PKCS#10 body (base64 of DER) into a CsrView; 400 if it is not one."""
    der = decode_base64(body)
    if len(der) > MAX_CSR_BYTES:
        raise EstError(400, f"CSR larger than {MAX_CSR_BYTES} bytes")
    try:
        csr = x509.load_der_x509_csr(der)
        public_key = csr.public_key()
        extensions = csr.extensions
    except (ValueError, TypeError) as exc:
        raise EstError(400, f"body is not a DER PKCS#10 certification request: {exc}") from None
    sans: tuple[x509.GeneralName, ...] = ()
    key_usage: frozenset[str] | None = None
    requested: list[RequestedExtension] = []
    for ext in extensions:
        if isinstance(ext.value, x509.SubjectAlternativeName):
            sans = tuple(ext.value)
        elif isinstance(ext.value, x509.KeyUsage):
            key_usage = _key_usage_bits(ext.value)
        elif ext.oid not in _PROFILE_OWNED:
            requested.append(
                RequestedExtension(ext.oid.dotted_string, ext.value.public_bytes(), ext.critical)
            )
    return CsrView(der, csr, csr.subject, sans, public_key, key_usage, tuple(requested))


def _key_usage_bits(value: x509.KeyUsage) -> frozenset[str]:
    return frozenset(name for field, name in _KEY_USAGE_FIELDS if getattr(value, field))


# --- certs-only and multipart out -------------------------------------------------------------


def certs_only_body(certificates: Sequence[bytes]) -> bytes:
    """A base64 certs-only CMS SignedData (RFC 7030 4.1.3, 4.2.3)."""
    return encode_base64(certs_only(certificates))


def serverkeygen_body(private_key_pkcs8: bytes, certificate: bytes, boundary: str) -> tuple[bytes, str]:
    """The multipart/mixed answer of RFC 7030 4.4.2: (body, Content-Type header value)."""
    if not re.fullmatch(r"[0-9A-Za-z'()+_,./:=?-]{1,70}", boundary):
        raise ValueError("invalid MIME boundary")
    parts = ((PKCS8, private_key_pkcs8), (CERTS_ONLY, certs_only([certificate])))
    chunks: list[bytes] = []
    for content_type, der in parts:
        chunks.append(
            f"--{boundary}\r\nContent-Type: {content_type}\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n".encode()
        )
        chunks.append(encode_base64(der))
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/mixed; boundary={boundary}"


# --- CSR attributes (RFC 7030 4.5.2, RFC 8951 section 4) --------------------------------------


@dataclass(frozen=True, slots=True)
class OidValue:
    oid: str


@dataclass(frozen=True, slots=True)
class IntegerValue:
    value: int


@dataclass(frozen=True, slots=True)
class KeyUsageRequest:
    """An extensionRequest value: Extensions holding a KeyUsage with these bits."""

    bits: frozenset[str]


AttributeValue = OidValue | IntegerValue | KeyUsageRequest


@dataclass(frozen=True, slots=True)
class WantedAttribute:
    """One AttrOrOID: a bare OID (`values` empty) or an Attribute with its values."""

    oid: str
    values: tuple[AttributeValue, ...] = ()


class _AttributeValues(core.SetOf):
    _child_spec = core.Any


class _Attribute(core.Sequence):
    _fields = [("type", core.ObjectIdentifier), ("values", _AttributeValues)]


class _AttrOrOid(core.Choice):
    _alternatives = [("oid", core.ObjectIdentifier), ("attribute", _Attribute)]


class _CsrAttrs(core.SequenceOf):
    _child_spec = _AttrOrOid


_ASN1_KEY_USAGE = {
    "digitalSignature": "digital_signature",
    "nonRepudiation": "non_repudiation",
    "keyEncipherment": "key_encipherment",
    "dataEncipherment": "data_encipherment",
    "keyAgreement": "key_agreement",
    "keyCertSign": "key_cert_sign",
    "cRLSign": "crl_sign",
}


def _value_der(value: AttributeValue) -> bytes:
    if isinstance(value, OidValue):
        der: bytes = core.ObjectIdentifier(value.oid).dump()
        return der
    if isinstance(value, IntegerValue):
        der = core.Integer(value.value).dump()
        return der
    extensions = asn1_x509.Extensions(
        [
            {
                "extn_id": "key_usage",
                "critical": True,
                "extn_value": {_ASN1_KEY_USAGE[b] for b in value.bits},
            }
        ]
    )
    der = extensions.dump()
    return der


def csrattrs_der(wanted: Sequence[WantedAttribute]) -> bytes:
    """DER of CsrAttrs ::= SEQUENCE SIZE (0..MAX) OF AttrOrOID."""
    items = []
    for item in wanted:
        if not item.values:
            items.append(_AttrOrOid(name="oid", value=core.ObjectIdentifier(item.oid)))
        else:
            values = _AttributeValues([core.Any.load(_value_der(v)) for v in item.values])
            items.append(_AttrOrOid(name="attribute", value=_Attribute({"type": item.oid, "values": values})))
    der: bytes = _CsrAttrs(items).dump()
    return der


def csrattrs_body(wanted: Sequence[WantedAttribute]) -> bytes:
    return encode_base64(csrattrs_der(wanted))


# --- keys and certificates ---------------------------------------------------------------------


def load_certificate(der: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise EstError(400, f"the client certificate does not parse: {exc}") from None


def load_pem_certificates(pems: Sequence[str]) -> list[x509.Certificate]:
    """Trust anchors from binding settings (each entry may hold several PEM blocks)."""
    out: list[x509.Certificate] = []
    for pem in pems:
        out.extend(x509.load_pem_x509_certificates(pem.encode()))
    return out
