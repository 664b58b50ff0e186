"""RFC 7030 operations driven by curl and openssl against a live gateway: cacerts,
simpleenroll (HTTP Basic), simplereenroll (the issued certificate as TLS client
certificate), serverkeygen (multipart, key matching the certificate), csrattrs (read
by `openssl asn1parse`), fullcmc (501). Every issued chain goes through `openssl verify`."""

from __future__ import annotations

import base64
import email
import email.policy

import pytest

from tests.interop.est.conftest import PASSWORD, EstClient

pytestmark = pytest.mark.interop


async def test_cacerts_gives_the_issuing_ca_and_its_root(est: EstClient) -> None:
    reply = await est.curl("cacerts", content_type=None)
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/pkcs7-mime; smime-type=certs-only"
    assert b"\r\n" in reply.body  # line-broken base64, as `openssl base64 -d` wants
    subjects = [
        await est.x509_text(_write(est, pem), "-subject") for pem in await est.certificates(reply.body)
    ]
    assert sorted(s.strip() for s in subjects) == [
        "subject=O = ceg tests, CN = Test Issuing issuing",
        "subject=O = ceg tests, CN = Test Root root",
    ]
    # The default CA (the only EST binding) answers without the label.
    default = await est.curl("cacerts", base=f"{est.live.https}/.well-known/est")
    assert default.status == 200 and default.body == reply.body


async def test_simpleenroll_with_basic_auth(est: EstClient) -> None:
    _, csr = await est.csr("sensor-12", sans=("sensor-12.example", "sensor-12.local"))
    reply = await est.curl("simpleenroll", csr, basic=(est.username, PASSWORD))
    assert reply.status == 200, reply.text
    assert reply.headers["content-type"] == "application/pkcs7-mime; smime-type=certs-only"
    cert = await est.write_certificate(reply.body)
    await est.verify(cert)
    text = await est.x509_text(cert, "-subject", "-ext", "subjectAltName,keyUsage")
    assert "CN = sensor-12" in text
    assert "DNS:sensor-12.example, DNS:sensor-12.local" in text
    assert "Digital Signature" in text  # the binding's default profile, est-digital-signature
    serial = (await est.x509_text(cert, "-serial")).strip().split("=")[1].lower().lstrip("0")
    record = await est.live.services.store.certificates.get(serial)
    assert record is not None and record.profile == "est-digital-signature"
    assert record.requester["protocol"] == "est" and record.requester["principal"] == est.username


async def test_simpleenroll_on_the_default_path_and_with_an_rsa_key(est: EstClient) -> None:
    _, csr = await est.csr("printer", key="rsa:2048", sans=())
    reply = await est.curl(
        "simpleenroll", csr, basic=(est.username, PASSWORD), base=f"{est.live.https}/.well-known/est"
    )
    assert reply.status == 200, reply.text
    cert = await est.write_certificate(reply.body)
    await est.verify(cert)
    assert "Public-Key: (2048 bit)" in await est.x509_text(cert, "-text")


async def test_simplereenroll_with_the_issued_certificate_as_client_certificate(est: EstClient) -> None:
    key, csr = await est.csr("gateway-3", sans=("gateway-3.example",))
    first = await est.write_certificate(
        (await est.curl("simpleenroll", csr, basic=(est.username, PASSWORD))).body
    )
    # Renew: same key, same names, the certificate itself authenticates (no password).
    renewed = await est.curl("simplereenroll", csr, client=(first, key))
    assert renewed.status == 200, renewed.text
    second = await est.write_certificate(renewed.body)
    await est.verify(second)
    # Rekey: a new key with the same names, authenticated by the renewed certificate.
    new_key, new_csr = await est.csr("gateway-3", sans=("gateway-3.example",))
    rekeyed = await est.curl("simplereenroll", new_csr, client=(second, key))
    assert rekeyed.status == 200, rekeyed.text
    third = await est.write_certificate(rekeyed.body)
    await est.verify(third)
    serials = [
        (await est.x509_text(c, "-serial")).strip().split("=")[1].lower().lstrip("0")
        for c in (first, second, third)
    ]
    assert len(set(serials)) == 3
    records = [await est.live.services.store.certificates.get(s) for s in serials]
    assert records[1] is not None and records[1].renewal_of == serials[0]
    assert records[2] is not None and records[2].renewal_of == serials[1]
    assert records[2].requester["principal"] == f"cert:{serials[1]}"
    pub = await est.openssl("pkey", "-in", str(new_key), "-pubout")
    assert pub == await est.openssl("x509", "-in", str(third), "-noout", "-pubkey")


