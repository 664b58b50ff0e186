"""Shared fixtures: a clock, throwaway PostgreSQL and SoftHSM2, and CA-core services.

`services` runs on SQLite with file keys. `matrix_services` runs a test four times:
{SQLite, PostgreSQL} x {file keys, PKCS#11 on SoftHSM2}, which is how the CA core's
suite shows it behaves the same on every store and key backend.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ca_core.keys import KeyStore
from ca_core.keys.file import FileKeyStore
from ca_core.services import Services, open_services
from tests.support.hierarchy import make_hierarchy
from tests.support.postgres import PostgresServer, pg_bin
from tests.support.softhsm import PIN, SoftHsmToken, softhsm_module
from tests.support.tools import require_tool

BASE_URL = "http://127.0.0.1:8080"
pytest_plugins = ["tests.support.gateway"]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    require_tool("initdb", pg_bin("initdb"))
    server = PostgresServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def softhsm_token() -> SoftHsmToken:
    require_tool("softhsm2-util")
    require_tool("libsofthsm2.so", softhsm_module())
    token = SoftHsmToken()
    token.init()
    return token


def pkcs11_keystore(token: SoftHsmToken) -> KeyStore:
    from ca_core.keys.pkcs11 import Pkcs11KeyStore, Pkcs11Token

    module = softhsm_module()
    assert module is not None
    return Pkcs11KeyStore(Pkcs11Token(module, token.label, PIN))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/ceg.db"


@pytest.fixture
async def services(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Services]:
    svc = await open_services(sqlite_url, FileKeyStore(tmp_path / "keys", b"test-passphrase"), BASE_URL)
    yield svc
    await svc.close()


@pytest.fixture(
    params=[
        pytest.param(("sqlite", "file"), id="sqlite-file"),
        pytest.param(("sqlite", "pkcs11"), id="sqlite-pkcs11", marks=pytest.mark.pkcs11),
        pytest.param(("postgres", "file"), id="postgres-file", marks=pytest.mark.postgres),
        pytest.param(
            ("postgres", "pkcs11"), id="postgres-pkcs11", marks=[pytest.mark.postgres, pytest.mark.pkcs11]
        ),
    ]
)
async def matrix_services(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Services]:
    db, backend = request.param
    if db == "postgres":
        url = request.getfixturevalue("postgres_server").create_database()
    else:
        url = f"sqlite+aiosqlite:///{tmp_path}/ceg.db"
    if backend == "pkcs11":
        keys = pkcs11_keystore(request.getfixturevalue("softhsm_token"))
    else:
        keys = FileKeyStore(tmp_path / "keys", b"test-passphrase")
    svc = await open_services(url, keys, BASE_URL)
    yield svc
    await svc.close()


@pytest.fixture
async def hierarchy(services: Services) -> tuple[str, str]:
    return await make_hierarchy(services)
