"""PKCS#10 (RFC 2986): parse, verify proof of possession, read requested names."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from ca_core.errors import BadCsr
from ca_core.model import KeyAlgorithm

MAX_CSR_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class ParsedCsr:
    csr: x509.CertificateSigningRequest
    key_algorithm: KeyAlgorithm
    subject_key: CertificatePublicKeyTypes | None = None  # csr.public_key(), parsed once

    @property
    def subject(self) -> x509.Name:
        return self.csr.subject

    @property
    def public_key_der(self) -> bytes:
        return self.csr.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def subject_alt_names(self) -> tuple[x509.GeneralName, ...]:
        try:
            ext = self.csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        except x509.ExtensionNotFound:
            return ()
        except ValueError as exc:
            raise BadCsr(f"CSR extensions do not parse: {exc}") from None
        return tuple(ext.value)

    def challenge_password(self) -> str | None:
        from cryptography.x509.oid import AttributeOID

        try:
            value = self.csr.attributes.get_attribute_for_oid(AttributeOID.CHALLENGE_PASSWORD).value
        except x509.AttributeNotFound:
            return None
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def parse_csr(der: bytes, verify_signature: bool = True) -> ParsedCsr:
    """Parse a DER PKCS#10 and verify its signature (proof of possession).

    `verify_signature=False` is for a front-end reading the names of a CSR it will hand
    to IssuanceService, which verifies the signature itself: once is enough."""
    if len(der) > MAX_CSR_BYTES:
        raise BadCsr(f"CSR larger than {MAX_CSR_BYTES} bytes")
    try:
        csr = x509.load_der_x509_csr(der)
    except ValueError as exc:
        raise BadCsr(f"CSR does not parse: {exc}") from None
    try:
        key = csr.public_key()
    except (ValueError, TypeError) as exc:
        raise BadCsr(f"CSR public key is not usable: {exc}") from None
    algorithm = KeyAlgorithm.of_public_key(key)
    if not verify_signature:
        return ParsedCsr(csr, algorithm, key)
    try:
        valid = csr.is_signature_valid
    except Exception as exc:  # cryptography raises several types for odd algorithms
        raise BadCsr(f"CSR signature cannot be checked: {exc}") from None
    if not valid:
        raise BadCsr("CSR signature does not verify (no proof of possession)")
    return ParsedCsr(csr, algorithm, key)


def parse_csr_pem_or_der(data: bytes) -> ParsedCsr:
    """Accept PEM ("-----BEGIN CERTIFICATE REQUEST-----") or DER."""
    stripped = data.strip()
    if stripped.startswith(b"-----BEGIN"):
        try:
            csr = x509.load_pem_x509_csr(stripped)
        except ValueError as exc:
            raise BadCsr(f"CSR does not parse: {exc}") from None
        return parse_csr(csr.public_bytes(serialization.Encoding.DER))
    return parse_csr(data)
