"""CMS (RFC 5652) pieces several protocols share: certs-only bundles, SignedData parse,
verify and sign, EnvelopedData with RSA key transport (RFC 5652 6.2.1, RFC 8017 7.2).

Used by SCEP (RFC 8894 3.1), and meant for EST's certs-only replies, CMP and the WSTEP
and Intune front-ends. Nothing here knows a protocol: attributes go in and out as
(dotted OID, DER value) pairs, so each protocol's codec reads and writes its own.

Hostile input: every parse is bounded (byte size, certificate and signer counts) and
any decoding failure, however deep in asn1crypto's lazy parser, becomes one `CmsError`
with a `CmsProblem`, so callers map problems to their native errors in one place.

Decryption follows RFC 3218 2.3.2: when the RSA key transport fails, a random content
key is used and decryption goes on, so a bad PKCS#1 block and a bad CBC padding look
alike to the sender (no Bleichenbacher oracle).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from asn1crypto import algos, cms, core, parser
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

MAX_MESSAGE_BYTES = 512 * 1024
MAX_CERTIFICATES = 16
MAX_RECIPIENTS = 16

OID_DATA = "1.2.840.113549.1.7.1"
OID_CONTENT_TYPE = "1.2.840.113549.1.9.3"
OID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
OID_SIGNING_TIME = "1.2.840.113549.1.9.5"

# Content-encryption algorithms by their asn1crypto names. Single DES ("des") is read
# for old clients only; callers decide which names they accept and never write it.
AES_128_CBC = "aes128_cbc"
AES_192_CBC = "aes192_cbc"
AES_256_CBC = "aes256_cbc"
DES_EDE3_CBC = "tripledes_3key"
DES_CBC = "des"
_KEY_LENGTHS = {AES_128_CBC: 16, AES_192_CBC: 24, AES_256_CBC: 32, DES_EDE3_CBC: 24, DES_CBC: 8}
_CIPHER_OIDS = {
    AES_128_CBC: "2.16.840.1.101.3.4.1.2",
    AES_192_CBC: "2.16.840.1.101.3.4.1.22",
    AES_256_CBC: "2.16.840.1.101.3.4.1.42",
    DES_EDE3_CBC: "1.2.840.113549.3.7",
    DES_CBC: "1.3.14.3.2.7",
}
_WRITABLE_CIPHERS = frozenset({AES_128_CBC, AES_192_CBC, AES_256_CBC, DES_EDE3_CBC})

DIGESTS: Mapping[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}

RandomBytes = Callable[[int], bytes]


class CmsProblem(StrEnum):
    MALFORMED = "malformed"  # not CMS, or not the structure expected
    UNSUPPORTED_ALGORITHM = "unsupported-algorithm"  # digest, signature, cipher or key transport
    BAD_SIGNATURE = "bad-signature"  # signature or messageDigest does not verify; no signer cert
    NOT_RECIPIENT = "not-recipient"  # EnvelopedData has no RecipientInfo for any key we hold
    DECRYPT_FAILED = "decrypt-failed"  # key transport or content decryption failed


class CmsError(Exception):
    def __init__(self, problem: CmsProblem, message: str) -> None:
        super().__init__(message)
        self.problem = problem
        self.message = message


_PARSE_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError, RecursionError)


# --- a small DER writer -------------------------------------------------------------------
# What this module sends is written directly as DER: building the same structures with
# asn1crypto costs several times the RSA signature that goes in them (measured: 0.9 ms
# against 0.2 ms per CertRep). Parsing stays with asn1crypto.


def _tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(size))) + size + content


def _seq(*parts: bytes) -> bytes:
    return _tlv(0x30, b"".join(parts))


def _set_of(parts: Sequence[bytes], tag: int = 0x31) -> bytes:
    return _tlv(tag, b"".join(sorted(parts)))  # DER orders a SET OF by encoding (X.690 11.6)


def _int(value: int) -> bytes:
    return _tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))


@functools.lru_cache(maxsize=64)
def _oid(dotted: str) -> bytes:
    return bytes(core.ObjectIdentifier(dotted).dump())


@functools.lru_cache(maxsize=64)
def _algorithm(name: str, null_parameters: bool = True) -> bytes:
    """An AlgorithmIdentifier by asn1crypto name (digests and RSA with NULL parameters,
    ECDSA without, as RFC 5754 and RFC 5758 say)."""
    oid = algos.SignedDigestAlgorithmId.unmap(name) if "_" in name or name.startswith("rsa") else None
    if oid is None:
        oid = algos.DigestAlgorithmId.unmap(name)
    return _seq(_oid(oid), b"\x05\x00" if null_parameters else b"")


@functools.lru_cache(maxsize=256)
def _issuer_and_serial(certificate: bytes) -> bytes:
    """IssuerAndSerialNumber of a certificate (RFC 5652 10.2.4), for sid and rid."""
    cert = x509.load_der_x509_certificate(certificate)
    return _seq(cert.issuer.public_bytes(), _int(cert.serial_number))


def _utc_time(value: dt.datetime) -> bytes:
    return _tlv(0x17, value.astimezone(dt.UTC).strftime("%y%m%d%H%M%SZ").encode())


def _content_info(content_type: str, content: bytes) -> bytes:
    return _seq(_oid(content_type), _tlv(0xA0, content))


OID_SIGNED_DATA = "1.2.840.113549.1.7.2"
OID_ENVELOPED_DATA = "1.2.840.113549.1.7.3"
OID_RSA_ENCRYPTION = "1.2.840.113549.1.1.1"


# --- certs-only -------------------------------------------------------------------------


def certs_only(certificates: Sequence[bytes], crls: Sequence[bytes] = ()) -> bytes:
    """A degenerate SignedData ("certs-only", RFC 5652 5.2; RFC 7030 4.1.3; RFC 8894 3.4):
    no content, no signers, just the certificates (and CRLs). Returns the DER ContentInfo.

    Written out directly (the bytes asn1crypto would produce, an EST test checks it): it
    is on every EST and SCEP enrolment's hot path."""
    for der in certificates:
        if len(der) < 2 or der[0] != 0x30:
            raise ValueError("not a DER certificate")
    parts = [_int(1), _tlv(0x31, b""), _seq(_oid(OID_DATA)), _set_of(certificates, 0xA0)]
    if crls:
        parts.append(_set_of(crls, 0xA1))
    parts.append(_tlv(0x31, b""))
    return _content_info(OID_SIGNED_DATA, _seq(*parts))


