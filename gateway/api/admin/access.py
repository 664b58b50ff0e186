"""`/api/v1/credentials`: create (every kind), list, revoke; and `/api/v1/whoami`.

Secrets (a token, a Basic password, an EAB HMAC key, a CMP secret, a PKCS#12 and its
password) are in the creation response only; the store keeps hashes or what a MAC check
needs (ca_core/credentials.py).
"""

from __future__ import annotations

import base64
import secrets

from aiohttp import web

from ca_core.credentials import ROLES, Kind
from gateway.api.admin.common import API, credential_view, query_text, services_of
from gateway.api.auth import AUTHENTICATOR, PRINCIPAL, Permission, authorize, require_every_ca
from gateway.api.body import read_json
from gateway.api.errors import bad_request
from gateway.client_credentials import issue_client_credential


async def whoami(request: web.Request) -> web.Response:
    principal = await authorize(request, API, Permission.READ)
    return web.json_response(
        {
            "credential": principal.credential_id,
            "name": principal.name,
            "role": principal.role,
            "via": principal.via,
            "cas": sorted(principal.cas) if principal.cas is not None else None,
        }
    )


async def list_credentials(request: web.Request) -> web.Response:
    principal = await authorize(request, API, Permission.AUDIT)
    await require_every_ca(request, API, principal, "list credentials")
    kind = query_text(request, "kind", 16)
    if kind is not None and kind not in Kind.ALL:
        raise bad_request(f"kind must be one of {', '.join(Kind.ALL)}", "kind")
    include_revoked = request.query.get("include_revoked", "false").lower() == "true"
    records = await services_of(request).credentials.list(kind, include_revoked)
    return web.json_response({"items": [credential_view(r) for r in records]})


async def create_credential(request: web.Request) -> web.Response:
    principal = await authorize(request, API, Permission.MANAGE)
    await require_every_ca(request, API, principal, "create credentials")
    body = await read_json(request)
    kind = body.choice("kind", Kind.ALL, required=True)
    name = body.text("name", required=True, max_len=128)
    role = body.choice("role", ROLES, default="officer")
    ca = body.text("ca", max_len=63)
    protocol = body.text("protocol", max_len=32)
    password = body.text("password", max_len=256)
    scope: dict[str, object] = {}
    if ca:
        scope["ca"] = ca
    if protocol:
        scope["protocol"] = protocol
    creds = services_of(request).credentials
    actor = principal.actor(API)
    if kind == Kind.TOKEN:
        issued = await creds.create_token(name, role, actor, scope)
        view = {"credential": credential_view(issued.credential), "token": issued.secret}
    elif kind == Kind.BASIC:
        issued = await creds.create_basic(name, scope, password, actor)
        view = {"credential": credential_view(issued.credential), "username": name, "password": issued.secret}
    elif kind == Kind.EAB:
        kid, key = await creds.create_eab(name, scope, actor)
        records = await creds.list(Kind.EAB)
        record = next(r for r in records if r.lookup == f"eab:{kid}")
        view = {"credential": credential_view(record), "kid": kid, "hmac_key": key}
    elif kind == Kind.SHARED_SECRET:
        issued = await creds.create_shared_secret(name, scope, password, actor)
        view = {"credential": credential_view(issued.credential), "reference": name, "secret": issued.secret}
    else:
        if not ca:
            raise bad_request("a client-cert credential needs ca: the issuing CA that certifies it", "ca")
        p12_password = password or secrets.token_urlsafe(12)
        record, p12 = await issue_client_credential(
            services_of(request), ca, name, role, {"cas": [ca]}, p12_password, actor
        )
        view = {
            "credential": credential_view(record),
            "p12": base64.b64encode(p12).decode(),
            "p12_password": p12_password,
        }
    return web.json_response(view, status=201)


async def revoke_credential(request: web.Request) -> web.Response:
    principal = await authorize(request, API, Permission.MANAGE)
    await require_every_ca(request, API, principal, "revoke credentials")
    credential_id = request.match_info["id"]
    await services_of(request).credentials.revoke(credential_id, principal.actor(API))
    request.config_dict[AUTHENTICATOR].forget()
    return web.json_response({"revoked": credential_id, "by": request[PRINCIPAL].name})
