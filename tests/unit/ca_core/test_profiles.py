"""Every profile of the catalogue, issued under every CA key type, checked against the Appendix.

The expectations below are written from the seed's "Appendix: Certificate profile
reference" (and the readings documented in ca_core/profiles/catalogue.toml), not read
back from the catalogue, so a catalogue or builder mistake fails here.

Each case: {SQLite, PostgreSQL} x {file, PKCS#11} (the `matrix_services` fixture) times six
CA key pairs. The root takes key type i and the issuing CA key type i+1, so every key type
signs as a root and as an issuing CA on every backend, and chains mix RSA and EC. Every
certificate goes through one `openssl verify -x509_strict` call per case and through pkilint
in-process (tests/support/lint.py: no FATAL/ERROR/WARNING/NOTICE finding).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

import pytest
from asn1crypto import cms as asn1_cms
from asn1crypto import core as asn1
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID, ObjectIdentifier

from ca_core.model import IssuanceRequest, KeyAlgorithm, RequestedExtension, Requester, Service, add_years
from ca_core.profiles import load_catalogue
from ca_core.services import Services
from ca_core.x509.names import parse_san
from tests.conftest import BASE_URL
from tests.support.lint import assert_lints_clean
from tests.support.pki import make_csr, openssl_verify, shared_key

KEYS = list(KeyAlgorithm)
DS, NR, KE, KA = "digitalSignature", "nonRepudiation", "keyEncipherment", "keyAgreement"
SERVER, CLIENT = ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH
EMAIL, CODE = ExtendedKeyUsageOID.EMAIL_PROTECTION, ExtendedKeyUsageOID.CODE_SIGNING
ANY_EKU, OCSP_SIGNING = ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE, ExtendedKeyUsageOID.OCSP_SIGNING
MS_SMARTCARD_LOGON = ObjectIdentifier("1.3.6.1.4.1.311.20.2.2")


@dataclass(frozen=True)
class Expect:
    """What the Appendix says one profile's certificate carries."""

    key_usage: frozenset[str]
    eku: tuple[ObjectIdentifier, ...] = ()
    eku_critical: bool = False
    years: int | None = 3  # calendar years from notBefore (None: see days)
    days: int | None = None
    aia_always: bool = False
    ocsp_no_check: bool = False
    fixed: bool = False  # a request's validity is ignored


def ku(*bits: str) -> frozenset[str]:
    return frozenset(bits)


def _ceg_set(prefix: str) -> dict[str, Expect]:
    """The six CEG profile sets differ only in key usage (Appendix, "only differ in ... Key Usage")."""
    return {
        f"{prefix}-digital-signature": Expect(ku(DS)),
        f"{prefix}-key-encipherment": Expect(ku(KE)),
        f"{prefix}-non-repudiation": Expect(ku(NR)),
        f"{prefix}-signature-key-encipherment": Expect(ku(DS, KE)),
    }


APPENDIX: dict[str, Expect] = {
    # CA & VA: basic-ocsp (reading 1: digitalSignature only, issued by the CA it answers for)
    "basic-ocsp": Expect(
        ku(DS), (OCSP_SIGNING,), eku_critical=True, years=None, days=30, aia_always=True, ocsp_no_check=True
    ),
    "smime-digital-signature-key-encipherment": Expect(ku(DS, KE), (CLIENT, EMAIL)),
    "smime-key-encipherment": Expect(ku(KE), (EMAIL,)),
    "smime-non-repudiation": Expect(ku(DS, NR), (EMAIL,)),
    "smartcard-card-authentication": Expect(ku(DS)),
    "smartcard-digital-signature": Expect(ku(DS, NR)),
    "smartcard-domain-controller": Expect(ku(DS, KE), (SERVER, CLIENT)),
    "smartcard-key-management": Expect(ku(KE)),
    "smartcard-piv-authentication": Expect(ku(DS), (ANY_EKU, MS_SMARTCARD_LOGON, CLIENT)),
    "smartcard-piv-content-signing": Expect(ku(DS, NR)),
    "codesigning-digital-signature": Expect(ku(DS), (CODE,)),
    **_ceg_set("intune"),
    "privatessl-tls-client": Expect(ku(DS, KE), (CLIENT,)),
    "privatessl-tls-client-server": Expect(ku(DS, KE), (SERVER, CLIENT)),
    "privatessl-tls-server": Expect(ku(DS, KE), (SERVER,)),
    **_ceg_set("wstep"),
    **_ceg_set("scep"),
    **_ceg_set("mdmws"),
    **_ceg_set("cmp"),
    **_ceg_set("est"),
    "v2g-supply-equipment": Expect(ku(DS, KA), (SERVER,), years=1, fixed=True),
    "v2g-user-identity": Expect(ku(DS, NR), years=2, fixed=True),
}

