"""Batches on SQLite through the standard sqlite3 module, without SQLAlchemy and aiosqlite.

Through SQLAlchemy and aiosqlite every statement of a batch is a round trip between the
event loop and a driver thread, each a hand-over of the GIL; under load those hand-overs,
not SQLite, were most of the cost of protocol state and of storing certificates. Here:

- a write batch (a group commit of state documents, or of certificates and their audit
  entries) runs its statements on the calling thread, in memory, and hands only its
  COMMIT to a dedicated writer thread, which releases the GIL while SQLite appends to
  the log and syncs it: one hand-over per batch, where a writer thread running the
  statements would trade the GIL with the event loop at every row;
- a read runs on the calling thread (the event loop): a WAL reader never waits for the
  writer, and reading a few rows by primary key costs less than handing them to a
  thread and back. It uses the writer's connection whenever no transaction of that
  connection is open or committing: a connection keeps its page cache across its own
  commits, and any other connection of the process would lose it at each of them. Its
  connections have no busy timeout: in the rare moments a read would have to wait (WAL
  recovery, a checkpoint restarting the log) it is handed to the reader thread, which
  may wait.

Values are stored exactly as SQLAlchemy stores them (JSON text; UTC date-times as
"YYYY-MM-DD HH:MM:SS.ffffff"), so both paths read each other's rows. Writes hold the
database's write gate, like every other SQLite write transaction of ceg. Every
connection maps the database file into memory (mmap_size), so reading a page another
worker process changed costs a memory copy rather than a system call.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ca_core.model import utc

T = TypeVar("T")
_COLUMNS = ("namespace", "key", "lookup", "document", "version", "expires_at", "created_at", "updated_at")
SELECT_ALL = f"SELECT {', '.join(_COLUMNS)} FROM state_documents"


class Row:
    """What the state store reads from a row: attributes and `_mapping`, like SQLAlchemy's."""

    __slots__ = ("_mapping",)

    def __init__(self, values: tuple[Any, ...]) -> None:
        m = dict(zip(_COLUMNS, values, strict=True))
        m["document"] = json.loads(m["document"])
        for name in ("expires_at", "created_at", "updated_at"):
            if m[name] is not None:
                m[name] = dt.datetime.fromisoformat(m[name])
        self._mapping = m

    def __getattr__(self, name: str) -> Any:
        try:
            return self._mapping[name]
        except KeyError:
            raise AttributeError(name) from None


def stored_time(value: dt.datetime | None) -> str | None:
    # SQLAlchemy's "YYYY-MM-DD HH:MM:SS.ffffff"; isoformat writes it a few times faster.
    return None if value is None else utc(value).replace(tzinfo=None).isoformat(" ", "microseconds")


def stored_json(value: Any) -> str:
    return json.dumps(value)


# SQLite's default: a commit that leaves more pages than this in the log checkpoints.
AUTOCHECKPOINT_PAGES = 1000
# Light commits (durable=False) in a row before one is made durable, which syncs the log
# and checkpoints it: the log stays bounded when nothing else writes durably.
LIGHT_COMMITS_PER_SYNC = 256

# Bytes of the database file mapped into memory by each direct connection (SQLite
# maps what exists, up to this; the pages are the OS page cache's, shared).
MMAP_BYTES = 1 << 30


def connect(path: str, busy_timeout_ms: int = 30000) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")  # a committed certificate survives power loss
    conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
    return conn


def is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return bool(code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED))
    return "locked" in str(exc) or "busy" in str(exc)


