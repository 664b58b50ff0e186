"""SCEP over HTTP (RFC 8894 4): `/{ca}` and `/{ca}/pkiclient.exe` with `?operation=`.

GET serves GetCACaps, GetCACert, GetNextCACert and PKIOperation (`message=` base64:
clients send it by GET even when POSTPKIOperation is advertised); POST serves
PKIOperation. A body that is not a pkiMessage gets HTTP 400: no CertRep can be
addressed without its transactionID and senderNonce.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from ca_core.errors import CegError, NotFound
from ca_core.services import Services
from protocols._shared.web import binding_of, read_body, requester_of, services_of
from protocols.scep import codec
from protocols.scep.errors import MalformedMessage
from protocols.scep.responder import ScepResponder

MAX_BODY = 256 * 1024


class ResponderSlot:
    """The app's one ScepResponder, made on first use (Services exist only once the
    gateway has started) and kept for the app's life: it holds the RA cache."""

    def __init__(self, protocol: str, make: Callable[[Services], ScepResponder]) -> None:
        self.protocol = protocol
        self._make = make
        self._responder: ScepResponder | None = None
        self._services: Services | None = None

    def get(self, services: Services) -> ScepResponder:
        if self._responder is None or self._services is not services:
            self._responder, self._services = self._make(services), services
        return self._responder


SLOT = web.AppKey("scep.responder", ResponderSlot)


def _text(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message.rstrip() + "\n", content_type="text/plain")


async def _pki_operation(request: web.Request, body: bytes) -> web.Response:
    slot = request.app[SLOT]
    responder = slot.get(services_of(request))
    try:
        reply = await responder.pki_operation(binding_of(request), body, requester_of(request, slot.protocol))
    except MalformedMessage as exc:
        return _text(400, f"not a SCEP pkiMessage: {exc}")
    return web.Response(body=reply, content_type=codec.CONTENT_TYPE_PKI_MESSAGE)


async def scep_get(request: web.Request) -> web.Response:
    operation = request.query.get("operation", "")
    slot = request.app[SLOT]
    responder = slot.get(services_of(request))
    binding = binding_of(request)
    if operation == "GetCACaps":
        return web.Response(body=await responder.capabilities(binding), content_type="text/plain")
    if operation == "GetCACert":
        body, content_type = await responder.ca_certificates(binding)
        return web.Response(body=body, content_type=content_type)
    if operation == "GetNextCACert":
        following = await responder.next_ca_certificates(binding)
        if following is None:
            return _text(404, "this CA has no rollover certificate")
        return web.Response(body=following, content_type=codec.CONTENT_TYPE_NEXT_CA_CERT)
    if operation == "PKIOperation":
        try:
            body = codec.decode_get_message(request.query.get("message", ""))
        except MalformedMessage as exc:
            return _text(400, str(exc))
        return await _pki_operation(request, body)
    return _text(400, f"unknown operation {operation!r}")


async def scep_post(request: web.Request) -> web.Response:
    operation = request.query.get("operation", "")
    if operation != "PKIOperation":
        return _text(405 if operation else 400, f"operation {operation!r} is not a POST operation")
    return await _pki_operation(request, await read_body(request, MAX_BODY))


@web.middleware
async def ca_errors(request: web.Request, handler: Callable[[web.Request], object]) -> web.StreamResponse:
    """Errors of the CA behind the binding (not active, no key here) in SCEP's plain terms."""
    try:
        response = await handler(request)  # type: ignore[misc]
    except NotFound as exc:
        return _text(404, exc.message)
    except CegError as exc:
        return _text(503, exc.message)
    assert isinstance(response, web.StreamResponse)
    return response


def build_application(protocol: str, make: Callable[[Services], ScepResponder]) -> web.Application:
    app = web.Application(middlewares=[ca_errors])
    app[SLOT] = ResponderSlot(protocol, make)
    for path in ("/{ca}", "/{ca}/pkiclient.exe"):
        app.router.add_get(path, scep_get)
        app.router.add_post(path, scep_post)
    return app
