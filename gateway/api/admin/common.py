"""What the `/api/v1` handlers share: JSON views of ceg objects, query parsing, errors."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ca_core.authority import CertificateAuthority
from ca_core.errors import CegError
from ca_core.model import CertificateRecord
from ca_core.services import Services
from ca_core.store.cas import CaRecord
from ca_core.store.credentials import CredentialRecord
from gateway.api.body import parse_datetime
from gateway.api.errors import ApiError, Failure, bad_request, failure_of
from gateway.api.routing import Handler
from protocols._shared.web import REQUEST_ID, SERVICES, Binding

log = logging.getLogger(__name__)
API = "api"


def services_of(request: web.Request) -> Services:
    return request.config_dict[SERVICES]


def iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value else None


def pem_certificate(der: bytes) -> str:
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM).decode()


def ca_view(ca: CertificateAuthority | CaRecord, with_pem: bool = False) -> dict[str, Any]:
    record = ca.record if isinstance(ca, CertificateAuthority) else ca
    view: dict[str, Any] = {
        "id": record.id,
        "kind": record.kind.value,
        "state": record.state.value,
        "subject": record.subject,
        "parent": record.parent_id,
        "key_algorithm": record.key_algorithm.value if record.key_algorithm else None,
        "not_before": iso(record.not_before),
        "not_after": iso(record.not_after),
        "ocsp": record.ocsp_enabled,
        "services": list(record.services),
    }
    if with_pem:
        view["certificate_pem"] = pem_certificate(record.certificate) if record.certificate else None
    return view


def certificate_view(record: CertificateRecord, now: dt.datetime, with_pem: bool = False) -> dict[str, Any]:
    view: dict[str, Any] = {
        "serial": record.serial,
        "ca": record.ca,
        "profile": record.profile,
        "subject": record.subject,
        "sans": list(record.sans),
        "status": record.effective_status(now).value,
        "not_before": iso(record.not_before),
        "not_after": iso(record.not_after),
        "issued_at": iso(record.issued_at),
        "revoked_at": iso(record.revoked_at),
        "revocation_reason": record.revocation_reason.value if record.revocation_reason else None,
        "requester": {k: v for k, v in record.requester.items() if k in ("protocol", "principal")},
    }
    if with_pem:
        view["certificate_pem"] = pem_certificate(record.der)
    return view


def binding_view(binding: Binding) -> dict[str, Any]:
    return {
        "protocol": binding.protocol,
        "ca": binding.ca,
        "enabled": binding.enabled,
        "allowed_profiles": list(binding.allowed_profiles),
        "default_profile": binding.default_profile,
        "settings": _public_settings(binding.settings),
    }


def _public_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in settings.items() if k != "default"}


def credential_view(record: CredentialRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "kind": record.kind,
        "name": record.name,
        "role": record.role,
        "scope": dict(record.scope),
        "created_at": iso(record.created_at),
        "expires_at": iso(record.expires_at),
        "revoked_at": iso(record.revoked_at),
    }


def query_int(request: web.Request, name: str, default: int, minimum: int, maximum: int) -> int:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise bad_request(f"query parameter {name} must be a whole number", name) from None
    if not minimum <= value <= maximum:
        raise bad_request(f"query parameter {name} must be between {minimum} and {maximum}", name)
    return value


def query_date(request: web.Request, name: str) -> dt.datetime | None:
    text = request.query.get(name)
    return parse_datetime(text, name) if text else None


def query_text(request: web.Request, name: str, max_len: int = 256) -> str | None:
    text = request.query.get(name)
    if text is None or text == "":
        return None
    if len(text) > max_len:
        raise bad_request(f"query parameter {name} is longer than {max_len} characters", name)
    return text


def error_response(failure: Failure, request: web.Request) -> web.Response:
    error: dict[str, Any] = {"code": failure.code, "message": failure.message}
    if failure.target:
        error["target"] = failure.target
    headers = dict(failure.headers)
    if failure.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="ceg"'
    return web.json_response(
        {"error": error, "request_id": request.get(REQUEST_ID)}, status=failure.status, headers=headers
    )


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.failure, request)
    except CegError as exc:
        failure = failure_of(exc)
        if failure.status >= 500:
            log.error("api request failed: %s", exc, extra={"path": request.path})
        return error_response(failure, request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(exc.status, "http_error")
        response = error_response(Failure(exc.status, code, exc.reason), request)
        if exc.status == 405 and "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception:
        # A bug: the details go to the log with the request id, the client gets a 500.
        log.exception("%s request failed", request.path)
        return error_response(Failure(500, "internal", "internal error"), request)
