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
With several worker processes on one SQLite file, writers also take a lock file beside
the database first (`WriteGate`): a waiting writer then sleeps in the kernel until the
holder is done, instead of SQLite's busy handler polling with sleeps of up to 100 ms,
which stalls every request in that worker's commit batch.

On a SQLite file, group-committed inserts do not go through SQLAlchemy and aiosqlite
(a driver-thread round trip per statement) but through the store's direct connection
(state_sqlite.py): the whole batch is one call into the writer thread, with the rows
converted by the columns' own SQLAlchemy type processors, so they are stored exactly
as SQLAlchemy stores them.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Table, event, insert, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ca_core.audit import GENESIS_HASH, AuditEntry, ChainedEntry, chain
from ca_core.errors import InvalidState
from ca_core.store import tables as t
from ca_core.store.sqlite_inserts import InsertBatch, audit_row, commit_inserts
from ca_core.store.state_sqlite import MMAP_BYTES, SqliteDirect

T = TypeVar("T")

_MAX_BATCH = 512


@dataclass
class UnitOfWork:
    """One open transaction: run statements on `conn`, queue audit entries with `audit()`."""

    conn: AsyncConnection
    is_postgres: bool
    _audit: list[AuditEntry] = field(default_factory=list)
    _inserts: dict[str, tuple[Table, list[dict[str, Any]]]] = field(default_factory=dict)
    _committed: list[Callable[[], None]] = field(default_factory=list)
    written: list[ChainedEntry] = field(default_factory=list)

    def audit(self, entry: AuditEntry) -> None:
        self._audit.append(entry)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once the transaction has committed (never if it rolls back)."""
        self._committed.append(callback)

    def committed(self) -> None:
        for callback in self._committed:
            callback()

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
        await self.conn.execute(insert(t.audit_log), [audit_row(c) for c in chained])
        new_head = {"seq": chained[-1].seq, "hash": chained[-1].hash}
        if head is None:
            await self.conn.execute(insert(t.audit_head), [{"id": 1, **new_head}])
        else:
            await self.conn.execute(update(t.audit_head).where(t.audit_head.c.id == 1), new_head)
        self.written.extend(chained)
        self._audit.clear()


class WriteGate:
    """One writer at a time across processes (a lock file) and within this one (a lock)."""

    def __init__(self, path: str, timeout: float = 30.0) -> None:
        self._path = path
        self._timeout = timeout
        self._fd: int | None = None
        self._lock: asyncio.Lock | None = None

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        if self._lock is None:
            self._lock = asyncio.Lock()
        if self._lock.locked():
            await asyncio.wait_for(self._lock.acquire(), self._timeout)
        else:  # free: taken at once, without the task and timer wait_for sets up
            await self._lock.acquire()
        try:
            if self._fd is None:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            fd = self._fd
            await self._lock_file(fd)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            self._lock.release()

    def let_go_of_file(self) -> None:
        """Release the cross-process lock now; safe from any thread. The writer thread
        calls it the moment its COMMIT returns, so other workers do not wait for this
        process's busy event loop to come round to leaving `hold` (the in-process lock is
        kept until then; unlocking again there is a no-op)."""
        fd = self._fd
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)

    async def _lock_file(self, fd: int) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free: no thread hop
            return
        except BlockingIOError:
            pass
        waiter = asyncio.ensure_future(asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX))
        try:
            await asyncio.wait_for(asyncio.shield(waiter), self._timeout)
        except BaseException:
            # The thread cannot be stopped; if it gets the lock after we gave up, let go of it.
            def release(done: asyncio.Future[None]) -> None:
                if not done.cancelled() and done.exception() is None:
                    fcntl.flock(fd, fcntl.LOCK_UN)

            waiter.add_done_callback(release)
            raise

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@dataclass
class _Pending:
    rows: Sequence[tuple[Table, dict[str, Any]]]
    audit: Sequence[AuditEntry]
    future: asyncio.Future[None]
    active_ca: str | None = None  # commit only while this CA is active (else InvalidState)


class Database:
    """The engines and the group-commit queue. Create with `Database.open(url)`."""

    def __init__(
        self, url: str, writer: AsyncEngine, reader: AsyncEngine, gate: WriteGate | None = None
    ) -> None:
        self.url = url
        self._gate = gate
        self.is_postgres = writer.dialect.name == "postgresql"
        self._writer = writer
        self._reader = reader
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None
        path = self.sqlite_file
        self._direct = SqliteDirect(path) if path else None

    @property
    def direct(self) -> SqliteDirect | None:
        """The direct sqlite3 connections of a SQLite file database (None otherwise)."""
        return self._direct

    @classmethod
    def open(cls, url: str, pool_size: int = 10) -> Database:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            writer = create_async_engine(url)
            reader = create_async_engine(url)
            _configure_sqlite(writer, immediate=True)
            _configure_sqlite(reader, immediate=False)
            database = parsed.database
            if database and database != ":memory:" and not database.startswith("file:"):
                return cls(url, writer, reader, WriteGate(database + "-writelock"))
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

    def write_gate(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Held by every write transaction on a SQLite file (one writer at a time, across
        this process and the other workers'); a no-op on PostgreSQL."""
        return self._gate.hold() if self._gate is not None else contextlib.nullcontext()

    async def direct_write(self, fn: Callable[[sqlite3.Connection], T], durable: bool = True) -> T:
        """`fn` in a write transaction on the direct sqlite3 path (SqliteDirect.write),
        holding the write gate, whose file lock is let go as soon as COMMIT returns.
        `durable=False`: see SqliteDirect.write."""
        direct = self._direct
        if direct is None:
            raise RuntimeError("direct writes need a SQLite file database")
        gate = self._gate
        async with self.write_gate():
            return await direct.write(
                fn, committed=gate.let_go_of_file if gate is not None else None, durable=durable
            )

    @property
    def engine(self) -> AsyncEngine:
        return self._writer

    async def close(self) -> None:
        if self._flusher is not None:
            await asyncio.shield(self._flusher)
        await self._writer.dispose()
        if self._reader is not self._writer:
            await self._reader.dispose()
        if self._direct is not None:
            self._direct.close()
        if self._gate is not None:
            self._gate.close()

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self._reader.connect() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[UnitOfWork]:
        async with self.write_gate():
            async with self._writer.begin() as conn:
                uow = UnitOfWork(conn, self.is_postgres)
                yield uow
                await uow.flush()
            uow.committed()

    async def insert_batched(
        self,
        rows: Sequence[tuple[Table, dict[str, Any]]],
        audit: Sequence[AuditEntry] = (),
        active_ca: str | None = None,
    ) -> None:
        """Insert rows and audit entries atomically; returns once they are committed.

        With `active_ca`, the rows are written only if that CA is still active when the
        batch commits (checked in the same transaction), else InvalidState is raised and
        nothing of this item is written: a CA deleted by another worker, whose state this
        process still has cached, gets no certificate stored after its deletion.
        """
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(rows, audit, future, active_ca))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_pending())
        await future

    async def _flush_pending(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:_MAX_BATCH], self._pending[_MAX_BATCH:]
            try:
                refused = await self._commit(batch)
            except Exception as exc:
                if len(batch) == 1:
                    _settle(batch[0].future, exc)
                    continue
                for item in batch:  # find the bad one(s); the rest still commit
                    try:
                        refused_one = await self._commit([item])
                    except Exception as item_exc:
                        _settle(item.future, item_exc)
                    else:
                        _settle(item.future, refused_one.get(id(item)))
            else:
                for item in batch:
                    _settle(item.future, refused.get(id(item)))

    async def _commit(self, batch: list[_Pending]) -> dict[int, BaseException]:
        """Write the batch in one transaction; returns the items refused (CA no longer active)."""
        direct = self._direct
        if direct is not None:
            items = [InsertBatch(i.rows, i.audit, i.active_ca) for i in batch]
            dialect = self._writer.dialect
            try:
                refused_at = await self.direct_write(lambda conn: commit_inserts(conn, items, dialect))
            except sqlite3.IntegrityError as exc:
                # callers see the same error whichever path wrote (a duplicate key is theirs to handle)
                raise IntegrityError("group commit", None, exc) from exc
            return {
                id(batch[index]): InvalidState(f"CA {ca} is no longer active", ca=ca)
                for index, ca in refused_at.items()
            }
        refused: dict[int, BaseException] = {}
        async with self.transaction() as uow:
            inactive = await self._inactive_cas(uow, {i.active_ca for i in batch if i.active_ca})
            for item in batch:
                if item.active_ca in inactive:
                    refused[id(item)] = InvalidState(
                        f"CA {item.active_ca} is no longer active", ca=item.active_ca
                    )
                    continue
                for table, row in item.rows:
                    uow.insert_later(table, row)
                for entry in item.audit:
                    uow.audit(entry)
        return refused

    async def _inactive_cas(self, uow: UnitOfWork, ca_ids: set[str | None]) -> set[str | None]:
        if not ca_ids:
            return set()
        query = select(t.cas.c.id, t.cas.c.state).where(t.cas.c.id.in_([c for c in ca_ids if c]))
        if self.is_postgres:
            # A share lock: a concurrent deletion's state change waits for this commit.
            query = query.with_for_update(read=True)
        active = {row.id for row in (await uow.conn.execute(query)).all() if row.state == "active"}
        return ca_ids - active


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
        cursor.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
