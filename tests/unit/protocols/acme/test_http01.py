"""The http-01 fetch against canned HTTP/1.1 answers from a loopback socket."""

from __future__ import annotations

import asyncio

import pytest

from protocols.acme import http01


async def serve_once(answer: bytes) -> tuple[asyncio.Server, int, list[bytes]]:
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], seen


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", (200, b"hello")),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2;x=y\r\nlo\r\n0\r\n\r\n",
            (200, b"hello"),
        ),
        (b"HTTP/1.0 404 Not Found\r\n\r\nnope", (404, b"nope")),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100000, (200, b"x" * 16)),
    ],
    ids=["length", "chunked", "until-close", "limited"],
)
async def test_fetch_reads_the_body(answer: bytes, expected: tuple[int, bytes]) -> None:
    server, port, seen = await serve_once(answer)
    async with server:
        got = await http01.fetch("127.0.0.1", port, "a.example:8080", "/.well-known/acme-challenge/t", 16)
    assert got == expected
    assert seen[0].startswith(b"GET /.well-known/acme-challenge/t HTTP/1.1\r\nHost: a.example:8080\r\n")


async def test_not_http_is_an_error() -> None:
    server, port, _ = await serve_once(b"SSH-2.0-OpenSSH\r\n\r\n")
    async with server:
        with pytest.raises(http01.HttpError):
            await http01.fetch("127.0.0.1", port, "a", "/", 16)
