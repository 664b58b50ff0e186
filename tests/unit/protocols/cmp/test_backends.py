"""CMP on every store and key backend ({SQLite, PostgreSQL} x {file keys, PKCS#11 on
SoftHSM2}): the transaction documents, the responder key made by the key backend (on the
token for PKCS#11) and the certificates all live where a cluster needs them."""

from __future__ import annotations

from cryptography import x509

from ca_core.keys.file import generate_private_key
from ca_core.model import CertStatus, KeyAlgorithm, Requester
from ca_core.services import Services
from protocols._shared.web import Binding
from protocols.cmp import codec, core
from protocols.cmp.server import CmpServer, ServerState
from tests.support import cmp_client
from tests.support.cmp_client import MacCredential, Session, SignatureCredential
from tests.support.hierarchy import make_hierarchy


async def test_ir_cr_rr_on_every_backend(matrix_services: Services) -> None:
    services = matrix_services
    _, issuing = await make_hierarchy(services)
    await services.credentials.create_shared_secret("ref", {"protocol": "cmp", "ca": issuing}, secret="pw")
    binding = Binding("cmp", issuing, core.PROFILES, core.PROFILES[0], True, core.CmpSettings().as_dict())
    state = ServerState()

    async def send(data: bytes) -> bytes:
        return await CmpServer(services, state).handle(binding, data, Requester("cmp"), None)

    key = generate_private_key(KeyAlgorithm.EC_P256)
    session = Session(MacCredential("ref", b"pw"), send)
    answer = await session.exchange(codec.CertReqBody("ir", (cmp_client.cert_request(key, "CN=matrix"),)))
    certificate = cmp_client.issued_certificate(answer)
    assert isinstance((await session.exchange(cmp_client.cert_conf(certificate))).body, codec.PkiConfBody)

    chain = (await services.authority.get(issuing)).chain
    device = SignatureCredential(certificate, key, chain[:-1])
    session = Session(device, send)
    second_key = generate_private_key(KeyAlgorithm.EC_P256)
    answer = await session.exchange(
        codec.CertReqBody("cr", (cmp_client.cert_request(second_key, "CN=second"),))
    )
    responder = await state.responders.get(services, issuing)
    assert cmp_client.signed_by(answer, responder.certificate)
    await session.exchange(cmp_client.cert_conf(cmp_client.issued_certificate(answer)))

    answer = await Session(device, send).exchange(cmp_client.revocation(certificate))
    assert cmp_client.fail_info(answer) == frozenset()
    serial = format(x509.load_der_x509_certificate(certificate).serial_number, "x")
    record = await services.store.certificates.get(serial)
    assert record is not None and record.status is CertStatus.REVOKED
