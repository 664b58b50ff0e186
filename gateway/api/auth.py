"""Who is calling the management APIs, and whether they may.

Credentials (ca_core/credentials.py): a bearer token (`Authorization: Bearer ceg_...`)
or a TLS client certificate registered as a `client-cert` credential (the CA Gateway
API's mutual-TLS credential). Roles:

- admin: everything;
- officer: read, issue, revoke/hold/unhold, decide approvals;
- auditor: read, and the audit log.

A credential's scope may name CAs (`{"cas": [...]}` or `{"ca": ...}`): it then acts on
those CAs only (and may read their parents, so a chain can be fetched); without such a
scope it acts on every CA. Calls without a credential get 401; calls the role or scope
does not cover get 403, and that refusal is written to the audit log.

A successful credential check is remembered for a few seconds per worker, so a client on
a keep-alive connection does not cost a database read per request; revoking through the
API clears this worker's memory at once, other workers forget within `CACHE_SECONDS`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from aiohttp import web

from ca_core.audit import AuditEntry
from ca_core.credentials import ROLES
from ca_core.errors import CegError, Forbidden, Unauthorized
from ca_core.services import Services
from ca_core.store.credentials import CredentialRecord
from protocols._shared.web import CLIENT_CERT, REQUEST_ID, SERVICES

CACHE_SECONDS = 5.0
_CACHE_LIMIT = 10_000


class Permission(StrEnum):
    READ = "read"
    ISSUE = "issue"
    REVOKE = "revoke"
    APPROVE = "approve"
    AUDIT = "audit"
    MANAGE = "manage"  # CAs, bindings, credentials


ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    "admin": frozenset(Permission),
    "officer": frozenset({Permission.READ, Permission.ISSUE, Permission.REVOKE, Permission.APPROVE}),
    "auditor": frozenset({Permission.READ, Permission.AUDIT}),
}


@dataclass(frozen=True, slots=True)
class Principal:
    credential_id: str
    name: str
    role: str
    via: str  # "token" | "client-cert"
    cas: frozenset[str] | None  # None: every CA

    def can(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS.get(self.role, frozenset())

    def covers(self, ca: str) -> bool:
        return self.cas is None or ca in self.cas

    def actor(self, api: str) -> str:
        return f"{api}:{self.name}"


def principal_of(record: CredentialRecord) -> Principal:
    scope = record.scope or {}
    cas: set[str] | None = None
    if isinstance(scope.get("cas"), list):
        cas = {str(c) for c in scope["cas"]}
    if isinstance(scope.get("ca"), str) and scope["ca"]:
        cas = (cas or set()) | {scope["ca"]}
    return Principal(record.id, record.name, record.role, record.kind, frozenset(cas) if cas else None)


class Authenticator:
    """Checks credentials through CredentialService, remembering recent successes."""

    def __init__(self) -> None:
        self._recent: dict[str, tuple[float, Principal]] = {}

    def forget(self) -> None:
        self._recent.clear()

    async def authenticate(self, request: web.Request) -> Principal:
        """A registered TLS client certificate first (the CA Gateway's own scheme), else the
        bearer token; a certificate that is no credential (an EST device's) is no refusal."""
        credentials = request.config_dict[SERVICES].credentials
        cert: bytes | None = request.get(CLIENT_CERT)
        header = request.headers.get("Authorization", "")
        if cert:
            key = "c:" + hashlib.sha256(cert).hexdigest()
            try:
                return await self._remembered(key, lambda: credentials.verify_client_certificate(cert))
            except Unauthorized:
                if not header:
                    raise
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthorized("use 'Authorization: Bearer <token>' or a client certificate")
            key = "t:" + hashlib.sha256(token.strip().encode()).hexdigest()
            return await self._remembered(key, lambda: credentials.verify_token(token.strip()))
        raise Unauthorized("no credential: send a bearer token or a registered TLS client certificate")

    async def _remembered(self, key: str, verify: Any) -> Principal:
        now = time.monotonic()
        hit = self._recent.get(key)
        if hit is not None and now - hit[0] < CACHE_SECONDS:
            return hit[1]
        record: CredentialRecord = await verify()
        principal = principal_of(record)
        if principal.role not in ROLES:
            raise Forbidden(f"credential {record.name!r} (role {record.role}) is not an API credential")
        if len(self._recent) >= _CACHE_LIMIT:
            self._recent.clear()
        self._recent[key] = (now, principal)
        return principal


AUTHENTICATOR = web.AppKey("ceg.api.authenticator", Authenticator)
PRINCIPAL = web.RequestKey("ceg.api.principal", Principal)


async def authorize(
    request: web.Request,
    api: str,
    permission: Permission,
    ca: str | None = None,
    readable_cas: Iterable[str] = (),
) -> Principal:
    """The caller, if its role has `permission` and its scope covers `ca`; else 401/403.

    `readable_cas`: for reads, further CAs whose scope also lets the caller see `ca`
    (the children of a root, so a chain can be read with an issuing-CA credential).
    """
    principal = await request.config_dict[AUTHENTICATOR].authenticate(request)
    request[PRINCIPAL] = principal
    if not principal.can(permission):
        await _deny(request, api, principal, f"role {principal.role} may not {permission.value}", ca)
    if ca is not None and not principal.covers(ca) and not any(principal.covers(c) for c in readable_cas):
        await _deny(request, api, principal, f"credential is not scoped to CA {ca}", ca)
    return principal


async def require_every_ca(request: web.Request, api: str, principal: Principal, what: str) -> None:
    """Actions that are not about one CA (creating CAs, credentials) need an unscoped credential."""
    if principal.cas is not None:
        await _deny(request, api, principal, f"a credential scoped to CAs may not {what}", None)


async def _deny(request: web.Request, api: str, principal: Principal, reason: str, ca: str | None) -> None:
    services = request.config_dict[SERVICES]
    entry = AuditEntry(
        services.clock.now(),
        "api.denied",
        principal.actor(api),
        ca,
        None,
        {
            "method": request.method,
            "path": request.path,
            "reason": reason,
            "remote_addr": request.remote,
            "request_id": request.get(REQUEST_ID),
        },
    )
    await services.store.db.insert_batched([], [entry])
    raise Forbidden(reason)


async def children_of(services: Services, ca: str) -> list[str]:
    """Ids of the CAs directly under `ca` (for read access through a child's scope)."""
    try:
        records = await services.authority.list()
    except CegError:
        return []
    return [r.id for r in records if r.parent_id == ca]


__all__ = [
    "AUTHENTICATOR",
    "PRINCIPAL",
    "Authenticator",
    "Permission",
    "Principal",
    "authorize",
    "children_of",
    "require_every_ca",
]
