"""`/api/v1/approvals`: requests waiting for an officer (ca_core/approvals.py)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ca_core.approvals import ApprovalState, PendingRequest
from gateway.api.admin.common import API, iso, query_text, services_of
from gateway.api.auth import Permission, authorize
from gateway.api.body import read_json
from gateway.api.errors import bad_request

STATES = (*(s.value for s in ApprovalState), "all")


def approval_view(item: PendingRequest) -> dict[str, Any]:
    return {
        "id": item.id,
        "ca": item.ca,
        "profile": item.profile,
        "protocol": item.protocol,
        "state": item.state.value,
        "subject": item.subject,
        "sans": list(item.sans),
        "requester": item.request.requester.principal,
        "created_at": iso(item.created_at),
        "serial": item.serial,
        "reason": item.reason,
        "decided_by": item.decided_by,
        "decided_at": iso(item.decided_at),
    }


async def list_approvals(request: web.Request) -> web.Response:
    principal = await authorize(request, API, Permission.READ)
    state_text = query_text(request, "state", 16) or "pending"
    if state_text not in STATES:
        raise bad_request(f"state must be one of {', '.join(STATES)}", "state")
    state = None if state_text == "all" else ApprovalState(state_text)
    ca = query_text(request, "ca", 63)
    items = await services_of(request).approvals.list(state, ca)
    return web.json_response({"items": [approval_view(i) for i in items if principal.covers(i.ca)]})


async def _pending(request: web.Request, permission: Permission) -> tuple[PendingRequest, str]:
    services = services_of(request)
    await authorize(request, API, permission)
    item = await services.approvals.get(request.match_info["id"])
    principal = await authorize(request, API, permission, item.ca)
    return item, principal.actor(API)


async def get_approval(request: web.Request) -> web.Response:
    item, _ = await _pending(request, Permission.READ)
    return web.json_response(approval_view(item))


async def approve(request: web.Request) -> web.Response:
    item, actor = await _pending(request, Permission.APPROVE)
    services = services_of(request)
    issued = await services.approvals.approve(item.id, actor)
    updated = await services.approvals.get(item.id)
    return web.json_response({**approval_view(updated), "serial": issued.serial_hex})


async def reject(request: web.Request) -> web.Response:
    item, actor = await _pending(request, Permission.APPROVE)
    body = await read_json(request)
    reason = body.text("reason", required=True, max_len=1000)
    updated = await services_of(request).approvals.reject(item.id, actor, reason)
    return web.json_response(approval_view(updated))
