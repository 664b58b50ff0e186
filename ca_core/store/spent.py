"""One-time tokens spent across every worker: ACME's replay nonces (RFC 8555 6.5).

A used nonce is written on every ACME request, so where it is written decides much of
ACME's cost. In the main SQLite file each such write was a commit the disk had to sync
and, with several workers, a change that emptied the other workers' page caches of
the whole database. On a SQLite file, spent tokens therefore live in a side file of
their own (`<database>-spent`, WAL, synchronous=NORMAL): a spend is one INSERT on the
calling thread, which the operating system makes durable against a process crash
without waiting for the disk, and which touches no page of the main database.

What synchronous=NORMAL gives up is the last spends before a power loss or an OS crash.
A nonce whose spend was lost could then be replayed, so such a store has a `floor`: the
time it was opened. Tokens minted before it are to be refused (ACME answers badNonce,
which clients retry with a fresh nonce), and every process opens the store anew after
a crash, so no lost spend can be replayed.

On PostgreSQL (and SQLite in memory) tokens are state documents, committed durably like
the rest of the state, and there is no floor.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from ca_core.errors import Conflict
from ca_core.store.state import StateStore, StateWrite
from ca_core.store.state_sqlite import connect, is_busy

NS_SPENT = "spent-token"
# Keyed by expiry first: new tokens go to the right edge of the tree (the pages on its
# path stay hot) and purging is a range of the key, with no second index to maintain.
# A spend cost 36 us with the token alone as key and an expiry index, 14 us so.
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS spent_tokens (expires_at INTEGER NOT NULL, token TEXT NOT NULL,"
    " PRIMARY KEY (expires_at, token)) WITHOUT ROWID",
)


class SpentTokens(Protocol):
    @property
    def floor(self) -> dt.datetime | None:
        """Tokens minted before this may have been spent unrecorded; None if none can."""
        ...

    async def spend(self, token: str, now: dt.datetime, expires: dt.datetime) -> bool:
        """Record `token` as spent until `expires`; False if it already was (anywhere).
        A token is always spent with the same expiry (an ACME nonce's comes from the
        time it was minted, which it carries)."""
        ...

    async def purge_expired(self, now: dt.datetime) -> int: ...

    def close(self) -> None: ...


class StateSpentTokens:
    """Spent tokens as state documents: durable, group-committed with other state."""

    floor = None

    def __init__(self, state: StateStore) -> None:
        self._state = state

    async def spend(self, token: str, now: dt.datetime, expires: dt.datetime) -> bool:
        try:
            await self._state.commit([StateWrite(NS_SPENT, token, {}, expires_at=expires)], now)
        except Conflict:
            return False
        return True

    async def purge_expired(self, now: dt.datetime) -> int:
        return await self._state.purge_expired(now, NS_SPENT)

    def close(self) -> None:
        """The state store is closed by its owner."""


class SqliteSpentTokens:
    """Spent tokens in a side file; see the module docstring for why and what it risks."""

    def __init__(self, path: str, opened_at: dt.datetime) -> None:
        self._path = path
        # Nonces carry whole seconds; one minted in the second the store opened is newer.
        self.floor: dt.datetime | None = opened_at.replace(microsecond=0)
        self._local = threading.local()
        self._waiter = ThreadPoolExecutor(1, thread_name_prefix="ceg-spent")
        self._closed = False
        setup = connect(path, busy_timeout_ms=30000, synchronous="NORMAL")
        for statement in _SCHEMA:
            setup.execute(statement)
        setup.close()

    def _conn(self, busy_timeout_ms: int) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect(self._path, busy_timeout_ms, synchronous="NORMAL")
        return conn

    async def spend(self, token: str, now: dt.datetime, expires: dt.datetime) -> bool:
        # Inline: without a disk sync an INSERT costs less than a hop to a thread. The
        # loop's connection never waits for the lock; if another worker holds it at
        # this instant, the insert is made on a thread that may wait.
        try:
            return _insert(self._conn(busy_timeout_ms=0), token, expires)
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._waiter, self._insert_waiting, token, expires)

    def _insert_waiting(self, token: str, expires: dt.datetime) -> bool:
        return _insert(self._conn(busy_timeout_ms=30000), token, expires)

    async def purge_expired(self, now: dt.datetime) -> int:
        def purge() -> int:
            cursor = self._conn(busy_timeout_ms=30000).execute(
                "DELETE FROM spent_tokens WHERE expires_at <= ?", (math.floor(now.timestamp()),)
            )
            return cursor.rowcount

        return await asyncio.get_running_loop().run_in_executor(self._waiter, purge)

    def close(self) -> None:
        if self._closed:  # closing twice (a restart in a test, then teardown) is harmless
            return
        self._closed = True
        self._waiter.submit(self._close_local).result()
        self._waiter.shutdown(wait=True)
        self._close_local()

    def _close_local(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def _insert(conn: sqlite3.Connection, token: str, expires: dt.datetime) -> bool:
    # Whole seconds, rounded up: a token is never forgotten before it expires.
    expires_at = math.ceil(expires.timestamp())
    try:
        conn.execute("INSERT INTO spent_tokens (expires_at, token) VALUES (?, ?)", (expires_at, token))
    except sqlite3.IntegrityError:
        return False
    return True


def open_spent_tokens(sqlite_file: str | None, state: StateStore) -> SpentTokens:
    """The side file next to a SQLite database file; state documents otherwise."""
    if sqlite_file is None:
        return StateSpentTokens(state)
    return SqliteSpentTokens(sqlite_file + "-spent", dt.datetime.now(dt.UTC))
