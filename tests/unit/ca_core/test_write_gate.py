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


async def test_another_worker_may_write_as_soon_as_the_commit_returns(tmp_path: Path) -> None:
    """The writer thread lets go of the lock file right after COMMIT, before this
    process's event loop resumes the writer: another worker's gate is free by then."""
    import fcntl
    import os
    import threading

    db = Database.open(f"sqlite+aiosqlite:///{tmp_path}/ceg.db")
    seen: dict[str, object] = {}

    def other_worker_tries() -> None:  # on the writer thread, just after COMMIT
        fd = os.open(tmp_path / "ceg.db-writelock", os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if still held
            seen["free"] = True
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
        seen["thread"] = threading.current_thread().name

    gate = db._gate
    assert gate is not None
    let_go = gate.let_go_of_file

    def let_go_then_look() -> None:
        let_go()
        other_worker_tries()

    gate.let_go_of_file = let_go_then_look  # type: ignore[method-assign]
    try:
        await db.direct_write(lambda conn: conn.execute("CREATE TABLE t (x INTEGER)"))
        assert seen == {"free": True, "thread": seen["thread"]}
        assert str(seen["thread"]).startswith("ceg-state-write")
    finally:
        await db.close()
