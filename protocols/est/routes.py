"""aiohttp handlers for `/.well-known/est/[{ca}/]<operation>` (RFC 7030 3.2.2).

Each handler reads like the others: settings -> transport -> who (auth) -> what (codec)
-> decide (core) -> CA core -> encode. Without `{ca}` the gateway resolves the default
binding. Refusals travel as EstError / CegError and become text/plain answers in
`est_errors`, the sub-application's outer middleware.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import hdrs, web
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ca_core.audit import Action, AuditEntry
from ca_core.errors import CegError
from ca_core.keys.file import generate_private_key
from ca_core.model import KeyAlgorithm
from ca_core.services import Services
from protocols._shared.web import (
    BINDING,
    REQUEST_ID,
    Binding,
    binding_of,
    client_certificate,
    read_body,
    requester_of,
    services_of,
)
from protocols.est import approval, auth, codec, core, translate
from protocols.est.errors import EstError

log = logging.getLogger(__name__)
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def application() -> web.Application:
    app = web.Application(middlewares=[est_errors])
    for prefix in ("", "/{ca}"):
        app.router.add_get(f"{prefix}/cacerts", cacerts)
        app.router.add_post(f"{prefix}/simpleenroll", simpleenroll)
        app.router.add_post(f"{prefix}/simplereenroll", simplereenroll)
        app.router.add_post(f"{prefix}/serverkeygen", serverkeygen)
        app.router.add_get(f"{prefix}/csrattrs", csrattrs)
        app.router.add_post(f"{prefix}/fullcmc", fullcmc)
    return app


def text_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    response = web.Response(status=status, body=(message.rstrip("\n") + "\n").encode())
    response.headers[hdrs.CONTENT_TYPE] = codec.TEXT
    response.headers.update(headers or {})
    return response


@web.middleware
async def est_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except EstError as exc:
        return text_response(exc.status, exc.message, exc.headers)
    except CegError as exc:
        binding = request.get(BINDING)
        err = translate.error_for(exc, binding.ca if binding is not None else "")
        if err.status == 500:
            log.error("EST request failed: %s", exc, extra={"request_id": request.get(REQUEST_ID)})
        return text_response(err.status, err.message, err.headers)


def _base64_response(body: bytes, content_type: str) -> web.Response:
    response = web.Response(body=body)
    response.headers[hdrs.CONTENT_TYPE] = content_type
    # Meaningless in HTTP and ignored by RFC 8951 clients, but RFC 7030-era clients look
    # for it; the body is base64 either way.
    response.headers["Content-Transfer-Encoding"] = "base64"
    return response


# --- distribution of CA certificates and CSR attributes ----------------------------------------


async def cacerts(request: web.Request) -> web.Response:
    """RFC 7030 4.1: the issuing CA's certificate and the chain to its root, no auth."""
    services, binding = services_of(request), binding_of(request)
    ca = await services.authority.get(binding.ca)
    ca.require_active()
    return _base64_response(codec.certs_only_body(ca.chain), codec.CERTS_ONLY)


async def csrattrs(request: web.Request) -> web.Response:
    """RFC 7030 4.5: what the binding wants in a CSR (never empty, so never 204)."""
    services, binding = services_of(request), binding_of(request)
    settings = core.EstSettings.parse(binding.settings)
    key_usage = services.catalogue[binding.default_profile].key_usage
    wanted = core.csr_attributes(settings, key_usage, link_identity=settings.link_identity)
    return _base64_response(codec.csrattrs_body(wanted), codec.CSRATTRS)


async def fullcmc(request: web.Request) -> web.Response:
    """RFC 7030 4.3 makes Full CMC optional; ceg does not offer it (501, RFC 9110 15.6.2)."""
    raise EstError(501, "Full CMC (/fullcmc) is not supported here; use simpleenroll or simplereenroll")


# --- enrollment ---------------------------------------------------------------------------------


async def simpleenroll(request: web.Request) -> web.Response:
    """RFC 7030 4.2.1."""
    return await _enroll(request, core.Operation.ENROLL)


async def simplereenroll(request: web.Request) -> web.Response:
    """RFC 7030 4.2.2."""
    return await _enroll(request, core.Operation.REENROLL)


async def _enroll(request: web.Request, operation: core.Operation) -> web.Response:
    services, binding = services_of(request), binding_of(request)
    settings = core.EstSettings.parse(binding.settings)
    core.require_transport(settings, request.secure)
    identity = await _identify(request, services, binding, settings, operation)
    csr = await _read_csr(request)
    _, profile = await _decide(request, services, binding, settings, identity, operation, csr)
    issuance = translate.enrollment_request(
        binding.ca,
        profile,
        csr,
        requester_of(request, "est", identity.principal),
        services.catalogue[profile].request_extensions,
        renewal_of=identity.renewing.serial if identity.renewing is not None else None,
    )
    if not settings.manual_approval:
        der = (await services.issuance.issue(issuance)).der
    else:
        key = core.pending_key(binding.ca, operation, csr.public_key_der())
        parked = await approval.issue_when_approved(services, issuance, key, identity.principal)
        if parked is None:
            return text_response(
                202,
                "the request awaits an officer's approval; send the same request again later",
                {hdrs.RETRY_AFTER: str(settings.retry_after_seconds)},
            )
        der = parked
    return _base64_response(codec.certs_only_body([der]), codec.CERTS_ONLY)


