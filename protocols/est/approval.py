"""Parking an EST request for an officer (RFC 7030 4.2.3: 202 + Retry-After).

The first attempt submits the IssuanceRequest to the CA core's ApprovalService and
keeps, in the state store under (CA, operation, public key), which approval it waits
on. The client's retry (same CSR, hence same public key) finds that document: still
pending (202 again), issued (the certificate, once), or rejected (403 with the
officer's reason). Everything lives in the database, so any worker answers the retry.
"""

from __future__ import annotations

from ca_core.errors import Conflict
from ca_core.model import IssuanceRequest
from ca_core.services import Services
from protocols.est import core
from protocols.est.errors import EstError


async def issue_when_approved(
    services: Services, request: IssuanceRequest, key: str, principal: str
) -> bytes | None:
    """The certificate once an officer approved `request`; None while it waits."""
    state = services.store.state
    now = services.clock.now()
    doc = await state.get(core.PENDING_NAMESPACE, key)
    if doc is not None and core.pending_expired(doc.expires_at, now):
        await state.delete(core.PENDING_NAMESPACE, key)
        doc = None
    if doc is None:
        await _park(services, request, key, principal)
        return None
    parked = core.ParkedRequest.from_document(doc.document)
    pending = await services.approvals.get(parked.approval_id)
    step = core.next_step(parked, principal, pending.state)
    if step is core.NextStep.WAIT:
        return None
    # Decided: the answer is given once; a later request with this key starts afresh.
    await state.delete(core.PENDING_NAMESPACE, key)
    if step is core.NextStep.REFUSE:
        reason = pending.reason or "rejected"
        raise EstError(403, f"the request was rejected by an officer: {reason}")
    assert pending.serial is not None
    record = await services.store.certificates.get(pending.serial, ca=pending.ca)
    if record is None:
        raise EstError(500, f"approved certificate {pending.serial} is missing from the store")
    return record.der


async def _park(services: Services, request: IssuanceRequest, key: str, principal: str) -> None:
    pending = await services.approvals.submit(request)
    now = services.clock.now()
    parked = core.ParkedRequest(pending.id, principal)
    try:
        await services.store.state.create(
            core.PENDING_NAMESPACE,
            key,
            parked.as_document(),
            now,
            lookup=pending.id,
            expires_at=now + core.PENDING_RETENTION,
        )
    except Conflict:
        # The same request reached another worker at the same moment and is parked
        # there; withdraw this duplicate so officers see it once.
        await services.approvals.reject(pending.id, "est", "duplicate of a request already waiting")
