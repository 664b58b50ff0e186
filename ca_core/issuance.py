"""IssuanceService: the one call every protocol ends in (ARCHITECTURE.md section 3).

issue(request): validate -> rate limit -> build -> sign -> store -> return.
- Proof of possession: a CSR's signature is always verified; a bare public key is
  accepted only when the protocol says it has proven possession (CMP POPO, keygen).
- Subscriber keys: the six types only.
- The profile must be enabled on an active issuing CA; KU/EKU come from the profile.
- Validity: default 3 years, capped by the profile and by the CA's own expiry.
- The certificate is committed (with its audit entry) before issue() returns; a refused
  request writes only its audit entry, never a certificate.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from ca_core.audit import Action, AuditEntry
from ca_core.authority import Authority, CertificateAuthority
from ca_core.clock import Clock, RandomBytes
from ca_core.errors import (
    BadRequest,
    CegError,
    Conflict,
    InvalidState,
    PolicyViolation,
    ProfileNotEnabled,
    RateLimited,
)
from ca_core.model import (
    CaKind,
    CertificateRecord,
    CertStatus,
    IssuanceRequest,
    IssuedCertificate,
    KeyAlgorithm,
)
from ca_core.profiles import Catalogue, Profile
from ca_core.store import Store
from ca_core.x509.certificate import CertificateSpec, new_serial
from ca_core.x509.csr import parse_csr
from ca_core.x509.extensions import (
    FixedExtensions,
    IssuerRef,
    PublicationUrls,
    build_extensions,
    fixed_extensions,
)
from ca_core.x509.names import check_general_name, san_text
from ca_core.x509.signing_batch import SigningBatcher

log = logging.getLogger(__name__)

# Certificates start a little in the past so a relying party whose clock lags still
# accepts a fresh certificate.
BACKDATE = dt.timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class RateLimit:
    count: int
    per_seconds: int


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Issuance rate limits; None means unlimited (the default)."""

    per_ca: RateLimit | None = None
    per_requester: RateLimit | None = None


@dataclass(frozen=True, slots=True)
class IssuanceOutcome:
    """What an observer hears after each issue() call (metrics; no library in the core)."""

    ca: str
    profile: str
    error: str | None  # None: issued; else the CegError code
    seconds: float  # the whole call
    signing_seconds: float | None = None
    algorithm: str | None = None  # the CA key's KeyAlgorithm value


class IssuanceObserver(Protocol):
    def observe(self, outcome: IssuanceOutcome) -> None: ...


@dataclass(frozen=True, slots=True)
class _Prepared:
    ca: CertificateAuthority
    profile: Profile
    spec: CertificateSpec
    sans: tuple[str, ...]