# ceg's own profiles (catalogue.toml, "ceg's own"), issued with allow_internal_profile.
INTERNAL: dict[str, Expect] = {
    "internal-scep-ra": Expect(ku(DS, KE), years=1),
    "internal-tls-server": Expect(ku(DS, KE), (SERVER,), years=1),
    "internal-api-client": Expect(ku(DS), (CLIENT,), years=2),
    "internal-cms-signer": Expect(ku(DS), years=1),
}

# The Appendix's request extensions, per profile set ("also support the following
# non-critical extensions in request").
CEG_REQUEST_EXTENSIONS = ("2.5.29.32", "1.3.6.1.4.1.311.21.10", "1.2.840.113549.1.9.15",
                          "1.3.6.1.4.1.311.21.7", "1.3.6.1.4.1.311.20.2")  # fmt: skip
REQUEST_EXTENSIONS: dict[str, tuple[str, ...]] = {
    "privatessl": ("2.5.29.32", "1.3.6.1.4.1.311.21.10"),
    **{s: CEG_REQUEST_EXTENSIONS for s in ("intune", "wstep", "scep", "mdmws", "cmp", "est")},
}

SIGNATURE_OIDS = {
    KeyAlgorithm.EC_P256: "1.2.840.10045.4.3.2",
    KeyAlgorithm.EC_P384: "1.2.840.10045.4.3.3",
    KeyAlgorithm.EC_P521: "1.2.840.10045.4.3.4",
    KeyAlgorithm.RSA_2048: "1.2.840.113549.1.1.11",
    KeyAlgorithm.RSA_3072: "1.2.840.113549.1.1.11",
    KeyAlgorithm.RSA_4096: "1.2.840.113549.1.1.13",
}


def test_catalogue_holds_the_42_appendix_profiles_by_name() -> None:
    catalogue = load_catalogue()
    names = {p.id for p in catalogue}
    appendix = {*APPENDIX, "basic-ca-root", "basic-ca-subord"}
    assert len(appendix) == 42
    assert appendix <= names
    assert names - appendix == set(INTERNAL)
    # Everything a front-end may request is one of the 39 subscriber profiles, each in a service.
    assert {p.id for p in catalogue.public()} == set(APPENDIX) - {"basic-ocsp"}
    for profile in catalogue.public():
        assert profile.service in {s.value for s in Service}
        assert {str(o) for o in profile.request_extensions} == set(
            REQUEST_EXTENSIONS.get(profile.service, ())
        )


def request_extensions_for(oids: tuple[str, ...]) -> tuple[RequestedExtension, ...]:
    """Well-formed DER for each request extension the Appendix lists."""
    values = {
        "2.5.29.32": asn1_x509.CertificatePolicies([{"policy_identifier": "1.3.6.1.4.1.55555.1.1"}]).dump(),
        "1.3.6.1.4.1.311.21.10": asn1_x509.CertificatePolicies(
            [{"policy_identifier": "1.3.6.1.5.5.7.3.2"}]
        ).dump(),
        "1.2.840.113549.1.9.15": asn1_cms.SMIMECapabilites(
            [{"capability_id": "2.16.840.1.101.3.4.1.42"}]
        ).dump(),
        "1.3.6.1.4.1.311.21.7": asn1.Sequence(
            contents=asn1.ObjectIdentifier("1.3.6.1.4.1.311.21.8.1.2").dump()
            + asn1.Integer(100).dump()
            + asn1.Integer(3).dump()
        ).dump(),
        "1.3.6.1.4.1.311.20.2": asn1.BMPString("ClientAuth").dump(),
    }
    return tuple(RequestedExtension(oid, values[oid]) for oid in oids)


def sans_for(profile: str, n: int) -> tuple[x509.GeneralName, ...]:
    names = [parse_san(f"dns:host{n}.example")]
    if profile.startswith(("smime", "intune", "mdmws")):
        names.append(parse_san(f"email:user{n}@example.com"))
    if profile.startswith(("smartcard", "wstep")):
        names.append(parse_san(f"upn:user{n}@corp.example"))
    if profile.startswith(("privatessl", "v2g")):
        names.append(parse_san(f"ip:192.0.2.{n % 250 + 1}"))
    if profile.startswith(("scep", "cmp", "est")):
        # pkilint checks URIs with `validators.url`, which refuses URNs (valid RFC 3986 and
        # accepted by ceg); an authority-form URI keeps this test about the profiles.
        names.append(parse_san(f"uri:https://device{n}.example/enrolment"))
    return tuple(names)


