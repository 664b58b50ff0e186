"""Test PKI and OCSP request builders (asn1crypto), independent of the code under test."""

from __future__ import annotations

import datetime as dt
import hashlib

from asn1crypto import keys as asn1_keys
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
HASH_OIDS = {
    "sha1": "1.3.14.3.2.26",
    "sha256": "2.16.840.1.101.3.4.2.1",
    "md5": "1.2.840.113549.2.5",
    "sha3_256": "2.16.840.1.101.3.4.2.8",
}


def make_certificate(
    cn: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None = None,
    serial: int | None = None,
    ca: bool = False,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    issuer_key, issuer_name = (issuer[0], issuer[1].subject) if issuer else (key, name)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), True)
    )
    return builder.sign(issuer_key, hashes.SHA256())


def new_ca(cn: str = "Test CA") -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    return key, make_certificate(cn, key, ca=True)


def new_leaf(
    ca: tuple[ec.EllipticCurvePrivateKey, x509.Certificate], serial: int | None = None
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    return key, make_certificate("leaf", key, issuer=ca, serial=serial)


def key_bits(cert: x509.Certificate) -> bytes:
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return bytes(asn1_keys.PublicKeyInfo.load(spki)["public_key"].contents[1:])


def cert_id(
    issuer: x509.Certificate, serial: int, hash_name: str = "sha1", name_hash: bytes | None = None
) -> asn1_ocsp.CertId:
    digest = hash_name if hash_name in ("sha1", "sha256") else "sha256"
    return asn1_ocsp.CertId(
        {
            "hash_algorithm": {"algorithm": HASH_OIDS[hash_name], "parameters": None},
            "issuer_name_hash": name_hash or hashlib.new(digest, issuer.subject.public_bytes()).digest(),
            "issuer_key_hash": hashlib.new(digest, key_bits(issuer)).digest(),
            "serial_number": serial,
        }
    )


def request(
    cert_ids: list[asn1_ocsp.CertId],
    nonce: bytes | None = None,
    extra_extensions: list[dict[str, object]] | None = None,
    signer: tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None = None,
    version: int = 0,
) -> bytes:
    extensions: list[dict[str, object]] = []
    if nonce is not None:
        extensions.append({"extn_id": "nonce", "critical": False, "extn_value": nonce})
    extensions.extend(extra_extensions or [])
    tbs = asn1_ocsp.TBSRequest(
        {
            "version": version,
            "request_list": [{"req_cert": c} for c in cert_ids],
            "request_extensions": extensions or None,
        }
    )
    body: dict[str, object] = {"tbs_request": tbs}
    if signer is not None:
        key, cert = signer
        body["optional_signature"] = {
            "signature_algorithm": {"algorithm": "sha256_ecdsa"},
            "signature": key.sign(tbs.dump(), ec.ECDSA(hashes.SHA256())),
            "certs": [asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))],
        }
    return asn1_ocsp.OCSPRequest(body).dump()
