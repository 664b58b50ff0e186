"""Key backends: one `Signer` interface, two implementations (file, pkcs11).

A Signer never hands out private key material. For the certificate, CRL and OCSP
builders it offers `private_key()`: an object that `cryptography`'s builders accept as a
private key but whose `sign()` is this signer's (for the file backend it is the real key,
for PKCS#11 a proxy that signs on the token). That is the one fast path the issue asks
for: `cryptography` builds the TBS in Rust and only the signature comes from the backend.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, Protocol, TypeVar, runtime_checkable

from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificateIssuerPublicKeyTypes,
)

from ca_core.model import KeyAlgorithm

_T = TypeVar("_T")


@runtime_checkable
class Signer(Protocol):
    """A CA (or RA, or responder) key that signs with its algorithm's fixed hash."""

    @property
    def key_ref(self) -> str:
        """Backend-specific reference stored with the CA, e.g. `file:issuing` or `pkcs11:<id>`."""
        ...

    @property
    def algorithm(self) -> KeyAlgorithm: ...

    @property
    def blocking(self) -> bool:
        """True when a signature is slow enough (HSM round trip, RSA) to run off the loop."""
        ...

    def public_key(self) -> CertificateIssuerPublicKeyTypes: ...

    def private_key(self) -> CertificateIssuerPrivateKeyTypes:
        """A key object for cryptography's builders; its sign() goes through this backend."""
        ...

    def sign(self, data: bytes) -> bytes:
        """Sign `data` with the algorithm's pair (ECDSA/SHA-x DER, or RSA PKCS#1 v1.5)."""
        ...

    def decrypt(self, ciphertext: bytes) -> bytes:
        """RSA PKCS#1 v1.5 key transport decryption (SCEP RA); EC keys raise."""
        ...


async def with_signer(blocking: bool, executor: Executor | None, fn: Callable[..., _T], *args: Any) -> _T:
    """Run `fn(*args)`, work that signs, where the signer says it belongs: on the caller's
    thread for a fast key, in `executor` for a blocking one (Signer.blocking)."""
    if not blocking:
        return fn(*args)
    return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)


class KeyStore(Protocol):
    """Creates and finds Signers. All methods block; call them from an executor."""

    name: str

    def generate(self, label: str, algorithm: KeyAlgorithm) -> Signer: ...

    def load(self, key_ref: str) -> Signer: ...

    def destroy(self, key_ref: str) -> None: ...

    def close(self) -> None: ...
