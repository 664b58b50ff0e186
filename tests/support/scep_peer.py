"""A SCEP client built from RFC 8894, for message-level tests: it makes requests the
way devices do (self-signed or existing signer certificate, AES or 3DES envelopes,
SHA-1 or SHA-256 signatures) and reads CertReps, with protocols.scep.codec."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from asn1crypto import core
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import AttributeOID, NameOID

from protocols._shared import cms
from protocols.scep import codec
from protocols.scep.codec import MessageType
from tests.support.pki import self_signed

ALL_CIPHERS = frozenset({cms.AES_128_CBC, cms.AES_192_CBC, cms.AES_256_CBC, cms.DES_EDE3_CBC, cms.DES_CBC})


def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def scep_csr(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    cn: str = "device.example",
    challenge: str | None = None,
    dns: Sequence[str] = (),
    template: str | None = None,
) -> bytes:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    )
    if challenge is not None:
        builder = builder.add_attribute(AttributeOID.CHALLENGE_PASSWORD, challenge.encode())
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), False)
    if template is not None:
        oid = x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2")
        builder = builder.add_extension(
            x509.UnrecognizedExtension(oid, core.BMPString(template).dump()), critical=False
        )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


@dataclass
class Reply:
    view: codec.CertRepView
    certificates: list[bytes] = field(default_factory=list)
    crls: list[bytes] = field(default_factory=list)
    cipher: str | None = None

    @property
    def status(self) -> codec.PkiStatus:
        return self.view.status

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(self.certificates[0])


@dataclass
class ScepPeer:
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    certificate: bytes  # the signer certificate (self-signed, or one issued earlier)
    ra: bytes  # the RA certificate requests are encrypted to
    digest: str = "sha256"
    cipher: str = cms.AES_256_CBC
    signing_time: dt.datetime | None = None
    last_nonce: bytes = b""

    @classmethod
    def new(cls, ra: bytes, cn: str = "device.example", **kwargs: object) -> ScepPeer:
        key = rsa_key()
        return cls(key, self_signed(key, cn), ra, **kwargs)  # type: ignore[arg-type]

    def request(
        self,
        message_type: MessageType,
        message_data: bytes,
        transaction_id: str | None = None,
        recipient: bytes | None = None,
    ) -> bytes:
        self.last_nonce = os.urandom(16)
        signer = cms.key_signer(self.certificate, self.key, self.digest)
        return codec.encode_pki_request(
            message_type,
            transaction_id or os.urandom(8).hex(),
            self.last_nonce,
            message_data,
            recipient or self.ra,
            signer,
            self.cipher,
            os.urandom,
            signing_time=self.signing_time,
            certificates=[self.certificate],
        )

    def read(self, body: bytes) -> Reply:
        view = codec.decode_cert_rep(body)
        reply = Reply(view)
        if view.message_data is not None:
            assert isinstance(self.key, rsa.RSAPrivateKey)
            key = self.key
            opened = cms.open_enveloped(
                view.message_data,
                [cms.KeyTransportRecipient(self.certificate, lambda b: key.decrypt(b, padding.PKCS1v15()))],
                ALL_CIPHERS,
                os.urandom,
            )
            reply.cipher = opened.cipher
            reply.certificates = cms.certificates_of(opened.plaintext)
            reply.crls = cms.crls_of(opened.plaintext)
        return reply
