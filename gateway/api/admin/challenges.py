"""`/api/v1/cas/{ca}/bindings/{protocol}/challenges`: one-time challengePasswords for a
binding that uses dynamic challenges (SCEP, as NDES hands them out). The front-end says
whether it has them (an optional `create_challenge`, see protocols/_shared/web.py); the
secret is in this response only (the store keeps its hash)."""

from __future__ import annotations

from aiohttp import web

from ca_core.errors import NotFound
from gateway.api.admin.common import API, iso, services_of
from gateway.api.auth import Permission, authorize
from gateway.api.body import read_json
from gateway.keys import BINDINGS


async def create(request: web.Request) -> web.Response:
    ca, protocol = request.match_info["ca"], request.match_info["protocol"]
    principal = await authorize(request, API, Permission.ISSUE, ca)
    frontend = request.config_dict[BINDINGS].frontends.get(protocol)
    create_challenge = getattr(frontend, "create_challenge", None)
    if create_challenge is None:
        raise NotFound(f"the {protocol} front-end has no one-time challenges", ca=ca)
    body = await read_json(request)
    issued = await create_challenge(
        services_of(request),
        ca,
        body.text("subject", max_len=1024),
        body.integer("ttl_seconds", 1, 2**31 - 1),  # the front-end checks its own bounds
        principal.actor(API),
    )
    view = {
        "challenge": issued.challenge,
        "id": issued.id,
        "ca": issued.ca,
        "protocol": protocol,
        "subject": issued.subject,
        "expires_at": iso(issued.expires_at),
    }
    return web.json_response(view, status=201)
