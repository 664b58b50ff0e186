"""Algorithm identifiers of CMP protection and proof of possession (RFC 9481 sections 2,
3 and 6): the OID tables, and AlgorithmIdentifier in and out."""

from __future__ import annotations

from typing import Any

from asn1crypto import algos, core

from protocols.cmp import oids
from protocols.cmp.codec import asn1
from protocols.cmp.codec.model import Pbm, Pbmac1, ProtectionAlgorithm, SignatureAlgorithm, UnknownAlgorithm

# HMAC algorithm identifiers (RFC 9481 6.2.1; hmac-sha1 has two OIDs in the wild and
# OpenSSL's default `-mac hmac-sha1` sends the IANA one, 1.3.6.1.5.5.8.1.2).
HMAC_OIDS: dict[str, str] = {
    "1.3.6.1.5.5.8.1.2": "sha1",
    "1.2.840.113549.2.7": "sha1",
    "1.2.840.113549.2.8": "sha224",
    "1.2.840.113549.2.9": "sha256",
    "1.2.840.113549.2.10": "sha384",
    "1.2.840.113549.2.11": "sha512",
}
HMAC_OID_OF: dict[str, str] = {
    "sha1": "1.2.840.113549.2.7",
    "sha224": "1.2.840.113549.2.8",
    "sha256": "1.2.840.113549.2.9",
    "sha384": "1.2.840.113549.2.10",
    "sha512": "1.2.840.113549.2.11",
}
DIGEST_OIDS: dict[str, str] = {
    "1.3.14.3.2.26": "sha1",
    "2.16.840.1.101.3.4.2.4": "sha224",
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
}
DIGEST_OID_OF: dict[str, str] = {name: oid for oid, name in DIGEST_OIDS.items()}

# Signature algorithms for protection and POPO (RFC 9481 section 3): scheme and hash.
SIGNATURE_OIDS: dict[str, tuple[str, str]] = {
    "1.2.840.10045.4.3.1": ("ecdsa", "sha224"),
    "1.2.840.10045.4.3.2": ("ecdsa", "sha256"),
    "1.2.840.10045.4.3.3": ("ecdsa", "sha384"),
    "1.2.840.10045.4.3.4": ("ecdsa", "sha512"),
    "1.2.840.113549.1.1.14": ("rsa", "sha224"),
    "1.2.840.113549.1.1.11": ("rsa", "sha256"),
    "1.2.840.113549.1.1.12": ("rsa", "sha384"),
    "1.2.840.113549.1.1.13": ("rsa", "sha512"),
    "1.2.840.113549.1.1.10": ("rsa-pss", ""),  # hash from the parameters
    "1.3.101.112": ("ed25519", ""),
    "1.3.101.113": ("ed448", ""),
}
SIGNATURE_OID_OF: dict[tuple[str, str], str] = {
    v: k for k, v in SIGNATURE_OIDS.items() if v[1] and k != "1.2.840.10045.4.3.1"
}


def _optional(value: Any) -> Any:
    return None if isinstance(value, core.Void) else value


def decode_protection_algorithm(alg: Any) -> ProtectionAlgorithm:
    """AlgorithmIdentifier (asn1crypto) -> a protection algorithm we can act on."""
    oid = alg["algorithm"].dotted
    params = _optional(alg["parameters"])
    if oid == oids.OID_PASSWORD_BASED_MAC:
        if params is None:
            return UnknownAlgorithm(oid, "PasswordBasedMac without parameters")
        p = asn1.PBMParameter.load(params.dump(), strict=True)
        owf = DIGEST_OIDS.get(p["owf"]["algorithm"].dotted)
        mac = HMAC_OIDS.get(p["mac"]["algorithm"].dotted)
        if owf is None or mac is None:
            return UnknownAlgorithm(oid, "unsupported owf or mac in PBMParameter")
        return Pbm(
            bytes(p["salt"].native), owf, int(p["iteration_count"].native), mac, p["mac"]["algorithm"].dotted
        )
    if oid == oids.OID_PBMAC1:
        if params is None:
            return UnknownAlgorithm(oid, "PBMAC1 without parameters")
        p = algos.Pbmac1Params.load(params.dump(), strict=True)
        kdf = p["key_derivation_func"]
        if kdf["algorithm"].dotted != oids.OID_PBKDF2:
            return UnknownAlgorithm(oid, "PBMAC1 with a KDF other than PBKDF2")
        kp = kdf["parameters"]
        if kp["salt"].name != "specified" or isinstance(kp["key_length"], core.Void):
            return UnknownAlgorithm(oid, "PBKDF2 needs a specified salt and a keyLength (RFC 9481 6.1.2)")
        prf = HMAC_OIDS.get(kp["prf"]["algorithm"].dotted)
        mac = HMAC_OIDS.get(p["message_auth_scheme"]["algorithm"].dotted)
        if prf is None or mac is None:
            return UnknownAlgorithm(oid, "unsupported PBKDF2 prf or PBMAC1 MAC")
        return Pbmac1(
            bytes(kp["salt"].chosen.native),
            int(kp["iteration_count"].native),
            int(kp["key_length"].native),
            prf,
            mac,
        )
    return signature_algorithm(oid, params)


