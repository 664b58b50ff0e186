"""PKCS#11 key backend (python-pkcs11): keys generated on the token, never exported.

- Private keys are created with CKA_SENSITIVE=true, CKA_EXTRACTABLE=false, CKA_TOKEN=true.
- One session is opened and logged in once and reused for every operation (not one
  login per signature); see Pkcs11Token for why calls are serialised.
- `blocking` is measured, not assumed (`signs_inline`): a key whose signature takes
  under INLINE_SIGN_SECONDS on this token (SoftHSM or a local HSM signing ECDSA) signs on
  the caller's thread like a file key, and so does one that is slower but spends that
  time on this process's CPU (SoftHSM signing RSA-2048), up to INLINE_CPU_SIGN_SECONDS.
  Such a signature gains nothing from a thread: python-pkcs11 releases the GIL around
  each C_ call and must take it back from a busy event loop after each, which cost more
  CPU than the signature (measured: 1,255 against 776 us of CPU per RSA-2048
  certificate). A signature that waits (a network HSM) or is long goes to the executor.
  While another thread holds the token, every key counts as blocking.
- SoftHSM 2.6 has no CKM_ECDSA_SHA256/384/512, so ECDSA hashes in software, signs the
  digest with CKM_ECDSA and converts the raw r||s to DER (RFC 3279 Ecdsa-Sig-Value).
  RSA uses the combined CKM_SHA256_RSA_PKCS / CKM_SHA512_RSA_PKCS mechanisms.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pkcs11
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificateIssuerPublicKeyTypes,
)
from cryptography.utils import Buffer
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters

from ca_core.errors import KeyBackendError, NotFound
from ca_core.model import KeyAlgorithm

_CURVE_NAMES = {
    KeyAlgorithm.EC_P256: "secp256r1",
    KeyAlgorithm.EC_P384: "secp384r1",
    KeyAlgorithm.EC_P521: "secp521r1",
}
# Signatures faster than this (best of a few probes at load) are made on the caller's thread,
INLINE_SIGN_SECONDS = 250e-6
# and so are those up to this long that are CPU work in this process (a software token).
INLINE_CPU_SIGN_SECONDS = 1e-3
_CPU_BOUND_SHARE = 0.8
_PROBES = 5

_RSA_MECHANISMS = {
    "sha256": Mechanism.SHA256_RSA_PKCS,
    "sha384": Mechanism.SHA384_RSA_PKCS,
    "sha512": Mechanism.SHA512_RSA_PKCS,
}


# The loaded library is process-wide (python-pkcs11 loads a module once), so its lock must
# be too: one lock per module path, shared by every token object of this process.
_MODULE_LOCKS: dict[str, threading.Lock] = {}
_MODULE_LOCKS_GUARD = threading.Lock()


def _module_lock(module: str) -> threading.Lock:
    with _MODULE_LOCKS_GUARD:
        return _MODULE_LOCKS.setdefault(os.path.realpath(module), threading.Lock())


class Pkcs11Token:
    """One logged-in token and its reusable session.

    python-pkcs11 calls C_Initialize(NULL), which tells the library that the application
    will not call it from several threads at once (PKCS#11 2.40 section 5.4; SoftHSM then
    disables its own locking). So calls are serialised here, on one session opened and
    logged in once; parallelism comes from worker processes, each with its own library.
    """

    def __init__(self, module: str, token_label: str, pin: str) -> None:
        try:
            lib = pkcs11.lib(module)
            self._token = lib.get_token(token_label=token_label)
        except (pkcs11.PKCS11Error, RuntimeError, OSError) as exc:
            raise KeyBackendError(f"PKCS#11 token {token_label!r} in {module}: {exc!r}") from exc
        self._pin = pin
        self._lock = _module_lock(module)
        self._session: Any = None

    @contextlib.contextmanager
    def session(self) -> Iterator[Any]:
        """The token's session, held exclusively for the duration of the block."""
        with self._lock:
            if self._session is None:
                try:
                    self._session = self._token.open(rw=True, user_pin=self._pin)
                except pkcs11.UserAlreadyLoggedIn:
                    # Another Pkcs11Token of this process logged in; the login is shared.
                    self._session = self._token.open(rw=True)
                except pkcs11.PinIncorrect as exc:
                    raise KeyBackendError("PKCS#11 login failed: wrong PIN") from exc
                except pkcs11.PKCS11Error as exc:
                    raise KeyBackendError(f"PKCS#11 session failed: {exc!r}") from exc
            yield self._session

    def busy(self) -> bool:
        """True while another thread holds the token (a key generation can take seconds)."""
        return self._lock.locked()

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                with contextlib.suppress(pkcs11.PKCS11Error):
                    self._session.close()
                self._session = None


