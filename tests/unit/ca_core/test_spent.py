"""Spent one-time tokens (ACME nonces): once only, across processes sharing the database,
and forgotten after expiry; on a SQLite file in a side file that the main database never
sees, with a floor; on PostgreSQL as durable state documents without one."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from ca_core.services import Services
from ca_core.store import Store
from ca_core.store.spent import NS_SPENT, SqliteSpentTokens, StateSpentTokens

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


async def test_expired_tokens_are_purged_and_live_ones_kept(matrix_services: Services) -> None:
    spent = matrix_services.store.spent
    await spent.spend("old", NOW, NOW + dt.timedelta(minutes=1))
    await spent.spend("live", NOW, LATER)
    assert await spent.purge_expired(NOW + dt.timedelta(minutes=2)) == 1
    assert await spent.spend("live", NOW, LATER) is False
    # Never before its expiry, to the microsecond, though whole seconds are stored.
    almost = NOW + dt.timedelta(minutes=5, microseconds=500000)
    await spent.spend("almost", NOW, almost)
    assert await spent.purge_expired(almost - dt.timedelta(microseconds=300000)) == 0
    assert await spent.purge_expired(almost + dt.timedelta(seconds=1)) == 1
    # Purged means forgotten: the nonce check refuses an expired nonce before this.
    assert await spent.spend("old", NOW, NOW + dt.timedelta(minutes=1)) is True


async def test_postgres_keeps_tokens_as_durable_state_without_a_floor(matrix_services: Services) -> None:
    spent = matrix_services.store.spent
    if matrix_services.store.db.is_postgres:
        assert isinstance(spent, StateSpentTokens) and spent.floor is None
        await spent.spend("pg", NOW, LATER)
        assert await matrix_services.store.state.get(NS_SPENT, "pg") is not None
    else:
        assert isinstance(spent, SqliteSpentTokens) and spent.floor is not None


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
        side = sqlite3.connect(tmp_path / "ceg.db-spent")
        assert side.execute("SELECT token FROM spent_tokens").fetchall() == [("side",)]
        side.close()
    finally:
        await store.close()


async def test_a_spend_waits_for_another_process_holding_the_side_file(tmp_path: Path) -> None:
    spent = SqliteSpentTokens(str(tmp_path / "side"), NOW)
    other = sqlite3.connect(tmp_path / "side", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another worker in the middle of a spend
    try:
        waiting = asyncio.ensure_future(spent.spend("busy", NOW, LATER))
        await asyncio.sleep(0.2)
        assert not waiting.done()  # handed to the thread that may wait, the loop is free
        other.execute("COMMIT")
        assert await asyncio.wait_for(waiting, 10) is True
        assert await spent.spend("busy", NOW, LATER) is False
    finally:
        other.close()
        spent.close()


def test_the_floor_is_the_opening_second() -> None:
    opened = dt.datetime(2026, 3, 1, 12, 0, 7, 900000, tzinfo=dt.UTC)
    spent = SqliteSpentTokens(":memory:", opened)
    try:
        assert spent.floor == dt.datetime(2026, 3, 1, 12, 0, 7, tzinfo=dt.UTC)
    finally:
        spent.close()


@pytest.mark.parametrize("reopen", [False, True])
async def test_reopening_keeps_what_was_spent(tmp_path: Path, reopen: bool) -> None:
    path = str(tmp_path / "side")
    spent = SqliteSpentTokens(path, NOW)
    await spent.spend("kept", NOW, LATER)
    if reopen:
        spent.close()
        spent = SqliteSpentTokens(path, LATER)
    try:
        assert await spent.spend("kept", NOW, LATER) is False
    finally:
        spent.close()
