"""Expiry: certificates past notAfter become `expired`, each with a certificate event.

Only `normal` certificates expire here; held and revoked ones keep their status (and
their CRL entry: the CRL carries expiredCertsOnCRL). The status change and its audit
entry (Action.CERT_EXPIRED, which the certificate-events feed reports as "expired") are
one transaction, and the update re-checks `status = normal`, so a revocation racing with
expiry wins cleanly: whichever commits first, the other changes nothing.
"""

from __future__ import annotations

from sqlalchemy import select, update

from ca_core.audit import Action, AuditEntry
from ca_core.clock import Clock
from ca_core.model import CertStatus, utc
from ca_core.store import Store
from ca_core.store import tables as t

_C = t.certificates


class CertificateExpiry:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def run(self, batch: int = 1000, actor: str = "system:expiry") -> int:
        """Mark every normal certificate past notAfter expired; returns how many changed."""
        total = 0
        for ca in await self._store.cas.list(include_deleted=True):
            while True:
                changed = await self._expire_some(ca.id, batch, actor)
                total += changed
                if changed < batch:
                    break
        return total

    async def _expire_some(self, ca_id: str, batch: int, actor: str) -> int:
        now = self._clock.now()
        async with self._store.db.transaction() as uow:
            found = await uow.conn.execute(
                select(_C.c.serial, _C.c.not_after)
                .where(_C.c.ca_id == ca_id, _C.c.not_after <= now, _C.c.status == CertStatus.NORMAL.value)
                .limit(batch)
            )
            candidates = {r.serial: r.not_after for r in found}
            if not candidates:
                return 0
            result = await uow.conn.execute(
                update(_C)
                .where(_C.c.serial.in_(list(candidates)), _C.c.status == CertStatus.NORMAL.value)
                .values(status=CertStatus.EXPIRED.value, status_changed_at=now)
                .returning(_C.c.serial)
            )
            changed = sorted(r.serial for r in result)
            for serial in changed:
                uow.audit(
                    AuditEntry(
                        now,
                        Action.CERT_EXPIRED,
                        actor,
                        ca_id,
                        serial,
                        {
                            "status": CertStatus.EXPIRED.value,
                            "not_after": utc(candidates[serial]).isoformat(),
                        },
                    )
                )
        return len(changed)
