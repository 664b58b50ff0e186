"""CAA processing (RFC 8659), with the RFC's own examples where it gives them."""

from __future__ import annotations

import pytest

from protocols.acme.caa import CaaLookupError, CaaRecord, issuer_of, permits, refusals, relevant_rrset

US = ("ca1.example.net",)


def issue(value: str, flags: int = 0) -> CaaRecord:
    return CaaRecord(flags, "issue", value)


def test_issue_names_who_may_issue() -> None:
    # RFC 8659 4.2: "CAA 0 issue "ca1.example.net"" authorizes ca1.example.net only.
    assert permits([issue("ca1.example.net")], US, wildcard=False)
    assert not permits([issue("ca2.example.org")], US, wildcard=False)
    # Parameters after the issuer-domain-name, case and a trailing dot do not matter.
    assert permits([issue("CA1.Example.Net.; account=230123")], US, wildcard=False)
    # Several issue properties: any one naming us is enough.
    assert permits([issue("ca2.example.org"), issue("ca1.example.net")], US, wildcard=False)


def test_an_empty_issuer_authorizes_nobody() -> None:
    # RFC 8659 4.2: "CAA 0 issue ";"" forbids issuance by anyone.
    assert issuer_of(";") == ""
    assert not permits([issue(";")], US, wildcard=False)


def test_sets_without_restricting_properties_permit() -> None:
    assert permits([], US, wildcard=False)
    assert permits([CaaRecord(0, "iodef", "mailto:security@example.com")], US, wildcard=False)
    # An unknown tag without the critical flag is ignored (RFC 8659 4.1).
    assert permits([CaaRecord(0, "tbs", "Unknown")], US, wildcard=False)


def test_an_unknown_critical_property_forbids() -> None:
    # RFC 8659 4.1's example: "CAA 128 tbs "Unknown"" next to an issue property naming us.
    assert not permits([issue("ca1.example.net"), CaaRecord(128, "tbs", "Unknown")], US, wildcard=False)


def test_wildcards_read_issuewild_when_there_is_one() -> None:
    records = [issue("ca1.example.net"), CaaRecord(0, "issuewild", "ca2.example.org")]
    assert permits(records, US, wildcard=False)
    assert not permits(records, US, wildcard=True)
    assert permits(records, ("ca2.example.org",), wildcard=True)
    # No issuewild: a wildcard follows issue.
    assert permits([issue("ca1.example.net")], US, wildcard=True)


async def test_the_relevant_rrset_is_the_closest_non_empty_one() -> None:
    zone = {
        "example.com": [issue("ca1.example.net")],
        "shop.example.com": [],  # NODATA: keep climbing
    }
    asked: list[str] = []

    async def lookup(name: str) -> list[CaaRecord] | None:
        asked.append(name)
        return zone.get(name)

    assert await relevant_rrset("www.shop.example.com", lookup) == [issue("ca1.example.net")]
    assert asked == ["www.shop.example.com", "shop.example.com", "example.com"]
    asked.clear()
    assert await relevant_rrset("nothing.example.org", lookup) == []
    assert asked == ["nothing.example.org", "example.org", "org"], "up to, not including, the root"


async def test_refusals_name_each_identifier_and_a_failed_lookup_refuses() -> None:
    zone = {"example.com": [issue("ca2.example.org")], "example.net": [issue("ca1.example.net")]}

    async def lookup(name: str) -> list[CaaRecord] | None:
        if name.endswith("broken.test"):
            raise CaaLookupError(f"CAA lookup of {name} failed: SERVFAIL")
        return zone.get(name)

    refused = dict(
        await refusals(["www.example.com", "*.example.net", "ok.example.net", "x.broken.test"], US, lookup)
    )
    assert set(refused) == {"www.example.com", "x.broken.test"}
    assert "ca2.example.org" in refused["www.example.com"]
    assert "SERVFAIL" in refused["x.broken.test"]


@pytest.mark.parametrize("value", ["ca1.example.net", " ca1.example.net ; policy=ev"])
def test_issuer_of(value: str) -> None:
    assert issuer_of(value) == "ca1.example.net"
