"""Expiry events, and the certificate-events feed paged while several writers write."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ca_core.audit import Action
from ca_core.clock import ManualClock
from ca_core.keys.file import FileKeyStore
from ca_core.model import CertStatus, IssuanceRequest, Requester
from ca_core.services import Services, open_services
from ca_core.status.revocation import StatusChange
from tests.conftest import BASE_URL
from tests.support.event_writers import write_events, write_events_in_another_process
from tests.support.hierarchy import make_hierarchy
from tests.support.pki import make_csr
from tests.unit.ca_core.status.conftest import PASSPHRASE, issue


async def test_certificates_past_not_after_expire_with_an_event(
    status_services: Services, clock: ManualClock
) -> None:
    s = status_services

    async def short_lived() -> str:
        request = IssuanceRequest(
            ca="issuing",
            profile="est-digital-signature",
            requester=Requester("t"),
            csr=make_csr(),
            validity=dt.timedelta(days=1),
        )
        return (await s.issuance.issue(request)).serial_hex

    expiring, held, lasting = await short_lived(), await short_lived(), (await issue(s)).serial_hex
    await s.revocation.hold(StatusChange(held, "o"))
    assert await s.expiry.run() == 0
    clock.advance(dt.timedelta(days=2))
    assert await s.expiry.run() == 1
    assert await s.expiry.run() == 0
    statuses = {
        serial: (await s.store.certificates.get(serial)).status for serial in (expiring, held, lasting)
    }  # type: ignore[union-attr]
    assert statuses == {expiring: CertStatus.EXPIRED, held: CertStatus.HELD, lasting: CertStatus.NORMAL}
    page = await s.events.page("issuing", limit=100)
    expired = [e for e in page.events if e.event == "expired"]
    assert [e.serial for e in expired] == [expiring]
    assert await s.store.audit.verify() == []


@pytest.fixture(params=[pytest.param("sqlite"), pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, sqlite_url: str) -> AsyncIterator[str]:
    if request.param == "postgres":
        yield request.getfixturevalue("postgres_server").create_database()
    else:
        yield sqlite_url


async def test_event_feed_pages_without_loss_or_repetition_while_workers_write(
    database_url: str, tmp_path: Path
) -> None:
    keys = tmp_path / "keys"
    a = await open_services(database_url, FileKeyStore(keys, PASSPHRASE), BASE_URL)
    b = await open_services(database_url, FileKeyStore(keys, PASSPHRASE), BASE_URL, run_migrations=False)
    try:
        await make_hierarchy(a)
        done = asyncio.Event()

        async def writers() -> None:
            try:
                await asyncio.gather(
                    write_events(a, 12),
                    write_events(b, 12),
                    write_events_in_another_process(database_url, keys, PASSPHRASE, 10),
                )
            finally:
                done.set()

        seen: list[int] = []
        cursor, read_while_writing = 0, 0
        writing = asyncio.create_task(writers())
        while True:
            finished = done.is_set()
            page = await a.events.page("issuing", after_seq=cursor, limit=3, with_certificates=False)
            seen.extend(e.seq for e in page.events)
            read_while_writing += bool(page.events) and not finished
            cursor = page.last_seq
            if finished and not page.more:
                break
            await asyncio.sleep(0.005)
        await writing
        assert read_while_writing > 3  # the pages really were read while events arrived
        assert len(seen) == len(set(seen)) and seen == sorted(seen)
        everything = await a.store.audit.entries(
            after_seq=0, limit=10_000, ca="issuing", actions=Action.CERTIFICATE_EVENTS
        )
        assert seen == [e.seq for e in everything]
        issued = sum(1 for e in everything if e.action == Action.CERT_ISSUED)
        assert issued == 12 + 12 + 10
    finally:
        await a.close()
        await b.close()