async def serverkeygen(request: web.Request) -> web.Response:
    """RFC 7030 4.4: a key of the CSR's key type, made here, returned once, never stored."""
    services, binding = services_of(request), binding_of(request)
    settings = core.EstSettings.parse(binding.settings)
    core.require_transport(settings, request.secure)
    operation = core.Operation.SERVERKEYGEN
    identity = await _identify(request, services, binding, settings, operation)
    if not settings.server_keygen:
        raise EstError(501, "server-side key generation is not offered on this binding")
    if settings.manual_approval:
        # The key would have to be kept until an officer decides, and keys are never stored.
        raise EstError(501, "server-side key generation is not offered where requests wait for approval")
    csr = await _read_csr(request)
    if csr.asks_encrypted_key():
        raise EstError(
            501, "encrypted return of the generated key (RFC 7030 4.4.1.1/4.4.1.2) is not supported"
        )
    algorithm, profile = await _decide(request, services, binding, settings, identity, operation, csr)
    key = await _new_key(services, algorithm)
    public_key_der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    issuance = translate.keygen_request(
        binding.ca,
        profile,
        csr,
        public_key_der,
        requester_of(request, "est", identity.principal),
        services.catalogue[profile].request_extensions,
    )
    issued = await services.issuance.issue(issuance)
    pkcs8 = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    body, content_type = codec.serverkeygen_body(pkcs8, issued.der, f"est-{services.random_bytes(12).hex()}")
    response = web.Response(body=body)
    response.headers[hdrs.CONTENT_TYPE] = content_type
    response.headers[hdrs.CACHE_CONTROL] = "no-store"
    return response


# --- steps shared by the handlers ---------------------------------------------------------------


async def _identify(
    request: web.Request,
    services: Services,
    binding: Binding,
    settings: core.EstSettings,
    operation: core.Operation,
) -> auth.Identity:
    try:
        return await auth.identify(
            services,
            binding,
            settings,
            operation,
            request.headers.get(hdrs.AUTHORIZATION),
            client_certificate(request),
        )
    except EstError as exc:
        log.warning(
            "EST %s refused: %s",
            operation.value,
            exc.message,
            extra={"request_id": request.get(REQUEST_ID), "remote": request.remote, "ca": binding.ca},
        )
        raise


def _challenge(csr: codec.CsrView, settings: core.EstSettings) -> str | None:
    return csr.challenge_password() if settings.link_identity else None


def _tls_unique(request: web.Request) -> bytes | None:
    """tls-unique (RFC 5929) of the request's TLS 1.2 connection; None otherwise."""
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    if ssl_object is None or ssl_object.version() != "TLSv1.2":
        return None
    binding: bytes | None = ssl_object.get_channel_binding("tls-unique")
    return binding


async def _decide(
    request: web.Request,
    services: Services,
    binding: Binding,
    settings: core.EstSettings,
    identity: auth.Identity,
    operation: core.Operation,
    csr: codec.CsrView,
) -> tuple[KeyAlgorithm, str]:
    """The checks EST makes itself before issuance (key type, renewal names, identity
    link) and the profile; a refusal is audited here, the IssuanceService audits its own."""
    try:
        core.check_identity_link(settings, _challenge(csr, settings), _tls_unique(request))
        if identity.renewing is not None:
            core.check_renewal(
                csr.subject,
                csr.subject_alt_names,
                csr.asks_name_change(),
                x509.load_der_x509_certificate(identity.renewing.der),
                settings.allow_name_change,
            )
        algorithm = core.check_key_type(settings, csr.public_key)
        return algorithm, _choose_profile(services, binding, settings, csr, identity)
    except (EstError, CegError) as exc:
        await _audit_refusal(services, binding, identity.principal, operation, exc)
        raise


async def _read_csr(request: web.Request) -> codec.CsrView:
    codec.require_media_type(request.headers.get(hdrs.CONTENT_TYPE), codec.PKCS10)
    return codec.read_csr(await read_body(request, codec.MAX_BODY))


def _choose_profile(
    services: Services,
    binding: Binding,
    settings: core.EstSettings,
    csr: codec.CsrView,
    identity: auth.Identity,
) -> str:
    catalogue = services.catalogue
    return core.choose_profile(
        binding.allowed_profiles,
        binding.default_profile,
        {p: catalogue[p].key_usage for p in binding.allowed_profiles},
        csr.key_usage,
        settings.profile_by_key_usage,
        previous=identity.renewing.profile if identity.renewing is not None else None,
    )


async def _new_key(services: Services, algorithm: KeyAlgorithm) -> PrivateKey:
    if algorithm.is_ec:
        return generate_private_key(algorithm)
    # RSA key generation takes from milliseconds to seconds: keep it off the event loop.
    return await asyncio.get_running_loop().run_in_executor(
        services.executor, generate_private_key, algorithm
    )


async def _audit_refusal(
    services: Services,
    binding: Binding,
    principal: str,
    operation: core.Operation,
    exc: EstError | CegError,
) -> None:
    """Refusals EST decides itself (the IssuanceService audits its own)."""
    entry = AuditEntry(
        services.clock.now(),
        Action.CERT_REFUSED,
        f"est:{principal}",
        binding.ca,
        None,
        {"operation": operation.value, "reason": exc.message, "code": getattr(exc, "code", "est")},
    )
    await services.store.db.insert_batched([], [entry])
