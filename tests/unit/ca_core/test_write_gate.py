"""SQLite writers of several processes take turns on a lock file (store/database.py)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from ca_core.store.database import Database, WriteGate


async def test_a_second_writer_waits_and_wakes_when_the_first_is_done(tmp_path: Path) -> None:
    # Two gates on one file stand for two worker processes (flock excludes per open file).
    first, second = WriteGate(str(tmp_path / "db-writelock")), WriteGate(str(tmp_path / "db-writelock"))
    order: list[str] = []
    async with first.hold():
        waiter = asyncio.create_task(_take(second, order))
        await asyncio.sleep(0.2)
        assert order == [], "the second writer must wait while the first holds the gate"
        released = time.perf_counter()
    await waiter
    assert order == ["second"] and time.perf_counter() - released < 0.5
    first.close()
    second.close()


async def _take(gate: WriteGate, order: list[str]) -> None:
    async with gate.hold():
        order.append("second")


async def test_file_databases_get_a_gate_and_memory_ones_do_not(tmp_path: Path) -> None:
    on_file = Database.open(f"sqlite+aiosqlite:///{tmp_path}/ceg.db")
    in_memory = Database.open("sqlite+aiosqlite://")
    try:
        async with on_file.transaction():
            pass
        assert (tmp_path / "ceg.db-writelock").exists()
        assert in_memory._gate is None
    finally:
        await on_file.close()
        await in_memory.close()
