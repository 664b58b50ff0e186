"""SCEP on every store and key backend ({SQLite, PostgreSQL} x {file keys, PKCS#11 on
SoftHSM2}): the RA key made by the key backend (on the token for PKCS#11) decrypts the
envelope (C_Decrypt) and signs the CertRep, the transaction rows and certificates live in
the shared store, and a replay returns the same certificate."""

from __future__ import annotations

from ca_core.services import Services
from protocols.scep import frontend
from protocols.scep.codec import MessageType, PkiStatus
from tests.support.hierarchy import make_hierarchy
from tests.support.scep_peer import ScepPeer, scep_csr
from tests.unit.protocols.scep.conftest import STATIC, Scep, bind


async def test_enrol_renew_and_replay_on_every_backend(matrix_services: Services) -> None:
    services = matrix_services
    _, issuing = await make_hierarchy(services)
    binding = await bind(services, issuing, challenge="static", challenge_password=STATIC)
    responder = frontend.responder(services)
    identity = await responder.registration_authority.identity(issuing)
    scep = Scep(services, responder, binding, identity.current.certificate)

    peer = scep.peer("matrix.example")
    request = peer.request(MessageType.PKCS_REQ, scep_csr(peer.key, "matrix.example", STATIC), "tx-matrix")
    first = peer.read(await scep.send(request))
    assert first.status is PkiStatus.SUCCESS, first.view.fail_text
    # signed by the RA certificate whose key the backend holds (decode_cert_rep verified it)
    assert first.view.signer_certificate == identity.current.certificate
    again = peer.read(
        await scep.send(
            peer.request(MessageType.PKCS_REQ, scep_csr(peer.key, "matrix.example", STATIC), "tx-matrix")
        )
    )
    assert again.certificate.serial_number == first.certificate.serial_number

    renewer = ScepPeer(peer.key, first.certificates[0], scep.ra)
    renewed = renewer.read(
        await scep.send(renewer.request(MessageType.RENEWAL_REQ, scep_csr(peer.key, "matrix.example")))
    )
    assert renewed.status is PkiStatus.SUCCESS, renewed.view.fail_text
    record = await services.store.certificates.get(format(renewed.certificate.serial_number, "x"))
    assert record is not None and record.renewal_of == format(first.certificate.serial_number, "x")
