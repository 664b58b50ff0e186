"""ceg's own administration API, served at `/api/v1`: CAs, services, gateway bindings,
credentials, one-time enrolment challenges, certificates, approvals and the audit log. Errors are
`{"error": {"code", "message", "target"}, "request_id"}` with the status chosen by
gateway/api/errors.py."""

from __future__ import annotations

from aiohttp import web

from gateway.api.admin import access, approvals, audit, bindings, cas, certificates, challenges
from gateway.api.admin.common import API, errors, services_of
from gateway.api.auth import Permission, authorize
from gateway.api.openapi import admin_document
from gateway.api.routing import Route, build

PREFIX = "/api/v1"


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(admin_document())


async def list_profiles(request: web.Request) -> web.Response:
    await authorize(request, API, Permission.READ)
    catalogue = services_of(request).catalogue
    return web.json_response(
        {
            "items": [
                {
                    "id": p.id,
                    "service": p.service,
                    "description": p.description,
                    "key_usage": list(p.key_usage),
                    "extended_key_usage": [o.dotted_string for o in p.extended_key_usage],
                    "default_validity_days": p.validity.default_days,
                    "max_validity_days": p.validity.max_days,
                }
                for p in catalogue.public()
                if not p.ca
            ]
        }
    )


ROUTES: tuple[Route, ...] = (
    Route("GET", "/openapi.json", openapi, "openapi"),
    Route("GET", "/whoami", access.whoami, "whoami"),
    Route("GET", "/profiles", list_profiles, "listProfiles"),
    Route("GET", "/protocols", bindings.list_protocols, "listProtocols"),
    Route("GET", "/cas", cas.list_cas, "listCas"),
    Route("POST", "/cas", cas.create_ca, "createCa"),
    Route("GET", "/cas/{ca}", cas.get_ca, "getCa"),
    Route("DELETE", "/cas/{ca}", cas.delete_ca, "deleteCa"),
    Route("GET", "/cas/{ca}/csr", cas.export_csr, "exportCaCsr"),
    Route("PUT", "/cas/{ca}/certificate", cas.import_certificate, "importCaCertificate"),
    Route("GET", "/cas/{ca}/services", cas.get_services, "getCaServices"),
    Route("PUT", "/cas/{ca}/services", cas.set_services, "setCaServices"),
    Route("GET", "/bindings", bindings.list_bindings, "listBindings"),
    Route("GET", "/cas/{ca}/bindings/{protocol}", bindings.get_binding, "getBinding"),
    Route("PUT", "/cas/{ca}/bindings/{protocol}", bindings.put_binding, "putBinding"),
    Route("DELETE", "/cas/{ca}/bindings/{protocol}", bindings.delete_binding, "deleteBinding"),
    Route("POST", "/cas/{ca}/bindings/{protocol}/challenges", challenges.create, "createChallenge"),
    Route("GET", "/credentials", access.list_credentials, "listCredentials"),
    Route("POST", "/credentials", access.create_credential, "createCredential"),
    Route("DELETE", "/credentials/{id}", access.revoke_credential, "revokeCredential"),
    Route("GET", "/certificates", certificates.search, "searchCertificates"),
    Route("POST", "/certificates", certificates.issue, "issueCertificate"),
    Route("GET", "/certificates/{serial}", certificates.show, "getCertificate"),
    Route("POST", "/certificates/{serial}/revoke", certificates.revoke, "revokeCertificate"),
    Route("POST", "/certificates/{serial}/hold", certificates.hold, "holdCertificate"),
    Route("POST", "/certificates/{serial}/unhold", certificates.unhold, "unholdCertificate"),
    Route("GET", "/approvals", approvals.list_approvals, "listApprovals"),
    Route("GET", "/approvals/{id}", approvals.get_approval, "getApproval"),
    Route("POST", "/approvals/{id}/approve", approvals.approve, "approveRequest"),
    Route("POST", "/approvals/{id}/reject", approvals.reject, "rejectRequest"),
    Route("GET", "/audit", audit.list_entries, "listAuditEntries"),
    Route("GET", "/audit/verify", audit.verify, "verifyAuditLog"),
)


def application() -> web.Application:
    return build(ROUTES, [errors])
