"""Key backends: one Signer interface, the same tests on the file and PKCS#11 (SoftHSM2) backends,
plus what only one backend has (encrypted PKCS#8 files; non-extractable token keys and one
logged-in session)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from ca_core.errors import KeyBackendError, NotFound
from ca_core.keys import KeyStore, Signer
from ca_core.keys.file import FileKeyStore
from ca_core.model import KeyAlgorithm
from ca_core.x509.certificate import sign_csr
from tests.conftest import pkcs11_keystore
from tests.support.softhsm import PIN, SoftHsmToken, softhsm_module

KEYS = list(KeyAlgorithm)


@pytest.fixture(params=["file", pytest.param("pkcs11", marks=pytest.mark.pkcs11)])
def keystore(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KeyStore]:
    if request.param == "file":
        store: KeyStore = FileKeyStore(tmp_path / "keys", b"test-passphrase")
    else:
        store = pkcs11_keystore(request.getfixturevalue("softhsm_token"))
    yield store
    store.close()


def verify(signer: Signer, data: bytes, signature: bytes) -> None:
    """Check a signature with the public key alone, with the specification's hash."""
    public = signer.public_key()
    hash_ = signer.algorithm.signature_hash()
    if isinstance(public, ec.EllipticCurvePublicKey):
        public.verify(signature, data, ec.ECDSA(hash_))
    else:
        assert isinstance(public, rsa.RSAPublicKey)
        public.verify(signature, data, padding.PKCS1v15(), hash_)


@pytest.mark.parametrize("algorithm", KEYS, ids=[k.value for k in KEYS])
def test_generate_sign_load_destroy(keystore: KeyStore, algorithm: KeyAlgorithm) -> None:
    label = f"k-{algorithm.value}-{os.urandom(3).hex()}"
    signer = keystore.generate(label, algorithm)
    assert signer.algorithm is algorithm
    assert KeyAlgorithm.of_public_key(signer.public_key()) is algorithm
    verify(signer, b"tbs bytes", signer.sign(b"tbs bytes"))
    # The key object handed to cryptography's builders signs through the backend.
    csr = x509.load_der_x509_csr(sign_csr(x509.Name.from_rfc4514_string("CN=k"), signer))
    assert csr.is_signature_valid
    loaded = keystore.load(signer.key_ref)
    assert loaded.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == signer.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    verify(loaded, b"again", loaded.sign(b"again"))
    keystore.destroy(signer.key_ref)
    with pytest.raises(NotFound):
        keystore.load(signer.key_ref)


def test_rsa_key_transport_decrypts_and_ec_refuses(keystore: KeyStore) -> None:
    rsa_signer = keystore.generate(f"ra-{os.urandom(3).hex()}", KeyAlgorithm.RSA_2048)
    public = rsa_signer.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    secret = os.urandom(32)
    assert rsa_signer.decrypt(public.encrypt(secret, padding.PKCS1v15())) == secret
    ec_signer = keystore.generate(f"ec-{os.urandom(3).hex()}", KeyAlgorithm.EC_P256)
    with pytest.raises(KeyBackendError):
        ec_signer.decrypt(b"x" * 32)


def test_signatures_from_many_threads(keystore: KeyStore) -> None:
    """The executor signs from several threads; every signature must still be right."""
    signer = keystore.generate(f"mt-{os.urandom(3).hex()}", KeyAlgorithm.EC_P256)
    messages = [os.urandom(40) for _ in range(200)]
    with ThreadPoolExecutor(4) as pool:
        signatures = list(pool.map(signer.sign, messages))
    for message, signature in zip(messages, signatures, strict=True):
        verify(signer, message, signature)


# --- file backend ------------------------------------------------------------------------