def spki_sha1(public_key: object) -> bytes:
    """RFC 5280 4.2.1.2 method 1, computed here from the SPKI's BIT STRING."""
    assert isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey)
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    bits = asn1_keys.PublicKeyInfo.load(spki)["public_key"]
    return hashlib.sha1(bytes(bits.contents[1:])).digest()  # skip the unused-bits octet


def ext(cert: x509.Certificate, oid: ObjectIdentifier) -> x509.Extension[x509.ExtensionType] | None:
    try:
        return cert.extensions.get_extension_for_oid(oid)
    except x509.ExtensionNotFound:
        return None


def key_usage_bits(value: x509.KeyUsage) -> frozenset[str]:
    bits = {
        DS: value.digital_signature,
        NR: value.content_commitment,
        KE: value.key_encipherment,
        "dataEncipherment": value.data_encipherment,
        KA: value.key_agreement,
        "keyCertSign": value.key_cert_sign,
        "cRLSign": value.crl_sign,
    }
    return frozenset(k for k, on in bits.items() if on)


def for_key(bits: frozenset[str], key: KeyAlgorithm) -> frozenset[str]:
    """Catalogue reading 2: RSA keys get keyEncipherment, EC keys keyAgreement."""
    if key.is_ec and KE in bits:
        return (bits - {KE}) | {KA}
    if not key.is_ec and KA in bits:
        return (bits - {KA}) | {KE}
    return bits


def check_ca_certificate(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    *,
    root: bool,
    issuer_id: str,
    aia: bool,
    max_years: int,
) -> None:
    bc = ext(cert, ExtensionOID.BASIC_CONSTRAINTS)
    assert bc is not None and bc.critical and bc.value.ca is True
    assert bc.value.path_length == (None if root else 0)
    kus = ext(cert, ExtensionOID.KEY_USAGE)
    assert kus is not None and kus.critical
    assert key_usage_bits(kus.value) == {DS, "keyCertSign", "cRLSign"}
    assert ext(cert, ExtensionOID.EXTENDED_KEY_USAGE) is None
    ski = ext(cert, ExtensionOID.SUBJECT_KEY_IDENTIFIER)
    assert ski is not None and not ski.critical and ski.value.digest == spki_sha1(cert.public_key())
    aki = ext(cert, ExtensionOID.AUTHORITY_KEY_IDENTIFIER)
    cdp = ext(cert, ExtensionOID.CRL_DISTRIBUTION_POINTS)
    aia_ext = ext(cert, ExtensionOID.AUTHORITY_INFORMATION_ACCESS)
    if root:
        assert cert.issuer == cert.subject
        assert aki is None and cdp is None and aia_ext is None
    else:
        assert cert.issuer == issuer.subject
        issuer_ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        assert aki is not None and not aki.critical and aki.value.key_identifier == issuer_ski
        check_cdp(cdp, issuer_id)
        check_aia(aia_ext, issuer_id, aia)
    assert cert.not_valid_after_utc <= add_years(cert.not_valid_before_utc, max_years)
    assert cert.not_valid_after_utc <= issuer.not_valid_after_utc


def check_cdp(cdp: x509.Extension[x509.ExtensionType] | None, ca_id: str) -> None:
    assert cdp is not None and not cdp.critical
    assert isinstance(cdp.value, x509.CRLDistributionPoints)
    [point] = list(cdp.value)
    assert point.full_name == [x509.UniformResourceIdentifier(f"{BASE_URL}/crl/{ca_id}.crl")]
    assert point.reasons is None and point.crl_issuer is None


def check_aia(aia: x509.Extension[x509.ExtensionType] | None, ca_id: str, present: bool) -> None:
    if not present:
        assert aia is None
        return
    assert aia is not None and not aia.critical
    assert isinstance(aia.value, x509.AuthorityInformationAccess)
    found = {(d.access_method.dotted_string, d.access_location.value) for d in aia.value}
    assert found == {
        ("1.3.6.1.5.5.7.48.1", f"{BASE_URL}/ocsp/{ca_id}"),
        ("1.3.6.1.5.5.7.48.2", f"{BASE_URL}/ca/{ca_id}.crt"),
    }


