"""A small DNS stub for validation lookups (RFC 1035 sections 4.1 and 3.3.14): one
question (A, AAAA or TXT) over UDP to the binding's resolver.

Validation asks the resolver one question per challenge, and dnspython's general
machinery cost more than the rest of a validation; this stub builds the query and reads
the answer section directly. Answers it cannot take (truncated, malformed) return None,
and the caller asks again through dnspython (which also covers TCP and the system's
resolver configuration).
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import struct
from dataclasses import dataclass

A, TXT, AAAA = 1, 16, 28
NOERROR, NXDOMAIN = 0, 3
_CLASS_IN = 1


@dataclass(frozen=True, slots=True)
class Answer:
    rcode: int
    records: tuple[bytes, ...]  # the rdata of each answer of the type asked


def build_query(name: str, rdtype: int, query_id: int) -> bytes:
    labels = [label.encode("ascii") for label in name.rstrip(".").split(".")]
    if any(not 0 < len(label) < 64 for label in labels):
        raise ValueError(f"{name!r} is not a DNS name")
    qname = b"".join(bytes([len(label)]) + label for label in labels) + b"\x00"
    return (
        struct.pack(">HHHHHH", query_id, 0x0100, 1, 0, 0, 0) + qname + struct.pack(">HH", rdtype, _CLASS_IN)
    )


def _skip_name(data: bytes, offset: int) -> int:
    while True:
        length = data[offset]
        if length & 0xC0 == 0xC0:
            return offset + 2
        if length == 0:
            return offset + 1
        offset += length + 1


def parse_answer(data: bytes, query_id: int, rdtype: int) -> Answer | None:
    """The answer records of `rdtype`, or None if the message is not a usable answer."""
    try:
        qid, flags, qdcount, ancount, _, _ = struct.unpack_from(">HHHHHH", data, 0)
        if qid != query_id or not flags & 0x8000 or flags & 0x0200:  # not ours, not a reply, truncated
            return None
        offset = 12
        for _ in range(qdcount):
            offset = _skip_name(data, offset) + 4
        records = []
        for _ in range(ancount):
            offset = _skip_name(data, offset)
            kind, klass, _ttl, length = struct.unpack_from(">HHIH", data, offset)
            offset += 10
            rdata = data[offset : offset + length]
            if len(rdata) != length:
                return None
            offset += length
            if kind == rdtype and klass == _CLASS_IN:
                records.append(rdata)
        return Answer(flags & 0x000F, tuple(records))
    except (IndexError, struct.error):
        return None


def txt_strings(rdata: bytes) -> str:
    """A TXT record's character-strings, concatenated (RFC 8555 8.4 reads them as one)."""
    parts, offset = [], 0
    while offset < len(rdata):
        length = rdata[offset]
        parts.append(rdata[offset + 1 : offset + 1 + length])
        offset += 1 + length
    return b"".join(parts).decode("ascii", "replace")


def address_text(rdata: bytes) -> str | None:
    if len(rdata) == 4:
        return socket.inet_ntop(socket.AF_INET, rdata)
    if len(rdata) == 16:
        return socket.inet_ntop(socket.AF_INET6, rdata)
    return None


class _Exchange(asyncio.DatagramProtocol):
    def __init__(self, query_id: int, rdtype: int) -> None:
        self.answer: asyncio.Future[Answer | None] = asyncio.get_running_loop().create_future()
        self._id, self._type = query_id, rdtype

    def datagram_received(self, data: bytes, addr: object) -> None:
        if len(data) < 2 or int.from_bytes(data[:2], "big") != self._id or self.answer.done():
            return  # not the answer to our question
        self.answer.set_result(parse_answer(data, self._id, self._type))

    def error_received(self, exc: Exception) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc)


def connected_udp_socket(server: tuple[str, int]) -> socket.socket:
    """A UDP socket connected to the server's address (an IP literal: the settings accept
    nothing else). Given `remote_addr` instead, uvloop resolves even a literal through
    getaddrinfo on a thread of its pool, a hand-off to a thread and back on every query."""
    family = socket.AF_INET6 if ":" in server[0] else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.connect(server)  # UDP: sets the peer, sends nothing, never waits
    except BaseException:
        sock.close()
        raise
    return sock


async def query(server: tuple[str, int], name: str, rdtype: int) -> Answer | None:
    """Ask `server` one question over UDP; None when the answer is not usable here (ask
    again another way). The caller bounds the wait (asyncio.timeout)."""
    query_id = secrets.randbelow(0x10000)
    message = build_query(name, rdtype, query_id)
    loop = asyncio.get_running_loop()
    sock = connected_udp_socket(server)
    try:
        transport, exchange = await loop.create_datagram_endpoint(
            lambda: _Exchange(query_id, rdtype), sock=sock
        )
    except BaseException:
        sock.close()
        raise
    try:
        transport.sendto(message)
        return await exchange.answer
    finally:
        transport.close()
