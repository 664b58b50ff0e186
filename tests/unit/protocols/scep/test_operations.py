"""GetCert, GetCRL, GetCACaps, GetCACert, GetNextCACert, the RA's lifecycle, and every
malformed pkiMessage answered with the right failInfo (RFC 8894 3.2.1.4.5) or refused."""

from __future__ import annotations

import base64
import datetime as dt
import os

import pytest
from cryptography import x509

from ca_core.clock import ManualClock
from ca_core.status.revocation import StatusChange
from protocols._shared import cms
from protocols.scep import codec
from protocols.scep.codec import MessageType, PkiStatus, encode_issuer_and_serial
from protocols.scep.errors import FailInfo, MalformedMessage
from tests.support.scep_peer import ScepPeer, der, rsa_key, scep_csr, self_signed
from tests.unit.protocols.scep.conftest import STATIC, Scep


async def _issue(scep: Scep, cn: str = "device.example") -> x509.Certificate:
    peer = scep.peer(cn)
    reply = peer.read(await scep.send(peer.request(MessageType.PKCS_REQ, scep_csr(peer.key, cn, STATIC))))
    assert reply.status is PkiStatus.SUCCESS
    return reply.certificate


async def _ca(scep: Scep) -> x509.Certificate:
    ca = await scep.services.authority.get("issuing")
    assert ca.certificate is not None
    return ca.certificate


async def test_get_cert_returns_an_issued_certificate(scep: Scep) -> None:
    issued = await _issue(scep)
    peer = scep.peer()
    body = encode_issuer_and_serial((await _ca(scep)).subject, issued.serial_number)
    reply = peer.read(await scep.send(peer.request(MessageType.GET_CERT, body)))
    assert reply.status is PkiStatus.SUCCESS
    assert reply.certificate == issued


@pytest.mark.parametrize("what", ["unknown-serial", "other-issuer"])
async def test_get_cert_for_nothing_we_issued_is_bad_cert_id(scep: Scep, what: str) -> None:
    issued = await _issue(scep)
    issuer = (await _ca(scep)).subject
    if what == "other-issuer":
        issuer = x509.Name.from_rfc4514_string("CN=Somebody Else")
    serial = issued.serial_number + 1 if what == "unknown-serial" else issued.serial_number
    peer = scep.peer()
    reply = peer.read(
        await scep.send(peer.request(MessageType.GET_CERT, encode_issuer_and_serial(issuer, serial)))
    )
    assert (reply.status, reply.view.fail_info) == (PkiStatus.FAILURE, FailInfo.BAD_CERT_ID)


async def test_get_crl_lists_revoked_certificates(scep: Scep) -> None:
    revoked = await _issue(scep, "lost.example")
    kept = await _issue(scep, "kept.example")
    await scep.services.revocation.revoke(StatusChange(format(revoked.serial_number, "x"), "test"))
    ca = await _ca(scep)
    peer = scep.peer()
    reply = peer.read(
        await scep.send(
            peer.request(MessageType.GET_CRL, encode_issuer_and_serial(ca.subject, kept.serial_number))
        )
    )
    assert reply.status is PkiStatus.SUCCESS
    crl = x509.load_der_x509_crl(reply.crls[0])
    assert crl.issuer == ca.subject
    assert crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]
    assert crl.get_revoked_certificate_by_serial_number(revoked.serial_number) is not None
    assert crl.get_revoked_certificate_by_serial_number(kept.serial_number) is None


async def test_capabilities_advertise_only_what_is_real(scep: Scep) -> None:
    caps = (await scep.responder.capabilities(scep.binding)).decode().split("\n")
    assert [c for c in caps if c] == [
        "POSTPKIOperation",
        "SHA-256",
        "SHA-512",
        "AES",
        "SCEPStandard",
        "Renewal",
    ]


async def test_get_ca_cert_returns_the_ca_and_the_ra_together(scep: Scep) -> None:
    body, content_type = await scep.responder.ca_certificates(scep.binding)
    assert content_type == "application/x-x509-ca-ra-cert"
    certs = [x509.load_der_x509_certificate(c) for c in cms.certificates_of(body)]
    ca = await _ca(scep)
    assert certs[0] == ca
    ra = certs[1]
    assert ra.issuer == ca.subject
    ku = ra.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.key_encipherment and ku.digital_signature
    await scep.rebind(challenge="static", challenge_password=STATIC, include_root=True)
    body, _ = await scep.responder.ca_certificates(scep.binding)
    assert len(cms.certificates_of(body)) == 3


async def test_get_next_ca_cert_only_with_a_rollover_certificate(scep: Scep) -> None:
    assert await scep.responder.next_ca_certificates(scep.binding) is None
    from sqlalchemy import update

    from ca_core.store import tables as t

    successor = await _issue(scep, "stand-in-for-the-next-ca.example")
    settings = {"next_certificate": base64.b64encode(der(successor)).decode()}
    async with scep.services.store.db.transaction() as uow:
        await uow.conn.execute(update(t.cas).where(t.cas.c.id == "issuing").values(settings=settings))
    scep.services.authority.forget("issuing")
    assert "GetNextCACert" in (await scep.responder.capabilities(scep.binding)).decode().split()
    body = await scep.responder.next_ca_certificates(scep.binding)
    assert body is not None
    signed = cms.parse_signed(body)
    signer = cms.verify_signed(signed)
    assert signer == await _ca(scep)  # signed with the current CA key
    assert der(successor) in signed.certificates


