"""Edge cases driven by certbot's `acme` library against the live gateway."""

from __future__ import annotations

from cryptography import x509

from tests.interop.acme.support import (
    AcmeSetup,
    Http01Responder,
    acme_client,
    cert_key_and_csr,
    chain_ders,
    http01_answers,
    in_thread,
    issue,
)
from tests.support.pki import openssl_verify


async def test_http01_order_issues_a_verifiable_certificate(acme: AcmeSetup, tmp_path) -> None:
    responder = await Http01Responder(acme.http01_port).start()
    try:
        client = await in_thread(acme_client, acme)
        _, csr = cert_key_and_csr(["web.example.test"])
        order = await in_thread(issue, client, csr, lambda c, o: http01_answers(c, o, responder))
    finally:
        await responder.stop()
    ders = chain_ders(order.fullchain_pem)
    leaf = x509.load_der_x509_certificate(ders[0])
    assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName
    ) == ["web.example.test"]
    root = acme.live.root_pem.read_bytes()
    openssl_verify(
        tmp_path,
        x509.load_pem_x509_certificate(root).public_bytes(
            __import__("cryptography.hazmat.primitives.serialization", fromlist=["Encoding"]).Encoding.DER
        ),
        ders[1:],
        ders[:1],
    )
