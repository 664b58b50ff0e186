"""A real gateway on loopback for tests: the full app (every installed front-end, or the
ones given) on free HTTP and HTTPS ports, in the test's event loop, so real clients run
as subprocesses against it (use asyncio.create_subprocess_exec, never a blocking call,
or the server cannot answer)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ca_core.services import Services
from gateway.app import create_app
from gateway.bindings import BindingRegistry
from gateway.bootstrap import issue_listener_certificate
from gateway.config import Config, ServerConfig
from gateway.frontends import discover
from gateway.keys import BINDINGS
from gateway.listeners import TrustAnchors, server_ssl_context
from protocols._shared.web import Frontend
from tests.support.hierarchy import make_hierarchy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveGateway:
    services: Services
    app: web.Application
    config: Config
    http: str  # base URL, e.g. http://127.0.0.1:41234
    https: str
    root_pem: Path  # trust anchor for the HTTPS listener and every issued chain
    root: str  # CA ids
    issuing: str
    anchors: TrustAnchors | None = None  # the HTTPS listener's client trust store (refresh() it)

    @property
    def bindings(self) -> BindingRegistry:
        return self.app[BINDINGS]


async def start_gateway(
    services: Services,
    tmp_path: Path,
    frontends: Mapping[str, Frontend] | None = None,
    hierarchy: tuple[str, str] | None = None,
) -> tuple[LiveGateway, web.AppRunner]:
    root, issuing = hierarchy or await make_hierarchy(services)
    http_port, https_port = free_port(), free_port()
    config = Config(
        data_dir=tmp_path,
        server=ServerConfig(
            http_port=http_port,
            https_port=https_port,
            tls_cert=str(tmp_path / "tls" / "server.pem"),
            tls_key=str(tmp_path / "tls" / "server.key"),
        ),
    )
    from gateway.bootstrap import host_names

    await issue_listener_certificate(config, services, issuing, host_names("127.0.0.1"))
    root_ca = await services.authority.get(root)
    root_pem = tmp_path / "root-ca.pem"
    root_pem.write_bytes(x509.load_der_x509_certificate(root_ca.der).public_bytes(serialization.Encoding.PEM))
    app = create_app(
        config, services=services, frontends=dict(frontends) if frontends is not None else discover()
    )
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    context = server_ssl_context(config)
    assert context is not None
    anchors = TrustAnchors(context)
    await anchors.refresh(services)
    await web.TCPSite(runner, "127.0.0.1", http_port).start()
    await web.TCPSite(runner, "127.0.0.1", https_port, ssl_context=context).start()
    live = LiveGateway(
        services,
        app,
        config,
        f"http://127.0.0.1:{http_port}",
        f"https://127.0.0.1:{https_port}",
        root_pem,
        root,
        issuing,
        anchors,
    )
    return live, runner


@pytest.fixture
async def live_gateway(services: Services, tmp_path: Path) -> AsyncIterator[LiveGateway]:
    """The gateway with every installed front-end, a root and an issuing CA (all services)."""
    live, runner = await start_gateway(services, tmp_path)
    yield live
    await runner.cleanup()
