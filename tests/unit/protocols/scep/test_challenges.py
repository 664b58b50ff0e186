"""challengePassword modes per binding (RFC 8894 2.3): none, static (stored hashed),
dynamic one-time challenges (NDES-like), and manual approval with CertPoll."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509

from ca_core.approvals import ApprovalState
from ca_core.clock import ManualClock
from ca_core.errors import BadRequest, NotFound
from ca_core.store import CertificateQuery
from protocols.scep import create_challenge
from protocols.scep.codec import MessageType, PkiStatus, encode_issuer_and_subject
from protocols.scep.errors import FailInfo
from tests.support.scep_peer import rsa_key, scep_csr
from tests.unit.protocols.scep.conftest import STATIC, Scep


async def test_static_challenge_is_stored_as_a_hash_only(scep: Scep) -> None:
    record = await scep.services.store.bindings.get("scep", "issuing")
    assert record is not None
    text = repr(record.settings)
    assert STATIC not in text and "challenge_password" not in text
    assert record.settings["challenge_hash"].startswith("scrypt$")


async def test_no_challenge_mode_enrols_without_one(scep: Scep) -> None:
    await scep.rebind(challenge="none")
    peer = scep.peer()
    reply = peer.read(await scep.send(peer.request(MessageType.PKCS_REQ, scep_csr(peer.key))))
    assert reply.status is PkiStatus.SUCCESS


async def test_dynamic_challenge_is_consumed_on_first_use(scep: Scep) -> None:
    await scep.rebind(challenge="dynamic")
    issued = await create_challenge(scep.services, "issuing", ttl_seconds=600, actor="test")
    assert len(issued.challenge) == 32
    first = scep.peer()
    ok = first.read(
        await scep.send(first.request(MessageType.PKCS_REQ, scep_csr(first.key, challenge=issued.challenge)))
    )
    assert ok.status is PkiStatus.SUCCESS
    second = scep.peer()
    again = second.read(
        await scep.send(
            second.request(MessageType.PKCS_REQ, scep_csr(second.key, challenge=issued.challenge))
        )
    )
    assert (again.status, again.view.fail_info) == (PkiStatus.FAILURE, FailInfo.BAD_REQUEST)
    assert "used" in (again.view.fail_text or "")


async def test_replay_of_a_request_whose_challenge_was_consumed_still_gets_its_certificate(
    scep: Scep,
) -> None:
    await scep.rebind(challenge="dynamic")
    issued = await create_challenge(scep.services, "issuing")
    peer = scep.peer()
    csr = scep_csr(peer.key, challenge=issued.challenge)
    first = peer.read(await scep.send(peer.request(MessageType.PKCS_REQ, csr, "tx-d")))
    second = peer.read(await scep.send(peer.request(MessageType.PKCS_REQ, csr, "tx-d")))
    assert first.certificate.serial_number == second.certificate.serial_number


async def test_a_worker_stopping_between_certificate_and_outcome_issues_nothing_twice(
    scep: Scep, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The certificate is stored, then the worker dies before recording the outcome (its
    claim is left behind, the challenge spent). Once the claim counts as abandoned, the
    client's retry gets that certificate, found by the CA core's request key."""
    from protocols.scep.core import ISSUING_STALE_AFTER

    await scep.rebind(challenge="dynamic")
    issued = await create_challenge(scep.services, "issuing", ttl_seconds=3600)
    peer = scep.peer("crash.example")
    csr = scep_csr(peer.key, "crash.example", issued.challenge)
    transactions = scep.responder._transactions  # type: ignore[attr-defined]
    record = transactions.record

    async def dies_before_recording(*args: object, **kwargs: object) -> None:
        raise RuntimeError("worker stopped")

    monkeypatch.setattr(transactions, "record", dies_before_recording)
    with pytest.raises(RuntimeError):
        await scep.send(peer.request(MessageType.PKCS_REQ, csr, "tx-crash"))
    monkeypatch.setattr(transactions, "record", record)
    page = await scep.services.store.certificates.search(CertificateQuery(ca="issuing", text="crash.example"))
    assert page.total == 1, "stored before the worker stopped"

    busy = peer.read(await scep.send(peer.request(MessageType.PKCS_REQ, csr, "tx-crash")))
    assert busy.status is PkiStatus.PENDING, "the claim still looks alive"
    clock.advance(ISSUING_STALE_AFTER + dt.timedelta(seconds=1))
    retry = peer.read(await scep.send(peer.request(MessageType.PKCS_REQ, csr, "tx-crash")))
    assert retry.status is PkiStatus.SUCCESS, retry.view.fail_text
    assert format(retry.certificate.serial_number, "x") == page.items[0].serial
    page = await scep.services.store.certificates.search(CertificateQuery(ca="issuing", text="crash.example"))
    assert page.total == 1, "never a second certificate"
    again = peer.read(await scep.send(peer.request(MessageType.PKCS_REQ, csr, "tx-crash")))
    assert again.certificate.serial_number == retry.certificate.serial_number


