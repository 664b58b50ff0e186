"""The one HTTP request http-01 validation makes (RFC 8555 8.3; RFC 9112 for the wire):
GET of the challenge path on a fresh connection, `Connection: close`, no redirects, and
at most `limit` bytes of body read (Content-Length, chunked, or until close).

A general client (aiohttp's) cost more per validation than the rest of the order's
handling; a key authorization fits in one small response.
"""

from __future__ import annotations

import asyncio

MAX_HEADER_BYTES = 16 * 1024


class HttpError(Exception):
    """The peer's answer was not HTTP/1.x we can read."""


async def fetch(address: str, port: int, host_header: str, path: str, limit: int) -> tuple[int, bytes]:
    """(status, body); the caller bounds the time (asyncio.timeout)."""
    reader, writer = await asyncio.open_connection(address, port, limit=MAX_HEADER_BYTES)
    try:
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: ceg-acme-validation\r\n"
            "Accept: */*\r\nConnection: close\r\n\r\n".encode("ascii")
        )
        await writer.drain()
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            raise HttpError("no complete HTTP response header") from exc
        status, headers = _parse_head(head)
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = await _read_chunked(reader, limit)
        elif "content-length" in headers:
            try:
                length = int(headers["content-length"])
            except ValueError:
                raise HttpError("bad Content-Length") from None
            body = await reader.read(min(length, limit)) if length else b""
        else:
            body = await reader.read(limit)
        return status, body
    finally:
        writer.close()


def _parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise HttpError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers


async def _read_chunked(reader: asyncio.StreamReader, limit: int) -> bytes:
    body = b""
    while len(body) < limit:
        size_line = await reader.readline()
        try:
            size = int(size_line.split(b";")[0].strip() or b"x", 16)
        except ValueError:
            raise HttpError("bad chunk size") from None
        if size == 0:
            break
        chunk = await reader.read(min(size, limit - len(body)))
        body += chunk
        if len(chunk) < size:
            break
        await reader.readline()  # the CRLF after the chunk
    return body