def certificates_of(content_info_der: bytes) -> list[bytes]:
    """The certificates of a certs-only (or any) SignedData."""
    return _signed_data_set(content_info_der, "certificates")


def crls_of(content_info_der: bytes) -> list[bytes]:
    """The CRLs of a SignedData (a SCEP GetCRL reply, for instance)."""
    return _signed_data_set(content_info_der, "crls")


def _signed_data_set(content_info_der: bytes, field: str) -> list[bytes]:
    info = cms.ContentInfo.load(content_info_der)
    if info["content_type"].native != "signed_data":
        raise ValueError("not a CMS SignedData")
    items = info["content"][field]
    return [c.chosen.dump() for c in items] if items else []


# --- SignedData: parse and verify -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignedMessage:
    """A parsed SignedData with exactly one signer, before or after verification.

    `attributes` maps each signed attribute's dotted OID to the DER of its values, so a
    protocol codec decodes its own attribute types.
    """

    content_type: str  # dotted OID of the encapsulated content
    content: bytes | None  # eContent octets, None when absent
    certificates: tuple[bytes, ...]
    attributes: Mapping[str, tuple[bytes, ...]]
    digest_algorithm: str  # asn1crypto name: sha1, sha256, ...
    signer_certificate: bytes | None  # DER of the certificate the signer identifier names
    _signer_info: cms.SignerInfo

    def attribute(self, oid: str) -> bytes | None:
        """The DER of a single-valued signed attribute, or None when absent."""
        values = self.attributes.get(oid)
        return values[0] if values else None

    @property
    def signing_time(self) -> dt.datetime | None:
        raw = self.attribute(OID_SIGNING_TIME)
        if raw is None:
            return None
        try:
            value = asn1_x509.Time.load(raw).native
        except _PARSE_ERRORS:
            raise CmsError(CmsProblem.MALFORMED, "signingTime does not parse") from None
        return value if isinstance(value, dt.datetime) else None


