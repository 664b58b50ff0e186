"""JWS and JWK as ACME uses them (RFC 8555 section 6.2; RFC 7515, 7517, 7518, 7638, 8037).

- Only the flattened JSON serialization, with a protected header (RFC 8555 6.2); no
  unprotected header, no detached or unencoded payload.
- Account key algorithms: ES256, ES384, ES512, RS256, PS256 and EdDSA (Ed25519,
  Ed448); an ES* algorithm must match its key's curve (RFC 7518 3.4). Anything else is
  badSignatureAlgorithm, listing what is accepted.
- RSA account keys are 2048 to 8192 bits; EC keys P-256, P-384 or P-521.
- External account binding (RFC 8555 7.3.4) is a JWS MACed with HS256/HS384/HS512.
Only this module (and codec.py) reads JOSE bytes; the rest sees `Jws` and public keys.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from protocols.acme.problems import AcmeProblem, ProblemType, malformed

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey

SIGNATURE_ALGORITHMS = ("ES256", "ES384", "ES512", "RS256", "PS256", "EdDSA")
MAC_ALGORITHMS = ("HS256", "HS384", "HS512")
MAX_JWS_BYTES = 128 * 1024  # a 100-name CSR with an RSA-8192 key fits easily

_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_EC_ALGS: dict[str, tuple[str, hashes.HashAlgorithm, int]] = {
    # alg: (curve name, hash, byte length of r and of s)
    "ES256": ("secp256r1", hashes.SHA256(), 32),
    "ES384": ("secp384r1", hashes.SHA384(), 48),
    "ES512": ("secp521r1", hashes.SHA512(), 66),
}
_JWK_CURVES: dict[str, ec.EllipticCurve] = {
    "P-256": ec.SECP256R1(),
    "P-384": ec.SECP384R1(),
    "P-521": ec.SECP521R1(),
}
_MAC_HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def b64url_decode(text: object, what: str) -> bytes:
    """Strict base64url without padding (RFC 7515 2); malformed otherwise."""
    if not isinstance(text, str) or not _B64URL.match(text) or len(text) % 4 == 1:
        raise malformed(f"{what} is not base64url without padding")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise malformed(f"{what} is not base64url") from None


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def load_json(data: bytes | str, what: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        raise malformed(f"{what} is not JSON") from None


@dataclass(frozen=True, slots=True)
class Jws:
    """A parsed (not yet verified) flattened JWS."""

    header: dict[str, Any]
    protected_b64: str
    payload_b64: str
    payload: bytes
    signature: bytes

    @property
    def alg(self) -> str:
        return str(self.header.get("alg", ""))

    @property
    def signing_input(self) -> bytes:
        return f"{self.protected_b64}.{self.payload_b64}".encode("ascii")


def parse_jws(body: bytes | str | dict[str, Any], what: str = "JWS") -> Jws:
    """Parse the flattened JSON serialization; the body of every ACME POST."""
    if isinstance(body, bytes | str):
        if len(body) > MAX_JWS_BYTES:
            raise malformed(f"{what} is larger than {MAX_JWS_BYTES} bytes", 413)
        doc = load_json(body, what)
    else:
        doc = body
    if not isinstance(doc, dict):
        raise malformed(f"{what} must be a JSON object in flattened serialization")
    if "signatures" in doc or "header" in doc:
        raise malformed(f"{what} must use the flattened serialization with only a protected header")
    extra = set(doc) - {"protected", "payload", "signature"}
    if extra:
        raise malformed(f"{what} has unexpected members: {', '.join(sorted(extra))}")
    if not all(isinstance(doc.get(k), str) for k in ("protected", "payload", "signature")):
        raise malformed(f"{what} needs string members protected, payload and signature")
    header = load_json(b64url_decode(doc["protected"], f"{what} protected header"), "protected header")
    if not isinstance(header, dict):
        raise malformed(f"{what} protected header must be a JSON object")
    if "b64" in header or "crit" in header:
        raise malformed(f"{what} protected header must not use b64 or crit")
    return Jws(
        header=header,
        protected_b64=doc["protected"],
        payload_b64=doc["payload"],
        payload=b64url_decode(doc["payload"], f"{what} payload"),
        signature=b64url_decode(doc["signature"], f"{what} signature"),
    )


def bad_algorithm(alg: str) -> AcmeProblem:
    return AcmeProblem(
        ProblemType.BAD_SIGNATURE_ALGORITHM,
        f"signature algorithm {alg!r} is not supported",
        algorithms=SIGNATURE_ALGORITHMS,
    )


def _b64_int(value: object, what: str) -> int:
    raw = b64url_decode(value, f"JWK {what}")
    if not raw:
        raise AcmeProblem(ProblemType.BAD_PUBLIC_KEY, f"JWK {what} is empty")
    return int.from_bytes(raw, "big")


def public_key_of(jwk: object) -> PublicKey:
    """The public key of a JWK (RFC 7517/7518/8037); badPublicKey for anything unusable."""
    if not isinstance(jwk, dict):
        raise malformed("jwk must be a JSON object")
    kty = jwk.get("kty")
    if "d" in jwk or "p" in jwk:
        raise AcmeProblem(ProblemType.BAD_PUBLIC_KEY, "the JWK contains private key material")
    try:
        if kty == "EC":
            curve = _JWK_CURVES.get(str(jwk.get("crv")))
            if curve is None:
                raise AcmeProblem(ProblemType.BAD_PUBLIC_KEY, f"unsupported EC curve {jwk.get('crv')!r}")
            size = (curve.key_size + 7) // 8
            x, y = b64url_decode(jwk.get("x"), "JWK x"), b64url_decode(jwk.get("y"), "JWK y")
            if len(x) != size or len(y) != size:
                raise AcmeProblem(ProblemType.BAD_PUBLIC_KEY, "EC JWK coordinates have the wrong length")
            return ec.EllipticCurvePublicNumbers(
                int.from_bytes(x, "big"), int.from_bytes(y, "big"), curve
            ).public_key()
        if kty == "RSA":
            n, e = _b64_int(jwk.get("n"), "n"), _b64_int(jwk.get("e"), "e")
            if not 2048 <= n.bit_length() <= 8192:
                raise AcmeProblem(
                    ProblemType.BAD_PUBLIC_KEY, f"RSA key of {n.bit_length()} bits; 2048 to 8192 accepted"
                )
            if e < 3 or e % 2 == 0 or e.bit_length() > 32:
                raise AcmeProblem(ProblemType.BAD_PUBLIC_KEY, "RSA public exponent is not acceptable")
            return rsa.RSAPublicNumbers(e, n).public_key()
        if kty == "OKP":
            x = b64url_decode(jwk.get("x"), "JWK x")
            if jwk.get("crv") == "Ed25519":
                return ed25519.Ed25519PublicKey.from_public_bytes(x)
            if jwk.get("crv") == "Ed448":
                return ed448.Ed448PublicKey.from_public_bytes(x)
            raise AcmeProblem(ProblemType.BAD_PUBLIC_KEY, f"unsupported OKP curve {jwk.get('crv')!r}")
    except ValueError as exc:  # point not on the curve, bad length
        raise AcmeProblem(ProblemType.BAD_PUBLIC_KEY, f"JWK is not a valid public key: {exc}") from None
    raise AcmeProblem(ProblemType.BAD_PUBLIC_KEY, f"unsupported key type {kty!r}")


_THUMBPRINT_MEMBERS = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n"), "OKP": ("crv", "kty", "x")}


def canonical_jwk(jwk: dict[str, Any]) -> dict[str, Any]:
    """The required members only (RFC 7638 3.2), so two spellings of one key compare equal."""
    members = _THUMBPRINT_MEMBERS.get(str(jwk.get("kty")))
    if members is None:
        raise AcmeProblem(ProblemType.BAD_PUBLIC_KEY, f"unsupported key type {jwk.get('kty')!r}")
    return {m: jwk[m] for m in members if m in jwk}


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint, SHA-256, base64url: the key's identity in ACME."""
    canonical = json.dumps(canonical_jwk(jwk), separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode()).digest())


