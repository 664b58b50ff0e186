"""The CA Gateway REST API v1, served at `/cagw/v1` (research notes section 4)."""

from __future__ import annotations

from aiohttp import web

from gateway.api.cagw import routes as r
from gateway.api.routing import Route, build

PREFIX = "/cagw/v1"
_CA = "/certificate-authorities/{caId}"

ROUTES: tuple[Route, ...] = (
    Route("GET", "/openapi.json", r.openapi, "openapi"),
    Route("GET", "/certificate-authorities", r.list_cas, "listCertificateAuthorities"),
    Route("GET", _CA, r.get_ca, "getCertificateAuthority"),
    Route("GET", _CA + "/properties", r.ca_properties, "getCertificateAuthorityProperties"),
    Route("GET", _CA + "/profiles", r.list_profiles, "listProfiles"),
    Route("GET", _CA + "/profiles/{profileId}", r.get_profile, "getProfile"),
    Route("POST", _CA + "/enrollments", r.enroll, "enroll"),
    Route("GET", _CA + "/certificates/{serial}", r.get_certificate, "getCertificate"),
    Route("POST", _CA + "/certificates/{serial}/actions", r.certificate_action, "certificateAction"),
    Route("POST", _CA + "/subjects/{subjectDn}/actions", r.subject_action, "subjectAction"),
    Route("GET", _CA + "/certificate-events", r.certificate_events, "listCertificateEvents"),
    Route("GET", _CA + "/domains", r.not_implemented, "listDomains"),
    Route("POST", _CA + "/recovery-requests", r.not_implemented, "createRecoveryRequest"),
)


def application() -> web.Application:
    return build(ROUTES, [r.errors])
