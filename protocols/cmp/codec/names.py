"""Names in CMP headers, templates and subjectAltName (RFC 5280 4.1.2.4, 4.2.1.6, 7.1):
GeneralName and Name DER in, cryptography objects or comparisons out."""

from __future__ import annotations

import ipaddress

from asn1crypto import x509 as ax509
from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier


def directory_name(name_der: bytes) -> bytes:
    """GeneralName DER of directoryName(name)."""
    return ax509.GeneralName(name="directory_name", value=ax509.Name.load(name_der)).dump()


NULL_DN_NAME = ax509.Name.build({}).dump()


def directory_name_of(general_name_der: bytes) -> bytes | None:
    """The Name DER inside a directoryName GeneralName, None for other choices."""
    gn = ax509.GeneralName.load(general_name_der)
    if gn.name != "directory_name":
        return None
    return bytes(gn.chosen.untag().dump())


def is_null_dn(name_der: bytes) -> bool:
    return len(ax509.Name.load(name_der).chosen) == 0


def same_name(a_der: bytes, b_der: bytes) -> bool:
    """RFC 5280 7.1 name comparison (asn1crypto normalises case and whitespace)."""
    try:
        return bool(ax509.Name.load(a_der) == ax509.Name.load(b_der))
    except (ValueError, TypeError):
        return False


def name_text(name_der: bytes | None) -> str:
    if name_der is None:
        return "(none)"
    try:
        return to_x509_name(name_der).rfc4514_string() or "(NULL-DN)"
    except ValueError:
        return "(unreadable name)"


def to_x509_name(name_der: bytes) -> x509.Name:
    """An asn1crypto-read Name as a cryptography Name (string values only)."""
    name = ax509.Name.load(name_der)
    rdns = []
    for rdn in name.chosen:
        attributes = []
        for atv in rdn:
            value = atv["value"].native
            if not isinstance(value, str):
                raise ValueError(f"name attribute {atv['type'].dotted} is not a string")
            attributes.append(x509.NameAttribute(ObjectIdentifier(atv["type"].dotted), value))
        rdns.append(x509.RelativeDistinguishedName(attributes))
    return x509.Name(rdns)


def subject_alt_names(extension_value: bytes) -> tuple[x509.GeneralName, ...]:
    """The GeneralNames of a subjectAltName extnValue, as cryptography objects."""
    names = ax509.GeneralNames.load(extension_value, strict=True)
    return tuple(_to_x509_general_name(gn) for gn in names)


def _to_x509_general_name(gn: ax509.GeneralName) -> x509.GeneralName:
    kind = gn.name
    if kind == "dns_name":
        return x509.DNSName(gn.native)
    if kind == "rfc822_name":
        return x509.RFC822Name(gn.native)
    if kind == "uniform_resource_identifier":
        return x509.UniformResourceIdentifier(gn.native)
    if kind == "ip_address":
        raw = bytes(gn.chosen.contents)
        if len(raw) not in (4, 16):
            raise ValueError("an IP address SAN must be 4 or 16 octets")
        return x509.IPAddress(ipaddress.ip_address(raw))
    if kind == "directory_name":
        return x509.DirectoryName(to_x509_name(gn.chosen.untag().dump()))
    if kind == "registered_id":
        return x509.RegisteredID(ObjectIdentifier(gn.chosen.dotted))
    if kind == "other_name":
        other = gn.chosen
        return x509.OtherName(ObjectIdentifier(other["type_id"].dotted), other["value"].untag().dump())
    raise ValueError(f"GeneralName {kind} is not supported")


def spki_of_certificate(cert_der: bytes) -> bytes:
    return bytes(ax509.Certificate.load(cert_der)["tbs_certificate"]["subject_public_key_info"].dump())