def test_file_keys_are_encrypted_pkcs8_readable_only_by_the_owner(tmp_path: Path) -> None:
    store = FileKeyStore(tmp_path / "keys", b"s3cret passphrase")
    store.generate("root", KeyAlgorithm.EC_P384)
    path = tmp_path / "keys" / "root.p8.pem"
    pem = path.read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    key = serialization.load_pem_private_key(pem, password=b"s3cret passphrase")
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1"
    with pytest.raises(KeyBackendError, match="passphrase"):
        FileKeyStore(tmp_path / "keys", b"wrong").load("file:root")
    with pytest.raises(KeyBackendError):
        FileKeyStore(tmp_path / "other", b"")
    with pytest.raises(KeyBackendError, match="exists"):
        store.generate("root", KeyAlgorithm.EC_P256)
    for bad in ("../escape", "a/b", "", ".hidden"):
        with pytest.raises(KeyBackendError):
            store.generate(bad, KeyAlgorithm.EC_P256)


# --- PKCS#11 backend -----------------------------------------------------------------------


def _token_objects(store: Any, key_ref: str) -> tuple[Any, Any]:
    import pkcs11

    key_id = bytes.fromhex(key_ref.removeprefix("pkcs11:"))
    token = store._token  # the keystore's own logged-in session
    with token.session() as session:
        private = session.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY, id=key_id)
        public = session.get_key(object_class=pkcs11.ObjectClass.PUBLIC_KEY, id=key_id)
        return private, public


@pytest.mark.pkcs11
@pytest.mark.parametrize("algorithm", [KeyAlgorithm.EC_P256, KeyAlgorithm.RSA_2048], ids=["ec", "rsa"])
def test_token_keys_are_sensitive_and_never_extractable(
    softhsm_token: SoftHsmToken, algorithm: KeyAlgorithm
) -> None:
    import pkcs11
    from pkcs11 import Attribute, KeyType, Mechanism

    store = pkcs11_keystore(softhsm_token)
    try:
        signer = store.generate(f"hsm-{os.urandom(3).hex()}", algorithm)
        private, _public = _token_objects(store, signer.key_ref)
        with store._token.session() as session:  # type: ignore[attr-defined]
            assert private[Attribute.SENSITIVE] is True
            assert private[Attribute.EXTRACTABLE] is False
            assert private[Attribute.ALWAYS_SENSITIVE] is True
            assert private[Attribute.NEVER_EXTRACTABLE] is True
            assert private[Attribute.LOCAL] is True  # generated on the token, not imported
            assert private[Attribute.TOKEN] is True and private[Attribute.PRIVATE] is True
            secret = Attribute.VALUE if algorithm.is_ec else Attribute.PRIVATE_EXPONENT
            with pytest.raises(pkcs11.AttributeSensitive):
                private[secret]
            # Not even wrapped under another key does it leave the token.
            wrapping = session.generate_key(KeyType.AES, 256, store=False, template={Attribute.WRAP: True})
            with pytest.raises((pkcs11.KeyUnextractable, pkcs11.KeyNotWrappable, pkcs11.MechanismInvalid)):
                wrapping.wrap_key(private, mechanism=Mechanism.AES_KEY_WRAP_PAD)
        # The object cryptography's builders see cannot be serialised either.
        proxy = signer.private_key()
        with pytest.raises(KeyBackendError):
            proxy.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        with pytest.raises(KeyBackendError):
            proxy.private_numbers()
    finally:
        store.close()


