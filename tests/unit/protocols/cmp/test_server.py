"""Message-level behaviour of the CMP server: every operation, and every refusal with the
failInfo the client must see. Bytes in, bytes out (CmpServer.handle), no HTTP."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from ca_core.keys.file import generate_private_key
from ca_core.model import CertStatus, KeyAlgorithm, RevocationReason
from protocols.cmp import codec, confirmation, core, oids
from protocols.cmp.codec import CertReqBody, ErrorBody, GenBody, PkiConfBody, PollRepBody, asn1
from tests.support import cmp_client
from tests.support.cmp_client import (
    MacCredential,
    SignatureCredential,
    cert_conf,
    cert_request,
    fail_info,
    issued_certificate,
)
from tests.unit.protocols.cmp.conftest import CmpHarness


def new_key() -> object:
    return generate_private_key(KeyAlgorithm.EC_P256)


def ir(key: object, subject: str = "CN=device.example", **kwargs: object) -> CertReqBody:
    return CertReqBody("ir", (cert_request(key, subject, **kwargs),))  # type: ignore[arg-type]


async def status_of(h: CmpHarness, certificate: bytes) -> CertStatus:
    serial = format(x509.load_der_x509_certificate(certificate).serial_number, "x")
    record = await h.services.store.certificates.get(serial)
    assert record is not None
    return record.status


# --- the successful operations ------------------------------------------------------------------


async def test_ir_with_shared_secret_issues_and_confirms(harness: CmpHarness) -> None:
    session = harness.session()
    key = new_key()
    sans = (x509.DNSName("device.example"),)
    answer = await session.exchange(ir(key, "CN=device.example", sans=sans))
    assert answer.header.pvno == 2 and session.mac_valid(answer)
    assert answer.header.recip_nonce is not None and answer.header.transaction_id == session.transaction_id
    body = answer.body
    assert isinstance(body, codec.CertRepBody) and body.kind == "ip"
    assert body.responses[0].status.status == "accepted"
    chain = await harness.chain()
    assert body.ca_pubs == (chain[-1],)  # the root, for a MAC-protected ir
    assert answer.extra_certs == chain[:-1]  # the chain without the root
    assert answer.header.info(oids.OID_IT_CONFIRM_WAIT_TIME) is not None
    certificate = issued_certificate(answer)
    cert = x509.load_der_x509_certificate(certificate)
    assert cert.subject.rfc4514_string() == "CN=device.example"
    assert cert.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value == x509.SubjectAlternativeName(list(sans))
    assert cert.public_key() == key.public_key()  # type: ignore[attr-defined]
    record = await harness.services.store.certificates.get(format(cert.serial_number, "x"))
    assert record is not None and record.profile == core.PROFILES[0]
    assert record.requester["principal"] == "ref:device-ref"
    done = await session.exchange(cert_conf(certificate))
    assert isinstance(done.body, PkiConfBody) and session.mac_valid(done)
    doc = await harness.services.store.state.get(core.TX_NAMESPACE, f"issuing/{session.transaction_id.hex()}")
    assert doc is not None and doc.document["state"] == "confirmed"


async def test_implicit_confirmation_when_asked_and_allowed(harness: CmpHarness) -> None:
    session = harness.session()
    answer = await session.exchange(ir(new_key()), session.header(implicit_confirm=True))
    issued_certificate(answer)
    assert answer.header.implicit_confirm
    doc = await harness.services.store.state.get(core.TX_NAMESPACE, f"issuing/{session.transaction_id.hex()}")
    assert doc is not None and doc.document["state"] == "confirmed" and doc.lookup is None


async def test_implicit_confirmation_not_granted_when_the_binding_forbids_it(harness: CmpHarness) -> None:
    harness.settings = {"implicit_confirm": False}
    session = harness.session()
    answer = await session.exchange(ir(new_key()), session.header(implicit_confirm=True))
    issued_certificate(answer)
    assert not answer.header.implicit_confirm
    assert answer.header.info(oids.OID_IT_CONFIRM_WAIT_TIME) is not None


async def test_cert_profile_general_info_chooses_among_allowed_profiles(harness: CmpHarness) -> None:
    session = harness.session()
    answer = await session.exchange(ir(new_key()), session.header(profile="cmp-non-repudiation"))
    cert = x509.load_der_x509_certificate(issued_certificate(answer))
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.content_commitment and not usage.digital_signature
    harness.allowed_profiles = ("cmp-digital-signature",)
    session = harness.session()
    answer = await session.exchange(ir(new_key()), session.header(profile="cmp-non-repudiation"))
    assert fail_info(answer) == {"badCertTemplate"}


async def test_pbmac1_protection(harness: CmpHarness) -> None:
    session = harness.session(MacCredential("device-ref", b"open sesame", pbmac1=True))
    answer = await session.exchange(ir(new_key()))
    assert isinstance(answer.header.protection_alg, codec.Pbmac1) and session.mac_valid(answer)
    issued_certificate(answer)


async def test_cmp2021_is_answered_in_kind_and_hash_alg_is_honoured(harness: CmpHarness) -> None:
    session = harness.session(pvno=3)
    answer = await session.exchange(ir(new_key()))
    assert answer.header.pvno == 3
    certificate = issued_certificate(answer)
    done = await session.exchange(cert_conf(certificate, hash_alg="sha512"))
    assert isinstance(done.body, PkiConfBody)


async def test_cr_and_kur_signed_with_an_issued_certificate(harness: CmpHarness) -> None:
    device = await harness.enroll(subject="CN=old.example", sans=(x509.DNSName("old.example"),))
    responder = await harness.responder_certificate()
    session = harness.session(device)
    answer = await session.exchange(CertReqBody("cr", (cert_request(new_key(), "CN=second.example"),)))
    assert answer.body.kind == "cp" and cmp_client.signed_by(answer, responder)
    assert answer.extra_certs[0] == responder
    await session.exchange(cert_conf(issued_certificate(answer)))

    session = harness.session(device)
    request = cert_request(new_key(), None, old_cert_id=cmp_client.old_cert_id(device.certificate))
    answer = await session.exchange(CertReqBody("kur", (request,)))
    assert answer.body.kind == "kup"
    updated = x509.load_der_x509_certificate(issued_certificate(answer))
    # What the template left out comes from the certificate being updated.
    assert updated.subject.rfc4514_string() == "CN=old.example"
    assert (
        x509.DNSName("old.example")
        in updated.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    )
    record = await harness.services.store.certificates.get(format(updated.serial_number, "x"))
    old_serial = format(x509.load_der_x509_certificate(device.certificate).serial_number, "x")
    assert record is not None and record.renewal_of == old_serial


async def test_p10cr_answers_with_cert_req_id_minus_one(harness: CmpHarness) -> None:
    from tests.support.pki import make_csr

    session = harness.session()
    answer = await session.exchange(codec.P10crBody(make_csr(cn="p10.example")))
    assert answer.body.kind == "cp"
    assert isinstance(answer.body, codec.CertRepBody) and answer.body.responses[0].cert_req_id == -1
    certificate = issued_certificate(answer)
    done = await session.exchange(cert_conf(certificate, cert_req_id=-1))
    assert isinstance(done.body, PkiConfBody)


async def test_rr_by_the_certificate_itself(harness: CmpHarness) -> None:
    device = await harness.enroll()
    answer = await harness.session(device).exchange(cmp_client.revocation(device.certificate, reason=1))
    assert isinstance(answer.body, codec.RevRepBody) and answer.body.statuses[0].status == "accepted"
    assert answer.body.revoked[0].serial == x509.load_der_x509_certificate(device.certificate).serial_number
    serial = format(x509.load_der_x509_certificate(device.certificate).serial_number, "x")
    record = await harness.services.store.certificates.get(serial)
    assert record is not None and record.status is CertStatus.REVOKED
    assert record.revocation_reason is RevocationReason.KEY_COMPROMISE


async def test_rr_by_its_enroller_with_the_shared_secret(harness: CmpHarness) -> None:
    device = await harness.enroll()
    answer = await harness.session().exchange(cmp_client.revocation(device.certificate, reason=6))
    assert fail_info(answer) == frozenset()
    assert await status_of(harness, device.certificate) is CertStatus.HELD


async def test_genm_ca_certs_template_and_root_update(harness: CmpHarness) -> None:
    chain = await harness.chain()
    answer = await harness.session().exchange(cmp_client.genm(oids.OID_IT_CA_CERTS))
    assert isinstance(answer.body, GenBody) and answer.body.kind == "genp"
    item = answer.body.items[0]
    assert item.oid == oids.OID_IT_CA_CERTS and item.value is not None
    assert codec.decode_certificates(item.value) == chain

    answer = await harness.session().exchange(cmp_client.genm(oids.OID_IT_CERT_REQ_TEMPLATE))
    assert isinstance(answer.body, GenBody)
    value = answer.body.items[0].value
    assert value is not None
    _, spec = codec.decode_cert_req_template(value)
    assert len(spec.ec_curves) == 3 and spec.rsa_key_lengths == (2048, 3072, 4096)

    root_value = asn1.CMPCertificate.load(chain[-1]).dump()
    answer = await harness.session().exchange(cmp_client.genm(oids.OID_IT_ROOT_CA_CERT, root_value))
    assert isinstance(answer.body, GenBody)
    assert answer.body.items == (codec.InfoItem(oids.OID_IT_ROOT_CA_KEY_UPDATE),)  # no update


async def test_genm_crls_when_a_crl_source_is_wired(harness: CmpHarness) -> None:
    status = codec.encode_crl_status_list(
        [codec.CrlStatus(("http://127.0.0.1:8080/crl/issuing.crl",), (), None)]
    )
    answer = await harness.session().exchange(cmp_client.genm(oids.OID_IT_CRL_STATUS_LIST, status))
    assert fail_info(answer) == {"systemUnavail"}  # nothing publishes CRLs on this branch

    crl = _a_crl()

    async def source(ca: str) -> bytes | None:
        return crl

    harness.crls = source
    answer = await harness.session().exchange(cmp_client.genm(oids.OID_IT_CRL_STATUS_LIST, status))
    assert isinstance(answer.body, GenBody) and answer.body.items[0].oid == oids.OID_IT_CRLS
    assert answer.body.items[0].value == codec.encode_crls([crl])


def _a_crl() -> bytes:
    from cryptography.hazmat.primitives import hashes, serialization

    key = generate_private_key(KeyAlgorithm.EC_P256)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(x509.Name.from_rfc4514_string("CN=crl"))
        .last_update(now)
        .next_update(now + dt.timedelta(days=1))
    )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


async def test_operation_label_must_match_the_body(harness: CmpHarness) -> None:
    session = harness.session()
    data = session.encode(ir(new_key()))
    answer = codec.decode_message(await harness.send(data, "initialization"))
    issued_certificate(answer)
    session = harness.session()
    answer = codec.decode_message(await harness.send(session.encode(ir(new_key())), "revocation"))
    assert fail_info(answer) == {"badRequest"}


# --- protection and header refusals --------------------------------------------------------------


async def test_wrong_mac_is_refused_with_bad_message_check(harness: CmpHarness) -> None:
    session = harness.session(MacCredential("device-ref", b"not the secret"))
    answer = await session.exchange(ir(new_key()))
    assert isinstance(answer.body, ErrorBody) and fail_info(answer) == {"badMessageCheck"}
    # Not MAC-protected (the secret did not check out): signed by the CA's responder.
    assert cmp_client.signed_by(answer, await harness.responder_certificate())
    assert answer.header.transaction_id == session.transaction_id


async def test_tampered_mac_is_refused(harness: CmpHarness) -> None:
    answer = await harness.session().exchange(ir(new_key()), tamper=True)
    assert fail_info(answer) == {"badMessageCheck"}


async def test_unknown_sender_kid_is_refused(harness: CmpHarness) -> None:
    answer = await harness.session(MacCredential("nobody", b"open sesame")).exchange(ir(new_key()))
    assert fail_info(answer) == {"badMessageCheck"}
    assert "senderKID" in answer.body.status.text[0]  # type: ignore[union-attr]


async def test_shared_secret_of_another_ca_is_unknown_here(harness: CmpHarness) -> None:
    await harness.services.credentials.create_shared_secret(
        "other-ref", {"protocol": "cmp", "ca": "other"}, secret="open sesame"
    )
    answer = await harness.session(MacCredential("other-ref", b"open sesame")).exchange(ir(new_key()))
    assert fail_info(answer) == {"badMessageCheck"}


async def test_unprotected_request_is_refused(harness: CmpHarness) -> None:
    session = harness.session()
    session.credential = None
    answer = await session.exchange(ir(new_key()))
    assert fail_info(answer) == {"badMessageCheck"}


async def test_mac_parameters_beyond_limits_are_bad_alg(harness: CmpHarness) -> None:
    answer = await harness.session(MacCredential("device-ref", b"open sesame", iterations=10)).exchange(
        ir(new_key())
    )
    assert fail_info(answer) == {"badAlg"}


async def test_unknown_protection_algorithm_is_bad_alg(harness: CmpHarness) -> None:
    session = harness.session()
    header = dataclasses.replace(
        session.header(), protection_alg=codec.SignatureAlgorithm("1.2.840.113549.1.1.4", "rsa", "md5")
    )
    data = codec.prepare(header, ir(new_key())).finish(b"\x00" * 32)
    answer = codec.decode_message(await harness.send(data))
    assert fail_info(answer) == {"badAlg"}


async def test_replayed_transaction_id_is_in_use(harness: CmpHarness) -> None:
    session = harness.session()
    first = session.encode(ir(new_key()))
    issued_certificate(codec.decode_message(await harness.send(first)))
    again = codec.decode_message(await harness.send(first))
    assert fail_info(again) == {"transactionIdInUse"}
    # A fresh message reusing the transactionID is refused too.
    other = harness.session(transaction_id=session.transaction_id)
    assert fail_info(await other.exchange(ir(new_key()))) == {"transactionIdInUse"}


async def test_two_copies_of_one_ir_at_once_leave_one_certificate(harness: CmpHarness) -> None:
    import asyncio

    from ca_core.store.certificates import CertificateQuery

    data = harness.session().encode(ir(new_key(), "CN=twice.example"))
    answers = [codec.decode_message(a) for a in await asyncio.gather(*(harness.send(data) for _ in range(3)))]
    delivered = [a for a in answers if not fail_info(a)]
    assert len(delivered) == 1
    assert all(fail_info(a) == {"transactionIdInUse"} for a in answers if a not in delivered)
    # Whatever a losing copy issued before it lost was revoked, never delivered.
    page = await harness.services.store.certificates.search(CertificateQuery(text="twice.example"))
    live = [r for r in page.items if r.status is CertStatus.NORMAL]
    assert [r.der for r in live] == [issued_certificate(delivered[0])]


async def test_wrong_recipient_is_wrong_authority(harness: CmpHarness) -> None:
    session = harness.session(recipient=x509.Name.from_rfc4514_string("CN=Some Other CA").public_bytes())
    answer = await session.exchange(ir(new_key()))
    assert fail_info(answer) == {"wrongAuthority"}
    # The CA's own name and the NULL-DN are fine.
    session = harness.session(recipient=await harness.ca_name())
    issued_certificate(await session.exchange(ir(new_key())))


async def test_message_time_too_far_off_is_bad_time(harness: CmpHarness) -> None:
    session = harness.session()
    header = session.header(message_time=harness.clock.now() - dt.timedelta(hours=1))
    assert fail_info(await session.exchange(ir(new_key()), header)) == {"badTime"}


async def test_unsupported_pvno(harness: CmpHarness) -> None:
    session = harness.session(pvno=1)
    assert fail_info(await session.exchange(ir(new_key()))) == {"unsupportedVersion"}


async def test_short_sender_nonce_and_missing_transaction_id(harness: CmpHarness) -> None:
    session = harness.session()
    assert fail_info(await session.exchange(ir(new_key()), session.header(sender_nonce=b"12345678"))) == {
        "badSenderNonce"
    }
    assert fail_info(await session.exchange(ir(new_key()), session.header(transaction_id=None))) == {
        "badRequest"
    }


async def test_undecodable_messages_are_bad_data_format(harness: CmpHarness) -> None:
    for data in (b"hello", b"\x30\x03\x02\x01\x02", harness.session().encode(ir(new_key())) + b"\x00"):
        answer = codec.decode_message(await harness.send(data))
        assert fail_info(answer) == {"badDataFormat"}


async def test_signature_by_a_foreign_certificate_is_signer_not_trusted(harness: CmpHarness) -> None:
    stranger = _self_signed("CN=stranger")
    answer = await harness.session(stranger).exchange(ir(new_key()))
    assert fail_info(answer) == {"signerNotTrusted"}


async def test_signature_under_a_trust_anchor_is_accepted(harness: CmpHarness) -> None:
    maker_ca, maker_key = _ca("CN=Device Maker CA")
    idevid = _leaf(maker_ca, maker_key, "CN=serial-0001")
    harness.settings = {"trust_anchors": [maker_ca.public_bytes(_PEM).decode()]}
    answer = await harness.session(idevid).exchange(ir(new_key(), "CN=serial-0001"))
    issued_certificate(answer)
    harness.settings = {}
    answer = await harness.session(idevid).exchange(ir(new_key(), "CN=serial-0001"))
    assert fail_info(answer) == {"signerNotTrusted"}


async def test_revoked_protection_certificate_is_cert_revoked(harness: CmpHarness) -> None:
    device = await harness.enroll()
    await harness.session(device).exchange(cmp_client.revocation(device.certificate))
    answer = await harness.session(device).exchange(CertReqBody("cr", (cert_request(new_key()),)))
    assert fail_info(answer) == {"certRevoked"}


async def test_tampered_signature_and_wrong_sender_are_bad_message_check(harness: CmpHarness) -> None:
    device = await harness.enroll()
    body = CertReqBody("cr", (cert_request(new_key()),))
    assert fail_info(await harness.session(device).exchange(body, tamper=True)) == {"badMessageCheck"}
    session = harness.session(device)
    header = session.header(
        sender=codec.directory_name(x509.Name.from_rfc4514_string("CN=else").public_bytes())
    )
    assert fail_info(await session.exchange(body, header)) == {"badMessageCheck"}


# --- request refusals ---------------------------------------------------------------------------


async def test_bad_pop_is_refused(harness: CmpHarness) -> None:
    answer = await harness.session().exchange(ir(new_key(), popo_key=new_key()))
    assert answer.body.kind == "ip" and fail_info(answer) == {"badPOP"}
    answer = await harness.session().exchange(ir(new_key(), popo="none"))
    assert fail_info(answer) == {"badPOP"}


async def test_ra_verified_only_from_a_trusted_ra(harness: CmpHarness) -> None:
    ra = await harness.enroll(subject="CN=Registration Authority")
    answer = await harness.session(ra).exchange(ir(new_key(), popo="raVerified"))
    assert fail_info(answer) == {"badPOP"}
    harness.settings = {"trusted_ras": [core.fingerprint(ra.certificate)]}
    answer = await harness.session(ra).exchange(ir(new_key(), "CN=behind.the.ra", popo="raVerified"))
    issued_certificate(answer)


async def test_template_fields_a_requester_may_not_set(harness: CmpHarness) -> None:
    answer = await harness.session().exchange(ir(new_key(), serial_number=7))
    assert fail_info(answer) == {"badCertTemplate"}
    other_issuer = x509.Name.from_rfc4514_string("CN=Other CA").public_bytes()
    answer = await harness.session().exchange(ir(new_key(), issuer=other_issuer))
    assert fail_info(answer) == {"wrongAuthority"}
    answer = await harness.session().exchange(ir(None, popo="none"))
    assert fail_info(answer) == {"badCertTemplate"}


async def test_unsupported_key_is_bad_cert_template(harness: CmpHarness) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256K1())
    answer = await harness.session().exchange(ir(key))
    assert fail_info(answer) == {"badCertTemplate"}


async def test_critical_unknown_extension_is_unaccepted(harness: CmpHarness) -> None:
    ext = codec.Extension("1.2.3.4.5", True, b"\x05\x00")
    answer = await harness.session().exchange(ir(new_key(), extensions=(ext,)))
    assert fail_info(answer) == {"unacceptedExtension"}
    # Requested key usages are the profile's to decide: ignored, not refused.
    eku = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]).public_bytes()
    answer = await harness.session().exchange(
        ir(new_key(), extensions=(codec.Extension("2.5.29.37", False, eku),))
    )
    cert = x509.load_der_x509_certificate(issued_certificate(answer))
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)


async def test_kur_needs_signature_with_the_certificate_it_updates(harness: CmpHarness) -> None:
    body = CertReqBody("kur", (cert_request(new_key()),))
    assert fail_info(await harness.session().exchange(body)) == {"wrongIntegrity"}
    device = await harness.enroll()
    other = await harness.enroll(subject="CN=other.example")
    request = cert_request(new_key(), None, old_cert_id=cmp_client.old_cert_id(other.certificate))
    answer = await harness.session(device).exchange(CertReqBody("kur", (request,)))
    assert fail_info(answer) == {"notAuthorized"}
    same_key = cert_request(device.key, None)  # type: ignore[arg-type]
    answer = await harness.session(device).exchange(CertReqBody("kur", (same_key,)))
    assert fail_info(answer) == {"badCertTemplate"}


async def test_rr_refusals(harness: CmpHarness) -> None:
    device = await harness.enroll()
    other = await harness.enroll(subject="CN=other.example")
    answer = await harness.session(other).exchange(cmp_client.revocation(device.certificate))
    assert answer.body.kind == "rp" and fail_info(answer) == {"notAuthorized"}
    stranger = _self_signed("CN=stranger", key=device.key)
    answer = await harness.session().exchange(cmp_client.revocation(stranger.certificate))
    assert fail_info(answer) == {"badCertId"}
    await harness.session(device).exchange(cmp_client.revocation(device.certificate))
    answer = await harness.session().exchange(cmp_client.revocation(device.certificate))
    assert fail_info(answer) == {"certRevoked"}
    answer = await harness.session(other).exchange(cmp_client.revocation(other.certificate, reason=8))
    assert fail_info(answer) == {"badRequest"}


# --- confirmation ---------------------------------------------------------------------------------


async def test_missing_cert_conf_gets_the_certificate_revoked(harness: CmpHarness) -> None:
    answer = await harness.session().exchange(ir(new_key()))
    certificate = issued_certificate(answer)
    assert await confirmation.revoke_overdue(harness.services) == 0
    assert await status_of(harness, certificate) is CertStatus.NORMAL
    harness.clock.advance(dt.timedelta(seconds=301))
    assert await confirmation.revoke_overdue(harness.services) == 1
    assert await status_of(harness, certificate) is CertStatus.REVOKED
    assert await confirmation.revoke_overdue(harness.services) == 0


async def test_cert_conf_after_the_deadline_is_bad_time_and_revokes(harness: CmpHarness) -> None:
    session = harness.session()
    certificate = issued_certificate(await session.exchange(ir(new_key())))
    harness.clock.advance(dt.timedelta(seconds=301))
    answer = await session.exchange(cert_conf(certificate))
    assert fail_info(answer) == {"badTime"}
    assert await status_of(harness, certificate) is CertStatus.REVOKED


async def test_cert_conf_refusals(harness: CmpHarness) -> None:
    session = harness.session()
    certificate = issued_certificate(await session.exchange(ir(new_key())))
    ip_nonce = session.last_nonce
    other_cert = (await harness.enroll()).certificate
    # A refused follow-up leaves the transaction as it was (a client ends it on an error;
    # here the test keeps using the ip's nonce to try the next refusal).
    assert fail_info(await session.exchange(cert_conf(other_cert))) == {"badCertId"}
    session.last_nonce = ip_nonce
    assert fail_info(await session.exchange(cert_conf(certificate, cert_req_id=5))) == {"badCertId"}
    session.last_nonce = ip_nonce
    # recipNonce must be the senderNonce of ceg's last message.
    header = session.header(recip_nonce=b"x" * 16)
    assert fail_info(await session.exchange(cert_conf(certificate), header)) == {"badRecipientNonce"}
    # Another sender cannot confirm this transaction.
    intruder = harness.session(await harness.enroll(), transaction_id=session.transaction_id)
    intruder.last_nonce = ip_nonce
    assert fail_info(await intruder.exchange(cert_conf(certificate))) == {"notAuthorized"}
    session.last_nonce = ip_nonce
    assert isinstance((await session.exchange(cert_conf(certificate))).body, PkiConfBody)
    assert fail_info(await session.exchange(cert_conf(certificate))) == {"certConfirmed"}
    unknown = harness.session()
    assert fail_info(await unknown.exchange(cert_conf(certificate))) == {"badRequest"}


async def test_rejected_certificate_and_client_error_revoke(harness: CmpHarness) -> None:
    session = harness.session()
    certificate = issued_certificate(await session.exchange(ir(new_key())))
    assert isinstance((await session.exchange(cert_conf(certificate, accept=False))).body, PkiConfBody)
    assert await status_of(harness, certificate) is CertStatus.REVOKED

    session = harness.session()
    certificate = issued_certificate(await session.exchange(ir(new_key())))
    error = ErrorBody(codec.StatusInfo("rejection", frozenset({"badCertTemplate"})))
    assert isinstance((await session.exchange(error)).body, PkiConfBody)
    assert await status_of(harness, certificate) is CertStatus.REVOKED


# --- manual approval: delayed delivery with polling -------------------------------------------------


async def test_manual_approval_polls_until_an_officer_decides(harness: CmpHarness) -> None:
    harness.settings = {"manual_approval": True, "poll_interval_seconds": 3}
    session = harness.session()
    answer = await session.exchange(ir(new_key()), session.header(implicit_confirm=True))
    assert isinstance(answer.body, codec.CertRepBody) and answer.body.responses[0].status.status == "waiting"
    assert answer.body.responses[0].certificate is None
    polled = await session.exchange(cmp_client.poll())
    assert isinstance(polled.body, PollRepBody) and polled.body.entries[0].check_after == 3
    (pending,) = await harness.services.approvals.list()
    await harness.services.approvals.approve(pending.id, "officer")
    final = await session.exchange(cmp_client.poll())
    assert final.body.kind == "ip" and final.header.implicit_confirm  # asked, allowed, granted
    issued_certificate(final)

    session = harness.session()
    await session.exchange(ir(new_key()))
    (pending,) = await harness.services.approvals.list()
    await harness.services.approvals.reject(pending.id, "officer", "not ours")
    final = await session.exchange(cmp_client.poll())
    assert fail_info(final) == {"notAuthorized"} and "not ours" in final.body.responses[0].status.text[0]  # type: ignore[union-attr]
    assert fail_info(await session.exchange(cmp_client.poll())) == {"badRequest"}


# --- helpers --------------------------------------------------------------------------------------

_PEM = Encoding.PEM


def _builder(subject: str, issuer: x509.Name, public_key: object) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name.from_rfc4514_string(subject))
        .issuer_name(issuer)
        .public_key(public_key)  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False)  # type: ignore[arg-type]
    )


def _self_signed(subject: str, key: object = None) -> SignatureCredential:
    key = key or new_key()
    name = x509.Name.from_rfc4514_string(subject)
    cert = _builder(subject, name, key.public_key()).sign(key, hashes.SHA256())  # type: ignore[attr-defined]
    return SignatureCredential(cert.public_bytes(Encoding.DER), key)  # type: ignore[arg-type]


def _ca(subject: str) -> tuple[x509.Certificate, object]:
    key = new_key()
    name = x509.Name.from_rfc4514_string(subject)
    builder = _builder(subject, name, key.public_key()).add_extension(  # type: ignore[attr-defined]
        x509.BasicConstraints(ca=True, path_length=None), True
    )
    return builder.sign(key, hashes.SHA256()), key  # type: ignore[arg-type]


def _leaf(ca: x509.Certificate, ca_key: object, subject: str) -> SignatureCredential:
    key = new_key()
    cert = _builder(subject, ca.subject, key.public_key()).sign(ca_key, hashes.SHA256())  # type: ignore[attr-defined,arg-type]
    return SignatureCredential(cert.public_bytes(Encoding.DER), key)  # type: ignore[arg-type]


async def test_a_deleted_ca_answers_system_unavail(harness: CmpHarness) -> None:
    data = harness.session().encode(ir(new_key()))
    await harness.services.authority.delete(harness.issuing)
    answer = codec.decode_message(await harness.send(data))
    assert fail_info(answer) == {"systemUnavail"} and answer.protection is None


async def test_a_worker_stopping_after_storing_a_certificate_leaves_it_revoked(
    harness: CmpHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The transaction is claimed before the work; the worker stores the certificate and
    stops before recording the outcome. The certificate was never delivered, so once the
    confirmation deadline passes the grace job revokes it; the transactionID stays used."""
    from ca_core.store.certificates import CertificateQuery
    from protocols.cmp.server import CmpServer

    save = CmpServer._save

    async def stops_after_issuing(self: CmpServer, ex: Any, tx: Any) -> Any:
        if tx.serial is not None:
            raise RuntimeError("worker stopped")
        return await save(self, ex, tx)

    monkeypatch.setattr(CmpServer, "_save", stops_after_issuing)
    session = harness.session()
    message = session.encode(ir(new_key(), "CN=interrupted.example"))
    with pytest.raises(RuntimeError):
        await harness.send(message)
    monkeypatch.setattr(CmpServer, "_save", save)
    page = await harness.services.store.certificates.search(CertificateQuery(text="interrupted.example"))
    assert [r.status for r in page.items] == [CertStatus.NORMAL], "stored, never delivered"

    again = codec.decode_message(await harness.send(message))
    assert fail_info(again) == {"transactionIdInUse"}, "nothing issued twice"
    assert await confirmation.revoke_overdue(harness.services) == 0, "not before the deadline"
    harness.clock.advance(dt.timedelta(seconds=301))
    assert await confirmation.revoke_overdue(harness.services) == 1
    page = await harness.services.store.certificates.search(CertificateQuery(text="interrupted.example"))
    assert [r.status for r in page.items] == [CertStatus.REVOKED]
    assert await confirmation.revoke_overdue(harness.services) == 0


async def test_an_interrupted_claim_that_issued_nothing_just_ends(
    harness: CmpHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from protocols.cmp.server import CmpServer

    async def stops_before_issuing(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("worker stopped")

    monkeypatch.setattr(CmpServer, "_certify", stops_before_issuing)
    with pytest.raises(RuntimeError):
        await harness.send(harness.session().encode(ir(new_key())))
    monkeypatch.undo()
    harness.clock.advance(dt.timedelta(seconds=301))
    assert await confirmation.revoke_overdue(harness.services) == 0
    documents = await harness.services.store.state.find(core.TX_NAMESPACE, core.UNCONFIRMED)
    assert documents == [], "the claim is ended, no longer watched"
