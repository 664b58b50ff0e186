"""SigningBatcher: signatures asked for in one loop turn are made in one pass."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ca_core.keys import Signer
from ca_core.keys.file import FileKeyStore
from ca_core.model import KeyAlgorithm
from ca_core.x509.certificate import CertificateSpec
from ca_core.x509.signing_batch import SigningBatcher

NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "batch.example")])


def spec(serial: int) -> CertificateSpec:
    now = dt.datetime.now(dt.UTC)
    return CertificateSpec(
        NAME,
        NAME,
        ec.generate_private_key(ec.SECP256R1()).public_key(),
        serial,
        now,
        now + dt.timedelta(days=1),
        [],
    )


class Recording:
    """The same key, declared blocking or not, noting in `events` when it is asked to sign."""

    def __init__(self, inner: Signer, blocking: bool, events: list[str]) -> None:
        self._inner = inner
        self.blocking = blocking
        self.events = events
        self.algorithm = inner.algorithm
        self.key_ref = inner.key_ref

    def public_key(self) -> Any:
        return self._inner.public_key()

    def private_key(self) -> Any:
        self.events.append("sign")
        return self._inner.private_key()

    def sign(self, data: bytes) -> bytes:
        return self._inner.sign(data)

    def decrypt(self, ciphertext: bytes) -> bytes:
        raise NotImplementedError


class CountingExecutor(Executor):
    def __init__(self) -> None:
        self.submitted = 0
        self._pool = ThreadPoolExecutor(1)

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.submitted += 1
        return self._pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._pool.shutdown(wait, cancel_futures=cancel_futures)


@pytest.fixture
def signer(tmp_path: Path) -> Signer:
    return FileKeyStore(tmp_path / "keys", b"pass").generate("batch", KeyAlgorithm.EC_P256)


def check_signed(der: bytes, signer: Signer, serial: int) -> None:
    cert = x509.load_der_x509_certificate(der)
    assert cert.serial_number == serial
    key = signer.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))


async def test_inline_signatures_asked_for_together_are_made_back_to_back(signer: Signer) -> None:
    events: list[str] = []
    batcher = SigningBatcher(None)
    inline = Recording(signer, blocking=False, events=events)

    async def issue(serial: int) -> bytes:
        events.append("asked")
        der = await batcher.sign(spec(serial), inline)
        events.append("resumed")
        return der

    ders = await asyncio.gather(*(issue(n) for n in range(1, 6)))
    # All five signatures in one pass, after every request had joined and before any resumed.
    assert events == ["asked"] * 5 + ["sign"] * 5 + ["resumed"] * 5
    for n, der in enumerate(ders, start=1):
        check_signed(der, signer, n)


async def test_requests_in_later_turns_get_later_batches(signer: Signer) -> None:
    events: list[str] = []
    batcher = SigningBatcher(None)
    inline = Recording(signer, blocking=False, events=events)
    check_signed(await batcher.sign(spec(1), inline), signer, 1)
    check_signed(await batcher.sign(spec(2), inline), signer, 2)
    assert events == ["sign", "sign"]


async def test_a_blocking_signer_signs_each_certificate_in_the_executor(signer: Signer) -> None:
    # Not batched: each signature is its own executor task, so slow ones overlap.
    executor = CountingExecutor()
    batcher = SigningBatcher(executor)
    slow = Recording(signer, blocking=True, events=[])
    try:
        ders = await asyncio.gather(*(batcher.sign(spec(n), slow) for n in range(1, 5)))
    finally:
        executor.shutdown()
    assert executor.submitted == 4
    for n, der in enumerate(ders, start=1):
        check_signed(der, signer, n)


async def test_one_failing_certificate_fails_alone_in_its_batch(signer: Signer) -> None:
    batcher = SigningBatcher(None)
    broken = dataclasses.replace(spec(2), public_key=None)  # type: ignore[arg-type]
    results = await asyncio.gather(
        batcher.sign(spec(1), signer),
        batcher.sign(broken, signer),
        batcher.sign(spec(3), signer),
        return_exceptions=True,
    )
    assert isinstance(results[1], ValueError)
    check_signed(results[0], signer, 1)  # type: ignore[arg-type]
    check_signed(results[2], signer, 3)  # type: ignore[arg-type]


async def test_a_cancelled_caller_leaves_the_others_their_certificates(signer: Signer) -> None:
    batcher = SigningBatcher(None)
    first = asyncio.ensure_future(batcher.sign(spec(1), signer))
    second = asyncio.ensure_future(batcher.sign(spec(2), signer))
    await asyncio.sleep(0)  # both have joined the batch
    first.cancel()
    der = await second
    assert x509.load_der_x509_certificate(der).serial_number == 2
    with pytest.raises(asyncio.CancelledError):
        await first
