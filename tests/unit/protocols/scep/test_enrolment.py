"""PKCSReq and RenewalReq at the message level (RFC 8894 3.3.1): requests built the way
real clients build them, CertReps read back and their certificates checked."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from ca_core.audit import Action
from ca_core.status.revocation import StatusChange
from ca_core.store import CertificateQuery
from protocols._shared import cms
from protocols.scep.codec import MessageType, PkiStatus
from protocols.scep.errors import FailInfo
from tests.support.pki import openssl_verify
from tests.support.scep_peer import ScepPeer, rsa_key, scep_csr, self_signed
from tests.unit.protocols.scep.conftest import STATIC, Scep


async def _chain(scep: Scep) -> tuple[bytes, list[bytes]]:
    ca = await scep.services.authority.get("issuing")
    return ca.chain[-1], list(ca.chain[:-1])


async def _refusals(scep: Scep) -> list[dict[str, object]]:
    entries = await scep.services.store.audit.entries(after_seq=0, limit=1000)
    return [e.detail for e in entries if e.action == Action.CERT_REFUSED]


@pytest.mark.parametrize(
    ("cipher", "digest"),
    [
        pytest.param(cms.AES_256_CBC, "sha256", id="aes256-sha256"),
        pytest.param(cms.AES_128_CBC, "sha1", id="aes128-sha1"),
        pytest.param(cms.AES_192_CBC, "sha512", id="aes192-sha512"),
    ],
)
async def test_pkcsreq_with_static_challenge_issues_a_certificate(
    scep: Scep, tmp_path: Path, cipher: str, digest: str
) -> None:
    peer = scep.peer(cipher=cipher, digest=digest)
    csr = scep_csr(peer.key, "printer-7.example", STATIC, dns=["printer-7.example"])
    reply = peer.read(await scep.send(peer.request(MessageType.PKCS_REQ, csr, "tx-1")))
    assert reply.status is PkiStatus.SUCCESS, reply.view.fail_text
    assert reply.view.transaction_id == "tx-1"
    assert reply.view.recipient_nonce == peer.last_nonce  # RFC 8894 3.2.1.5
    assert reply.view.sender_nonce is not None and len(reply.view.sender_nonce) == 16
    assert reply.view.signer_certificate == scep.ra  # signed by the RA
    assert reply.cipher == cipher  # answered in the requester's cipher
    assert reply.view.digest_algorithm == ("sha256" if digest == "sha1" else digest)
    cert = reply.certificate
    assert cert.subject.rfc4514_string() == "CN=printer-7.example"
    assert cert.public_key().public_numbers() == peer.key.public_key().public_numbers()
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and ku.key_encipherment  # the binding's default profile
    root, intermediates = await _chain(scep)
    openssl_verify(tmp_path, root, intermediates, reply.certificates[:1])


async def test_wrong_static_challenge_is_refused_and_audited(scep: Scep) -> None:
    peer = scep.peer()
    reply = peer.read(
        await scep.send(peer.request(MessageType.PKCS_REQ, scep_csr(peer.key, challenge="wrong!!!"), "tx-w"))
    )
    assert reply.status is PkiStatus.FAILURE
    assert reply.view.fail_info is FailInfo.BAD_REQUEST
    assert reply.view.message_data is None
    refusals = await _refusals(scep)
    assert refusals[-1]["transaction_id"] == "tx-w"
    assert refusals[-1]["code"] == "scep.badRequest"
    page = await scep.services.store.certificates.search(CertificateQuery(ca="issuing", profile=None))
    assert all(r.profile == "internal-scep-ra" for r in page.items)  # nothing issued


async def test_missing_challenge_is_refused(scep: Scep) -> None:
    peer = scep.peer()
    reply = peer.read(await scep.send(peer.request(MessageType.PKCS_REQ, scep_csr(peer.key), "tx-n")))
    assert (reply.status, reply.view.fail_info) == (PkiStatus.FAILURE, FailInfo.BAD_REQUEST)


async def test_replayed_transaction_returns_the_same_certificate(scep: Scep) -> None:
    peer = scep.peer()
    csr = scep_csr(peer.key, challenge=STATIC)
    first = peer.read(await scep.send(peer.request(MessageType.PKCS_REQ, csr, "tx-replay")))
    # A client that lost the reply sends the same request again (new nonce, same transactionID).
    second = peer.read(await scep.send(peer.request(MessageType.PKCS_REQ, csr, "tx-replay")))
    assert first.status is second.status is PkiStatus.SUCCESS
    assert first.certificate.serial_number == second.certificate.serial_number
    assert second.view.recipient_nonce == peer.last_nonce
    page = await scep.services.store.certificates.search(
        CertificateQuery(ca="issuing", text="device.example")
    )
    assert page.total == 1  # never a second certificate


async def test_same_transaction_id_with_a_new_request_is_a_new_enrolment(scep: Scep) -> None:
    peer = scep.peer()
    first = peer.read(
        await scep.send(
            peer.request(MessageType.PKCS_REQ, scep_csr(peer.key, "a.example", STATIC), "tx-same")
        )
    )
    other = scep_csr(rsa_key(), "b.example", STATIC)
    second = peer.read(await scep.send(peer.request(MessageType.PKCS_REQ, other, "tx-same")))
    assert first.status is second.status is PkiStatus.SUCCESS
    assert first.certificate.serial_number != second.certificate.serial_number
    # and the first request replayed still gets its own certificate back
    again = peer.read(
        await scep.send(
            peer.request(MessageType.PKCS_REQ, scep_csr(peer.key, "a.example", STATIC), "tx-same")
        )
    )
    assert again.certificate.serial_number == first.certificate.serial_number


async def test_a_refused_request_can_be_retried_under_its_transaction_id(scep: Scep) -> None:
    peer = scep.peer()
    bad = peer.read(
        await scep.send(peer.request(MessageType.PKCS_REQ, scep_csr(peer.key, challenge="nope-nope"), "tx-r"))
    )
    good = peer.read(
        await scep.send(peer.request(MessageType.PKCS_REQ, scep_csr(peer.key, challenge=STATIC), "tx-r"))
    )
    assert bad.status is PkiStatus.FAILURE and good.status is PkiStatus.SUCCESS


async def test_template_name_selects_an_allowed_profile(scep: Scep) -> None:
    peer = scep.peer()
    csr = scep_csr(peer.key, challenge=STATIC, template="scep-non-repudiation")
    reply = peer.read(await scep.send(peer.request(MessageType.PKCS_REQ, csr)))
    ku = reply.certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.content_commitment and not ku.digital_signature


async def test_legacy_envelopes_need_the_binding_to_allow_them(scep: Scep) -> None:
    for cipher in (cms.DES_EDE3_CBC, cms.DES_CBC):
        peer = scep.peer(cipher=cipher)
        reply = peer.read(
            await scep.send(peer.request(MessageType.PKCS_REQ, scep_csr(peer.key, challenge=STATIC)))
        )
        assert (reply.status, reply.view.fail_info) == (PkiStatus.FAILURE, FailInfo.BAD_ALG), cipher
    assert "DES3" not in (await scep.responder.capabilities(scep.binding)).decode().split()


@pytest.mark.parametrize(
    ("cipher", "answered"),
    [
        pytest.param(cms.DES_EDE3_CBC, cms.DES_EDE3_CBC, id="3des"),
        pytest.param(cms.DES_CBC, cms.DES_EDE3_CBC, id="des-answered-with-3des"),
    ],
)
async def test_legacy_binding_reads_3des_and_des_but_never_answers_des(
    scep: Scep, cipher: str, answered: str
) -> None:
    await scep.rebind(challenge="static", challenge_password=STATIC, allow_legacy_clients=True)
    peer = scep.peer(cipher=cipher, digest="sha1")
    reply = peer.read(
        await scep.send(peer.request(MessageType.PKCS_REQ, scep_csr(peer.key, challenge=STATIC)))
    )
    assert reply.status is PkiStatus.SUCCESS
    assert reply.cipher == answered
    assert "DES3" in (await scep.responder.capabilities(scep.binding)).decode().split()


async def test_ec_requester_is_refused_before_anything_is_issued(scep: Scep) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    peer = ScepPeer(key, self_signed(key, "ec.example"), scep.ra)
    reply = peer.read(
        await scep.send(peer.request(MessageType.PKCS_REQ, scep_csr(key, "ec.example", STATIC)))
    )
    assert (reply.status, reply.view.fail_info) == (PkiStatus.FAILURE, FailInfo.BAD_ALG)
    page = await scep.services.store.certificates.search(CertificateQuery(ca="issuing", text="ec.example"))
    assert page.total == 0


async def test_signing_time_far_from_now_is_bad_time(scep: Scep) -> None:
    peer = scep.peer(signing_time=scep.services.clock.now() - dt.timedelta(days=3))
    reply = peer.read(
        await scep.send(peer.request(MessageType.PKCS_REQ, scep_csr(peer.key, challenge=STATIC)))
    )
    assert (reply.status, reply.view.fail_info) == (PkiStatus.FAILURE, FailInfo.BAD_TIME)
    peer.signing_time = scep.services.clock.now() - dt.timedelta(minutes=5)
    ok = peer.read(await scep.send(peer.request(MessageType.PKCS_REQ, scep_csr(peer.key, challenge=STATIC))))
    assert ok.status is PkiStatus.SUCCESS


async def test_unsupported_message_type_is_bad_request(scep: Scep) -> None:
    peer = scep.peer()
    reply = peer.read(
        await scep.send(peer.request(MessageType.UPDATE_REQ, scep_csr(peer.key, challenge=STATIC)))
    )
    assert (reply.status, reply.view.fail_info) == (PkiStatus.FAILURE, FailInfo.BAD_REQUEST)


async def test_a_csr_that_does_not_parse_is_bad_request(scep: Scep) -> None:
    peer = scep.peer()
    reply = peer.read(await scep.send(peer.request(MessageType.PKCS_REQ, b"\x30\x03\x02\x01\x00")))
    assert (reply.status, reply.view.fail_info) == (PkiStatus.FAILURE, FailInfo.BAD_REQUEST)


# --- renewal (RFC 8894 3.3.1.2) ---------------------------------------------------------------


async def _enrolled(scep: Scep, cn: str = "device.example") -> ScepPeer:
    peer = scep.peer(cn)
    reply = peer.read(await scep.send(peer.request(MessageType.PKCS_REQ, scep_csr(peer.key, cn, STATIC))))
    assert reply.status is PkiStatus.SUCCESS
    return ScepPeer(peer.key, reply.certificates[0], scep.ra)


async def test_renewal_signed_with_the_existing_certificate(scep: Scep, tmp_path: Path) -> None:
    peer = await _enrolled(scep)
    old = x509.load_der_x509_certificate(peer.certificate)
    new_key = rsa_key()
    reply = peer.read(
        await scep.send(peer.request(MessageType.RENEWAL_REQ, scep_csr(new_key, "device.example")))
    )
    assert reply.status is PkiStatus.SUCCESS, reply.view.fail_text
    assert reply.certificate.serial_number != old.serial_number
    assert reply.certificate.public_key().public_numbers() == new_key.public_key().public_numbers()
    record = await scep.services.store.certificates.get(format(reply.certificate.serial_number, "x"))
    assert record is not None and record.renewal_of == format(old.serial_number, "x")
    root, intermediates = await _chain(scep)
    openssl_verify(tmp_path, root, intermediates, reply.certificates[:1])


async def test_renewal_with_the_same_key_csr_and_transaction_is_not_a_replay(scep: Scep) -> None:
    """scepclient renews with its old key, its old CSR and the same transactionID."""
    peer = scep.peer()
    csr = scep_csr(peer.key, challenge=STATIC)
    first = peer.read(await scep.send(peer.request(MessageType.PKCS_REQ, csr, "tx-key")))
    renewer = ScepPeer(peer.key, first.certificates[0], scep.ra)
    renewed = renewer.read(await scep.send(renewer.request(MessageType.RENEWAL_REQ, csr, "tx-key")))
    assert renewed.status is PkiStatus.SUCCESS
    assert renewed.certificate.serial_number != first.certificate.serial_number
    again = renewer.read(await scep.send(renewer.request(MessageType.RENEWAL_REQ, csr, "tx-key")))
    assert again.certificate.serial_number == renewed.certificate.serial_number


async def test_renewal_signed_with_a_foreign_certificate_is_bad_cert_id(scep: Scep) -> None:
    peer = scep.peer()  # self-signed: not a certificate of this CA
    reply = peer.read(await scep.send(peer.request(MessageType.RENEWAL_REQ, scep_csr(peer.key))))
    assert (reply.status, reply.view.fail_info) == (PkiStatus.FAILURE, FailInfo.BAD_CERT_ID)


async def test_renewal_with_a_revoked_certificate_is_refused(scep: Scep) -> None:
    peer = await _enrolled(scep)
    serial = format(x509.load_der_x509_certificate(peer.certificate).serial_number, "x")
    await scep.services.revocation.revoke(StatusChange(serial, "test"))
    reply = peer.read(await scep.send(peer.request(MessageType.RENEWAL_REQ, scep_csr(rsa_key()))))
    assert (reply.status, reply.view.fail_info) == (PkiStatus.FAILURE, FailInfo.BAD_REQUEST)
    assert "revoked" in (reply.view.fail_text or "")


async def test_renewal_may_not_change_the_subject(scep: Scep) -> None:
    peer = await _enrolled(scep)
    reply = peer.read(
        await scep.send(peer.request(MessageType.RENEWAL_REQ, scep_csr(rsa_key(), "other.example")))
    )
    assert (reply.status, reply.view.fail_info) == (PkiStatus.FAILURE, FailInfo.BAD_REQUEST)


async def test_renewal_disabled_on_the_binding(scep: Scep) -> None:
    peer = await _enrolled(scep)
    await scep.rebind(challenge="static", challenge_password=STATIC, allow_renewal=False)
    reply = peer.read(await scep.send(peer.request(MessageType.RENEWAL_REQ, scep_csr(rsa_key()))))
    assert (reply.status, reply.view.fail_info) == (PkiStatus.FAILURE, FailInfo.BAD_REQUEST)
    assert "Renewal" not in (await scep.responder.capabilities(scep.binding)).decode().split()


async def test_twin_requests_at_once_never_make_two_certificates(scep: Scep) -> None:
    """A client retrying before its first request was answered (or two replicas
    receiving the same request): one claim wins, the others are told PENDING."""
    import asyncio

    peer = scep.peer()
    csr = scep_csr(peer.key, "twin.example", STATIC)
    bodies = [peer.request(MessageType.PKCS_REQ, csr, "tx-twin") for _ in range(4)]
    replies = [peer.read(b) for b in await asyncio.gather(*(scep.send(b) for b in bodies))]
    statuses = sorted(r.status.value for r in replies)
    assert statuses.count(PkiStatus.SUCCESS.value) == 1, statuses
    assert set(statuses) <= {PkiStatus.SUCCESS.value, PkiStatus.PENDING.value}
    page = await scep.services.store.certificates.search(CertificateQuery(ca="issuing", text="twin.example"))
    assert page.total == 1
    again = peer.read(await scep.send(peer.request(MessageType.PKCS_REQ, csr, "tx-twin")))
    assert (
        again.certificate.serial_number
        == next(r for r in replies if r.certificates).certificate.serial_number
    )
