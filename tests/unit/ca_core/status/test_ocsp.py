"""The I/O-free OCSP responder (ca_core/status/ocsp.py): bytes in, decisions and bytes out.

Requests are built with asn1crypto and responses read back with cryptography, so the
code under test is checked by two libraries it does not share its encoder with.
"""

from __future__ import annotations

import datetime as dt

import pytest
from asn1crypto import ocsp as asn1_ocsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from ca_core.model import KeyAlgorithm, RevocationReason
from ca_core.status.ocsp import (
    GOOD,
    MAX_CERT_IDS,
    IssuerIdentity,
    OcspRefusal,
    ResponderIdentity,
    ResponseStatus,
    Revoked,
    answer,
    error_response,
    issuer_serials,
    parse_request,
    sign_response,
    verify_request_signature,
)
from tests.unit.ca_core.status.ocsp_support import NOW, cert_id, new_ca, new_leaf, request

CA = new_ca()
OTHER_CA = new_ca("Other CA")
LEAF = new_leaf(CA, serial=0x1234)
ISSUER = IssuerIdentity.of_certificate(CA[1])
NEXT = NOW + dt.timedelta(days=4)
CUTOFF = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def respond(data: bytes, statuses: dict[int, object]) -> ocsp.OCSPResponse:
    parsed = parse_request(data)
    answers = answer(parsed, ISSUER, statuses, NOW, NEXT, CUTOFF)  # type: ignore[arg-type]
    responder = ResponderIdentity.of(CA[0].public_key(), KeyAlgorithm.EC_P256)
    der = sign_response(
        responder, lambda tbs: CA[0].sign(tbs, ec.ECDSA(hashes.SHA256())), NOW, answers, parsed.nonce
    )
    response = ocsp.load_der_ocsp_response(der)
    CA[0].public_key().verify(response.signature, response.tbs_response_bytes, ec.ECDSA(hashes.SHA256()))
    return response


def test_several_certificates_each_get_their_status_and_the_archive_cutoff() -> None:
    data = request([cert_id(CA[1], 0x1234), cert_id(CA[1], 0x99), cert_id(CA[1], 0x77, "sha256")])
    statuses = {0x1234: GOOD, 0x99: Revoked(NOW - dt.timedelta(hours=1), RevocationReason.KEY_COMPROMISE)}
    response = respond(data, statuses)
    assert response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert response.responder_key_hash is not None and response.responder_name is None
    singles = list(response.responses)
    assert [s.serial_number for s in singles] == [0x1234, 0x99, 0x77]
    assert [s.certificate_status for s in singles] == [
        ocsp.OCSPCertStatus.GOOD,
        ocsp.OCSPCertStatus.REVOKED,
        ocsp.OCSPCertStatus.UNKNOWN,
    ]
    assert singles[1].revocation_reason is x509.ReasonFlags.key_compromise
    assert singles[1].revocation_time_utc == NOW - dt.timedelta(hours=1)
    assert isinstance(singles[2].hash_algorithm, hashes.SHA256)  # the CertID is echoed as sent
    assert all(s.this_update_utc == NOW and s.next_update_utc == NEXT for s in singles)
    basic = asn1_ocsp.OCSPResponse.load(response.public_bytes(serialization.Encoding.DER)).basic_ocsp_response
    for single in basic["tbs_response_data"]["responses"]:
        (cutoff,) = single["single_extensions"]
        assert cutoff["extn_id"].native == "archive_cutoff" and cutoff["extn_value"].native == CUTOFF


def test_nonce_is_echoed() -> None:
    response = respond(request([cert_id(CA[1], 0x1234)], nonce=b"n" * 32), {0x1234: GOOD})
    assert response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == b"n" * 32


def test_no_nonce_no_response_extensions() -> None:
    assert len(respond(request([cert_id(CA[1], 0x1234)]), {0x1234: GOOD}).extensions) == 0


def test_hold_is_revoked_with_certificate_hold_and_unspecified_has_no_reason() -> None:
    data = request([cert_id(CA[1], 1), cert_id(CA[1], 2)])
    held = Revoked(NOW, RevocationReason.CERTIFICATE_HOLD)
    singles = list(respond(data, {1: held, 2: Revoked(NOW, None)}).responses)
    assert singles[0].revocation_reason is x509.ReasonFlags.certificate_hold
    assert (
        singles[1].certificate_status is ocsp.OCSPCertStatus.REVOKED and singles[1].revocation_reason is None
    )


def test_cryptography_reads_our_request_the_same_way() -> None:
    built = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(LEAF[1], CA[1], hashes.SHA1())
        .add_extension(x509.OCSPNonce(b"0123456789abcdef"), False)
        .build()
    )
    parsed = parse_request(built.public_bytes(serialization.Encoding.DER))
    assert issuer_serials(parsed, ISSUER) == [0x1234]
    assert parsed.cert_ids[0].der == ISSUER.cert_id(0x1234).der  # pre-signed CertIDs match clients'
    assert parsed.nonce == b"\x04\x100123456789abcdef"


# --- refusals --------------------------------------------------------------------------------

GOOD_REQUEST = request([cert_id(CA[1], 0x1234)])


def _tlv(tag: int, content: bytes) -> bytes:
    from ca_core.status.der import tlv

    return tlv(tag, content)


