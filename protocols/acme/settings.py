"""ACME binding settings: the policy of one ACME directory (one issuing CA).

Stored with the gateway binding; `check_settings` validates and fills defaults, naming
the bad key in its ValueError; `AcmeSettings.of` reads them back for a request.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

CHALLENGE_TYPES = ("http-01", "dns-01", "tls-alpn-01")
DEFAULT_PROFILE = "privatessl-tls-server"
PROFILES = ("privatessl-tls-server", "privatessl-tls-client", "privatessl-tls-client-server")


@dataclass(frozen=True, slots=True)
class AcmeSettings:
    eab_required: bool = False
    """newAccount must carry an external account binding made with a ceg EAB credential."""
    allowed_domain_suffixes: tuple[str, ...] = ()
    """DNS identifiers must equal or end in one of these (".example.com"); empty: any."""
    allowed_ip_ranges: tuple[str, ...] = ()
    """IP identifiers (RFC 8738) must fall in one of these CIDR ranges; empty: any."""
    allow_ip_identifiers: bool = True
    allow_wildcards: bool = True
    max_identifiers: int = 100
    default_validity_days: int = 90
    """Validity when the order gives no notAfter."""
    max_validity_days: int = 397
    """Longest notBefore..notAfter an order may ask for (the profile may cap it further)."""
    http01_port: int = 80
    tls_alpn01_port: int = 443
    dns_resolver: str = ""
    """host:port of the DNS server used for every validation lookup; empty: the system's."""
    challenge_types: tuple[str, ...] = CHALLENGE_TYPES
    validation_timeout_seconds: float = 5.0
    """Per attempt (connect, TLS handshake, read or DNS lookup)."""
    validation_attempts: int = 3
    validation_retry_seconds: float = 1.0
    authz_reuse_seconds: int = 86400
    """A valid authorization of the same account and identifier validated this recently is
    reused by a new order (0: never reuse)."""
    order_lifetime_seconds: int = 7 * 86400
    """How long a pending order (and its pending authorizations) may wait."""
    nonce_lifetime_seconds: int = 3600
    terms_of_service: str = ""
    """URL put in the directory's meta; when set, newAccount must agree to it."""
    website: str = ""
    caa_identities: tuple[str, ...] = ()
    """This CA's issuer-domain-names in CAA records; when set, advertised in the directory
    and checked at finalize (RFC 8659, caa.py); empty: CAA is not checked."""
    retry_after_seconds: int = 1
    """Retry-After sent with a processing order or authorization."""
    renewal_info_retry_seconds: int = 21600
    inline_validation_seconds: float = 2.0
    """A challenge POST waits this long for its validation before answering "processing"."""

    @classmethod
    def of(cls, settings: Mapping[str, Any]) -> AcmeSettings:
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {
            k: (tuple(v) if isinstance(v, list) else v) for k, v in settings.items() if k in known
        }
        return cls(**values)


