"""Issuing CA under an external root, end to end, with plain openssl as the operator's root.

register_external_root -> create_external_issuing (key generated here, state csr-ready)
-> export_csr -> `openssl x509 -req` / `openssl ca` signs it -> import_certificate
(checked: our key, a CA certificate, signed by the registered root) -> issue -> openssl verify.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ca_core.errors import BadRequest, Conflict, InvalidState
from ca_core.model import CaKind, CaState, IssuanceRequest, KeyAlgorithm, Requester
from ca_core.services import Services
from tests.support.external_root import OpensslRoot, openssl_root, sign_csr
from tests.support.lint import assert_lints_clean
from tests.support.pki import make_csr, openssl_verify


def spki(public_key: object) -> bytes:
    return public_key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


async def _waiting_ca(s: Services, root: OpensslRoot, key: KeyAlgorithm = KeyAlgorithm.EC_P256) -> bytes:
    await s.authority.register_external_root("ext-root", root.der)
    ca = await s.authority.create_external_issuing(
        "issuing", "ext-root", "CN=Issuing under Operator,O=ceg tests", key, services=["privatessl", "est"]
    )
    assert ca.state is CaState.CSR_READY and ca.certificate is None
    return await s.authority.export_csr("issuing")


@pytest.mark.parametrize("how", ["x509", "ca"])
async def test_external_root_flow_end_to_end(matrix_services: Services, tmp_path: Path, how: str) -> None:
    s = matrix_services
    root = openssl_root(tmp_path)
    csr_der = await _waiting_ca(s, root)

    csr = x509.load_der_x509_csr(csr_der)
    assert csr.is_signature_valid
    ca = await s.authority.get("issuing")
    assert ca.signer is not None and spki(csr.public_key()) == spki(ca.signer.public_key())
    assert csr.subject.rfc4514_string() == "CN=Issuing under Operator,O=ceg tests"
    bc = csr.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0

    issuing_der = sign_csr(root, csr_der, how)
    ca = await s.authority.import_certificate("issuing", issuing_der)
    assert ca.state is CaState.ACTIVE and ca.der == issuing_der
    assert ca.chain == (issuing_der, root.der)
    assert ca.not_after == x509.load_der_x509_certificate(issuing_der).not_valid_after_utc

    issued = await s.issuance.issue(
        IssuanceRequest(
            ca="issuing",
            profile="privatessl-tls-server",
            requester=Requester("test"),
            csr=make_csr(dns=["behind-operator-root.example"]),
        )
    )
    assert issued.chain == (issuing_der, root.der)
    aki = issued.certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ca.key_identifier
    openssl_verify(tmp_path, root.der, [issuing_der], [issuing_der, issued.der])
    assert_lints_clean(issued.der, "leaf under external root")
    assert_lints_clean(issuing_der, "issuing CA signed by openssl")

    actions = [e.action for e in await s.store.audit.entries(ca="issuing")]
    assert actions[:3] == ["ca.created", "ca.csr_exported", "ca.cert_imported"]
    assert await s.store.audit.verify() == []


@pytest.mark.parametrize(
    "problem",
    ["wrong-key", "not-a-ca", "other-root", "same-name-other-key", "no-ski", "no-cert-sign", "garbage"],
)
async def test_import_refusals(services: Services, tmp_path: Path, problem: str) -> None:
    root = openssl_root(tmp_path)
    csr_der = await _waiting_ca(services, root)
    if problem == "wrong-key":
        # A perfectly good CA certificate from the right root, for somebody else's key.
        certificate = sign_csr(root, make_csr(cn="Someone Else"))
        message = "public key"
    elif problem == "not-a-ca":
        certificate = sign_csr(root, csr_der, extensions="not_ca")
        message = "not a CA"
    elif problem == "other-root":
        certificate = sign_csr(openssl_root(tmp_path, "other", "/CN=Another Root/O=Elsewhere"), csr_der)
        message = "not signed by the external root"
    elif problem == "same-name-other-key":
        # Same subject as the registered root, different key: the name matches, the signature does not.
        certificate = sign_csr(openssl_root(tmp_path, "impostor"), csr_der)
        message = "not signed by the external root"
    elif problem == "no-ski":
        certificate = sign_csr(root, csr_der, extensions="no_ski")
        message = "subjectKeyIdentifier"
    elif problem == "no-cert-sign":
        certificate = sign_csr(root, csr_der, how="ca", extensions="no_cert_sign")
        message = "keyCertSign"
    else:
        certificate = b"\x30\x03\x02\x01\x01"
        message = "does not parse"
    with pytest.raises(BadRequest, match=message):
        await services.authority.import_certificate("issuing", certificate)
    ca = await services.authority.get("issuing", fresh=True)
    assert ca.state is CaState.CSR_READY and ca.record.certificate is None
    refused = [e for e in await services.store.audit.entries(ca="issuing") if e.action == "ca.cert_refused"]
    assert len(refused) == 1 and message in refused[0].detail["reason"]
    assert refused[0].detail["sha256"] == hashlib.sha256(certificate).hexdigest()
    # The right certificate is still accepted afterwards.
    ca = await services.authority.import_certificate("issuing", sign_csr(root, csr_der))
    assert ca.state is CaState.ACTIVE


async def test_import_only_while_waiting(services: Services, tmp_path: Path) -> None:
    root = openssl_root(tmp_path)
    csr_der = await _waiting_ca(services, root)
    certificate = sign_csr(root, csr_der)
    await services.authority.import_certificate("issuing", certificate)
    with pytest.raises(InvalidState):
        await services.authority.import_certificate("issuing", certificate)
    # A CA created under ceg's own root has no CSR to export.
    await services.authority.create_root("own-root", "CN=Own Root")
    with pytest.raises(InvalidState):
        await services.authority.export_csr("own-root")


async def test_register_external_root_refusals(services: Services, tmp_path: Path) -> None:
    root = openssl_root(tmp_path)
    waiting = await _waiting_ca(services, root)
    # A CA certificate that is not self-signed is not a root.
    intermediate = sign_csr(root, waiting)
    with pytest.raises(BadRequest, match="self-signed"):
        await services.authority.register_external_root("not-a-root", intermediate)
    leaf_csr = make_csr(cn="leaf")
    with pytest.raises(BadRequest, match="not a CA"):
        await services.authority.register_external_root("leaf", sign_csr(root, leaf_csr, extensions="not_ca"))
    with pytest.raises(BadRequest, match="does not parse"):
        await services.authority.register_external_root("junk", b"junk")
    with pytest.raises(Conflict):
        await services.authority.register_external_root("ext-root", root.der)
    # Issuing CAs go under external roots only through the CSR flow, never create_issuing.
    with pytest.raises(BadRequest):
        await services.authority.create_issuing("direct", "ext-root", "CN=Direct")
    ext = await services.authority.get("ext-root")
    assert ext.kind is CaKind.EXTERNAL_ROOT and ext.signer is None


async def test_external_root_deletion_waits_for_its_issuing_cas(services: Services, tmp_path: Path) -> None:
    root = openssl_root(tmp_path)
    await _waiting_ca(services, root)
    with pytest.raises(InvalidState, match="issuing"):
        await services.authority.delete("ext-root")
    await services.authority.delete("issuing")
    await services.authority.delete("ext-root")
    assert (await services.authority.get("ext-root", fresh=True)).state is CaState.DELETED
    with pytest.raises(InvalidState):
        await services.authority.create_external_issuing("late", "ext-root", "CN=Too Late")
