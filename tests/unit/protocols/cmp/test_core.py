"""I/O-free CMP decisions: binding settings, header checks, transaction states, POPO,
confirmation, revocation reasons."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from cryptography import x509

from ca_core.keys.file import generate_private_key
from ca_core.model import KeyAlgorithm, RevocationReason
from protocols.cmp import codec, core, oids
from protocols.cmp.codec import Header
from protocols.cmp.core import CmpSettings, Sender, Transaction, TxState
from protocols.cmp.errors import CmpFailure
from tests.support.cmp_client import cert_conf, cert_request

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
CA = x509.Name.from_rfc4514_string("CN=Issuing").public_bytes()
MAC_SENDER = Sender("mac", "ref", "mac:ref", secret=b"pw")


def header(**kw: object) -> Header:
    base = Header(
        pvno=2,
        sender=codec.directory_name(codec.NULL_DN_NAME),
        recipient=codec.directory_name(CA),
        message_time=NOW,
        transaction_id=b"t" * 16,
        sender_nonce=b"n" * 16,
    )
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def refused(bit: str, fn: object, *args: object) -> CmpFailure:
    with pytest.raises(CmpFailure) as caught:
        fn(*args)  # type: ignore[operator]
    assert caught.value.fail_info == {bit}, caught.value
    return caught.value


def test_settings_defaults_and_errors() -> None:
    assert CmpSettings.parse({}) == CmpSettings()
    assert CmpSettings.parse(CmpSettings().as_dict()) == CmpSettings()
    for bad, key in [
        ({"manual_approval": "yes"}, "manual_approval"),
        ({"confirm_wait_seconds": 1}, "confirm_wait_seconds"),
        ({"poll_interval_seconds": True}, "poll_interval_seconds"),
        ({"trust_anchors": ["not pem"]}, "trust_anchors"),
        ({"trusted_ras": ["abc"]}, "trusted_ras"),
        ({"colour": "blue"}, "colour"),
    ]:
        with pytest.raises(ValueError, match=key):
            CmpSettings.parse(bad)
    fp = "AB:" * 31 + "AB"
    assert CmpSettings.parse({"trusted_ras": [fp]}).trusted_ras == ("ab" * 32,)


def test_header_checks() -> None:
    tolerance = dt.timedelta(minutes=5)
    core.check_header(header(), NOW, tolerance, [CA])
    core.check_header(header(recipient=codec.directory_name(codec.NULL_DN_NAME)), NOW, tolerance, [CA])
    core.check_header(header(message_time=None), NOW, tolerance, [CA])
    other = codec.directory_name(x509.Name.from_rfc4514_string("CN=Other").public_bytes())
    refused("wrongAuthority", core.check_header, header(recipient=other), NOW, tolerance, [CA])
    refused("unsupportedVersion", core.check_header, header(pvno=1), NOW, tolerance, [CA])
    refused("badRequest", core.check_header, header(transaction_id=None), NOW, tolerance, [CA])
    refused("badRequest", core.check_header, header(transaction_id=b"short"), NOW, tolerance, [CA])
    refused("badSenderNonce", core.check_header, header(sender_nonce=None), NOW, tolerance, [CA])
    late = NOW + dt.timedelta(minutes=6)
    refused("badTime", core.check_header, header(message_time=late), NOW, tolerance, [CA])


def test_operation_labels() -> None:
    body = codec.GenBody("genm", (codec.InfoItem(oids.OID_IT_CA_CERTS),))
    core.check_operation("genm", "getcacerts", body)
    core.check_operation("certConf", "initialization", codec.CertConfBody(()))  # follow-ups go anywhere
    refused("badRequest", core.check_operation, "genm", "getcertreqtemplate", body)
    refused("badRequest", core.check_operation, "ir", "certification", body)
    refused("badRequest", core.check_operation, "ckuann", None, body)


def test_popo_checks() -> None:
    key = generate_private_key(KeyAlgorithm.EC_P256)
    good = cert_request(key)
    core.check_popo(good, header(), MAC_SENDER)
    refused(
        "badPOP",
        core.check_popo,
        cert_request(key, popo_key=generate_private_key(KeyAlgorithm.EC_P256)),
        header(),
        MAC_SENDER,
    )
    refused("badPOP", core.check_popo, cert_request(key, popo="none"), header(), MAC_SENDER)
    ra_verified = cert_request(key, popo="raVerified")
    refused("badPOP", core.check_popo, ra_verified, header(), MAC_SENDER)
    core.check_popo(ra_verified, header(), dataclasses.replace(MAC_SENDER, trusted_ra=True))
    enc = dataclasses.replace(good, popo=codec.Popo("keyEncipherment"))
    refused("badPOP", core.check_popo, enc, header(), MAC_SENDER)


def test_template_checks() -> None:
    key = generate_private_key(KeyAlgorithm.EC_P256)
    core.check_template(cert_request(key).template, CA)
    core.check_template(cert_request(key, issuer=CA).template, CA)
    refused("badCertTemplate", core.check_template, cert_request(key, serial_number=1).template, CA)
    other = x509.Name.from_rfc4514_string("CN=Other").public_bytes()
    refused("wrongAuthority", core.check_template, cert_request(key, issuer=other).template, CA)
    refused("badCertTemplate", core.check_template, cert_request(None, popo="none").template, CA)
    with_uid = dataclasses.replace(cert_request(key).template, unexpected_fields=("issuer_uid",))
    refused("badCertTemplate", core.check_template, with_uid, CA)


def _certificate() -> x509.Certificate:
    from cryptography.hazmat.primitives import hashes

    key = generate_private_key(KeyAlgorithm.EC_P256)
    name = x509.Name.from_rfc4514_string("CN=x")
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW)
        .not_valid_after(NOW + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


def test_transaction_states_and_documents() -> None:
    tx = core.open_transaction("ca", "ir", MAC_SENDER, header(), b"1" * 16)
    assert tx.state is TxState.CLOSED and tx.expires_at(NOW) == NOW + core.TX_RETENTION
    cert = _certificate()
    issued = core.issued(tx, "ab", cert, False, NOW, dt.timedelta(seconds=300), b"2" * 16)
    assert issued.state is TxState.UNCONFIRMED and issued.lookup() == core.UNCONFIRMED
    assert issued.expires_at(NOW) is None and issued.confirm_by == NOW + dt.timedelta(seconds=300)
    assert Transaction.from_document(issued.document(), 3) == dataclasses.replace(issued, version=3)
    implicit = core.issued(tx, "ab", cert, True, NOW, dt.timedelta(seconds=300), b"2" * 16)
    assert implicit.state is TxState.CONFIRMED and implicit.confirm_by is None and implicit.lookup() is None
    waiting = core.waiting(tx, "approval-1", True, b"3" * 16, "p")
    assert waiting.expires_at(NOW) == NOW + core.WAITING_RETENTION


def test_follow_up_checks() -> None:
    cert = _certificate()
    tx = core.issued(
        core.open_transaction("ca", "ir", MAC_SENDER, header(), b""),
        "1",
        cert,
        False,
        NOW,
        dt.timedelta(seconds=60),
        b"N" * 16,
    )
    ok = header(recip_nonce=b"N" * 16)
    core.check_follow_up(tx, "certConf", MAC_SENDER, ok)
    refused("badRequest", core.check_follow_up, None, "certConf", MAC_SENDER, ok)
    refused(
        "badRecipientNonce", core.check_follow_up, tx, "certConf", MAC_SENDER, header(recip_nonce=b"x" * 16)
    )
    other = Sender("mac", "other", "mac:other")
    refused("notAuthorized", core.check_follow_up, tx, "certConf", other, ok)
    refused("badRequest", core.check_follow_up, tx, "pollReq", MAC_SENDER, ok)
    confirmed = dataclasses.replace(tx, state=TxState.CONFIRMED)
    refused("certConfirmed", core.check_follow_up, confirmed, "certConf", MAC_SENDER, ok)


def test_confirmation_checks() -> None:
    cert = _certificate()
    der = cert.public_bytes(codec_der())
    tx = core.issued(
        core.open_transaction("ca", "ir", MAC_SENDER, header(), b""),
        "1",
        cert,
        False,
        NOW,
        dt.timedelta(seconds=60),
        b"",
    )
    accepted = cert_conf(der)
    assert core.check_confirmation(tx, accepted, NOW) is core.Confirmation.ACCEPTED  # type: ignore[arg-type]
    assert core.check_confirmation(tx, cert_conf(der, accept=False), NOW) is core.Confirmation.REJECTED  # type: ignore[arg-type]
    refused("badTime", core.check_confirmation, tx, accepted, NOW + dt.timedelta(seconds=61))
    refused("badCertId", core.check_confirmation, tx, cert_conf(der, cert_req_id=1), NOW)
    refused("badRequest", core.check_confirmation, tx, cert_conf(der, hash_alg="sha512"), NOW, cert)
    v3 = dataclasses.replace(tx, pvno=3)
    assert (
        core.check_confirmation(v3, cert_conf(der, hash_alg="sha512"), NOW, cert)
        is core.Confirmation.ACCEPTED
    )  # type: ignore[arg-type]


def codec_der():  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.serialization import Encoding

    return Encoding.DER


def test_revocation_reasons() -> None:
    assert core.revocation_reason(None) is RevocationReason.UNSPECIFIED
    assert core.revocation_reason(1) is RevocationReason.KEY_COMPROMISE
    assert core.revocation_reason(6) is RevocationReason.CERTIFICATE_HOLD
    refused("badRequest", core.revocation_reason, 8)  # removeFromCRL is not a revocation
    refused("badRequest", core.revocation_reason, 2)  # cACompromise: not for subscriber certificates


def test_reply_header_echoes_the_request() -> None:
    request = header(sender_kid=b"ref", pvno=3)
    reply = core.reply_header(request, CA, NOW, b"R" * 16)
    assert reply.pvno == 3 and reply.recipient == request.sender
    assert reply.transaction_id == request.transaction_id and reply.recip_nonce == request.sender_nonce
    assert reply.sender == codec.directory_name(CA) and reply.sender_nonce == b"R" * 16
    assert core.reply_header(header(pvno=7), CA, NOW, b"R" * 16).pvno == 2