class CountingToken:
    """Wraps python-pkcs11's Token to count sessions opened (each one a C_Login with the PIN)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.opened = 0

    def open(self, **kwargs: Any) -> Any:
        self.opened += 1
        return self.inner.open(**kwargs)


@pytest.mark.pkcs11
def test_one_logged_in_session_serves_every_signature(softhsm_token: SoftHsmToken) -> None:
    from ca_core.keys.pkcs11 import Pkcs11KeyStore, Pkcs11Token

    module = softhsm_module()
    assert module is not None
    maker = pkcs11_keystore(softhsm_token)
    key_ref = maker.generate(f"sess-{os.urandom(3).hex()}", KeyAlgorithm.EC_P256).key_ref
    maker.close()

    token = Pkcs11Token(module, softhsm_token.label, PIN)
    counting = CountingToken(token._token)
    token._token = counting
    store = Pkcs11KeyStore(token)
    try:
        signer = store.load(key_ref)
        sessions = set()
        for i in range(100):
            verify(signer, b"m%d" % i, signer.sign(b"m%d" % i))
            with token.session() as session:
                sessions.add(id(session))
        rsa_signer = store.generate(f"sess-rsa-{os.urandom(3).hex()}", KeyAlgorithm.RSA_2048)
        for i in range(20):
            rsa_signer.sign(b"r%d" % i)
        assert counting.opened == 1  # one open (and login) for 120 signatures and a key generation
        assert len(sessions) == 1
    finally:
        store.close()


@pytest.mark.pkcs11
def test_wrong_pin_and_missing_token_are_key_backend_errors(softhsm_token: SoftHsmToken) -> None:
    import pkcs11

    from ca_core.keys.pkcs11 import Pkcs11KeyStore, Pkcs11Token

    module = softhsm_module()
    assert module is not None

    # A PKCS#11 login belongs to the whole application, so whether the real token refuses a
    # wrong PIN depends on the other sessions this test process has open; the token's answer
    # to a wrong PIN is therefore played by a stand-in, and ceg's handling of it checked.
    class RefusingToken:
        def open(self, **kwargs: Any) -> Any:
            raise pkcs11.PinIncorrect()

    token = Pkcs11Token(module, softhsm_token.label, "0000")
    token._token = RefusingToken()
    with pytest.raises(KeyBackendError, match="wrong PIN"):
        Pkcs11KeyStore(token).load("pkcs11:00")
    with pytest.raises(KeyBackendError, match="no-such-token"):
        Pkcs11KeyStore(Pkcs11Token(module, "no-such-token", PIN)).load("pkcs11:00")
    with pytest.raises(KeyBackendError):
        Pkcs11KeyStore(Pkcs11Token(module, softhsm_token.label, PIN)).load("file:root")


def test_hash_pairs_match_the_signature_algorithms() -> None:
    assert isinstance(KeyAlgorithm.RSA_4096.signature_hash(), hashes.SHA512)
    assert isinstance(KeyAlgorithm.EC_P521.signature_hash(), hashes.SHA512)


@pytest.mark.pkcs11
def test_fast_token_keys_sign_inline_unless_the_token_is_busy(
    softhsm_token: SoftHsmToken, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys are calibrated at load: with the bounds lowered, RSA-3072 on SoftHSM is slower
    than both; with them raised (a loaded test machine can slow any probe), EC and RSA-2048
    sign inline (SoftHSM's RSA is CPU work in this process)."""
    import ca_core.keys.pkcs11 as backend

    store = pkcs11_keystore(softhsm_token)
    try:
        monkeypatch.setattr(backend, "INLINE_SIGN_SECONDS", 1e-6)
        monkeypatch.setattr(backend, "INLINE_CPU_SIGN_SECONDS", 2e-6)
        rsa_signer = store.generate(f"slow-{os.urandom(3).hex()}", KeyAlgorithm.RSA_3072)
        assert rsa_signer.blocking
        monkeypatch.setattr(backend, "INLINE_CPU_SIGN_SECONDS", 1.0)
        monkeypatch.setattr(backend, "_CPU_BOUND_SHARE", 0.0)  # whatever else the machine runs
        assert not store.generate(f"cpu-{os.urandom(3).hex()}", KeyAlgorithm.RSA_2048).blocking
        monkeypatch.setattr(backend, "INLINE_SIGN_SECONDS", 1.0)
        ec_signer = store.generate(f"fast-{os.urandom(3).hex()}", KeyAlgorithm.EC_P256)
        assert not ec_signer.blocking
        with store._token.session():  # type: ignore[attr-defined]  # another thread's long operation
            assert ec_signer.blocking
        assert not ec_signer.blocking
    finally:
        store.close()


def test_which_signatures_are_made_inline() -> None:
    """Fast ones; slower ones only while they are this process's CPU work and short (a
    network HSM's wait, or a multi-millisecond signature, goes to a thread)."""
    from ca_core.keys.pkcs11 import signs_inline

    assert signs_inline(100e-6, 0.0)  # fast, whatever it is
    assert signs_inline(460e-6, 450e-6)  # SoftHSM RSA-2048: CPU-bound, under 1 ms
    assert not signs_inline(460e-6, 20e-6)  # as long, but waiting on a network HSM
    assert not signs_inline(3e-3, 3e-3)  # RSA-4096 in software: too long to hold the loop
