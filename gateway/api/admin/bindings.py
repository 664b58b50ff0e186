"""`/api/v1/...bindings`: which protocol serves which issuing CA, with which profiles and
settings (gateway/bindings.py). A change is live at once in this worker and within the
registry's cache time elsewhere, without a restart."""

from __future__ import annotations

from aiohttp import web

from ca_core.errors import NotFound
from gateway.api.admin.common import API, binding_view, query_text, services_of
from gateway.api.auth import Permission, authorize
from gateway.api.body import read_json
from gateway.bindings import binding_of
from gateway.keys import BINDINGS


async def list_protocols(request: web.Request) -> web.Response:
    await authorize(request, API, Permission.READ)
    frontends = request.config_dict[BINDINGS].frontends
    return web.json_response(
        {
            "items": [
                {"name": f.name, "prefixes": list(f.prefixes), "service": f.service}
                for f in frontends.values()
            ]
        }
    )


async def list_bindings(request: web.Request) -> web.Response:
    principal = await authorize(request, API, Permission.READ)
    ca = query_text(request, "ca", 63)
    protocol = query_text(request, "protocol", 32)
    records = await services_of(request).store.bindings.list(ca=ca, protocol=protocol)
    items = [binding_view(binding_of(r)) for r in records if principal.covers(r.ca)]
    return web.json_response({"items": items})


async def get_binding(request: web.Request) -> web.Response:
    ca, protocol = request.match_info["ca"], request.match_info["protocol"]
    await authorize(request, API, Permission.READ, ca)
    record = await services_of(request).store.bindings.get(protocol, ca)
    if record is None:
        raise NotFound(f"no {protocol} binding on CA {ca}")
    return web.json_response(binding_view(binding_of(record)))


async def put_binding(request: web.Request) -> web.Response:
    ca, protocol = request.match_info["ca"], request.match_info["protocol"]
    principal = await authorize(request, API, Permission.MANAGE, ca)
    body = await read_json(request)
    settings = body.obj("settings")
    binding = await request.config_dict[BINDINGS].put(
        protocol,
        ca,
        dict(settings.data) if settings is not None else None,
        body.texts("allowed_profiles", max_items=64),
        body.text("default_profile", max_len=128),
        body.flag("enabled", default=True),
        principal.actor(API),
    )
    return web.json_response(binding_view(binding))


async def delete_binding(request: web.Request) -> web.Response:
    ca, protocol = request.match_info["ca"], request.match_info["protocol"]
    principal = await authorize(request, API, Permission.MANAGE, ca)
    await request.config_dict[BINDINGS].remove(protocol, ca, principal.actor(API))
    return web.json_response({"removed": {"protocol": protocol, "ca": ca}})
