"""The root middleware: every response carries a request id, unique per request unless
the client sent a sane one of its own, and every request gets an access log line."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from aiohttp import web

from gateway.middlewares import request_context
from protocols._shared.web import REQUEST_ID


async def make_client(aiohttp_client: Any) -> Any:
    async def echo(request: web.Request) -> web.Response:
        return web.Response(text=request[REQUEST_ID])

    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("a handler bug")

    app = web.Application(middlewares=[request_context()])
    app.router.add_get("/echo", echo)
    app.router.add_get("/broken", broken)
    return await aiohttp_client(app)


async def test_each_request_gets_its_own_id(aiohttp_client: Any) -> None:
    client = await make_client(aiohttp_client)
    ids = []
    for _ in range(50):
        response = await client.get("/echo")
        ids.append(response.headers["X-Request-Id"])
        assert await response.text() == ids[-1]  # what handlers and logs see
    assert len(set(ids)) == 50 and all(len(i) == 32 for i in ids)


@pytest.mark.parametrize(
    ("sent", "kept"), [("client-chosen-1", True), ("x" * 65, False), ("tab\tid", False), ("", False)]
)
async def test_a_sane_incoming_id_is_kept(aiohttp_client: Any, sent: str, kept: bool) -> None:
    client = await make_client(aiohttp_client)
    response = await client.get("/echo", headers={"X-Request-Id": sent})
    assert (response.headers["X-Request-Id"] == sent) is kept


async def test_a_handler_bug_is_a_500_with_the_id_and_logged(
    aiohttp_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client(aiohttp_client)
    with caplog.at_level(logging.INFO, logger="ceg.access"):
        response = await client.get("/broken")
    body = await response.json()
    assert response.status == 500 and body["request_id"] == response.headers["X-Request-Id"]
    access = [r for r in caplog.records if r.name == "ceg.access" and r.levelno == logging.INFO]
    assert access and access[-1].status == 500 and access[-1].request_id == body["request_id"]  # type: ignore[attr-defined]
