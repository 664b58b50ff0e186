"""The OCSP responder service: statuses from the store, delegated responder certificates,
the pre-signed fast path, invalidation across workers, settings per CA."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from ca_core.audit import Action
from ca_core.clock import ManualClock
from ca_core.keys.file import generate_private_key
from ca_core.model import IssuanceRequest, KeyAlgorithm, Requester, RevocationReason
from ca_core.services import Services
from ca_core.status.ocsp import ResponseStatus
from ca_core.status.responder import OcspPolicy
from ca_core.status.revocation import StatusChange
from tests.support.pki import make_csr
from tests.unit.ca_core.status import ocsp_support
from tests.unit.ca_core.status.conftest import OpenWorker, issue


async def issuer_of(s: Services, ca: str = "issuing") -> x509.Certificate:
    authority = await s.authority.get(ca)
    assert authority.certificate is not None
    return authority.certificate


async def single_request(s: Services, cert: x509.Certificate, nonce: bytes | None = None) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, await issuer_of(s), hashes.SHA1())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def verified(der: bytes) -> ocsp.OCSPResponse:
    """Parse and check the signature against the responder certificate it carries."""
    response = ocsp.load_der_ocsp_response(der)
    assert response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    (responder,) = response.certificates
    public = responder.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(hashes.SHA256()))
    return response


async def test_good_revoked_held_and_unknown(status_services: Services) -> None:
    s = status_services
    good, revoked, held = [await issue(s) for _ in range(3)]
    await s.revocation.revoke(StatusChange(revoked.serial_hex, "o", RevocationReason.AFFILIATION_CHANGED))
    await s.revocation.hold(StatusChange(held.serial_hex, "o"))
    issuer = await issuer_of(s)
    data = ocsp_support.request(
        [ocsp_support.cert_id(issuer, c.serial) for c in (good, revoked, held)]
        + [ocsp_support.cert_id(issuer, 0xDEAD)]
    )
    reply = await s.ocsp.respond("issuing", data)
    singles = list(verified(reply.der).responses)
    assert [r.certificate_status for r in singles] == [
        ocsp.OCSPCertStatus.GOOD,
        ocsp.OCSPCertStatus.REVOKED,
        ocsp.OCSPCertStatus.REVOKED,
        ocsp.OCSPCertStatus.UNKNOWN,
    ]
    assert singles[1].revocation_reason is x509.ReasonFlags.affiliation_changed
    assert singles[2].revocation_reason is x509.ReasonFlags.certificate_hold


async def test_delegated_responder_certificate(status_services: Services, tmp_path: Path) -> None:
    s = status_services
    cert = await issue(s)
    response = verified((await s.ocsp.respond("issuing", await single_request(s, cert.certificate))).der)
    (responder,) = response.certificates
    issuer = await issuer_of(s)
    responder.verify_directly_issued_by(issuer)  # issued by the CA it answers for (RFC 6960 4.2.2.2)
    eku = responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [ExtendedKeyUsageOID.OCSP_SIGNING]
    responder.extensions.get_extension_for_class(x509.OCSPNoCheck)
    assert responder.not_valid_after_utc - responder.not_valid_before_utc == dt.timedelta(days=30)
    record = await s.store.certificates.get(format(responder.serial_number, "x"))
    assert record is not None and record.profile == "basic-ocsp" and record.ca == "issuing"
    credential = await s.ocsp.responders.current("issuing")
    assert credential is not None and credential.key_ref.startswith("file:issuing-ocsp-")
    assert (tmp_path / "keys" / f"{credential.key_ref.removeprefix('file:')}.p8.pem").exists()  # same backend
    assert (
        response.responder_key_hash
        == x509.SubjectKeyIdentifier.from_public_key(responder.public_key()).digest
    )


async def test_no_nonce_is_signed_once_and_served_to_every_worker(
    status_services: Services, open_worker: OpenWorker
) -> None:
    s = status_services
    cert = await issue(s)
    data = await single_request(s, cert.certificate)
    first = await s.ocsp.respond("issuing", data)
    assert first.cacheable and first.etag
    assert (await s.ocsp.respond("issuing", data)).der == first.der
    other = await open_worker()
    assert (await other.ocsp.respond("issuing", data)).der == first.der  # from the stored response


async def test_nonce_requests_are_signed_each_time(status_services: Services) -> None:
    s = status_services
    cert = await issue(s)
    one = await s.ocsp.respond("issuing", await single_request(s, cert.certificate, b"a" * 16))
    two = await s.ocsp.respond("issuing", await single_request(s, cert.certificate, b"b" * 16))
    assert not one.cacheable and one.der != two.der
    nonce = verified(two.der).extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    assert nonce == b"b" * 16


async def test_status_change_is_answered_at_once_here_and_within_a_poll_elsewhere(
    status_services: Services, open_worker: OpenWorker
) -> None:
    s = status_services
    other = await open_worker()
    other.ocsp.policy = OcspPolicy(poll_seconds=0.0)
    cert = await issue(s)
    data = await single_request(s, cert.certificate)
    assert (
        verified((await other.ocsp.respond("issuing", data)).der).certificate_status
        is ocsp.OCSPCertStatus.GOOD
    )
    assert (
        verified((await s.ocsp.respond("issuing", data)).der).certificate_status is ocsp.OCSPCertStatus.GOOD
    )
    await s.revocation.revoke(StatusChange(cert.serial_hex, "o", RevocationReason.KEY_COMPROMISE))
    here = verified((await s.ocsp.respond("issuing", data)).der)
    there = verified((await other.ocsp.respond("issuing", data)).der)
    assert here.certificate_status is there.certificate_status is ocsp.OCSPCertStatus.REVOKED
    # The listener re-signed the stored response, so the other worker served those bytes.
    assert (await s.ocsp.respond("issuing", data)).der == (await other.ocsp.respond("issuing", data)).der


async def test_presigning_signs_ahead_and_refreshes_after_a_day(
    status_services: Services, clock: ManualClock
) -> None:
    s = status_services
    certs = [await issue(s) for _ in range(3)]
    assert await s.ocsp.presign("issuing") >= 3  # also the responder's own certificate
    assert await s.ocsp.presign("issuing") == 0
    signed_at = clock.now().replace(microsecond=0)
    clock.advance(dt.timedelta(hours=2))
    reply = await s.ocsp.respond("issuing", await single_request(s, certs[0].certificate))
    assert reply.this_update == signed_at  # served, not signed now
    clock.advance(s.ocsp.policy.refresh_after)
    assert await s.ocsp.presign("issuing") >= 3
    refreshed = await s.ocsp.respond("issuing", await single_request(s, certs[0].certificate))
    assert refreshed.this_update == clock.now().replace(microsecond=0)


async def test_responder_renewed_near_expiry_and_old_key_retired_later(
    status_services: Services, clock: ManualClock, tmp_path: Path
) -> None:
    s = status_services
    cert = await issue(s)
    data = await single_request(s, cert.certificate)
    before = verified((await s.ocsp.respond("issuing", data)).der).certificates[0]
    first = await s.ocsp.responders.current("issuing")
    assert first is not None
    assert await s.ocsp.renew_responders() == ["root"]  # the root had none yet
    assert await s.ocsp.renew_responders() == []  # 30 days left: nothing to do
    clock.advance(dt.timedelta(days=21))  # 9 days left < 10
    assert sorted(await s.ocsp.renew_responders()) == ["issuing", "root"]
    second = await s.ocsp.responders.current("issuing")
    assert second is not None and second.serial != first.serial
    clock.advance(s.ocsp.policy.refresh_after)
    after = verified((await s.ocsp.respond("issuing", data)).der).certificates[0]
    assert after.serial_number != before.serial_number
    assert after.not_valid_after_utc > before.not_valid_after_utc
    key_file = tmp_path / "keys" / f"{first.key_ref.removeprefix('file:')}.p8.pem"
    assert key_file.exists()  # kept through one more renewal
    clock.advance(dt.timedelta(days=21))
    assert "issuing" in await s.ocsp.renew_responders()
    assert not key_file.exists()


async def test_expired_responder_is_replaced_on_demand(status_services: Services, clock: ManualClock) -> None:
    s = status_services
    cert = await issue(s, profile="v2g-supply-equipment")  # one year
    data = await single_request(s, cert.certificate)
    old = verified((await s.ocsp.respond("issuing", data)).der).certificates[0]
    clock.advance(dt.timedelta(days=31))  # no scheduler ran
    new = ocsp.load_der_ocsp_response((await s.ocsp.respond("issuing", data)).der)
    assert new.certificates[0].serial_number != old.serial_number
    assert new.next_update_utc is not None and new.next_update_utc <= new.certificates[0].not_valid_after_utc


async def test_signed_by_the_ca_key_when_configured(status_services: Services) -> None:
    s = status_services
    cert = await issue(s)
    settings = await s.ocsp.configure("issuing", signer="ca", actor="admin")
    assert settings.signer == "ca"
    response = ocsp.load_der_ocsp_response(
        (await s.ocsp.respond("issuing", await single_request(s, cert.certificate))).der
    )
    assert response.certificates == []
    public = (await issuer_of(s)).public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(hashes.SHA256()))
    entries = await s.store.audit.entries(after_seq=0, limit=1000)
    assert any(e.action == "ca.ocsp_settings_changed" and e.ca_id == "issuing" for e in entries)


async def test_signed_requests_can_be_required(status_services: Services) -> None:
    s = status_services
    cert = await issue(s)
    await s.ocsp.configure("issuing", require_signed_requests=True)
    unsigned = await s.ocsp.respond("issuing", await single_request(s, cert.certificate))
    assert unsigned.status is ResponseStatus.SIG_REQUIRED
    key = generate_private_key(KeyAlgorithm.EC_P256)
    requester = await s.issuance.issue(
        IssuanceRequest(
            ca="issuing", profile="privatessl-tls-client", requester=Requester("t"), csr=make_csr(key)
        )
    )
    signer = (key, requester.certificate)
    issuer = await issuer_of(s)
    data = ocsp_support.request([ocsp_support.cert_id(issuer, cert.serial)], signer=signer)  # type: ignore[arg-type]
    assert (await s.ocsp.respond("issuing", data)).status is ResponseStatus.SUCCESSFUL
    await s.revocation.revoke(StatusChange(requester.serial_hex, "o"))
    again = ocsp_support.request([ocsp_support.cert_id(issuer, cert.serial)], signer=signer)  # type: ignore[arg-type]
    assert (await s.ocsp.respond("issuing", again)).status is ResponseStatus.UNAUTHORIZED


@pytest.mark.parametrize(
    ("ca", "status"),
    [
        ("nope", ResponseStatus.UNAUTHORIZED),
        ("root", ResponseStatus.UNAUTHORIZED),
        ("plain", ResponseStatus.UNAUTHORIZED),
    ],
    ids=["unknown-ca", "other-issuer", "ocsp-disabled"],
)
async def test_refusals_by_ca(status_services: Services, ca: str, status: ResponseStatus) -> None:
    s = status_services
    await s.authority.create_issuing("plain", "root", "CN=Plain", services=["est"], ocsp_enabled=False)
    cert = await issue(s)
    reply = await s.ocsp.respond(ca, await single_request(s, cert.certificate))
    assert reply.status is status and not reply.cacheable
    assert ocsp.load_der_ocsp_response(reply.der).response_status.value == status.value


@pytest.mark.parametrize(
    "data",
    [b"", b"\x30\x03\x02\x01", b"\xff" * 40],
    ids=["empty", "truncated", "garbage"],
)
async def test_malformed_input_gets_malformed_request(status_services: Services, data: bytes) -> None:
    reply = await status_services.ocsp.respond("issuing", data)
    assert reply.status is ResponseStatus.MALFORMED_REQUEST and reply.der == b"\x30\x03\x0a\x01\x01"


async def test_wrong_issuer_hash_and_unsupported_hash(status_services: Services) -> None:
    s = status_services
    cert = await issue(s)
    issuer = await issuer_of(s)
    wrong = ocsp_support.request([ocsp_support.cert_id(issuer, cert.serial, name_hash=b"\x01" * 20)])
    assert (await s.ocsp.respond("issuing", wrong)).status is ResponseStatus.UNAUTHORIZED
    md5 = ocsp_support.request([ocsp_support.cert_id(issuer, cert.serial, "md5")])
    assert (await s.ocsp.respond("issuing", md5)).status is ResponseStatus.UNAUTHORIZED
    mixed = ocsp_support.request(
        [
            ocsp_support.cert_id(issuer, cert.serial, "sha256"),
            ocsp_support.cert_id(issuer, cert.serial, "md5"),
        ]
    )
    singles = list(verified((await s.ocsp.respond("issuing", mixed)).der).responses)
    assert [r.certificate_status for r in singles] == [ocsp.OCSPCertStatus.GOOD, ocsp.OCSPCertStatus.UNKNOWN]


async def test_revocation_does_not_create_a_responder(status_services: Services) -> None:
    """Listeners only refresh what exists: a revocation on a CA nobody asked OCSP about
    issues no responder certificate (other tests count certificates and events)."""
    s = status_services
    cert = await issue(s)
    await s.revocation.revoke(StatusChange(cert.serial_hex, "o"))
    assert await s.ocsp.responders.current("issuing") is None
    issued = [
        e for e in await s.store.audit.entries(after_seq=0, limit=1000) if e.action == Action.CERT_ISSUED
    ]
    assert len(issued) == 1