async def test_dynamic_challenge_expires(scep: Scep, clock: ManualClock) -> None:
    await scep.rebind(challenge="dynamic")
    issued = await create_challenge(scep.services, "issuing", ttl_seconds=60)
    clock.advance(dt.timedelta(seconds=61))
    peer = scep.peer()
    reply = peer.read(
        await scep.send(peer.request(MessageType.PKCS_REQ, scep_csr(peer.key, challenge=issued.challenge)))
    )
    assert (reply.status, reply.view.fail_info) == (PkiStatus.FAILURE, FailInfo.BAD_REQUEST)


async def test_dynamic_challenge_bound_to_a_subject(scep: Scep) -> None:
    await scep.rebind(challenge="dynamic")
    issued = await create_challenge(scep.services, "issuing", subject="CN=router-1.example")
    intruder = scep.peer("intruder.example")
    refused = intruder.read(
        await scep.send(
            intruder.request(
                MessageType.PKCS_REQ, scep_csr(intruder.key, "intruder.example", issued.challenge)
            )
        )
    )
    assert (refused.status, refused.view.fail_info) == (PkiStatus.FAILURE, FailInfo.BAD_REQUEST)
    # not consumed by the wrong subject: the router can still enrol with it
    router = scep.peer("router-1.example")
    reply = router.read(
        await scep.send(
            router.request(MessageType.PKCS_REQ, scep_csr(router.key, "router-1.example", issued.challenge))
        )
    )
    assert reply.status is PkiStatus.SUCCESS


async def test_a_challenge_of_one_ca_is_nothing_at_another(scep: Scep) -> None:
    from tests.support.hierarchy import make_hierarchy
    from tests.unit.protocols.scep.conftest import bind

    await make_hierarchy(scep.services, root_id="root2", issuing_id="issuing2")
    await bind(scep.services, "issuing2", challenge="dynamic")
    await scep.rebind(challenge="dynamic")
    other = await create_challenge(scep.services, "issuing2")
    peer = scep.peer()
    reply = peer.read(
        await scep.send(peer.request(MessageType.PKCS_REQ, scep_csr(peer.key, challenge=other.challenge)))
    )
    assert reply.status is PkiStatus.FAILURE


async def test_create_challenge_refuses_bindings_without_dynamic_challenges(scep: Scep) -> None:
    with pytest.raises(BadRequest, match="static"):
        await create_challenge(scep.services, "issuing")
    with pytest.raises(NotFound):
        await create_challenge(scep.services, "nope")
    await scep.rebind(challenge="dynamic")
    with pytest.raises(BadRequest, match="ttl"):
        await create_challenge(scep.services, "issuing", ttl_seconds=5)
    entries = await scep.services.store.audit.entries(after_seq=0, limit=1000)
    assert not [e for e in entries if e.action == "scep.challenge_created"]
    await create_challenge(scep.services, "issuing", actor="cli:alice")
    entries = await scep.services.store.audit.entries(after_seq=0, limit=1000)
    created = [e for e in entries if e.action == "scep.challenge_created"]
    assert created and created[-1].actor == "cli:alice"


