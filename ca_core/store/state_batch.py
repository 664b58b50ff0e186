"""Group commit and group fetch for state documents (the hot path of protocol state).

With SQLite behind aiosqlite, every statement is a round trip to a driver thread, and a
write transaction holds the database's single write lock across all of its round trips.
Protocols that write a document or two per request (ACME nonces, orders, authorizations)
would queue on that lock one transaction at a time. Here the writes of many callers go
into one transaction with a constant number of statements: one SELECT of the current
versions, then one executemany each for inserts, updates and deletes. On PostgreSQL,
reads waiting at the same moment are answered by one SELECT; on a SQLite file a read is
answered at once (state_sqlite.py), which costs less than waiting for company.

Semantics are those of doing each caller's writes alone, in arrival order:
- a caller's writes commit together or not at all;
- a create fails (Conflict) if the key exists, a put or delete if the version moved;
- callers in one batch see each other's effects in order.
If the batch fails for a reason not foreseen here (on PostgreSQL, another replica
inserting the same key first), each caller's writes are retried in a transaction of
their own, so the failure reaches only the caller it belongs to.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, delete, insert, or_, select, text, update

from ca_core.errors import Conflict
from ca_core.store import tables as t
from ca_core.store.database import Database
from ca_core.store.state_sqlite import SELECT_ALL, Row, key_filter, stored_json, stored_time

_T = t.state_documents
_MAX_BATCH = 256


@dataclass(frozen=True, slots=True)
class StateWrite:
    """One change in `StateStore.commit`.

    expected_version None: create (Conflict if the key exists); an int: compare-and-set
    replace; delete=True: remove if still at expected_version (any version when None).
    """

    namespace: str
    key: str
    document: dict[str, Any] | None = None
    expected_version: int | None = None
    lookup: str | None = None
    expires_at: dt.datetime | None = None
    delete: bool = False


@dataclass
class _Item:
    writes: Sequence[StateWrite]
    now: dt.datetime
    future: asyncio.Future[list[int | None]]
    durable: bool


# Per key, within a batch: the version (None: absent) and the row to end with.
_Final = dict[tuple[str, str], tuple[int | None, dict[str, Any] | None, dt.datetime | None]]


class StateBatcher:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._direct = db.direct  # the database's: one writer thread for all its batches
        self._writes: list[_Item] = []
        self._write_task: asyncio.Task[None] | None = None
        self._reads: dict[tuple[str, str], list[asyncio.Future[Any]]] = {}
        self._read_task: asyncio.Task[None] | None = None

    def close(self) -> None:
        """Nothing of its own to release: the direct connections are the database's."""

    # --- writes -------------------------------------------------------------------------------

    async def commit(
        self, writes: Sequence[StateWrite], now: dt.datetime, durable: bool = True
    ) -> list[int | None]:
        """Apply `writes` atomically; returns each write's new version (None for deletes).
        A batch is committed durably if any of its callers asked for it."""
        future: asyncio.Future[list[int | None]] = asyncio.get_running_loop().create_future()
        self._writes.append(_Item(writes, now, future, durable))
        if self._write_task is None or self._write_task.done():
            self._write_task = asyncio.create_task(self._flush_writes())
        return await future

    async def _flush_writes(self) -> None:
        while self._writes:
            batch, self._writes = self._writes[:_MAX_BATCH], self._writes[_MAX_BATCH:]
            try:
                outcomes = await self._commit(batch)
            except Exception:
                if len(batch) == 1:
                    outcomes = [await _outcome_of(self._commit, batch)]
                else:
                    outcomes = [await _outcome_of(self._commit, [item]) for item in batch]
            for item, outcome in zip(batch, outcomes, strict=True):
                if item.future.done():
                    continue
                if isinstance(outcome, BaseException):
                    item.future.set_exception(outcome)
                else:
                    item.future.set_result(outcome)

    async def _commit(self, batch: list[_Item]) -> list[list[int | None] | BaseException]:
        keys = list({(w.namespace, w.key) for item in batch for w in item.writes})
        durable = any(item.durable for item in batch)
        if self._direct is not None:
            return await self._db.direct_write(lambda conn: _commit_sqlite(conn, batch, keys), durable)
        async with self._db.transaction() as tx:
            if tx.is_postgres and not durable:
                # PostgreSQL's own form of a commit that does not wait for the disk.
                await tx.conn.execute(text("SET LOCAL synchronous_commit TO OFF"))
            query = select(_T.c.namespace, _T.c.key, _T.c.version).where(_key_filter(keys))
            if tx.is_postgres:
                query = query.with_for_update()
            start = {(r.namespace, r.key): int(r.version) for r in (await tx.conn.execute(query)).all()}
            outcomes, inserts, updates, deletes = _plan(batch, start)
            if inserts:
                await tx.conn.execute(insert(_T), inserts)
            if updates:
                await tx.conn.execute(_UPDATE, updates)
            if deletes:
                await tx.conn.execute(_DELETE, deletes)
        return outcomes

    # --- reads --------------------------------------------------------------------------------

    async def get(self, namespace: str, key: str) -> Any:
        """The row (a SQLAlchemy Row, or a Row like it) or None. On a SQLite file it is
        read at once, on the event loop's thread: a read by primary key there costs
        less than the task and the extra turn of the loop a shared fetch needs. Elsewhere
        it is fetched together with concurrent gets."""
        if self._direct is not None:
            rows = await self._direct.read(functools.partial(_read_one, key=(namespace, key)))
            return rows[0] if rows else None
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._reads.setdefault((namespace, key), []).append(future)
        if self._read_task is None or self._read_task.done():
            self._read_task = asyncio.create_task(self._flush_reads())
        return await future

    async def _flush_reads(self) -> None:
        while self._reads:
            wanted, self._reads = self._reads, {}
            keys = list(wanted)
            try:
                found: dict[tuple[str, str], Any] = {}
                for start in range(0, len(keys), _MAX_BATCH):
                    chunk = keys[start : start + _MAX_BATCH]
                    async with self._db.read() as conn:
                        rows = (await conn.execute(select(_T).where(_key_filter(chunk)))).all()
                    found.update({(r.namespace, r.key): r for r in rows})
            except Exception as exc:
                for futures in wanted.values():
                    for f in futures:
                        if not f.done():
                            f.set_exception(exc)
                continue
            for key, futures in wanted.items():
                for f in futures:
                    if not f.done():
                        f.set_result(found.get(key))


