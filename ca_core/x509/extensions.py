"""Certificate extensions from a profile (RFC 5280 section 4.2).

A profile decides KU, EKU, basic constraints, CDP and AIA; the request may only add the
extensions its profile accepts, each checked to be well-formed DER of its type.
"""

from __future__ import annotations

from dataclasses import dataclass

from asn1crypto import cms as asn1_cms
from asn1crypto import core as asn1
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import AuthorityInformationAccessOID, ObjectIdentifier

from ca_core.errors import ExtensionNotAllowed
from ca_core.model import KeyAlgorithm, RequestedExtension
from ca_core.profiles import Profile


@dataclass(frozen=True, slots=True)
class PublicationUrls:
    """Where relying parties fetch CRLs, OCSP and CA certificates (ARCHITECTURE.md 5)."""

    base: str

    def crl(self, ca_id: str) -> str:
        return f"{self.base.rstrip('/')}/crl/{ca_id}.crl"

    def ocsp(self, ca_id: str) -> str:
        return f"{self.base.rstrip('/')}/ocsp/{ca_id}"

    def ca_certificate(self, ca_id: str) -> str:
        return f"{self.base.rstrip('/')}/ca/{ca_id}.crt"


@dataclass(frozen=True, slots=True)
class IssuerRef:
    """What the extensions need to know about the signing CA."""

    ca_id: str
    key_identifier: bytes | None  # None for a self-signed certificate


def key_usage_for(profile: Profile, key: KeyAlgorithm) -> x509.KeyUsage:
    """The profile's KU bits, with key establishment adapted to the key type.

    RSA keys establish keys by encipherment, EC keys by agreement (RFC 3279 2.3.1,
    RFC 5480 3); see catalogue.toml, reading 2.
    """
    bits = set(profile.key_usage)
    if key.is_ec and "keyEncipherment" in bits:
        bits.discard("keyEncipherment")
        bits.add("keyAgreement")
    if key.is_ec:
        bits.discard("dataEncipherment")
    if not key.is_ec and "keyAgreement" in bits:
        bits.discard("keyAgreement")
        bits.add("keyEncipherment")
    return x509.KeyUsage(
        digital_signature="digitalSignature" in bits,
        content_commitment="nonRepudiation" in bits,
        key_encipherment="keyEncipherment" in bits,
        data_encipherment="dataEncipherment" in bits,
        key_agreement="keyAgreement" in bits,
        key_cert_sign="keyCertSign" in bits,
        crl_sign="cRLSign" in bits,
        encipher_only=False,
        decipher_only=False,
    )


class _TemplateInfo(asn1.Sequence):
    """szOID_CERTIFICATE_TEMPLATE (1.3.6.1.4.1.311.21.7), MS-WCCE 2.2.2.7.7.2."""

    _fields = [
        ("template_id", asn1.ObjectIdentifier),
        ("major_version", asn1.Integer),
        ("minor_version", asn1.Integer, {"optional": True}),
    ]


class _TemplateName(asn1.Choice):
    _alternatives = [
        ("bmp", asn1.BMPString),
        ("utf8", asn1.UTF8String),
        ("printable", asn1.PrintableString),
    ]


_REQUEST_EXTENSION_TYPES: dict[str, type[asn1.Asn1Value]] = {
    "2.5.29.32": asn1_x509.CertificatePolicies,
    "1.3.6.1.4.1.311.21.10": asn1_x509.CertificatePolicies,  # ApplicationPolicies, same syntax
    "1.2.840.113549.1.9.15": asn1_cms.SMIMECapabilites,
    "1.3.6.1.4.1.311.21.7": _TemplateInfo,
    "1.3.6.1.4.1.311.20.2": _TemplateName,
}


def requested_extension(profile: Profile, ext: RequestedExtension) -> x509.Extension[x509.ExtensionType]:
    """Check one requested extension against the profile; refuse with the OID named."""
    if not profile.accepts_extension(ext.oid):
        raise ExtensionNotAllowed(
            f"profile {profile.id} does not accept extension {ext.oid}",
            oid=ext.oid,
            profile=profile.id,
        )
    if ext.critical:
        raise ExtensionNotAllowed(f"extension {ext.oid} may only be requested non-critical", oid=ext.oid)
    spec = _REQUEST_EXTENSION_TYPES[ext.oid]
    try:
        parsed = spec.load(ext.value, strict=True)
        parsed.native  # noqa: B018 - forces a full parse of lazily decoded content
    except (ValueError, TypeError) as exc:
        raise ExtensionNotAllowed(f"extension {ext.oid} is not valid DER: {exc}", oid=ext.oid) from None
    return x509.Extension(
        ObjectIdentifier(ext.oid),
        False,
        x509.UnrecognizedExtension(ObjectIdentifier(ext.oid), ext.value),
    )


