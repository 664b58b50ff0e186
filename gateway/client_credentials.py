"""mTLS client credentials for the APIs: a key, a certificate from ceg's own CA (the
internal-api-client profile), registered as a credential and handed out as PKCS#12."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from ca_core.keys.file import generate_private_key
from ca_core.model import IssuanceRequest, KeyAlgorithm, Requester
from ca_core.services import Services
from ca_core.store.credentials import CredentialRecord


async def issue_client_credential(
    services: Services,
    ca: str,
    name: str,
    role: str,
    scope: dict[str, object],
    password: str,
    actor: str = "system",
) -> tuple[CredentialRecord, bytes]:
    """Returns the credential and a PKCS#12 (key, certificate, chain) under `password`."""
    key = generate_private_key(KeyAlgorithm.EC_P256)
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    issued = await services.issuance.issue(
        IssuanceRequest(
            ca=ca,
            profile="internal-api-client",
            requester=Requester("cli", actor),
            public_key=spki,
            pop_verified=True,  # the key was generated right here
            subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]),
            subject_alt_names=(),
            allow_internal_profile=True,
        )
    )
    record = await services.credentials.register_client_certificate(
        name, role, issued.der, dict(scope), actor, expires_at=issued.not_after
    )
    cert = x509.load_der_x509_certificate(issued.der)
    chain = [x509.load_der_x509_certificate(d) for d in issued.chain]
    p12 = pkcs12.serialize_key_and_certificates(
        name.encode(),
        key,
        cert,
        chain,
        serialization.BestAvailableEncryption(password.encode()),
    )
    return record, p12
