"""`/cagw/v1`: the CA Gateway REST API v1 over ceg's CA core (research notes section 4).

Handlers are thin: authorize -> parse (translate.py) -> call the services -> render
(views.py). Errors of every kind leave as `ErrorResponse` bodies (see `errors`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from urllib.parse import unquote

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from ca_core.errors import CegError, InvalidState, NotFound
from ca_core.model import CaKind, CaState, CertStatus, IssuanceRequest, IssuedCertificate
from ca_core.services import Services
from ca_core.status.revocation import StatusChange, normalise_serial
from ca_core.store import CertificateQuery
from gateway.api.auth import Permission, Principal, authorize, children_of
from gateway.api.body import parse_datetime, read_json
from gateway.api.cagw import paging, translate, views
from gateway.api.cagw.selection import Selection
from gateway.api.errors import ApiError, Failure, failure_of
from gateway.api.openapi import cagw_document
from gateway.api.routing import Handler
from protocols._shared.web import SERVICES, requester_of

log = logging.getLogger(__name__)
API = "cagw"
_ACTION_TARGET = {
    "RevokeAction": CertStatus.REVOKED,
    "HoldAction": CertStatus.HELD,
    "UnholdAction": CertStatus.NORMAL,
}
_SUBJECT_ACTION_LIMIT = 1000


def _services(request: web.Request) -> Services:
    return request.config_dict[SERVICES]


def _json(body: object, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


async def _readable(request: web.Request, ca: str) -> Principal:
    services = _services(request)
    return await authorize(request, API, Permission.READ, ca, await children_of(services, ca))


# --- CAs and profiles ------------------------------------------------------------------


async def list_cas(request: web.Request) -> web.Response:
    services = _services(request)
    principal = await authorize(request, API, Permission.READ)
    selection = Selection.parse(request.query.get("$fields"))
    records = [r for r in await services.authority.list() if r.state is CaState.ACTIVE]
    parents_in_scope = {r.parent_id for r in records if principal.covers(r.id) and r.parent_id}
    views_ = []
    for record in records:
        if principal.covers(record.id) or record.id in parents_in_scope:
            ca = await services.authority.get(record.id)
            views_.append(views.ca_view(ca, selection, "caList"))
    return _json({"type": "CAListResponse", "caList": views_})


async def get_ca(request: web.Request) -> web.Response:
    ca_id = request.match_info["caId"]
    await _readable(request, ca_id)
    ca = await _services(request).authority.get(ca_id)
    selection = Selection.parse(request.query.get("$fields"))
    return _json({"type": "CAResponse", "ca": views.ca_view(ca, selection, "ca")})


async def ca_properties(request: web.Request) -> web.Response:
    ca_id = request.match_info["caId"]
    await _readable(request, ca_id)
    ca = await _services(request).authority.get(ca_id)
    view = views.ca_view(ca, Selection(), "ca")
    return _json(
        {"type": "CAPropertiesResponse", "CAPropertiesInformation": {"properties": view["properties"]}}
    )


def _offered_profiles(services: Services, ca_services: tuple[str, ...], kind: CaKind) -> list:
    if kind is not CaKind.ISSUING:
        return []
    return sorted(
        (p for p in services.catalogue.public() if p.service in ca_services and not p.ca), key=lambda p: p.id
    )


async def list_profiles(request: web.Request) -> web.Response:
    ca_id = request.match_info["caId"]
    await _readable(request, ca_id)
    services = _services(request)
    ca = await services.authority.get(ca_id)
    profiles = _offered_profiles(services, ca.services, ca.kind)
    return _json(
        {
            "type": "ProfilesResponse",
            "profiles": [views.profile_view(p) for p in profiles],
            "message": views.message(f"{len(profiles)} profiles"),
        }
    )


async def get_profile(request: web.Request) -> web.Response:
    ca_id, profile_id = request.match_info["caId"], request.match_info["profileId"]
    await _readable(request, ca_id)
    services = _services(request)
    ca = await services.authority.get(ca_id)
    for profile in _offered_profiles(services, ca.services, ca.kind):
        if profile.id == profile_id:
            return _json({"type": "ProfileResponse", "profile": views.profile_view(profile)})
    raise NotFound(f"CA {ca_id} offers no profile {profile_id!r}", profile=profile_id)


# --- enrollment ----------------------------------------------------------------------------


async def enroll(request: web.Request) -> web.Response:
    ca_id = request.match_info["caId"]
    principal = await authorize(request, API, Permission.ISSUE, ca_id)
    services = _services(request)
    order = translate.parse_enrollment(await read_json(request))
    key = None
    public_key = None
    if order.csr is None:
        from ca_core.keys.file import generate_private_key

        # Key generation (RSA above all) is slow: off the event loop.
        key = await asyncio.get_running_loop().run_in_executor(
            services.executor, generate_private_key, order.key_algorithm
        )
        public_key = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    issued = await services.issuance.issue(
        IssuanceRequest(
            ca=ca_id,
            profile=order.profile,
            requester=requester_of(request, API, principal.name),
            csr=order.csr,
            public_key=public_key,
            pop_verified=key is not None,  # generated right here
            subject=order.subject,
            subject_alt_names=order.subject_alt_names,
            not_before=order.validity.not_before,
            not_after=order.validity.not_after,
            validity=order.validity.length,
            extensions=order.extensions,
        )
    )
    cert = issued.certificate
    chain = issued.chain if order.include_ca else ()
    if order.output == "PKCS12":
        assert key is not None and order.password is not None
        body = views.b64(await _pkcs12(services, issued, key, order.password))
    elif order.output == "PEM":
        body = cert.public_bytes(serialization.Encoding.PEM).decode()
    else:
        body = views.b64(issued.der)
    return _json(
        views.enrollment_view(
            issued.serial_hex, cert.subject.rfc4514_string(), issued.not_before, issued.not_after, body, chain
        )
    )


async def _pkcs12(services: Services, issued: IssuedCertificate, key: object, password: str) -> bytes:
    def build() -> bytes:
        chain = [x509.load_der_x509_certificate(d) for d in issued.chain]
        return pkcs12.serialize_key_and_certificates(
            issued.serial_hex.encode(),
            key,  # type: ignore[arg-type]
            issued.certificate,
            chain,
            serialization.BestAvailableEncryption(password.encode()),
        )

    return await asyncio.get_running_loop().run_in_executor(services.executor, build)


# --- certificates and actions -----------------------------------------------------------------


async def get_certificate(request: web.Request) -> web.Response:
    ca_id = request.match_info["caId"]
    await _readable(request, ca_id)
    services = _services(request)
    serial = normalise_serial(request.match_info["serial"])
    record = await services.store.certificates.get(serial, ca_id)
    if record is None:
        raise NotFound(f"CA {ca_id} has no certificate with serial {serial}", serial=serial)
    return _json(views.certificate_view(record, services.clock.now()))


async def certificate_action(request: web.Request) -> web.Response:
    ca_id = request.match_info["caId"]
    principal = await authorize(request, API, Permission.REVOKE, ca_id)
    action = translate.parse_action(await read_json(request))
    serial = normalise_serial(request.match_info["serial"])
    status = await _apply(request, principal, ca_id, serial, action)
    return _json(
        views.action_view(
            str(uuid.uuid4()),
            action.kind,
            status,
            action.reason.value if action.kind != "UnholdAction" else None,
            action.comment,
            action.succeed_if_already,
        )
    )


async def _apply(
    request: web.Request, principal: Principal, ca_id: str, serial: str, action: translate.Action
) -> str:
    services = _services(request)
    change = StatusChange(
        serial=serial,
        actor=principal.actor(API),
        reason=action.reason,
        invalidity_date=action.invalidity_date,
        comment=action.comment,
        publish_now=action.publish_now,
        ca=ca_id,
    )
    revocation = services.revocation
    try:
        if action.kind == "RevokeAction":
            await revocation.revoke(change)
        elif action.kind == "HoldAction":
            await revocation.hold(change)
        else:
            await revocation.unhold(change)
    except InvalidState:
        if not action.succeed_if_already:
            raise
        record = await services.store.certificates.get(serial, ca_id)
        wanted = _ACTION_TARGET[action.kind]
        if action.kind == "RevokeAction" and action.reason.value == "certificateHold":
            wanted = CertStatus.HELD
        if record is None or record.status is not wanted:
            raise
    return "COMPLETED"


async def subject_action(request: web.Request) -> web.Response:
    """Apply one action to every live certificate of a subject DN on this CA."""
    ca_id = request.match_info["caId"]
    principal = await authorize(request, API, Permission.REVOKE, ca_id)
    services = _services(request)
    action = translate.parse_action(await read_json(request))
    raw_dn = unquote(request.match_info["subjectDn"])
    subject = translate.parse_subject_dn(raw_dn, "subjectDn").rfc4514_string()
    await services.authority.get(ca_id)
    serials: list[str] = []
    offset = 0
    while len(serials) < _SUBJECT_ACTION_LIMIT:
        page = await services.store.certificates.search(
            CertificateQuery(ca=ca_id, text=subject, limit=200, offset=offset), now=services.clock.now()
        )
        serials += [
            r.serial for r in page.items if r.subject == subject and r.status is not CertStatus.REVOKED
        ]
        if not page.has_more:
            break
        offset += len(page.items)
    if not serials:
        raise NotFound(f"CA {ca_id} has no live certificate with subject {subject}")
    done: list[str] = []
    for serial in serials:
        try:
            await _apply(request, principal, ca_id, serial, action)
            done.append(serial)
        except InvalidState:
            continue  # already in (or past) the requested state
    body = views.action_view(
        str(uuid.uuid4()),
        action.kind,
        "COMPLETED" if done else "REJECTED",
        action.reason.value if action.kind != "UnholdAction" else None,
        action.comment,
        action.succeed_if_already,
    )
    body["action"]["properties"] = {"serialNumbers": done}
    return _json(body)


# --- certificate events ------------------------------------------------------------------------


async def certificate_events(request: web.Request) -> web.Response:
    ca_id = request.match_info["caId"]
    await _readable(request, ca_id)
    services = _services(request)
    await services.authority.get(ca_id)
    selection = Selection.parse(request.query.get("$fields"))
    index = request.query.get("nextPageIndex")
    start: dt.datetime | None = None
    after, first_size = 0, paging.DEFAULT_PAGE
    if index:
        after, start, first_size = paging.decode_index(index)
    elif request.query.get("startDate"):
        start = parse_datetime(request.query["startDate"], "startDate")
    size = paging.page_size(request.query.get("preferredPageSize"), first_size)
    page = await services.events.page(
        ca_id, after, start, size, with_certificates=not selection.drops("events.certificate")
    )
    events = [views.event_view(e, selection) for e in page.events]
    return _json(
        {
            "type": "CertificateEventsResponse",
            "events": events,
            "nextPageIndex": paging.encode_index(page.last_seq, start, size),
            "morePages": page.more,
            "hasMore": page.more,
            "metadata": {
                "currentCount": len(events),
                "currentLimit": size,
                "currentOffset": after,
            },
        }
    )


# --- not offered --------------------------------------------------------------------------------


async def not_implemented(request: web.Request) -> web.Response:
    await authorize(request, API, Permission.READ)
    raise ApiError(
        501, "not_implemented", f"{request.method} {request.path} is not implemented on this gateway"
    )


async def openapi(request: web.Request) -> web.Response:
    return _json(cagw_document())


# --- errors ---------------------------------------------------------------------------------------


def error_response(failure: Failure) -> web.Response:
    headers = dict(failure.headers)
    if failure.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="ceg"'
    return web.json_response(views.error_body(failure), status=failure.status, headers=headers)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.failure)
    except CegError as exc:
        failure = failure_of(exc)
        if failure.status >= 500:
            log.error("cagw request failed: %s", exc, extra={"path": request.path})
        return error_response(failure)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(exc.status, "http_error")
        response = error_response(Failure(exc.status, code, exc.reason))
        if exc.status == 405 and "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception:
        # A bug: the details go to the log with the request id, the client gets a 500.
        log.exception("%s request failed", request.path)
        return error_response(Failure(500, "internal", "internal error"))
