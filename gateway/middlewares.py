"""Root middlewares: request id, TLS client certificate, access log, last-resort errors."""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from protocols._shared.web import CLIENT_CERT, REQUEST_ID

log = logging.getLogger("ceg.access")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def request_context() -> Middleware:
    """The root middleware: give each request an id (honouring a sane X-Request-Id) and
    its client certificate, answer, and write the access log line."""
    # Ids need to be unique, not unpredictable: a random prefix for this process and a
    # counter cost a fraction of a uuid4 (16 bytes from the kernel) on every request.
    prefix = uuid.uuid4().hex[:16]
    counter = itertools.count(1)

    @web.middleware
    async def with_context(request: web.Request, handler: Handler) -> web.StreamResponse:
        incoming = request.headers.get("X-Request-Id", "")
        sane = 0 < len(incoming) <= 64 and incoming.isprintable()
        request_id = incoming if sane else f"{prefix}{next(counter):016x}"
        request[REQUEST_ID] = request_id
        # CLIENT_CERT's value type (bytes | None) is not a class, so mypy cannot tie it to
        # the key's type parameter (see its definition in protocols/_shared/web.py).
        request[CLIENT_CERT] = _peer_certificate(request)  # type: ignore[misc]
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
        except web.HTTPException as exc:
            status = exc.status
            exc.headers["X-Request-Id"] = request_id
            raise
        except Exception:
            # The details stay in the log; the client gets the request id to quote.
            log.exception("unhandled error", extra={"request_id": request_id, "path": request.path})
            response = web.json_response(
                {"error": "internal", "message": "internal error", "request_id": request_id},
                status=500,
            )
        finally:
            log.info(
                "%s %s %s",
                request.method,
                request.path,
                status,
                extra={
                    "request_id": request_id,
                    "method": request.method,
                    "path": request.path,
                    "status": status,
                    "remote": request.remote,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
        response.headers["X-Request-Id"] = request_id
        return response

    return with_context


def _peer_certificate(request: web.Request) -> bytes | None:
    transport = request.transport
    if transport is None:
        return None
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    der: bytes | None = ssl_object.getpeercert(binary_form=True)
    return der
