"""Every EST refusal, with curl and openssl as the client: the status RFC 7030 gives it,
a text/plain body that says why, and no certificate issued."""

from __future__ import annotations

import base64

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from ca_core.model import RevocationReason
from ca_core.status.revocation import StatusChange
from ca_core.store import CertificateQuery
from tests.interop.est.conftest import PASSWORD, EstClient
from tests.support.hierarchy import make_hierarchy

pytestmark = pytest.mark.interop


async def _issued(est: EstClient) -> int:
    return (await est.live.services.store.certificates.search(CertificateQuery(profile=None, limit=1))).total


async def _refused(est: EstClient, reply_status: int, expected: int, text: str, body: str) -> None:
    assert reply_status == expected, body
    assert text.lower() in body.lower(), body


async def test_wrong_password_and_missing_credentials_get_401_with_a_challenge(est: EstClient) -> None:
    _, csr = await est.csr()
    before = await _issued(est)
    for basic in ((est.username, "not the password"), ("nobody", PASSWORD), None):
        reply = await est.curl("simpleenroll", csr, basic=basic)
        assert reply.status == 401, reply.text
        assert reply.headers["www-authenticate"].startswith('Basic realm="ceg EST issuing"')
        assert reply.headers["content-type"].startswith("text/plain")
    assert "wrong password" in (await est.curl("simpleenroll", csr, basic=(est.username, "x"))).text
    assert await _issued(est) == before


async def test_a_user_of_another_ca_or_protocol_is_forbidden(est: EstClient) -> None:
    services = est.live.services
    await services.credentials.create_basic("other-ca-user", {"protocol": "est", "ca": "elsewhere"}, PASSWORD)
    await services.credentials.create_basic("wstep-user", {"protocol": "wstep"}, PASSWORD)
    _, csr = await est.csr()
    reply = await est.curl("simpleenroll", csr, basic=("other-ca-user", PASSWORD))
    await _refused(est, reply.status, 403, "may not enroll on CA issuing", reply.text)
    reply = await est.curl("simpleenroll", csr, basic=("wstep-user", PASSWORD))
    await _refused(est, reply.status, 403, "not EST", reply.text)


async def test_untrusted_client_certificates(est: EstClient) -> None:
    """A certificate of another CA ceg runs passes the TLS handshake (the listener trusts
    every ceg CA) but is not trusted for this binding; an unknown CA's fails the handshake."""
    services = est.live.services
    await make_hierarchy(services, root_id="root2", issuing_id="issuing2")
    await est.configure(authentication="client-cert")
    await est.live.anchors.refresh(services)  # type: ignore[union-attr]
    await services.credentials.create_basic("user2", {"protocol": "est", "ca": "issuing2"}, PASSWORD)
    await est.live.bindings.put("est", "issuing2")
    key, csr = await est.csr()
    other = f"{est.live.https}/.well-known/est/issuing2"
    foreign = await est.write_certificate(
        (await est.curl("simpleenroll", csr, basic=("user2", PASSWORD), base=other)).body
    )
    reply = await est.curl("simpleenroll", csr, client=(foreign, key))
    await _refused(est, reply.status, 403, "not trusted for EST on CA issuing", reply.text)
    # No client certificate at all on a client-cert binding: 403 (Basic would not help).
    reply = await est.curl("simpleenroll", csr, basic=(est.username, PASSWORD))
    await _refused(est, reply.status, 403, "client certificate is required", reply.text)
    # A self-signed certificate no one trusts: the TLS handshake itself fails.
    self_key, self_cert = est.path("self").with_suffix(".key"), est.path("self").with_suffix(".pem")
    await est.openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(self_key), "-out", str(self_cert), "-subj", "/CN=stranger", "-days", "1",
    )  # fmt: skip
    code, reply_or_none = await est.curl_raw("simpleenroll", csr, client=(self_cert, self_key))
    assert code != 0 and reply_or_none is None


