"""The CMP responder credential: made once per CA by the key backend and the CA's internal
profile, shared through the state store, renewed before it expires, and settled by
compare-and-set when two workers make one at the same time."""

from __future__ import annotations

import asyncio
import datetime as dt

from cryptography import x509

from ca_core.model import CertStatus
from protocols.cmp import responder
from protocols.cmp.responder import Responders
from tests.unit.protocols.cmp.conftest import CmpHarness


async def test_made_once_and_shared_by_workers(harness: CmpHarness) -> None:
    first = await Responders().get(harness.services, harness.issuing)
    cert = x509.load_der_x509_certificate(first.certificate)
    assert cert.subject == responder.responder_subject(harness.issuing)
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    record = await harness.services.store.certificates.get(format(cert.serial_number, "x"))
    assert (
        record is not None and record.profile == "internal-cms-signer" and record.status is CertStatus.NORMAL
    )
    other_worker = await Responders().get(harness.services, harness.issuing)
    assert other_worker.certificate == first.certificate
    assert other_worker.signer.key_ref == first.signer.key_ref


async def test_renewed_before_it_expires(harness: CmpHarness) -> None:
    first = await Responders().get(harness.services, harness.issuing)
    harness.clock.set(first.not_after - responder.RENEW_BEFORE + dt.timedelta(hours=1))
    renewed = await Responders().get(harness.services, harness.issuing)
    assert renewed.certificate != first.certificate and renewed.not_after > first.not_after
    assert (await Responders().get(harness.services, harness.issuing)).certificate == renewed.certificate


async def test_two_workers_racing_end_with_one_credential(harness: CmpHarness) -> None:
    results = await asyncio.gather(*(Responders().get(harness.services, harness.issuing) for _ in range(3)))
    assert len({r.certificate for r in results}) == 1
    kept = results[0].signer.key_ref.removeprefix("file:")
    keys = {p.name.removesuffix(".p8.pem") for p in (harness.services.keys._dir).glob("cmp-responder-*")}  # type: ignore[attr-defined]
    assert keys == {kept}  # the losers destroyed the keys they made
