"""The DNS stub's codec (RFC 1035 4.1), checked against messages dnspython builds."""

from __future__ import annotations

import dns.message
import dns.rrset

from protocols.acme import lookup


def reply(query: bytes, *answers: dns.rrset.RRset, rcode: int = 0, truncated: bool = False) -> bytes:
    request = dns.message.from_wire(query)
    response = dns.message.make_response(request)
    response.set_rcode(rcode)
    response.answer.extend(answers)
    if truncated:
        response.flags |= dns.flags.TC
    return response.to_wire()


def test_query_is_what_a_resolver_reads() -> None:
    parsed = dns.message.from_wire(lookup.build_query("_acme-challenge.Example.test.", lookup.TXT, 4242))
    assert parsed.id == 4242
    assert str(parsed.question[0]) == "_acme-challenge.Example.test. IN TXT"


def test_answers_with_compressed_names_cname_and_txt_strings() -> None:
    q = lookup.build_query("www.example.test", lookup.A, 7)
    wire = reply(
        q,
        dns.rrset.from_text("www.example.test.", 60, "IN", "CNAME", "host.example.test."),
        dns.rrset.from_text("host.example.test.", 60, "IN", "A", "192.0.2.1", "192.0.2.2"),
    )
    answer = lookup.parse_answer(wire, 7, lookup.A)
    assert answer is not None and answer.rcode == lookup.NOERROR
    assert sorted(lookup.address_text(r) or "" for r in answer.records) == ["192.0.2.1", "192.0.2.2"]
    q = lookup.build_query("_acme-challenge.example.test", lookup.TXT, 8)
    wire = reply(
        q, dns.rrset.from_text("_acme-challenge.example.test.", 0, "IN", "TXT", '"abc" "def"', '"xyz"')
    )
    answer = lookup.parse_answer(wire, 8, lookup.TXT)
    assert answer is not None
    assert sorted(lookup.txt_strings(r) for r in answer.records) == ["abcdef", "xyz"]


def test_unusable_answers_send_the_caller_elsewhere() -> None:
    q = lookup.build_query("example.test", lookup.A, 9)
    assert lookup.parse_answer(reply(q, truncated=True), 9, lookup.A) is None
    assert lookup.parse_answer(reply(q), 10, lookup.A) is None  # someone else's id
    lookup.parse_answer(reply(q)[:13], 9, lookup.A)  # cut short: no exception escapes
    nx = lookup.parse_answer(reply(q, rcode=3), 9, lookup.A)
    assert nx is not None and nx.rcode == lookup.NXDOMAIN and nx.records == ()


# A fresh interpreter asks a local responder under uvloop, then counts libuv's pool
# threads: uvloop starts them on first use, so none means no query went through one.
_ASK_UNDER_UVLOOP = """
import asyncio, pathlib, socket
import dns.message, uvloop
from protocols.acme import lookup

class Responder(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport
    def datagram_received(self, data, addr):
        request = dns.message.from_wire(data)
        response = dns.message.make_response(request)
        response.answer.append(dns.rrset.from_text(request.question[0].name, 60, "IN", "A", "192.0.2.7"))
        self.transport.sendto(response.to_wire(), addr)

async def main():
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))  # a bound socket, so the responder needs no resolving either
    server, _ = await loop.create_datagram_endpoint(Responder, sock=sock)
    port = server.get_extra_info("sockname")[1]
    answer = await asyncio.wait_for(lookup.query(("127.0.0.1", port), "www.example.test", lookup.A), 5)
    server.close()
    names = [p.read_text().strip() for p in pathlib.Path("/proc/self/task").glob("*/comm")]
    print([lookup.address_text(r) for r in answer.records], sum(n.startswith("libuv") for n in names))

uvloop.run(main())
"""


def test_a_query_under_uvloop_hands_nothing_to_a_thread() -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", _ASK_UNDER_UVLOOP], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.split("]")[0] == "['192.0.2.7'"
    assert result.stdout.strip().endswith(" 0"), result.stdout