def _load_content_info(der: bytes, expected: str) -> cms.ContentInfo:
    if not der or len(der) > MAX_MESSAGE_BYTES:
        raise CmsError(CmsProblem.MALFORMED, f"message is empty or larger than {MAX_MESSAGE_BYTES} bytes")
    if der[0] != 0x30:
        raise CmsError(CmsProblem.MALFORMED, "not a DER/BER SEQUENCE: not CMS")
    try:
        info = cms.ContentInfo.load(der)
        kind = info["content_type"].native
    except _PARSE_ERRORS as exc:
        raise CmsError(CmsProblem.MALFORMED, f"not a CMS ContentInfo: {exc}") from None
    if kind != expected:
        raise CmsError(CmsProblem.MALFORMED, f"CMS content is {kind}, expected {expected}")
    return info


def _names_match(a: asn1_x509.Name, b: asn1_x509.Name) -> bool:
    if a.dump() == b.dump():  # the usual case, and far cheaper than RFC 4518 preparation
        return True
    try:
        return bool(a == b)
    except _PARSE_ERRORS:
        return a.dump() == b.dump()


def _find_certificate(
    sid: cms.SignerIdentifier, certificates: Sequence[asn1_x509.Certificate]
) -> bytes | None:
    for cert in certificates:
        if sid.name == "issuer_and_serial_number":
            wanted = sid.chosen
            if cert.serial_number == wanted["serial_number"].native and _names_match(
                cert.issuer, wanted["issuer"]
            ):
                return bytes(cert.dump())
        elif sid.name == "subject_key_identifier" and cert.key_identifier == sid.chosen.native:
            return bytes(cert.dump())
    return None


def parse_signed(der: bytes) -> SignedMessage:
    """Parse a ContentInfo holding a SignedData with exactly one SignerInfo and signed
    attributes. Nothing is verified yet (call `verify_signed`), so a protocol can read
    its transaction id and nonce to answer even a message whose signature fails."""
    info = _load_content_info(der, "signed_data")
    try:
        signed = info["content"]
        raw_certs = signed["certificates"]
        certs = [c.chosen for c in raw_certs if c.name == "certificate"] if raw_certs else []
        if len(certs) > MAX_CERTIFICATES:
            raise CmsError(CmsProblem.MALFORMED, f"more than {MAX_CERTIFICATES} certificates")
        signer_infos = signed["signer_infos"]
        if len(signer_infos) != 1:
            raise CmsError(CmsProblem.MALFORMED, f"expected one SignerInfo, found {len(signer_infos)}")
        signer = signer_infos[0]
        encap = signed["encap_content_info"]
        content_type = encap["content_type"].dotted
        raw_content = encap["content"]
        content = None if isinstance(raw_content, core.Void) else bytes(raw_content.__bytes__())
        attrs = signer["signed_attrs"]
        if not attrs:
            raise CmsError(CmsProblem.MALFORMED, "SignerInfo has no signed attributes")
        attributes: dict[str, tuple[bytes, ...]] = {}
        for attr in attrs:
            oid = attr["type"].dotted
            if oid in attributes:
                raise CmsError(CmsProblem.MALFORMED, f"signed attribute {oid} appears twice")
            attributes[oid] = tuple(bytes(v.dump()) for v in attr["values"])
        digest = signer["digest_algorithm"]["algorithm"].native
        signer_cert = _find_certificate(signer["sid"], certs)
        return SignedMessage(
            content_type=content_type,
            content=content,
            certificates=tuple(bytes(c.dump()) for c in certs),
            attributes=attributes,
            digest_algorithm=str(digest),
            signer_certificate=signer_cert,
            _signer_info=signer,
        )
    except CmsError:
        raise
    except _PARSE_ERRORS as exc:
        raise CmsError(CmsProblem.MALFORMED, f"SignedData does not parse: {exc}") from None


def _hash(name: str) -> hashes.HashAlgorithm:
    factory = DIGESTS.get(name)
    if factory is None:
        raise CmsError(CmsProblem.UNSUPPORTED_ALGORITHM, f"digest algorithm {name} is not supported")
    return factory()


