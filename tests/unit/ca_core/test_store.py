"""The store on SQLite and PostgreSQL: certificate search with paging, and the Alembic
migration creating exactly the schema of tables.py (alembic's autogenerate comparison)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from ca_core.clock import ManualClock
from ca_core.keys.file import FileKeyStore
from ca_core.model import CertStatus, IssuanceRequest, Requester, RevocationReason
from ca_core.services import Services, open_services
from ca_core.status.revocation import StatusChange
from ca_core.store import CertificateQuery, migrate
from ca_core.store.migrate import alembic_config
from ca_core.store.tables import metadata
from ca_core.x509.names import parse_dn, parse_san
from tests.conftest import BASE_URL
from tests.support.hierarchy import make_hierarchy
from tests.support.pki import make_csr

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_server").create_database())
    return f"sqlite+aiosqlite:///{tmp_path}/ceg.db"


DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=DATABASES)
async def populated(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Services, dict[str, str]]]:
    """Two issuing CAs and 14 certificates of known profiles, names, lifetimes and states."""
    clock = ManualClock(NOW)
    s = await open_services(
        database_url(request, tmp_path), FileKeyStore(tmp_path / "keys", b"pw"), BASE_URL, clock=clock
    )
    await make_hierarchy(s)
    await s.authority.create_issuing("second", "root", "CN=Second", services=["est", "scep"])
    serials: dict[str, str] = {}

    async def issue(name: str, ca: str, profile: str, days: int, sans: tuple[str, ...], cn: str) -> None:
        clock.advance(dt.timedelta(seconds=1))  # distinct issued_at, so the order is known
        issued = await s.issuance.issue(
            IssuanceRequest(
                ca=ca,
                profile=profile,
                requester=Requester("test"),
                csr=make_csr(),
                subject=parse_dn(cn),
                subject_alt_names=tuple(parse_san(x) for x in sans),
                validity=dt.timedelta(days=days),
            )
        )
        serials[name] = issued.serial_hex

    for i in range(8):
        await issue(
            f"web{i}",
            "issuing",
            "privatessl-tls-server",
            10 + 10 * i,
            (f"dns:web{i}.shop.example",),
            f"CN=web{i}",
        )
    await issue(
        "mail",
        "issuing",
        "smime-non-repudiation",
        200,
        ("email:alice@corp.example",),
        "CN=Alice Example,O=Corp",
    )
    await issue("pct", "issuing", "est-digital-signature", 300, ("dns:x.example",), "CN=100% sure_thing")
    await issue("other", "issuing", "est-digital-signature", 300, ("dns:y.example",), "CN=1000 surely")
    for i in range(3):
        await issue(
            f"est{i}", "second", "est-digital-signature", 400, (f"dns:dev{i}.plant.example",), f"CN=dev{i}"
        )
    await s.revocation.revoke(StatusChange(serials["web1"], "officer", RevocationReason.KEY_COMPROMISE))
    await s.revocation.hold(StatusChange(serials["web2"], "officer"))
    yield s, serials
    await s.close()


async def search(s: Services, now: dt.datetime | None = NOW, **kw: Any) -> list[str]:
    page = await s.store.certificates.search(CertificateQuery(**kw), now=now)
    return [r.serial for r in page.items]


async def test_search_by_serial(populated: tuple[Services, dict[str, str]]) -> None:
    s, serials = populated
    serial = serials["mail"]
    assert await search(s, serial=serial) == [serial]
    with_colons = ":".join(serial[i : i + 2] for i in range(0, len(serial), 2)).upper()
    assert await search(s, serial=with_colons) == [serial]
    assert await search(s, serial="abcdef") == []
    assert (await s.store.certificates.get(serial.upper())) is not None


async def test_search_by_ca_profile_and_status(populated: tuple[Services, dict[str, str]]) -> None:
    s, serials = populated
    assert set(await search(s, ca="second")) == {serials[f"est{i}"] for i in range(3)}
    assert len(await search(s, ca="issuing")) == 11
    assert set(await search(s, profile="est-digital-signature", ca="issuing")) == {
        serials["pct"],
        serials["other"],
    }
    assert await search(s, status=CertStatus.REVOKED) == [serials["web1"]]
    assert await search(s, status=CertStatus.HELD) == [serials["web2"]]
    assert len(await search(s, status=CertStatus.NORMAL, ca="issuing")) == 9
    # Expiry is derived from the clock: 40 days on, web0..web3 (10..40 days) have expired,
    # except the revoked and held ones, which keep their status.
    later = NOW + dt.timedelta(days=40, minutes=5)
    assert set(await search(s, now=later, status=CertStatus.EXPIRED)) == {serials["web0"], serials["web3"]}
    assert serials["web0"] not in await search(s, now=later, status=CertStatus.NORMAL)


async def test_search_by_subject_and_san_text(populated: tuple[Services, dict[str, str]]) -> None:
    s, serials = populated
    assert await search(s, text="alice example") == [serials["mail"]]  # subject, any case
    assert await search(s, text="@CORP.example") == [serials["mail"]]  # SAN, any case
    assert set(await search(s, text="plant.example")) == {serials[f"est{i}"] for i in range(3)}
    # LIKE wildcards in the text are literal characters.
    assert await search(s, text="100%") == [serials["pct"]]
    assert await search(s, text="sure_") == [serials["pct"]]
    assert await search(s, text="%") == [serials["pct"]]


async def test_search_by_expiry_window(populated: tuple[Services, dict[str, str]]) -> None:
    s, serials = populated
    window = await search(
        s, expires_after=NOW + dt.timedelta(days=25), expires_before=NOW + dt.timedelta(days=55)
    )
    assert set(window) == {serials["web2"], serials["web3"], serials["web4"]}
    assert set(
        await search(
            s, expires_after=NOW + dt.timedelta(days=350), expires_before=NOW + dt.timedelta(days=500)
        )
    ) == {serials[f"est{i}"] for i in range(3)}


async def test_paging_is_stable_and_complete(populated: tuple[Services, dict[str, str]]) -> None:
    s, serials = populated
    seen: list[str] = []
    offset = 0
    while True:
        page = await s.store.certificates.search(CertificateQuery(limit=4, offset=offset), now=NOW)
        assert page.total == 16  # 14 issued, and the two issuing CAs' in the root's register
        seen += [r.serial for r in page.items]
        if not page.has_more:
            break
        offset += 4
    assert len(seen) == len(set(seen)) == 16
    # Newest first: the last certificate issued heads the first page.
    assert seen[0] == serials["est2"]
    combined = await s.store.certificates.search(
        CertificateQuery(ca="issuing", profile="privatessl-tls-server", limit=3, offset=3), now=NOW
    )
    assert combined.total == 8 and len(combined.items) == 3 and combined.has_more
    assert [r.serial for r in combined.items] == [serials[f"web{i}"] for i in (4, 3, 2)]


# --- migrations ------------------------------------------------------------------------------


@pytest.fixture(params=DATABASES)
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return database_url(request, tmp_path)


async def _diff(url: str) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:

            def compare(sync_conn: Any) -> list[Any]:
                context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
                return list(compare_metadata(context, metadata))

            return await conn.run_sync(compare)
    finally:
        await engine.dispose()


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def test_migration_creates_exactly_tables_py(fresh_url: str) -> None:
    await migrate(fresh_url)
    assert await _diff(fresh_url) == []
    assert await _tables(fresh_url) == set(metadata.tables) | {"alembic_version"}


async def test_migration_downgrades_to_nothing_and_back(fresh_url: str) -> None:
    import asyncio

    from alembic import command

    await migrate(fresh_url)
    await asyncio.to_thread(command.downgrade, alembic_config(fresh_url), "base")
    assert await _tables(fresh_url) == {"alembic_version"}
    await migrate(fresh_url)
    assert await _diff(fresh_url) == []


async def test_upgrade_to_request_keys_keeps_stored_certificates(fresh_url: str) -> None:
    """A database of the previous release (0002) with certificates in it upgrades in
    place: the rows stay, their request key is empty, and keys are unique from then on."""
    from sqlalchemy import insert, select, update
    from sqlalchemy.exc import IntegrityError

    from ca_core.store import tables

    await migrate(fresh_url, "0002_status")
    now = dt.datetime(2026, 11, 28, tzinfo=dt.UTC)
    row = {
        "ca_id": "issuing",
        "profile": "privatessl-tls-server",
        "subject": "CN=old",
        "sans": "",
        "status": "normal",
        "not_before": now,
        "not_after": now,
        "issued_at": now,
        "status_changed_at": now,
        "der": b"0",
        "requester": {},
    }
    engine = create_async_engine(fresh_url)
    try:
        async with engine.begin() as conn:
            for serial in ("01", "02"):
                values = {"serial": serial, **row}
                await conn.execute(insert(tables.certificates), [values])  # no request_key yet
    finally:
        await engine.dispose()
    await migrate(fresh_url)
    assert await _diff(fresh_url) == []
    engine = create_async_engine(fresh_url)
    try:
        async with engine.begin() as conn:
            rows = (
                await conn.execute(select(tables.certificates.c.serial, tables.certificates.c.request_key))
            ).all()
            assert sorted(rows) == [("01", None), ("02", None)]
            await conn.execute(
                update(tables.certificates)
                .where(tables.certificates.c.serial == "01")
                .values(request_key="k")
            )
        with pytest.raises(IntegrityError):
            async with engine.begin() as conn:
                await conn.execute(
                    update(tables.certificates)
                    .where(tables.certificates.c.serial == "02")
                    .values(request_key="k")
                )
    finally:
        await engine.dispose()
