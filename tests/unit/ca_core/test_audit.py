"""The hash-chained audit log: tampering with stored rows is found and the row named,
on SQLite and PostgreSQL, through `store.audit.verify()` and `ceg audit verify`."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from ca_core.audit import GENESIS_HASH, AuditEntry, ChainProblem
from ca_core.keys.file import FileKeyStore
from ca_core.model import IssuanceRequest, Requester
from ca_core.services import Services, open_services
from ca_core.store import tables
from tests.conftest import BASE_URL
from tests.support.hierarchy import make_hierarchy
from tests.support.pki import make_csr

T = tables.audit_log


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def logged(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Services]:
    """Services whose audit log holds 12 entries: 2 CA creations and 10 issuances."""
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_server").create_database()
    else:
        url = f"sqlite+aiosqlite:///{tmp_path}/ceg.db"
    s = await open_services(url, FileKeyStore(tmp_path / "keys", b"pw"), BASE_URL)
    await make_hierarchy(s)
    for i in range(10):
        await s.issuance.issue(
            IssuanceRequest(
                ca="issuing",
                profile="est-digital-signature",
                requester=Requester("est", f"d{i}"),
                csr=make_csr(),
            )
        )
    assert len(await s.store.audit.entries()) == 12
    assert await s.store.audit.verify() == []
    yield s
    await s.close()


async def execute(s: Services, *statements: object) -> None:
    async with s.store.db.transaction() as uow:
        for statement in statements:
            await uow.conn.execute(statement)  # type: ignore[call-overload]


def named(problems: list[ChainProblem]) -> list[int]:
    return sorted({p.seq for p in problems})


async def test_edited_row_is_named(logged: Services) -> None:
    await execute(logged, update(T).where(T.c.seq == 5).values(actor="est:someone-else"))
    problems = await logged.store.audit.verify()
    assert named(problems) == [5]
    assert "edited" in str(problems[0])


async def test_edited_detail_is_named(logged: Services) -> None:
    row = (await logged.store.audit.entries(after_seq=6, limit=1))[0]
    detail = dict(row.detail, subject="CN=forged")
    await execute(logged, update(T).where(T.c.seq == 7).values(detail=detail))
    assert named(await logged.store.audit.verify()) == [7]


async def test_edited_and_rehashed_row_is_named_by_its_successor(logged: Services) -> None:
    from ca_core.audit import entry_hash

    [row] = await logged.store.audit.entries(after_seq=3, limit=1)
    forged = entry_hash(
        row.prev_hash, row.seq, row.at, row.action, "ca:mallory", row.ca_id, row.serial, row.detail
    )
    await execute(logged, update(T).where(T.c.seq == 4).values(actor="ca:mallory", hash=forged))
    problems = await logged.store.audit.verify()
    assert named(problems) == [5]
    assert "does not follow entry 4" in str(problems[0])


async def test_deleted_row_is_named(logged: Services) -> None:
    await execute(logged, delete(T).where(T.c.seq == 6))
    problems = await logged.store.audit.verify()
    assert 6 in named(problems)
    assert str(problems[0]).startswith("audit entry 6: missing")


async def test_reordered_rows_are_named(logged: Services) -> None:
    # Swap the sequence numbers of entries 8 and 9 (through a free number).
    await execute(
        logged,
        update(T).where(T.c.seq == 8).values(seq=1000),
        update(T).where(T.c.seq == 9).values(seq=8),
        update(T).where(T.c.seq == 1000).values(seq=9),
    )
    assert named(await logged.store.audit.verify()) == [8, 9, 10]


async def test_deleted_and_renumbered_rows_are_named(logged: Services) -> None:
    # Remove entry 3 and close the gap: every later row renumbered, and the head moved back.
    await execute(logged, delete(T).where(T.c.seq == 3))
    for seq in range(4, 13):
        await execute(logged, update(T).where(T.c.seq == seq).values(seq=seq - 1))
    async with logged.store.db.read() as conn:
        last_hash = (await conn.execute(select(T.c.hash).where(T.c.seq == 11))).scalar_one()
    await execute(logged, update(tables.audit_head).values(seq=11, hash=last_hash))
    problems = await logged.store.audit.verify()
    assert named(problems)[0] == 3
    assert len(named(problems)) == 9  # every renumbered row fails its own hash


async def test_truncated_tail_is_named(logged: Services) -> None:
    await execute(logged, delete(T).where(T.c.seq > 10))
    problems = await logged.store.audit.verify()
    assert named(problems) == [11]
    assert "truncated" in str(problems[0])


async def test_an_anchor_catches_a_cut_end_with_its_head_moved_back(logged: Services) -> None:
    """The chain alone cannot see the last entries cut off when the head row is moved
    back with them; an anchor taken earlier (`ceg audit head`) can."""
    seq, digest = await logged.store.audit.head()
    assert seq == 12
    async with logged.store.db.read() as conn:
        hash_10 = (await conn.execute(select(T.c.hash).where(T.c.seq == 10))).scalar_one()
    await execute(logged, delete(T).where(T.c.seq > 10))
    await execute(logged, update(tables.audit_head).values(seq=10, hash=hash_10))
    assert await logged.store.audit.verify() == [], "undetectable without an anchor"
    problems = await logged.store.audit.verify({seq: digest})
    assert named(problems) == [12] and "gone" in str(problems[0])


async def test_an_anchor_catches_a_rewritten_and_rehashed_log(logged: Services) -> None:
    from ca_core.audit import chain

    anchor = dict([await logged.store.audit.head()])
    entries = await logged.store.audit.entries(limit=100)
    forged = chain(
        [
            AuditEntry(e.at, e.action, "ca:mallory" if e.seq == 5 else e.actor, e.ca_id, e.serial, e.detail)
            for e in entries
        ],
        0,
        GENESIS_HASH,
    )
    for e in forged:
        await execute(
            logged,
            update(T).where(T.c.seq == e.seq).values(actor=e.actor, prev_hash=e.prev_hash, hash=e.hash),
        )
    await execute(logged, update(tables.audit_head).values(seq=forged[-1].seq, hash=forged[-1].hash))
    assert await logged.store.audit.verify() == [], "a consistent forgery, seen from inside"
    problems = await logged.store.audit.verify(anchor)
    assert named(problems) == [12] and "anchor" in str(problems[0])


async def test_forged_row_appended_is_named(logged: Services) -> None:
    [last] = await logged.store.audit.entries(after_seq=11, limit=1)
    await execute(
        logged,
        T.insert().values(
            seq=13,
            at=last.at,
            action="certificate.revoked",
            actor="ca:mallory",
            ca_id="issuing",
            serial=last.serial,
            detail={},
            prev_hash=last.hash,
            hash="0" * 64,
        ),
    )
    assert named(await logged.store.audit.verify()) == [13]  # its hash, and past the head


async def test_a_new_entry_continues_an_intact_chain_after_many_writers(logged: Services) -> None:
    import asyncio

    async def one(i: int) -> None:
        await logged.issuance.issue(
            IssuanceRequest(
                ca="issuing",
                profile="est-digital-signature",
                requester=Requester("est", f"c{i}"),
                csr=make_csr(),
            )
        )

    await asyncio.gather(*(one(i) for i in range(40)))
    entries = await logged.store.audit.entries(limit=1000)
    assert [e.seq for e in entries] == list(range(1, 53))
    assert await logged.store.audit.verify() == []


def _ceg(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CEG_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_ceg_audit_verify_exits_non_zero_and_names_the_row(tmp_path: Path) -> None:
    data = tmp_path / "ceg-data"
    assert _ceg("init", data_dir=data).returncode == 0
    assert _ceg("ca", "create-root", "root", "--subject", "CN=CLI Root", data_dir=data).returncode == 0
    created = _ceg(
        "ca", "create-issuing", "issuing", "--parent", "root", "--subject", "CN=CLI Issuing", data_dir=data
    )
    assert created.returncode == 0, created.stderr
    intact = _ceg("audit", "verify", data_dir=data)
    assert intact.returncode == 0 and "intact" in intact.stdout
    with sqlite3.connect(data / "ceg.db") as db:
        db.execute("UPDATE audit_log SET actor = 'cli:mallory' WHERE seq = 1")
    broken = _ceg("audit", "verify", "--json", data_dir=data)
    assert broken.returncode != 0
    assert '"seq": 1' in broken.stdout and "edited" in broken.stdout


def test_ceg_audit_head_and_verify_with_an_anchor(tmp_path: Path) -> None:
    data = tmp_path / "ceg-data"
    assert _ceg("init", data_dir=data).returncode == 0
    assert _ceg("ca", "create-root", "root", "--subject", "CN=CLI Root", data_dir=data).returncode == 0
    assert _ceg("ca", "create-root", "other", "--subject", "CN=Other Root", data_dir=data).returncode == 0
    head = _ceg("audit", "head", data_dir=data)
    assert head.returncode == 0, head.stderr
    anchor = head.stdout.strip()
    assert anchor.startswith("2:") and len(anchor) == 66
    assert _ceg("audit", "verify", "--anchor", anchor, data_dir=data).returncode == 0
    with sqlite3.connect(data / "ceg.db") as db:  # cut the last entry, move the head back
        (hash_1,) = db.execute("SELECT hash FROM audit_log WHERE seq = 1").fetchone()
        db.execute("DELETE FROM audit_log WHERE seq = 2")
        db.execute("UPDATE audit_head SET seq = 1, hash = ?", (hash_1,))
    assert _ceg("audit", "verify", data_dir=data).returncode == 0
    cut = _ceg("audit", "verify", "--anchor", anchor, data_dir=data)
    assert cut.returncode != 0 and "audit entry 2" in cut.stdout
    bad = _ceg("audit", "verify", "--anchor", "2:nothex", data_dir=data)
    assert bad.returncode != 0 and "SEQ:HASH" in bad.stderr