def _verify_signature(
    public_key: object, signature_algorithm: algos.SignedDigestAlgorithm, digest: str, data: bytes, sig: bytes
) -> None:
    kind = signature_algorithm.signature_algo
    named_hash = signature_algorithm["algorithm"].native
    # "sha256_rsa" names its own hash; bare "rsassa_pkcs1v15"/"ecdsa" use the SignerInfo digest.
    if kind == "rsassa_pss":
        params = signature_algorithm["parameters"]
        pss_hash = _hash(params["hash_algorithm"]["algorithm"].native)
        mgf_hash = _hash(params["mask_gen_algorithm"]["parameters"]["algorithm"].native)
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise CmsError(CmsProblem.UNSUPPORTED_ALGORITHM, "RSASSA-PSS signature with a non-RSA key")
        pss = asym_padding.PSS(mgf=asym_padding.MGF1(mgf_hash), salt_length=params["salt_length"].native)
        public_key.verify(sig, data, pss, pss_hash)
        return
    hash_name = digest
    if named_hash not in ("rsassa_pkcs1v15", "ecdsa"):
        try:
            hash_name = signature_algorithm.hash_algo
        except ValueError:
            raise CmsError(CmsProblem.UNSUPPORTED_ALGORITHM, f"signature algorithm {named_hash}") from None
    if kind == "rsassa_pkcs1v15" and isinstance(public_key, rsa.RSAPublicKey):
        public_key.verify(sig, data, asym_padding.PKCS1v15(), _hash(hash_name))
    elif kind == "ecdsa" and isinstance(public_key, ec.EllipticCurvePublicKey):
        public_key.verify(sig, data, ec.ECDSA(_hash(hash_name)))
    else:
        raise CmsError(CmsProblem.UNSUPPORTED_ALGORITHM, f"signature algorithm {named_hash} with this key")


def verify_signed(message: SignedMessage) -> x509.Certificate:
    """Verify the one signature: contentType and messageDigest attributes against the
    content, and the signature over the signed attributes with the signer certificate's
    key (RFC 5652 5.4, 5.6). Returns the signer certificate. The certificate itself is not
    path-validated: that is the protocol's decision (self-signed or issued here)."""
    if message.signer_certificate is None:
        raise CmsError(CmsProblem.BAD_SIGNATURE, "the signer's certificate is not in the SignedData")
    digest = _hash(message.digest_algorithm)
    try:
        cert = x509.load_der_x509_certificate(message.signer_certificate)
        public_key = cert.public_key()
        signer = message._signer_info
        content_type = message.attribute(OID_CONTENT_TYPE)
        if content_type is None or core.ObjectIdentifier.load(content_type).dotted != message.content_type:
            raise CmsError(
                CmsProblem.BAD_SIGNATURE, "contentType attribute missing or not the content's type"
            )
        digest_value = message.attribute(OID_MESSAGE_DIGEST)
        hasher = hashes.Hash(digest)
        hasher.update(message.content or b"")
        if digest_value is None or core.OctetString.load(digest_value).native != hasher.finalize():
            raise CmsError(CmsProblem.BAD_SIGNATURE, "messageDigest does not match the content")
        # The signature covers the DER SET OF the attributes, not their [0] IMPLICIT form.
        signed_bytes = b"\x31" + bytes(signer["signed_attrs"].dump())[1:]
        _verify_signature(
            public_key,
            signer["signature_algorithm"],
            message.digest_algorithm,
            signed_bytes,
            bytes(signer["signature"].native),
        )
    except CmsError:
        raise
    except InvalidSignature:
        raise CmsError(CmsProblem.BAD_SIGNATURE, "the signature does not verify") from None
    except _PARSE_ERRORS as exc:
        raise CmsError(CmsProblem.MALFORMED, f"signer information does not parse: {exc}") from None
    return cert


# --- SignedData: sign -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContentSigner:
    """A key that signs CMS signed attributes: `sign(data)` hashes with `digest` itself."""

    certificate: bytes  # DER of the signer's certificate
    digest: str  # sha256, sha384, sha512
    signature_algorithm: str  # asn1crypto name: rsassa_pkcs1v15, sha256_ecdsa, ...
    sign: Callable[[bytes], bytes]


