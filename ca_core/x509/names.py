"""Subject alternative names: parsing from text, syntax checks, and display form.

Text form (used by the APIs, the CLI and the store's search column): `dns:host.example`,
`ip:192.0.2.1`, `email:user@example.com`, `uri:https://...`, `upn:user@corp.example`.
"""

from __future__ import annotations

import ipaddress
import re

from asn1crypto import core as asn1
from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier

from ca_core.errors import BadSubjectAltName

UPN_OID = ObjectIdentifier("1.3.6.1.4.1.311.20.2.3")

# RFC 1034 labels (letters, digits, hyphen; underscores tolerated for service names),
# optionally with a leading "*." wildcard label.
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def check_dns_name(name: str) -> str:
    value = name[:-1] if name.endswith(".") else name
    if not value or len(value) > 253:
        raise BadSubjectAltName(f"DNS name {name!r} has a bad length", san=name)
    labels = value.split(".")
    if labels[0] == "*":
        labels = labels[1:]
        if not labels:
            raise BadSubjectAltName(f"DNS name {name!r} is a bare wildcard", san=name)
    for label in labels:
        if not _LABEL.match(label):
            raise BadSubjectAltName(f"DNS name {name!r} has an invalid label {label!r}", san=name)
    try:
        value.encode("ascii")
    except UnicodeEncodeError:
        raise BadSubjectAltName(f"DNS name {name!r} is not ASCII (use the A-label form)", san=name) from None
    return value.lower()


def check_email(address: str) -> str:
    if not _EMAIL.match(address):
        raise BadSubjectAltName(f"email address {address!r} is not valid", san=address)
    local, domain = address.rsplit("@", 1)
    check_dns_name(domain)
    return f"{local}@{domain.lower()}"


def check_uri(uri: str) -> str:
    if not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$", uri):
        raise BadSubjectAltName(f"URI {uri!r} is not an absolute URI", san=uri)
    return uri


def upn_name(upn: str) -> x509.OtherName:
    """Microsoft UPN otherName (smart card logon, WSTEP): a UTF8String."""
    if not _EMAIL.match(upn):
        raise BadSubjectAltName(f"UPN {upn!r} is not user@domain", san=upn)
    return x509.OtherName(UPN_OID, asn1.UTF8String(upn).dump())


def parse_san(text: str) -> x509.GeneralName:
    """`kind:value` -> GeneralName, with the value's syntax checked."""
    kind, sep, value = text.partition(":")
    kind = kind.strip().lower()
    value = value.strip()
    if not sep or not value:
        raise BadSubjectAltName(f"SAN {text!r} is not 'type:value'", san=text)
    if kind == "dns":
        return x509.DNSName(check_dns_name(value))
    if kind == "ip":
        try:
            return x509.IPAddress(ipaddress.ip_address(value))
        except ValueError:
            raise BadSubjectAltName(f"IP address {value!r} is not valid", san=text) from None
    if kind in ("email", "rfc822"):
        return x509.RFC822Name(check_email(value))
    if kind == "uri":
        return x509.UniformResourceIdentifier(check_uri(value))
    if kind == "upn":
        return upn_name(value)
    raise BadSubjectAltName(f"SAN type {kind!r} is not supported", san=text)


def check_general_name(name: x509.GeneralName) -> x509.GeneralName:
    """Check a GeneralName that came from a CSR or a protocol message."""
    if isinstance(name, x509.DNSName):
        return x509.DNSName(check_dns_name(name.value))
    if isinstance(name, x509.RFC822Name):
        return x509.RFC822Name(check_email(name.value))
    if isinstance(name, x509.UniformResourceIdentifier):
        return x509.UniformResourceIdentifier(check_uri(name.value))
    if isinstance(name, x509.IPAddress):
        if not isinstance(name.value, ipaddress.IPv4Address | ipaddress.IPv6Address):
            raise BadSubjectAltName("IP address ranges are not allowed in a SAN")
        return name
    if isinstance(name, x509.OtherName):
        if name.type_id == UPN_OID:
            try:
                value = asn1.UTF8String.load(name.value, strict=True).native
            except ValueError:
                raise BadSubjectAltName("UPN otherName is not a UTF8String") from None
            upn_name(value)
        return name
    if isinstance(name, x509.DirectoryName | x509.RegisteredID):
        return name
    raise BadSubjectAltName(f"SAN type {type(name).__name__} is not supported")


def san_text(name: x509.GeneralName) -> str:
    """The display/search form of a SAN (inverse of parse_san where one exists)."""
    if isinstance(name, x509.DNSName):
        return f"dns:{name.value}"
    if isinstance(name, x509.IPAddress):
        return f"ip:{name.value}"
    if isinstance(name, x509.RFC822Name):
        return f"email:{name.value}"
    if isinstance(name, x509.UniformResourceIdentifier):
        return f"uri:{name.value}"
    if isinstance(name, x509.OtherName):
        if name.type_id == UPN_OID:
            return f"upn:{asn1.UTF8String.load(name.value).native}"
        return f"othername:{name.type_id.dotted_string}"
    if isinstance(name, x509.DirectoryName):
        return f"dirname:{name.value.rfc4514_string()}"
    if isinstance(name, x509.RegisteredID):
        return f"rid:{name.value.dotted_string}"
    return str(name)


def parse_dn(text: str) -> x509.Name:
    """An RFC 4514 string ("CN=host,O=Example") to a Name; raises BadRequest-type errors."""
    from ca_core.errors import BadRequest

    try:
        return x509.Name.from_rfc4514_string(text)
    except ValueError as exc:
        raise BadRequest(f"distinguished name {text!r} is not valid: {exc}") from None