def _bool(key: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false")
    return value


def _int(key: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{key} must be an integer from {low} to {high}")
    return value


def _float(key: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ValueError(f"{key} must be a number from {low} to {high}")
    return float(value)


def _strings(key: str, value: object) -> list[str]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{key} must be a list of strings")
    return list(value)


def _url(key: str, value: object) -> str:
    if not isinstance(value, str) or (value and not value.startswith(("https://", "http://"))):
        raise ValueError(f"{key} must be an http(s) URL or empty")
    return value


def _host_port(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{key} must be 'host:port' or empty")
    if not value:
        return value
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
        ok = bool(sep) and port.isdigit() and 0 < int(port) < 65536
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{key} must be an IP address and port, e.g. 127.0.0.1:53")
    return value


def check_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Validate binding settings and fill in defaults; ValueError names the bad key."""
    known = {f.name for f in fields(AcmeSettings)}
    # Keys other parts of ceg put on every binding ("default": the binding used without {ca}).
    passthrough = {"default"}
    unknown = set(settings) - known - passthrough
    if unknown:
        raise ValueError(f"unknown ACME setting(s): {', '.join(sorted(unknown))}")
    s = dict(settings)
    out: dict[str, Any] = {k: s[k] for k in passthrough if k in s}
    defaults = AcmeSettings()
    get = lambda key: s.get(key, getattr(defaults, key))  # noqa: E731
    for key in ("eab_required", "allow_ip_identifiers", "allow_wildcards"):
        out[key] = _bool(key, get(key))
    suffixes = []
    for suffix in _strings("allowed_domain_suffixes", get("allowed_domain_suffixes")):
        cleaned = suffix.strip().lower().rstrip(".")
        if not cleaned or " " in cleaned or "*" in cleaned:
            raise ValueError(f"allowed_domain_suffixes: {suffix!r} is not a domain suffix")
        suffixes.append(cleaned)
    out["allowed_domain_suffixes"] = suffixes
    ranges = []
    for cidr in _strings("allowed_ip_ranges", get("allowed_ip_ranges")):
        try:
            ranges.append(str(ipaddress.ip_network(cidr, strict=False)))
        except ValueError:
            raise ValueError(f"allowed_ip_ranges: {cidr!r} is not a CIDR range") from None
    out["allowed_ip_ranges"] = ranges
    out["max_identifiers"] = _int("max_identifiers", get("max_identifiers"), 1, 1000)
    out["max_validity_days"] = _int("max_validity_days", get("max_validity_days"), 1, 3660)
    out["default_validity_days"] = _int(
        "default_validity_days", get("default_validity_days"), 1, out["max_validity_days"]
    )
    out["http01_port"] = _int("http01_port", get("http01_port"), 1, 65535)
    out["tls_alpn01_port"] = _int("tls_alpn01_port", get("tls_alpn01_port"), 1, 65535)
    out["dns_resolver"] = _host_port("dns_resolver", get("dns_resolver"))
    types = _strings("challenge_types", get("challenge_types"))
    if not types or any(t not in CHALLENGE_TYPES for t in types):
        raise ValueError(f"challenge_types must be a non-empty list from {', '.join(CHALLENGE_TYPES)}")
    out["challenge_types"] = list(dict.fromkeys(types))
    out["validation_timeout_seconds"] = _float(
        "validation_timeout_seconds", get("validation_timeout_seconds"), 0.1, 60
    )
    out["validation_attempts"] = _int("validation_attempts", get("validation_attempts"), 1, 10)
    out["validation_retry_seconds"] = _float(
        "validation_retry_seconds", get("validation_retry_seconds"), 0, 60
    )
    out["authz_reuse_seconds"] = _int("authz_reuse_seconds", get("authz_reuse_seconds"), 0, 90 * 86400)
    out["order_lifetime_seconds"] = _int(
        "order_lifetime_seconds", get("order_lifetime_seconds"), 60, 90 * 86400
    )
    out["nonce_lifetime_seconds"] = _int("nonce_lifetime_seconds", get("nonce_lifetime_seconds"), 10, 86400)
    out["terms_of_service"] = _url("terms_of_service", get("terms_of_service"))
    out["website"] = _url("website", get("website"))
    out["caa_identities"] = [c.lower() for c in _strings("caa_identities", get("caa_identities"))]
    out["retry_after_seconds"] = _int("retry_after_seconds", get("retry_after_seconds"), 1, 3600)
    out["renewal_info_retry_seconds"] = _int(
        "renewal_info_retry_seconds", get("renewal_info_retry_seconds"), 60, 7 * 86400
    )
    out["inline_validation_seconds"] = _float(
        "inline_validation_seconds", get("inline_validation_seconds"), 0, 30
    )
    return out


def default_settings() -> dict[str, Any]:
    base = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(AcmeSettings()).items()}
    return {**base, "allowed_profiles": list(PROFILES), "default_profile": DEFAULT_PROFILE}