@pytest.mark.parametrize(
    ("key", "expect"),
    [("ec:P-384", "ASN1 OID: secp384r1"), ("rsa:2048", "Private-Key: (2048 bit")],
)
async def test_serverkeygen_returns_a_pkcs8_key_matching_its_certificate(
    est: EstClient, key: str, expect: str
) -> None:
    _, csr = await est.csr("keyless-device", key=key, sans=("keyless.example",))
    reply = await est.curl("serverkeygen", csr, basic=(est.username, PASSWORD))
    assert reply.status == 200, reply.text
    assert reply.headers["content-type"].startswith("multipart/mixed; boundary=")
    message = email.message_from_bytes(
        f"Content-Type: {reply.headers['content-type']}\r\n\r\n".encode() + reply.body,
        policy=email.policy.HTTP,
    )
    key_part, cert_part = message.iter_parts()
    assert key_part.get_content_type() == "application/pkcs8"
    assert cert_part.get_content_type() == "application/pkcs7-mime"
    assert cert_part.get_param("smime-type") == "certs-only"
    pkcs8 = base64.b64decode(key_part.get_payload())
    key_pem = await est.openssl("pkey", "-inform", "DER", stdin=pkcs8)
    assert expect in (await est.openssl("pkey", "-noout", "-text", stdin=key_pem)).decode()
    cert = await est.write_certificate(cert_part.get_payload().encode())
    await est.verify(cert)
    assert await est.openssl("pkey", "-pubout", stdin=key_pem) == await est.openssl(
        "x509", "-in", str(cert), "-noout", "-pubkey"
    )
    assert "CN = keyless-device" in await est.x509_text(cert, "-subject")
    # The key was made for this answer only: it is nowhere in the database.
    for stored in est.live.config.data_dir.glob("ceg.db*"):
        assert pkcs8 not in stored.read_bytes()


async def test_csrattrs_read_by_openssl_asn1parse(est: EstClient) -> None:
    await est.configure(key_types=["ec-p384"], default_profile="est-non-repudiation")
    reply = await est.curl("csrattrs", content_type=None)
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/csrattrs"
    der = await est.openssl("base64", "-d", stdin=reply.body)
    parsed = (await est.openssl("asn1parse", "-inform", "DER", stdin=der)).decode()
    for expected in (
        "id-ecPublicKey",
        "secp384r1",
        "ecdsa-with-SHA256",
        "Extension Request",
        "X509v3 Key Usage",
    ):
        assert expected in parsed, parsed
    assert "rsaEncryption" not in parsed and "prime256v1" not in parsed
    # The KeyUsage template is the default profile's: nonRepudiation (bit 1), DER 03 02 06 40.
    assert "03020640" in parsed


async def test_profile_follows_the_requested_key_usage(est: EstClient) -> None:
    _, csr = await est.csr("signer", key_usage="nonRepudiation")
    reply = await est.curl("simpleenroll", csr, basic=(est.username, PASSWORD))
    assert reply.status == 200, reply.text
    cert = await est.write_certificate(reply.body)
    await est.verify(cert)
    assert "Non Repudiation" in await est.x509_text(cert, "-ext", "keyUsage")
    _, both = await est.csr("box", key="rsa:2048", key_usage="digitalSignature,keyEncipherment")
    reply = await est.curl("simpleenroll", both, basic=(est.username, PASSWORD))
    cert = await est.write_certificate(reply.body)
    await est.verify(cert)
    assert "Digital Signature, Key Encipherment" in await est.x509_text(cert, "-ext", "keyUsage")


async def test_fullcmc_is_answered_not_implemented(est: EstClient) -> None:
    reply = await est.curl(
        "fullcmc",
        b"MIIB",
        content_type="application/pkcs7-mime; smime-type=CMC-request",
        basic=(est.username, PASSWORD),
    )
    assert reply.status == 501
    assert reply.headers["content-type"].startswith("text/plain")
    assert "Full CMC" in reply.text


def _write(est: EstClient, pem: str):  # type: ignore[no-untyped-def]
    path = est.path("pem").with_suffix(".pem")
    path.write_text(pem)
    return path


async def test_demo_setup_gives_a_working_endpoint_and_user(est: EstClient) -> None:
    from protocols.est import frontend

    binding = await est.live.bindings.resolve("est", est.live.issuing)
    assert binding is not None
    demo = await frontend.demo_setup(est.live.services, binding, est.live.https)
    assert demo["base"] == f"{est.live.https}/.well-known/est/{est.live.issuing}"
    _, csr = await est.csr("demo-device")
    reply = await est.curl("simpleenroll", csr, basic=(demo["username"], demo["password"]), base=demo["base"])
    assert reply.status == 200, reply.text


async def test_default_ca_is_the_binding_marked_default_once_there_are_several(est: EstClient) -> None:
    from tests.support.hierarchy import make_hierarchy

    await make_hierarchy(est.live.services, root_id="root2", issuing_id="issuing2")
    await est.live.bindings.put("est", "issuing2")
    default = f"{est.live.https}/.well-known/est"
    reply = await est.curl("cacerts", base=default)
    assert reply.status == 404 and "default CA" in reply.text  # two bindings, neither marked
    await est.live.bindings.put("est", "issuing2", settings={"default": True})
    chain = await est.certificates((await est.curl("cacerts", base=default)).body)
    subjects = [await est.x509_text(_write(est, pem), "-subject") for pem in chain]
    assert any("Test Issuing issuing2" in s for s in subjects)