def check_leaf(
    cert: x509.Certificate,
    profile: str,
    expect: Expect,
    subscriber_key: KeyAlgorithm,
    issuing: x509.Certificate,
    issuing_key: KeyAlgorithm,
    ocsp: bool,
    sans: tuple[x509.GeneralName, ...],
    empty_subject: bool,
    requested: tuple[RequestedExtension, ...],
) -> None:
    where = f"{profile} ({subscriber_key.value} key)"
    assert cert.version is x509.Version.v3
    assert cert.signature_algorithm_oid.dotted_string == SIGNATURE_OIDS[issuing_key], where
    assert 0 < cert.serial_number < 2**127
    assert cert.issuer == issuing.subject

    bc = ext(cert, ExtensionOID.BASIC_CONSTRAINTS)
    assert bc is not None and bc.critical and bc.value.ca is False and bc.value.path_length is None, where
    kus = ext(cert, ExtensionOID.KEY_USAGE)
    assert kus is not None and kus.critical, where
    assert key_usage_bits(kus.value) == for_key(expect.key_usage, subscriber_key), where
    eku = ext(cert, ExtensionOID.EXTENDED_KEY_USAGE)
    if expect.eku:
        assert eku is not None and eku.critical is expect.eku_critical, where
        assert list(eku.value) == list(expect.eku), where
    else:
        assert eku is None, where
    ski = ext(cert, ExtensionOID.SUBJECT_KEY_IDENTIFIER)
    assert ski is not None and not ski.critical and ski.value.digest == spki_sha1(cert.public_key()), where
    aki = ext(cert, ExtensionOID.AUTHORITY_KEY_IDENTIFIER)
    issuer_ski = issuing.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert aki is not None and not aki.critical, where
    assert aki.value.key_identifier == issuer_ski, where
    assert aki.value.authority_cert_issuer is None and aki.value.authority_cert_serial_number is None
    check_cdp(ext(cert, ExtensionOID.CRL_DISTRIBUTION_POINTS), "issuing")
    check_aia(ext(cert, ExtensionOID.AUTHORITY_INFORMATION_ACCESS), "issuing", ocsp or expect.aia_always)
    nocheck = ext(cert, ExtensionOID.OCSP_NO_CHECK)
    assert (nocheck is not None) is expect.ocsp_no_check, where
    assert nocheck is None or not nocheck.critical
    san = ext(cert, ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    assert san is not None and list(san.value) == list(sans), where
    assert san.critical is empty_subject, where  # RFC 5280 4.2.1.6
    assert (len(cert.subject) == 0) is empty_subject
    for wanted in requested:
        got = ext(cert, ObjectIdentifier(wanted.oid))
        assert got is not None and not got.critical, f"{where}: {wanted.oid}"
        assert got.value.public_bytes() == wanted.value

    seen = {e.oid for e in cert.extensions}
    allowed = {
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.SUBJECT_KEY_IDENTIFIER,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
        ExtensionOID.CRL_DISTRIBUTION_POINTS,
        ExtensionOID.AUTHORITY_INFORMATION_ACCESS,
        ExtensionOID.OCSP_NO_CHECK,
        *(ObjectIdentifier(r.oid) for r in requested),
    }
    assert seen <= allowed, f"{where}: unexpected {seen - allowed}"

    # Validity: default (or fixed) length from notBefore, never past the issuing CA.
    start = cert.not_valid_before_utc
    if expect.years is not None:
        length_end = add_years(start, expect.years)
    else:
        assert expect.days is not None
        length_end = start + dt.timedelta(days=expect.days)
    assert cert.not_valid_after_utc == min(length_end, issuing.not_valid_after_utc), where


@pytest.fixture(scope="session")
def subscriber_keys() -> dict[KeyAlgorithm, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey]:
    """One key per subscriber type for the whole session (RSA-4096 generation is slow)."""
    return {k: shared_key(k) for k in KEYS}


@pytest.mark.parametrize("index", range(len(KEYS)), ids=[k.value for k in KEYS])
async def test_every_profile_under_every_ca_key(
    matrix_services: Services,
    subscriber_keys: dict[KeyAlgorithm, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey],
    index: int,
    tmp_path: Path,
) -> None:
    s = matrix_services
    root_key, issuing_key = KEYS[index], KEYS[(index + 1) % len(KEYS)]
    ocsp = index % 2 == 0  # half the cases with OCSP (AIA present), half without
    await s.authority.create_root(
        "root", f"CN=Root {root_key.value},O=ceg tests", root_key, ocsp_enabled=ocsp
    )
    await s.authority.create_issuing(
        "issuing",
        "root",
        f"CN=Issuing {issuing_key.value},O=ceg tests",
        issuing_key,
        services=[x.value for x in Service],
        ocsp_enabled=ocsp,
    )
    root = await s.authority.get("root")
    issuing = await s.authority.get("issuing")
    assert root.certificate is not None and issuing.certificate is not None
    check_ca_certificate(
        root.certificate, root.certificate, root=True, issuer_id="root", aia=False, max_years=20
    )
    check_ca_certificate(
        issuing.certificate, root.certificate, root=False, issuer_id="root", aia=ocsp, max_years=10
    )
    assert issuing.certificate.signature_algorithm_oid.dotted_string == SIGNATURE_OIDS[root_key]
    assert root.certificate.signature_algorithm_oid.dotted_string == SIGNATURE_OIDS[root_key]
    for label, der in (("root", root.der), ("issuing CA", issuing.der)):
        findings = assert_lints_clean(der, label)
        assert any(f.code == "pkix.subject_key_identifier_method_1_identified" for f in findings)

    catalogue = s.catalogue
    profiles = {**APPENDIX, **INTERNAL}
    leaves: list[bytes] = []
    for n, (profile_id, expect) in enumerate(profiles.items()):
        profile = catalogue[profile_id]
        subscriber_key = KEYS[(index + n) % len(KEYS)]
        empty_subject = profile_id.endswith("-key-encipherment")
        sans = sans_for(profile_id, n)
        requested = request_extensions_for(REQUEST_EXTENSIONS.get(profile.service, ()))
        issued = await s.issuance.issue(
            IssuanceRequest(
                ca="issuing",
                profile=profile_id,
                requester=Requester("test", "profiles"),
                csr=make_csr(subscriber_keys[subscriber_key], cn=f"csr-{n}.example"),
                subject=x509.Name([])
                if empty_subject
                else x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{profile_id} {n}")]),
                subject_alt_names=sans,
                extensions=requested,
                # A fixed-length profile ignores the request; the others honour it below the cap.
                validity=dt.timedelta(days=10) if expect.fixed else None,
                allow_internal_profile=profile.internal,
            )
        )
        cert = issued.certificate
        check_leaf(
            cert, profile_id, expect, subscriber_key, issuing.certificate, issuing_key, ocsp, sans,
            empty_subject, requested,
        )  # fmt: skip
        stored = await s.store.certificates.get(issued.serial_hex)
        assert stored is not None and stored.der == issued.der and stored.profile == profile_id
        assert issued.chain == (issuing.der, root.der)
        findings = assert_lints_clean(issued.der, profile_id)
        assert any(f.code == "pkix.subject_key_identifier_method_1_identified" for f in findings)
        leaves.append(issued.der)

    assert len(leaves) == 39 + 1 + 4  # subscriber profiles, basic-ocsp, internal ones
    openssl_verify(tmp_path, root.der, [issuing.der], [issuing.der, *leaves])
    # The issuing CA's own certificate is in the root's register (the root's CRL/OCSP cover it).
    assert await s.store.certificates.count(ca="root") == 1
    assert await s.store.certificates.count(ca="issuing") == len(leaves)
    assert await s.store.audit.verify() == []


def test_key_usage_reading_swaps_key_establishment_by_key_type() -> None:
    assert for_key(ku(DS, KE), KeyAlgorithm.EC_P384) == {DS, KA}
    assert for_key(ku(DS, KA), KeyAlgorithm.RSA_3072) == {DS, KE}
    assert for_key(ku(NR), KeyAlgorithm.EC_P256) == {NR}


def test_signature_hash_pairs_are_the_specifications() -> None:
    pairs = {k: type(k.signature_hash()) for k in KEYS}
    assert pairs == {
        KeyAlgorithm.EC_P256: hashes.SHA256,
        KeyAlgorithm.EC_P384: hashes.SHA384,
        KeyAlgorithm.EC_P521: hashes.SHA512,
        KeyAlgorithm.RSA_2048: hashes.SHA256,
        KeyAlgorithm.RSA_3072: hashes.SHA256,
        KeyAlgorithm.RSA_4096: hashes.SHA512,
    }
