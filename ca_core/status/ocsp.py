"""An I/O-free OCSP responder: request bytes in, decisions and response bytes out.

RFC 6960 with the RFC 5019 lightweight profile:
- 4.1 OCSPRequest: several CertIDs per request; CertID hashes SHA-1 (RFC 5019's) and
  SHA-256/384/512. A CertID with another hash cannot name our CA and is answered
  `unknown` (2.2), as is a CertID naming another issuer beside one that names ours. A
  request naming no certificate of this CA gets `unauthorized` (2.3).
- 4.1.2 optionalSignature: verified when present (signer certificate issued by a CA the
  caller trusts, SHA-2 signature); `sigRequired` when the CA requires it and it is absent.
- 4.4.1 nonce, echoed in the response (RFC 8954: 1 to 32 octets, else malformedRequest).
- 4.2.1 BasicOCSPResponse: ResponderID byKey (RFC 5019 2.2.3), producedAt, one
  SingleResponse per CertID echoing the CertID as received, thisUpdate/nextUpdate, and
  the archiveCutoff single extension (4.4.4).
- Unparseable input, a wrong version, no CertIDs, too many CertIDs or an unknown
  critical extension: `malformedRequest` (2.3).

Bytes are parsed with asn1crypto (size-limited first) and encoded by hand (`der`), so a
response costs one hash and one signature.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from asn1crypto import ocsp as asn1_ocsp
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from ca_core.model import KeyAlgorithm, RevocationReason
from ca_core.status import der

MAX_REQUEST_BYTES = 64 * 1024
MAX_CERT_IDS = 64
MAX_NONCE_OCTETS = 32

_OCSP_BASIC = der.oid("1.3.6.1.5.5.7.48.1.1")
_NONCE = der.oid("1.3.6.1.5.5.7.48.1.2")
_ARCHIVE_CUTOFF = der.oid("1.3.6.1.5.5.7.48.1.6")
_NONCE_DOTTED = "1.3.6.1.5.5.7.48.1.2"

# CertID hash algorithms we can compute (OID -> hashlib name).
CERT_ID_HASHES: dict[str, str] = {
    "1.3.14.3.2.26": "sha1",
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
}
_HASH_OIDS = {name: oid for oid, name in CERT_ID_HASHES.items()}

# Signature algorithms accepted on signed requests: OID -> (hash, is RSA PKCS#1 v1.5).
_REQUEST_SIGNATURES: dict[str, tuple[hashes.HashAlgorithm, bool]] = {
    "1.2.840.113549.1.1.11": (hashes.SHA256(), True),
    "1.2.840.113549.1.1.12": (hashes.SHA384(), True),
    "1.2.840.113549.1.1.13": (hashes.SHA512(), True),
    "1.2.840.10045.4.3.2": (hashes.SHA256(), False),
    "1.2.840.10045.4.3.3": (hashes.SHA384(), False),
    "1.2.840.10045.4.3.4": (hashes.SHA512(), False),
}


class ResponseStatus(IntEnum):
    """OCSPResponseStatus (RFC 6960 4.2.1)."""

    SUCCESSFUL = 0
    MALFORMED_REQUEST = 1
    INTERNAL_ERROR = 2
    TRY_LATER = 3
    SIG_REQUIRED = 5
    UNAUTHORIZED = 6


class OcspRefusal(Exception):
    """The request is answered with an unsigned error status, not with certificate statuses."""

    def __init__(self, status: ResponseStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_response(status: ResponseStatus) -> bytes:
    """OCSPResponse with only a responseStatus (no responseBytes), RFC 6960 4.2.1."""
    return der.sequence(der.enumerated(int(status)))


# --- requests -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CertId:
    der: bytes  # as received: echoed in the SingleResponse
    hash_oid: str
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial: int

    @property
    def hash_name(self) -> str | None:
        """hashlib name of the CertID hash, None when unsupported."""
        return CERT_ID_HASHES.get(self.hash_oid)

    @property
    def serial_hex(self) -> str:
        return format(self.serial, "x")


@dataclass(frozen=True, slots=True)
class RequestSignature:
    algorithm_oid: str
    signature: bytes
    certs: tuple[bytes, ...]
    tbs_request: bytes  # the signed bytes, as received


@dataclass(frozen=True, slots=True)
class OcspRequest:
    cert_ids: tuple[CertId, ...]
    nonce: bytes | None  # the nonce extension's extnValue contents, echoed as they came
    signature: RequestSignature | None


def parse_request(data: bytes) -> OcspRequest:
    """Decode an OCSPRequest; every problem is an OcspRefusal(malformedRequest)."""
    if not data:
        raise OcspRefusal(ResponseStatus.MALFORMED_REQUEST, "empty request")
    if len(data) > MAX_REQUEST_BYTES:
        raise OcspRefusal(ResponseStatus.MALFORMED_REQUEST, f"request larger than {MAX_REQUEST_BYTES} bytes")
    try:
        return _parse(data)
    except OcspRefusal:
        raise
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError) as exc:
        raise OcspRefusal(ResponseStatus.MALFORMED_REQUEST, f"not a DER OCSPRequest: {exc}") from None


def _parse(data: bytes) -> OcspRequest:
    request = asn1_ocsp.OCSPRequest.load(data, strict=True)
    tbs = request["tbs_request"]
    if tbs["version"].native != "v1":
        raise OcspRefusal(ResponseStatus.MALFORMED_REQUEST, "unsupported OCSPRequest version")
    items = list(tbs["request_list"])
    if not items:
        raise OcspRefusal(ResponseStatus.MALFORMED_REQUEST, "the request names no certificate")
    if len(items) > MAX_CERT_IDS:
        raise OcspRefusal(ResponseStatus.MALFORMED_REQUEST, f"more than {MAX_CERT_IDS} certificates")
    cert_ids = []
    for item in items:
        _check_extensions(item["single_request_extensions"], set())
        cid = item["req_cert"]
        serial = cid["serial_number"].native
        if serial < 0:
            raise OcspRefusal(ResponseStatus.MALFORMED_REQUEST, "negative serial number")
        cert_ids.append(
            CertId(
                der=cid.dump(),
                hash_oid=cid["hash_algorithm"]["algorithm"].dotted,
                issuer_name_hash=bytes(cid["issuer_name_hash"].native),
                issuer_key_hash=bytes(cid["issuer_key_hash"].native),
                serial=serial,
            )
        )
    nonce = None
    for ext in _check_extensions(tbs["request_extensions"], {_NONCE_DOTTED}):
        if ext["extn_id"].dotted == _NONCE_DOTTED:
            nonce = _nonce_of(ext["extn_value"].contents)
    signature = None
    signed = request["optional_signature"]
    if signed.native is not None:
        certs = tuple(c.dump() for c in signed["certs"]) if signed["certs"].native is not None else ()
        signature = RequestSignature(
            algorithm_oid=signed["signature_algorithm"]["algorithm"].dotted,
            signature=bytes(signed["signature"].native),
            certs=certs,
            tbs_request=tbs.dump(),
        )
    return OcspRequest(tuple(cert_ids), nonce, signature)


def _check_extensions(extensions: Any, understood: set[str]) -> list[Any]:
    """The extensions, refusing any critical one we do not understand (RFC 6960 4.4)."""
    found = list(extensions) if extensions.native is not None else []
    for ext in found:
        ext.native  # noqa: B018 - forces a full parse of lazily decoded content
        if ext["critical"].native and ext["extn_id"].dotted not in understood:
            raise OcspRefusal(
                ResponseStatus.MALFORMED_REQUEST, f"unsupported critical extension {ext['extn_id'].dotted}"
            )
    return found


def _nonce_of(value: bytes) -> bytes:
    # RFC 8954: Nonce ::= OCTET STRING (SIZE(1..32)); extnValue holds its DER.
    # Some clients put the raw octets in extnValue instead of an OCTET STRING.
    wrapped = len(value) >= 2 and value[0] == 0x04 and value[1] == len(value) - 2
    size = len(value) - 2 if wrapped else len(value)
    if not 1 <= size <= MAX_NONCE_OCTETS:
        raise OcspRefusal(
            ResponseStatus.MALFORMED_REQUEST, f"nonce must be 1 to {MAX_NONCE_OCTETS} octets, got {size}"
        )
    return value


# --- who is asked --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IssuerIdentity:
    """The hashes by which a CertID names one CA (RFC 6960 4.1.1)."""

    name_hashes: Mapping[str, bytes]
    key_hashes: Mapping[str, bytes]

    @classmethod
    def of_certificate(cls, certificate: x509.Certificate) -> IssuerIdentity:
        name = certificate.subject.public_bytes()
        key = public_key_bits(certificate.public_key())
        return cls(
            {h: hashlib.new(h, name).digest() for h in CERT_ID_HASHES.values()},
            {h: hashlib.new(h, key).digest() for h in CERT_ID_HASHES.values()},
        )

    def names(self, cert_id: CertId) -> bool:
        algorithm = cert_id.hash_name
        return (
            algorithm is not None
            and cert_id.issuer_name_hash == self.name_hashes[algorithm]
            and cert_id.issuer_key_hash == self.key_hashes[algorithm]
        )

    def cert_id(self, serial: int, hash_name: str = "sha1") -> CertId:
        """The CertID a client builds for `serial` (hash AlgorithmIdentifier with NULL
        parameters, as OpenSSL and RFC 5019 clients send it)."""
        oid = _HASH_OIDS[hash_name]
        encoded = der.sequence(
            der.sequence(der.oid(oid), der.NULL),
            der.octet_string(self.name_hashes[hash_name]),
            der.octet_string(self.key_hashes[hash_name]),
            der.integer(serial),
        )
        return CertId(encoded, oid, self.name_hashes[hash_name], self.key_hashes[hash_name], serial)


def public_key_bits(public_key: object) -> bytes:
    """The subjectPublicKey BIT STRING's bits (what issuerKeyHash and byKey hash)."""
    from asn1crypto import keys as asn1_keys

    spki = public_key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return bytes(asn1_keys.PublicKeyInfo.load(spki)["public_key"].contents[1:])


