"""CA Gateway request bodies -> ceg's requests (the enrollment and action models of the
CA Gateway REST API v1, as the Entrust Vault/SPIRE plugins, the Ansible collection, the
shell utilities and Keyfactor's gateway send them).

- Subject: `optionalCertificateRequestDetails.subjectDn` if not empty, else
  `subjectVariables` (RFC 4514 order, most specific first, as the Vault plugin sends a
  parsed DN), else the CSR's own subject.
- SANs: `subjectAltNames` when given (plus the CSR's with `useSANFromCSR: true`), else
  the CSR's (none with `useSANFromCSR: false`).
- `validityPeriod`: an ISO 8601 duration (`PT60M`, `P90D`, `P1Y`), an interval
  `start/end`, or an end date-time.
- No CSR and format PKCS12 with PasswordProtection: the key is generated here.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID, ObjectIdentifier

from ca_core.model import KeyAlgorithm, RequestedExtension, RevocationReason
from gateway.api.body import Fields, decode_base64
from gateway.api.errors import ApiError, bad_request

FORMATS = ("X509", "PEM", "PKCS12")
ACTION_TYPES = ("RevokeAction", "HoldAction", "UnholdAction")
UNSUPPORTED_ACTIONS = ("ReactivateAction", "RenewAction", "ReissueAction")
# RFC 5280 5.3.1 names ceg does not offer (seed 1.1.3.1 lists the six it does).
UNSUPPORTED_REASONS = ("caCompromise", "privilegeWithdrawn", "aACompromise", "removeFromCRL")
MAX_VALIDITY = dt.timedelta(days=366 * 20)

# Subject variable names (lower-case RDN attribute types) -> OIDs.
SUBJECT_VARIABLES: dict[str, ObjectIdentifier] = {
    "cn": NameOID.COMMON_NAME,
    "o": NameOID.ORGANIZATION_NAME,
    "ou": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "c": NameOID.COUNTRY_NAME,
    "l": NameOID.LOCALITY_NAME,
    "st": NameOID.STATE_OR_PROVINCE_NAME,
    "street": NameOID.STREET_ADDRESS,
    "serialnumber": NameOID.SERIAL_NUMBER,
    "dc": NameOID.DOMAIN_COMPONENT,
    "uid": NameOID.USER_ID,
    "emailaddress": NameOID.EMAIL_ADDRESS,
    "e": NameOID.EMAIL_ADDRESS,
    "title": NameOID.TITLE,
    "givenname": NameOID.GIVEN_NAME,
    "sn": NameOID.SURNAME,
    "initials": NameOID.INITIALS,
    "postalcode": NameOID.POSTAL_CODE,
    "businesscategory": NameOID.BUSINESS_CATEGORY,
    "organizationidentifier": NameOID.ORGANIZATION_IDENTIFIER,
}
SUBJECT_VARIABLE_DESCRIPTIONS = {
    "cn": "Common name",
    "o": "Organization",
    "ou": "Organizational unit",
    "c": "Country (two letters)",
    "l": "Locality",
    "st": "State or province",
    "emailaddress": "E-mail address",
    "serialnumber": "Serial number",
    "dc": "Domain component",
    "uid": "User id",
}
SAN_TYPES = (
    "dNSName",
    "iPAddress",
    "rfc822Name",
    "uniformResourceIdentifier",
    "directoryName",
    "registeredID",
    "userPrincipalName",
)


class _AnyCase(dict[str, ObjectIdentifier]):
    """RDN attribute names in any case (`cn=host`, as the Vault plugin and scripts send)."""

    def get(self, key: str, default: ObjectIdentifier | None = None) -> ObjectIdentifier | None:  # type: ignore[override]
        return super().get(key.lower(), default)


_NAMES = _AnyCase(SUBJECT_VARIABLES)


def parse_subject_dn(text: str, target: str) -> x509.Name:
    """An RFC 4514/2253 DN with attribute names in any case and optional spaces after commas."""
    for candidate in (text.strip(), re.sub(r"\s*([,+])\s*(?=[A-Za-z][A-Za-z0-9-]*=)", r"\1", text.strip())):
        try:
            return x509.Name.from_rfc4514_string(candidate, _NAMES)
        except ValueError:
            continue
    raise bad_request(f"{target}: {text!r} is not a distinguished name", target, "bad_subject")


def subject_from_variables(items: list[Fields]) -> x509.Name:
    attributes: list[x509.NameAttribute] = []
    for item in items:
        kind = item.text("type", required=True, max_len=64).strip()
        value = item.text("value", required=True, max_len=1024)
        oid = SUBJECT_VARIABLES.get(kind.lower())
        if oid is None:
            raise bad_request(
                f"{item.where}.type: unknown subject variable {kind!r}", f"{item.where}.type", "bad_subject"
            )
        try:
            attributes.append(x509.NameAttribute(oid, value))
        except ValueError as exc:
            raise bad_request(f"{item.where}: {exc}", item.where, "bad_subject") from None
    # The list reads like a DN string (CN first); a Name is stored most general first.
    return x509.Name(list(reversed(attributes)))


def san_of(item: Fields) -> x509.GeneralName:
    from ca_core.x509.names import parse_dn, parse_san

    kind = item.text("type", required=True, max_len=64).strip()
    value = item.text("value", required=True, max_len=1024).strip()
    lowered = kind.lower()
    if lowered in ("dnsname", "dns"):
        return parse_san(f"dns:{value}")
    if lowered in ("ipaddress", "ip"):
        try:
            return x509.IPAddress(ipaddress.ip_address(value))
        except ValueError:
            raise bad_request(
                f"{item.where}.value: {value!r} is not an IP address", item.where, "bad_san"
            ) from None
    if lowered in ("rfc822name", "email"):
        return parse_san(f"email:{value}")
    if lowered in ("uniformresourceidentifier", "uri"):
        return parse_san(f"uri:{value}")
    if lowered in ("userprincipalname", "upn"):
        return parse_san(f"upn:{value}")
    if lowered == "directoryname":
        return x509.DirectoryName(parse_dn(value))
    if lowered == "registeredid":
        try:
            return x509.RegisteredID(ObjectIdentifier(value))
        except ValueError:
            raise bad_request(f"{item.where}.value: {value!r} is not an OID", item.where, "bad_san") from None
    raise bad_request(
        f"{item.where}.type: SAN type {kind!r} is not one of {', '.join(SAN_TYPES)}", item.where, "bad_san"
    )


_DURATION = re.compile(
    r"^P(?:(?P<y>\d+)Y)?(?:(?P<mo>\d+)M)?(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<mi>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(text: str) -> dt.timedelta | None:
    """ISO 8601 duration; years count 365 days and months 30 (the profile caps anyway)."""
    match = _DURATION.match(text.strip().upper())
    if not match or text.strip().upper() in ("P", "PT"):
        return None
    g = {k: float(v) if v else 0.0 for k, v in match.groupdict().items()}
    days = g["y"] * 365 + g["mo"] * 30 + g["w"] * 7 + g["d"]
    try:
        return dt.timedelta(days=days, hours=g["h"], minutes=g["mi"], seconds=g["s"])
    except OverflowError:
        return None


@dataclass(frozen=True)
class Validity:
    not_before: dt.datetime | None = None
    not_after: dt.datetime | None = None
    length: dt.timedelta | None = None


def parse_validity(text: str, target: str) -> Validity:
    from gateway.api.body import parse_datetime

    value = text.strip()
    if "/" in value:
        start, _, end = value.partition("/")
        not_before = parse_datetime(start, target) if start else None
        if end.upper().startswith("P"):
            length = parse_duration(end)
            if length is None:
                raise bad_request(f"{target}: {end!r} is not an ISO 8601 duration", target)
            return Validity(not_before=not_before, length=length)
        return Validity(not_before=not_before, not_after=parse_datetime(end, target))
    if value.upper().startswith("P"):
        length = parse_duration(value)
        if length is None or length <= dt.timedelta(0) or length > MAX_VALIDITY:
            raise bad_request(f"{target}: {value!r} is not a usable ISO 8601 duration", target)
        return Validity(length=length)
    return Validity(not_after=parse_datetime(value, target))


def parse_csr_text(text: str, target: str) -> bytes:
    """Base64 DER (PEM armour stripped, as the scripts send) or a whole PEM block."""
    stripped = text.strip()
    if stripped.startswith("-----BEGIN"):
        try:
            csr = x509.load_pem_x509_csr(stripped.encode())
        except ValueError:
            raise bad_request(f"{target} is not a PEM certificate request", target, "bad_csr") from None
        return csr.public_bytes(serialization.Encoding.DER)
    return decode_base64(stripped, target)


@dataclass(frozen=True)
class Enrollment:
    """A parsed enrollment: what to issue and how to hand it back."""

    profile: str
    csr: bytes | None
    output: str  # X509 | PEM | PKCS12
    password: str | None
    include_ca: bool
    subject: x509.Name | None
    subject_alt_names: tuple[x509.GeneralName, ...] | None
    validity: Validity
    extensions: tuple[RequestedExtension, ...]
    key_algorithm: KeyAlgorithm


def parse_enrollment(body: Fields) -> Enrollment:
    profile = body.text("profileId", required=True, max_len=128)
    required = body.obj("requiredFormat")
    output = "X509"
    password = None
    if required is not None:
        output = (required.text("format", max_len=16) or "X509").upper()
        if output not in FORMATS:
            raise bad_request(
                f"requiredFormat.format must be one of {', '.join(FORMATS)}", "requiredFormat.format"
            )
        protection = required.obj("protection")
        if protection is not None:
            kind = protection.text("type", max_len=64)
            if kind not in (None, "PasswordProtection"):
                raise bad_request(
                    "requiredFormat.protection.type must be PasswordProtection",
                    "requiredFormat.protection.type",
                )
            password = protection.text("password", max_len=256)
    csr_text = body.text("csr", max_len=96 * 1024)
    csr = parse_csr_text(csr_text, "csr") if csr_text and csr_text.strip() else None
    if output == "PKCS12":
        if csr is not None:
            raise bad_request("PKCS12 output is for server-side key generation: send no CSR", "csr")
        if not password:
            raise bad_request(
                "PKCS12 output needs requiredFormat.protection with a password",
                "requiredFormat.protection.password",
            )
    elif csr is None:
        raise bad_request(
            "a CSR is required (or no CSR with format PKCS12 and a password, for a key generated here)",
            "csr",
        )
    details = body.obj("optionalCertificateRequestDetails") or Fields({}, "optionalCertificateRequestDetails")
    subject_dn = details.text("subjectDn", max_len=2048)
    variables = body.objs("subjectVariables", max_items=64)
    if subject_dn and subject_dn.strip():
        subject: x509.Name | None = parse_subject_dn(
            subject_dn, "optionalCertificateRequestDetails.subjectDn"
        )
    elif variables:
        subject = subject_from_variables(variables)
    else:
        subject = None
    sans_given = [san_of(item) for item in body.objs("subjectAltNames", max_items=100)]
    use_csr_sans = details.data.get("useSANFromCSR")
    merge_csr = details.flag("useSANFromCSR", default=False) if use_csr_sans is not None else None
    sans: tuple[x509.GeneralName, ...] | None
    if sans_given:
        sans = tuple(sans_given)
        if merge_csr and csr is not None:
            sans = (*_csr_sans(csr), *(n for n in sans if n not in _csr_sans(csr)))
    elif merge_csr is False:
        sans = ()
    else:
        sans = None
    validity_text = details.text("validityPeriod", max_len=128)
    validity = (
        parse_validity(validity_text, "optionalCertificateRequestDetails.validityPeriod")
        if validity_text
        else Validity()
    )
    extensions = tuple(_extension(item) for item in details.objs("extensions", max_items=20))
    algorithm_text = body.text("keyAlgorithm", max_len=16) or "ec-p256"
    try:
        key_algorithm = KeyAlgorithm(algorithm_text.lower())
    except ValueError:
        raise bad_request(
            f"keyAlgorithm must be one of {', '.join(k.value for k in KeyAlgorithm)}", "keyAlgorithm"
        ) from None
    return Enrollment(
        profile=profile,
        csr=csr,
        output=output,
        password=password,
        include_ca=body.flag("includeCa", default=False),
        subject=subject,
        subject_alt_names=sans,
        validity=validity,
        extensions=extensions,
        key_algorithm=key_algorithm,
    )


def _csr_sans(csr: bytes) -> tuple[x509.GeneralName, ...]:
    from ca_core.x509.csr import parse_csr

    return parse_csr(csr).subject_alt_names()


def _extension(item: Fields) -> RequestedExtension:
    oid = item.text("oid", required=True, max_len=128).strip()
    if not re.fullmatch(r"[0-2](\.\d+)+", oid):
        raise bad_request(f"{item.where}.oid: {oid!r} is not a dotted OID", f"{item.where}.oid")
    value = item.b64("value", required=True)
    assert value is not None
    return RequestedExtension(oid, value, item.flag("critical", default=False))


@dataclass(frozen=True)
class Action:
    kind: str  # RevokeAction | HoldAction | UnholdAction
    reason: RevocationReason
    comment: str | None
    publish_now: bool
    succeed_if_already: bool
    invalidity_date: dt.datetime | None


def parse_action(body: Fields) -> Action:
    action = body.obj("action", required=True)
    assert action is not None
    kind = action.text("type", required=True, max_len=64)
    if kind in UNSUPPORTED_ACTIONS:
        raise ApiError(501, "not_implemented", f"{kind} is not implemented on this gateway", "action.type")
    if kind not in ACTION_TYPES:
        raise bad_request(
            f"action.type must be one of {', '.join(ACTION_TYPES + UNSUPPORTED_ACTIONS)}", "action.type"
        )
    reason_text = action.text("reason", max_len=64)
    if reason_text in UNSUPPORTED_REASONS:
        raise bad_request(f"revocation reason {reason_text} is not supported by ceg", "action.reason")
    if kind == "HoldAction":
        reason = RevocationReason.CERTIFICATE_HOLD
    else:
        try:
            reason = RevocationReason(reason_text or "unspecified")
        except ValueError:
            names = ", ".join(r.value for r in RevocationReason)
            raise bad_request(f"action.reason must be one of {names}", "action.reason") from None
    return Action(
        kind=kind,
        reason=reason,
        comment=action.text("comment", max_len=1000) or None,
        publish_now=action.flag("issueCrl", default=False),
        succeed_if_already=action.flag("succeedIfAlreadyInRequestedState", default=False),
        invalidity_date=action.when("compromiseDate"),
    )