MALFORMED = {
    "empty": b"",
    "garbage": b"not DER at all",
    "truncated": GOOD_REQUEST[:-5],
    "trailing-data": GOOD_REQUEST + b"\x00",
    "not-a-request": _tlv(0x30, _tlv(0x02, b"\x01")),
    "oversized": b"\x30\x84\x00\x02\x00\x00" + b"\x00" * 131_072,
    "wrong-version": request([cert_id(CA[1], 1)], version=1),
    "no-cert-ids": request([]),
    "too-many-cert-ids": request([cert_id(CA[1], i) for i in range(1, MAX_CERT_IDS + 2)]),
    "nonce-too-long": request([cert_id(CA[1], 1)], nonce=b"x" * 33),
    "nonce-empty": request([cert_id(CA[1], 1)], nonce=b""),
    "unknown-critical-extension": request(
        [cert_id(CA[1], 1)],
        extra_extensions=[{"extn_id": "1.2.3.4", "critical": True, "extn_value": b"\x05\x00"}],
    ),
    "negative-serial": request([cert_id(CA[1], -5)]),
}


@pytest.mark.parametrize("data", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_requests_are_refused(data: bytes) -> None:
    with pytest.raises(OcspRefusal) as refusal:
        parse_request(data)
    assert refusal.value.status is ResponseStatus.MALFORMED_REQUEST


def test_unknown_non_critical_extension_is_ignored() -> None:
    data = request(
        [cert_id(CA[1], 1)],
        extra_extensions=[{"extn_id": "1.2.3.4", "critical": False, "extn_value": b"\x05\x00"}],
    )
    assert parse_request(data).nonce is None


@pytest.mark.parametrize(
    "cert_ids",
    [
        pytest.param([cert_id(OTHER_CA[1], 0x1234)], id="other-issuer"),
        pytest.param([cert_id(CA[1], 0x1234, name_hash=b"\x00" * 20)], id="wrong-issuer-name-hash"),
        pytest.param([cert_id(CA[1], 0x1234, "md5")], id="unsupported-hash-md5"),
        pytest.param([cert_id(CA[1], 0x1234, "sha3_256")], id="unsupported-hash-sha3"),
    ],
)
def test_requests_naming_no_certificate_of_this_ca_are_unauthorized(cert_ids: list[asn1_ocsp.CertId]) -> None:
    parsed = parse_request(request(cert_ids))
    with pytest.raises(OcspRefusal) as refusal:
        answer(parsed, ISSUER, {0x1234: GOOD}, NOW, NEXT, None)
    assert refusal.value.status is ResponseStatus.UNAUTHORIZED


def test_foreign_and_unsupported_cert_ids_beside_ours_are_unknown() -> None:
    data = request([cert_id(CA[1], 0x1234), cert_id(OTHER_CA[1], 0x1234), cert_id(CA[1], 0x1234, "md5")])
    singles = list(respond(data, {0x1234: GOOD}).responses)
    assert [s.certificate_status for s in singles] == [
        ocsp.OCSPCertStatus.GOOD,
        ocsp.OCSPCertStatus.UNKNOWN,
        ocsp.OCSPCertStatus.UNKNOWN,
    ]


def test_error_responses_are_bare_statuses() -> None:
    for status in (
        ResponseStatus.MALFORMED_REQUEST,
        ResponseStatus.UNAUTHORIZED,
        ResponseStatus.SIG_REQUIRED,
    ):
        parsed = ocsp.load_der_ocsp_response(error_response(status))
        assert parsed.response_status.value == status.value


# --- signed requests ---------------------------------------------------------------------------


def test_signed_request_verifies_against_its_issuer() -> None:
    parsed = parse_request(request([cert_id(CA[1], 1)], signer=LEAF))
    assert parsed.signature is not None
    signer, issuer = verify_request_signature(parsed.signature, [OTHER_CA[1], CA[1]], NOW)
    assert signer.serial_number == 0x1234 and issuer == CA[1]


def test_openssl_style_request_from_cryptography_signature_fields() -> None:
    """The tbsRequest that was signed is exactly what verification hashes (as received)."""
    data = bytearray(request([cert_id(CA[1], 1)], signer=LEAF))
    parsed = parse_request(bytes(data))
    assert parsed.signature is not None and parsed.signature.tbs_request in bytes(data)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(
            lambda: request([cert_id(CA[1], 1)], signer=new_leaf(OTHER_CA)), "not issued", id="untrusted"
        ),
        pytest.param(
            lambda: request([cert_id(CA[1], 1)], signer=(new_leaf(CA)[0], LEAF[1])),
            "does not verify",
            id="bad-signature",
        ),
    ],
)
def test_bad_request_signatures_are_unauthorized(make: object, message: str) -> None:
    parsed = parse_request(make())  # type: ignore[operator]
    assert parsed.signature is not None
    with pytest.raises(OcspRefusal, match=message) as refusal:
        verify_request_signature(parsed.signature, [CA[1]], NOW)
    assert refusal.value.status is ResponseStatus.UNAUTHORIZED


def test_expired_request_signer_is_unauthorized() -> None:
    parsed = parse_request(request([cert_id(CA[1], 1)], signer=LEAF))
    assert parsed.signature is not None
    with pytest.raises(OcspRefusal, match="not valid now"):
        verify_request_signature(parsed.signature, [CA[1]], NOW + dt.timedelta(days=400))
