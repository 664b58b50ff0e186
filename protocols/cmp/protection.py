"""Message protection and proof-of-possession checks, free of I/O.

- MAC protection (RFC 4210 5.1.3.1, RFC 9481 6.1): PasswordBasedMac (RFC 4211 4.4: the
  one-way function iterated over password || salt gives the HMAC key) and PBMAC1 with
  PBKDF2 (RFC 8018). Parameters are bounded so a request cannot buy unbounded CPU.
- Signature protection and signature POPO (RFC 4210 5.1.3.3, RFC 4211 4.1, RFC 9481 3):
  ECDSA, RSA PKCS#1 v1.5 and RSASSA-PSS with SHA-2, and EdDSA.
- Certificate paths to a configured trust anchor (a device maker's CA), checked by name
  chaining, signatures, validity and basicConstraints; certificates this CA issued are
  checked against the store instead (protocols/_shared/client_auth.py).
- certHash of certConf (RFC 4210 5.3.18, RFC 9480 2.10): the hash of the certificate's
  own signature algorithm unless the cmp2021 hashAlg names another.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, load_der_public_key

from protocols.cmp.codec import Pbm, Pbmac1, SignatureAlgorithm

# OpenSSL refuses PasswordBasedMac outside 100..100000 iterations (crmf_pbm.c); RFC 4211
# 4.4 sets the floor. PBKDF2 gets the same ceiling: enough for RFC 9481's advice while a
# hostile client cannot make one message cost more than a few tens of milliseconds.
PBM_MIN_ITERATIONS = 100
MAX_ITERATIONS = 100_000
MIN_SALT_BYTES = 8
MAX_SALT_BYTES = 64
MAX_CHAIN_DEPTH = 5

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


class ParameterError(ValueError):
    """Protection parameters outside what ceg accepts (answered with badAlg)."""


def _check_mac_parameters(algorithm: Pbm | Pbmac1) -> None:
    if not MIN_SALT_BYTES <= len(algorithm.salt) <= MAX_SALT_BYTES:
        raise ParameterError(
            f"salt of {len(algorithm.salt)} bytes; {MIN_SALT_BYTES} to {MAX_SALT_BYTES} accepted"
        )
    floor = PBM_MIN_ITERATIONS if isinstance(algorithm, Pbm) else 1_000
    if not floor <= algorithm.iterations <= MAX_ITERATIONS:
        raise ParameterError(f"iteration count {algorithm.iterations}; {floor} to {MAX_ITERATIONS} accepted")
    if isinstance(algorithm, Pbmac1) and not 16 <= algorithm.key_length <= 64:
        raise ParameterError(f"PBMAC1 key length {algorithm.key_length}; 16 to 64 bytes accepted")


def mac_key(secret: bytes, algorithm: Pbm | Pbmac1, check_limits: bool = True) -> bytes:
    if check_limits:
        _check_mac_parameters(algorithm)
    if isinstance(algorithm, Pbmac1):
        return hashlib.pbkdf2_hmac(
            algorithm.prf, secret, algorithm.salt, algorithm.iterations, algorithm.key_length
        )
    owf = getattr(hashlib, algorithm.owf)
    key = owf(secret + algorithm.salt).digest()
    for _ in range(algorithm.iterations - 1):
        key = owf(key).digest()
    return bytes(key)


def compute_mac(secret: bytes, algorithm: Pbm | Pbmac1, data: bytes, check_limits: bool = True) -> bytes:
    """The MAC of `data`; `check_limits=False` only for test clients that send bad parameters."""
    return hmac.new(mac_key(secret, algorithm, check_limits), data, algorithm.mac).digest()


def verify_mac(secret: bytes, algorithm: Pbm | Pbmac1, data: bytes, value: bytes) -> bool:
    return hmac.compare_digest(compute_mac(secret, algorithm, data), value)


def reply_mac_algorithm(request: Pbm | Pbmac1, salt: bytes) -> Pbm | Pbmac1:
    """The request's MAC algorithm with a fresh salt: the client already knows how to check it."""
    if isinstance(request, Pbm):
        return Pbm(salt, request.owf, request.iterations, request.mac, request.mac_oid)
    return Pbmac1(salt, request.iterations, request.key_length, request.prf, request.mac)


