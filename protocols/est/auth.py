"""Checking an EST client's credentials against the CA core (RFC 7030 3.2.3, 3.3.2).

- HTTP Basic: a ceg Basic credential (services.credentials), scoped to EST and this CA
  when its scope says so.
- TLS client certificate: one this binding's CA issued and still in service
  (`issued_here`), or one directly issued by a trust anchor in the binding's settings.
- simplereenroll: the client certificate must be the certificate being renewed, issued
  here and neither revoked, held nor expired; `both` bindings want Basic as well.
The decision itself (which combination suffices, 401 or 403) is `core.authenticate`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ca_core.errors import Forbidden, Unauthorized
from ca_core.model import CertificateRecord
from ca_core.services import Services
from protocols._shared.client_auth import issued_here
from protocols._shared.web import Binding
from protocols.est import codec, core
from protocols.est.errors import EstError


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is asking, and (for simplereenroll) the certificate being renewed."""

    principal: str
    renewing: CertificateRecord | None = None


async def check_basic(services: Services, ca: str, authorization: str | None) -> core.Credential:
    given = codec.parse_basic_authorization(authorization)
    if given is None:
        return core.ABSENT
    username, password = given
    try:
        record = await services.credentials.verify_basic(username, password)
    except Unauthorized as exc:
        return core.Credential(problem=exc.message)
    problem = core.basic_scope_problem(record.scope, ca)
    if problem is not None:
        # Right password, wrong place: no Basic challenge would help.
        raise EstError(403, problem)
    return core.Credential(principal=username)


async def check_certificate(
    services: Services, binding: Binding, settings: core.EstSettings, der: bytes | None
) -> core.Credential:
    if der is None:
        return core.ABSENT
    if settings.accept_issued_certificates:
        try:
            record = await issued_here(services, binding.ca, der)
        except Forbidden as exc:
            return core.Credential(problem=f"client certificate refused: {exc.message}")
        except Unauthorized:
            pass
        else:
            return core.Credential(principal=f"cert:{record.serial}")
    if settings.trust_anchors:
        certificate = codec.load_certificate(der)
        anchors = codec.load_pem_certificates(settings.trust_anchors)
        if core.anchored(certificate, anchors, services.clock.now()) is not None:
            return core.Credential(principal=f"cert:{certificate.subject.rfc4514_string()}")
    return core.Credential(
        problem=f"the TLS client certificate is not trusted for EST on CA {binding.ca} "
        "(neither issued by it nor under one of the binding's trust anchors)"
    )


async def identify(
    services: Services,
    binding: Binding,
    settings: core.EstSettings,
    operation: core.Operation,
    authorization: str | None,
    client_certificate: bytes | None,
) -> Identity:
    basic = await check_basic(services, binding.ca, authorization)
    if operation is core.Operation.REENROLL:
        return await _renewer(services, binding, settings, basic, client_certificate)
    certificate = await check_certificate(services, binding, settings, client_certificate)
    principal = core.authenticate(settings.authentication, basic, certificate, binding.ca)
    return Identity(principal)


async def _renewer(
    services: Services,
    binding: Binding,
    settings: core.EstSettings,
    basic: core.Credential,
    der: bytes | None,
) -> Identity:
    if basic.problem is not None:
        raise EstError(401, basic.problem, core.basic_challenge(binding.ca))
    if der is None:
        raise EstError(
            403, "simplereenroll needs the certificate being renewed as the TLS client certificate"
        )
    try:
        record = await issued_here(services, binding.ca, der)
    except Unauthorized as exc:
        raise EstError(403, f"simplereenroll: {exc.message}") from None
    except Forbidden as exc:
        raise EstError(403, f"simplereenroll: {exc.message}") from None
    if settings.authentication is core.AuthMode.BOTH and basic.principal is None:
        raise EstError(401, "HTTP Basic authentication is required as well", core.basic_challenge(binding.ca))
    return Identity(basic.principal or f"cert:{record.serial}", record)