# --- manual approval: PENDING, CertPoll (RFC 8894 3.3.3) -----------------------------------------


async def test_manual_approval_pends_until_an_officer_approves(scep: Scep) -> None:
    await scep.rebind(challenge="static", challenge_password=STATIC, approval="manual")
    peer = scep.peer("laptop.example")
    csr = scep_csr(peer.key, "laptop.example", STATIC)
    pending = peer.read(await scep.send(peer.request(MessageType.PKCS_REQ, csr, "tx-m")))
    assert pending.status is PkiStatus.PENDING and pending.view.message_data is None
    ca = await scep.services.authority.get("issuing")
    assert ca.certificate is not None
    poll_body = encode_issuer_and_subject(
        ca.certificate.subject, x509.Name.from_rfc4514_string("CN=laptop.example")
    )
    still = peer.read(await scep.send(peer.request(MessageType.CERT_POLL, poll_body, "tx-m")))
    assert still.status is PkiStatus.PENDING
    # the client may also resend its PKCSReq instead of polling
    resent = peer.read(await scep.send(peer.request(MessageType.PKCS_REQ, csr, "tx-m")))
    assert resent.status is PkiStatus.PENDING
    waiting = await scep.services.approvals.list(ApprovalState.PENDING, ca="issuing")
    assert len(waiting) == 1
    assert "challengePassword" not in repr(waiting[0].request) and waiting[0].request.csr is None
    issued = await scep.services.approvals.approve(waiting[0].id, "officer")
    done = peer.read(await scep.send(peer.request(MessageType.CERT_POLL, poll_body, "tx-m")))
    assert done.status is PkiStatus.SUCCESS
    assert done.certificate.serial_number == issued.serial
    again = peer.read(await scep.send(peer.request(MessageType.CERT_POLL, poll_body, "tx-m")))
    assert again.certificate.serial_number == issued.serial


async def test_manual_approval_rejected_is_a_failure(scep: Scep) -> None:
    await scep.rebind(challenge="none", approval="manual")
    peer = scep.peer()
    await scep.send(peer.request(MessageType.PKCS_REQ, scep_csr(peer.key), "tx-rej"))
    waiting = await scep.services.approvals.list(ApprovalState.PENDING, ca="issuing")
    await scep.services.approvals.reject(waiting[0].id, "officer", "unknown device")
    body = encode_issuer_and_subject(x509.Name([]), x509.Name([]))
    reply = peer.read(await scep.send(peer.request(MessageType.CERT_POLL, body, "tx-rej")))
    assert (reply.status, reply.view.fail_info) == (PkiStatus.FAILURE, FailInfo.BAD_REQUEST)
    assert reply.view.fail_text == "unknown device"


async def test_a_different_request_under_a_pending_transaction_is_refused(scep: Scep) -> None:
    await scep.rebind(challenge="none", approval="manual")
    peer = scep.peer()
    await scep.send(peer.request(MessageType.PKCS_REQ, scep_csr(peer.key), "tx-busy"))
    other = peer.read(await scep.send(peer.request(MessageType.PKCS_REQ, scep_csr(rsa_key()), "tx-busy")))
    assert (other.status, other.view.fail_info) == (PkiStatus.FAILURE, FailInfo.BAD_REQUEST)


async def test_cert_poll_for_an_unknown_transaction_is_bad_cert_id(scep: Scep) -> None:
    peer = scep.peer()
    body = encode_issuer_and_subject(x509.Name([]), x509.Name([]))
    reply = peer.read(await scep.send(peer.request(MessageType.CERT_POLL, body, "tx-none")))
    assert (reply.status, reply.view.fail_info) == (PkiStatus.FAILURE, FailInfo.BAD_CERT_ID)
