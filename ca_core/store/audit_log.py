"""Reading the audit log (appending happens in UnitOfWork.flush)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Row

from ca_core.audit import ChainedEntry, ChainProblem, verify_chain
from ca_core.model import utc
from ca_core.store import tables as t
from ca_core.store.database import Database

_T = t.audit_log


def _entry(row: Row[Any]) -> ChainedEntry:
    m = row._mapping
    return ChainedEntry(
        seq=int(m["seq"]),
        at=utc(m["at"]),
        action=m["action"],
        actor=m["actor"],
        ca_id=m["ca_id"],
        serial=m["serial"],
        detail=dict(m["detail"] or {}),
        prev_hash=m["prev_hash"],
        hash=m["hash"],
    )


class AuditLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def entries(
        self,
        after_seq: int = 0,
        limit: int = 100,
        ca: str | None = None,
        actions: Sequence[str] | None = None,
        serial: str | None = None,
    ) -> list[ChainedEntry]:
        query = select(_T).where(_T.c.seq > after_seq).order_by(_T.c.seq).limit(limit)
        if ca is not None:
            query = query.where(_T.c.ca_id == ca)
        if actions:
            query = query.where(_T.c.action.in_(list(actions)))
        if serial is not None:
            query = query.where(_T.c.serial == serial)
        async with self._db.read() as conn:
            return [_entry(r) for r in (await conn.execute(query)).all()]

    async def _all(self, batch: int = 5000) -> AsyncIterator[ChainedEntry]:
        after = 0
        while True:
            rows = await self.entries(after_seq=after, limit=batch)
            for row in rows:
                yield row
            if len(rows) < batch:
                return
            after = rows[-1].seq

    async def verify(self) -> list[ChainProblem]:
        """Walk the whole log and return every break in the chain."""
        rows = [row async for row in self._all()]
        async with self._db.read() as conn:
            head = (await conn.execute(select(t.audit_head).where(t.audit_head.c.id == 1))).first()
        head_seq = int(head.seq) if head else 0
        head_hash = head.hash if head else None
        return verify_chain(rows, head_seq, head_hash if head else "0" * 64)
