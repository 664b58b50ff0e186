"""File key backend: PKCS#8 private keys encrypted with a passphrase.

The zero-install default for the demo. Keys live in one directory, one PEM file each,
written with mode 0600. The passphrase comes from the gateway (environment or a file).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificateIssuerPublicKeyTypes,
)

from ca_core.errors import KeyBackendError, NotFound
from ca_core.model import KeyAlgorithm

_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def generate_private_key(algorithm: KeyAlgorithm) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    """A fresh software key of one of the six types (also used for server-side keygen)."""
    if algorithm.is_ec:
        return ec.generate_private_key(algorithm.curve)
    return rsa.generate_private_key(public_exponent=65537, key_size=algorithm.rsa_bits)


class FileSigner:
    def __init__(self, key_ref: str, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
        self._key_ref = key_ref
        self._key = key
        self._algorithm = KeyAlgorithm.of_public_key(key.public_key())
        self._hash = self._algorithm.signature_hash()

    @property
    def key_ref(self) -> str:
        return self._key_ref

    @property
    def algorithm(self) -> KeyAlgorithm:
        return self._algorithm

    @property
    def blocking(self) -> bool:
        # An ECDSA signature takes tens of microseconds; RSA private operations take ms.
        return not self._algorithm.is_ec

    def public_key(self) -> CertificateIssuerPublicKeyTypes:
        return self._key.public_key()

    def private_key(self) -> CertificateIssuerPrivateKeyTypes:
        return self._key

    def sign(self, data: bytes) -> bytes:
        if isinstance(self._key, ec.EllipticCurvePrivateKey):
            return self._key.sign(data, ec.ECDSA(self._hash))
        return self._key.sign(data, padding.PKCS1v15(), self._hash)

    def decrypt(self, ciphertext: bytes) -> bytes:
        if not isinstance(self._key, rsa.RSAPrivateKey):
            raise KeyBackendError("only RSA keys decrypt")
        return self._key.decrypt(ciphertext, padding.PKCS1v15())


class FileKeyStore:
    """Keys as encrypted PKCS#8 files under `directory`."""

    name = "file"

    def __init__(self, directory: Path, passphrase: bytes) -> None:
        if not passphrase:
            raise KeyBackendError("the file key backend needs a non-empty passphrase")
        self._dir = directory
        self._passphrase = passphrase
        self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    def _path(self, label: str) -> Path:
        if not _LABEL.match(label):
            raise KeyBackendError(f"invalid key label {label!r}")
        return self._dir / f"{label}.p8.pem"

    def generate(self, label: str, algorithm: KeyAlgorithm) -> FileSigner:
        path = self._path(label)
        if path.exists():
            raise KeyBackendError(f"key {label!r} already exists")
        key = generate_private_key(algorithm)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(self._passphrase),
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())
        return FileSigner(f"file:{label}", key)

    def load(self, key_ref: str) -> FileSigner:
        label = key_ref.removeprefix("file:")
        path = self._path(label)
        try:
            pem = path.read_bytes()
        except FileNotFoundError:
            raise NotFound(f"key {key_ref!r} not found") from None
        try:
            key = serialization.load_pem_private_key(pem, password=self._passphrase)
        except (ValueError, TypeError) as exc:
            raise KeyBackendError(f"key {key_ref!r} cannot be decrypted: wrong passphrase?") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise KeyBackendError(f"key {key_ref!r} is not an EC or RSA key")
        return FileSigner(key_ref, key)

    def destroy(self, key_ref: str) -> None:
        self._path(key_ref.removeprefix("file:")).unlink(missing_ok=True)

    def close(self) -> None:
        return None


__all__ = ["FileKeyStore", "FileSigner", "generate_private_key"]
