"""The CA Gateway certificate-events feed read page by page over HTTP, following the opaque
nextPageIndex, while two Services in this process and a third OS process write events:
every event arrives once, in order, none lost (issue 4; seq order is commit order, see
ca_core/status/events.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ca_core.audit import Action
from ca_core.keys.file import FileKeyStore
from ca_core.services import open_services
from tests.support.event_writers import write_events, write_events_in_another_process
from tests.unit.gateway.api.conftest import BASE_URL, Api, start_api

PASSPHRASE = b"test-passphrase"
FEED = "/cagw/v1/certificate-authorities/issuing/certificate-events"


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_server").create_database())
    return f"sqlite+aiosqlite:///{tmp_path}/ceg.db"


@pytest.fixture
async def feed_api(database_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    services = await open_services(database_url, FileKeyStore(tmp_path / "keys", PASSPHRASE), BASE_URL)
    api, client = await start_api(services, tmp_path)
    yield api
    await client.close()
    await services.close()


async def test_paging_while_several_workers_write_loses_and_repeats_nothing(
    feed_api: Api, database_url: str, tmp_path: Path
) -> None:
    api = feed_api
    other = await open_services(
        database_url, FileKeyStore(tmp_path / "keys", PASSPHRASE), BASE_URL, run_migrations=False
    )
    done = asyncio.Event()

    async def writers() -> None:
        try:
            await asyncio.gather(
                write_events(api.services, 12),
                write_events(other, 12),
                write_events_in_another_process(database_url, tmp_path / "keys", PASSPHRASE, 10),
            )
        finally:
            done.set()

    writing = asyncio.create_task(writers())
    seen: list[tuple[int, str, str]] = []
    pages_with_news_while_writing = 0
    finished = done.is_set()  # always read before the page is asked for
    status, page = await api.call("GET", f"{FEED}?preferredPageSize=3", "auditor")
    try:
        while True:
            assert status == 200, page
            assert len(page["events"]) <= 3 and page["metadata"]["currentLimit"] == 3
            seen += [(e["event"], e["action"], e["serialNumber"]) for e in page["events"]]
            pages_with_news_while_writing += bool(page["events"]) and not finished
            if finished and not page["morePages"]:
                break
            if not page["morePages"]:
                await asyncio.sleep(0.01)  # caught up with the writers: ask again shortly
            # the index alone carries the cursor and the page size (Keyfactor sends only it)
            finished = done.is_set()
            status, page = await api.call("GET", f"{FEED}?nextPageIndex={page['nextPageIndex']}", "auditor")
    finally:
        await writing
        await other.close()

    assert pages_with_news_while_writing > 3  # the feed really was read while events arrived
    sequence = [s for s, _, _ in seen]
    assert len(sequence) == len(set(sequence)), "an event was served twice"
    assert sequence == sorted(sequence), "events out of order"
    logged = await api.services.store.audit.entries(
        after_seq=0, limit=10_000, ca="issuing", actions=Action.CERTIFICATE_EVENTS
    )
    assert sequence == [e.seq for e in logged], "an event was lost"
    actions = [a for _, a, _ in seen]
    assert actions.count("issued") == 12 + 12 + 10
    assert actions.count("held") == actions.count("unheld") == 4 + 4
    assert actions.count("revoked") == 4 + 4
