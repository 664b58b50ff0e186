"""The values of general messages and generalInfo (RFC 9480 2.3 to 2.6 and 2.11, RFC 9483
4.3): CA certificates, root CA key update, certificate request template, certificate
profile, CRL status list and CRLs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from asn1crypto import core, crl, keys
from asn1crypto import x509 as ax509

from protocols.cmp import oids
from protocols.cmp.codec import asn1
from protocols.cmp.codec.decode import _optional, _strict_certificate, _template, _time
from protocols.cmp.codec.encode import _template_value
from protocols.cmp.codec.model import MAX_ITEMS, CertTemplate
from protocols.cmp.codec.names import directory_name

NULL_DER = core.Null().dump()


def encode_certificates(ders: Sequence[bytes]) -> bytes:
    """CaCertsValue / a SEQUENCE OF CMPCertificate."""
    return bytes(asn1.CMPCertificates([asn1.CMPCertificate.load(d) for d in ders]).dump())


def decode_certificates(value: bytes) -> tuple[bytes, ...]:
    return tuple(c.dump() for c in asn1.CMPCertificates.load(value, strict=True))


def decode_certificate(value: bytes) -> bytes:
    """RootCaCertValue: one CMPCertificate."""
    return _strict_certificate(asn1.CMPCertificate.load(value, strict=True).dump())


@dataclass(frozen=True, slots=True)
class KeySpec:
    """What a certificate request template allows (RFC 9483 4.3.3 keySpec)."""

    ec_curves: tuple[str, ...] = ()  # named curve OIDs
    rsa_key_lengths: tuple[int, ...] = ()


def encode_cert_req_template(template: CertTemplate, key_spec: KeySpec) -> bytes:
    controls = []
    for curve in key_spec.ec_curves:
        alg = keys.PublicKeyAlgorithm(
            {"algorithm": "ec", "parameters": keys.ECDomainParameters(name="named", value=curve)}
        )
        controls.append(asn1.AttributeTypeAndValue({"type": oids.OID_REGCTRL_ALG_ID, "value": alg}))
    if key_spec.rsa_key_lengths:
        alg = keys.PublicKeyAlgorithm({"algorithm": "rsa", "parameters": core.Null()})
        controls.append(asn1.AttributeTypeAndValue({"type": oids.OID_REGCTRL_ALG_ID, "value": alg}))
        for length in key_spec.rsa_key_lengths:
            controls.append(
                asn1.AttributeTypeAndValue(
                    {"type": oids.OID_REGCTRL_RSA_KEY_LEN, "value": core.Integer(length)}
                )
            )
    value: dict[str, Any] = {"cert_template": _template_value(template)}
    if controls:
        value["key_spec"] = asn1.Controls(controls)
    return bytes(asn1.CertReqTemplateContent(value).dump())


def decode_cert_req_template(value: bytes) -> tuple[CertTemplate, KeySpec]:
    parsed = asn1.CertReqTemplateContent.load(value, strict=True)
    curves: list[str] = []
    lengths: list[int] = []
    for control in _optional(parsed["key_spec"]) or ():
        if control["type"].dotted == oids.OID_REGCTRL_ALG_ID:
            alg = keys.PublicKeyAlgorithm.load(control["value"].dump())
            if alg["algorithm"].native == "ec":
                curves.append(alg["parameters"].chosen.dotted)
        elif control["type"].dotted == oids.OID_REGCTRL_RSA_KEY_LEN:
            lengths.append(int(core.Integer.load(control["value"].dump()).native))
    return _template(parsed["cert_template"]), KeySpec(tuple(curves), tuple(lengths))


def encode_cert_profile(names: Sequence[str]) -> bytes:
    return bytes(asn1.CertProfileValue([core.UTF8String(n) for n in names]).dump())


def decode_cert_profile(value: bytes) -> tuple[str, ...]:
    parsed = asn1.CertProfileValue.load(value, strict=True)
    if len(parsed) == 0 or len(parsed) > MAX_ITEMS:
        raise ValueError("certProfile needs 1 to 16 names")
    return tuple(str(n.native) for n in parsed)


@dataclass(frozen=True, slots=True)
class CrlStatus:
    """One CRLStatus of id-it-crlStatusList: where the CRL comes from and the thisUpdate the
    client already has."""

    distribution_points: tuple[str, ...]  # URIs of a fullName dpn
    issuers: tuple[bytes, ...]  # Name DER of directoryName issuers
    this_update: dt.datetime | None


def decode_crl_status_list(value: bytes) -> tuple[CrlStatus, ...]:
    parsed = asn1.CRLStatusListValue.load(value, strict=True)
    if len(parsed) == 0 or len(parsed) > MAX_ITEMS:
        raise ValueError("crlStatusList needs 1 to 16 entries")
    out = []
    for status in parsed:
        source = status["source"]
        uris: list[str] = []
        issuers: list[bytes] = []
        names = source.chosen.chosen if source.name == "dpn" and source.chosen.name == "full_name" else None
        if source.name == "issuer":
            names = source.chosen
        for gn in names or ():
            if gn.name == "uniform_resource_identifier":
                uris.append(str(gn.native))
            elif gn.name == "directory_name":
                issuers.append(bytes(gn.chosen.untag().dump()))
        out.append(CrlStatus(tuple(uris), tuple(issuers), _time(status["this_update"])))
    return tuple(out)


def encode_crl_status_list(entries: Sequence[CrlStatus]) -> bytes:
    values = []
    for e in entries:
        if e.distribution_points:
            source = asn1.CRLSource(
                name="dpn",
                value=ax509.DistributionPointName(
                    name="full_name",
                    value=[
                        ax509.GeneralName(name="uniform_resource_identifier", value=u)
                        for u in e.distribution_points
                    ],
                ),
            )
        else:
            source = asn1.CRLSource(
                name="issuer", value=[ax509.GeneralName.load(directory_name(n)) for n in e.issuers]
            )
        item: dict[str, Any] = {"source": source}
        if e.this_update is not None:
            item["this_update"] = ax509.Time(name="utc_time", value=e.this_update)
        values.append(asn1.CRLStatus(item))
    return bytes(asn1.CRLStatusListValue(values).dump())


def encode_crls(crl_ders: Sequence[bytes]) -> bytes:
    return bytes(asn1.CertificateLists([crl.CertificateList.load(c) for c in crl_ders]).dump())


def encode_generalized_time(value: dt.datetime) -> bytes:
    return bytes(core.GeneralizedTime(value.replace(microsecond=0)).dump())