async def test_client_certificate_under_a_binding_trust_anchor(est: EstClient) -> None:
    """A device maker's CA (made with openssl) listed in the binding's trust_anchors: the
    listener starts trusting it and EST accepts the certificates it issued."""
    maker_key, maker = est.path("maker").with_suffix(".key"), est.path("maker").with_suffix(".pem")
    await est.openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(maker_key), "-out", str(maker), "-subj", "/CN=Maker Device CA", "-days", "30",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
    )  # fmt: skip
    idevid_key, idevid_csr = await est.csr("maker-device-0001", sans=())
    idevid = est.path("idevid").with_suffix(".pem")
    csr_der = await est.openssl("base64", "-d", "-in", str(idevid_csr))
    der_path = est.path("idevid-csr").with_suffix(".der")
    der_path.write_bytes(csr_der)
    await est.openssl(
        "x509", "-req", "-inform", "DER", "-in", str(der_path), "-CA", str(maker), "-CAkey", str(maker_key),
        "-CAcreateserial", "-days", "5", "-out", str(idevid),
    )  # fmt: skip
    _, csr = await est.csr("maker-device-0001", sans=("device-0001.example",))
    await est.configure(authentication="client-cert")
    code, _ = await est.curl_raw("simpleenroll", csr, client=(idevid, idevid_key))
    assert code != 0  # not trusted yet: the handshake fails
    await est.configure(authentication="client-cert", trust_anchors=[maker.read_text()])
    reply = await est.curl("simpleenroll", csr, client=(idevid, idevid_key))
    assert reply.status == 200, reply.text
    await est.verify(await est.write_certificate(reply.body))


async def test_both_basic_and_client_certificate_when_the_binding_says_both(est: EstClient) -> None:
    key, csr = await est.csr()
    cert = await est.write_certificate(
        (await est.curl("simpleenroll", csr, basic=(est.username, PASSWORD))).body
    )
    await est.configure(authentication="both")
    reply = await est.curl("simpleenroll", csr, client=(cert, key))
    await _refused(est, reply.status, 401, "HTTP Basic authentication is required as well", reply.text)
    reply = await est.curl("simpleenroll", csr, basic=(est.username, PASSWORD))
    await _refused(est, reply.status, 403, "needs a client certificate and HTTP Basic", reply.text)
    reply = await est.curl("simpleenroll", csr, basic=(est.username, PASSWORD), client=(cert, key))
    assert reply.status == 200, reply.text


async def test_revoked_client_certificate_cannot_reenroll(est: EstClient) -> None:
    key, csr = await est.csr("revoked-device")
    cert = await est.write_certificate(
        (await est.curl("simpleenroll", csr, basic=(est.username, PASSWORD))).body
    )
    serial = (await est.x509_text(cert, "-serial")).strip().split("=")[1].lower().lstrip("0")
    await est.live.services.revocation.revoke(
        StatusChange(serial, "officer", RevocationReason.KEY_COMPROMISE)
    )
    before = await _issued(est)
    reply = await est.curl("simplereenroll", csr, client=(cert, key))
    await _refused(est, reply.status, 403, "revoked", reply.text)
    # Nor does it authenticate a simpleenroll in its place (Basic is still offered: 401).
    reply = await est.curl("simpleenroll", csr, client=(cert, key))
    await _refused(est, reply.status, 401, "revoked", reply.text)
    assert await _issued(est) == before


async def test_reenroll_needs_the_certificate_and_the_same_names(est: EstClient) -> None:
    key, csr = await est.csr("cam-1", sans=("cam-1.example",))
    cert = await est.write_certificate(
        (await est.curl("simpleenroll", csr, basic=(est.username, PASSWORD))).body
    )
    reply = await est.curl("simplereenroll", csr, basic=(est.username, PASSWORD))
    await _refused(est, reply.status, 403, "certificate being renewed", reply.text)
    _, renamed = await est.csr("cam-2", sans=("cam-1.example",), reuse_key=key)
    reply = await est.curl("simplereenroll", renamed, client=(cert, key))
    await _refused(est, reply.status, 400, "subject", reply.text)
    _, more = await est.csr("cam-1", sans=("cam-1.example", "admin.example"), reuse_key=key)
    reply = await est.curl("simplereenroll", more, client=(cert, key))
    await _refused(est, reply.status, 400, "subjectAltName", reply.text)
    # ChangeSubjectName (RFC 6402) is refused rather than silently ignored.
    private = serialization.load_pem_private_key(key.read_bytes(), None)
    change = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cam-1")]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("cam-1.example")]), critical=False)
        .add_attribute(x509.ObjectIdentifier("1.3.6.1.5.5.7.7.36"), b"\x30\x00")
        .sign(private, hashes.SHA256())  # type: ignore[arg-type]
    )
    body = base64.b64encode(change.public_bytes(serialization.Encoding.DER))
    reply = await est.curl("simplereenroll", body, client=(cert, key))
    await _refused(est, reply.status, 400, "ChangeSubjectName", reply.text)
    await est.configure(allow_name_change=True)
    reply = await est.curl("simplereenroll", renamed, client=(cert, key))
    assert reply.status == 200, reply.text


