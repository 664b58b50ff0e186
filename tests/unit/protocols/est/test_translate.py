"""EST requests to the common IssuanceRequest, CA-core errors to HTTP answers."""

from __future__ import annotations

import base64

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from ca_core import errors
from ca_core.model import Requester
from protocols.est import codec, translate
from tests.support.pki import new_key


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.BadCsr("CSR signature does not verify"), 400),
        (errors.UnsupportedKey("RSA-1024 key"), 400),
        (errors.PolicyViolation("notBefore must be within a day of now"), 400),
        (errors.ProfileNotEnabled("profile x is not offered"), 400),
        (errors.Unauthorized("who?"), 401),
        (errors.Forbidden("no"), 403),
        (errors.NotFound("no CA"), 404),
        (errors.InvalidState("CA is deleting"), 409),
        (errors.RateLimited("slow down", retry_after=2.2), 429),
        (errors.KeyBackendError("token PIN /secret/path wrong"), 500),
    ],
)
def test_ca_core_errors_become_http_statuses(error: errors.CegError, status: int) -> None:
    answer = translate.error_for(error, "issuing")
    assert answer.status == status
    if status == 500:
        assert "secret" not in answer.message  # internals never reach the wire
    else:
        assert answer.message == error.message
    assert ("WWW-Authenticate" in answer.headers) == (status == 401)
    if status == 429:
        assert answer.headers["Retry-After"] == "3"


def _csr_view() -> codec.CsrView:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "meter-9")]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("meter-9.example")]), critical=False)
        .add_extension(
            x509.CertificatePolicies([x509.PolicyInformation(x509.ObjectIdentifier("1.2.3.4"), None)]),
            critical=False,
        )
        .add_extension(x509.OCSPNoCheck(), critical=False)
        .sign(new_key(), hashes.SHA256())
    )
    return codec.read_csr(base64.b64encode(csr.public_bytes(serialization.Encoding.DER)))


def test_enrollment_request_keeps_only_extensions_the_profile_accepts() -> None:
    view = _csr_view()
    request = translate.enrollment_request(
        "issuing", "est-digital-signature", view, Requester("est", "alice"), {"2.5.29.32"}, renewal_of="ab12"
    )
    assert request.csr == view.der and request.public_key is None
    assert [e.oid for e in request.extensions] == ["2.5.29.32"]  # OCSP no-check dropped
    assert request.renewal_of == "ab12" and request.subject is None  # names from the CSR


def test_keygen_request_names_from_the_csr_key_from_the_server() -> None:
    view = _csr_view()
    request = translate.keygen_request(
        "issuing", "est-key-encipherment", view, b"spki", Requester("est", "alice"), set()
    )
    assert request.csr is None and request.public_key == b"spki" and request.pop_verified
    assert request.subject == view.subject
    assert request.subject_alt_names == (x509.DNSName("meter-9.example"),)
    assert request.extensions == ()