@dataclass(frozen=True, slots=True)
class FixedExtensions:
    """The extensions a profile fixes for one issuer and key family, already DER-encoded.

    They are the same for every certificate of (profile, issuer, EC-or-RSA subject key), so
    the issuer can build them once; `around_ski` go before the subject key identifier and
    `after_san` after the subject alternative names (the order build_extensions writes).
    """

    before_ski: tuple[x509.Extension[x509.ExtensionType], ...]
    after_ski: tuple[x509.Extension[x509.ExtensionType], ...]
    after_san: tuple[x509.Extension[x509.ExtensionType], ...]
    oids: frozenset[ObjectIdentifier]


def _encoded(value: x509.ExtensionType, critical: bool) -> x509.Extension[x509.ExtensionType]:
    # DER once, here; the certificate builder then copies the bytes.
    return x509.Extension(value.oid, critical, x509.UnrecognizedExtension(value.oid, value.public_bytes()))


def fixed_extensions(
    profile: Profile,
    subject_key_algorithm: KeyAlgorithm,
    issuer: IssuerRef,
    urls: PublicationUrls,
    aia_enabled: bool,
) -> FixedExtensions:
    before = [
        _encoded(
            x509.BasicConstraints(ca=profile.ca, path_length=profile.path_length if profile.ca else None),
            True,
        ),
        _encoded(key_usage_for(profile, subject_key_algorithm), True),
    ]
    if profile.extended_key_usage:
        before.append(_encoded(x509.ExtendedKeyUsage(list(profile.extended_key_usage)), profile.eku_critical))
    after_ski = []
    if issuer.key_identifier is not None:
        after_ski.append(_encoded(x509.AuthorityKeyIdentifier(issuer.key_identifier, None, None), False))
    after = []
    if profile.cdp and issuer.key_identifier is not None:
        point = x509.DistributionPoint(
            full_name=[x509.UniformResourceIdentifier(urls.crl(issuer.ca_id))],
            relative_name=None,
            reasons=None,
            crl_issuer=None,
        )
        after.append(_encoded(x509.CRLDistributionPoints([point]), False))
    if issuer.key_identifier is not None and (
        profile.aia == "always" or (profile.aia == "when-ocsp" and aia_enabled)
    ):
        after.append(
            _encoded(
                x509.AuthorityInformationAccess(
                    [
                        x509.AccessDescription(
                            AuthorityInformationAccessOID.OCSP,
                            x509.UniformResourceIdentifier(urls.ocsp(issuer.ca_id)),
                        ),
                        x509.AccessDescription(
                            AuthorityInformationAccessOID.CA_ISSUERS,
                            x509.UniformResourceIdentifier(urls.ca_certificate(issuer.ca_id)),
                        ),
                    ]
                ),
                False,
            )
        )
    if profile.ocsp_no_check:
        after.append(_encoded(x509.OCSPNoCheck(), False))
    oids = frozenset(e.oid for e in (*before, *after_ski, *after)) | {
        x509.SubjectKeyIdentifier.oid,
        x509.SubjectAlternativeName.oid,
    }
    return FixedExtensions(tuple(before), tuple(after_ski), tuple(after), oids)


def build_extensions(
    profile: Profile,
    subject_key: CertificatePublicKeyTypes,
    subject_key_algorithm: KeyAlgorithm,
    issuer: IssuerRef,
    urls: PublicationUrls,
    aia_enabled: bool,
    subject_alt_names: tuple[x509.GeneralName, ...] = (),
    subject_is_empty: bool = False,
    requested: tuple[RequestedExtension, ...] = (),
    fixed: FixedExtensions | None = None,
) -> list[x509.Extension[x509.ExtensionType]]:
    """All extensions of a certificate; `fixed` may be a cached fixed_extensions() result."""
    if fixed is None:
        fixed = fixed_extensions(profile, subject_key_algorithm, issuer, urls, aia_enabled)
    exts: list[x509.Extension[x509.ExtensionType]] = list(fixed.before_ski)
    ski = x509.SubjectKeyIdentifier.from_public_key(subject_key)
    exts.append(x509.Extension(ski.oid, False, ski))
    exts += fixed.after_ski
    if subject_alt_names:
        # RFC 5280 4.2.1.6: with an empty subject the SAN carries the identity and is critical.
        san = x509.SubjectAlternativeName(list(subject_alt_names))
        exts.append(x509.Extension(san.oid, subject_is_empty, san))
    exts += fixed.after_san
    seen = set(fixed.oids)
    for ext in requested:
        checked = requested_extension(profile, ext)
        if checked.oid in seen:
            raise ExtensionNotAllowed(f"extension {ext.oid} requested twice", oid=ext.oid)
        seen.add(checked.oid)
        exts.append(checked)
    return exts
