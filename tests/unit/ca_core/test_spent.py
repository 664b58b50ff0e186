"""Spent one-time tokens (ACME nonces): once only, across processes sharing the database,
and forgotten after expiry; on a SQLite file in a table in shared memory that the main
database never sees, with a floor; on PostgreSQL as durable state documents without one."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from ca_core.services import Services
from ca_core.store import Store
from ca_core.store.spent import NS_SPENT, SharedSpentTokens, StateSpentTokens
from ca_core.store.spent_table import SpentTable

NOW = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(hours=1)


async def test_a_token_is_spent_once(matrix_services: Services) -> None:
    spent = matrix_services.store.spent
    assert await spent.spend("t1", NOW, LATER) is True
    assert await spent.spend("t1", NOW, LATER) is False
    assert await spent.spend("t2", NOW, LATER) is True
    # Spent together in one turn of the loop, the same token still wins only once.
    outcomes = await asyncio.gather(*(spent.spend("t3", NOW, LATER) for _ in range(5)))
    assert sorted(outcomes) == [False, False, False, False, True]


async def test_expired_tokens_are_forgotten_and_live_ones_kept(matrix_services: Services) -> None:
    spent = matrix_services.store.spent
    durable = isinstance(spent, StateSpentTokens)  # purged by the job; the shared table reuses
    await spent.spend("old", NOW, NOW + dt.timedelta(minutes=1))
    await spent.spend("live", NOW, LATER)
    after = NOW + dt.timedelta(minutes=2)
    assert await spent.purge_expired(after) == (1 if durable else 0)
    assert await spent.spend("live", after, LATER) is False
    # Never before its expiry, to the microsecond, though whole seconds are stored.
    almost = NOW + dt.timedelta(minutes=5, microseconds=500000)
    await spent.spend("almost", NOW, almost)
    await spent.purge_expired(almost - dt.timedelta(microseconds=300000))
    assert await spent.spend("almost", almost - dt.timedelta(microseconds=300000), almost) is False
    await spent.purge_expired(almost + dt.timedelta(seconds=1))
    # Forgotten once expired: the nonce check refuses an expired nonce before this.
    assert await spent.spend("almost", almost + dt.timedelta(seconds=1), almost) is True
    assert await spent.spend("old", after, NOW + dt.timedelta(minutes=1)) is True


async def test_postgres_keeps_tokens_as_durable_state_without_a_floor(matrix_services: Services) -> None:
    spent = matrix_services.store.spent
    if matrix_services.store.db.is_postgres:
        assert isinstance(spent, StateSpentTokens) and spent.floor is None
        await spent.spend("pg", NOW, LATER)
        assert await matrix_services.store.state.get(NS_SPENT, "pg") is not None
    else:
        assert isinstance(spent, SharedSpentTokens) and spent.floor is not None


async def test_two_processes_on_one_sqlite_file_share_spent_tokens(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/ceg.db"
    # Two Store objects stand for two worker processes: no memory is shared between them.
    first, second = Store.open(url), Store.open(url)
    try:
        assert await first.spent.spend("shared", NOW, LATER) is True
        assert await second.spent.spend("shared", NOW, LATER) is False
        assert await second.spent.spend("other", NOW, LATER) is True
        assert await first.spent.spend("other", NOW, LATER) is False
    finally:
        await first.close()
        await second.close()


async def test_spent_tokens_never_touch_the_main_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/ceg.db"
    store = Store.open(url)
    try:
        await store.spent.spend("side", NOW, LATER)
        main = sqlite3.connect(tmp_path / "ceg.db")
        tables = {r[0] for r in main.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        main.close()
        assert not any("spent" in name for name in tables)
        table = SpentTable(str(tmp_path / "ceg.db-spent"))  # what another process maps
        assert table.spend("side", NOW.timestamp(), LATER.timestamp()) is False
        table.close()
    finally:
        await store.close()


_SPEND_IN_ANOTHER_PROCESS = """
import sys
from ca_core.store.spent_table import SpentTable
table = SpentTable(sys.argv[1])
print(table.spend(sys.argv[2], float(sys.argv[3]), float(sys.argv[4])))
"""


def test_a_token_spent_in_another_process_is_spent_here(tmp_path: Path) -> None:
    path = str(tmp_path / "side")
    args = [sys.executable, "-c", _SPEND_IN_ANOTHER_PROCESS, path, "far", str(NOW.timestamp())]
    there = subprocess.run([*args, str(LATER.timestamp())], capture_output=True, text=True, check=True)
    assert there.stdout.strip() == "True"
    table = SpentTable(path)
    try:
        assert table.spend("far", NOW.timestamp(), LATER.timestamp()) is False
        assert table.spend("near", NOW.timestamp(), LATER.timestamp()) is True
    finally:
        table.close()
    again = subprocess.run([*args, str(LATER.timestamp())], capture_output=True, text=True, check=True)
    assert again.stdout.strip() == "False"


# Holds a record lock on the whole table, as another worker does on a bucket mid-spend.
_HOLD_THE_TABLE = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX, 0, 0)
print("held", flush=True)
sys.stdin.readline()
"""


