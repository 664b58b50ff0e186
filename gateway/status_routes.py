"""HTTP endpoints of certificate status (ARCHITECTURE.md section 5), thin over ca_core:

- GET /crl/{ca}.crl: the CA's stored CRL, DER, application/pkix-crl (RFC 5280 4.2.1.13
  points here), with ETag / Last-Modified / Expires and conditional GET.
- POST /ocsp/{ca} with an application/ocsp-request body, and GET /ocsp/{ca}/{base64 of
  the DER, URL-encoded} (RFC 6960 appendix A.1; RFC 5019 5): application/ocsp-response,
  always HTTP 200 (errors are OCSP statuses). Responses without a nonce carry the RFC
  5019 6.2 caching headers; responses with a nonce are marked no-store.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import logging
import urllib.parse
from email.utils import format_datetime

from aiohttp import web

from ca_core.errors import InvalidState, NotFound
from ca_core.services import Services
from ca_core.status.ocsp import MAX_REQUEST_BYTES, ResponseStatus
from ca_core.status.responder import OcspReply, refused
from protocols._shared.web import SERVICES, read_body

log = logging.getLogger(__name__)
CRL_TYPE = "application/pkix-crl"
OCSP_RESPONSE_TYPE = "application/ocsp-response"
CRL_MAX_AGE = dt.timedelta(minutes=15)  # a status change reaches the CRL within 15 minutes


@functools.lru_cache(maxsize=4096)
def http_date(value: dt.datetime) -> str:
    return format_datetime(value.astimezone(dt.UTC), usegmt=True)


async def crl(request: web.Request) -> web.StreamResponse:
    ca_id, dot, ext = request.match_info["file"].rpartition(".")
    if not dot or ext != "crl" or not ca_id:
        raise web.HTTPNotFound(text="use /crl/{ca}.crl\n")
    services = request.config_dict[SERVICES]
    try:
        published = await services.crls.latest(ca_id)
    except (NotFound, InvalidState) as exc:
        raise web.HTTPNotFound(text=f"{exc.message}\n") from None
    now = services.clock.now()
    max_age = int(max(0, min((published.next_update - now).total_seconds(), CRL_MAX_AGE.total_seconds())))
    headers = {
        "ETag": f'"{ca_id}-{published.number}"',
        "Last-Modified": http_date(published.this_update),
        "Expires": http_date(published.next_update),
        "Cache-Control": f"public, max-age={max_age}, no-transform",
    }
    if headers["ETag"] in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    return web.Response(body=published.der, content_type=CRL_TYPE, headers=headers)


def ocsp_response(reply: OcspReply, now: dt.datetime, max_age_cap: dt.timedelta) -> web.Response:
    if reply.cacheable and reply.this_update is not None and reply.next_update is not None:
        headers = {
            "Last-Modified": http_date(reply.this_update),
            "Expires": http_date(reply.next_update),
            "Cache-Control": f"max-age={reply.max_age(now, max_age_cap)}, public, no-transform, must-revalidate",
            "ETag": reply.etag or "",
        }
    else:
        headers = {"Cache-Control": "no-store"}
    return web.Response(body=reply.der, content_type=OCSP_RESPONSE_TYPE, headers=headers)


async def ocsp_post(request: web.Request) -> web.Response:
    services = request.config_dict[SERVICES]
    try:
        body = await read_body(request, MAX_REQUEST_BYTES)
    except web.HTTPRequestEntityTooLarge:
        reply = refused(ResponseStatus.MALFORMED_REQUEST, "request too large")
    else:
        reply = await _respond(services, request.match_info["ca"], body)
    return ocsp_response(reply, services.clock.now(), services.ocsp.policy.http_max_age)


async def ocsp_get(request: web.Request) -> web.Response:
    services = request.config_dict[SERVICES]
    ca_id = request.match_info["ca"]
    try:
        data = decode_get_request(request.raw_path, ca_id)
    except ValueError as exc:
        reply = refused(ResponseStatus.MALFORMED_REQUEST, str(exc))
    else:
        reply = await _respond(services, ca_id, data)
    return ocsp_response(reply, services.clock.now(), services.ocsp.policy.http_max_age)


async def _respond(services: Services, ca_id: str, data: bytes) -> OcspReply:
    # An OCSP client understands internalError, not an HTTP 500 with a JSON body.
    try:
        return await services.ocsp.respond(ca_id, data)
    except Exception:
        log.exception("OCSP responder failed", extra={"ca": ca_id})
        return refused(ResponseStatus.INTERNAL_ERROR, "internal error")


def decode_get_request(raw_path: str, ca_id: str) -> bytes:
    """The DER from `/ocsp/{ca}/{url-encoded base64}`, read from the raw path so that
    '/', '+' and '=' of the base64 survive whatever the router decodes or merges."""
    path = raw_path.split("?", 1)[0]
    prefix = f"/ocsp/{urllib.parse.quote(ca_id, safe='')}/"
    if not path.startswith(prefix):
        raise ValueError("the request is not under this CA's OCSP path")
    text = urllib.parse.unquote(path[len(prefix) :])
    if not text or len(text) > (MAX_REQUEST_BYTES * 4) // 3 + 4:
        raise ValueError("no (or an oversized) base64 request in the URL")
    text += "=" * (-len(text) % 4)
    try:
        if "-" in text or "_" in text:  # tolerate the URL-safe alphabet
            return base64.b64decode(text, altchars=b"-_", validate=True)
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the URL does not end in base64") from None


async def ocsp_get_without_request(request: web.Request) -> web.Response:
    services = request.config_dict[SERVICES]
    reply = refused(ResponseStatus.MALFORMED_REQUEST, "GET needs the base64 request in the path")
    return ocsp_response(reply, services.clock.now(), services.ocsp.policy.http_max_age)


def install(app: web.Application) -> None:
    """Add the status routes to the root application (called from create_app)."""
    app.router.add_get("/crl/{file}", crl)
    app.router.add_post("/ocsp/{ca}", ocsp_post)
    app.router.add_post("/ocsp/{ca}/", ocsp_post)
    app.router.add_get("/ocsp/{ca}", ocsp_get_without_request)
    app.router.add_get("/ocsp/{ca}/{request:.*}", ocsp_get)
