"""Credentials: API tokens, Basic users, ACME EAB keys, CMP shared secrets, client certs.

- Tokens are `ceg_<id>_<secret>`; only SHA-256(secret) is stored (the secret has 256 bits
  of entropy, so a slow hash adds nothing).
- Basic passwords are people-chosen: stored with scrypt. A successful check is remembered
  for a minute (keyed by a SHA-256 of username and password) so a device enrolling over
  keep-alive does not pay scrypt on every request.
- EAB HMAC keys and CMP MAC secrets must be usable to verify a MAC, so they are stored as
  they are; the database is the trust boundary for them, as for the CA's own records.
- Client certificates are recognised by the SHA-256 of their DER.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from ca_core.audit import AuditEntry
from ca_core.clock import Clock, RandomBytes
from ca_core.errors import BadRequest, NotFound, Unauthorized
from ca_core.store import Store
from ca_core.store.credentials import CredentialRecord

ROLES = ("admin", "officer", "auditor")
_BASIC_CACHE_SECONDS = 60.0
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


class Kind:
    TOKEN = "token"
    CLIENT_CERT = "client-cert"
    BASIC = "basic"
    EAB = "eab"
    SHARED_SECRET = "shared-secret"
    ALL = (TOKEN, CLIENT_CERT, BASIC, EAB, SHARED_SECRET)


@dataclass(frozen=True, slots=True)
class IssuedSecret:
    """A new credential and the secret shown once to its owner."""

    credential: CredentialRecord
    secret: str


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _scrypt(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)


def certificate_fingerprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


class CredentialService:
    def __init__(self, store: Store, clock: Clock, random_bytes: RandomBytes) -> None:
        self._store = store
        self._clock = clock
        self._random = random_bytes
        self._basic_ok: dict[str, tuple[dt.datetime, CredentialRecord]] = {}

    def _new_id(self) -> str:
        return self._random(9).hex()

    async def _create(
        self,
        kind: str,
        name: str,
        role: str,
        lookup: str | None,
        secret_hash: str | None,
        scope: dict[str, Any],
        data: dict[str, Any],
        actor: str,
        expires_at: dt.datetime | None = None,
    ) -> CredentialRecord:
        if role not in (*ROLES, "client"):
            raise BadRequest(f"role must be one of {', '.join(ROLES)}")
        if not name or len(name) > 128:
            raise BadRequest("a credential needs a name of 1 to 128 characters")
        now = self._clock.now()
        record = CredentialRecord(
            id=self._new_id(),
            kind=kind,
            name=name,
            role=role,
            secret_hash=secret_hash,
            lookup=lookup,
            scope=scope,
            data=data,
            created_at=now,
            expires_at=expires_at,
        )
        audit = AuditEntry(
            now,
            "credential.created",
            actor,
            scope.get("ca"),
            None,
            {"id": record.id, "kind": kind, "name": name, "role": role, "scope": scope},
        )
        await self._store.credentials.insert(record, audit)
        return record

    # --- API bearer tokens -----------------------------------------------------------------

    async def create_token(
        self, name: str, role: str, actor: str = "system", scope: dict[str, Any] | None = None
    ) -> IssuedSecret:
        secret = _b64url(self._random(32))
        record = await self._create(
            Kind.TOKEN,
            name,
            role,
            None,
            hashlib.sha256(secret.encode()).hexdigest(),
            scope or {},
            {},
            actor,
        )
        return IssuedSecret(record, f"ceg_{record.id}_{secret}")

    async def verify_token(self, token: str) -> CredentialRecord:
        prefix, _, rest = token.partition("_")
        cred_id, _, secret = rest.partition("_")
        if prefix != "ceg" or not cred_id or not secret:
            raise Unauthorized("malformed token")
        record = await self._store.credentials.get(cred_id)
        if record is None or record.kind != Kind.TOKEN or not record.active(self._clock.now()):
            raise Unauthorized("unknown or revoked token")
        digest = hashlib.sha256(secret.encode()).hexdigest()
        if record.secret_hash is None or not hmac.compare_digest(digest, record.secret_hash):
            raise Unauthorized("unknown or revoked token")
        return record

    # --- HTTP Basic users (EST, WSTEP, MDM web service) ------------------------------------

    async def create_basic(
        self,
        username: str,
        scope: dict[str, Any],
        password: str | None = None,
        actor: str = "system",
    ) -> IssuedSecret:
        if ":" in username or not username:
            raise BadRequest("a Basic username is non-empty and has no ':'")
        password = password or _b64url(self._random(18))
        salt = self._random(16)
        stored = f"scrypt${salt.hex()}${_scrypt(password, salt).hex()}"
        record = await self._create(
            Kind.BASIC, username, "client", f"basic:{username}", stored, scope, {}, actor
        )
        return IssuedSecret(record, password)

    async def verify_basic(self, username: str, password: str) -> CredentialRecord:
        """The active Basic credential for these words, or Unauthorized."""
        now = self._clock.now()
        cache_key = hashlib.sha256(f"{username}\0{password}".encode()).hexdigest()
        cached = self._basic_ok.get(cache_key)
        if cached is not None and (now - cached[0]).total_seconds() < _BASIC_CACHE_SECONDS:
            return cached[1]
        record = await self._store.credentials.by_lookup(f"basic:{username}")
        if record is None or record.kind != Kind.BASIC or not record.active(now) or not record.secret_hash:
            raise Unauthorized("unknown user or wrong password")
        _, salt_hex, digest_hex = record.secret_hash.split("$")
        if not hmac.compare_digest(_scrypt(password, bytes.fromhex(salt_hex)).hex(), digest_hex):
            raise Unauthorized("unknown user or wrong password")
        if len(self._basic_ok) > 10_000:
            self._basic_ok.clear()
        self._basic_ok[cache_key] = (now, record)
        return record

    # --- ACME external account binding (RFC 8555 7.3.4) --------------------------------------

    async def create_eab(self, name: str, scope: dict[str, Any], actor: str = "system") -> tuple[str, str]:
        """Returns (kid, base64url HMAC key)."""
        kid = _b64url(self._random(12))
        key = _b64url(self._random(32))
        await self._create(Kind.EAB, name, "client", f"eab:{kid}", None, scope, {"hmac_key": key}, actor)
        return kid, key

    async def eab(self, kid: str) -> tuple[CredentialRecord, bytes]:
        record = await self._store.credentials.by_lookup(f"eab:{kid}")
        if record is None or record.kind != Kind.EAB or not record.active(self._clock.now()):
            raise Unauthorized(f"unknown or revoked EAB key id {kid!r}")
        key = record.data["hmac_key"]
        return record, base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))

    # --- CMP shared secrets (MAC protection, RFC 4210 5.1.3.1) -------------------------------

    async def create_shared_secret(
        self,
        reference: str,
        scope: dict[str, Any],
        secret: str | None = None,
        actor: str = "system",
    ) -> IssuedSecret:
        secret = secret or _b64url(self._random(18))
        protocol, ca = scope.get("protocol", "cmp"), scope.get("ca", "")
        record = await self._create(
            Kind.SHARED_SECRET,
            reference,
            "client",
            f"secret:{protocol}:{ca}:{reference}",
            None,
            scope,
            {"secret": secret},
            actor,
        )
        return IssuedSecret(record, secret)

    async def shared_secret(self, protocol: str, ca: str, reference: str) -> tuple[CredentialRecord, bytes]:
        record = await self._store.credentials.by_lookup(f"secret:{protocol}:{ca}:{reference}")
        if record is None or not record.active(self._clock.now()):
            raise Unauthorized(f"unknown reference {reference!r}")
        return record, str(record.data["secret"]).encode()

    # --- client certificates (mTLS API access) ------------------------------------------------

    async def register_client_certificate(
        self,
        name: str,
        role: str,
        certificate_der: bytes,
        scope: dict[str, Any],
        actor: str = "system",
        expires_at: dt.datetime | None = None,
    ) -> CredentialRecord:
        fingerprint = certificate_fingerprint(certificate_der)
        return await self._create(
            Kind.CLIENT_CERT,
            name,
            role,
            f"cert:{fingerprint}",
            None,
            scope,
            {"fingerprint": fingerprint},
            actor,
            expires_at,
        )

    async def verify_client_certificate(self, certificate_der: bytes) -> CredentialRecord:
        record = await self._store.credentials.by_lookup(f"cert:{certificate_fingerprint(certificate_der)}")
        if record is None or record.kind != Kind.CLIENT_CERT or not record.active(self._clock.now()):
            raise Unauthorized("client certificate is not a registered credential")
        return record

    # --- common ------------------------------------------------------------------------------

    async def list(self, kind: str | None = None, include_revoked: bool = False) -> list[CredentialRecord]:
        return await self._store.credentials.list(kind, include_revoked)

    async def revoke(self, credential_id: str, actor: str = "system") -> None:
        now = self._clock.now()
        record = await self._store.credentials.get(credential_id)
        if record is None:
            raise NotFound(f"no credential {credential_id!r}")
        audit = AuditEntry(
            now, "credential.revoked", actor, record.scope.get("ca"), None, {"id": credential_id}
        )
        if not await self._store.credentials.revoke(credential_id, now, audit):
            raise NotFound(f"credential {credential_id!r} is already revoked")
        self._basic_ok.clear()


def new_password() -> str:
    return secrets.token_urlsafe(18)
