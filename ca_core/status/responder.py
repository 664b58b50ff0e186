"""The OCSP responder service: the pure responder (`ocsp`) plus lookups, signing keys and
the pre-signed fast path (RFC 5019 sections 2.2 and 6).

- Requests without a nonce are answered from pre-signed responses: one stored per
  certificate (SHA-1 CertID, what RFC 5019 clients send), signed by the scheduler ahead
  of time, re-signed after `refresh_after` and on every status change, and kept in each
  worker's memory keyed by the request bytes, so a repeated GET or POST costs a dict
  lookup. Only a first request for a certificate, or a CertID in another form, signs.
- Requests with a nonce are signed per request (the nonce makes each answer unique).
- A stored response is used only if it still matches the certificate (its status change
  time), the current signing key and the CertID as sent; otherwise it is re-signed.
- Each worker asks the audit log for status changes every `poll_seconds` and drops what
  it cached for those certificates, so a revocation made by another worker or replica is
  answered within about a second; the worker that made the change drops at once.
- Per CA (CA row settings, key `ocsp`): `signer` is "responder" (a delegated responder
  certificate, the default) or "ca" (the CA key); `require_signed_requests` refuses
  unsigned requests with sigRequired.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from ca_core.audit import AuditEntry
from ca_core.authority import Authority
from ca_core.clock import Clock
from ca_core.errors import BadRequest, CegError, NotFound
from ca_core.keys import with_signer
from ca_core.model import CaState, CertificateRecord, CertStatus, RevocationReason
from ca_core.status.ocsp import (
    GOOD,
    CertificateStatus,
    IssuerIdentity,
    OcspRefusal,
    OcspRequest,
    ResponderIdentity,
    ResponseStatus,
    Revoked,
    Unknown,
    answer,
    error_response,
    issuer_serials,
    parse_request,
    sign_response,
    verify_request_signature,
)
from ca_core.status.responder_certs import ResponderCertificates
from ca_core.status.storage import CertificateState, StatusStore, StoredResponse
from ca_core.store import Store

log = logging.getLogger(__name__)

OCSP_SETTINGS_CHANGED = "ca.ocsp_settings_changed"  # audit action
PRESIGN_HASH = "sha1"
_PRESIGN_BATCH = 500


@dataclass(frozen=True, slots=True)
class OcspPolicy:
    validity: dt.timedelta = dt.timedelta(days=4)  # nextUpdate - thisUpdate
    refresh_after: dt.timedelta = dt.timedelta(days=1)  # re-sign a pre-signed response this old
    http_max_age: dt.timedelta = dt.timedelta(hours=1)  # cap on Cache-Control max-age
    unknown_lifetime: dt.timedelta = dt.timedelta(minutes=10)  # how long an `unknown` is reused
    context_seconds: float = 5.0  # how long a CA's signing context is reused
    poll_seconds: float = 1.0  # how often the audit log is asked for status changes
    cache_entries: int = 50_000  # responses kept in memory per worker (~1 KB each)


@dataclass(frozen=True, slots=True)
class OcspSettings:
    """Per-CA OCSP settings, kept in the CA row's `settings["ocsp"]`."""

    signer: str = "responder"  # "responder" | "ca"
    require_signed_requests: bool = False

    @classmethod
    def of(cls, settings: Mapping[str, Any]) -> OcspSettings:
        raw = settings.get("ocsp") or {}
        signer = raw.get("signer", "responder")
        if signer not in ("responder", "ca"):
            signer = "responder"
        return cls(signer, bool(raw.get("require_signed_requests", False)))

    def as_dict(self) -> dict[str, Any]:
        return {"signer": self.signer, "require_signed_requests": self.require_signed_requests}


@dataclass(frozen=True, slots=True)
class OcspReply:
    """A response and what HTTP needs to cache it (RFC 5019 6.2)."""

    der: bytes
    status: ResponseStatus
    this_update: dt.datetime | None = None
    next_update: dt.datetime | None = None
    cacheable: bool = False  # no nonce: the same request gets the same bytes until refreshed
    etag: str | None = None
    message: str | None = None  # why a request was refused (for the log, not the wire)

    def max_age(self, now: dt.datetime, cap: dt.timedelta) -> int:
        if self.next_update is None:
            return 0
        return max(0, int(min((self.next_update - now).total_seconds(), cap.total_seconds())))


