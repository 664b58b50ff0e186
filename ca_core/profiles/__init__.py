"""The certificate profile catalogue: data in `catalogue.toml`, checked once when loaded.

A profile fixes what a certificate says (key usage, EKU, basic constraints, validity,
CDP/AIA); a request can only choose among profiles and add the extensions its profile
accepts. Nothing about KU/EKU is ever taken from a CSR.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

from ca_core.errors import ConfigurationError, NotFound
from ca_core.model import add_years

KEY_USAGE_BITS = (
    "digitalSignature",
    "nonRepudiation",
    "keyEncipherment",
    "dataEncipherment",
    "keyAgreement",
    "keyCertSign",
    "cRLSign",
)

EKU_NAMES: dict[str, ObjectIdentifier] = {
    "serverAuth": ExtendedKeyUsageOID.SERVER_AUTH,
    "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "codeSigning": ExtendedKeyUsageOID.CODE_SIGNING,
    "emailProtection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "ocspSigning": ExtendedKeyUsageOID.OCSP_SIGNING,
    "anyExtendedKeyUsage": ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
    "msSmartcardLogin": ObjectIdentifier("1.3.6.1.4.1.311.20.2.2"),
}

# Request extensions by the names the catalogue uses (Appendix, "supported in request").
REQUEST_EXTENSION_OIDS: dict[str, str] = {
    "certificatePolicies": "2.5.29.32",
    "applicationPolicies": "1.3.6.1.4.1.311.21.10",
    "smimeCapabilities": "1.2.840.113549.1.9.15",
    "msTemplateOid": "1.3.6.1.4.1.311.21.7",
    "msTemplateName": "1.3.6.1.4.1.311.20.2",
}

_SERVICES = {
    "ca",
    "internal",
    "privatessl",
    "smime",
    "smartcard",
    "codesigning",
    "intune",
    "wstep",
    "scep",
    "mdmws",
    "cmp",
    "est",
    "v2g",
}


@dataclass(frozen=True, slots=True)
class Validity:
    """Validity rule: a default and a cap, or a fixed length.

    Rules written in years count calendar years from notBefore (the Appendix's "1 year",
    "3 years"); `default_days` / `max_days` keep a day count for readers that want one
    (a year counted with the leap days it can span).
    """

    default_days: int
    max_days: int | None
    fixed: bool
    default_years: int | None = None
    max_years: int | None = None

    @classmethod
    def parse(cls, raw: dict[str, int], where: str) -> Validity:
        unknown = set(raw) - {"default_years", "max_years", "fixed_years", "fixed_days"}
        if unknown:
            raise ConfigurationError(f"{where}.validity: unknown keys {sorted(unknown)}")
        if "fixed_days" in raw:
            days = raw["fixed_days"]
            return cls(default_days=days, max_days=days, fixed=True)
        if "fixed_years" in raw:
            years = raw["fixed_years"]
            days = _years_to_days(years)
            return cls(days, days, fixed=True, default_years=years, max_years=years)
        default = raw.get("default_years", 3)
        cap = raw.get("max_years")
        if cap is not None and default > cap:
            raise ConfigurationError(f"{where}.validity: default_years is above max_years")
        return cls(
            default_days=_years_to_days(default),
            max_days=_years_to_days(cap) if cap is not None else None,
            fixed=False,
            default_years=default,
            max_years=cap,
        )

    def default_end(self, not_before: dt.datetime) -> dt.datetime:
        """notAfter when the request does not ask for one (or the rule is fixed)."""
        if self.default_years is not None:
            return add_years(not_before, self.default_years)
        return not_before + dt.timedelta(days=self.default_days)

    def latest_end(self, not_before: dt.datetime) -> dt.datetime | None:
        """The profile's cap on notAfter, None when only the CA's expiry caps it."""
        if self.max_years is not None:
            return add_years(not_before, self.max_years)
        if self.max_days is not None:
            return not_before + dt.timedelta(days=self.max_days)
        return None


def _years_to_days(years: int) -> int:
    # A year of 365 days plus the leap days it can span; the CA's expiry caps anyway.
    return years * 365 + (years + 3) // 4


@dataclass(frozen=True, slots=True)
class Profile:
    id: str
    service: str
    internal: bool
    key_usage: tuple[str, ...]
    extended_key_usage: tuple[ObjectIdentifier, ...]
    eku_critical: bool
    ca: bool
    path_length: int | None
    validity: Validity
    cdp: bool
    aia: str  # "never" | "always" | "when-ocsp"
    ocsp_no_check: bool
    request_extensions: frozenset[str]  # dotted OIDs
    description: str = ""

    def accepts_extension(self, oid: str) -> bool:
        return oid in self.request_extensions


class Catalogue:
    """The fixed set of named profiles."""

    def __init__(self, profiles: dict[str, Profile]) -> None:
        self._profiles = dict(profiles)

    def __getitem__(self, profile_id: str) -> Profile:
        try:
            return self._profiles[profile_id]
        except KeyError:
            raise NotFound(f"unknown profile {profile_id!r}", profile=profile_id) from None

    def __contains__(self, profile_id: object) -> bool:
        return profile_id in self._profiles

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._profiles.values())

    def __len__(self) -> int:
        return len(self._profiles)

    def public(self) -> list[Profile]:
        return [p for p in self._profiles.values() if not p.internal]

    def for_service(self, service: str) -> list[Profile]:
        return [p for p in self._profiles.values() if p.service == service and not p.internal]


def load_catalogue(text: str | None = None) -> Catalogue:
    """Load and check the catalogue; any bad value names its profile and key."""
    if text is None:
        text = resources.files(__package__).joinpath("catalogue.toml").read_text("utf-8")
    data = tomllib.loads(text)
    defaults = data.pop("defaults", {})
    request_defaults: dict[str, list[str]] = defaults.get("request_extensions", {})
    profiles: dict[str, Profile] = {}
    for service, group in data.items():
        if service not in _SERVICES:
            raise ConfigurationError(f"catalogue: unknown profile set {service!r}")
        for profile_id, raw in group.items():
            if profile_id in profiles:
                raise ConfigurationError(f"catalogue: duplicate profile {profile_id!r}")
            profiles[profile_id] = _parse_profile(
                profile_id, service, raw, defaults, request_defaults.get(service, [])
            )
    return Catalogue(profiles)


def _parse_profile(
    profile_id: str,
    service: str,
    raw: dict[str, Any],
    defaults: dict[str, Any],
    request_extensions: list[str],
) -> Profile:
    where = f"catalogue.{service}.{profile_id}"
    known = {
        "internal",
        "key_usage",
        "extended_key_usage",
        "eku_critical",
        "ca",
        "path_length",
        "validity",
        "cdp",
        "aia",
        "ocsp_no_check",
        "request_extensions",
        "description",
    }
    unknown = set(raw) - known
    if unknown:
        raise ConfigurationError(f"{where}: unknown keys {sorted(unknown)}")
    key_usage = tuple(raw["key_usage"])
    for bit in key_usage:
        if bit not in KEY_USAGE_BITS:
            raise ConfigurationError(f"{where}.key_usage: unknown bit {bit!r}")
    ekus = []
    for name in raw.get("extended_key_usage", []):
        if name not in EKU_NAMES:
            raise ConfigurationError(f"{where}.extended_key_usage: unknown EKU {name!r}")
        ekus.append(EKU_NAMES[name])
    is_ca = bool(raw.get("ca", False))
    if ("keyCertSign" in key_usage) != is_ca:
        raise ConfigurationError(f"{where}: keyCertSign and cA=True go together (RFC 5280 4.2.1.3)")
    aia = raw.get("aia", defaults.get("aia", "when-ocsp"))
    if aia not in ("never", "always", "when-ocsp"):
        raise ConfigurationError(f"{where}.aia: {aia!r} is not never/always/when-ocsp")
    cdp = raw.get("cdp", defaults.get("cdp", "always"))
    if cdp not in ("always", "never"):
        raise ConfigurationError(f"{where}.cdp: {cdp!r} is not always/never")
    ext_names = raw.get("request_extensions", request_extensions)
    for name in ext_names:
        if name not in REQUEST_EXTENSION_OIDS:
            raise ConfigurationError(f"{where}.request_extensions: unknown {name!r}")
    return Profile(
        id=profile_id,
        service=service,
        internal=bool(raw.get("internal", service in ("ca", "internal"))),
        key_usage=key_usage,
        extended_key_usage=tuple(ekus),
        eku_critical=bool(raw.get("eku_critical", False)),
        ca=is_ca,
        path_length=raw.get("path_length"),
        validity=Validity.parse(raw.get("validity", defaults.get("validity", {})), where),
        cdp=cdp == "always",
        aia=aia,
        ocsp_no_check=bool(raw.get("ocsp_no_check", False)),
        request_extensions=frozenset(REQUEST_EXTENSION_OIDS[n] for n in ext_names),
        description=str(raw.get("description", "")),
    )
