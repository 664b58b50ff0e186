"""Keys, CSRs and PEM helpers for tests."""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Sequence
from functools import cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from ca_core.keys.file import generate_private_key
from ca_core.model import KeyAlgorithm


def new_key(algorithm: KeyAlgorithm = KeyAlgorithm.EC_P256) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    return generate_private_key(algorithm)


@cache
def shared_key(algorithm: KeyAlgorithm) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    """One subscriber key per type for the whole test process (RSA-4096 generation is slow)."""
    return generate_private_key(algorithm)


def make_csr(
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | None = None,
    cn: str | None = "device.example",
    dns: Sequence[str] = (),
    extra_extensions: Sequence[x509.ExtensionType] = (),
) -> bytes:
    key = key or new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else [])
    builder = x509.CertificateSigningRequestBuilder().subject_name(name)
    if dns:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False
        )
    for ext in extra_extensions:
        builder = builder.add_extension(ext, critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def self_signed(
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, cn: str, sans: Sequence[x509.GeneralName] = ()
) -> bytes:
    """A throwaway self-signed certificate (DER) for `key`, valid for a day."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
    )
    if sans:
        cert = cert.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return cert.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def pem(der: bytes) -> bytes:
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)


def write_pem(path: Path, ders: Sequence[bytes]) -> Path:
    path.write_bytes(b"".join(pem(d) for d in ders))
    return path


def openssl_verify(tmp: Path, root: bytes, intermediates: Sequence[bytes], leaves: Sequence[bytes]) -> str:
    """Run `openssl verify` on every leaf at once; returns its output (raises on failure)."""
    root_file = write_pem(tmp / "root.pem", [root])
    untrusted = write_pem(tmp / "untrusted.pem", intermediates) if intermediates else None
    files = []
    for i, leaf in enumerate(leaves):
        files.append(str(write_pem(tmp / f"leaf{i}.pem", [leaf])))
    cmd = ["openssl", "verify", "-x509_strict", "-CAfile", str(root_file)]
    if untrusted is not None:
        cmd += ["-untrusted", str(untrusted)]
    result = subprocess.run([*cmd, *files], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise AssertionError(f"openssl verify failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout
