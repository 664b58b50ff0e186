"""JWS/JWK, nonces, wire codecs and binding settings, with bytes and no server."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from protocols.acme import codec, jws, nonces
from protocols.acme.problems import AcmeProblem, ProblemType
from protocols.acme.settings import AcmeSettings, check_settings, default_settings

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jws(key: Any, alg: str, header: dict[str, Any], payload: bytes = b"{}") -> dict[str, str]:
    protected = b64(json.dumps({"alg": alg, **header}).encode())
    body = b64(payload)
    data = f"{protected}.{body}".encode()
    if alg.startswith("ES"):
        size = (key.curve.key_size + 7) // 8
        digest = {"ES256": hashes.SHA256(), "ES384": hashes.SHA384(), "ES512": hashes.SHA512()}[alg]
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(digest)))
        signature = r.to_bytes(size, "big") + s.to_bytes(size, "big")
    elif alg == "RS256":
        signature = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    elif alg == "PS256":
        signature = key.sign(data, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
    elif alg.startswith("HS"):
        signature = hmac.new(key, data, hashlib.sha256).digest()
    else:
        signature = key.sign(data)
    return {"protected": protected, "payload": body, "signature": b64(signature)}


KEYS = [
    ("ES256", lambda: ec.generate_private_key(ec.SECP256R1())),
    ("ES384", lambda: ec.generate_private_key(ec.SECP384R1())),
    ("ES512", lambda: ec.generate_private_key(ec.SECP521R1())),
    ("RS256", lambda: rsa.generate_private_key(65537, 2048)),
    ("PS256", lambda: rsa.generate_private_key(65537, 2048)),
    ("EdDSA", ed25519.Ed25519PrivateKey.generate),
]


@pytest.mark.parametrize(("alg", "make_key"), KEYS, ids=[k[0] for k in KEYS])
def test_each_algorithm_verifies_and_rejects_tampering(alg: str, make_key: Any) -> None:
    key = make_key()
    jwk = jws.jwk_of(key.public_key())
    doc = make_jws(key, alg, {"jwk": jwk, "nonce": "n", "url": "u"})
    parsed = jws.parse_jws(json.dumps(doc).encode())
    public = jws.public_key_of(parsed.header["jwk"])
    jws.verify_signature(parsed, public)
    tampered = jws.parse_jws(json.dumps({**doc, "payload": b64(b'{"x":1}')}).encode())
    with pytest.raises(AcmeProblem) as refused:
        jws.verify_signature(tampered, public)
    assert refused.value.type is ProblemType.MALFORMED


def test_algorithm_must_fit_the_key_and_be_supported() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    doc = jws.parse_jws(json.dumps(make_jws(key, "ES256", {})).encode())
    with pytest.raises(AcmeProblem) as wrong_curve:
        jws.verify_signature(
            dataclasses.replace(doc, header={**doc.header, "alg": "ES384"}), key.public_key()
        )
    assert wrong_curve.value.type is ProblemType.BAD_SIGNATURE_ALGORITHM
    for alg in ("none", "HS256", "RS384"):
        with pytest.raises(AcmeProblem) as bad:
            jws.verify_signature(jws.Jws({"alg": alg}, "", "", b"", b""), key.public_key())
        assert bad.value.type is ProblemType.BAD_SIGNATURE_ALGORITHM
        assert "ES256" in bad.value.to_json()["algorithms"]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"protected": "e30", "payload": "", "signature": "", "header": {}}',
        b'{"signatures": []}',
        b'{"protected": "e30=", "payload": "", "signature": ""}',
        b'{"protected": "e3+", "payload": "", "signature": ""}',
        b'{"protected": 1, "payload": "", "signature": ""}',
    ],
    ids=["json", "array", "unprotected", "general", "padding", "alphabet", "type"],
)
def test_malformed_jws_is_refused(body: bytes) -> None:
    with pytest.raises(AcmeProblem) as refused:
        jws.parse_jws(body)
    assert refused.value.type is ProblemType.MALFORMED


@pytest.mark.parametrize(
    "jwk",
    [
        {"kty": "RSA", "n": b64((2**1023 + 1).to_bytes(128, "big")), "e": "AQAB"},
        {"kty": "EC", "crv": "P-256", "x": b64(b"\x01" * 32), "y": b64(b"\x02" * 32)},
        {"kty": "EC", "crv": "secp256k1", "x": "AA", "y": "AA"},
        {"kty": "oct", "k": "AA"},
        {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "d": "AA"},
    ],
    ids=["rsa-1024", "not-on-curve", "curve", "symmetric", "private"],
)
def test_unusable_keys_are_badPublicKey(jwk: dict[str, str]) -> None:
    with pytest.raises(AcmeProblem) as refused:
        jws.public_key_of(jwk)
    assert refused.value.type in (ProblemType.BAD_PUBLIC_KEY, ProblemType.MALFORMED)


def test_thumbprint_rfc7638_example() -> None:
    # RFC 7638 section 3.1.
    jwk = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert jws.thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_external_account_binding_mac() -> None:
    key = b"k" * 32
    doc = jws.parse_jws(make_jws(key, "HS256", {"kid": "x", "url": "u"}))
    jws.verify_mac(doc, key)
    with pytest.raises(AcmeProblem) as refused:
        jws.verify_mac(doc, b"other")
    assert refused.value.type is ProblemType.UNAUTHORIZED


def test_nonces_are_single_purpose_tokens() -> None:
    key = b"n" * 32
    counter = iter(range(1000))
    random = lambda n: next(counter).to_bytes(n, "big")  # noqa: E731
    nonce = nonces.mint(key, NOW, random)
    assert nonce != nonces.mint(key, NOW, random)
    expires = nonces.check(key, nonce, NOW + dt.timedelta(minutes=5), 3600)
    assert expires == NOW + dt.timedelta(hours=1)
    # A floor (the spent-nonce store's opening) refuses what was minted in earlier seconds.
    assert nonces.check(key, nonce, NOW, 3600, floor=NOW.replace(microsecond=0)) == expires
    with pytest.raises(AcmeProblem) as before_floor:
        nonces.check(key, nonce, NOW, 3600, floor=NOW.replace(microsecond=0) + dt.timedelta(seconds=1))
    assert before_floor.value.type is ProblemType.BAD_NONCE
    for bad, when in [
        (nonce, NOW + dt.timedelta(hours=1)),  # expired
        (nonces.mint(b"other key", NOW, random), NOW),  # not ours
        (nonce[:-2] + ("AA" if nonce[-2:] != "AA" else "BB"), NOW),  # tampered
        ("", NOW),
        (None, NOW),
    ]:
        with pytest.raises(AcmeProblem) as refused:
            nonces.check(key, bad, when, 3600)
        assert refused.value.type is ProblemType.BAD_NONCE


def test_ari_certificate_identifier_round_trip() -> None:
    # RFC 9773 4.1's example: AKI 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4,
    # serial 00:87:65:43:21.
    aki = bytes.fromhex("69885B6B87464041E1B37B847BA0AE2CDE01C8D4")
    cert_id = codec.ari_cert_id(aki, 0x87654321)
    assert cert_id == "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"
    assert codec.parse_ari_cert_id(cert_id) == (aki, 0x87654321)
    with pytest.raises(AcmeProblem):
        codec.parse_ari_cert_id("nodot")


def test_payload_codecs() -> None:
    order = codec.new_order_request({"identifiers": [], "notAfter": "2026-04-01T00:00:00Z", "profile": "p"})
    assert order.not_after == dt.datetime(2026, 4, 1, tzinfo=dt.UTC) and order.profile == "p"
    for bad in ({"notBefore": "yesterday"}, {"notAfter": "2026-04-01T00:00:00"}, {"profile": 3}, []):
        with pytest.raises(AcmeProblem):
            codec.new_order_request(bad)
    with pytest.raises(AcmeProblem) as reason:
        codec.revocation_request({"certificate": "AAAA", "reason": "keyCompromise"})
    assert reason.value.type is ProblemType.BAD_REVOCATION_REASON
    urls = codec.Urls("https://h/acme/ca")
    assert urls.account_id("https://h/acme/ca/acct/abc") == "abc"
    assert urls.account_id("https://h/acme/other/acct/abc") is None
    assert urls.account_id("https://h/acme/ca/acct/abc/orders") is None


def test_directory_meta() -> None:
    doc = codec.directory_json(
        codec.Urls("https://h/acme/ca"),
        AcmeSettings(eab_required=True, terms_of_service="https://tos", website="https://w"),
        {"privatessl-tls-server": "TLS server"},
    )
    assert doc["meta"] == {
        "externalAccountRequired": True,
        "profiles": {"privatessl-tls-server": "TLS server"},
        "termsOfService": "https://tos",
        "website": "https://w",
    }
    assert doc["renewalInfo"] == "https://h/acme/ca/renewal-info"


def test_settings_defaults_round_trip_and_bad_keys_are_named() -> None:
    defaults = default_settings()
    checked = check_settings(
        {k: v for k, v in defaults.items() if k not in ("allowed_profiles", "default_profile")}
    )
    assert AcmeSettings.of(checked) == AcmeSettings()
    for bad, key in [
        ({"eab_required": "yes"}, "eab_required"),
        ({"allowed_ip_ranges": ["10.0.0.0/33"]}, "allowed_ip_ranges"),
        ({"http01_port": 0}, "http01_port"),
        ({"dns_resolver": "localhost:53"}, "dns_resolver"),
        ({"challenge_types": ["http-02"]}, "challenge_types"),
        ({"default_validity_days": 500}, "default_validity_days"),
        ({"terms_of_service": "ftp://x"}, "terms_of_service"),
        ({"colour": "blue"}, "colour"),
    ]:
        with pytest.raises(ValueError, match=key):
            check_settings(bad)
