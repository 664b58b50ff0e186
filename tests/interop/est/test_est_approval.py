"""Manual approval (RFC 7030 4.2.3): 202 with Retry-After while an officer decides, the
certificate (or a refusal) on the client's next attempt with the same CSR."""

from __future__ import annotations

import pytest

from ca_core.approvals import ApprovalState
from tests.interop.est.conftest import PASSWORD, EstClient

pytestmark = pytest.mark.interop


async def test_request_waits_for_an_officer_then_the_retry_gets_the_certificate(est: EstClient) -> None:
    await est.configure(manual_approval=True, retry_after_seconds=7)
    approvals = est.live.services.approvals
    _, csr = await est.csr("waiting-device", sans=("waiting.example",))
    for _ in range(2):  # a retry before the decision is still pending, and not parked twice
        reply = await est.curl("simpleenroll", csr, basic=(est.username, PASSWORD))
        assert reply.status == 202, reply.text
        assert reply.headers["retry-after"] == "7"
    (pending,) = await approvals.list(ApprovalState.PENDING, ca="issuing")
    assert pending.protocol == "est" and pending.subject == "CN=waiting-device"
    assert pending.profile == "est-digital-signature"
    issued = await approvals.approve(pending.id, "officer:carol")
    reply = await est.curl("simpleenroll", csr, basic=(est.username, PASSWORD))
    assert reply.status == 200, reply.text
    cert = await est.write_certificate(reply.body)
    await est.verify(cert)
    assert (await est.x509_text(cert, "-serial")).strip().split("=")[1].lower().lstrip(
        "0"
    ) == issued.serial_hex
    # Delivered once: sending it yet again is a new request for the officer.
    assert (await est.curl("simpleenroll", csr, basic=(est.username, PASSWORD))).status == 202
    assert len(await approvals.list(ApprovalState.PENDING, ca="issuing")) == 1


async def test_rejected_request_is_refused_on_the_retry(est: EstClient) -> None:
    await est.configure(manual_approval=True)
    approvals = est.live.services.approvals
    _, csr = await est.csr("suspicious")
    assert (await est.curl("simpleenroll", csr, basic=(est.username, PASSWORD))).status == 202
    (pending,) = await approvals.list(ApprovalState.PENDING)
    await approvals.reject(pending.id, "officer:dave", "unknown device serial number")
    reply = await est.curl("simpleenroll", csr, basic=(est.username, PASSWORD))
    assert reply.status == 403
    assert "rejected by an officer: unknown device serial number" in reply.text


async def test_reenroll_waits_too(est: EstClient) -> None:
    key, csr = await est.csr("renewing")
    cert = await est.write_certificate(
        (await est.curl("simpleenroll", csr, basic=(est.username, PASSWORD))).body
    )
    await est.configure(manual_approval=True)
    assert (await est.curl("simplereenroll", csr, client=(cert, key))).status == 202
    (pending,) = await est.live.services.approvals.list(ApprovalState.PENDING)
    assert pending.request.renewal_of is not None
    await est.live.services.approvals.approve(pending.id, "officer:erin")
    reply = await est.curl("simplereenroll", csr, client=(cert, key))
    assert reply.status == 200, reply.text
    renewed = await est.write_certificate(reply.body)
    assert "CN = renewing" in await est.x509_text(renewed, "-subject")


async def test_only_the_client_that_asked_collects(est: EstClient) -> None:
    await est.configure(manual_approval=True)
    await est.live.services.credentials.create_basic("intruder", {"protocol": "est"}, PASSWORD)
    _, csr = await est.csr("mine")
    assert (await est.curl("simpleenroll", csr, basic=(est.username, PASSWORD))).status == 202
    (pending,) = await est.live.services.approvals.list(ApprovalState.PENDING)
    await est.live.services.approvals.approve(pending.id, "officer:frank")
    stolen = await est.curl("simpleenroll", csr, basic=("intruder", PASSWORD))
    assert stolen.status == 403 and "another identity" in stolen.text
    assert (await est.curl("simpleenroll", csr, basic=(est.username, PASSWORD))).status == 200


async def test_serverkeygen_is_not_offered_where_requests_wait(est: EstClient) -> None:
    await est.configure(manual_approval=True)
    _, csr = await est.csr()
    reply = await est.curl("serverkeygen", csr, basic=(est.username, PASSWORD))
    assert reply.status == 501
    assert "never stored" in reply.text or "wait for approval" in reply.text
