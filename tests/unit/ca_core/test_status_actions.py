"""Revocation, hold/unhold, certificate events and manual approval (service level)."""

from __future__ import annotations

import pytest

from ca_core.approvals import ApprovalState
from ca_core.errors import InvalidState, NotFound
from ca_core.model import CertStatus, IssuanceRequest, Requester, RevocationReason
from ca_core.services import Services
from ca_core.status.revocation import StatusChange
from tests.support.pki import make_csr


def req(profile: str = "est-digital-signature") -> IssuanceRequest:
    return IssuanceRequest(ca="issuing", profile=profile, requester=Requester("test", "t"), csr=make_csr())


async def test_hold_unhold_revoke_rules(services: Services, hierarchy: tuple[str, str]) -> None:
    issued = await services.issuance.issue(req())
    rev = services.revocation
    held = await rev.hold(StatusChange(issued.serial_hex, "officer"))
    assert held.status is CertStatus.HELD and held.revocation_reason is RevocationReason.CERTIFICATE_HOLD
    with pytest.raises(InvalidState):
        await rev.hold(StatusChange(issued.serial_hex, "officer"))
    back = await rev.unhold(StatusChange(issued.serial_hex, "officer"))
    assert back.status is CertStatus.NORMAL and back.revoked_at is None
    with pytest.raises(InvalidState):
        await rev.unhold(StatusChange(issued.serial_hex, "officer"))
    gone = await rev.revoke(StatusChange(issued.serial_hex, "officer", RevocationReason.KEY_COMPROMISE))
    assert gone.status is CertStatus.REVOKED and gone.revocation_reason is RevocationReason.KEY_COMPROMISE
    for action in (rev.hold, rev.unhold, rev.revoke):
        with pytest.raises(InvalidState):
            await action(StatusChange(issued.serial_hex, "officer"))
    with pytest.raises(NotFound):
        await rev.revoke(StatusChange("abcdef", "officer"))
    assert await services.store.audit.verify() == []


async def test_event_feed_pages_in_order(services: Services, hierarchy: tuple[str, str]) -> None:
    serials = [(await services.issuance.issue(req())).serial_hex for _ in range(5)]
    await services.revocation.hold(StatusChange(serials[0], "o"))
    page = await services.events.page("issuing", limit=4)
    assert [e.event for e in page.events] == ["issued"] * 4 and page.more
    rest = await services.events.page("issuing", after_seq=page.last_seq, limit=4)
    assert [e.event for e in rest.events] == ["issued", "held"] and not rest.more
    assert [e.serial for e in page.events + rest.events] == [*serials, serials[0]]
    assert all(e.der for e in page.events)


async def test_approval_issues_once_or_rejects(services: Services, hierarchy: tuple[str, str]) -> None:
    pending = await services.approvals.submit(req())
    assert [p.id for p in await services.approvals.list()] == [pending.id]
    issued = await services.approvals.approve(pending.id, "officer")
    again = await services.approvals.get(pending.id)
    assert again.state is ApprovalState.ISSUED and again.serial == issued.serial_hex
    with pytest.raises(InvalidState):
        await services.approvals.approve(pending.id, "officer")
    other = await services.approvals.submit(req())
    rejected = await services.approvals.reject(other.id, "officer", "not ours")
    assert rejected.state is ApprovalState.REJECTED and rejected.reason == "not ours"
    assert await services.store.certificates.count(ca="issuing") == 1
