"""The direct sqlite3 connections (store/state_sqlite.py): reads on the event loop go
through the writer's connection when it is idle and never see a transaction that is still
committing; light writes commit on the loop without syncing, durable ones on the writer
thread."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from ca_core.store import state_sqlite
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


def _settings_seen(seen: list[tuple[int, int]], key: str, value: int):  # type: ignore[no-untyped-def]
    """A write that records the sync level and the autocheckpoint in force for it."""

    def fn(conn: sqlite3.Connection) -> None:
        level = conn.execute("PRAGMA synchronous").fetchone()[0]
        checkpoint = conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        seen.append((level, checkpoint))
        conn.execute("INSERT INTO t VALUES (?, ?)", (key, value))

    return fn


FULL, NORMAL = 2, 1


async def test_a_light_write_commits_on_the_loop_without_syncing_or_checkpointing(tmp_path: Path) -> None:
    direct = _setup(tmp_path / "db")
    release = threading.Event()
    try:
        seen: list[tuple[int, int]] = []
        # With the writer thread held, a light write still completes: its COMMIT is not
        # the thread's. A durable one waits for the thread.
        direct._writer.submit(release.wait)
        await asyncio.wait_for(direct.write(_settings_seen(seen, "a", 1), durable=False), 5)
        durable = asyncio.create_task(direct.write(_settings_seen(seen, "b", 2)))
        await asyncio.sleep(0.1)
        assert not durable.done(), "a durable write commits on the writer thread"
        release.set()
        await durable
        assert seen == [(NORMAL, 0), (FULL, 1000)]
        assert await direct.read(_values) == [("a", 1), ("b", 2)]
    finally:
        release.set()
        direct.close()


async def test_a_run_of_light_writes_is_ended_by_a_durable_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(state_sqlite, "LIGHT_COMMITS_PER_SYNC", 3)
    direct = _setup(tmp_path / "db")
    try:
        seen: list[tuple[int, int]] = []
        for n in range(5):
            await direct.write(_settings_seen(seen, f"k{n}", n), durable=False)
        # The fourth is made durable: it syncs the log and may checkpoint it.
        assert [level for level, _ in seen] == [NORMAL, NORMAL, NORMAL, FULL, NORMAL]
    finally:
        direct.close()
