"""HTTP transfer of CMP messages (RFC 6712 / RFC 9811): POST a DER PKIMessage of type
application/pkixcmp to `/{ca}` or `/{ca}/{operation}` (RFC 9483 6.1 operation labels);
the answer is a PKIMessage with status 200, whatever it says."""

from __future__ import annotations

import contextlib
import secrets
import socket

from aiohttp import web

from protocols._shared.web import binding_of, read_body, requester_of, services_of
from protocols.cmp import codec, core
from protocols.cmp.errors import CmpFailure
from protocols.cmp.server import CmpServer, ServerState

CONTENT_TYPE = "application/pkixcmp"

STATE = web.AppKey("cmp.state", ServerState)


def application() -> web.Application:
    app = web.Application()
    app[STATE] = ServerState()
    app.router.add_post("/{ca}", pki_message)
    app.router.add_post("/{ca}/{operation}", pki_message)
    return app


async def pki_message(request: web.Request) -> web.Response:
    label = request.match_info.get("operation")
    if label is not None and label not in core.OPERATION_LABELS:
        return error_message(404, CmpFailure("badRequest", f"unknown operation label {label!r}"))
    if request.content_type != CONTENT_TYPE:
        return error_message(415, CmpFailure("badDataFormat", f"send {CONTENT_TYPE} (RFC 6712 3.4)"))
    _acknowledge_now(request)
    body = await read_body(request, codec.MAX_MESSAGE_BYTES)
    services = services_of(request)
    # id-it-crlStatusList (RFC 9483 4.3.4) is answered with the CRL every worker serves.
    server = CmpServer(services, request.app[STATE], crls=services.crls.latest_der)
    answer = await server.handle(binding_of(request), body, requester_of(request, "cmp"), label)
    return web.Response(body=answer, content_type=CONTENT_TYPE, headers={"Cache-Control": "no-store"})


def error_message(status: int, failure: CmpFailure) -> web.Response:
    """An unprotected CMP error for problems found before a binding or message is known."""
    header = core.reply_header(None, codec.NULL_DN_NAME, None, secrets.token_bytes(16))
    body = codec.prepare(header, core.error_body(failure)).finish(None)
    return web.Response(status=status, body=body, content_type=CONTENT_TYPE)


def _acknowledge_now(request: web.Request) -> None:
    """Send the pending TCP ACK of the request headers now (Linux TCP_QUICKACK).

    OpenSSL's HTTP client writes the headers and the body of a request separately; on a
    kept-alive connection Nagle's algorithm then holds the body until the headers are
    acknowledged, and a delayed ACK makes that ~40 ms per message after the first."""
    quickack = getattr(socket, "TCP_QUICKACK", None)
    sock = request.transport.get_extra_info("socket") if request.transport is not None else None
    if quickack is None or sock is None:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)
