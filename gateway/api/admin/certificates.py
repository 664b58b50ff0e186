"""`/api/v1/certificates`: issue from a CSR, show, search, revoke, hold, unhold."""

from __future__ import annotations

import datetime as dt

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ca_core.errors import NotFound
from ca_core.model import CertificateRecord, CertStatus, IssuanceRequest, RevocationReason
from ca_core.status.revocation import StatusChange, normalise_serial
from ca_core.store import CertificateQuery
from ca_core.x509.names import parse_dn, parse_san
from gateway.api.admin.common import (
    API,
    certificate_view,
    pem_certificate,
    query_date,
    query_int,
    query_text,
    services_of,
)
from gateway.api.auth import Permission, Principal, authorize
from gateway.api.body import decode_base64, read_json
from gateway.api.errors import bad_request
from protocols._shared.web import requester_of

STATUSES = tuple(s.value for s in CertStatus)


def _csr_der(text: str) -> bytes:
    stripped = text.strip()
    if stripped.startswith("-----BEGIN"):
        try:
            return x509.load_pem_x509_csr(stripped.encode()).public_bytes(serialization.Encoding.DER)
        except ValueError:
            raise bad_request("csr is not a PEM certificate request", "csr", "bad_csr") from None
    return decode_base64(stripped, "csr")


async def issue(request: web.Request) -> web.Response:
    await authorize(request, API, Permission.ISSUE)  # before the body is even read
    body = await read_json(request)
    ca = body.text("ca", required=True, max_len=63)
    principal = await authorize(request, API, Permission.ISSUE, ca)
    services = services_of(request)
    profile = body.text("profile", required=True, max_len=128)
    csr = _csr_der(body.text("csr", required=True, max_len=96 * 1024))
    subject_text = body.text("subject", max_len=2048)
    sans = body.texts("sans", max_items=100)
    days = body.integer("validity_days", 1, 7305)
    issued = await services.issuance.issue(
        IssuanceRequest(
            ca=ca,
            profile=profile,
            requester=requester_of(request, API, principal.name),
            csr=csr,
            subject=parse_dn(subject_text) if subject_text else None,
            subject_alt_names=tuple(parse_san(s) for s in sans) if sans is not None else None,
            validity=dt.timedelta(days=days) if days else None,
        )
    )
    record = await services.store.certificates.get(issued.serial_hex)
    assert record is not None
    view = certificate_view(record, services.clock.now(), with_pem=True)
    view["chain_pem"] = [pem_certificate(d) for d in issued.chain]
    return web.json_response(view, status=201)


async def search(request: web.Request) -> web.Response:
    principal = await authorize(request, API, Permission.READ)
    services = services_of(request)
    ca = query_text(request, "ca", 63)
    if ca is not None and not principal.covers(ca):
        await authorize(request, API, Permission.READ, ca)
    if ca is None and principal.cas is not None and len(principal.cas) == 1:
        ca = next(iter(principal.cas))
    elif ca is None and principal.cas is not None:
        raise bad_request("this credential is scoped to several CAs: name one with ?ca=", "ca")
    status = query_text(request, "status", 16)
    if status is not None and status not in STATUSES:
        raise bad_request(f"status must be one of {', '.join(STATUSES)}", "status")
    serial = query_text(request, "serial", 64)
    query = CertificateQuery(
        ca=ca,
        serial=normalise_serial(serial) if serial else None,
        status=CertStatus(status) if status else None,
        profile=query_text(request, "profile", 128),
        text=query_text(request, "text", 256),
        expires_after=query_date(request, "expires_after"),
        expires_before=query_date(request, "expires_before"),
        issued_after=query_date(request, "issued_after"),
        limit=query_int(request, "limit", 50, 1, 500),
        offset=query_int(request, "offset", 0, 0, 10_000_000),
    )
    now = services.clock.now()
    page = await services.store.certificates.search(query, now=now)
    return web.json_response(
        {
            "items": [certificate_view(r, now) for r in page.items],
            "total": page.total,
            "offset": page.offset,
            "limit": page.limit,
            "has_more": page.has_more,
        }
    )


async def _find(request: web.Request, permission: Permission) -> tuple[CertificateRecord, Principal]:
    services = services_of(request)
    serial = normalise_serial(request.match_info["serial"])
    record = await services.store.certificates.get(serial)
    if record is None:
        await authorize(request, API, permission)
        raise NotFound(f"no certificate with serial {serial}", serial=serial)
    return record, await authorize(request, API, permission, record.ca)


async def show(request: web.Request) -> web.Response:
    record, _ = await _find(request, Permission.READ)
    services = services_of(request)
    return web.json_response(certificate_view(record, services.clock.now(), with_pem=True))


async def _change(request: web.Request, action: str) -> web.Response:
    record, principal = await _find(request, Permission.REVOKE)
    serial = record.serial
    services = services_of(request)
    body = await read_json(request) if request.can_read_body else None
    reason = RevocationReason.UNSPECIFIED
    comment = invalidity = None
    publish_now = False
    if body is not None:
        if action == "revoke":
            text = body.choice("reason", tuple(r.value for r in RevocationReason), default="unspecified")
            reason = RevocationReason(text)
        comment = body.text("comment", max_len=1000)
        invalidity = body.when("invalidity_date")
        publish_now = body.flag("publish_now", default=False)
    change = StatusChange(serial, principal.actor(API), reason, invalidity, comment, publish_now, record.ca)
    revocation = services.revocation
    if action == "revoke":
        updated = await revocation.revoke(change)
    elif action == "hold":
        updated = await revocation.hold(change)
    else:
        updated = await revocation.unhold(change)
    return web.json_response(certificate_view(updated, services.clock.now()))


async def revoke(request: web.Request) -> web.Response:
    return await _change(request, "revoke")


async def hold(request: web.Request) -> web.Response:
    return await _change(request, "hold")


async def unhold(request: web.Request) -> web.Response:
    return await _change(request, "unhold")
