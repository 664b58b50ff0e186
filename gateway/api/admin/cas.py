"""`/api/v1/cas`: create (root, issuing, external root, issuing under an external root),
list, show, delete; export the CSR and import the certificate of an issuing CA under an
external root; the services (profile sets) an issuing CA enables."""

from __future__ import annotations

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ca_core.model import KeyAlgorithm
from gateway.api.admin.common import API, ca_view, services_of
from gateway.api.auth import Permission, authorize, children_of, require_every_ca
from gateway.api.body import Fields, decode_base64, read_json
from gateway.api.errors import bad_request

KINDS = ("root", "issuing", "external-root", "external-issuing")


def certificate_der(fields: Fields, key: str) -> bytes:
    """A certificate given as PEM text or base64 DER."""
    text = fields.text(key, required=True, max_len=64 * 1024)
    if text.strip().startswith("-----BEGIN"):
        try:
            cert = x509.load_pem_x509_certificate(text.strip().encode())
        except ValueError:
            raise bad_request(f"{key} is not a PEM certificate", key, "bad_certificate") from None
        return cert.public_bytes(serialization.Encoding.DER)
    der = decode_base64(text, key)
    try:
        x509.load_der_x509_certificate(der)
    except ValueError:
        raise bad_request(f"{key} is not a DER certificate", key, "bad_certificate") from None
    return der


async def list_cas(request: web.Request) -> web.Response:
    principal = await authorize(request, API, Permission.READ)
    include_deleted = request.query.get("include_deleted", "false").lower() == "true"
    records = await services_of(request).authority.list(include_deleted=include_deleted)
    visible = [
        r
        for r in records
        if principal.covers(r.id) or any(principal.covers(c.id) for c in records if c.parent_id == r.id)
    ]
    return web.json_response({"items": [ca_view(r) for r in visible]})


async def create_ca(request: web.Request) -> web.Response:
    principal = await authorize(request, API, Permission.MANAGE)
    await require_every_ca(request, API, principal, "create CAs")
    body = await read_json(request)
    kind = body.choice("kind", KINDS, required=True)
    ca_id = body.text("id", required=True, max_len=63)
    authority = services_of(request).authority
    actor = principal.actor(API)
    if kind == "external-root":
        ca = await authority.register_external_root(ca_id, certificate_der(body, "certificate"), actor)
        return web.json_response(ca_view(ca, with_pem=True), status=201)
    subject = body.text("subject", required=True, max_len=1024)
    try:
        algorithm = KeyAlgorithm(body.text("key_algorithm", max_len=16) or "ec-p256")
    except ValueError:
        names = ", ".join(k.value for k in KeyAlgorithm)
        raise bad_request(f"key_algorithm must be one of {names}", "key_algorithm") from None
    ocsp = body.flag("ocsp", default=False)
    services = body.texts("services") or []
    if kind == "root":
        years = body.integer("validity_years", 1, 20, default=20)
        ca = await authority.create_root(ca_id, subject, algorithm, years, ocsp, actor)
    elif kind == "issuing":
        parent = body.text("parent", required=True, max_len=63)
        years = body.integer("validity_years", 1, 10, default=10)
        ca = await authority.create_issuing(ca_id, parent, subject, algorithm, services, ocsp, years, actor)
    else:
        parent = body.text("parent", required=True, max_len=63)
        ca = await authority.create_external_issuing(ca_id, parent, subject, algorithm, services, ocsp, actor)
    return web.json_response(ca_view(ca, with_pem=True), status=201)


async def get_ca(request: web.Request) -> web.Response:
    ca_id = request.match_info["ca"]
    services = services_of(request)
    await authorize(request, API, Permission.READ, ca_id, await children_of(services, ca_id))
    ca = await services.authority.get(ca_id, fresh=True)
    return web.json_response(ca_view(ca, with_pem=True))


async def delete_ca(request: web.Request) -> web.Response:
    ca_id = request.match_info["ca"]
    principal = await authorize(request, API, Permission.MANAGE, ca_id)
    await services_of(request).authority.delete(ca_id, principal.actor(API))
    return web.json_response({"deleted": ca_id})


async def export_csr(request: web.Request) -> web.Response:
    ca_id = request.match_info["ca"]
    principal = await authorize(request, API, Permission.MANAGE, ca_id)
    der = await services_of(request).authority.export_csr(ca_id, principal.actor(API))
    pem = x509.load_der_x509_csr(der).public_bytes(serialization.Encoding.PEM).decode()
    return web.json_response({"ca": ca_id, "csr_pem": pem})


async def import_certificate(request: web.Request) -> web.Response:
    ca_id = request.match_info["ca"]
    principal = await authorize(request, API, Permission.MANAGE, ca_id)
    body = await read_json(request)
    der = certificate_der(body, "certificate")
    ca = await services_of(request).authority.import_certificate(ca_id, der, principal.actor(API))
    return web.json_response(ca_view(ca, with_pem=True))


async def get_services(request: web.Request) -> web.Response:
    ca_id = request.match_info["ca"]
    await authorize(request, API, Permission.READ, ca_id)
    ca = await services_of(request).authority.get(ca_id, fresh=True)
    return web.json_response({"ca": ca_id, "services": list(ca.services)})


async def set_services(request: web.Request) -> web.Response:
    ca_id = request.match_info["ca"]
    principal = await authorize(request, API, Permission.MANAGE, ca_id)
    body = await read_json(request)
    wanted = body.texts("services", required=True, max_items=32)
    ca = await services_of(request).authority.set_services(ca_id, wanted, principal.actor(API))
    return web.json_response({"ca": ca_id, "services": list(ca.services)})