def key_signer(certificate: bytes, private_key: object, digest: str = "sha256") -> ContentSigner:
    """A ContentSigner over a `cryptography` private key (or a backend proxy of one)."""
    hash_algorithm = _hash(digest)
    if isinstance(private_key, rsa.RSAPrivateKey):
        rsa_key = private_key
        return ContentSigner(
            certificate,
            digest,
            "rsassa_pkcs1v15",
            lambda data: rsa_key.sign(data, asym_padding.PKCS1v15(), hash_algorithm),
        )
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        ec_key = private_key
        return ContentSigner(
            certificate, digest, f"{digest}_ecdsa", lambda data: ec_key.sign(data, ec.ECDSA(hash_algorithm))
        )
    raise CmsError(CmsProblem.UNSUPPORTED_ALGORITHM, f"cannot sign CMS with a {type(private_key).__name__}")


def signed_attribute(oid: str, value: core.Asn1Value | bytes) -> tuple[str, bytes]:
    """An (OID, DER value) pair for `sign_signed`."""
    return oid, value if isinstance(value, bytes) else bytes(value.dump())


def sign_signed(
    signer: ContentSigner,
    content: bytes | None,
    attributes: Sequence[tuple[str, bytes]] = (),
    certificates: Sequence[bytes] = (),
    signing_time: dt.datetime | None = None,
) -> bytes:
    """A ContentInfo(SignedData) over `content` (id-data; None for no eContent) with one
    signer identified by issuer and serial, the given extra signed attributes, and
    `certificates` (the signer's always included). Returns DER."""
    hasher = hashes.Hash(_hash(signer.digest))
    hasher.update(content or b"")
    attrs = [
        _seq(_oid(OID_CONTENT_TYPE), _tlv(0x31, _oid(OID_DATA))),
        _seq(_oid(OID_MESSAGE_DIGEST), _tlv(0x31, _tlv(0x04, hasher.finalize()))),
    ]
    if signing_time is not None:
        attrs.append(_seq(_oid(OID_SIGNING_TIME), _tlv(0x31, _utc_time(signing_time))))
    attrs.extend(_seq(_oid(oid), _tlv(0x31, value)) for oid, value in attributes)
    signed_attrs = _set_of(attrs)
    signature = signer.sign(signed_attrs)  # the DER SET OF is what RFC 5652 5.4 signs
    null_parameters = not signer.signature_algorithm.endswith("ecdsa")
    signer_info = _seq(
        _int(1),
        _issuer_and_serial(signer.certificate),
        _algorithm(signer.digest),
        b"\xa0" + signed_attrs[1:],  # [0] IMPLICIT: same content, context tag
        _algorithm(signer.signature_algorithm, null_parameters),
        _tlv(0x04, signature),
    )
    encap = _seq(_oid(OID_DATA)) if content is None else _seq(_oid(OID_DATA), _tlv(0xA0, _tlv(0x04, content)))
    certs = list(dict.fromkeys([signer.certificate, *certificates]))
    signed = _seq(
        _int(1),
        _tlv(0x31, _algorithm(signer.digest)),
        encap,
        _set_of(certs, 0xA0),
        _tlv(0x31, signer_info),
    )
    return _content_info(OID_SIGNED_DATA, signed)


# --- EnvelopedData ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyTransportRecipient:
    """A key we can decrypt with: its certificate and its RSA PKCS#1 v1.5 decryption."""

    certificate: bytes
    decrypt: Callable[[bytes], bytes]


@dataclass(frozen=True, slots=True)
class Opened:
    plaintext: bytes
    cipher: str  # asn1crypto name of the content-encryption algorithm the sender chose
    recipient: bytes  # DER of the certificate whose key opened it


def _content_cipher(name: str, key: bytes, iv: bytes) -> Cipher[modes.CBC]:
    if name in (AES_128_CBC, AES_192_CBC, AES_256_CBC):
        return Cipher(algorithms.AES(key), modes.CBC(iv))
    if name == DES_EDE3_CBC:
        return Cipher(TripleDES(key), modes.CBC(iv))
    if name == DES_CBC:
        # Single DES is 3DES with K1 = K2 = K3 (what old SCEP clients send).
        return Cipher(TripleDES(key * 3), modes.CBC(iv))
    raise CmsError(CmsProblem.UNSUPPORTED_ALGORITHM, f"content encryption {name} is not supported")


