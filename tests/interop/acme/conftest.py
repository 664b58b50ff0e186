"""Fixtures for the ACME interop tests: pebble-challtestsrv as the DNS server every name
resolves through (all names answer 127.0.0.1; TXT records set over its management API),
and the live gateway with an ACME binding whose validation ports are free loopback ports
where each test's client listens."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from ca_core.services import Services
from tests.interop.acme.support import AcmeSetup, Challtestsrv
from tests.support.gateway import LiveGateway, free_port, start_gateway
from tests.support.tools import require_tool


@pytest.fixture(scope="session")
def challtestsrv() -> Iterator[Challtestsrv]:
    require_tool("pebble-challtestsrv")
    server = Challtestsrv(dns_port=free_port(), management_port=free_port())
    server.start()
    yield server
    server.stop()


async def make_acme_setup(
    live: LiveGateway, dns: Challtestsrv, ca: str | None = None, **settings: Any
) -> AcmeSetup:
    ca = ca or live.issuing
    http01, alpn = free_port(), free_port()
    merged = {
        "http01_port": http01,
        "tls_alpn01_port": alpn,
        "dns_resolver": f"127.0.0.1:{dns.dns_port}",
        "validation_attempts": 1,
        "validation_timeout_seconds": 5,
        **settings,
    }
    await live.bindings.put("acme", ca, settings=merged)
    return AcmeSetup(
        live=live,
        dns=dns,
        directory=f"{live.https}/acme/{ca}/directory",
        http01_port=http01,
        tls_alpn01_port=alpn,
    )


@pytest.fixture
async def acme(live_gateway: LiveGateway, challtestsrv: Challtestsrv) -> AcmeSetup:
    return await make_acme_setup(live_gateway, challtestsrv)


@pytest.fixture
async def acme_eab(live_gateway: LiveGateway, challtestsrv: Challtestsrv) -> AcmeSetup:
    return await make_acme_setup(live_gateway, challtestsrv, eab_required=True)


@pytest.fixture
async def clocked_gateway(
    tmp_path: Path, challtestsrv: Challtestsrv, sqlite_url: str
) -> AsyncIterator[tuple[AcmeSetup, Any]]:
    """The gateway on a ManualClock, for expiry tests."""
    from ca_core.clock import ManualClock
    from ca_core.keys.file import FileKeyStore
    from ca_core.services import open_services
    from tests.conftest import BASE_URL

    clock = ManualClock(dt.datetime.now(dt.UTC).replace(microsecond=0))
    services: Services = await open_services(
        sqlite_url, FileKeyStore(tmp_path / "keys", b"test-passphrase"), BASE_URL, clock=clock
    )
    # Nonces carry the clock's second, and the spent-token store refuses those minted
    # before the second it opened in (its floor): a clock set just before a second
    # boundary the store opened after would have every nonce refused.
    floor = services.store.spent.floor
    if floor is not None and clock.now() < floor:
        clock.advance(floor - clock.now())
    live, runner = await start_gateway(services, tmp_path)
    setup = await make_acme_setup(live, challtestsrv)
    yield setup, clock
    await runner.cleanup()
    await services.close()