def jwk_of(key: PublicKey) -> dict[str, str]:
    """The JWK of a public key (used to compare a certificate's key with a JWS key)."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        numbers = key.public_numbers()
        size = (key.curve.key_size + 7) // 8
        crv = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}.get(key.curve.name, "")
        return {
            "kty": "EC",
            "crv": crv,
            "x": b64url(numbers.x.to_bytes(size, "big")),
            "y": b64url(numbers.y.to_bytes(size, "big")),
        }
    if isinstance(key, rsa.RSAPublicKey):
        rn = key.public_numbers()
        return {
            "kty": "RSA",
            "n": b64url(rn.n.to_bytes((rn.n.bit_length() + 7) // 8, "big")),
            "e": b64url(rn.e.to_bytes((rn.e.bit_length() + 7) // 8, "big")),
        }
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    crv = "Ed25519" if isinstance(key, ed25519.Ed25519PublicKey) else "Ed448"
    return {"kty": "OKP", "crv": crv, "x": b64url(raw)}


def verify_signature(jws: Jws, key: PublicKey) -> None:
    """Check `alg` against the key and the signature; malformed when it does not verify."""
    alg = jws.alg
    if alg not in SIGNATURE_ALGORITHMS:
        raise bad_algorithm(alg)
    data, sig = jws.signing_input, jws.signature
    try:
        if alg in _EC_ALGS:
            curve, digest, size = _EC_ALGS[alg]
            if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != curve:
                raise bad_algorithm_for_key(alg)
            if len(sig) != 2 * size:
                raise InvalidSignature
            r, s = int.from_bytes(sig[:size], "big"), int.from_bytes(sig[size:], "big")
            key.verify(encode_dss_signature(r, s), data, ec.ECDSA(digest))
        elif alg in ("RS256", "PS256"):
            if not isinstance(key, rsa.RSAPublicKey):
                raise bad_algorithm_for_key(alg)
            pad: padding.AsymmetricPadding = (
                padding.PKCS1v15()
                if alg == "RS256"
                # RFC 7518 3.5 fixes the salt at 32 octets; josepy signs with the maximum
                # salt length, so verification accepts any (the signature is as strong).
                else padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
            )
            key.verify(sig, data, pad, hashes.SHA256())
        else:  # EdDSA
            if not isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
                raise bad_algorithm_for_key(alg)
            key.verify(sig, data)
    except InvalidSignature:
        raise malformed("JWS signature does not verify") from None


def bad_algorithm_for_key(alg: str) -> AcmeProblem:
    return AcmeProblem(
        ProblemType.BAD_SIGNATURE_ALGORITHM,
        f"algorithm {alg} does not fit the key",
        algorithms=SIGNATURE_ALGORITHMS,
    )


def verify_mac(jws: Jws, key: bytes) -> None:
    """External account binding: an HMAC over the signing input (RFC 8555 7.3.4)."""
    alg = jws.alg
    digest = _MAC_HASHES.get(alg)
    if digest is None:
        raise AcmeProblem(
            ProblemType.BAD_SIGNATURE_ALGORITHM,
            f"external account binding must use {', '.join(MAC_ALGORITHMS)}, not {alg!r}",
            algorithms=MAC_ALGORITHMS,
        )
    expected = hmac.new(key, jws.signing_input, digest).digest()
    if not hmac.compare_digest(expected, jws.signature):
        raise unauthorized_eab()


def unauthorized_eab() -> AcmeProblem:
    return AcmeProblem(ProblemType.UNAUTHORIZED, "external account binding MAC does not verify", 403)
