"""Linking identity and proof of possession (RFC 7030 3.5): the CSR's challengePassword
carries the tls-unique of the TLS 1.2 connection it travels on. curl cannot build such a
CSR (it needs the connection first), so the client is Python's own ssl module: connect,
read tls-unique, sign the CSR, post it on the same connection."""

from __future__ import annotations

import asyncio
import base64
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import AttributeOID, NameOID

from tests.interop.est.conftest import PASSWORD, EstClient
from tests.support.pki import new_key

pytestmark = pytest.mark.interop


async def _enroll_linked(est: EstClient, tls: ssl.TLSVersion, tamper: bool = False) -> tuple[int, str]:
    context = ssl.create_default_context(cafile=str(est.live.root_pem))
    context.maximum_version = tls
    port = int(est.live.https.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    try:
        tls_unique = writer.get_extra_info("ssl_object").get_channel_binding("tls-unique") or b""
        if tamper:
            tls_unique = bytes(b ^ 0xFF for b in tls_unique)
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "linked-device")]))
            .add_attribute(AttributeOID.CHALLENGE_PASSWORD, base64.b64encode(tls_unique))
            .sign(new_key(), hashes.SHA256())
        )
        body = base64.b64encode(csr.public_bytes(serialization.Encoding.DER))
        token = base64.b64encode(f"{est.username}:{PASSWORD}".encode()).decode()
        head = (
            f"POST /.well-known/est/{est.live.issuing}/simpleenroll HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\nAuthorization: Basic {token}\r\n"
            f"Content-Type: application/pkcs10\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode() + body)
        await writer.drain()
        answer = await reader.read()
    finally:
        writer.close()
    status = int(answer.split(b" ", 2)[1])
    return status, answer.partition(b"\r\n\r\n")[2].decode(errors="replace")


async def test_csr_bound_to_the_tls_connection(est: EstClient) -> None:
    await est.configure(link_identity=True)
    der = await est.openssl("base64", "-d", stdin=(await est.curl("csrattrs")).body)
    assert "challengePassword" in (await est.openssl("asn1parse", "-inform", "DER", stdin=der)).decode()
    status, body = await _enroll_linked(est, ssl.TLSVersion.TLSv1_2)
    assert status == 200, body
    # A challengePassword from another connection (here: altered) is refused.
    status, body = await _enroll_linked(est, ssl.TLSVersion.TLSv1_2, tamper=True)
    assert status == 400 and "not this connection's tls-unique" in body
    # TLS 1.3 has no tls-unique: the binding says so rather than failing obscurely.
    status, body = await _enroll_linked(est, ssl.TLSVersion.TLSv1_3)
    assert status == 400 and "TLS 1.2" in body
    # An ordinary CSR (no challengePassword) is refused on a linking binding.
    _, csr = await est.csr()
    reply = await est.curl("simpleenroll", csr, basic=(est.username, PASSWORD))
    assert reply.status == 400
