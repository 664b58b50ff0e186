"""Gateway bindings: (protocol, issuing CA) -> settings. Stored here so every replica sees
a binding created at run time; the gateway caches and interprets the settings."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select, update

from ca_core.model import utc
from ca_core.store import tables as t
from ca_core.store.database import Database

_T = t.bindings


@dataclass(frozen=True, slots=True)
class BindingRecord:
    protocol: str
    ca: str
    enabled: bool
    settings: dict[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime


def _record(row: Any) -> BindingRecord:
    m = row._mapping
    return BindingRecord(
        protocol=m["protocol"],
        ca=m["ca_id"],
        enabled=bool(m["enabled"]),
        settings=dict(m["settings"] or {}),
        created_at=utc(m["created_at"]),
        updated_at=utc(m["updated_at"]),
    )


class BindingRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, protocol: str, ca: str) -> BindingRecord | None:
        query = select(_T).where(_T.c.protocol == protocol, _T.c.ca_id == ca)
        async with self._db.read() as conn:
            row = (await conn.execute(query)).first()
        return _record(row) if row else None

    async def list(self, protocol: str | None = None, ca: str | None = None) -> list[BindingRecord]:
        query = select(_T).order_by(_T.c.ca_id, _T.c.protocol)
        if protocol is not None:
            query = query.where(_T.c.protocol == protocol)
        if ca is not None:
            query = query.where(_T.c.ca_id == ca)
        async with self._db.read() as conn:
            return [_record(r) for r in (await conn.execute(query)).all()]

    async def put(
        self,
        protocol: str,
        ca: str,
        settings: dict[str, Any],
        now: dt.datetime,
        enabled: bool = True,
        audit: Any = None,
    ) -> BindingRecord:
        async with self._db.transaction() as tx:
            existing = (
                await tx.conn.execute(
                    select(_T.c.created_at).where(_T.c.protocol == protocol, _T.c.ca_id == ca)
                )
            ).first()
            if existing is None:
                await tx.conn.execute(
                    insert(_T),
                    [
                        {
                            "protocol": protocol,
                            "ca_id": ca,
                            "enabled": enabled,
                            "settings": settings,
                            "created_at": now,
                            "updated_at": now,
                        }
                    ],
                )
                created = now
            else:
                await tx.conn.execute(
                    update(_T)
                    .where(_T.c.protocol == protocol, _T.c.ca_id == ca)
                    .values(settings=settings, enabled=enabled, updated_at=now)
                )
                created = utc(existing.created_at)
            if audit is not None:
                tx.audit(audit)
        return BindingRecord(protocol, ca, enabled, settings, created, now)

    async def delete(self, protocol: str, ca: str, audit: Any = None) -> bool:
        async with self._db.transaction() as tx:
            result = await tx.conn.execute(delete(_T).where(_T.c.protocol == protocol, _T.c.ca_id == ca))
            if result.rowcount and audit is not None:
                tx.audit(audit)
        return bool(result.rowcount)
