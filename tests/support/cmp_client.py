"""A small CMP client built on protocols.cmp.codec: builds requests the way a client
does (header, CRMF request with signature POPO, MAC or signature protection) and reads
answers. Used by the message-level tests (with any field tampered with) and by
bench/cmp.py (as the in-process async client)."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from protocols.cmp import codec, oids, protection
from protocols.cmp.codec import (
    Body,
    CertConfBody,
    CertConfirmation,
    CertId,
    CertReqBody,
    CertRequest,
    CertTemplate,
    Extension,
    GenBody,
    Header,
    InfoItem,
    Message,
    Pbm,
    Pbmac1,
    PollReqBody,
    Popo,
    RevDetails,
    RevReqBody,
    StatusInfo,
)

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
HMAC_SHA1_IANA = "1.3.6.1.5.5.8.1.2"
NULL_DN = codec.NULL_DN_NAME


@dataclass(frozen=True)
class MacCredential:
    reference: str
    secret: bytes
    pbmac1: bool = False
    iterations: int = 500

    def algorithm(self) -> Pbm | Pbmac1:
        salt = secrets.token_bytes(16)
        if self.pbmac1:
            return Pbmac1(salt, max(self.iterations, 1000), 32, "sha256", "sha256")
        return Pbm(salt, "sha256", self.iterations, "sha1", HMAC_SHA1_IANA)


@dataclass(frozen=True)
class SignatureCredential:
    certificate: bytes
    key: PrivateKey
    chain: tuple[bytes, ...] = ()

    @property
    def subject(self) -> bytes:
        return x509.load_der_x509_certificate(self.certificate).subject.public_bytes()


Credential = MacCredential | SignatureCredential


def spki(key: PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def name_der(name: str | x509.Name | bytes | None) -> bytes | None:
    if name is None or isinstance(name, bytes):
        return name
    if isinstance(name, str):
        name = x509.Name.from_rfc4514_string(name)
    return name.public_bytes()


def sign(key: PrivateKey, data: bytes, hash_name: str = "sha256") -> tuple[codec.SignatureAlgorithm, bytes]:
    algorithm = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}[hash_name]
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return codec.signature_algorithm_for("ecdsa", hash_name), key.sign(data, ec.ECDSA(algorithm))
    return codec.signature_algorithm_for("rsa", hash_name), key.sign(data, padding.PKCS1v15(), algorithm)


def cert_request(
    key: PrivateKey | None,
    subject: str | x509.Name | None = "CN=device.example",
    *,
    cert_req_id: int = 0,
    sans: Sequence[x509.GeneralName] = (),
    popo: str = "signature",
    popo_key: PrivateKey | None = None,
    public_key: bytes | None = None,
    old_cert_id: CertId | None = None,
    extensions: Sequence[Extension] = (),
    issuer: bytes | None = None,
    serial_number: int | None = None,
    not_after: dt.datetime | None = None,
) -> CertRequest:
    """A CertRequest with a signature POPO by `popo_key` (default: the requested key)."""
    exts = list(extensions)
    if sans:
        value = x509.SubjectAlternativeName(list(sans)).public_bytes()
        exts.append(Extension("2.5.29.17", False, value))
    template = CertTemplate(
        subject=name_der(subject),
        issuer=issuer,
        public_key=public_key if public_key is not None else (spki(key) if key is not None else None),
        not_after=not_after,
        extensions=tuple(exts),
        serial_number=serial_number,
    )
    controls: tuple[InfoItem, ...] = ()
    if old_cert_id is not None:
        issuer_name = codec.directory_name_of(old_cert_id.issuer)
        assert issuer_name is not None
        controls = (
            InfoItem(oids.OID_REGCTRL_OLD_CERT_ID, codec.encode_cert_id(issuer_name, old_cert_id.serial)),
        )
    der = codec.encode_cert_request(cert_req_id, template, controls)
    proof: Popo | None = None
    if popo == "signature":
        signer = popo_key or key
        assert signer is not None
        algorithm, signature = sign(signer, der)
        proof = Popo("signature", algorithm, signature, der)
    elif popo == "raVerified":
        proof = Popo("raVerified")
    return CertRequest(cert_req_id, template, der, proof, old_cert_id, controls)


def old_cert_id(certificate: bytes) -> CertId:
    cert = x509.load_der_x509_certificate(certificate)
    return CertId(codec.directory_name(cert.issuer.public_bytes()), cert.serial_number)


def cert_conf(
    certificate: bytes, cert_req_id: int = 0, accept: bool = True, hash_alg: str | None = None
) -> Body:
    cert = x509.load_der_x509_certificate(certificate)
    digest = protection.certificate_hash(cert, hash_alg)
    status = StatusInfo("accepted") if accept else StatusInfo("rejection", frozenset({"badCertTemplate"}))
    return CertConfBody((CertConfirmation(digest, cert_req_id, status, hash_alg),))


def revocation(certificate: bytes, reason: int | None = None) -> Body:
    cert = x509.load_der_x509_certificate(certificate)
    return RevReqBody((RevDetails(cert.serial_number, cert.issuer.public_bytes(), reason),))


def genm(oid: str, value: bytes | None = None) -> Body:
    return GenBody("genm", (InfoItem(oid, value),))


def poll(cert_req_id: int = 0) -> Body:
    return PollReqBody((cert_req_id,))


@dataclass
class Session:
    """One transaction of one client: remembers transactionID and the server's last nonce."""

    credential: Credential | None
    send: Callable[[bytes], Awaitable[bytes]]
    recipient: bytes = NULL_DN  # Name DER
    pvno: int = codec.PVNO_CMP2000
    transaction_id: bytes = field(default_factory=lambda: secrets.token_bytes(16))
    last_nonce: bytes | None = None
    sender: bytes | None = None  # Name DER for MAC senders (signature senders use their cert)
    extra_certs: tuple[bytes, ...] | None = None  # override what signature protection sends
    now: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))

    def header(self, **overrides: object) -> Header:
        general: list[InfoItem] = []
        if overrides.pop("implicit_confirm", False):
            general.append(InfoItem(oids.OID_IT_IMPLICIT_CONFIRM, codec.NULL_DER))
        profile = overrides.pop("profile", None)
        if profile is not None:
            general.append(InfoItem(oids.OID_IT_CERT_PROFILE, codec.encode_cert_profile([str(profile)])))
        sender_name = self.sender or NULL_DN
        if isinstance(self.credential, SignatureCredential):
            sender_name = self.credential.subject
        header = Header(
            pvno=self.pvno,
            sender=codec.directory_name(sender_name),
            recipient=codec.directory_name(self.recipient),
            message_time=self.now(),
            transaction_id=self.transaction_id,
            sender_nonce=secrets.token_bytes(16),
            recip_nonce=self.last_nonce,
            general_info=tuple(general),
        )
        return replace(header, **overrides)  # type: ignore[arg-type]

    def encode(self, body: Body, header: Header | None = None, tamper: bool = False) -> bytes:
        header = header or self.header()
        credential = self.credential
        if credential is None:
            return codec.prepare(header, body).finish(None)
        if isinstance(credential, MacCredential):
            algorithm = credential.algorithm()
            kid = header.sender_kid if header.sender_kid is not None else credential.reference.encode()
            header = replace(header, protection_alg=algorithm, sender_kid=kid)
            prepared = codec.prepare(header, body)
            mac = protection.compute_mac(
                credential.secret, algorithm, prepared.protected_part, check_limits=False
            )
            return prepared.finish(_flip(mac) if tamper else mac)
        cert = x509.load_der_x509_certificate(credential.certificate)
        ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        signature_algorithm, _ = sign(credential.key, b"")
        header = replace(header, protection_alg=signature_algorithm, sender_kid=header.sender_kid or ski)
        extra = (
            self.extra_certs if self.extra_certs is not None else (credential.certificate, *credential.chain)
        )
        prepared = codec.prepare(header, body, extra)
        _, signature = sign(credential.key, prepared.protected_part)
        return prepared.finish(_flip(signature) if tamper else signature)

    async def exchange(self, body: Body, header: Header | None = None, tamper: bool = False) -> Message:
        answer = codec.decode_message(await self.send(self.encode(body, header, tamper)))
        if answer.header.sender_nonce is not None:
            self.last_nonce = answer.header.sender_nonce
        return answer

    def mac_valid(self, answer: Message) -> bool:
        """True when the answer is MAC-protected with this session's secret."""
        if not isinstance(self.credential, MacCredential):
            return False
        algorithm = answer.header.protection_alg
        if not isinstance(algorithm, Pbm | Pbmac1) or answer.protection is None:
            return False
        return protection.verify_mac(
            self.credential.secret, algorithm, answer.protected_part, answer.protection
        )


