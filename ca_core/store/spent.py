"""One-time tokens spent across every worker: ACME's replay nonces (RFC 8555 6.5).

A used nonce is recorded on every ACME request, so where it is recorded decides much
of ACME's cost. On a SQLite file, spent tokens live in a table in memory that every
worker of the host maps (spent_table.py): a spend is a record lock on 128 bytes, a read
and a write, made on the event loop's thread. It never touches the database, so it
costs no commit and empties no worker's page cache. (It was an INSERT into a SQLite
side file, about 28 us a spend under load and a tenth of an ACME order's work.)

The table is as durable as the page cache: a worker crash loses nothing, a power loss
or an OS crash can lose the last spends, and a nonce whose spend was lost could then be
replayed. So such a store has a `floor`, the time it was opened: tokens minted before
it are to be refused (ACME answers badNonce, which clients retry with a fresh nonce),
and every process opens the store anew after a crash, so no lost spend is replayed.

On PostgreSQL (and SQLite in memory) tokens are state documents, committed durably like
the rest of the state, and there is no floor: replicas may be on other hosts.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from ca_core.errors import Conflict
from ca_core.store.spent_table import Locked, SpentTable
from ca_core.store.state import StateStore, StateWrite

NS_SPENT = "spent-token"


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


class SharedSpentTokens:
    """Spent tokens in a table in memory shared by the host's workers (spent_table.py)."""

    def __init__(self, path: str, opened_at: dt.datetime) -> None:
        # Nonces carry whole seconds; one minted in the second the store opened is newer.
        self.floor: dt.datetime | None = opened_at.replace(microsecond=0)
        self._table = SpentTable(path)
        self._waiter = ThreadPoolExecutor(1, thread_name_prefix="ceg-spent")
        self._waiting = 0

    async def spend(self, token: str, now: dt.datetime, expires: dt.datetime) -> bool:
        # On the loop: a spend is a lock, a read and a write of 128 bytes. If another
        # process holds the bucket at this instant, the spend waits on a thread, and so do
        # this process's next spends until it is done: record locks belong to the
        # process, so they cannot keep the loop and that thread apart.
        if not self._waiting:
            try:
                return self._table.spend(token, now.timestamp(), expires.timestamp())
            except Locked:
                pass
        self._waiting += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._waiter, self._table.spend, token, now.timestamp(), expires.timestamp(), True
            )
        finally:
            self._waiting -= 1

    async def purge_expired(self, now: dt.datetime) -> int:
        """Nothing to do: an expired entry is reused when a spend meets it."""
        return 0

    def close(self) -> None:
        self._waiter.shutdown(wait=True)
        self._table.close()


def open_spent_tokens(sqlite_file: str | None, state: StateStore) -> SpentTokens:
    """The shared table beside a SQLite database file; state documents otherwise."""
    if sqlite_file is None:
        return StateSpentTokens(state)
    return SharedSpentTokens(sqlite_file + "-spent", dt.datetime.now(dt.UTC))
