"""Root middlewares: request id, TLS client certificate, access log, last-resort errors."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from protocols._shared.web import CLIENT_CERT, REQUEST_ID

log = logging.getLogger("ceg.access")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give the request an id (honouring a sane X-Request-Id) and its client certificate."""
    incoming = request.headers.get("X-Request-Id", "")
    request[REQUEST_ID] = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex
    request[CLIENT_CERT] = _peer_certificate(request)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
    except web.HTTPException as exc:
        status = exc.status
        exc.headers["X-Request-Id"] = request[REQUEST_ID]
        raise
    except Exception:
        # The details stay in the log; the client gets the request id to quote.
        log.exception("unhandled error", extra={"request_id": request[REQUEST_ID], "path": request.path})
        response = web.json_response(
            {"error": "internal", "message": "internal error", "request_id": request[REQUEST_ID]},
            status=500,
        )
    finally:
        log.info(
            "%s %s %s",
            request.method,
            request.path,
            status,
            extra={
                "request_id": request[REQUEST_ID],
                "method": request.method,
                "path": request.path,
                "status": status,
                "remote": request.remote,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )
    response.headers["X-Request-Id"] = request[REQUEST_ID]
    return response


def _peer_certificate(request: web.Request) -> bytes | None:
    transport = request.transport
    if transport is None:
        return None
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    der: bytes | None = ssl_object.getpeercert(binary_form=True)
    return der
