"""Every refusal of IssuanceService.issue (issue 2), each leaving nothing stored.

"Nothing stored" is checked on every table: a refused request adds one audit entry
(certificate.refused, naming the error code) and no certificate, state document,
credential or CA row. The rate limiter's counter row is the one intended exception.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from asn1crypto import csr as asn1_csr
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select, update

from ca_core.clock import ManualClock
from ca_core.errors import (
    BadCsr,
    BadRequest,
    BadSubjectAltName,
    CegError,
    ExtensionNotAllowed,
    InvalidState,
    NotFound,
    PolicyViolation,
    ProfileNotEnabled,
    RateLimited,
    UnsupportedKey,
)
from ca_core.issuance import IssuanceService, RateLimit, RateLimits
from ca_core.keys.file import FileKeyStore
from ca_core.model import CaState, IssuanceRequest, KeyAlgorithm, RequestedExtension, Requester
from ca_core.services import Services, open_services
from ca_core.store import tables
from ca_core.x509.names import parse_san
from tests.conftest import BASE_URL
from tests.support.external_root import openssl_root
from tests.support.hierarchy import make_hierarchy
from tests.support.pki import make_csr, new_key, shared_key

REQ = Requester("test", "tester", "192.0.2.10", "req-1")


def request(
    csr: bytes | None = None, profile: str = "privatessl-tls-server", **kw: object
) -> IssuanceRequest:
    return IssuanceRequest(ca="issuing", profile=profile, requester=REQ, csr=csr, **kw)  # type: ignore[arg-type]


async def row_counts(s: Services) -> dict[str, int]:
    async with s.store.db.read() as conn:
        return {
            name: int((await conn.execute(select(func.count()).select_from(table))).scalar_one())
            for name, table in tables.metadata.tables.items()
        }


async def assert_refused(
    s: Services, req: IssuanceRequest, error: type[CegError], issuance: IssuanceService | None = None
) -> CegError:
    """Refused with `error`, audited, and no row written anywhere but the audit log."""
    before = await row_counts(s)
    last = await s.store.audit.entries(after_seq=0, limit=100_000)
    with pytest.raises(error) as info:
        await (issuance or s.issuance).issue(req)
    after = await row_counts(s)
    changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    allowed = {"audit_log", "audit_head"} | ({"counters"} if issuance is not None else set())
    assert set(changed) <= allowed, f"refusal wrote {changed}"
    assert after["audit_log"] == before["audit_log"] + 1
    [entry] = await s.store.audit.entries(after_seq=last[-1].seq if last else 0)
    assert entry.action == "certificate.refused"
    assert entry.detail["code"] == error.code
    assert entry.detail["profile"] == req.profile and entry.ca_id == req.ca
    assert entry.detail["remote_addr"] == "192.0.2.10" and entry.detail["request_id"] == "req-1"
    assert entry.actor == "test:tester"
    assert await s.store.audit.verify() == []
    return info.value


# --- proof of possession -------------------------------------------------------------------


def csr_with_foreign_signature() -> bytes:
    """A well-formed CSR for key A whose signature was made by key B: no proof of possession."""
    a, b = new_key(), new_key()
    csr = asn1_csr.CertificationRequest.load(make_csr(a))
    info = csr["certification_request_info"].dump()
    csr["signature"] = b.sign(info, ec.ECDSA(hashes.SHA256()))  # type: ignore[union-attr, call-arg]
    return csr.dump(force=True)


@pytest.mark.parametrize(
    "kind", ["foreign-signature", "flipped-signature-bit", "truncated", "not-der", "empty", "oversized"]
)
async def test_bad_csr_refused(services: Services, hierarchy: tuple[str, str], kind: str) -> None:
    good = make_csr()
    csr = {
        "foreign-signature": csr_with_foreign_signature,
        "flipped-signature-bit": lambda: good[:-3] + bytes([good[-3] ^ 0x01]) + good[-2:],
        "truncated": lambda: good[:-10],
        "not-der": lambda: b"-----BEGIN CERTIFICATE REQUEST-----",
        "empty": lambda: b"",
        "oversized": lambda: b"\x30\x84" + (100_000).to_bytes(4, "big") + bytes(100_000),
    }[kind]()
    await assert_refused(services, request(csr), BadCsr)


async def test_bare_public_key_needs_protocol_proof(services: Services, hierarchy: tuple[str, str]) -> None:
    spki = (
        new_key()
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "keygen")])
    await assert_refused(services, request(public_key=spki, subject=subject), BadRequest)
    await assert_refused(services, request(make_csr(), public_key=spki, pop_verified=True), BadRequest)
    await assert_refused(services, request(None), BadRequest)
    ok = await services.issuance.issue(request(public_key=spki, pop_verified=True, subject=subject))
    assert ok.certificate.subject == subject


# --- subscriber keys ------------------------------------------------------------------------


def _signed_csr(key: object) -> bytes:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])
    )
    algorithm = (
        None if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey) else hashes.SHA256()
    )
    return builder.sign(key, algorithm).public_bytes(serialization.Encoding.DER)  # type: ignore[arg-type]


DISALLOWED_KEYS = {
    "rsa-1024": (lambda: rsa.generate_private_key(65537, 1024), "RSA-1024"),
    "rsa-1536": (lambda: rsa.generate_private_key(65537, 1536), "RSA-1536"),
    "p192": (lambda: ec.generate_private_key(ec.SECP192R1()), "secp192r1"),
    "p224": (lambda: ec.generate_private_key(ec.SECP224R1()), "secp224r1"),
    "secp256k1": (lambda: ec.generate_private_key(ec.SECP256K1()), "secp256k1"),
    "brainpool": (lambda: ec.generate_private_key(ec.BrainpoolP256R1()), "brainpoolP256r1"),
    "dsa": (lambda: dsa.generate_private_key(2048), "DSA"),
    "ed25519": (ed25519.Ed25519PrivateKey.generate, "Ed25519"),
    "ed448": (ed448.Ed448PrivateKey.generate, "Ed448"),
}


@pytest.mark.parametrize("kind", list(DISALLOWED_KEYS))
async def test_disallowed_subscriber_key_refused_naming_the_key(
    services: Services, hierarchy: tuple[str, str], kind: str
) -> None:
    make, named = DISALLOWED_KEYS[kind]
    key = make()
    error = await assert_refused(services, request(_signed_csr(key)), UnsupportedKey)
    assert named in str(error)
    # The same key offered as a bare public key (CMP, server-side keygen) is refused too.
    spki = key.public_key().public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])
    error = await assert_refused(
        services, request(public_key=spki, pop_verified=True, subject=subject), UnsupportedKey
    )
    assert named in str(error)


@pytest.mark.parametrize("key", list(KeyAlgorithm), ids=[k.value for k in KeyAlgorithm])
async def test_the_six_subscriber_keys_are_accepted(
    services: Services, hierarchy: tuple[str, str], key: KeyAlgorithm
) -> None:
    issued = await services.issuance.issue(request(make_csr(shared_key(key))))
    assert KeyAlgorithm.of_public_key(issued.certificate.public_key()) is key


# --- profile, CA state ----------------------------------------------------------------------


async def test_profile_not_enabled_on_the_ca(services: Services) -> None:
    await services.authority.create_root("root", "CN=R")
    await services.authority.create_issuing("issuing", "root", "CN=I", services=["est", "scep"])
    await assert_refused(services, request(make_csr()), ProfileNotEnabled)
    await assert_refused(services, request(make_csr(), profile="smime-key-encipherment"), ProfileNotEnabled)
    assert await services.issuance.issue(request(make_csr(), profile="est-digital-signature"))
    # Disabling a service takes effect for the next request.
    await services.authority.set_services("issuing", ["scep"])
    await assert_refused(services, request(make_csr(), profile="est-digital-signature"), ProfileNotEnabled)


async def test_internal_ca_and_unknown_profiles_refused(
    services: Services, hierarchy: tuple[str, str]
) -> None:
    for profile in ("internal-tls-server", "basic-ocsp"):
        await assert_refused(services, request(make_csr(), profile=profile), ProfileNotEnabled)
    for profile in ("basic-ca-root", "basic-ca-subord"):  # not even with allow_internal_profile
        await assert_refused(
            services, request(make_csr(), profile=profile, allow_internal_profile=True), ProfileNotEnabled
        )
    await assert_refused(services, request(make_csr(), profile="no-such-profile"), NotFound)


async def test_root_ca_issues_no_subscriber_certificates(
    services: Services, hierarchy: tuple[str, str]
) -> None:
    await assert_refused(
        services,
        IssuanceRequest(ca="root", profile="privatessl-tls-server", requester=REQ, csr=make_csr()),
        ProfileNotEnabled,
    )
    await assert_refused(
        services,
        IssuanceRequest(ca="nowhere", profile="privatessl-tls-server", requester=REQ, csr=make_csr()),
        NotFound,
    )


@pytest.mark.parametrize(
    "state", [CaState.PROVISIONING, CaState.CSR_READY, CaState.DELETING, CaState.DELETED]
)
async def test_ca_not_active_refused(services: Services, hierarchy: tuple[str, str], state: CaState) -> None:
    async with services.store.db.transaction() as uow:
        await uow.conn.execute(
            update(tables.cas).where(tables.cas.c.id == "issuing").values(state=state.value)
        )
    services.authority.forget("issuing")
    await assert_refused(services, request(make_csr()), InvalidState)


async def test_deleted_issuing_ca_refused(services: Services, hierarchy: tuple[str, str]) -> None:
    await services.authority.delete("issuing")
    await assert_refused(services, request(make_csr()), InvalidState)


async def test_csr_ready_external_issuing_ca_refused(services: Services, tmp_path: Path) -> None:
    root_der = openssl_root(tmp_path).der
    await services.authority.register_external_root("ext-root", root_der)
    await services.authority.create_external_issuing(
        "issuing", "ext-root", "CN=Waiting", services=["privatessl"]
    )
    await assert_refused(services, request(make_csr()), InvalidState)


# --- validity -------------------------------------------------------------------------------


@pytest.fixture
async def clocked(tmp_path: Path) -> AsyncIterator[tuple[Services, ManualClock]]:
    clock = ManualClock(dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.UTC))
    s = await open_services(
        f"sqlite+aiosqlite:///{tmp_path}/ceg.db",
        FileKeyStore(tmp_path / "keys", b"pw"),
        BASE_URL,
        clock=clock,
    )
    yield s, clock
    await s.close()


async def test_validity_past_the_ca_is_capped_not_refused(clocked: tuple[Services, ManualClock]) -> None:
    s, clock = clocked
    await s.authority.create_root("root", "CN=R", validity_years=5)
    await s.authority.create_issuing(
        "issuing", "root", "CN=I", services=["privatessl", "v2g"], validity_years=2
    )
    ca = await s.authority.get("issuing")
    far = clock.now() + dt.timedelta(days=3650)
    for req in (
        request(make_csr()),  # the 3-year default
        request(make_csr(), not_after=far),
        request(make_csr(), validity=dt.timedelta(days=5000)),
        request(make_csr(), profile="v2g-user-identity"),  # fixed 2 years, from notBefore
    ):
        issued = await s.issuance.issue(req)
        assert issued.not_after == ca.not_after
    # Close to the CA's end even a short request is cut at the CA's notAfter.
    clock.set(ca.not_after - dt.timedelta(days=1))
    s.authority.forget("issuing")
    issued = await s.issuance.issue(request(make_csr(), validity=dt.timedelta(days=30)))
    assert issued.not_after == ca.not_after
    # Once the CA has expired nothing can be issued under it.
    clock.set(ca.not_after + dt.timedelta(seconds=1))
    await assert_refused(s, request(make_csr()), PolicyViolation)


async def test_bad_validity_requests_refused(clocked: tuple[Services, ManualClock]) -> None:
    s, clock = clocked
    await make_hierarchy(s)
    now = clock.now()
    await assert_refused(s, request(make_csr(), not_after=now - dt.timedelta(days=1)), BadRequest)
    await assert_refused(s, request(make_csr(), validity=dt.timedelta(seconds=-5)), BadRequest)
    await assert_refused(s, request(make_csr(), not_before=now - dt.timedelta(days=3)), PolicyViolation)
    await assert_refused(s, request(make_csr(), not_before=now + dt.timedelta(days=3)), PolicyViolation)


# --- names and extensions -------------------------------------------------------------------


@pytest.mark.parametrize(
    "san",
    [
        x509.DNSName("bad_label-.example"),
        x509.DNSName("*"),
        x509.DNSName("a..example"),
        x509.DNSName("a" * 64 + ".example"),
        x509.RFC822Name("not-an-address"),
        x509.UniformResourceIdentifier("relative/path"),
        x509.OtherName(x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.3"), b"\x04\x03abc"),
    ],
    ids=["dns-label", "bare-wildcard", "empty-label", "long-label", "email", "uri", "upn-not-utf8"],
)
async def test_bad_san_refused(services: Services, hierarchy: tuple[str, str], san: x509.GeneralName) -> None:
    await assert_refused(services, request(make_csr(), subject_alt_names=(san,)), BadSubjectAltName)


async def test_nameless_and_duplicate_sans_refused(services: Services, hierarchy: tuple[str, str]) -> None:
    await assert_refused(services, request(make_csr(cn=None)), BadRequest)
    dup = (parse_san("dns:a.example"), parse_san("dns:a.example"))
    await assert_refused(services, request(make_csr(), subject_alt_names=dup), BadRequest)


POLICIES = bytes.fromhex("300a3008060667810c010201")


@pytest.mark.parametrize(
    ("profile", "extension"),
    [
        ("privatessl-tls-server", RequestedExtension("1.2.3.4", b"\x05\x00")),  # unknown OID
        ("privatessl-tls-server", RequestedExtension("2.5.29.37", b"\x30\x00")),  # EKU: never from a request
        ("privatessl-tls-server", RequestedExtension("2.5.29.19", b"\x30\x03\x01\x01\xff")),  # cA=TRUE
        (
            "privatessl-tls-server",
            RequestedExtension("1.2.840.113549.1.9.15", b"\x30\x00"),
        ),  # not privatessl's
        ("smime-key-encipherment", RequestedExtension("2.5.29.32", POLICIES)),  # smime accepts none
        ("privatessl-tls-server", RequestedExtension("2.5.29.32", POLICIES, critical=True)),
        ("privatessl-tls-server", RequestedExtension("2.5.29.32", b"\x30\x05\x01")),  # malformed
        (
            "est-digital-signature",
            RequestedExtension("1.3.6.1.4.1.311.20.2", b"\x02\x01\x05"),
        ),  # not a string
    ],
    ids=["unknown", "eku", "basic-constraints", "other-set", "smime", "critical", "malformed", "wrong-type"],
)
async def test_extension_refused(
    services: Services, hierarchy: tuple[str, str], profile: str, extension: RequestedExtension
) -> None:
    await assert_refused(
        services, request(make_csr(), profile=profile, extensions=(extension,)), ExtensionNotAllowed
    )


async def test_extension_requested_twice_refused(services: Services, hierarchy: tuple[str, str]) -> None:
    twice = (RequestedExtension("2.5.29.32", POLICIES), RequestedExtension("2.5.29.32", POLICIES))
    await assert_refused(services, request(make_csr(), extensions=twice), ExtensionNotAllowed)


async def test_csr_extensions_never_reach_the_certificate(
    services: Services, hierarchy: tuple[str, str]
) -> None:
    """KU/EKU/basic constraints come from the profile, never from the CSR."""
    csr = make_csr(
        extra_extensions=[
            x509.BasicConstraints(ca=True, path_length=None),
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CODE_SIGNING]),
        ]
    )
    cert = (await services.issuance.issue(request(csr))).certificate
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]


# --- rate limits ----------------------------------------------------------------------------


def limited(s: Services, limits: RateLimits) -> IssuanceService:
    return IssuanceService(
        s.store, s.authority, s.catalogue, s.clock, s.random_bytes, s.urls, s.executor, limits
    )


async def test_rate_limit_per_requester(clocked: tuple[Services, ManualClock]) -> None:
    s, clock = clocked
    await make_hierarchy(s)
    svc = limited(s, RateLimits(per_requester=RateLimit(2, 60)))
    clock.set(dt.datetime(2026, 3, 1, 10, 0, 5, tzinfo=dt.UTC))
    for _ in range(2):
        await svc.issue(request(make_csr()))
    error = await assert_refused(s, request(make_csr()), RateLimited, svc)
    assert isinstance(error, RateLimited) and error.retry_after == 55.0
    assert error.category == "rate_limited"
    # Another requester has its own budget; the same one is served again in the next window.
    other = IssuanceRequest(
        ca="issuing", profile="privatessl-tls-server", requester=Requester("est", "b"), csr=make_csr()
    )
    await svc.issue(other)
    clock.advance(dt.timedelta(seconds=56))
    await svc.issue(request(make_csr()))
    assert await s.store.certificates.count(ca="issuing") == 4


async def test_rate_limit_per_ca(clocked: tuple[Services, ManualClock]) -> None:
    s, _clock = clocked
    await make_hierarchy(s)
    svc = limited(s, RateLimits(per_ca=RateLimit(3, 3600)))
    for who in ("a", "b", "c"):
        await svc.issue(
            IssuanceRequest(
                ca="issuing", profile="privatessl-tls-server", requester=Requester("est", who), csr=make_csr()
            )
        )
    error = await assert_refused(s, request(make_csr()), RateLimited, svc)
    assert isinstance(error, RateLimited) and 0 < error.retry_after <= 3600


async def test_rate_limit_is_off_by_default(services: Services, hierarchy: tuple[str, str]) -> None:
    for _ in range(25):
        await services.issuance.issue(request(make_csr()))
    assert await services.store.certificates.count(ca="issuing") == 25


# --- the same refusals on every store and key backend -----------------------------------------


async def test_refusals_store_nothing_on_every_backend(matrix_services: Services) -> None:
    s = matrix_services
    await make_hierarchy(s)
    await assert_refused(s, request(csr_with_foreign_signature()), BadCsr)
    await assert_refused(s, request(_signed_csr(rsa.generate_private_key(65537, 1024))), UnsupportedKey)
    await assert_refused(s, request(make_csr(), profile="basic-ocsp"), ProfileNotEnabled)
    await assert_refused(
        s, request(make_csr(), extensions=(RequestedExtension("1.2.3.4", b"\x05\x00"),)), ExtensionNotAllowed
    )
    await s.authority.delete("issuing")
    await assert_refused(s, request(make_csr()), InvalidState)
    assert await s.store.certificates.count(ca="issuing") == 0
