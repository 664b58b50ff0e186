"""Services on a manual clock, and a second Services (another "worker") on the same database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from ca_core.clock import ManualClock
from ca_core.keys.file import FileKeyStore
from ca_core.model import IssuanceRequest, IssuedCertificate, Requester
from ca_core.services import Services, open_services
from tests.conftest import BASE_URL
from tests.support.hierarchy import make_hierarchy
from tests.support.pki import make_csr

PASSPHRASE = b"test-passphrase"
OpenWorker = Callable[[], Awaitable[Services]]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def status_services(sqlite_url: str, tmp_path: Path, clock: ManualClock) -> AsyncIterator[Services]:
    svc = await open_services(sqlite_url, FileKeyStore(tmp_path / "keys", PASSPHRASE), BASE_URL, clock=clock)
    await make_hierarchy(svc)
    yield svc
    await svc.close()


@pytest.fixture
async def open_worker(sqlite_url: str, tmp_path: Path, clock: ManualClock) -> AsyncIterator[OpenWorker]:
    """Opens more Services on the same database and keys (as another worker process would)."""
    opened: list[Services] = []

    async def open_one() -> Services:
        svc = await open_services(
            sqlite_url,
            FileKeyStore(tmp_path / "keys", PASSPHRASE),
            BASE_URL,
            clock=clock,
            run_migrations=False,
        )
        opened.append(svc)
        return svc

    yield open_one
    for svc in opened:
        await svc.close()


async def issue(
    services: Services, ca: str = "issuing", profile: str = "est-digital-signature"
) -> IssuedCertificate:
    return await services.issuance.issue(
        IssuanceRequest(ca=ca, profile=profile, requester=Requester("test", "t"), csr=make_csr())
    )