class SqliteDirect:
    """A writer connection and a fallback reader connection, each used only by its own
    thread, and a connection for reads on the event loop's thread."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="ceg-state-read")
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="ceg-state-write")
        self._local = threading.local()
        self._loop_writer: sqlite3.Connection | None = None
        self._committing: asyncio.Future[None] | None = None
        self._closed = False
        self._durable = True  # what the loop writer's connection is set to
        self._light_commits = 0  # in a row, since the last durable commit

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect(self._path)
        return conn

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` (reads only) now on this thread; on the reader thread if it would wait."""
        conn = self._idle_writer()
        if conn is None:
            conn = getattr(self._local, "now", None)
            if conn is None:
                conn = self._local.now = connect(self._path, busy_timeout_ms=0)
        try:
            return fn(conn)
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
            if conn.in_transaction:
                conn.rollback()
        return await asyncio.get_running_loop().run_in_executor(self._reader, lambda: fn(self._conn()))

    def _idle_writer(self) -> sqlite3.Connection | None:
        """The loop's writer connection when no transaction of it is open or committing.
        A connection keeps its page cache across its own commits and loses it on any
        other connection's: a read on it costs a third of one on a separate connection
        of this process (12 against 35 us by primary key, right after a commit)."""
        conn = self._loop_writer
        if conn is None or conn.in_transaction:
            return None
        if self._committing is not None and not self._committing.done():
            return None
        return conn

    async def write(
        self,
        fn: Callable[[sqlite3.Connection], T],
        committed: Callable[[], None] | None = None,
        durable: bool = True,
    ) -> T:
        """Run `fn` inside BEGIN IMMEDIATE ... COMMIT (ROLLBACK if it raises).

        The caller holds the database's write gate (Database.write_gate), which queues
        writers of this process and of the other workers, so the write lock is normally
        free: BEGIN and `fn`'s statements then run on the calling thread (in WAL mode
        they change only pages in memory) and only the COMMIT, which appends to the log
        and syncs it, goes to the writer thread. Each statement step releases the GIL,
        and a writer thread stepping through a batch would trade it with the event loop
        at every row. Should the lock be taken after all (a process that does not use
        the gate), the whole transaction runs in the writer thread, which may wait.

        `durable=False` commits with synchronous=NORMAL, on the calling thread: the log
        is appended to but not synced, so the commit survives a crash of the process and
        not a power loss until the next durable commit (or checkpoint) syncs the log. It
        never checkpoints (that syncs the disk); a durable commit does, and after
        LIGHT_COMMITS_PER_SYNC light ones in a row the next is made durable."""
        loop = asyncio.get_running_loop()
        if self._committing is not None and not self._committing.done():
            # A commit whose caller was cancelled: the connection is not free before it ends.
            await asyncio.wait({self._committing})
        conn = self._loop_writer
        if conn is None:
            conn = self._loop_writer = connect(self._path, busy_timeout_ms=0)
        durable = durable or self._light_commits >= LIGHT_COMMITS_PER_SYNC
        self._set_durability(conn, durable)
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
            return await loop.run_in_executor(
                self._writer, functools.partial(_transaction, self._conn, fn, committed)
            )
        try:
            result = fn(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        if not durable:
            _commit(conn, committed)
            self._light_commits += 1
            return result
        self._light_commits = 0
        committing = self._committing = loop.run_in_executor(self._writer, _commit, conn, committed)
        try:
            await asyncio.shield(committing)
        except asyncio.CancelledError:
            await asyncio.wait({committing})
            raise
        return result

    def _set_durability(self, conn: sqlite3.Connection, durable: bool) -> None:
        if durable == self._durable:
            return
        conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        conn.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES if durable else 0}")
        self._durable = durable

    def close(self) -> None:
        if self._closed:  # closing twice (a restart in a test, then teardown) is harmless
            return
        self._closed = True
        for pool in (self._reader, self._writer):
            pool.submit(self._close_local).result()
            pool.shutdown(wait=True)

        self._close_local()  # the connection of the thread that read on the loop
        if self._loop_writer is not None:
            self._loop_writer.close()
            self._loop_writer = None

    def _close_local(self) -> None:
        for name in ("conn", "now"):
            conn = getattr(self._local, name, None)
            if conn is not None:
                conn.close()
                setattr(self._local, name, None)


def _transaction(
    connection: Callable[[], sqlite3.Connection],
    fn: Callable[[sqlite3.Connection], T],
    committed: Callable[[], None] | None,
) -> T:
    conn = connection()
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    _commit(conn, committed)
    return result


def _commit(conn: sqlite3.Connection, committed: Callable[[], None] | None) -> None:
    """COMMIT (ROLLBACK if it fails); then `committed`, on this thread, at once."""
    try:
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    if committed is not None:
        committed()


# One statement text for any set of keys, so sqlite3's statement cache always hits (a
# clause per key count and namespace mix was prepared again and again: 66 against 43 us
# for a batch of eight keys). SQLite answers it through the primary key index.
_KEYS_IN = (
    "(namespace, key) IN (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?))"
)


def key_filter(keys: Sequence[tuple[str, str]]) -> tuple[str, list[str]]:
    """A WHERE clause and its parameters matching any of the (namespace, key) pairs."""
    return _KEYS_IN, [json.dumps([list(k) for k in keys])]