# --- answers -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Good:
    pass


@dataclass(frozen=True, slots=True)
class Revoked:
    at: dt.datetime
    reason: RevocationReason | None  # None: unspecified, left out (as on the CRL)


@dataclass(frozen=True, slots=True)
class Unknown:
    pass


CertificateStatus = Good | Revoked | Unknown
GOOD, UNKNOWN = Good(), Unknown()


@dataclass(frozen=True, slots=True)
class SingleAnswer:
    cert_id: bytes
    status: CertificateStatus
    this_update: dt.datetime
    next_update: dt.datetime
    archive_cutoff: dt.datetime | None


def issuer_serials(request: OcspRequest, issuer: IssuerIdentity) -> list[int]:
    """Serials of the CertIDs that name this CA (what the caller must look up)."""
    return [c.serial for c in request.cert_ids if issuer.names(c)]


def answer(
    request: OcspRequest,
    issuer: IssuerIdentity,
    statuses: Mapping[int, CertificateStatus],
    this_update: dt.datetime,
    next_update: dt.datetime,
    archive_cutoff: dt.datetime | None,
) -> list[SingleAnswer]:
    """One SingleResponse per CertID; `statuses` holds what the store knows (serial -> status)
    for the CertIDs naming this CA; a serial it lacks was never issued here: unknown."""
    if not any(issuer.names(c) for c in request.cert_ids):
        raise OcspRefusal(ResponseStatus.UNAUTHORIZED, "no requested certificate was issued by this CA")
    answers = []
    for cert_id in request.cert_ids:
        status = statuses.get(cert_id.serial, UNKNOWN) if issuer.names(cert_id) else UNKNOWN
        answers.append(SingleAnswer(cert_id.der, status, this_update, next_update, archive_cutoff))
    return answers