class Pkcs11KeyStore:
    name = "pkcs11"

    def __init__(self, token: Pkcs11Token) -> None:
        self._token = token

    def generate(self, label: str, algorithm: KeyAlgorithm) -> Pkcs11Signer:
        key_id = os.urandom(16)
        private_template = {
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.PRIVATE: True,
            Attribute.TOKEN: True,
            Attribute.SIGN: True,
            Attribute.DECRYPT: not algorithm.is_ec,
        }
        with self._token.session() as session:
            try:
                if algorithm.is_ec:
                    params = session.create_domain_parameters(
                        KeyType.EC,
                        {Attribute.EC_PARAMS: encode_named_curve_parameters(_CURVE_NAMES[algorithm])},
                        local=True,
                    )
                    params.generate_keypair(
                        id=key_id, label=label, store=True, private_template=private_template
                    )
                else:
                    session.generate_keypair(
                        KeyType.RSA,
                        algorithm.rsa_bits,
                        id=key_id,
                        label=label,
                        store=True,
                        private_template=private_template,
                    )
            except pkcs11.PKCS11Error as exc:
                raise KeyBackendError(f"key generation on the token failed: {exc!r}") from exc
        return self.load(f"pkcs11:{key_id.hex()}")

    def load(self, key_ref: str) -> Pkcs11Signer:
        key_id = _key_id(key_ref)
        with self._token.session() as session:
            try:
                public = session.get_key(object_class=ObjectClass.PUBLIC_KEY, id=key_id)
                session.get_key(object_class=ObjectClass.PRIVATE_KEY, id=key_id)
            except pkcs11.NoSuchKey:
                raise NotFound(f"key {key_ref!r} not on the token") from None
            public_key = _public_key_of(public)
        signer = Pkcs11Signer(self._token, key_ref, key_id, public_key)
        signer.calibrate()
        return signer

    def destroy(self, key_ref: str) -> None:
        key_id = _key_id(key_ref)
        with self._token.session() as session:
            for obj in list(session.get_objects({Attribute.ID: key_id})):
                obj.destroy()

    def close(self) -> None:
        self._token.close()


def _key_id(key_ref: str) -> bytes:
    if not key_ref.startswith("pkcs11:"):
        raise KeyBackendError(f"{key_ref!r} is not a PKCS#11 key reference")
    try:
        return bytes.fromhex(key_ref.removeprefix("pkcs11:"))
    except ValueError:
        raise KeyBackendError(f"{key_ref!r} is not a PKCS#11 key reference") from None


def _public_key_of(public: Any) -> CertificateIssuerPublicKeyTypes:
    if public.key_type == KeyType.EC:
        from asn1crypto.core import OctetString
        from asn1crypto.keys import ECDomainParameters

        curve_name = ECDomainParameters.load(public[Attribute.EC_PARAMS]).chosen.native
        curve = {
            "secp256r1": ec.SECP256R1(),
            "secp384r1": ec.SECP384R1(),
            "secp521r1": ec.SECP521R1(),
        }
        point = bytes(OctetString.load(public[Attribute.EC_POINT]))
        return ec.EllipticCurvePublicKey.from_encoded_point(curve[curve_name], point)
    modulus = int.from_bytes(public[Attribute.MODULUS], "big")
    exponent = int.from_bytes(public[Attribute.PUBLIC_EXPONENT], "big")
    return rsa.RSAPublicNumbers(exponent, modulus).public_key()


def signs_inline(wall_seconds: float, cpu_seconds: float) -> bool:
    """Whether a key whose probe signature took `wall_seconds`, `cpu_seconds` of them on
    this thread's CPU, should sign on the caller's thread (see the module docstring)."""
    if wall_seconds <= INLINE_SIGN_SECONDS:
        return True
    return wall_seconds <= INLINE_CPU_SIGN_SECONDS and cpu_seconds >= _CPU_BOUND_SHARE * wall_seconds


