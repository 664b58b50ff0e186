"""The real app (create_app) with both APIs over SQLite and PostgreSQL, driven through
aiohttp's test client with bearer tokens of each role."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ca_core.keys.file import FileKeyStore
from ca_core.services import Services, open_services
from gateway.app import create_app
from gateway.config import Config
from protocols._shared.web import Binding
from tests.support.hierarchy import make_hierarchy

BASE_URL = "http://127.0.0.1:8080"


class EchoFrontend:
    """A stand-in protocol front-end, so bindings can be managed without a real protocol."""

    name = "echo"
    prefixes = ("/echo/",)
    service = "privatessl"

    def application(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/{ca}/ping", self._ping)
        return app

    async def _ping(self, request: web.Request) -> web.Response:
        return web.Response(text="pong")

    def default_settings(self, ca: str) -> dict[str, Any]:
        return {"allowed_profiles": ["privatessl-tls-server"], "default_profile": "privatessl-tls-server"}

    def check_settings(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        unknown = set(settings) - {"approval"}
        if unknown:
            raise ValueError(f"unknown setting(s) {sorted(unknown)}")
        return dict(settings)

    def error_response(self, status: int, message: str) -> web.StreamResponse:
        return web.Response(status=status, text=message)

    async def demo_setup(self, services: Services, binding: Binding, base_url: str) -> dict[str, Any]:
        return {}


@dataclass
class Api:
    client: TestClient
    services: Services
    tokens: dict[str, str]  # role -> bearer token
    root: str
    issuing: str

    def auth(self, role: str = "admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    async def call(
        self, method: str, path: str, role: str | None = "admin", json: Any = None, **kw: Any
    ) -> tuple[int, Any]:
        headers = self.auth(role) if role else {}
        async with self.client.request(method, path, json=json, headers=headers, **kw) as response:
            body = (
                await response.json()
                if response.content_type == "application/json"
                else await response.text()
            )
            return response.status, body


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
async def api_services(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Services]:
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_server").create_database()
    else:
        url = f"sqlite+aiosqlite:///{tmp_path}/ceg.db"
    svc = await open_services(url, FileKeyStore(tmp_path / "keys", b"test-passphrase"), BASE_URL)
    yield svc
    await svc.close()


async def start_api(services: Services, tmp_path: Path) -> tuple[Api, TestClient]:
    root, issuing = await make_hierarchy(services)
    tokens = {
        role: (await services.credentials.create_token(f"test-{role}", role)).secret
        for role in ("admin", "officer", "auditor")
    }
    tokens["scoped"] = (
        await services.credentials.create_token("test-scoped", "officer", scope={"ca": "elsewhere"})
    ).secret
    app = create_app(Config(data_dir=tmp_path), services=services, frontends={"echo": EchoFrontend()})
    client = TestClient(TestServer(app))
    await client.start_server()
    return Api(client, services, tokens, root, issuing), client


@pytest.fixture
async def api(api_services: Services, tmp_path: Path) -> AsyncIterator[Api]:
    state, client = await start_api(api_services, tmp_path)
    yield state
    await client.close()


@pytest.fixture
async def sqlite_api(services: Services, tmp_path: Path) -> AsyncIterator[Api]:
    """SQLite only, for tests whose subject does not depend on the database."""
    state, client = await start_api(services, tmp_path)
    yield state
    await client.close()