def _matches(rid: cms.RecipientIdentifier, cert: asn1_x509.Certificate) -> bool:
    if rid.name == "issuer_and_serial_number":
        return bool(
            rid.chosen["serial_number"].native == cert.serial_number
            and _names_match(rid.chosen["issuer"], cert.issuer)
        )
    return bool(rid.name == "subject_key_identifier" and rid.chosen.native == cert.key_identifier)


def _octet_chunks(data: bytes, depth: int = 0) -> bytes:
    """The octets of a BER constructed OCTET STRING's contents: its chunks, joined."""
    out, pos = [], 0
    while pos < len(data):
        cls, method, tag, header, contents, trailer = parser.parse(data[pos:])
        if (cls, tag) != (0, 4) or depth > 8:
            raise ValueError("a constructed OCTET STRING holds something else")
        out.append(contents if method == 0 else _octet_chunks(contents, depth + 1))
        pos += len(header) + len(contents) + len(trailer)
    return b"".join(out)


def _encrypted_octets(encrypted: cms.EncryptedContentInfo) -> bytes | None:
    try:
        value = encrypted["encrypted_content"].native
    except ValueError:
        # Go's pkcs7 (scepclient) sends [0] as a constructed string of OCTET STRING
        # chunks, which BER allows and asn1crypto refuses for an implicit tag.
        contents, pos = bytes(encrypted.contents), 0
        while pos < len(contents):
            cls, method, tag, header, inner, trailer = parser.parse(contents[pos:])
            if (cls, tag, method) == (2, 0, 1):
                return _octet_chunks(inner)
            pos += len(header) + len(inner) + len(trailer)
        return None
    return value if isinstance(value, bytes) else None


def open_enveloped(
    der: bytes,
    recipients: Sequence[KeyTransportRecipient],
    accepted_ciphers: frozenset[str],
    random_bytes: RandomBytes,
) -> Opened:
    """Decrypt a ContentInfo(EnvelopedData) addressed (by KeyTransRecipientInfo) to one of
    `recipients`, with a content cipher among `accepted_ciphers`. Blocking (RSA)."""
    info = _load_content_info(der, "enveloped_data")
    try:
        enveloped = info["content"]
        infos = enveloped["recipient_infos"]
        if len(infos) > MAX_RECIPIENTS:
            raise CmsError(CmsProblem.MALFORMED, f"more than {MAX_RECIPIENTS} recipients")
        encrypted = enveloped["encrypted_content_info"]
        algorithm = encrypted["content_encryption_algorithm"]
        cipher_name = str(algorithm["algorithm"].native)
        if cipher_name not in _KEY_LENGTHS:
            raise CmsError(CmsProblem.UNSUPPORTED_ALGORITHM, f"content encryption {cipher_name}")
        if cipher_name not in accepted_ciphers:
            raise CmsError(
                CmsProblem.UNSUPPORTED_ALGORITHM, f"content encryption {cipher_name} is not accepted"
            )
        iv = bytes(algorithm.encryption_iv)
        ciphertext = _encrypted_octets(encrypted)
        if not isinstance(ciphertext, bytes):
            raise CmsError(CmsProblem.MALFORMED, "EnvelopedData has no encrypted content")
        chosen: tuple[KeyTransportRecipient, bytes] | None = None
        for recipient_info in infos:
            if recipient_info.name != "ktri":
                continue
            ktri = recipient_info.chosen
            for candidate in recipients:
                if _matches(ktri["rid"], asn1_x509.Certificate.load(candidate.certificate)):
                    if ktri["key_encryption_algorithm"]["algorithm"].native != "rsaes_pkcs1v15":
                        raise CmsError(
                            CmsProblem.UNSUPPORTED_ALGORITHM,
                            f"key transport {ktri['key_encryption_algorithm']['algorithm'].native}",
                        )
                    chosen = (candidate, bytes(ktri["encrypted_key"].native))
                    break
            if chosen is not None:
                break
    except CmsError:
        raise
    except _PARSE_ERRORS as exc:
        raise CmsError(CmsProblem.MALFORMED, f"EnvelopedData does not parse: {exc}") from None
    if chosen is None:
        raise CmsError(CmsProblem.NOT_RECIPIENT, "the EnvelopedData is not addressed to this server's key")
    recipient, encrypted_key = chosen
    key_length = _KEY_LENGTHS[cipher_name]
    try:
        key = recipient.decrypt(encrypted_key)
    except Exception:  # any failure takes the same path as a wrong key (RFC 3218 2.3.2)
        key = b""
    if len(key) != key_length:
        key = random_bytes(key_length)
    try:
        decryptor = _content_cipher(cipher_name, key, iv).decryptor()
        padded = decryptor.update(ciphertext) + decryptor.finalize()
        unpadder = padding.PKCS7(64 if cipher_name in (DES_EDE3_CBC, DES_CBC) else 128).unpadder()
        plaintext = unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise CmsError(CmsProblem.DECRYPT_FAILED, "the content does not decrypt") from None
    return Opened(plaintext, cipher_name, recipient.certificate)


