"""SQLite writers in several worker processes queue on a file lock (store/database.py)."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from ca_core.store import Store, migrate
from ca_core.store.database import WriterLock


async def test_a_second_holder_waits_until_the_first_releases(tmp_path: Path) -> None:
    # Two WriterLocks on one file stand for two processes (separate open files).
    first, second = WriterLock(str(tmp_path / "db")), WriterLock(str(tmp_path / "db"))
    order: list[str] = []
    await first.__aenter__()

    async def other() -> None:
        async with second:
            order.append("second")

    task = asyncio.create_task(other())
    await asyncio.sleep(0.1)
    assert order == []  # still waiting on the flock
    order.append("first")
    await first.__aexit__(None, None, None)
    await asyncio.wait_for(task, 5)
    assert order == ["first", "second"]
    # A waiter that gives up does not leave the lock held.
    await first.__aenter__()
    waiter = asyncio.create_task(second.__aenter__())
    await asyncio.sleep(0.05)
    waiter.cancel()
    await first.__aexit__(None, None, None)
    await asyncio.sleep(0.1)
    async with first:
        pass
    first.close()
    second.close()


async def test_two_stores_on_one_file_write_concurrently(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/ceg.db"
    await migrate(url)
    stores = [Store.open(url), Store.open(url)]
    now = dt.datetime.now(dt.UTC)

    async def write(store: Store, name: str) -> None:
        for i in range(40):
            await store.state.create("lock-test", f"{name}-{i}", {"i": i}, now)

    await asyncio.wait_for(asyncio.gather(write(stores[0], "a"), write(stores[1], "b")), 60)
    assert len(await stores[0].state.find("lock-test", None, limit=1000)) == 80  # type: ignore[arg-type]
    for store in stores:
        await store.db.close()
