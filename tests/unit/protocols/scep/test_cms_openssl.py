"""protocols/_shared/cms.py against an independent implementation, OpenSSL's `cms`:
what we sign and encrypt, OpenSSL verifies and decrypts; what OpenSSL signs and
encrypts (AES, 3DES, DES; SHA-1, SHA-256; BER streaming), we verify and decrypt."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding

from protocols._shared import cms
from protocols.scep.codec import decode_get_message
from tests.support.scep_peer import rsa_key, self_signed
from tests.support.tools import require_tool

ALL = frozenset({cms.AES_128_CBC, cms.AES_192_CBC, cms.AES_256_CBC, cms.DES_EDE3_CBC, cms.DES_CBC})


@pytest.fixture
def identity(tmp_path: Path) -> tuple[object, bytes, Path, Path]:
    require_tool("openssl")
    key = rsa_key()
    cert = self_signed(key, "cms test")
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    cert_file = tmp_path / "cert.pem"
    cert_file.write_bytes(x509.load_der_x509_certificate(cert).public_bytes(serialization.Encoding.PEM))
    return key, cert, key_file, cert_file


def _openssl(*args: str, data: bytes = b"") -> bytes:
    result = subprocess.run(["openssl", "cms", *args], input=data, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


@pytest.mark.parametrize("cipher", [cms.AES_128_CBC, cms.AES_256_CBC, cms.DES_EDE3_CBC])
def test_openssl_decrypts_and_verifies_ours(identity, tmp_path: Path, cipher: str) -> None:  # type: ignore[no-untyped-def]
    key, cert, key_file, cert_file = identity
    enveloped = cms.seal_enveloped(b"secret payload", cert, cipher, os.urandom)
    assert (
        _openssl(
            "-decrypt", "-inform", "DER", "-inkey", str(key_file), "-recip", str(cert_file), data=enveloped
        )
        == b"secret payload"
    )
    signed = cms.sign_signed(cms.key_signer(cert, key, "sha512"), enveloped, certificates=[cert])
    _openssl("-verify", "-noverify", "-inform", "DER", "-out", str(tmp_path / "out"), data=signed)
    assert (tmp_path / "out").read_bytes() == enveloped


@pytest.mark.parametrize(
    ("flag", "name"),
    [
        ("-aes128", cms.AES_128_CBC),
        ("-aes256", cms.AES_256_CBC),
        ("-des3", cms.DES_EDE3_CBC),
        ("-des", cms.DES_CBC),
    ],
)
def test_we_decrypt_openssls(identity, tmp_path: Path, flag: str, name: str) -> None:  # type: ignore[no-untyped-def]
    key, cert, _, cert_file = identity
    plain = tmp_path / "plain"
    plain.write_bytes(b"x" * 1000)
    # OpenSSL 3 keeps single DES in its legacy provider
    legacy = ("-provider", "legacy", "-provider", "default") if flag == "-des" else ()
    for stream in ((), ("-stream",)):  # -stream: BER, indefinite lengths, chunked octets
        der = _openssl(
            "-encrypt",
            *legacy,
            "-binary",
            flag,
            "-outform",
            "DER",
            "-in",
            str(plain),
            *stream,
            str(cert_file),
        )
        opened = cms.open_enveloped(
            der,
            [cms.KeyTransportRecipient(cert, lambda b: key.decrypt(b, padding.PKCS1v15()))],
            ALL,
            os.urandom,
        )
        assert opened.plaintext == b"x" * 1000 and opened.cipher == name


@pytest.mark.parametrize("md", ["sha1", "sha256", "sha512"])
def test_we_verify_openssls_signatures(identity, tmp_path: Path, md: str) -> None:  # type: ignore[no-untyped-def]
    _, _, key_file, cert_file = identity
    data = tmp_path / "data"
    data.write_bytes(b"content to sign")
    der = _openssl(
        "-sign",
        "-binary",
        "-nodetach",
        "-md",
        md,
        "-outform",
        "DER",
        "-in",
        str(data),
        "-signer",
        str(cert_file),
        "-inkey",
        str(key_file),
    )
    message = cms.parse_signed(der)
    assert message.content == b"content to sign" and message.digest_algorithm == md
    assert cms.verify_signed(message).subject.rfc4514_string() == "CN=cms test"


def test_a_wrong_key_and_a_bad_padding_look_the_same(identity) -> None:  # type: ignore[no-untyped-def]
    """RFC 3218 2.3.2: no oracle telling a failed key transport from a failed decryption."""
    _, cert, _, _ = identity
    enveloped = cms.seal_enveloped(b"payload", cert, cms.AES_128_CBC, os.urandom)
    wrong = rsa_key()
    recipient = cms.KeyTransportRecipient(cert, lambda b: wrong.decrypt(b, padding.PKCS1v15()))
    for _ in range(5):
        try:
            opened = cms.open_enveloped(enveloped, [recipient], ALL, os.urandom)
        except cms.CmsError as exc:
            assert exc.problem is cms.CmsProblem.DECRYPT_FAILED
        else:  # a random key that happens to leave valid padding (1 in 256): garbage out
            assert opened.plaintext != b"payload"


def test_get_message_decoding_is_lenient_about_alphabet_and_padding() -> None:
    data = bytes(range(256))
    import base64

    for text in (
        base64.b64encode(data).decode(),
        base64.b64encode(data).decode().replace("+", " "),
        base64.urlsafe_b64encode(data).decode().rstrip("="),
        base64.encodebytes(data).decode(),
    ):
        assert decode_get_message(text) == data