# --- signing -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResponderIdentity:
    """Who signs: the key hash for ResponderID byKey, the certificates to include (the
    delegated responder's, or none when the CA signs), and the key's algorithm."""

    key_hash: bytes
    certs: tuple[bytes, ...]
    algorithm: KeyAlgorithm

    @classmethod
    def of(
        cls, public_key: object, algorithm: KeyAlgorithm, certs: Sequence[bytes] = ()
    ) -> ResponderIdentity:
        return cls(
            hashlib.sha1(public_key_bits(public_key)).digest(), tuple(certs), algorithm
        )  # RFC 6960 KeyHash is SHA-1


def _single(a: SingleAnswer) -> bytes:
    status = a.status
    if isinstance(status, Good):
        encoded = b"\x80\x00"  # good [0] IMPLICIT NULL
    elif isinstance(status, Revoked):
        reason = der.explicit(0, der.enumerated(status.reason.code)) if status.reason else b""
        encoded = der.tlv(0xA1, der.generalized_time(status.at) + reason)  # [1] IMPLICIT RevokedInfo
    else:
        encoded = b"\x82\x00"  # unknown [2] IMPLICIT NULL
    extensions = b""
    if a.archive_cutoff is not None:
        extensions = der.explicit(
            1, der.sequence(der.extension(_ARCHIVE_CUTOFF, der.generalized_time(a.archive_cutoff)))
        )
    return der.sequence(
        a.cert_id,
        encoded,
        der.generalized_time(a.this_update),
        der.explicit(0, der.generalized_time(a.next_update)),
        extensions,
    )


