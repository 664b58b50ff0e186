"""Connections, transactions and group commit, for SQLite and PostgreSQL alike.

Two ways to write:

- `transaction()`: a unit of work for changes that read and decide (revocation, CA
  state changes). Audit entries added to it are chained and written in the same
  transaction, just before commit.
- `insert_batched()`: pure inserts (a new certificate and its audit entry) joined with
  whatever other inserts are waiting into one transaction: group commit. One commit
  (one fsync) serves many issuances, which is what lets the store keep up with signing.
  If a batch fails, its items are retried one by one so one bad row fails alone.

SQLite write transactions start with BEGIN IMMEDIATE so two writers queue on the lock
instead of failing to upgrade; PostgreSQL serialises audit appends on the audit_head row.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, event, insert, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ca_core.audit import GENESIS_HASH, AuditEntry, ChainedEntry, chain
from ca_core.store import tables as t

_MAX_BATCH = 512


@dataclass
class UnitOfWork:
    """One open transaction: run statements on `conn`, queue audit entries with `audit()`."""

    conn: AsyncConnection
    is_postgres: bool
    _audit: list[AuditEntry] = field(default_factory=list)
    _inserts: dict[str, tuple[Table, list[dict[str, Any]]]] = field(default_factory=dict)
    written: list[ChainedEntry] = field(default_factory=list)

    def audit(self, entry: AuditEntry) -> None:
        self._audit.append(entry)

    def insert_later(self, table: Table, row: dict[str, Any]) -> None:
        """Queue an insert; all queued rows of a table go in one executemany at commit."""
        self._inserts.setdefault(table.name, (table, []))[1].append(row)

    async def flush(self) -> None:
        for table, rows in self._inserts.values():
            if rows:
                await self.conn.execute(insert(table), rows)
        self._inserts.clear()
        if not self._audit:
            return
        query = select(t.audit_head.c.seq, t.audit_head.c.hash).where(t.audit_head.c.id == 1)
        if self.is_postgres:
            query = query.with_for_update()
        head = (await self.conn.execute(query)).first()
        last_seq, last_hash = (head.seq, head.hash) if head else (0, GENESIS_HASH)
        chained = chain(self._audit, last_seq, last_hash)
        await self.conn.execute(
            insert(t.audit_log),
            [
                {
                    "seq": c.seq,
                    "at": c.at,
                    "action": c.action,
                    "actor": c.actor,
                    "ca_id": c.ca_id,
                    "serial": c.serial,
                    "detail": c.detail,
                    "prev_hash": c.prev_hash,
                    "hash": c.hash,
                }
                for c in chained
            ],
        )
        new_head = {"seq": chained[-1].seq, "hash": chained[-1].hash}
        if head is None:
            await self.conn.execute(insert(t.audit_head), [{"id": 1, **new_head}])
        else:
            await self.conn.execute(update(t.audit_head).where(t.audit_head.c.id == 1), new_head)
        self.written.extend(chained)
        self._audit.clear()


@dataclass
class _Pending:
    rows: Sequence[tuple[Table, dict[str, Any]]]
    audit: Sequence[AuditEntry]
    future: asyncio.Future[None]


class Database:
    """The engines and the group-commit queue. Create with `Database.open(url)`."""

    def __init__(self, url: str, writer: AsyncEngine, reader: AsyncEngine) -> None:
        self.url = url
        self.is_postgres = writer.dialect.name == "postgresql"
        self._writer = writer
        self._reader = reader
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None
        self._sqlite_writer_lock = asyncio.Lock()

    @classmethod
    def open(cls, url: str, pool_size: int = 10) -> Database:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            writer = create_async_engine(url)
            reader = create_async_engine(url)
            _configure_sqlite(writer, immediate=True)
            _configure_sqlite(reader, immediate=False)
        elif parsed.get_backend_name() == "postgresql":
            writer = create_async_engine(url, pool_size=pool_size, max_overflow=pool_size)
            reader = writer
        else:
            raise ValueError(f"unsupported database {parsed.get_backend_name()!r}")
        return cls(url, writer, reader)

    @property
    def sqlite_file(self) -> str | None:
        """The database file when this is SQLite on a file (None for PostgreSQL, memory)."""
        if self.is_postgres:
            return None
        name = make_url(self.url).database
        return name if name and name != ":memory:" else None

    @property
    def sqlite_writer_lock(self) -> asyncio.Lock:
        """Held by every write transaction of this process on SQLite."""
        return self._sqlite_writer_lock

    @property
    def engine(self) -> AsyncEngine:
        return self._writer

    async def close(self) -> None:
        if self._flusher is not None:
            await asyncio.shield(self._flusher)
        await self._writer.dispose()
        if self._reader is not self._writer:
            await self._reader.dispose()

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self._reader.connect() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[UnitOfWork]:
        if self.is_postgres:
            async with self._writer.begin() as conn:
                uow = UnitOfWork(conn, self.is_postgres)
                yield uow
                await uow.flush()
            return
        # SQLite has one writer at a time. Queue this process's writers here rather than
        # on the database lock, whose busy handler sleeps for up to 100 ms per retry.
        async with self._sqlite_writer_lock, self._writer.begin() as conn:
            uow = UnitOfWork(conn, self.is_postgres)
            yield uow
            await uow.flush()

    async def insert_batched(
        self, rows: Sequence[tuple[Table, dict[str, Any]]], audit: Sequence[AuditEntry] = ()
    ) -> None:
        """Insert rows and audit entries atomically; returns once they are committed."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(rows, audit, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_pending())
        await future

    async def _flush_pending(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:_MAX_BATCH], self._pending[_MAX_BATCH:]
            try:
                await self._commit(batch)
            except Exception as exc:
                if len(batch) == 1:
                    _settle(batch[0].future, exc)
                    continue
                for item in batch:  # find the bad one(s); the rest still commit
                    try:
                        await self._commit([item])
                    except Exception as item_exc:
                        _settle(item.future, item_exc)
            else:
                for item in batch:
                    _settle(item.future, None)

    async def _commit(self, batch: list[_Pending]) -> None:
        async with self.transaction() as uow:
            for item in batch:
                for table, row in item.rows:
                    uow.insert_later(table, row)
                for entry in item.audit:
                    uow.audit(entry)


def _settle(future: asyncio.Future[None], exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is None:
        future.set_result(None)
    else:
        future.set_exception(exc)


def _configure_sqlite(engine: AsyncEngine, immediate: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take over transaction control from the sqlite3 module (SQLAlchemy's documented
        # recipe), so BEGIN is ours and SAVEPOINT works.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed certificate survives power loss, not only a process crash.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
