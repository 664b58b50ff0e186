"""Two gateway workers on one database serve one ACME client whose requests alternate
between them (a proxy in front sends request n to worker n % 2). Nonces minted by one
worker are spent on the other, an order created on one is finalized on the other, and a
validation started on one is polled on the other: all ACME state is in the store. An
account deactivated through one is refused at once by the other, which kept a copy."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import aiohttp
import pytest
from acme import messages
from aiohttp import web

from ca_core.keys.file import FileKeyStore
from ca_core.services import open_services
from gateway.app import create_app
from tests.conftest import BASE_URL
from tests.interop.acme.conftest import make_acme_setup
from tests.interop.acme.support import (
    AcmeSetup,
    Challtestsrv,
    Http01Responder,
    acme_client,
    cert_key_and_csr,
    http01_answers,
    in_thread,
    issue,
)
from tests.support.gateway import free_port, start_gateway

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}


async def alternating_proxy(upstreams: list[str], served: Counter[str]) -> tuple[web.AppRunner, int]:
    turn = itertools.cycle(upstreams)
    session = aiohttp.ClientSession(auto_decompress=False)

    async def forward(request: web.Request) -> web.Response:
        upstream = next(turn)
        served[upstream] += 1
        async with session.request(
            request.method,
            upstream + request.path_qs,
            headers={k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP},
            data=await request.read(),
            allow_redirects=False,
        ) as reply:
            body = await reply.read()
            headers = [(k, v) for k, v in reply.headers.items() if k.lower() not in HOP_BY_HOP]
        response = web.Response(status=reply.status, body=body)
        for k, v in headers:
            response.headers.add(k, v)
        return response

    app = web.Application()
    app.router.add_route("*", "/{path:.*}", forward)

    async def close_session(_: web.Application) -> None:
        await session.close()

    app.on_cleanup.append(close_session)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, port


async def test_two_workers_on_one_database_serve_one_client(
    services, sqlite_url: str, tmp_path: Path, challtestsrv: Challtestsrv
) -> None:
    first, first_runner = await start_gateway(services, tmp_path)
    setup = await make_acme_setup(first, challtestsrv, authz_reuse_seconds=0)
    # The second worker: its own Services (engines, caches, key handles) on the same database.
    second_services = await open_services(
        sqlite_url, FileKeyStore(tmp_path / "keys", b"test-passphrase"), BASE_URL, run_migrations=False
    )
    second_app = create_app(first.config, services=second_services)
    second_runner = web.AppRunner(second_app, handle_signals=False)
    await second_runner.setup()
    second_port = free_port()
    await web.TCPSite(second_runner, "127.0.0.1", second_port).start()
    served: Counter[str] = Counter()
    upstreams = [first.http, f"http://127.0.0.1:{second_port}"]
    proxy, proxy_port = await alternating_proxy(upstreams, served)
    responder = await Http01Responder(setup.http01_port).start()
    try:
        via_proxy = AcmeSetup(
            live=first,
            dns=challtestsrv,
            directory=f"http://127.0.0.1:{proxy_port}/acme/{first.issuing}/directory",
            http01_port=setup.http01_port,
            tls_alpn01_port=setup.tls_alpn01_port,
        )
        client = await in_thread(acme_client, via_proxy)
        for n in range(3):
            _, csr = cert_key_and_csr([f"worker{n}.example.test"])
            order = await in_thread(issue, client, csr, lambda c, o: http01_answers(c, o, responder))
            assert "BEGIN CERTIFICATE" in order.fullchain_pem
        # Both workers have read (and keep) this account by now. Deactivated through one,
        # it is refused by both: the next two requests go one to each.
        regr = await in_thread(client.deactivate_registration, client.net.account)
        assert regr.body.status == "deactivated"
        for n in range(2):
            _, csr = cert_key_and_csr([f"after{n}.example.test"])
            with pytest.raises(messages.Error) as refused:
                await in_thread(client.new_order, csr)
            assert refused.value.typ == "urn:ietf:params:acme:error:unauthorized"
    finally:
        await responder.stop()
        await proxy.cleanup()
        await second_runner.cleanup()
        await second_services.close()
        await first_runner.cleanup()
    assert served[upstreams[0]] > 10 and served[upstreams[1]] > 10
    assert abs(served[upstreams[0]] - served[upstreams[1]]) <= 1