def seal_enveloped(
    plaintext: bytes,
    recipient: bytes,
    cipher: str,
    random_bytes: RandomBytes,
    imitate_des: bool = False,
    recipient_key: object = None,
) -> bytes:
    """A ContentInfo(EnvelopedData) of `plaintext` for the RSA key of certificate
    `recipient` (DER), content-encrypted with `cipher` (AES-CBC or DES-EDE3-CBC). Single
    DES only with `imitate_des`, for test peers imitating old clients. `recipient_key`:
    the certificate's public key when the caller has already parsed it. Returns DER."""
    if cipher not in _WRITABLE_CIPHERS and not (imitate_des and cipher == DES_CBC):
        raise CmsError(CmsProblem.UNSUPPORTED_ALGORITHM, f"will not encrypt with {cipher}")
    try:
        public_key = recipient_key or x509.load_der_x509_certificate(recipient).public_key()
    except ValueError as exc:
        raise CmsError(CmsProblem.MALFORMED, f"recipient certificate does not parse: {exc}") from None
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise CmsError(CmsProblem.UNSUPPORTED_ALGORITHM, "key transport needs an RSA recipient key")
    block = 8 if cipher in (DES_EDE3_CBC, DES_CBC) else 16
    material = random_bytes(_KEY_LENGTHS[cipher] + block)  # content key, then IV
    key, iv = material[:-block], material[-block:]
    padder = padding.PKCS7(block * 8).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = _content_cipher(cipher, key, iv).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    ktri = _seq(
        _int(0),
        _issuer_and_serial(recipient),
        _seq(_oid(OID_RSA_ENCRYPTION), b"\x05\x00"),
        _tlv(0x04, public_key.encrypt(key, asym_padding.PKCS1v15())),
    )
    cipher_algorithm = _seq(_oid(_CIPHER_OIDS[cipher]), _tlv(0x04, iv))
    enveloped = _seq(
        _int(0),
        _tlv(0x31, ktri),
        _seq(_oid(OID_DATA), cipher_algorithm, _tlv(0x80, ciphertext)),  # [0] IMPLICIT OCTET STRING
    )
    return _content_info(OID_ENVELOPED_DATA, enveloped)


def issuer_and_serial(der: bytes) -> tuple[bytes, int]:
    """Parse an IssuerAndSerialNumber (RFC 5652 10.2.4): (issuer Name DER, serial)."""
    try:
        value = cms.IssuerAndSerialNumber.load(der)
        return bytes(value["issuer"].dump()), int(value["serial_number"].native)
    except _PARSE_ERRORS as exc:
        raise CmsError(CmsProblem.MALFORMED, f"IssuerAndSerialNumber does not parse: {exc}") from None


def names_equal(a: bytes, b: bytes) -> bool:
    """Whether two DER Names are the same name (RFC 5280 7.1 comparison, not byte equality)."""
    try:
        return _names_match(asn1_x509.Name.load(a), asn1_x509.Name.load(b))
    except _PARSE_ERRORS:
        return a == b