async def test_ra_is_renewed_before_it_expires_and_the_old_key_still_reads(
    scep: Scep, clock: ManualClock
) -> None:
    ra = scep.responder.registration_authority
    old = await ra.identity("issuing")
    clock.advance(dt.timedelta(days=340))
    new = await ra.identity("issuing", refresh=True)
    assert new.current.certificate != old.current.certificate
    assert new.current.key_ref != old.current.key_ref
    assert [k.certificate for k in new.previous] == [old.current.certificate]
    # a client that cached the old RA certificate is still understood
    peer = ScepPeer.new(old.current.certificate)
    reply = peer.read(
        await scep.send(peer.request(MessageType.PKCS_REQ, scep_csr(peer.key, challenge=STATIC)))
    )
    assert reply.status is PkiStatus.SUCCESS
    assert reply.view.signer_certificate == new.current.certificate
    # a second worker (its own cache) sees the same RA
    from protocols.scep import frontend

    other = frontend.responder(scep.services).registration_authority
    assert (await other.identity("issuing")).current.certificate == new.current.certificate


# --- malformed and hostile input ----------------------------------------------------------------


def test_not_cms_is_malformed() -> None:
    for body in (b"", b"hello", b"\x30\x80\x00\x00", os.urandom(300), b"\x30" + b"\x84\xff\xff\xff\xff"):
        with pytest.raises(MalformedMessage):
            codec.decode_pki_message(body)


async def test_signed_data_without_scep_attributes_is_malformed(scep: Scep) -> None:
    key = rsa_key()
    cert = self_signed(key, "x")
    body = cms.sign_signed(cms.key_signer(cert, key), b"data", [], [cert])
    with pytest.raises(MalformedMessage, match="transactionID"):
        await scep.send(body)


async def test_tampered_signature_is_bad_message_check(scep: Scep) -> None:
    peer = scep.peer()
    body = bytearray(peer.request(MessageType.PKCS_REQ, scep_csr(peer.key, challenge=STATIC), "tx-t"))
    body[-10] ^= 0x01  # inside the signature, the last field of the SignerInfo
    reply = peer.read(await scep.send(bytes(body)))
    assert (reply.status, reply.view.fail_info) == (PkiStatus.FAILURE, FailInfo.BAD_MESSAGE_CHECK)
    assert reply.view.transaction_id == "tx-t"


async def test_swapped_signer_certificate_is_bad_message_check(scep: Scep) -> None:
    """Signed by one key while claiming another's certificate."""
    peer = scep.peer()
    impostor = ScepPeer(rsa_key(), peer.certificate, scep.ra)
    reply = peer.read(
        await scep.send(impostor.request(MessageType.PKCS_REQ, scep_csr(peer.key, challenge=STATIC)))
    )
    assert (reply.status, reply.view.fail_info) == (PkiStatus.FAILURE, FailInfo.BAD_MESSAGE_CHECK)


async def test_envelope_for_another_recipient_is_bad_message_check(scep: Scep) -> None:
    peer = scep.peer()
    stranger = self_signed(rsa_key(), "not the RA")
    body = peer.request(MessageType.PKCS_REQ, scep_csr(peer.key, challenge=STATIC), recipient=stranger)
    reply = peer.read(await scep.send(body))
    assert (reply.status, reply.view.fail_info) == (PkiStatus.FAILURE, FailInfo.BAD_MESSAGE_CHECK)
    assert "not addressed" in (reply.view.fail_text or "")


async def test_md5_digest_is_bad_alg(scep: Scep) -> None:
    from asn1crypto import cms as asn1_cms

    peer = scep.peer()
    info = asn1_cms.ContentInfo.load(peer.request(MessageType.PKCS_REQ, scep_csr(peer.key, challenge=STATIC)))
    info["content"]["signer_infos"][0]["digest_algorithm"] = {"algorithm": "md5"}
    reply = peer.read(await scep.send(info.dump(force=True)))
    assert (reply.status, reply.view.fail_info) == (PkiStatus.FAILURE, FailInfo.BAD_ALG)


async def test_request_without_sender_nonce_is_bad_request(scep: Scep) -> None:
    from asn1crypto import core

    peer = scep.peer()
    signer = cms.key_signer(peer.certificate, peer.key)
    enveloped = cms.seal_enveloped(scep_csr(peer.key, challenge=STATIC), scep.ra, cms.AES_128_CBC, os.urandom)
    body = cms.sign_signed(
        signer,
        enveloped,
        [
            cms.signed_attribute(codec.OID_TRANSACTION_ID, core.PrintableString("tx-nn")),
            cms.signed_attribute(codec.OID_MESSAGE_TYPE, core.PrintableString("19")),
        ],
        [peer.certificate],
    )
    reply = codec.decode_cert_rep(await scep.send(body))
    assert (reply.status, reply.fail_info) == (PkiStatus.FAILURE, FailInfo.BAD_REQUEST)
    assert reply.recipient_nonce is None


async def test_oversized_transaction_id_is_malformed(scep: Scep) -> None:
    peer = scep.peer()
    with pytest.raises(MalformedMessage):
        await scep.send(peer.request(MessageType.PKCS_REQ, scep_csr(peer.key, challenge=STATIC), "x" * 500))