async def test_a_spend_waits_for_another_process_holding_its_bucket(tmp_path: Path) -> None:
    spent = SharedSpentTokens(str(tmp_path / "side"), NOW)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_THE_TABLE, str(tmp_path / "side-131072")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        waiting = asyncio.ensure_future(spent.spend("busy", NOW, LATER))
        await asyncio.sleep(0.2)
        assert not waiting.done()  # handed to the thread that may wait, the loop is free
        behind = asyncio.ensure_future(spent.spend("busy", NOW, LATER))  # waits its turn
        await asyncio.sleep(0.05)
        assert not behind.done()
        holder.communicate("go\n", timeout=10)
        assert await asyncio.wait_for(waiting, 10) is True
        assert await asyncio.wait_for(behind, 10) is False
        assert await spent.spend("busy", NOW, LATER) is False  # and back on the loop
    finally:
        holder.kill()
        holder.wait()
        spent.close()


def test_a_full_bucket_forgets_the_first_to_expire_and_refuses_its_like(tmp_path: Path) -> None:
    table = SpentTable(str(tmp_path / "side"), buckets=1)  # every token in one bucket of 8
    try:
        assert all(table.spend(f"t{i}", 0, 100 + i) for i in range(8))
        assert table.spend("t8", 0, 200) is True  # t0 (expires at 100) forgotten
        assert table.spend("t0", 0, 100) is False  # ... but refused: its floor is 100
        assert table.spend("new", 0, 100) is False  # as is any token expiring no later
        assert table.spend("t1", 0, 101) is False  # still there
        assert table.spend("t8", 0, 200) is False
        assert table.spend("later", 0, 150) is True  # t1 forgotten now, floor 101
        assert table.spend("t1", 0, 101) is False
        # Expired entries are reused: at 1000 every entry is free again.
        assert all(table.spend(f"u{i}", 1000, 2000) for i in range(8))
        assert table.spend("u0", 1000, 2000) is False
    finally:
        table.close()


def test_the_floor_is_the_opening_second(tmp_path: Path) -> None:
    opened = dt.datetime(2026, 3, 1, 12, 0, 7, 900000, tzinfo=dt.UTC)
    spent = SharedSpentTokens(str(tmp_path / "side"), opened)
    try:
        assert spent.floor == dt.datetime(2026, 3, 1, 12, 0, 7, tzinfo=dt.UTC)
    finally:
        spent.close()


@pytest.mark.parametrize("reopen", [False, True])
async def test_reopening_keeps_what_was_spent(tmp_path: Path, reopen: bool) -> None:
    path = str(tmp_path / "side")
    spent = SharedSpentTokens(path, NOW)
    await spent.spend("kept", NOW, LATER)
    if reopen:
        spent.close()
        spent = SharedSpentTokens(path, LATER)
    try:
        assert await spent.spend("kept", NOW, LATER) is False
    finally:
        spent.close()


# Spends the same tokens as its twin, in the same order, in blocks: before each block it
# waits until the twin has finished the one before, so the two stay in step (a lead
# kept from the start would let one find every token already spent and race on none).
_RACE = """
import mmap, os, struct, sys
from ca_core.store.spent_table import SpentTable
table = SpentTable(sys.argv[1], buckets=16384)
me, tokens, block = int(sys.argv[3]), int(sys.argv[2]), 100
fd = os.open(sys.argv[4], os.O_RDWR)
steps = mmap.mmap(fd, 16)
print("ready", flush=True)
sys.stdin.readline()
won = []
for start in range(0, tokens, block):
    while struct.unpack_from("<q", steps, 8 * (1 - me))[0] < start:  # the twin's tokens done
        pass
    won += [i for i in range(start, start + block) if table.spend(f"t{i}", 0, 10**9, wait=True)]
    struct.pack_into("<q", steps, 8 * me, start + block)
print(" ".join(map(str, won)))
"""


def test_two_processes_racing_on_the_same_tokens_never_both_win_one(tmp_path: Path) -> None:
    """The bucket lock makes a spend atomic across processes: of two processes spending
    the same tokens at the same moment, at most one wins each (both, without the lock)."""
    path, tokens = str(tmp_path / "race"), 20000
    steps = tmp_path / "steps"
    steps.write_bytes(struct.pack("<qq", 0, 0))  # tokens each racer has done
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", _RACE, path, str(tokens), str(me), str(steps)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for me in range(2)
    ]
    for racer in racers:  # both started and mapped the table before either spends
        assert racer.stdout is not None and racer.stdout.readline().strip() == "ready"
    for racer in racers:
        assert racer.stdin is not None
        racer.stdin.write("go\n")
        racer.stdin.flush()
    first, second = ({int(i) for i in r.communicate(timeout=60)[0].split()} for r in racers)
    assert not first & second
    assert first and second  # they did race
    # A token neither won is one a full bucket refused (spent_table.py): a rare few here.
    assert len(first | second) > 0.99 * tokens