def signature_algorithm(oid: str, params: Any) -> ProtectionAlgorithm:
    known = SIGNATURE_OIDS.get(oid)
    if known is None:
        return UnknownAlgorithm(oid)
    scheme, hash_name = known
    if scheme != "rsa-pss":
        return SignatureAlgorithm(oid, scheme, hash_name)
    if params is None:
        return UnknownAlgorithm(oid, "RSASSA-PSS without parameters")
    p = algos.RSASSAPSSParams.load(params.dump(), strict=True)
    hash_name = DIGEST_OIDS.get(p["hash_algorithm"]["algorithm"].dotted, "")
    mgf = p["mask_gen_algorithm"]
    mgf_hash = DIGEST_OIDS.get(mgf["parameters"]["algorithm"].dotted, "")
    if not hash_name or mgf["algorithm"].native != "mgf1" or mgf_hash != hash_name:
        return UnknownAlgorithm(oid, "RSASSA-PSS needs MGF1 with the same SHA-2 hash")
    return SignatureAlgorithm(oid, "rsa-pss", hash_name, int(p["salt_length"].native))


def algorithm_identifier(algorithm: ProtectionAlgorithm) -> algos.AlgorithmIdentifier:
    if isinstance(algorithm, Pbm):
        params = asn1.PBMParameter(
            {
                "salt": algorithm.salt,
                "owf": {"algorithm": DIGEST_OID_OF[algorithm.owf]},
                "iteration_count": algorithm.iterations,
                "mac": {"algorithm": algorithm.mac_oid},
            }
        )
        return algos.AlgorithmIdentifier({"algorithm": oids.OID_PASSWORD_BASED_MAC, "parameters": params})
    if isinstance(algorithm, Pbmac1):
        params = algos.Pbmac1Params(
            {
                "key_derivation_func": {
                    "algorithm": "pbkdf2",
                    "parameters": {
                        "salt": algos.Pbkdf2Salt(name="specified", value=algorithm.salt),
                        "iteration_count": algorithm.iterations,
                        "key_length": algorithm.key_length,
                        "prf": {"algorithm": HMAC_OID_OF[algorithm.prf], "parameters": core.Null()},
                    },
                },
                "message_auth_scheme": {"algorithm": HMAC_OID_OF[algorithm.mac], "parameters": core.Null()},
            }
        )
        return algos.AlgorithmIdentifier({"algorithm": oids.OID_PBMAC1, "parameters": params})
    if isinstance(algorithm, SignatureAlgorithm):
        if algorithm.scheme == "rsa-pss":
            params = algos.RSASSAPSSParams(
                {
                    "hash_algorithm": {"algorithm": algorithm.hash},
                    "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": algorithm.hash}},
                    "salt_length": algorithm.pss_salt_length or 32,
                }
            )
            return algos.AlgorithmIdentifier({"algorithm": algorithm.oid, "parameters": params})
        if algorithm.scheme == "rsa":
            return algos.AlgorithmIdentifier({"algorithm": algorithm.oid, "parameters": core.Null()})
        return algos.AlgorithmIdentifier({"algorithm": algorithm.oid})
    raise ValueError(f"cannot encode algorithm {algorithm.oid}")


def signature_algorithm_for(scheme: str, hash_name: str) -> SignatureAlgorithm:
    return SignatureAlgorithm(SIGNATURE_OID_OF[(scheme, hash_name)], scheme, hash_name)