def load_public_key(spki_der: bytes) -> object:
    try:
        return load_der_public_key(spki_der)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ParameterError(f"public key does not parse: {exc}") from None


def verify_signature(
    public_key: object, algorithm: SignatureAlgorithm, data: bytes, signature: bytes
) -> bool:
    """True when `signature` over `data` verifies with `public_key` under `algorithm`; a key
    of the wrong type for the algorithm is simply a failed check."""
    try:
        if algorithm.scheme == "ecdsa" and isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, data, ec.ECDSA(_HASHES[algorithm.hash]()))
        elif algorithm.scheme == "rsa" and isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, data, padding.PKCS1v15(), _HASHES[algorithm.hash]())
        elif algorithm.scheme == "rsa-pss" and isinstance(public_key, rsa.RSAPublicKey):
            hash_algorithm = _HASHES[algorithm.hash]()
            pss = padding.PSS(padding.MGF1(hash_algorithm), algorithm.pss_salt_length or 0)
            public_key.verify(signature, data, pss, hash_algorithm)
        elif (algorithm.scheme == "ed25519" and isinstance(public_key, ed25519.Ed25519PublicKey)) or (
            algorithm.scheme == "ed448" and isinstance(public_key, ed448.Ed448PublicKey)
        ):
            public_key.verify(signature, data)
        else:
            return False
    except (InvalidSignature, KeyError, ValueError):
        return False
    return True


def signature_algorithm_of_key(public_key: object, hash_name: str) -> tuple[str, str]:
    """(scheme, hash) that a key of this type signs with."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return "ecdsa", hash_name
    if isinstance(public_key, rsa.RSAPublicKey):
        return "rsa", hash_name
    raise ParameterError(f"{type(public_key).__name__} keys do not sign CMP messages here")


def certificate_hash(certificate: x509.Certificate, hash_name: str | None) -> bytes:
    """certHash for certConf: `hash_name` (cmp2021 hashAlg) or the certificate's own
    signature hash (RFC 4210 5.3.18); EdDSA-signed certificates use SHA-512 (RFC 9481 2)."""
    if hash_name is None:
        algorithm = certificate.signature_hash_algorithm
        hash_name = algorithm.name if algorithm is not None else "sha512"
    if hash_name not in _HASHES and hash_name != "sha1":
        raise ParameterError(f"certConf hash {hash_name} is not supported")
    return hashlib.new(hash_name, certificate.public_bytes(Encoding.DER)).digest()


def allows_digital_signature(certificate: x509.Certificate) -> bool:
    """A protection certificate must allow digitalSignature when it has a KeyUsage."""
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return bool(usage.digital_signature)


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return bool(certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _valid_at(certificate: x509.Certificate, now: dt.datetime) -> bool:
    return certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc


def _issued_by(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    if child.issuer != issuer.subject:
        return False
    try:
        child.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def chain_to_anchor(
    leaf: x509.Certificate,
    untrusted: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    now: dt.datetime,
) -> tuple[x509.Certificate, ...] | None:
    """A path leaf -> ... -> anchor using `untrusted` intermediates, or None.

    Every certificate must be valid at `now`; every issuer must be a CA. Revocation of
    certificates under an external anchor is not checked (ceg holds no CRL of theirs).
    """
    if not _valid_at(leaf, now):
        return None

    def extend(path: tuple[x509.Certificate, ...]) -> tuple[x509.Certificate, ...] | None:
        current = path[-1]
        for anchor in anchors:
            if _valid_at(anchor, now) and _issued_by(current, anchor):
                return (*path, anchor)
        if len(path) >= MAX_CHAIN_DEPTH:
            return None
        for candidate in untrusted:
            if candidate in path or not _is_ca(candidate) or not _valid_at(candidate, now):
                continue
            if _issued_by(current, candidate):
                found = extend((*path, candidate))
                if found is not None:
                    return found
        return None

    return extend((leaf,))