class Pkcs11Signer:
    def __init__(
        self,
        token: Pkcs11Token,
        key_ref: str,
        key_id: bytes,
        public_key: CertificateIssuerPublicKeyTypes,
    ) -> None:
        self._token = token
        self._key_ref = key_ref
        self._key_id = key_id
        self._public = public_key
        self._algorithm = KeyAlgorithm.of_public_key(public_key)
        self._hash = self._algorithm.signature_hash()
        self._key: Any = None  # the private key object on the token's session
        self._blocking = True

    def calibrate(self) -> None:
        """Time a few signatures: a fast key signs inline (see the module docstring)."""
        best, best_cpu = float("inf"), 0.0
        try:
            for _ in range(_PROBES):
                started, cpu_started = time.perf_counter(), time.thread_time()
                self.sign(b"ceg signature timing probe")
                wall = time.perf_counter() - started
                if wall < best:
                    best, best_cpu = wall, time.thread_time() - cpu_started
        except KeyBackendError:
            return  # a key that cannot sign (yet) stays on the executor
        self._blocking = not signs_inline(best, best_cpu)

    @property
    def key_ref(self) -> str:
        return self._key_ref

    @property
    def algorithm(self) -> KeyAlgorithm:
        return self._algorithm

    @property
    def blocking(self) -> bool:
        # A fast key still goes to the executor while the token is busy (say, generating a
        # CA's RSA key), so the event loop never waits behind a long token operation.
        return self._blocking or self._token.busy()

    def public_key(self) -> CertificateIssuerPublicKeyTypes:
        return self._public

    def private_key(self) -> CertificateIssuerPrivateKeyTypes:
        if isinstance(self._public, ec.EllipticCurvePublicKey):
            return _TokenEcKey(self)
        return _TokenRsaKey(self)

    def sign(self, data: bytes) -> bytes:
        return self.sign_with(data, self._hash)

    def sign_with(self, data: bytes, algorithm: hashes.HashAlgorithm | utils.Prehashed) -> bytes:
        if self._algorithm.is_ec:
            digest = _digest(data, algorithm)
            raw = self._call("sign", digest, mechanism=Mechanism.ECDSA)
            half = len(raw) // 2
            r, s = int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
            return utils.encode_dss_signature(r, s)
        if isinstance(algorithm, utils.Prehashed):
            raise KeyBackendError("prehashed RSA signatures are not supported")
        mechanism = _RSA_MECHANISMS.get(algorithm.name)
        if mechanism is None:
            raise KeyBackendError(f"no RSA mechanism for {algorithm.name}")
        return self._call("sign", data, mechanism=mechanism)

    def decrypt(self, ciphertext: bytes) -> bytes:
        if self._algorithm.is_ec:
            raise KeyBackendError("only RSA keys decrypt")
        return self._call("decrypt", ciphertext, mechanism=Mechanism.RSA_PKCS)

    def _call(self, operation: str, data: bytes, mechanism: Mechanism) -> bytes:
        with self._token.session() as session:
            if self._key is None or self._key.session is not session:
                self._key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, id=self._key_id)
            key = self._key
            try:
                result: bytes = getattr(key, operation)(data, mechanism=mechanism)
            except pkcs11.PKCS11Error as exc:
                raise KeyBackendError(f"PKCS#11 {operation} failed: {exc!r}") from exc
            return result


def _digest(data: bytes, algorithm: hashes.HashAlgorithm | utils.Prehashed) -> bytes:
    if isinstance(algorithm, utils.Prehashed):
        return data
    h = hashes.Hash(algorithm)
    h.update(data)
    return h.finalize()


class _TokenEcKey(ec.EllipticCurvePrivateKey):
    """What cryptography's builders see: sign() goes to the token, nothing is exportable."""

    def __init__(self, signer: Pkcs11Signer) -> None:
        self._signer = signer
        self._pub = signer.public_key()
        assert isinstance(self._pub, ec.EllipticCurvePublicKey)

    def sign(self, data: Buffer, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise KeyBackendError("only ECDSA signatures")
        return self._signer.sign_with(bytes(data), signature_algorithm.algorithm)

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._pub  # type: ignore[return-value]

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._pub.curve  # type: ignore[union-attr]

    @property
    def key_size(self) -> int:
        return self._pub.key_size  # type: ignore[union-attr]

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        raise KeyBackendError("ECDH is not offered by CA keys")

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        raise KeyBackendError("PKCS#11 keys are not extractable")

    def private_bytes(self, *args: Any, **kwargs: Any) -> bytes:
        raise KeyBackendError("PKCS#11 keys are not extractable")

    def __copy__(self) -> _TokenEcKey:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> _TokenEcKey:
        return self


class _TokenRsaKey(rsa.RSAPrivateKey):
    def __init__(self, signer: Pkcs11Signer) -> None:
        self._signer = signer
        self._pub = signer.public_key()
        assert isinstance(self._pub, rsa.RSAPublicKey)

    def sign(
        self,
        data: Buffer,
        padding_: padding.AsymmetricPadding,
        algorithm: hashes.HashAlgorithm | utils.Prehashed | utils.NoDigestInfo,
    ) -> bytes:
        if not isinstance(padding_, padding.PKCS1v15):
            raise KeyBackendError("only PKCS#1 v1.5 RSA signatures")
        if isinstance(algorithm, utils.NoDigestInfo):
            raise KeyBackendError("RSA signatures without DigestInfo are not offered by CA keys")
        return self._signer.sign_with(bytes(data), algorithm)

    def decrypt(self, ciphertext: bytes, padding_: padding.AsymmetricPadding) -> bytes:
        if not isinstance(padding_, padding.PKCS1v15):
            raise KeyBackendError("only PKCS#1 v1.5 RSA decryption")
        return self._signer.decrypt(ciphertext)

    def public_key(self) -> rsa.RSAPublicKey:
        return self._pub  # type: ignore[return-value]

    @property
    def key_size(self) -> int:
        return self._pub.key_size  # type: ignore[union-attr]

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        raise KeyBackendError("PKCS#11 keys are not extractable")

    def private_bytes(self, *args: Any, **kwargs: Any) -> bytes:
        raise KeyBackendError("PKCS#11 keys are not extractable")

    def __copy__(self) -> _TokenRsaKey:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> _TokenRsaKey:
        return self