def _plan(
    batch: list[_Item], start: dict[tuple[str, str], int]
) -> tuple[
    list[list[int | None] | BaseException], list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]
]:
    """Each caller's outcome, and the net inserts, updates and deletes of the batch."""
    final: _Final = {k: (v, None, None) for k, v in start.items()}
    outcomes = [_apply(item, final) for item in batch]
    inserts, updates, deletes = [], [], []
    for key, (version, row, now) in final.items():
        existed = key in start
        if row is None:
            if existed and version is None:
                deletes.append({"b_ns": key[0], "b_key": key[1]})
        elif existed:
            updates.append({**row, "b_ns": key[0], "b_key": key[1]})
        else:
            inserts.append({**row, "namespace": key[0], "key": key[1], "created_at": now})
    return outcomes, inserts, updates, deletes


def _commit_sqlite(
    conn: sqlite3.Connection, batch: list[_Item], keys: list[tuple[str, str]]
) -> list[list[int | None] | BaseException]:
    where, params = key_filter(keys)
    query = f"SELECT namespace, key, version FROM state_documents WHERE {where}"
    start = {(ns, k): int(v) for ns, k, v in conn.execute(query, params)}
    outcomes, inserts, updates, deletes = _plan(batch, start)
    if inserts:
        conn.executemany(
            "INSERT INTO state_documents (namespace, key, lookup, document, version, expires_at,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    r["namespace"],
                    r["key"],
                    r["lookup"],
                    stored_json(r["document"]),
                    r["version"],
                    stored_time(r["expires_at"]),
                    stored_time(r["created_at"]),
                    stored_time(r["updated_at"]),
                )
                for r in inserts
            ],
        )
    if updates:
        conn.executemany(
            "UPDATE state_documents SET lookup = ?, document = ?, version = ?, expires_at = ?,"
            " updated_at = ? WHERE namespace = ? AND key = ?",
            [
                (
                    r["lookup"],
                    stored_json(r["document"]),
                    r["version"],
                    stored_time(r["expires_at"]),
                    stored_time(r["updated_at"]),
                    r["b_ns"],
                    r["b_key"],
                )
                for r in updates
            ],
        )
    if deletes:
        conn.executemany(
            "DELETE FROM state_documents WHERE namespace = ? AND key = ?",
            [(r["b_ns"], r["b_key"]) for r in deletes],
        )
    return outcomes


def _read_one(conn: sqlite3.Connection, key: tuple[str, str]) -> list[Row]:
    return [Row(values) for values in conn.execute(f"{SELECT_ALL} WHERE namespace = ? AND key = ?", key)]


def _apply(item: _Item, final: _Final) -> list[int | None] | BaseException:
    """Check one caller's writes against the batch so far; apply them if all pass."""
    changes: _Final = {}
    versions: list[int | None] = []
    for w in item.writes:
        k = (w.namespace, w.key)
        current = changes[k][0] if k in changes else final.get(k, (None, None, None))[0]
        if w.delete:
            if w.expected_version is not None and current != w.expected_version:
                return Conflict(
                    f"{w.namespace}/{w.key} changed concurrently", namespace=w.namespace, key=w.key
                )
            changes[k] = (None, None, item.now)
            versions.append(None)
            continue
        if w.expected_version is None:
            if current is not None:
                return Conflict(f"{w.namespace}/{w.key} already exists", namespace=w.namespace, key=w.key)
            new_version = 1
        else:
            if current != w.expected_version:
                return Conflict(
                    f"{w.namespace}/{w.key} changed concurrently", namespace=w.namespace, key=w.key
                )
            new_version = current + 1
        row = {
            "lookup": w.lookup,
            "document": w.document or {},
            "version": new_version,
            "expires_at": w.expires_at,
            "updated_at": item.now,
        }
        created = item.now if w.expected_version is None else final.get(k, (None, None, None))[2]
        changes[k] = (new_version, row, created or item.now)
        versions.append(new_version)
    final.update(changes)
    return versions


async def _outcome_of(commit: Any, batch: list[_Item]) -> list[int | None] | BaseException:
    try:
        outcomes: list[list[int | None] | BaseException] = await commit(batch)
        return outcomes[0]
    except Exception as exc:
        return exc


def _key_filter(keys: Any) -> Any:
    by_namespace: dict[str, list[str]] = {}
    for namespace, key in keys:
        by_namespace.setdefault(namespace, []).append(key)
    return or_(*(and_(_T.c.namespace == ns, _T.c.key.in_(ks)) for ns, ks in by_namespace.items()))


_UPDATE = (
    update(_T)
    .where(_T.c.namespace == bindparam("b_ns"), _T.c.key == bindparam("b_key"))
    .values(
        lookup=bindparam("lookup"),
        document=bindparam("document"),
        version=bindparam("version"),
        expires_at=bindparam("expires_at"),
        updated_at=bindparam("updated_at"),
    )
)
_DELETE = delete(_T).where(_T.c.namespace == bindparam("b_ns"), _T.c.key == bindparam("b_key"))
