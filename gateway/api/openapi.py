"""The OpenAPI 3.1 documents of both APIs, built as data.

`tests/unit/gateway/api/test_openapi.py` proves each document and its route table agree
(every route documented, every documented operation routed), and runs schemathesis
against both. Shapes of the CA Gateway API follow the research notes, section 4.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from ca_core.model import CertStatus, KeyAlgorithm, RevocationReason, Service

Schema = dict[str, Any]

STRING: Schema = {"type": "string"}
BOOL: Schema = {"type": "boolean"}
INT: Schema = {"type": "integer"}
NULLABLE_STRING: Schema = {"type": ["string", "null"]}
OBJECT: Schema = {"type": "object"}


def obj(properties: dict[str, Schema], required: tuple[str, ...] = (), extra: bool = True) -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    if not extra:
        schema["additionalProperties"] = False
    return schema


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def path_param(name: str, description: str, example: str) -> Schema:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "example": example},
    }


def query_param(name: str, description: str, schema: Schema | None = None) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or STRING,
    }


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def operation(
    op_id: str,
    summary: str,
    tag: str,
    ok: tuple[int, Schema],
    errors: tuple[int, ...],
    error_schema: Schema,
    params: tuple[Schema, ...] = (),
    body: Schema | None = None,
    public: bool = False,
) -> Schema:
    op: Schema = {"operationId": op_id, "summary": summary, "tags": [tag]}
    if params:
        op["parameters"] = list(params)
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    responses: Schema = {str(ok[0]): _json(ok[1], "success")}
    for status in sorted(set(errors) | ({401, 403} if not public else set())):
        responses[str(status)] = _json(error_schema, _REASONS.get(status, "error"))
    op["responses"] = responses
    if public:
        op["security"] = []
    return op


_REASONS = {
    400: "the request is malformed (bad JSON, a missing or invalid field)",
    401: "no credential, or one that is unknown, expired or revoked",
    403: "the credential's role or CA scope does not cover this call",
    404: "no such CA, profile, certificate or resource",
    405: "method not allowed on this resource",
    409: "the object's state does not allow this (already revoked, CA not active, ...)",
    413: "the request body is too large",
    422: "well formed, but refused by the profile or CA policy",
    429: "issuance rate limit reached; see Retry-After",
    501: "not implemented on this gateway",
}

_SECURITY_SCHEMES: Schema = {
    "mutualTLS": {
        "type": "mutualTLS",
        "description": "A TLS client certificate registered as a client-cert credential "
        "(PKCS#12 from `ceg credential create --kind client-cert` or POST /api/v1/credentials).",
    },
    "bearer": {"type": "http", "scheme": "bearer", "description": "An API token `ceg_<id>_<secret>`."},
}


# --- CA Gateway REST API v1 ------------------------------------------------------------------

_CA_ID = path_param("caId", "CA id (slug)", "issuing")
_SERIAL = path_param("serial", "certificate serial number in hex, no separators", "5b9ba13d")
_FIELDS = query_param(
    "$fields", "optional members to add (`ca.certificate,ca.chain`) or remove (`-events.certificate`)"
)
_CERT_DATA = obj({"certificateData": STRING})


def _cagw_schemas() -> Schema:
    message = obj({"code": STRING, "message": STRING, "target": STRING, "value": STRING})
    ca = obj(
        {
            "id": STRING,
            "name": STRING,
            "properties": obj(
                {
                    "issuer_dn": STRING,
                    "connector_name": STRING,
                    "type": STRING,
                    "state": STRING,
                    "key_algorithm": NULLABLE_STRING,
                    "ocsp": BOOL,
                    "services": array(STRING),
                }
            ),
            "certificate": _CERT_DATA,
            "chain": array(_CERT_DATA),
        },
        ("id", "name", "properties"),
    )
    requirement = obj({"name": STRING, "description": STRING, "required": BOOL})
    profile = obj(
        {
            "id": STRING,
            "name": STRING,
            "protocols": array(STRING),
            "subjectVariableRequirements": array(requirement),
            "subjectAltNameRequirements": array(obj({"type": STRING, "required": BOOL})),
            "requestedProperties": array(requirement),
            "properties": OBJECT,
        },
        ("id", "name"),
    )
    name_value = obj({"type": STRING, "value": STRING}, ("type", "value"))
    enrollment_request = obj(
        {
            "profileId": {"type": "string", "example": "privatessl-tls-server"},
            "requiredFormat": obj(
                {
                    "format": {"type": "string", "enum": ["X509", "PEM", "PKCS12"]},
                    "protection": obj(
                        {"type": {"type": "string", "enum": ["PasswordProtection"]}, "password": STRING}
                    ),
                }
            ),
            "csr": {
                "type": "string",
                "description": "base64 DER PKCS#10 (PEM accepted); omit for keys generated here",
            },
            "subjectVariables": array(name_value),
            "subjectAltNames": array(name_value),
            "optionalCertificateRequestDetails": obj(
                {
                    "subjectDn": STRING,
                    "validityPeriod": {
                        "type": "string",
                        "description": "ISO 8601 duration (PT60M, P90D), interval start/end, or end date-time",
                    },
                    "useSANFromCSR": BOOL,
                    "extensions": array(
                        obj({"oid": STRING, "critical": BOOL, "value": STRING}, ("oid", "value"))
                    ),
                }
            ),
            "includeCa": {"type": ["boolean", "string"]},
            "keyAlgorithm": {
                "type": "string",
                "enum": [k.value for k in KeyAlgorithm],
                "description": "ceg extension: key type generated for PKCS12 without a CSR (default ec-p256)",
            },
            "properties": OBJECT,
        },
        ("profileId",),
    )
    enrollment = obj(
        {
            "type": {"const": "EnrollmentResponse"},
            "enrollment": obj(
                {
                    "id": STRING,
                    "serialNumber": STRING,
                    "subjectName": STRING,
                    "status": STRING,
                    "body": STRING,
                    "chain": array(_CERT_DATA),
                    "validityPeriod": STRING,
                    "properties": OBJECT,
                },
                ("serialNumber", "body", "status"),
            ),
        },
        ("type", "enrollment"),
    )
    reasons = [r.value for r in RevocationReason]
    action_request = obj(
        {
            "action": obj(
                {
                    "type": {
                        "type": "string",
                        "enum": [
                            "RevokeAction",
                            "HoldAction",
                            "UnholdAction",
                            "ReactivateAction",
                            "RenewAction",
                            "ReissueAction",
                        ],
                    },
                    "reason": {"type": "string", "enum": reasons},
                    "comment": STRING,
                    "issueCrl": {"type": ["boolean", "string"]},
                    "succeedIfAlreadyInRequestedState": {"type": ["boolean", "string"]},
                    "compromiseDate": STRING,
                    "properties": OBJECT,
                },
                ("type",),
            )
        },
        ("action",),
    )
    action = obj(
        {
            "type": {"const": "ActionResponse"},
            "action": obj(
                {
                    "type": STRING,
                    "id": STRING,
                    "status": {"type": "string", "enum": ["ACCEPTED", "REJECTED", "COMPLETED"]},
                    "reason": NULLABLE_STRING,
                    "comment": NULLABLE_STRING,
                    "succeedIfAlreadyInRequestedState": BOOL,
                    "properties": OBJECT,
                },
                ("type", "id", "status"),
            ),
        },
        ("type", "action"),
    )
    certificate = obj(
        {
            "type": {"const": "CertificateResponse"},
            "certificate": obj(
                {
                    "status": {"type": "string", "enum": [s.value for s in CertStatus]},
                    "serialNumber": STRING,
                    "issuerName": STRING,
                    "subjectName": STRING,
                    "validityPeriod": STRING,
                    "certificateData": STRING,
                    "revocationInfo": OBJECT,
                },
                ("status", "serialNumber", "certificateData"),
            ),
        },
        ("type", "certificate"),
    )
    event = obj(
        {
            "action": {"type": "string", "enum": ["issued", "revoked", "held", "unheld", "expired"]},
            "event": INT,
            "eventDate": STRING,
            "serialNumber": STRING,
            "reason": NULLABLE_STRING,
            "certificate": STRING,
        },
        ("action", "eventDate", "serialNumber"),
    )
    events = obj(
        {
            "type": {"const": "CertificateEventsResponse"},
            "events": array(event),
            "nextPageIndex": STRING,
            "morePages": BOOL,
            "hasMore": BOOL,
            "metadata": obj({"currentCount": INT, "currentLimit": INT, "currentOffset": INT}),
        },
        ("type", "events", "nextPageIndex", "morePages", "hasMore"),
    )
    error = obj(
        {
            "type": {"const": "ErrorResponse"},
            "error": obj(
                {
                    "code": STRING,
                    "message": STRING,
                    "target": STRING,
                    "value": STRING,
                    "details": array(OBJECT),
                },
                ("code", "message"),
            ),
        },
        ("type", "error"),
    )
    return {
        "Message": message,
        "CA": ca,
        "CAListResponse": obj(
            {"type": {"const": "CAListResponse"}, "caList": array(ref("CA"))}, ("type", "caList")
        ),
        "CAResponse": obj({"type": {"const": "CAResponse"}, "ca": ref("CA")}, ("type", "ca")),
        "CAPropertiesResponse": obj(
            {"type": {"const": "CAPropertiesResponse"}, "CAPropertiesInformation": OBJECT}, ("type",)
        ),
        "Profile": profile,
        "ProfilesResponse": obj(
            {
                "type": {"const": "ProfilesResponse"},
                "profiles": array(ref("Profile")),
                "message": ref("Message"),
            },
            ("type", "profiles"),
        ),
        "ProfileResponse": obj(
            {"type": {"const": "ProfileResponse"}, "profile": ref("Profile")}, ("type", "profile")
        ),
        "EnrollmentRequest": enrollment_request,
        "EnrollmentResponse": enrollment,
        "ActionRequest": action_request,
        "ActionResponse": action,
        "CertificateResponse": certificate,
        "CertificateEventsResponse": events,
        "ErrorResponse": error,
    }


@cache
def cagw_document() -> Schema:
    err = ref("ErrorResponse")
    paths: Schema = {
        "/openapi.json": {
            "get": operation("openapi", "This document", "General", (200, OBJECT), (), err, public=True)
        },
        "/certificate-authorities": {
            "get": operation(
                "listCertificateAuthorities",
                "CAs this credential may use (and their parents)",
                "CertificateAuthority",
                (200, ref("CAListResponse")),
                (),
                err,
                (_FIELDS,),
            )
        },
        "/certificate-authorities/{caId}": {
            "get": operation(
                "getCertificateAuthority",
                "One CA; `$fields=ca.certificate,ca.chain` adds its certificate and chain",
                "CertificateAuthority",
                (200, ref("CAResponse")),
                (404,),
                err,
                (_CA_ID, _FIELDS),
            )
        },
        "/certificate-authorities/{caId}/properties": {
            "get": operation(
                "getCertificateAuthorityProperties",
                "CA properties",
                "CertificateAuthority",
                (200, ref("CAPropertiesResponse")),
                (404,),
                err,
                (_CA_ID, query_param("fields", "property names (all are returned)")),
            )
        },
        "/certificate-authorities/{caId}/profiles": {
            "get": operation(
                "listProfiles",
                "Profiles this CA offers, with subject and SAN requirements",
                "CertificateAuthority",
                (200, ref("ProfilesResponse")),
                (404,),
                err,
                (_CA_ID,),
            )
        },
        "/certificate-authorities/{caId}/profiles/{profileId}": {
            "get": operation(
                "getProfile",
                "One profile",
                "CertificateAuthority",
                (200, ref("ProfileResponse")),
                (404,),
                err,
                (_CA_ID, path_param("profileId", "profile id", "privatessl-tls-server")),
            )
        },
        "/certificate-authorities/{caId}/enrollments": {
            "post": operation(
                "enroll",
                "Issue a certificate from a CSR (X509 or PEM), or generate the key here (PKCS12)",
                "Enrollment",
                (200, ref("EnrollmentResponse")),
                (400, 404, 409, 413, 422, 429),
                err,
                (_CA_ID,),
                ref("EnrollmentRequest"),
            )
        },
        "/certificate-authorities/{caId}/certificates/{serial}": {
            "get": operation(
                "getCertificate",
                "A certificate by serial number",
                "Certificate",
                (200, ref("CertificateResponse")),
                (400, 404),
                err,
                (_CA_ID, _SERIAL),
            )
        },
        "/certificate-authorities/{caId}/certificates/{serial}/actions": {
            "post": operation(
                "certificateAction",
                "Revoke, hold or unhold a certificate (RFC 5280 reason names; issueCrl publishes now)",
                "Certificate",
                (200, ref("ActionResponse")),
                (400, 404, 409, 501),
                err,
                (_CA_ID, _SERIAL),
                ref("ActionRequest"),
            )
        },
        "/certificate-authorities/{caId}/subjects/{subjectDn}/actions": {
            "post": operation(
                "subjectAction",
                "Apply an action to every live certificate of a subject DN",
                "Subject",
                (200, ref("ActionResponse")),
                (400, 404, 409, 501),
                err,
                (_CA_ID, path_param("subjectDn", "URL-encoded subject DN", "CN=host.example")),
                ref("ActionRequest"),
            )
        },
        "/certificate-authorities/{caId}/certificate-events": {
            "get": operation(
                "listCertificateEvents",
                "Certificate events (issued, revoked, held, unheld, expired), paged",
                "CertificateEvents",
                (200, ref("CertificateEventsResponse")),
                (400, 404),
                err,
                (
                    _CA_ID,
                    query_param("startDate", "first call: events at or after this ISO 8601 time"),
                    query_param("preferredPageSize", "events per page (at most 50)", {"type": "integer"}),
                    query_param("nextPageIndex", "opaque index from the previous page"),
                    _FIELDS,
                ),
            )
        },
        "/certificate-authorities/{caId}/domains": {
            "get": operation(
                "listDomains",
                "Domains (not offered by ceg)",
                "General",
                (200, OBJECT),
                (501,),
                err,
                (_CA_ID,),
            )
        },
        "/certificate-authorities/{caId}/recovery-requests": {
            "post": operation(
                "createRecoveryRequest",
                "Key recovery (not offered by ceg: it keeps no subscriber keys)",
                "Recovery",
                (200, OBJECT),
                (501,),
                err,
                (_CA_ID,),
                OBJECT,
            )
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ceg CA Gateway-compatible API",
            "version": "1.0.0",
            "description": "The CA Gateway REST API v1, served by ceg's embedded CA. Every body carries a "
            "`type` discriminator; errors are `ErrorResponse` bodies.",
        },
        "servers": [{"url": "/cagw/v1"}],
        "security": [{"mutualTLS": []}, {"bearer": []}],
        "paths": paths,
        "components": {"schemas": _cagw_schemas(), "securitySchemes": _SECURITY_SCHEMES},
    }


# --- ceg administration API -------------------------------------------------------------------------


def _admin_schemas() -> Schema:
    ca = obj(
        {
            "id": STRING,
            "kind": {"type": "string", "enum": ["root", "issuing", "external-root"]},
            "state": STRING,
            "subject": STRING,
            "parent": NULLABLE_STRING,
            "key_algorithm": NULLABLE_STRING,
            "not_before": NULLABLE_STRING,
            "not_after": NULLABLE_STRING,
            "ocsp": BOOL,
            "services": array(STRING),
            "certificate_pem": NULLABLE_STRING,
        },
        ("id", "kind", "state", "subject"),
    )
    certificate = obj(
        {
            "serial": STRING,
            "ca": STRING,
            "profile": STRING,
            "subject": STRING,
            "sans": array(STRING),
            "status": {"type": "string", "enum": [s.value for s in CertStatus]},
            "not_before": STRING,
            "not_after": STRING,
            "issued_at": STRING,
            "revoked_at": NULLABLE_STRING,
            "revocation_reason": NULLABLE_STRING,
            "requester": OBJECT,
            "certificate_pem": STRING,
            "chain_pem": array(STRING),
        },
        ("serial", "ca", "profile", "status"),
    )
    binding = obj(
        {
            "protocol": STRING,
            "ca": STRING,
            "enabled": BOOL,
            "allowed_profiles": array(STRING),
            "default_profile": STRING,
            "settings": OBJECT,
        },
        ("protocol", "ca", "enabled", "allowed_profiles", "default_profile"),
    )
    credential = obj(
        {
            "id": STRING,
            "kind": STRING,
            "name": STRING,
            "role": STRING,
            "scope": OBJECT,
            "created_at": STRING,
            "expires_at": NULLABLE_STRING,
            "revoked_at": NULLABLE_STRING,
        },
        ("id", "kind", "name", "role"),
    )
    approval = obj(
        {
            "id": STRING,
            "ca": STRING,
            "profile": STRING,
            "protocol": STRING,
            "state": {"type": "string", "enum": ["pending", "issued", "rejected"]},
            "subject": STRING,
            "sans": array(STRING),
            "serial": NULLABLE_STRING,
            "reason": NULLABLE_STRING,
        },
        ("id", "ca", "profile", "state"),
    )
    error = obj(
        {
            "error": obj({"code": STRING, "message": STRING, "target": STRING}, ("code", "message")),
            "request_id": NULLABLE_STRING,
        },
        ("error",),
    )
    return {
        "CA": ca,
        "CAList": obj({"items": array(ref("CA"))}, ("items",)),
        "CreateCA": obj(
            {
                "kind": {"type": "string", "enum": ["root", "issuing", "external-root", "external-issuing"]},
                "id": {"type": "string", "example": "team-issuing"},
                "subject": {"type": "string", "example": "CN=Team Issuing CA,O=Example"},
                "key_algorithm": {"type": "string", "enum": [k.value for k in KeyAlgorithm]},
                "parent": {
                    "type": "string",
                    "description": "the root (issuing) or external root (external-issuing)",
                },
                "services": array({"type": "string", "enum": [s.value for s in Service]}),
                "ocsp": BOOL,
                "validity_years": INT,
                "certificate": {"type": "string", "description": "external-root: PEM or base64 DER"},
            },
            ("kind", "id"),
        ),
        "Certificate": certificate,
        "CertificatePage": obj(
            {"items": array(ref("Certificate")), "total": INT, "offset": INT, "limit": INT, "has_more": BOOL},
            ("items", "total"),
        ),
        "IssueRequest": obj(
            {
                "ca": {"type": "string", "example": "issuing"},
                "profile": {"type": "string", "example": "privatessl-tls-server"},
                "csr": {"type": "string", "description": "PEM or base64 DER PKCS#10"},
                "subject": {"type": "string", "description": "RFC 4514 DN (default: the CSR's)"},
                "sans": array({"type": "string", "description": "type:value, e.g. dns:host.example"}),
                "validity_days": INT,
            },
            ("ca", "profile", "csr"),
        ),
        "StatusChange": obj(
            {
                "reason": {"type": "string", "enum": [r.value for r in RevocationReason]},
                "comment": STRING,
                "invalidity_date": STRING,
                "publish_now": BOOL,
            }
        ),
        "Binding": binding,
        "BindingList": obj({"items": array(ref("Binding"))}, ("items",)),
        "PutBinding": obj(
            {
                "allowed_profiles": array(STRING),
                "default_profile": STRING,
                "enabled": BOOL,
                "settings": OBJECT,
            }
        ),
        "Challenge": obj(
            {
                "challenge": STRING,
                "id": STRING,
                "ca": STRING,
                "protocol": STRING,
                "subject": NULLABLE_STRING,
                "expires_at": STRING,
            },
            ("challenge", "id", "ca", "protocol", "subject", "expires_at"),
        ),
        "Credential": credential,
        "CredentialList": obj({"items": array(ref("Credential"))}, ("items",)),
        "CreateCredential": obj(
            {
                "kind": {"type": "string", "enum": ["token", "client-cert", "basic", "eab", "shared-secret"]},
                "name": STRING,
                "role": {"type": "string", "enum": ["admin", "officer", "auditor"]},
                "ca": STRING,
                "protocol": STRING,
                "password": STRING,
            },
            ("kind", "name"),
        ),
        "CreatedCredential": obj(
            {
                "credential": ref("Credential"),
                "token": STRING,
                "username": STRING,
                "password": STRING,
                "kid": STRING,
                "hmac_key": STRING,
                "reference": STRING,
                "secret": STRING,
                "p12": {"type": "string", "description": "base64 PKCS#12 (key, certificate, chain)"},
                "p12_password": STRING,
            },
            ("credential",),
        ),
        "Approval": approval,
        "ApprovalList": obj({"items": array(ref("Approval"))}, ("items",)),
        "AuditPage": obj({"items": array(OBJECT), "next_after": INT}, ("items", "next_after")),
        "Error": error,
    }


_CA = path_param("ca", "CA id (slug)", "issuing")
_PROTOCOL = path_param("protocol", "protocol front-end name", "est")
_ADMIN_SERIAL = path_param("serial", "serial number in hex", "5b9ba13d")
_APPROVAL = path_param("id", "pending request id", "00112233445566778899aabb")


@cache
def admin_document() -> Schema:
    err = ref("Error")

    def op(
        op_id: str,
        summary: str,
        tag: str,
        ok: tuple[int, Schema],
        errors: tuple[int, ...] = (),
        params: tuple[Schema, ...] = (),
        body: Schema | None = None,
    ) -> Schema:
        return operation(op_id, summary, tag, ok, errors, err, params, body)

    items = obj({"items": array(OBJECT)}, ("items",))
    search_params = (
        query_param("ca", "CA id"),
        query_param("serial", "hex serial"),
        query_param(
            "status",
            "normal, held, revoked or expired",
            {"type": "string", "enum": [s.value for s in CertStatus]},
        ),
        query_param("profile", "profile id"),
        query_param("text", "substring of the subject DN or a SAN"),
        query_param("expires_after", "ISO 8601"),
        query_param("expires_before", "ISO 8601"),
        query_param("issued_after", "ISO 8601"),
        query_param("limit", "page size (1-500)", {"type": "integer"}),
        query_param("offset", "items to skip", {"type": "integer"}),
    )
    paths: Schema = {
        "/openapi.json": {
            "get": operation("openapi", "This document", "General", (200, OBJECT), (), err, public=True)
        },
        "/whoami": {"get": op("whoami", "The calling credential", "General", (200, OBJECT))},
        "/profiles": {"get": op("listProfiles", "The profile catalogue", "General", (200, items))},
        "/protocols": {"get": op("listProtocols", "Installed protocol front-ends", "Bindings", (200, items))},
        "/cas": {
            "get": op(
                "listCas",
                "CAs",
                "CAs",
                (200, ref("CAList")),
                params=(query_param("include_deleted", "true to list deleted CAs"),),
            ),
            "post": op(
                "createCa",
                "Create a root, an issuing CA, register an external root, or create an issuing CA under it",
                "CAs",
                (201, ref("CA")),
                (400, 404, 409, 422),
                body=ref("CreateCA"),
            ),
        },
        "/cas/{ca}": {
            "get": op("getCa", "One CA with its certificate", "CAs", (200, ref("CA")), (404,), (_CA,)),
            "delete": op(
                "deleteCa", "Delete a CA (its key is destroyed)", "CAs", (200, OBJECT), (404, 409), (_CA,)
            ),
        },
        "/cas/{ca}/csr": {
            "get": op(
                "exportCaCsr",
                "The CSR of an issuing CA under an external root",
                "CAs",
                (200, OBJECT),
                (404, 409),
                (_CA,),
            )
        },
        "/cas/{ca}/certificate": {
            "put": op(
                "importCaCertificate",
                "Import the certificate the external root signed",
                "CAs",
                (200, ref("CA")),
                (400, 404, 409),
                (_CA,),
                obj(
                    {"certificate": {"type": "string", "description": "PEM or base64 DER"}}, ("certificate",)
                ),
            )
        },
        "/cas/{ca}/services": {
            "get": op(
                "getCaServices",
                "Services (profile sets) enabled on a CA",
                "CAs",
                (200, OBJECT),
                (404,),
                (_CA,),
            ),
            "put": op(
                "setCaServices",
                "Replace the services enabled on an issuing CA",
                "CAs",
                (200, OBJECT),
                (400, 404, 409),
                (_CA,),
                obj(
                    {"services": array({"type": "string", "enum": [s.value for s in Service]})}, ("services",)
                ),
            ),
        },
        "/bindings": {
            "get": op(
                "listBindings",
                "Gateway bindings (protocol x CA)",
                "Bindings",
                (200, ref("BindingList")),
                params=(query_param("ca", "CA id"), query_param("protocol", "protocol name")),
            )
        },
        "/cas/{ca}/bindings/{protocol}": {
            "get": op(
                "getBinding", "One binding", "Bindings", (200, ref("Binding")), (404,), (_CA, _PROTOCOL)
            ),
            "put": op(
                "putBinding",
                "Create or replace a binding: allowed and default profiles, settings",
                "Bindings",
                (200, ref("Binding")),
                (400, 404),
                (_CA, _PROTOCOL),
                ref("PutBinding"),
            ),
            "delete": op(
                "deleteBinding", "Remove a binding", "Bindings", (200, OBJECT), (404,), (_CA, _PROTOCOL)
            ),
        },
        "/cas/{ca}/bindings/{protocol}/challenges": {
            "post": op(
                "createChallenge",
                "A one-time challengePassword for a binding with dynamic challenges (SCEP);"
                " the secret is in this response only",
                "Bindings",
                (201, ref("Challenge")),
                (400, 404),
                (_CA, path_param("protocol", "protocol front-end name", "scep")),
                obj(
                    {
                        "subject": {"type": "string", "description": "RFC 4514 DN the CSR must carry"},
                        "ttl_seconds": {
                            "type": "integer",
                            "description": "seconds it stays valid; SCEP takes 60 to 30 days' worth",
                        },
                    },
                    (),
                ),
            )
        },
        "/credentials": {
            "get": op(
                "listCredentials",
                "Credentials (never their secrets)",
                "Credentials",
                (200, ref("CredentialList")),
                (400,),
                (
                    query_param("kind", "token, client-cert, basic, eab or shared-secret"),
                    query_param("include_revoked", "true to include revoked"),
                ),
            ),
            "post": op(
                "createCredential",
                "Create a credential; its secret is in this response only",
                "Credentials",
                (201, ref("CreatedCredential")),
                (400, 404, 409, 422),
                body=ref("CreateCredential"),
            ),
        },
        "/credentials/{id}": {
            "delete": op(
                "revokeCredential",
                "Revoke a credential",
                "Credentials",
                (200, OBJECT),
                (404,),
                (path_param("id", "credential id", "0011223344556677aa"),),
            )
        },
        "/certificates": {
            "get": op(
                "searchCertificates",
                "Search certificates",
                "Certificates",
                (200, ref("CertificatePage")),
                (400,),
                search_params,
            ),
            "post": op(
                "issueCertificate",
                "Issue a certificate from a CSR",
                "Certificates",
                (201, ref("Certificate")),
                (400, 404, 409, 413, 422, 429),
                body=ref("IssueRequest"),
            ),
        },
        "/certificates/{serial}": {
            "get": op(
                "getCertificate",
                "One certificate with its PEM",
                "Certificates",
                (200, ref("Certificate")),
                (400, 404),
                (_ADMIN_SERIAL,),
            )
        },
    }
    for action, summary in (("revoke", "Revoke"), ("hold", "Put on hold"), ("unhold", "Take off hold")):
        paths[f"/certificates/{{serial}}/{action}"] = {
            "post": operation(
                f"{action}Certificate",
                f"{summary} a certificate",
                "Certificates",
                (200, ref("Certificate")),
                (400, 404, 409),
                err,
                (_ADMIN_SERIAL,),
                None,
            )
            | {
                "requestBody": {
                    "required": False,
                    "content": {"application/json": {"schema": ref("StatusChange")}},
                }
            }
        }
    paths |= {
        "/approvals": {
            "get": op(
                "listApprovals",
                "Requests waiting for (or decided by) an officer",
                "Approvals",
                (200, ref("ApprovalList")),
                (400,),
                (
                    query_param(
                        "state",
                        "pending (default), issued, rejected or all",
                        {"type": "string", "enum": ["pending", "issued", "rejected", "all"]},
                    ),
                    query_param("ca", "CA id"),
                ),
            )
        },
        "/approvals/{id}": {
            "get": op("getApproval", "One request", "Approvals", (200, ref("Approval")), (404,), (_APPROVAL,))
        },
        "/approvals/{id}/approve": {
            "post": op(
                "approveRequest",
                "Approve: issue the certificate now",
                "Approvals",
                (200, ref("Approval")),
                (404, 409, 422),
                (_APPROVAL,),
            )
        },
        "/approvals/{id}/reject": {
            "post": op(
                "rejectRequest",
                "Reject with a reason",
                "Approvals",
                (200, ref("Approval")),
                (400, 404, 409),
                (_APPROVAL,),
                obj({"reason": STRING}, ("reason",)),
            )
        },
        "/audit": {
            "get": op(
                "listAuditEntries",
                "Audit log entries after a sequence number",
                "Audit",
                (200, ref("AuditPage")),
                (400,),
                (
                    query_param("after", "sequence number to continue after", {"type": "integer"}),
                    query_param("limit", "1-1000", {"type": "integer"}),
                    query_param("ca", "CA id"),
                    query_param("action", "action name, e.g. certificate.issued"),
                    query_param("serial", "certificate serial"),
                ),
            )
        },
        "/audit/verify": {
            "get": op(
                "verifyAuditLog",
                "Check the audit log's hash chain, and anchors kept outside the database",
                "Audit",
                (200, OBJECT),
                (400,),
                (
                    query_param(
                        "anchor",
                        "SEQ:HASH as `ceg audit head` printed it earlier; repeatable",
                        {"type": "array", "items": {"type": "string"}},
                    ),
                ),
            )
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ceg administration API",
            "version": "1.0.0",
            "description": "CAs, services, gateway bindings, credentials, certificates, approvals and audit. "
            "Roles: admin (everything), officer (issue, revoke, hold, approvals), auditor (read, audit).",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}, {"mutualTLS": []}],
        "paths": paths,
        "components": {"schemas": _admin_schemas(), "securitySchemes": _SECURITY_SCHEMES},
    }
