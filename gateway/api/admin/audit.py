"""`/api/v1/audit`: read the hash-chained audit log and verify it (ca_core/audit.py)."""

from __future__ import annotations

from aiohttp import web

from ca_core.audit import parse_anchor
from gateway.api.admin.common import API, iso, query_int, query_text, services_of
from gateway.api.auth import Permission, authorize, require_every_ca


async def list_entries(request: web.Request) -> web.Response:
    principal = await authorize(request, API, Permission.AUDIT)
    ca = query_text(request, "ca", 63)
    if ca is None:
        await require_every_ca(request, API, principal, "read the whole audit log (name a CA)")
    elif not principal.covers(ca):
        await authorize(request, API, Permission.AUDIT, ca)
    after = query_int(request, "after", 0, 0, 2**62)
    limit = query_int(request, "limit", 100, 1, 1000)
    action = query_text(request, "action", 64)
    serial = query_text(request, "serial", 64)
    entries = await services_of(request).store.audit.entries(
        after_seq=after, limit=limit, ca=ca, actions=[action] if action else None, serial=serial
    )
    return web.json_response(
        {
            "items": [
                {
                    "seq": e.seq,
                    "at": iso(e.at),
                    "action": e.action,
                    "actor": e.actor,
                    "ca": e.ca_id,
                    "serial": e.serial,
                    "detail": e.detail,
                    "hash": e.hash,
                }
                for e in entries
            ],
            "next_after": entries[-1].seq if entries else after,
        }
    )


async def verify(request: web.Request) -> web.Response:
    principal = await authorize(request, API, Permission.AUDIT)
    await require_every_ca(request, API, principal, "verify the whole audit log")
    anchors = dict(parse_anchor(text) for text in request.query.getall("anchor", [])[:100])
    problems = await services_of(request).store.audit.verify(anchors)
    return web.json_response(
        {
            "ok": not problems,
            "problems": [{"seq": p.seq, "problem": p.problem} for p in problems],
            "checked_by": principal.name,
        }
    )