def refused(status: ResponseStatus, message: str) -> OcspReply:
    return OcspReply(error_response(status), status, message=message)


@dataclass(frozen=True)
class _Context:
    """What answering for one CA needs, reloaded every `context_seconds`."""

    ca_id: str
    identity: IssuerIdentity
    settings: OcspSettings
    responder: ResponderIdentity
    sign: Callable[[bytes], bytes]
    blocking: bool
    signer_ref: str
    signer_not_after: dt.datetime
    archive_cutoff: dt.datetime
    loaded: float


@dataclass(slots=True)
class _Cached:
    reply: OcspReply
    fresh_until: dt.datetime
    serials: tuple[str, ...]


def certificate_status(state: CertificateState | None) -> CertificateStatus:
    if state is None:
        return Unknown()
    if state.status is CertStatus.HELD:
        return Revoked(state.revoked_at or state.status_changed_at, RevocationReason.CERTIFICATE_HOLD)
    if state.status is CertStatus.REVOKED:
        reason = state.reason if state.reason is not RevocationReason.UNSPECIFIED else None
        return Revoked(state.revoked_at or state.status_changed_at, reason)
    return GOOD  # normal, and expired (RFC 6960 keeps answering; see archiveCutoff)


def _etag(der: bytes) -> str:
    return '"' + hashlib.sha256(der).hexdigest()[:32] + '"'