class IssuanceService:
    def __init__(
        self,
        store: Store,
        authority: Authority,
        catalogue: Catalogue,
        clock: Clock,
        random_bytes: RandomBytes,
        urls: PublicationUrls,
        executor: Executor | None = None,
        rate_limits: RateLimits | None = None,
    ) -> None:
        self._store = store
        self._authority = authority
        self._catalogue = catalogue
        self._clock = clock
        self._random = random_bytes
        self._urls = urls
        self._signing = SigningBatcher(executor)
        self._limits = rate_limits or RateLimits()
        self._fixed: dict[tuple[str, bool, IssuerRef, bool], FixedExtensions] = {}
        self._observers: list[IssuanceObserver] = []

    def add_observer(self, observer: IssuanceObserver) -> None:
        if observer not in self._observers:
            self._observers.append(observer)

    def remove_observer(self, observer: IssuanceObserver) -> None:
        if observer in self._observers:
            self._observers.remove(observer)

    def _tell(self, outcome: IssuanceOutcome) -> None:
        for observer in self._observers:
            try:
                observer.observe(outcome)
            except Exception:  # an observer must never fail an issuance
                log.exception("issuance observer failed")

    async def issue(self, request: IssuanceRequest) -> IssuedCertificate:
        started = time.perf_counter()
        try:
            prepared = await self._prepare(request)
            await self._check_rate(request)
        except CegError as exc:
            await self._audit_refusal(request, exc)
            self._tell(IssuanceOutcome(request.ca, request.profile, exc.code, time.perf_counter() - started))
            raise
        signer = prepared.ca.require_signer()
        signing_started = time.perf_counter()
        der = await self._signing.sign(prepared.spec, signer)
        signing_seconds = time.perf_counter() - signing_started
        spec = prepared.spec
        now = self._clock.now()
        record = CertificateRecord(
            serial=format(spec.serial, "x"),
            ca=prepared.ca.id,
            profile=prepared.profile.id,
            subject=spec.subject.rfc4514_string(),
            sans=prepared.sans,
            status=CertStatus.NORMAL,
            not_before=spec.not_before,
            not_after=spec.not_after,
            der=der,
            issued_at=now,
            requester=request.requester.as_dict(),
            renewal_of=request.renewal_of,
            request_key=request.request_key,
        )
        audit = AuditEntry(
            now,
            Action.CERT_ISSUED,
            f"{request.requester.protocol}:{request.requester.principal}",
            prepared.ca.id,
            record.serial,
            {
                "profile": record.profile,
                "subject": record.subject,
                "sans": list(record.sans),
                "not_after": record.not_after.isoformat(),
                "renewal_of": request.renewal_of,
                "remote_addr": request.requester.remote_addr,
                "request_id": request.requester.request_id,
            },
        )
        try:
            await self._store.certificates.insert(record, audit, ca_must_be_active=True)
        except InvalidState as exc:  # deleted meanwhile, by this worker or another
            self._authority.forget(prepared.ca.id)
            await self._audit_refusal(request, exc)
            self._tell(IssuanceOutcome(request.ca, request.profile, exc.code, time.perf_counter() - started))
            raise
        except Conflict:
            earlier = await self._already_issued(request)
            if earlier is None:
                raise
            # The key's certificate was stored before; this signature is dropped unseen.
            return IssuedCertificate(
                der=earlier.der,
                serial=earlier.serial_int,
                ca=earlier.ca,
                profile=earlier.profile,
                not_before=earlier.not_before,
                not_after=earlier.not_after,
                chain=prepared.ca.chain,
            )
        self._tell(
            IssuanceOutcome(
                prepared.ca.id,
                prepared.profile.id,
                None,
                time.perf_counter() - started,
                signing_seconds,
                signer.algorithm.value,
            )
        )
        return IssuedCertificate(
            der=der,
            serial=spec.serial,
            ca=prepared.ca.id,
            profile=prepared.profile.id,
            not_before=spec.not_before,
            not_after=spec.not_after,
            chain=prepared.ca.chain,
        )

    async def _prepare(self, request: IssuanceRequest) -> _Prepared:
        if request.request_key is not None and not 1 <= len(request.request_key) <= 64:
            raise BadRequest("request key of 1 to 64 characters")
        ca = await self._authority.get(request.ca)
        ca.require_active()
        profile = self._catalogue[request.profile]
        self._check_profile(ca, profile, request)
        public_key, key_algorithm, csr_subject, csr_sans = self._subject_key(request)
        subject = request.subject if request.subject is not None else csr_subject
        raw_sans = request.subject_alt_names if request.subject_alt_names is not None else csr_sans
        sans = tuple(check_general_name(n) for n in raw_sans)
        if len(set(sans)) != len(sans):
            raise BadRequest("duplicate subject alternative names")
        if not list(subject) and not sans:
            raise BadRequest("the certificate would name nobody: empty subject and no SAN")
        not_before, not_after = self._validity(request, profile, ca)
        assert ca.certificate is not None
        issuer = IssuerRef(ca.id, ca.key_identifier)
        extensions = build_extensions(
            profile,
            public_key,
            key_algorithm,
            issuer,
            self._urls,
            aia_enabled=ca.ocsp_enabled,
            subject_alt_names=sans,
            subject_is_empty=not list(subject),
            requested=request.extensions,
            fixed=self._fixed_extensions(profile, key_algorithm, issuer, ca.ocsp_enabled),
        )
        spec = CertificateSpec(
            subject=subject,
            issuer=ca.certificate.subject,
            public_key=public_key,
            serial=new_serial(self._random),
            not_before=not_before,
            not_after=not_after,
            extensions=extensions,
        )
        return _Prepared(ca, profile, spec, tuple(san_text(n) for n in sans))

    def _fixed_extensions(
        self, profile: Profile, key: KeyAlgorithm, issuer: IssuerRef, aia: bool
    ) -> FixedExtensions:
        """The profile's fixed extensions for this CA and key family, built once per process."""
        cache_key = (profile.id, key.is_ec, issuer, aia)
        fixed = self._fixed.get(cache_key)
        if fixed is None:
            if len(self._fixed) > 4096:  # profiles x key families x CAs; a bound, not an eviction policy
                self._fixed.clear()
            fixed = self._fixed[cache_key] = fixed_extensions(profile, key, issuer, self._urls, aia)
        return fixed

    def _check_profile(self, ca: CertificateAuthority, profile: Profile, request: IssuanceRequest) -> None:
        if profile.ca:
            raise ProfileNotEnabled(
                f"{profile.id} is a CA profile; CAs are created, not issued", profile=profile.id
            )
        if profile.internal:
            if not request.allow_internal_profile:
                raise ProfileNotEnabled(f"profile {profile.id} is internal to ceg", profile=profile.id)
            return
        if ca.kind is not CaKind.ISSUING:
            raise ProfileNotEnabled(f"CA {ca.id} is a root; subscriber certificates come from issuing CAs")
        if profile.service not in ca.services:
            raise ProfileNotEnabled(
                f"profile {profile.id} needs the {profile.service} service, which CA {ca.id} does not enable",
                profile=profile.id,
                ca=ca.id,
            )

    def _subject_key(
        self, request: IssuanceRequest
    ) -> tuple[CertificatePublicKeyTypes, KeyAlgorithm, x509.Name, tuple[x509.GeneralName, ...]]:
        if (request.csr is None) == (request.public_key is None):
            raise BadRequest("give exactly one of a CSR or a public key")
        if request.csr is not None:
            parsed = parse_csr(request.csr)
            return (
                parsed.subject_key if parsed.subject_key is not None else parsed.csr.public_key(),
                parsed.key_algorithm,
                parsed.subject,
                parsed.subject_alt_names(),
            )
        if not request.pop_verified:
            raise BadRequest("a bare public key needs proof of possession checked by the protocol")
        assert request.public_key is not None
        try:
            key = serialization.load_der_public_key(request.public_key)
        except ValueError as exc:
            raise BadRequest(f"public key does not parse: {exc}") from None
        algorithm = KeyAlgorithm.of_public_key(key)
        return key, algorithm, x509.Name([]), ()  # type: ignore[return-value]

    def _validity(
        self, request: IssuanceRequest, profile: Profile, ca: CertificateAuthority
    ) -> tuple[dt.datetime, dt.datetime]:
        now = self._clock.now().replace(microsecond=0)
        not_before = (request.not_before or (now - BACKDATE)).replace(microsecond=0)
        if not_before < now - dt.timedelta(days=1) or not_before > now + dt.timedelta(days=1):
            raise PolicyViolation("notBefore must be within a day of now")
        not_before = max(not_before, ca.record.not_before or not_before)
        rule = profile.validity
        if rule.fixed:
            not_after = rule.default_end(not_before)
        elif request.not_after is not None:
            not_after = request.not_after.replace(microsecond=0)
        elif request.validity is not None:
            not_after = not_before + request.validity
        else:
            not_after = rule.default_end(not_before)
        if not_after <= not_before:
            raise BadRequest("notAfter must be after notBefore")
        latest = rule.latest_end(not_before)
        if latest is not None:
            not_after = min(not_after, latest)
        # Never past the issuing CA (seed 1.1.2.3): cap rather than refuse.
        not_after = min(not_after, ca.not_after)
        if not_after <= now:
            raise PolicyViolation(f"CA {ca.id} expires too soon to issue")
        return not_before, not_after

    async def _check_rate(self, request: IssuanceRequest) -> None:
        now = self._clock.now()
        checks = []
        if self._limits.per_ca is not None:
            checks.append((f"ca:{request.ca}", self._limits.per_ca))
        if self._limits.per_requester is not None:
            who = f"{request.requester.protocol}:{request.requester.principal}"
            checks.append((f"requester:{request.ca}:{who}", self._limits.per_requester))
        for name, limit in checks:
            window = int(now.timestamp()) // limit.per_seconds
            window_end = dt.datetime.fromtimestamp((window + 1) * limit.per_seconds, dt.UTC)
            count = await self._store.counters.add_in_window(f"rate:{name}:{window}", window_end, now)
            if count > limit.count:
                raise RateLimited(
                    f"rate limit of {limit.count} certificates per {limit.per_seconds}s reached for {name}",
                    retry_after=max(1.0, (window_end - now).total_seconds()),
                )

    async def _already_issued(self, request: IssuanceRequest) -> CertificateRecord | None:
        """The certificate stored earlier under the request's idempotency key, if any."""
        if request.request_key is None:
            return None
        earlier = await self._store.certificates.by_request_key(request.request_key)
        if earlier is not None and earlier.ca != request.ca:
            raise Conflict("this request key belongs to a certificate of another CA", ca=request.ca)
        return earlier

    async def _audit_refusal(self, request: IssuanceRequest, exc: CegError) -> None:
        entry = AuditEntry(
            self._clock.now(),
            Action.CERT_REFUSED,
            f"{request.requester.protocol}:{request.requester.principal}",
            request.ca,
            None,
            {
                "profile": request.profile,
                "code": exc.code,
                "reason": exc.message,
                "remote_addr": request.requester.remote_addr,
                "request_id": request.requester.request_id,
            },
        )
        await self._store.db.insert_batched([], [entry])
