"""Shared counters: monotonic numbers (CRL numbers) and fixed-window rate counts.

Each step is one atomic upsert (INSERT ... ON CONFLICT DO UPDATE ... RETURNING, on both
SQLite and PostgreSQL), so every worker and replica sees one sequence: a number handed
out is never handed out again, also across restarts.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import case, select
from sqlalchemy.dialects import postgresql, sqlite

from ca_core.store import tables as t
from ca_core.store.database import Database, UnitOfWork

_T = t.counters


class Counters:
    def __init__(self, db: Database) -> None:
        self._db = db

    def _upsert(self) -> Any:
        return (postgresql.insert if self._db.is_postgres else sqlite.insert)(_T)

    async def next_value(self, name: str, uow: UnitOfWork | None = None, at_least: int = 1) -> int:
        """Increment and return; never less than `at_least` (the first value)."""
        ins = self._upsert().values(name=name, value=at_least, expires_at=None)
        bumped = _T.c.value + 1
        stmt = ins.on_conflict_do_update(
            index_elements=[_T.c.name],
            set_={"value": case((bumped < at_least, at_least), else_=bumped)},
        ).returning(_T.c.value)
        if uow is None:
            async with self._db.transaction() as tx:
                return int((await tx.conn.execute(stmt)).scalar_one())
        return int((await uow.conn.execute(stmt)).scalar_one())

    async def current(self, name: str) -> int | None:
        async with self._db.read() as conn:
            value = (await conn.execute(select(_T.c.value).where(_T.c.name == name))).scalar()
        return int(value) if value is not None else None

    async def add_in_window(self, name: str, expires_at: dt.datetime, now: dt.datetime) -> int:
        """Count one event in the window called `name`; returns the count including it.

        A row whose window has passed restarts at 1 with the new window's expiry.
        """
        ins = self._upsert().values(name=name, value=1, expires_at=expires_at)
        expired = _T.c.expires_at <= now
        stmt = ins.on_conflict_do_update(
            index_elements=[_T.c.name],
            set_={
                "value": case((expired, 1), else_=_T.c.value + 1),
                "expires_at": case((expired, expires_at), else_=_T.c.expires_at),
            },
        ).returning(_T.c.value)
        async with self._db.transaction() as tx:
            return int((await tx.conn.execute(stmt)).scalar_one())