async def test_csr_with_a_bad_signature_is_a_400(est: EstClient) -> None:
    _, csr = await est.csr()
    der = bytearray(await est.openssl("base64", "-d", "-in", str(csr)))
    der[-1] ^= 0x01  # inside the signature's s value: still DER, no longer a valid signature
    forged = await est.openssl("base64", stdin=bytes(der))
    before = await _issued(est)
    reply = await est.curl("simpleenroll", forged, basic=(est.username, PASSWORD))
    await _refused(est, reply.status, 400, "signature", reply.text)
    assert await _issued(est) == before


async def test_key_type_the_binding_does_not_allow_is_a_400(est: EstClient) -> None:
    await est.configure(key_types=["ec-p384", "rsa-3072"])
    for key in ("ec:P-256", "rsa:2048"):
        _, csr = await est.csr(key=key)
        reply = await est.curl("simpleenroll", csr, basic=(est.username, PASSWORD))
        await _refused(est, reply.status, 400, "is not accepted here; allowed: ec-p384, rsa-3072", reply.text)
        reply = await est.curl("serverkeygen", csr, basic=(est.username, PASSWORD))
        await _refused(est, reply.status, 400, "is not accepted here", reply.text)
    _, good = await est.csr(key="ec:P-384")
    assert (await est.curl("simpleenroll", good, basic=(est.username, PASSWORD))).status == 200
    # Each refusal is in the audit trail with the principal that asked.
    refused = await est.live.services.store.audit.entries(actions=["certificate.refused"], ca="issuing")
    assert len(refused) == 4
    assert {e.actor for e in refused} == {f"est:{est.username}"}
    assert {e.detail["operation"] for e in refused} == {"simpleenroll", "serverkeygen"}


async def test_key_usage_no_allowed_profile_grants_is_a_400(est: EstClient) -> None:
    _, csr = await est.csr(key_usage="keyCertSign")
    reply = await est.curl("simpleenroll", csr, basic=(est.username, PASSWORD))
    await _refused(est, reply.status, 400, "no profile here grants the requested key usage", reply.text)


@pytest.mark.parametrize(
    "body",
    [b"this is not base64!", b"MIIB$$$$", b"", b"\x30\x82\x01\x00\xff\xfe"],
    ids=["words", "dollars", "empty", "raw-der"],
)
async def test_malformed_base64_is_a_400(est: EstClient, body: bytes) -> None:
    reply = await est.curl("simpleenroll", body, basic=(est.username, PASSWORD))
    await _refused(est, reply.status, 400, "base64", reply.text)


async def test_base64_that_is_not_a_csr_is_a_400(est: EstClient) -> None:
    reply = await est.curl("simpleenroll", b"aGVsbG8gd29ybGQ=\r\n", basic=(est.username, PASSWORD))
    await _refused(est, reply.status, 400, "PKCS#10", reply.text)


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "application/pkcs7-mime", "text/plain", None]
)
async def test_wrong_content_type_is_a_415(est: EstClient, content_type: str | None) -> None:
    _, csr = await est.csr()
    reply = await est.curl(
        "simpleenroll", csr, basic=(est.username, PASSWORD), content_type=content_type or "", method="POST"
    )
    await _refused(est, reply.status, 415, "Content-Type must be application/pkcs10", reply.text)


async def test_transport_and_addressing_refusals(est: EstClient) -> None:
    _, csr = await est.csr()
    # Plain HTTP: EST is for TLS (RFC 7030 3.3).
    http = f"{est.live.http}/.well-known/est/issuing"
    reply = await est.curl("simpleenroll", csr, basic=(est.username, PASSWORD), base=http)
    await _refused(est, reply.status, 403, "needs HTTPS", reply.text)
    # A CA without an EST binding.
    reply = await est.curl("cacerts", base=f"{est.live.https}/.well-known/est/nope")
    await _refused(est, reply.status, 404, "est is not enabled for CA 'nope'", reply.text)
    # A body far larger than any CSR.
    reply = await est.curl("simpleenroll", b"A" * 300_000, basic=(est.username, PASSWORD))
    assert reply.status == 413
    # GET on an operation that takes a POST.
    reply = await est.curl("simpleenroll")
    assert reply.status == 405
