"""CRLs and OCSP on every store and key backend: {SQLite, PostgreSQL} x {file, PKCS#11}.

With PKCS#11 the delegated responder's key is generated on the same token as the CA's,
and both the CRL and the OCSP response are signed there."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from ca_core.model import RevocationReason
from ca_core.services import Services
from ca_core.status.revocation import StatusChange
from tests.support.hierarchy import make_hierarchy
from tests.unit.ca_core.status.conftest import issue


async def test_crl_and_ocsp_on_every_backend(matrix_services: Services) -> None:
    s = matrix_services
    await make_hierarchy(s)
    good, revoked = await issue(s), await issue(s)
    await s.revocation.revoke(
        StatusChange(revoked.serial_hex, "o", RevocationReason.KEY_COMPROMISE, publish_now=True)
    )
    ca = await s.authority.get("issuing")
    assert ca.certificate is not None and ca.signer is not None
    crl = x509.load_der_x509_crl((await s.crls.latest("issuing")).der)
    assert crl.is_signature_valid(ca.certificate.public_key())
    assert crl.get_revoked_certificate_by_serial_number(revoked.serial) is not None
    assert crl.get_revoked_certificate_by_serial_number(good.serial) is None
    for cert, expected in ((good, ocsp.OCSPCertStatus.GOOD), (revoked, ocsp.OCSPCertStatus.REVOKED)):
        request = (
            ocsp.OCSPRequestBuilder().add_certificate(cert.certificate, ca.certificate, hashes.SHA1()).build()
        )
        reply = await s.ocsp.respond("issuing", request.public_bytes(serialization.Encoding.DER))
        response = ocsp.load_der_ocsp_response(reply.der)
        assert response.certificate_status is expected
        (responder,) = response.certificates
        public = responder.public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(hashes.SHA256()))
    credential = await s.ocsp.responders.current("issuing")
    assert credential is not None
    assert credential.key_ref.split(":")[0] == ca.signer.key_ref.split(":")[0]  # same key backend
