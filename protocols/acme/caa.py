"""CAA checking before an ACME certificate is issued (RFC 8659; RFC 8555 6.7 "caa").

Off unless the binding names the CA's CAA identities (`caa_identities`, also advertised
in the directory's meta): a private CA is rarely named in public CAA records, and an
operator who wants the check says which issuer-domain-names are its own.

For each DNS identifier (a wildcard counts as its base name), the relevant RRset is the
first non-empty CAA RRset found climbing from the name towards the root (the root
itself excluded). Issuance is permitted when there is none, when it has no property
that restricts issuance, or when an `issue` property (for a wildcard: `issuewild` if the
set has any, else `issue`) names one of the identities. A critical property this code
does not know forbids issuance. A lookup that fails (SERVFAIL, timeout) forbids it too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.resolver

KNOWN_TAGS = frozenset({"issue", "issuewild", "iodef", "issuemail", "contactemail", "contactphone"})
_CRITICAL = 0x80


@dataclass(frozen=True, slots=True)
class CaaRecord:
    flags: int
    tag: str  # lower-case
    value: str


class CaaLookupError(Exception):
    """The relevant RRset could not be determined."""


def issuer_of(value: str) -> str:
    """The issuer-domain-name of an issue/issuewild value ("ca.example; account=1" ->
    "ca.example"; ";" -> "": no issuer may issue)."""
    return value.split(";", 1)[0].strip().lower().rstrip(".")


def permits(records: Sequence[CaaRecord], identities: Iterable[str], wildcard: bool) -> bool:
    """Whether the relevant RRset `records` lets one of `identities` issue (RFC 8659 4)."""
    if _unknown_critical(records):
        return False
    tag = "issuewild" if wildcard and any(r.tag == "issuewild" for r in records) else "issue"
    properties = [r for r in records if r.tag == tag]
    if not properties:
        return True  # only iodef, or nothing that restricts issuance
    ours = {i.lower().rstrip(".") for i in identities}
    return any(issuer_of(p.value) in ours for p in properties if issuer_of(p.value))


def _unknown_critical(records: Sequence[CaaRecord]) -> bool:
    return any(r.flags & _CRITICAL and r.tag not in KNOWN_TAGS for r in records)


Lookup = Callable[[str], Awaitable[list[CaaRecord] | None]]


async def relevant_rrset(name: str, lookup: Lookup) -> list[CaaRecord]:
    """The first non-empty CAA RRset from `name` up to (not including) the root; [] when
    there is none. `lookup` returns None for "no records here" (NXDOMAIN, NODATA)."""
    labels = name.rstrip(".").split(".")
    for start in range(len(labels)):
        found = await lookup(".".join(labels[start:]))
        if found:
            return found
    return []


def resolver_lookup(resolver: dns.asyncresolver.Resolver) -> Lookup:
    async def lookup(name: str) -> list[CaaRecord] | None:
        try:
            answer = await resolver.resolve(name, "CAA")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        except (dns.resolver.NoNameservers, dns.exception.Timeout) as exc:
            raise CaaLookupError(f"CAA lookup of {name} failed: {exc}") from None
        return [
            CaaRecord(
                int(r.flags), r.tag.decode("ascii", "replace").lower(), r.value.decode("utf-8", "replace")
            )
            for r in answer
        ]

    return lookup


async def refusals(names: Iterable[str], identities: Sequence[str], lookup: Lookup) -> list[tuple[str, str]]:
    """(identifier, why) for each DNS identifier whose CAA records forbid issuance."""
    out = []
    for name in names:
        wildcard = name.startswith("*.")
        base = name[2:] if wildcard else name
        try:
            records = await relevant_rrset(base, lookup)
        except CaaLookupError as exc:
            out.append((name, str(exc)))
            continue
        if _unknown_critical(records):
            out.append((name, f"the CAA records for {base} have a critical property unknown here"))
        elif not permits(records, identities, wildcard):
            named = sorted(
                {issuer_of(r.value) or "nobody" for r in records if r.tag in ("issue", "issuewild")}
            )
            out.append((name, f"the CAA records for {base} authorize only: {', '.join(named)}"))
    return out
