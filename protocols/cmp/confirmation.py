"""Certificates the client never accepted (RFC 4210 5.1.1.2, 5.3.18; RFC 9483 4.1.1).

A certificate issued without implicit confirmation is not accepted until the client's
certConf. If the client rejects it, gives up with an error message, or lets the
confirmation deadline (confirmWaitTime) pass, the certificate is revoked. So is one a
worker stored and then stopped before delivering: its transaction, claimed before the
work, still says "issuing" when the deadline passes.

`revoke_overdue(services)` is the periodic part: the gateway's job runner should call it
about once a minute (any worker may; the compare-and-set on each transaction document
makes a second caller skip what the first already did). It returns how many
certificates it revoked.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import replace

from ca_core.errors import CegError, Conflict, InvalidState, NotFound
from ca_core.model import RevocationReason
from ca_core.services import Services
from ca_core.status.revocation import StatusChange
from protocols.cmp.core import TX_NAMESPACE, UNCONFIRMED, Transaction, TxState, closed, issuance_key

log = logging.getLogger(__name__)

ACTOR = "cmp:confirmation"


async def revoke_unaccepted(services: Services, tx: Transaction, key: str, why: str) -> Transaction:
    """End the transaction (state `revoked`) and revoke its certificate.

    The transaction is ended first, by compare-and-set: if a certConf confirmed it in the
    meantime, Conflict is raised and the certificate stays valid."""
    ended = replace(tx, state=TxState.REVOKED)
    await _end(services, tx, key, ended)
    if tx.serial is not None:
        try:
            await services.revocation.revoke(
                StatusChange(
                    serial=tx.serial,
                    actor=ACTOR,
                    reason=RevocationReason.UNSPECIFIED,
                    comment=f"CMP: certificate not accepted ({why})",
                    ca=tx.ca,
                )
            )
        except (InvalidState, NotFound):
            pass  # already revoked (or gone with its CA): nothing left to undo
    return replace(ended, version=tx.version + 1)


async def _end(services: Services, tx: Transaction, key: str, ended: Transaction) -> None:
    """Store the ended transaction if `tx` is still the stored version (else Conflict)."""
    now = services.clock.now()
    await services.store.state.put(
        TX_NAMESPACE, key, ended.document(), now, tx.version, lookup=None, expires_at=ended.expires_at(now)
    )


async def _end_interrupted(services: Services, tx: Transaction, key: str) -> int:
    """A transaction whose worker stopped while issuing: whatever it stored was never
    delivered, so it is revoked (found by the request key); the transaction ends."""
    stored = await services.store.certificates.by_request_key(issuance_key(key, tx))
    if stored is None:
        await _end(services, tx, key, closed(tx))
        return 0
    await revoke_unaccepted(services, replace(tx, serial=stored.serial), key, "issuance interrupted")
    return 1


async def revoke_overdue(services: Services, now: dt.datetime | None = None, batch: int = 500) -> int:
    """Revoke every certificate whose confirmation deadline has passed."""
    now = now or services.clock.now()
    revoked = 0
    while True:
        documents = await services.store.state.find(TX_NAMESPACE, UNCONFIRMED, limit=batch)
        due = []
        for doc in documents:
            tx = Transaction.from_document(doc.document, doc.version)
            if tx.confirm_by is not None and tx.confirm_by <= now:
                due.append((doc.key, tx))
        for key, tx in due:
            try:
                if tx.state is TxState.ISSUING:
                    revoked += await _end_interrupted(services, tx, key)
                    continue
                await revoke_unaccepted(services, tx, key, "no certConf before confirmWaitTime")
                revoked += 1
            except Conflict:
                continue  # the client's certConf (or another worker) got there first
            except CegError:
                log.exception("could not revoke an unconfirmed CMP certificate", extra={"serial": tx.serial})
        if len(documents) < batch or not due:
            return revoked
