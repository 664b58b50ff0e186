"""challengePassword checks (RFC 8894 2.3): how a PKCSReq proves it may enrol.

The message layer and the responder only know `ChallengeVerifier`; which one a binding
uses is its `challenge` setting:

- `none`: no check (a lab, or a binding with manual approval).
- `static`: one shared secret per binding, stored as an scrypt hash (never in clear).
  Successful checks are remembered in process for a minute (keyed by a hash of the
  stored hash and the password) so a fleet enrolling with one secret does not pay
  scrypt per request.
- `dynamic`: one-time challenges, as NDES hands out: created by `create_challenge` (the
  `ceg scep challenge` command, the API), bound to an expiry and optionally to a
  subject, and consumed by the first enrolment that uses them. Only a hash of the
  challenge is stored, keyed per CA, so a challenge of one CA is nothing at another.

The Intune front-end supplies its own verifier (the Intune validation API) and reuses
everything else; `report_issued`/`report_failed` exist for such verifiers, which must
tell their service how the enrolment ended.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import secrets
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Protocol

from cryptography import x509

from ca_core.audit import AuditEntry
from ca_core.errors import BadRequest, NotFound
from ca_core.services import Services
from ca_core.x509.names import parse_dn
from protocols.scep.core import MAX_CHALLENGE_TTL, ChallengeMode, ScepSettings, parse_settings
from protocols.scep.errors import FailInfo, ScepFailure

CHALLENGE_NAMESPACE = "scep-challenge"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}
_REMEMBER_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class ChallengeContext:
    """What a verifier may look at: the request and where it came from."""

    protocol: str
    ca: str
    transaction_id: str
    password: str | None
    csr: x509.CertificateSigningRequest


class ChallengeVerifier(Protocol):
    async def verify(self, context: ChallengeContext) -> str:
        """Accept the request (returning the principal to record, e.g. "static-challenge")
        or raise ScepFailure(badRequest)."""
        ...

    async def report_issued(self, context: ChallengeContext, certificate: bytes) -> None:
        """The enrolment ended with this certificate."""
        ...

    async def report_failed(self, context: ChallengeContext, reason: str) -> None:
        """The enrolment was refused after `verify` accepted it (policy, approval...)."""
        ...


class _Reporting:
    async def report_issued(self, context: ChallengeContext, certificate: bytes) -> None:
        return None

    async def report_failed(self, context: ChallengeContext, reason: str) -> None:
        return None


class NoChallenge(_Reporting):
    async def verify(self, context: ChallengeContext) -> str:
        return "anonymous"


def hash_static_challenge(password: str, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def check_settings(raw: dict[str, object]) -> ScepSettings:
    """Binding settings as stored: a given challenge_password is replaced by its hash."""
    return parse_settings(raw, hash_secret=hash_static_challenge)


class RememberedSecrets:
    """Recently verified (hash, password) pairs of this process: a cache, not state."""

    def __init__(self, limit: int = 4096) -> None:
        self._seen: dict[str, float] = {}
        self._limit = limit

    def _key(self, stored: str, password: str) -> str:
        return hashlib.sha256(f"{stored}\0{password}".encode()).hexdigest()

    def recalls(self, stored: str, password: str) -> bool:
        at = self._seen.get(self._key(stored, password))
        return at is not None and time.monotonic() - at < _REMEMBER_SECONDS

    def remember(self, stored: str, password: str) -> None:
        if len(self._seen) >= self._limit:
            self._seen.clear()
        self._seen[self._key(stored, password)] = time.monotonic()


class StaticChallenge(_Reporting):
    def __init__(
        self, stored_hash: str, remembered: RememberedSecrets, executor: Executor | None = None
    ) -> None:
        self._stored = stored_hash
        self._remembered = remembered
        self._executor = executor

    async def verify(self, context: ChallengeContext) -> str:
        password = context.password
        if not password:
            raise ScepFailure(FailInfo.BAD_REQUEST, "the CSR has no challengePassword")
        if self._remembered.recalls(self._stored, password):
            return "static-challenge"
        _, salt, expected = self._stored.split("$")
        # scrypt takes tens of milliseconds by design: off the event loop.
        computed = await asyncio.get_running_loop().run_in_executor(
            self._executor, hash_static_challenge, password, bytes.fromhex(salt)
        )
        if not hmac.compare_digest(computed.split("$")[2], expected):
            raise ScepFailure(FailInfo.BAD_REQUEST, "wrong challengePassword")
        self._remembered.remember(self._stored, password)
        return "static-challenge"


def challenge_key(ca: str, challenge: str) -> str:
    return hashlib.sha256(f"{ca}\0{challenge}".encode()).hexdigest()


class DynamicChallenges(_Reporting):
    """One-time challenges in the state store, consumed atomically on first use."""

    def __init__(self, services: Services) -> None:
        self._services = services

    async def verify(self, context: ChallengeContext) -> str:
        if not context.password:
            raise ScepFailure(FailInfo.BAD_REQUEST, "the CSR has no challengePassword")
        state = self._services.store.state
        key = challenge_key(context.ca, context.password)
        now = self._services.clock.now()
        doc = await state.get(CHALLENGE_NAMESPACE, key, now=now)
        if doc is None:
            raise ScepFailure(FailInfo.BAD_REQUEST, "unknown, used or expired challengePassword")
        subject = doc.document.get("subject")
        if subject is not None and not _same_name(parse_dn(subject), context.csr.subject):
            # Not consumed: the device it was made for can still use it.
            raise ScepFailure(FailInfo.BAD_REQUEST, "the challengePassword was issued for another subject")
        # Deleting is the consumption: of two concurrent uses, one deletes the row.
        if not await state.delete(CHALLENGE_NAMESPACE, key):
            raise ScepFailure(FailInfo.BAD_REQUEST, "unknown, used or expired challengePassword")
        return f"dynamic-challenge:{doc.document.get('id', '?')}"


def _same_name(a: x509.Name, b: x509.Name) -> bool:
    if a == b:
        return True
    return a.rfc4514_string().casefold() == b.rfc4514_string().casefold()


class VerifierFactory(Protocol):
    def __call__(self, services: Services, settings: ScepSettings) -> ChallengeVerifier: ...


def challenge_verifiers(remembered: RememberedSecrets) -> VerifierFactory:
    """The standard verifier per binding setting; `remembered` lives as long as the app."""

    def verifier_for(services: Services, settings: ScepSettings) -> ChallengeVerifier:
        if settings.challenge is ChallengeMode.STATIC:
            assert settings.challenge_hash is not None
            return StaticChallenge(settings.challenge_hash, remembered, services.executor)
        if settings.challenge is ChallengeMode.DYNAMIC:
            return DynamicChallenges(services)
        return NoChallenge()

    return verifier_for


# --- creating dynamic challenges ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IssuedChallenge:
    challenge: str  # shown once; only its hash is stored
    id: str
    ca: str
    subject: str | None
    expires_at: dt.datetime


async def create_challenge(
    services: Services,
    ca: str,
    subject: str | None = None,
    ttl_seconds: int | None = None,
    actor: str = "system",
    protocol: str = "scep",
) -> IssuedChallenge:
    """A one-time challengePassword for the `protocol` binding on `ca`, which must use
    dynamic challenges. Valid `ttl_seconds` (default: the binding's), for `subject` only
    when given (an RFC 4514 DN the CSR's subject must equal)."""
    record = await services.store.bindings.get(protocol, ca)
    if record is None:
        raise NotFound(f"no {protocol} binding on CA {ca}", ca=ca)
    settings = parse_settings(
        {k: v for k, v in record.settings.items() if k not in ("allowed_profiles", "default_profile")}
    )
    if settings.challenge is not ChallengeMode.DYNAMIC:
        raise BadRequest(
            f"the {protocol} binding on {ca} uses challenge {settings.challenge.value!r}, not 'dynamic'",
            ca=ca,
        )
    ttl = ttl_seconds if ttl_seconds is not None else settings.challenge_ttl_seconds
    if not 60 <= ttl <= MAX_CHALLENGE_TTL:
        raise BadRequest(f"ttl must be from 60 to {MAX_CHALLENGE_TTL} seconds")
    normalised = parse_dn(subject).rfc4514_string() if subject else None
    now = services.clock.now()
    challenge = services.random_bytes(16).hex().upper()  # NDES's shape: 32 hex digits
    challenge_id = services.random_bytes(6).hex()
    expires_at = now + dt.timedelta(seconds=ttl)
    document = {"id": challenge_id, "subject": normalised, "created_by": actor}
    async with services.store.db.transaction() as uow:
        await services.store.state.create(
            CHALLENGE_NAMESPACE,
            challenge_key(ca, challenge),
            document,
            now,
            lookup=ca,
            expires_at=expires_at,
            uow=uow,
        )
        uow.audit(
            AuditEntry(
                now,
                f"{protocol}.challenge_created",
                actor,
                ca,
                None,
                {"id": challenge_id, "subject": normalised, "expires_at": expires_at.isoformat()},
            )
        )
    return IssuedChallenge(challenge, challenge_id, ca, normalised, expires_at)
