"""Certificate events (issued, revoked, held, unheld, expired) for the CA Gateway feed.

The events are the certificate entries of the audit log. Their sequence numbers are
handed out under the audit head's lock, so commit order is sequence order: a reader that
pages "after sequence N" never skips an event that commits later, nor sees one twice,
however many workers write.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select

from ca_core.audit import Action
from ca_core.store import Store
from ca_core.store import tables as t

EVENT_NAMES = {
    Action.CERT_ISSUED: "issued",
    Action.CERT_REVOKED: "revoked",
    Action.CERT_HELD: "held",
    Action.CERT_UNHELD: "unheld",
    Action.CERT_EXPIRED: "expired",
}


@dataclass(frozen=True, slots=True)
class CertificateEvent:
    seq: int
    event: str  # issued | revoked | held | unheld | expired
    at: dt.datetime
    ca: str
    serial: str
    reason: str | None
    der: bytes | None


@dataclass(frozen=True, slots=True)
class EventPage:
    events: list[CertificateEvent]
    last_seq: int  # resume after this (the cursor), also when the page is empty
    more: bool


class EventFeed:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def page(
        self,
        ca: str,
        after_seq: int = 0,
        start: dt.datetime | None = None,
        limit: int = 50,
        with_certificates: bool = True,
    ) -> EventPage:
        log, certs = t.audit_log, t.certificates
        query = (
            select(log.c.seq, log.c.action, log.c.at, log.c.serial, log.c.detail)
            .where(log.c.ca_id == ca, log.c.seq > after_seq, log.c.action.in_(list(EVENT_NAMES)))
            .order_by(log.c.seq)
            .limit(limit + 1)
        )
        if start is not None:
            query = query.where(log.c.at >= start)
        async with self._store.db.read() as conn:
            rows = (await conn.execute(query)).all()
            more = len(rows) > limit
            rows = rows[:limit]
            ders: dict[str, bytes] = {}
            serials = sorted({r.serial for r in rows if r.serial})
            if with_certificates and serials:
                found = await conn.execute(
                    select(certs.c.serial, certs.c.der).where(certs.c.serial.in_(serials))
                )
                ders = {r.serial: bytes(r.der) for r in found}
        from ca_core.model import utc

        events = [
            CertificateEvent(
                seq=int(r.seq),
                event=EVENT_NAMES[r.action],
                at=utc(r.at),
                ca=ca,
                serial=r.serial,
                reason=(r.detail or {}).get("reason"),
                der=ders.get(r.serial),
            )
            for r in rows
        ]
        return EventPage(events, events[-1].seq if events else after_seq, more)