def signed_by(answer: Message, certificate: bytes) -> bool:
    """True when the answer's protection is a valid signature of `certificate`'s key."""
    algorithm = answer.header.protection_alg
    if not isinstance(algorithm, codec.SignatureAlgorithm) or answer.protection is None:
        return False
    key = x509.load_der_x509_certificate(certificate).public_key()
    return protection.verify_signature(key, algorithm, answer.protected_part, answer.protection)


def fail_info(answer: Message) -> frozenset[str]:
    """The failInfo of an error message, or of the first status of ip/cp/kup/rp."""
    body = answer.body
    if isinstance(body, codec.ErrorBody):
        return body.status.fail_info
    if isinstance(body, codec.CertRepBody):
        return body.responses[0].status.fail_info
    if isinstance(body, codec.RevRepBody):
        return body.statuses[0].fail_info
    return frozenset()


def issued_certificate(answer: Message) -> bytes:
    body = answer.body
    assert isinstance(body, codec.CertRepBody), f"expected ip/cp/kup, got {body.kind}: {fail_info(answer)}"
    certificate = body.responses[0].certificate
    assert certificate is not None, f"no certificate: {body.responses[0].status}"
    return certificate


def _flip(value: bytes) -> bytes:
    return bytes([value[0] ^ 1]) + value[1:]


__all__ = [
    "CertReqBody",
    "MacCredential",
    "Session",
    "SignatureCredential",
    "cert_conf",
    "cert_request",
    "fail_info",
    "genm",
    "issued_certificate",
    "old_cert_id",
    "poll",
    "revocation",
    "signed_by",
]