def encode_response_data(
    responder: ResponderIdentity,
    produced_at: dt.datetime,
    answers: Sequence[SingleAnswer],
    nonce: bytes | None,
) -> bytes:
    """ResponseData (RFC 6960 4.2.1), version v1 left out as its DEFAULT."""
    extensions = der.explicit(1, der.sequence(der.extension(_NONCE, nonce))) if nonce is not None else b""
    return der.sequence(
        der.explicit(2, der.octet_string(responder.key_hash)),
        der.generalized_time(produced_at),
        der.sequence(*(_single(a) for a in answers)),
        extensions,
    )


def assemble_response(tbs: bytes, responder: ResponderIdentity, signature: bytes) -> bytes:
    """OCSPResponse(successful) around a BasicOCSPResponse."""
    certs = der.explicit(0, der.sequence(*responder.certs)) if responder.certs else b""
    basic = der.sequence(tbs, der.signature_algorithm(responder.algorithm), der.bit_string(signature), certs)
    return der.sequence(
        der.enumerated(ResponseStatus.SUCCESSFUL),
        der.explicit(0, der.sequence(_OCSP_BASIC, der.octet_string(basic))),
    )


def sign_response(
    responder: ResponderIdentity,
    sign: Callable[[bytes], bytes],
    produced_at: dt.datetime,
    answers: Sequence[SingleAnswer],
    nonce: bytes | None,
) -> bytes:
    tbs = encode_response_data(responder, produced_at, answers, nonce)
    return assemble_response(tbs, responder, sign(tbs))


# --- signed requests ----------------------------------------------------------------------------


def verify_request_signature(
    signature: RequestSignature, issuers: Sequence[x509.Certificate], now: dt.datetime
) -> tuple[x509.Certificate, x509.Certificate]:
    """Check a signed request: its first certificate signed the tbsRequest and was issued
    (directly) by one of `issuers` and is within its validity. Returns (signer, issuer);
    the caller still checks the signer certificate's own status."""
    refuse = ResponseStatus.UNAUTHORIZED
    chosen = _REQUEST_SIGNATURES.get(signature.algorithm_oid)
    if chosen is None:
        raise OcspRefusal(refuse, f"unsupported request signature algorithm {signature.algorithm_oid}")
    if not signature.certs:
        raise OcspRefusal(refuse, "a signed request must carry its signer's certificate")
    try:
        signer = x509.load_der_x509_certificate(signature.certs[0])
    except ValueError:
        raise OcspRefusal(
            ResponseStatus.MALFORMED_REQUEST, "the request signer certificate does not parse"
        ) from None
    digest, is_rsa = chosen
    key = signer.public_key()
    try:
        if is_rsa and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature.signature, signature.tbs_request, padding.PKCS1v15(), digest)
        elif not is_rsa and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature.signature, signature.tbs_request, ec.ECDSA(digest))
        else:
            raise OcspRefusal(refuse, "the signature algorithm does not match the signer's key")
    except InvalidSignature:
        raise OcspRefusal(refuse, "the request signature does not verify") from None
    if not signer.not_valid_before_utc <= now <= signer.not_valid_after_utc:
        raise OcspRefusal(refuse, "the request signer certificate is not valid now")
    for issuer in issuers:
        if issuer.subject != signer.issuer:
            continue
        try:
            signer.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return signer, issuer
    raise OcspRefusal(refuse, "the request signer certificate was not issued by a CA this responder trusts")
