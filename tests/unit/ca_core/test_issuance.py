"""IssuanceService: the common path every protocol ends in."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from ca_core.errors import (
    BadCsr,
    BadSubjectAltName,
    ExtensionNotAllowed,
    InvalidState,
    ProfileNotEnabled,
    RateLimited,
    UnsupportedKey,
)
from ca_core.issuance import RateLimit, RateLimits
from ca_core.model import IssuanceRequest, KeyAlgorithm, RequestedExtension, Requester, add_years
from ca_core.services import Services
from ca_core.store import CertificateQuery
from ca_core.x509.names import parse_san
from tests.support.hierarchy import make_hierarchy
from tests.support.pki import make_csr, new_key, openssl_verify

REQ = Requester("test", "tester")


def request(csr: bytes, profile: str = "privatessl-tls-server", ca: str = "issuing", **kw) -> IssuanceRequest:
    return IssuanceRequest(ca=ca, profile=profile, requester=REQ, csr=csr, **kw)


async def test_issued_certificate_is_stored_before_return_and_chains(
    matrix_services: Services, tmp_path: Path
) -> None:
    s = matrix_services
    await make_hierarchy(s)
    issued = await s.issuance.issue(request(make_csr(dns=["host.example"])))
    stored = await s.store.certificates.get(issued.serial_hex)
    assert stored is not None and stored.der == issued.der
    assert stored.sans == ("dns:host.example",)
    root, inter = issued.chain[-1], issued.chain[0]
    openssl_verify(tmp_path, root, [inter], [issued.der])
    assert await s.store.audit.verify() == []


async def test_default_validity_three_years_capped_by_issuing_ca(services: Services) -> None:
    await services.authority.create_root("root", "CN=R", KeyAlgorithm.EC_P256)
    await services.authority.create_issuing(
        "issuing", "root", "CN=I", services=["privatessl"], validity_years=2
    )
    ca = await services.authority.get("issuing")
    issued = await services.issuance.issue(request(make_csr()))
    assert issued.not_after == ca.not_after  # 3 years asked by default, capped at the CA's 2
    long = await services.issuance.issue(request(make_csr(), validity=dt.timedelta(days=3650)))
    assert long.not_after == ca.not_after


async def test_requested_validity_honoured_below_cap(services: Services, hierarchy: tuple[str, str]) -> None:
    issued = await services.issuance.issue(request(make_csr(), validity=dt.timedelta(days=30)))
    assert dt.timedelta(days=29) < issued.not_after - issued.not_before <= dt.timedelta(days=30, minutes=1)


async def test_v2g_validity_is_fixed(services: Services, hierarchy: tuple[str, str]) -> None:
    issued = await services.issuance.issue(
        request(make_csr(), profile="v2g-supply-equipment", validity=dt.timedelta(days=10))
    )
    assert issued.not_after == add_years(issued.not_before, 1)  # exactly one calendar year


async def _assert_refused(services: Services, req: IssuanceRequest, error: type[Exception]) -> None:
    before = await services.store.certificates.count()
    with pytest.raises(error):
        await services.issuance.issue(req)
    assert await services.store.certificates.count() == before
    refusals = await services.store.audit.entries(actions=["certificate.refused"], limit=1000)
    assert refusals and refusals[-1].detail["code"] == error.code  # type: ignore[attr-defined]


async def test_bad_csr_signature_refused(services: Services, hierarchy: tuple[str, str]) -> None:
    csr = bytearray(make_csr())
    csr[-5] ^= 0xFF
    await _assert_refused(services, request(bytes(csr)), BadCsr)


@pytest.mark.parametrize("bad", ["rsa-1024", "p192", "ed25519"])
async def test_disallowed_subscriber_keys_refused_with_key_named(
    services: Services, hierarchy: tuple[str, str], bad: str
) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    key = {
        "rsa-1024": lambda: rsa.generate_private_key(65537, 1024),
        "p192": lambda: ec.generate_private_key(ec.SECP192R1()),
        "ed25519": ed25519.Ed25519PrivateKey.generate,
    }[bad]()
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])
    )
    from cryptography.hazmat.primitives import hashes, serialization

    csr = builder.sign(key, None if bad == "ed25519" else hashes.SHA256()).public_bytes(
        serialization.Encoding.DER
    )
    with pytest.raises(UnsupportedKey) as info:
        await services.issuance.issue(request(csr))
    assert {"rsa-1024": "RSA-1024", "p192": "secp192r1", "ed25519": "Ed25519"}[bad] in str(info.value)
    assert await services.store.certificates.count(ca="issuing") == 0


async def test_profile_of_disabled_service_refused(services: Services) -> None:
    await services.authority.create_root("root", "CN=R")
    await services.authority.create_issuing("issuing", "root", "CN=I", services=["est"])
    await _assert_refused(services, request(make_csr()), ProfileNotEnabled)


async def test_internal_profile_refused_to_front_ends(services: Services, hierarchy: tuple[str, str]) -> None:
    await _assert_refused(services, request(make_csr(), profile="internal-tls-server"), ProfileNotEnabled)
    await _assert_refused(services, request(make_csr(), profile="basic-ocsp"), ProfileNotEnabled)


async def test_inactive_ca_refused(services: Services, hierarchy: tuple[str, str]) -> None:
    await services.authority.delete("issuing")
    await _assert_refused(services, request(make_csr()), InvalidState)


async def test_unknown_and_critical_extensions_refused(
    services: Services, hierarchy: tuple[str, str]
) -> None:
    bogus = RequestedExtension("1.2.3.4", b"\x05\x00")
    await _assert_refused(services, request(make_csr(), extensions=(bogus,)), ExtensionNotAllowed)
    # certificatePolicies is accepted by privatessl, but not critical and not malformed
    policies = bytes.fromhex("300a3008060667810c010201")
    crit = RequestedExtension("2.5.29.32", policies, critical=True)
    await _assert_refused(services, request(make_csr(), extensions=(crit,)), ExtensionNotAllowed)
    broken = RequestedExtension("2.5.29.32", b"\x30\x05\x01")
    await _assert_refused(services, request(make_csr(), extensions=(broken,)), ExtensionNotAllowed)
    ok = await services.issuance.issue(
        request(make_csr(), extensions=(RequestedExtension("2.5.29.32", policies),))
    )
    cert = x509.load_der_x509_certificate(ok.der)
    policy = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
    assert policy[0].policy_identifier.dotted_string == "2.23.140.1.2.1"


async def test_sans_from_request_replace_csr_ones(services: Services, hierarchy: tuple[str, str]) -> None:
    sans = (parse_san("dns:api.example"), parse_san("ip:192.0.2.7"))
    issued = await services.issuance.issue(request(make_csr(dns=["ignored.example"]), subject_alt_names=sans))
    ext = issued.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ext.get_values_for_type(x509.DNSName) == ["api.example"]
    assert [str(i) for i in ext.get_values_for_type(x509.IPAddress)] == ["192.0.2.7"]


async def test_bad_san_syntax_refused(services: Services, hierarchy: tuple[str, str]) -> None:
    await _assert_refused(
        services,
        request(make_csr(), subject_alt_names=(x509.DNSName("bad_label-.example"),)),
        BadSubjectAltName,
    )


async def test_empty_subject_makes_san_critical(services: Services, hierarchy: tuple[str, str]) -> None:
    issued = await services.issuance.issue(request(make_csr(cn=None, dns=["only-san.example"])))
    ext = issued.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert ext.critical


async def test_rate_limit_per_requester(services: Services, hierarchy: tuple[str, str]) -> None:
    limited = type(services.issuance)(
        services.store,
        services.authority,
        services.catalogue,
        services.clock,
        services.random_bytes,
        services.urls,
        services.executor,
        RateLimits(per_requester=RateLimit(2, 3600)),
    )
    await limited.issue(request(make_csr()))
    await limited.issue(request(make_csr()))
    with pytest.raises(RateLimited) as info:
        await limited.issue(request(make_csr()))
    assert info.value.retry_after > 0
    assert await services.store.certificates.count(ca="issuing") == 2


async def test_ec_subject_gets_key_agreement_rsa_gets_key_encipherment(
    services: Services, hierarchy: tuple[str, str]
) -> None:
    ec_cert = (await services.issuance.issue(request(make_csr()))).certificate
    rsa_cert = (await services.issuance.issue(request(make_csr(new_key(KeyAlgorithm.RSA_2048))))).certificate
    ec_ku = ec_cert.extensions.get_extension_for_class(x509.KeyUsage).value
    rsa_ku = rsa_cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ec_ku.key_agreement and not ec_ku.key_encipherment
    assert rsa_ku.key_encipherment and not rsa_ku.key_agreement


async def test_a_request_key_gets_one_certificate_however_often_it_is_asked(
    matrix_services: Services,
) -> None:
    """IssuanceRequest.request_key: a protocol retrying after a crash (certificate stored,
    its own outcome not) gets the stored certificate back, never a second one; also when
    the two requests race."""
    from ca_core.errors import BadRequest, Conflict

    services = matrix_services
    await make_hierarchy(services)
    csr = make_csr(dns=["once.example"])

    def request(key: str | None, ca: str = "issuing") -> IssuanceRequest:
        return IssuanceRequest(
            ca=ca, profile="privatessl-tls-server", requester=Requester("test"), csr=csr, request_key=key
        )

    first = await services.issuance.issue(request("scep:tx-1"))
    again, racing = await asyncio.gather(
        services.issuance.issue(request("scep:tx-1")), services.issuance.issue(request("scep:tx-1"))
    )
    assert again.der == racing.der == first.der and again.chain == first.chain
    other = await services.issuance.issue(request("scep:tx-2"))
    unkeyed = await services.issuance.issue(request(None))
    assert len({first.serial, other.serial, unkeyed.serial}) == 3
    page = await services.store.certificates.search(CertificateQuery(ca="issuing", text="once.example"))
    assert page.total == 3
    issued = [e for e in await services.store.audit.entries(ca="issuing") if e.action == "certificate.issued"]
    assert len([e for e in issued if e.serial == first.serial_hex]) == 1
    stored = await services.store.certificates.by_request_key("scep:tx-1")
    assert stored is not None and stored.serial == first.serial_hex

    await services.authority.create_issuing(
        "second", "root", "CN=Second Issuing", KeyAlgorithm.EC_P256, services=["privatessl"]
    )
    with pytest.raises(Conflict):
        await services.issuance.issue(request("scep:tx-1", ca="second"))
    with pytest.raises(BadRequest):
        await services.issuance.issue(request("k" * 65))


async def test_a_request_waiting_for_an_officer_keeps_its_request_key(services: Services) -> None:
    await make_hierarchy(services)
    request = IssuanceRequest(
        ca="issuing",
        profile="privatessl-tls-server",
        requester=Requester("test"),
        csr=make_csr(dns=["approved.example"]),
        request_key="scep:tx-approve",
    )
    pending = await services.approvals.submit(request)
    assert (await services.approvals.get(pending.id)).request.request_key == "scep:tx-approve"
    issued = await services.approvals.approve(pending.id, "officer")
    stored = await services.store.certificates.by_request_key("scep:tx-approve")
    assert stored is not None and stored.serial == issued.serial_hex
