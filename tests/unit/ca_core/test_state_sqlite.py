"""Reads on the event loop through the direct sqlite3 connections (store/state_sqlite.py):
they go through the writer's connection when it is idle, and never see a transaction that
is still committing."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

from ca_core.store.state_sqlite import SqliteDirect


def _setup(path: Path) -> SqliteDirect:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)")
    conn.commit()
    conn.close()
    return SqliteDirect(str(path))


def _values(conn: sqlite3.Connection) -> list[tuple[str, int]]:
    return list(conn.execute("SELECT k, v FROM t ORDER BY k"))


def _insert(key: str, value: int):  # type: ignore[no-untyped-def]
    def fn(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t VALUES (?, ?)", (key, value))

    return fn


async def test_a_read_while_no_write_is_open_uses_the_writers_connection(tmp_path: Path) -> None:
    direct = _setup(tmp_path / "db")
    try:
        await direct.write(_insert("a", 1))
        used: list[sqlite3.Connection] = []

        def read(conn: sqlite3.Connection) -> list[tuple[str, int]]:
            used.append(conn)
            return _values(conn)

        assert await direct.read(read) == [("a", 1)]
        # The connection that committed keeps its page cache; another would lose it.
        assert used == [direct._loop_writer]
    finally:
        direct.close()


async def test_a_read_during_a_commit_sees_only_what_is_committed(tmp_path: Path) -> None:
    direct = _setup(tmp_path / "db")
    try:
        await direct.write(_insert("a", 1))
        # Hold the writer thread, so the next write's COMMIT waits with its rows written
        # into the open transaction of the writer's connection.
        release = threading.Event()
        direct._writer.submit(release.wait)
        try:
            writing = asyncio.create_task(direct.write(_insert("b", 2)))
            for _ in range(100):
                await asyncio.sleep(0.01)
                if direct._loop_writer is not None and direct._loop_writer.in_transaction:
                    break
            assert direct._loop_writer is not None and direct._loop_writer.in_transaction
            used: list[sqlite3.Connection] = []

            def read(conn: sqlite3.Connection) -> list[tuple[str, int]]:
                used.append(conn)
                return _values(conn)

            assert await direct.read(read) == [("a", 1)], "an uncommitted row must not be read"
            assert used and used[0] is not direct._loop_writer
        finally:
            release.set()
        await writing
        assert await direct.read(_values) == [("a", 1), ("b", 2)]
    finally:
        direct.close()
