"""Generic keyed documents for protocol state (ARCHITECTURE.md section 4).

A protocol picks a namespace ("acme-order", "scep-tx", ...) and owns the JSON schema of
its documents; ca_core knows no protocol names. `put` with `expected_version` is a
compare-and-set, so two workers (or replicas) updating one document cannot both win.

`commit` and `get_batched` do the same through group commit and group fetch
(state_batch.py): for protocols that touch a document or two on every request. `get`,
`create` and `put` outside a caller's unit of work go the same way (each is then one
write of a batch), so every protocol's hot path shares commits instead of paying a
transaction and a disk flush per document.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from ca_core.errors import Conflict
from ca_core.model import utc
from ca_core.store import tables as t
from ca_core.store.changes import ChangeTokens
from ca_core.store.database import Database, UnitOfWork
from ca_core.store.state_batch import StateBatcher, StateWrite

__all__ = ["StateDocument", "StateStore", "StateWrite"]

_T = t.state_documents


@dataclass(frozen=True, slots=True)
class StateDocument:
    namespace: str
    key: str
    document: dict[str, Any]
    version: int
    lookup: str | None
    expires_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


def _doc(row: Any) -> StateDocument:
    m = row._mapping
    return StateDocument(
        namespace=m["namespace"],
        key=m["key"],
        document=dict(m["document"]),
        version=int(m["version"]),
        lookup=m["lookup"],
        expires_at=utc(m["expires_at"]) if m["expires_at"] else None,
        created_at=utc(m["created_at"]),
        updated_at=utc(m["updated_at"]),
    )


class StateStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._batcher = StateBatcher(db)
        path = db.sqlite_file
        self._changes = ChangeTokens(path + "-changes") if path else None

    def close(self) -> None:
        self._batcher.close()
        if self._changes is not None:
            self._changes.close()

    def change_token(self, namespace: str) -> int | None:
        """A value that changes whenever a write to the namespace commits, in any worker
        of this host (changes.py); None where the store cannot tell (PostgreSQL). Read it
        before reading the documents a cache keeps under it."""
        return self._changes.token(namespace) if self._changes is not None else None

    def _changed(self, namespaces: list[str] | None, uow: UnitOfWork | None = None) -> None:
        """Signal committed writes (all namespaces for None); inside a caller's unit of
        work, once it commits."""
        changes = self._changes
        if changes is None:
            return
        if uow is not None:
            uow.after_commit(lambda: changes.changed(namespaces))
        else:
            changes.changed(namespaces)

    async def commit(
        self, writes: list[StateWrite], now: dt.datetime, durable: bool = True
    ) -> list[int | None]:
        """Creates, compare-and-set puts and deletes, atomically, group-committed with
        other callers' writes (see state_batch.py); Conflict as `create`/`put` raise it.
        Returns each write's new version (None for a delete).

        `durable=False` is for progress a client can redo (an ACME order moving on): the
        commit does not wait for the disk (SQLite synchronous=NORMAL, PostgreSQL
        synchronous_commit off). A crash of the process loses nothing; a power loss can
        lose what was committed so since the last durable commit. Never for anything
        whose loss would be silent or harmful: certificates, accounts, credentials,
        decisions a client or operator made."""
        try:
            return await self._batcher.commit(writes, now, durable)
        finally:  # after a failure too: a needless change of token only costs a re-read
            self._changed([w.namespace for w in writes])

    async def get_batched(self, namespace: str, key: str) -> StateDocument | None:
        """`get` for hot paths: on PostgreSQL answered together with the other gets
        waiting at the same moment, on a SQLite file at once (state_batch.py)."""
        row = await self._batcher.get(namespace, key)
        return _doc(row) if row is not None else None

    async def get(self, namespace: str, key: str, now: dt.datetime | None = None) -> StateDocument | None:
        """The document, or None if absent or (when `now` is given) expired."""
        doc = await self.get_batched(namespace, key)
        if doc is None:
            return None
        if now is not None and doc.expires_at is not None and doc.expires_at <= now:
            return None
        return doc

    async def find(
        self, namespace: str, lookup: str, limit: int = 100, newest_first: bool = False
    ) -> list[StateDocument]:
        order = _T.c.created_at.desc() if newest_first else _T.c.created_at
        query = (
            select(_T).where(_T.c.namespace == namespace, _T.c.lookup == lookup).order_by(order).limit(limit)
        )
        async with self._db.read() as conn:
            return [_doc(r) for r in (await conn.execute(query)).all()]

    async def create(
        self,
        namespace: str,
        key: str,
        document: dict[str, Any],
        now: dt.datetime,
        lookup: str | None = None,
        expires_at: dt.datetime | None = None,
        uow: UnitOfWork | None = None,
    ) -> StateDocument:
        """Insert a new document; Conflict if the key exists."""
        if uow is None:
            await self.commit([StateWrite(namespace, key, document, None, lookup, expires_at)], now)
            return StateDocument(namespace, key, document, 1, lookup, expires_at, now, now)
        try:
            row = {
                "namespace": namespace,
                "key": key,
                "lookup": lookup,
                "document": document,
                "version": 1,
                "expires_at": expires_at,
                "created_at": now,
                "updated_at": now,
            }
            await uow.conn.execute(insert(_T), [row])
        except IntegrityError:
            raise Conflict(f"{namespace}/{key} already exists", namespace=namespace, key=key) from None
        self._changed([namespace], uow)
        return StateDocument(namespace, key, document, 1, lookup, expires_at, now, now)

    async def put(
        self,
        namespace: str,
        key: str,
        document: dict[str, Any],
        now: dt.datetime,
        expected_version: int,
        lookup: str | None = None,
        expires_at: dt.datetime | None = None,
        uow: UnitOfWork | None = None,
    ) -> StateDocument:
        """Replace a document if it is still at `expected_version` (compare-and-set)."""
        if uow is None:
            write = StateWrite(namespace, key, document, expected_version, lookup, expires_at)
            await self.commit([write], now)
            return StateDocument(namespace, key, document, expected_version + 1, lookup, expires_at, now, now)
        stmt = (
            update(_T)
            .where(_T.c.namespace == namespace, _T.c.key == key, _T.c.version == expected_version)
            .values(
                document=document,
                version=expected_version + 1,
                lookup=lookup,
                expires_at=expires_at,
                updated_at=now,
            )
        )
        result = await uow.conn.execute(stmt)
        if result.rowcount != 1:
            raise Conflict(f"{namespace}/{key} changed concurrently", namespace=namespace, key=key)
        self._changed([namespace], uow)
        return StateDocument(namespace, key, document, expected_version + 1, lookup, expires_at, now, now)

    async def delete(self, namespace: str, key: str, uow: UnitOfWork | None = None) -> bool:
        stmt = delete(_T).where(_T.c.namespace == namespace, _T.c.key == key)
        if uow is not None:
            result = await uow.conn.execute(stmt)
            self._changed([namespace], uow)
        else:
            async with self._db.transaction() as tx:
                result = await tx.conn.execute(stmt)
            self._changed([namespace])
        return bool(result.rowcount)

    async def purge_expired(self, now: dt.datetime, namespace: str | None = None) -> int:
        stmt = delete(_T).where(_T.c.expires_at.is_not(None), _T.c.expires_at <= now)
        if namespace is not None:
            stmt = stmt.where(_T.c.namespace == namespace)
        async with self._db.transaction() as tx:
            result = await tx.conn.execute(stmt)
        self._changed([namespace] if namespace is not None else None)
        return int(result.rowcount or 0)
