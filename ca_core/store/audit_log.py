"""Reading the audit log (appending happens in UnitOfWork.flush)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
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

    async def verify(self, anchors: Mapping[int, str] | None = None) -> list[ChainProblem]:
        """Walk the whole log and return every break in the chain (and every anchor,
        {seq: hash} kept outside the database, that no longer holds)."""
        rows = [row async for row in self._all()]
        head_seq, head_hash = await self.head()
        return verify_chain(rows, head_seq, head_hash, anchors)

    async def head(self) -> tuple[int, str]:
        """The last entry's sequence number and hash, as the head row records them: an
        anchor to keep outside the database (0 and the genesis hash for an empty log)."""
        async with self._db.read() as conn:
            head = (await conn.execute(select(t.audit_head).where(t.audit_head.c.id == 1))).first()
        return (int(head.seq), str(head.hash)) if head else (0, "0" * 64)
