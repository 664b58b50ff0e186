"""The direct SQLite group commit (store/sqlite_inserts.py) writes what SQLAlchemy writes:
the same stored values and types, one audit chain, refusal of inactive CAs."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from ca_core.audit import AuditEntry
from ca_core.errors import Conflict, InvalidState
from ca_core.model import CertificateRecord, CertStatus
from ca_core.store import Store, migrate
from ca_core.store import tables as t
from ca_core.store.certificates import record_row

NOW = dt.datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=dt.UTC)


def record(serial: str, ca: str = "issuing") -> CertificateRecord:
    return CertificateRecord(
        serial=serial,
        ca=ca,
        profile="privatessl-tls-server",
        subject="CN=é.example",
        sans=("dns:a.example", "ip:10.0.0.1"),
        status=CertStatus.NORMAL,
        not_before=NOW,
        not_after=NOW + dt.timedelta(days=90),
        der=b"\x30\x03\x02\x01\x00",
        issued_at=NOW,
        requester={"protocol": "acme", "principal": "p", "remote_addr": None},
        renewal_of=None,
    )


async def open_store(path: Path) -> Store:
    url = f"sqlite+aiosqlite:///{path}"
    await migrate(url)
    return Store.open(url)


async def add_ca(store: Store, ca: str, state: str) -> None:
    async with store.db.transaction() as tx:
        await tx.conn.execute(
            t.cas.insert(),
            [
                {
                    "id": ca,
                    "kind": "issuing",
                    "state": state,
                    "subject": f"CN={ca}",
                    "services": [],
                    "settings": {},
                    "created_at": NOW,
                    "updated_at": NOW,
                }
            ],
        )


def stored(path: Path, table: str, order: str) -> list[tuple[Any, ...]]:
    """Every value with its SQLite storage type, as the file holds it."""
    with sqlite3.connect(path) as conn:
        columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
        select = ", ".join(f"{c}, typeof({c})" for c in columns)
        return list(conn.execute(f"SELECT {select} FROM {table} ORDER BY {order}"))


async def write_both_ways(tmp_path: Path) -> tuple[Path, Path]:
    direct_file, plain_file = tmp_path / "direct.db", tmp_path / "plain.db"
    for path, use_direct in ((direct_file, True), (plain_file, False)):
        store = await open_store(path)
        try:
            assert store.db.direct is not None
            if not use_direct:
                store.db.direct.close()
                store.db._direct = None  # the SQLAlchemy path, as on PostgreSQL
            await add_ca(store, "issuing", "active")
            await asyncio.gather(
                *(
                    store.certificates.insert(
                        record(f"{n:x}"),
                        AuditEntry(
                            NOW, "certificate.issued", "acme:p", "issuing", f"{n:x}", {"n": n, "s": "é"}
                        ),
                        ca_must_be_active=True,
                    )
                    for n in range(1, 6)
                )
            )
            await store.db.insert_batched(
                [], [AuditEntry(NOW, "certificate.refused", "est:x", None, None, {})]
            )
        finally:
            await store.close()
    return direct_file, plain_file


async def test_direct_rows_are_the_rows_sqlalchemy_writes(tmp_path: Path) -> None:
    direct_file, plain_file = await write_both_ways(tmp_path)
    for table, order in (("certificates", "serial"), ("audit_log", "seq"), ("audit_head", "id")):
        assert stored(direct_file, table, order) == stored(plain_file, table, order), table
    assert len(stored(direct_file, "audit_log", "seq")) == 6


async def test_direct_rows_read_back_and_the_chain_verifies(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "ceg.db")
    try:
        await add_ca(store, "issuing", "active")
        for n in (1, 2):
            await store.certificates.insert(
                record(f"{n:x}"), AuditEntry(NOW, "certificate.issued", "acme:p", "issuing", f"{n:x}", {})
            )
        got = await store.certificates.get("1")
        assert got is not None and record_row(got) == record_row(record("1"))
        assert await store.audit.verify() == []
        assert [e.seq for e in await store.audit.entries()] == [1, 2]
    finally:
        await store.close()


async def test_an_inactive_ca_refuses_only_its_items(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "ceg.db")
    try:
        await add_ca(store, "issuing", "active")
        await add_ca(store, "gone", "deleted")
        results = await asyncio.gather(
            store.certificates.insert(
                record("a"),
                AuditEntry(NOW, "certificate.issued", "x", "issuing", "a"),
                ca_must_be_active=True,
            ),
            store.certificates.insert(
                record("b", ca="gone"),
                AuditEntry(NOW, "certificate.issued", "x", "gone", "b"),
                ca_must_be_active=True,
            ),
            return_exceptions=True,
        )
        assert results[0] is None and isinstance(results[1], InvalidState)
        assert await store.certificates.get("a") is not None
        assert await store.certificates.get("b") is None
        assert [e.serial for e in await store.audit.entries()] == ["a"]
    finally:
        await store.close()


@pytest.mark.parametrize("serial", ["dup"])
async def test_a_failing_item_fails_alone(tmp_path: Path, serial: str) -> None:
    store = await open_store(tmp_path / "ceg.db")
    try:
        await add_ca(store, "issuing", "active")
        await store.certificates.insert(
            record(serial), AuditEntry(NOW, "certificate.issued", "x", "issuing", serial)
        )
        results = await asyncio.gather(
            store.certificates.insert(
                record(serial), AuditEntry(NOW, "certificate.issued", "x", "issuing", serial)
            ),
            store.certificates.insert(
                record("other"), AuditEntry(NOW, "certificate.issued", "x", "issuing", "other")
            ),
            return_exceptions=True,
        )
        assert isinstance(results[0], Conflict) and results[1] is None
        assert [e.serial for e in await store.audit.entries()] == [serial, "other"]
        assert await store.audit.verify() == []
    finally:
        await store.close()