class OcspResponder:
    """Answers OCSP requests for every OCSP-enabled CA; also a StatusListener."""

    def __init__(
        self,
        store: Store,
        status: StatusStore,
        authority: Authority,
        responders: ResponderCertificates,
        clock: Clock,
        executor: Executor | None = None,
        policy: OcspPolicy | None = None,
    ) -> None:
        self._store = store
        self._status = status
        self._authority = authority
        self.responders = responders
        self._clock = clock
        self._executor = executor
        self.policy = policy or OcspPolicy()
        self._contexts: dict[str, _Context] = {}
        self._cache: dict[tuple[str, bytes], _Cached] = {}
        self._by_serial: dict[str, set[tuple[str, bytes]]] = {}
        self._seen_seq: int | None = None
        self._polled = float("-inf")
        self._trusted: tuple[float, list[x509.Certificate]] = (float("-inf"), [])

    # --- answering ----------------------------------------------------------------------

    async def respond(self, ca_id: str, data: bytes) -> OcspReply:
        """The response to one OCSPRequest (DER) sent to `/ocsp/{ca_id}`."""
        await self._poll_changes()
        now = self._clock.now()
        key = (ca_id, data)
        hit = self._cache.get(key)
        if hit is not None and now < hit.fresh_until:
            return hit.reply
        seen = self._seen_seq
        try:
            request = parse_request(data)
            context = await self._context(ca_id)
            await self._check_signature(context, request, now)
            return await self._answer(context, key, request, now, seen)
        except OcspRefusal as refusal:
            return refused(refusal.status, refusal.message)
        except CegError as exc:
            log.warning("OCSP internal error", extra={"ca": ca_id, "error": exc.message})
            return refused(ResponseStatus.INTERNAL_ERROR, exc.message)

    async def _answer(
        self,
        context: _Context,
        key: tuple[str, bytes],
        request: OcspRequest,
        now: dt.datetime,
        seen: int | None,
    ) -> OcspReply:
        serials = issuer_serials(request, context.identity)
        if not serials:
            raise OcspRefusal(
                ResponseStatus.UNAUTHORIZED, f"no requested certificate was issued by {context.ca_id}"
            )
        single = request.cert_ids[0] if len(request.cert_ids) == 1 else None
        states: dict[str, CertificateState] = {}
        if single is not None and request.nonce is None:
            assert single.hash_name is not None  # it names this CA, so the hash is ours
            state, stored = await self._status.state_and_response(single.serial_hex, single.hash_name)
            if state is not None and state.ca != context.ca_id:
                state = None  # that serial belongs to another CA's certificate
            if (
                state is not None
                and stored is not None
                and self._usable(stored, state, context, single.der, now)
            ):
                reply = OcspReply(
                    stored.der,
                    ResponseStatus.SUCCESSFUL,
                    stored.this_update,
                    stored.next_update,
                    cacheable=True,
                    etag=_etag(stored.der),
                )
                fresh_until = self._fresh_until(stored.this_update, stored.next_update)
                self._remember(key, reply, fresh_until, seen, (single.serial_hex,))
                return reply
            if state is not None:
                states[state.serial] = state
        else:
            found = await self._status.states([format(s, "x") for s in serials])
            states = {s: st for s, st in found.items() if st.ca == context.ca_id}
        this_update = now.replace(microsecond=0)
        next_update = min(this_update + self.policy.validity, context.signer_not_after)
        statuses = {int(s, 16): certificate_status(st) for s, st in states.items()}
        answers = answer(
            request, context.identity, statuses, this_update, next_update, context.archive_cutoff
        )
        der = await self._sign(context, this_update, answers, request.nonce)
        if request.nonce is not None:
            return OcspReply(der, ResponseStatus.SUCCESSFUL, this_update, next_update)
        reply = OcspReply(
            der, ResponseStatus.SUCCESSFUL, this_update, next_update, cacheable=True, etag=_etag(der)
        )
        if single is not None and states:
            state = next(iter(states.values()))
            assert single.hash_name is not None
            await self._status.store_responses(
                [self._stored(context, state, single.hash_name, single.der, der, this_update, next_update)]
            )
        all_known = len(states) == len(request.cert_ids)
        fresh_until = (
            self._fresh_until(this_update, next_update)
            if all_known
            else min(this_update + self.policy.unknown_lifetime, next_update)
        )
        self._remember(key, reply, fresh_until, seen, tuple(c.serial_hex for c in request.cert_ids))
        return reply

    def _usable(
        self,
        stored: StoredResponse,
        state: CertificateState,
        context: _Context,
        cert_id: bytes,
        now: dt.datetime,
    ) -> bool:
        return (
            stored.cert_id == cert_id
            and stored.signer == context.signer_ref
            and stored.status_changed_at == state.status_changed_at
            and stored.this_update > now - self.policy.refresh_after
            and stored.next_update > now
        )

    def _fresh_until(self, this_update: dt.datetime, next_update: dt.datetime) -> dt.datetime:
        return min(this_update + self.policy.refresh_after, next_update)

    @staticmethod
    def _stored(
        context: _Context,
        state: CertificateState,
        hash_alg: str,
        cert_id: bytes,
        der: bytes,
        this_update: dt.datetime,
        next_update: dt.datetime,
    ) -> StoredResponse:
        return StoredResponse(
            serial=state.serial,
            hash_alg=hash_alg,
            ca_id=context.ca_id,
            cert_id=cert_id,
            signer=context.signer_ref,
            status_changed_at=state.status_changed_at,
            this_update=this_update,
            next_update=next_update,
            der=der,
        )

    async def _sign(
        self, context: _Context, produced_at: dt.datetime, answers: list[Any], nonce: bytes | None
    ) -> bytes:
        return await with_signer(
            context.blocking,
            self._executor,
            sign_response,
            context.responder,
            context.sign,
            produced_at,
            answers,
            nonce,
        )

    async def _check_signature(self, context: _Context, request: OcspRequest, now: dt.datetime) -> None:
        if request.signature is None:
            if context.settings.require_signed_requests:
                raise OcspRefusal(ResponseStatus.SIG_REQUIRED, f"{context.ca_id} requires signed requests")
            return
        signer, _issuer = verify_request_signature(request.signature, await self._trusted_issuers(), now)
        serial = format(signer.serial_number, "x")
        state = (await self._status.states([serial])).get(serial)
        if state is None:
            raise OcspRefusal(ResponseStatus.UNAUTHORIZED, "the request signer certificate is not on record")
        if state.status in (CertStatus.REVOKED, CertStatus.HELD):
            raise OcspRefusal(ResponseStatus.UNAUTHORIZED, "the request signer certificate is revoked")

    async def _trusted_issuers(self) -> list[x509.Certificate]:
        """Every active CA's certificate: a signed request's signer must come from one."""
        loop_time = asyncio.get_running_loop().time()
        loaded, issuers = self._trusted
        if loop_time - loaded < self.policy.context_seconds:
            return issuers
        issuers = [
            x509.load_der_x509_certificate(r.certificate)
            for r in await self._authority.list()
            if r.state is CaState.ACTIVE and r.certificate
        ]
        self._trusted = (loop_time, issuers)
        return issuers

    # --- per-CA context -------------------------------------------------------------------

    async def _context(self, ca_id: str) -> _Context:
        loop_time = asyncio.get_running_loop().time()
        cached = self._contexts.get(ca_id)
        if (
            cached is not None
            and loop_time - cached.loaded < self.policy.context_seconds
            and cached.signer_not_after - self._clock.now() >= self.policy.validity
        ):
            return cached
        try:
            ca = await self._authority.get(ca_id)
        except NotFound:
            raise OcspRefusal(ResponseStatus.UNAUTHORIZED, f"no CA {ca_id!r}") from None
        if ca.state is not CaState.ACTIVE or not ca.ocsp_enabled or ca.certificate is None:
            raise OcspRefusal(ResponseStatus.UNAUTHORIZED, f"OCSP is not enabled on CA {ca_id!r}")
        settings = OcspSettings.of(ca.record.settings)
        if settings.signer == "ca":
            signer = ca.require_signer()
            responder = ResponderIdentity.of(signer.public_key(), signer.algorithm)
            signer_not_after = ca.not_after
        else:
            credential = await self.responders.ensure(ca, min_remaining=self.policy.validity)
            signer = await self.responders.signer(credential)
            responder = ResponderIdentity.of(signer.public_key(), signer.algorithm, [credential.certificate])
            signer_not_after = credential.not_after
        context = _Context(
            ca_id=ca_id,
            identity=cached.identity if cached else IssuerIdentity.of_certificate(ca.certificate),
            settings=settings,
            responder=responder,
            sign=signer.sign,
            blocking=signer.blocking,
            signer_ref=signer.key_ref,
            signer_not_after=signer_not_after,
            archive_cutoff=ca.record.not_before or ca.certificate.not_valid_before_utc,
            loaded=loop_time,
        )
        if cached is not None and (cached.signer_ref != context.signer_ref or cached.settings != settings):
            self._forget_ca(ca_id)
        self._contexts[ca_id] = context
        return context

    # --- the in-memory cache ----------------------------------------------------------------

    def _remember(
        self,
        key: tuple[str, bytes],
        reply: OcspReply,
        fresh_until: dt.datetime,
        seen: int | None,
        serials: tuple[str, ...],
    ) -> None:
        if seen != self._seen_seq:
            return  # a status change was seen while this was being answered: do not keep it
        if len(self._cache) >= self.policy.cache_entries:
            oldest = next(iter(self._cache))
            self._drop(oldest)
        self._cache[key] = _Cached(reply, fresh_until, serials)
        for serial in serials:
            self._by_serial.setdefault(serial, set()).add(key)

    def _drop(self, key: tuple[str, bytes]) -> None:
        cached = self._cache.pop(key, None)
        if cached is None:
            return
        for serial in cached.serials:
            keys = self._by_serial.get(serial)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_serial[serial]

    def forget_serial(self, serial: str) -> None:
        for key in list(self._by_serial.get(serial, ())):
            self._drop(key)

    def _forget_ca(self, ca_id: str) -> None:
        for key in [k for k in self._cache if k[0] == ca_id]:
            self._drop(key)

    async def _poll_changes(self) -> None:
        loop_time = asyncio.get_running_loop().time()
        if loop_time - self._polled < self.policy.poll_seconds:
            return
        self._polled = loop_time
        if self._seen_seq is None:
            self._seen_seq = await self._status.audit_head()
            return
        for change in await self._status.status_changes_after(self._seen_seq):
            if change.serial:
                self.forget_serial(change.serial)
            self._seen_seq = change.seq

    # --- pre-signing (scheduler and status changes) ----------------------------------------

    async def presign(self, ca_id: str, limit: int = 20_000) -> int:
        """Sign responses for certificates of `ca_id` that have no current one; returns how many."""
        try:
            context = await self._context(ca_id)
        except OcspRefusal:
            return 0
        now = self._clock.now()
        states = await self._status.due_for_presigning(
            ca_id, PRESIGN_HASH, context.signer_ref, now - self.policy.refresh_after, now, limit
        )
        for start in range(0, len(states), _PRESIGN_BATCH):
            batch = states[start : start + _PRESIGN_BATCH]
            await self._presign_batch(context, batch)
            await asyncio.sleep(0)  # let requests in between batches
        return len(states)

    async def _presign_batch(self, context: _Context, states: list[CertificateState]) -> None:
        this_update = self._clock.now().replace(microsecond=0)
        next_update = min(this_update + self.policy.validity, context.signer_not_after)

        def sign_all() -> list[StoredResponse]:
            out = []
            for state in states:
                cert_id = context.identity.cert_id(int(state.serial, 16), PRESIGN_HASH)
                single = answer(
                    OcspRequest((cert_id,), None, None),
                    context.identity,
                    {int(state.serial, 16): certificate_status(state)},
                    this_update,
                    next_update,
                    context.archive_cutoff,
                )
                der = sign_response(context.responder, context.sign, this_update, single, None)
                out.append(
                    self._stored(context, state, PRESIGN_HASH, cert_id.der, der, this_update, next_update)
                )
            return out

        responses = await with_signer(context.blocking, self._executor, sign_all)
        await self._status.store_responses(responses)

    async def status_changed(self, record: CertificateRecord, publish_now: bool) -> None:
        """StatusListener: drop what this worker cached and re-sign the stored response at
        once (only where one exists, so a revocation never creates a responder)."""
        self.forget_serial(record.serial)
        if not await self._status.has_response(record.serial):
            return
        try:
            context = await self._context(record.ca)
        except OcspRefusal:
            return
        state = (await self._status.states([record.serial])).get(record.serial)
        if state is not None:
            await self._presign_batch(context, [state])

    async def renew_responders(self) -> list[str]:
        """The scheduler's renewal pass over OCSP-enabled CAs that use a delegated responder."""
        renewed = []
        for record in await self._authority.list():
            if record.state is not CaState.ACTIVE or not record.ocsp_enabled or not record.key_ref:
                continue
            if OcspSettings.of(record.settings).signer != "responder":
                continue
            ca = await self._authority.get(record.id)
            if await self.responders.renew_if_due(ca) is not None:
                self._contexts.pop(record.id, None)
                renewed.append(record.id)
        return renewed

    async def ocsp_cas(self) -> list[str]:
        return [
            r.id
            for r in await self._authority.list()
            if r.state is CaState.ACTIVE and r.ocsp_enabled and r.key_ref
        ]

    # --- settings -------------------------------------------------------------------------

    async def configure(
        self,
        ca_id: str,
        signer: str | None = None,
        require_signed_requests: bool | None = None,
        actor: str = "system",
    ) -> OcspSettings:
        """Change a CA's OCSP settings (audited); other workers pick them up within seconds."""
        if signer is not None and signer not in ("responder", "ca"):
            raise BadRequest("OCSP signer must be 'responder' or 'ca'")
        now = self._clock.now()
        async with self._store.db.transaction() as uow:
            record = await self._store.cas.get_for_update(uow, ca_id)
            if record is None:
                raise NotFound(f"no CA {ca_id!r}", ca=ca_id)
            current = OcspSettings.of(record.settings)
            updated = OcspSettings(
                signer if signer is not None else current.signer,
                require_signed_requests
                if require_signed_requests is not None
                else current.require_signed_requests,
            )
            settings = dict(record.settings, ocsp=updated.as_dict())
            await self._store.cas.update(uow, ca_id, now, settings=settings)
            uow.audit(AuditEntry(now, OCSP_SETTINGS_CHANGED, actor, ca_id, detail=updated.as_dict()))
        self._authority.forget(ca_id)
        self._contexts.pop(ca_id, None)
        self._forget_ca(ca_id)
        return updated
