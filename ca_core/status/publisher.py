"""Publishing CRLs: build, sign, store, serve, and know when a CA needs a new one.

Rules (RFC 5280 5.1.2.4-5, 5.2.3; issue 4):
- Every CA with a key publishes a full CRL (roots too: theirs lists revoked issuing CAs).
- crlNumber comes from the shared counter `crl-number:<ca>`: strictly increasing and
  never reused, across restarts, workers and replicas. If two CRLs are built at once,
  the higher number is kept; a lower one never replaces it. The number is taken before
  the rows are read, so a higher-numbered CRL lists every change the lower one did.
- publish_now: the CRL is built after the change committed and the call returns once it
  is stored; it never shares a build in this worker that read its rows earlier.
- nextUpdate is thisUpdate + 7 days. A CRL is regenerated 24 h after its thisUpdate, and
  after a status change: at once with publish_now, otherwise once the change has waited
  `stale_grace` (so bursts share one CRL), checked every minute by the scheduler: well
  within 15 minutes.
- Every worker serves the stored bytes; a worker re-reads the head row every few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

from ca_core.audit import AuditEntry
from ca_core.authority import Authority
from ca_core.clock import Clock
from ca_core.errors import CegError, InvalidState, NotFound
from ca_core.model import CaKind, CaState, CertificateRecord
from ca_core.status.crl import CrlContent, encode_entries, sign_encoded
from ca_core.status.storage import StatusStore, StoredCrl
from ca_core.store import Store

log = logging.getLogger(__name__)

CRL_PUBLISHED = "crl.published"  # audit action


def crl_counter(ca_id: str) -> str:
    return f"crl-number:{ca_id}"


@dataclass(frozen=True, slots=True)
class CrlPolicy:
    validity: dt.timedelta = dt.timedelta(days=7)
    refresh_every: dt.timedelta = dt.timedelta(hours=24)
    stale_grace: dt.timedelta = dt.timedelta(minutes=5)
    serve_check_seconds: float = 2.0  # how long a worker serves its copy without asking the DB


@dataclass(frozen=True, slots=True)
class PublishedCrl:
    ca_id: str
    number: int
    this_update: dt.datetime
    next_update: dt.datetime
    entries: int
    der: bytes

    @classmethod
    def of(cls, stored: StoredCrl) -> PublishedCrl:
        assert stored.der is not None
        return cls(
            stored.ca_id, stored.number, stored.this_update, stored.next_update, stored.entries, stored.der
        )


@dataclass(slots=True)
class _Build:
    """A CRL build in progress in this worker, shared by concurrent callers."""

    result: asyncio.Future[PublishedCrl]
    numbered: bool = False  # its number is taken: later commits may not be on it

    def mark_numbered(self) -> None:
        self.numbered = True


@dataclass(slots=True)
class _Served:
    crl: PublishedCrl
    checked: float  # loop time of the last look at the database


class CrlPublisher:
    """Builds and stores CRLs; also the StatusListener that marks a CA's CRL stale."""

    def __init__(
        self,
        store: Store,
        status: StatusStore,
        authority: Authority,
        clock: Clock,
        executor: Executor | None = None,
        policy: CrlPolicy | None = None,
    ) -> None:
        self._store = store
        self._status = status
        self._authority = authority
        self._clock = clock
        self._executor = executor
        self.policy = policy or CrlPolicy()
        self._served: dict[str, _Served] = {}
        self._building: dict[str, _Build] = {}

    # --- building ---------------------------------------------------------------------

    async def publish(
        self, ca_id: str, actor: str = "system", numbered: Callable[[], None] | None = None
    ) -> PublishedCrl:
        """Build, sign and store a new CRL for `ca_id` now. `numbered` is called just before
        the crlNumber is taken: everything committed before that call is on this CRL."""
        ca = await self._authority.get(ca_id, fresh=True)
        signer = ca.require_signer()
        if ca.certificate is None:
            raise InvalidState(f"CA {ca_id} has no certificate yet", ca=ca_id)
        # The number first, then the rows: a CRL numbered higher than another was read
        # after that one's number was taken, so it lists everything that one was published
        # for (a revocation whose publish_now CRL is overtaken stays on the one served).
        # A failed build leaves a gap in the numbers, never a reuse.
        if numbered is not None:
            numbered()
        number = await self._store.counters.next_value(crl_counter(ca_id))
        # Off the loop, chunk by chunk while the next chunk is read: a million entries take
        # seconds to encode. Signing (HSM round trip, RSA) runs in the executor too.
        loop = asyncio.get_running_loop()
        encoded: list[bytes] = []
        count = 0
        async with self._status.revoked_snapshot(ca_id) as snapshot:
            audit_seq = snapshot.audit_seq
            async for chunk in snapshot.chunks:
                part, size = await loop.run_in_executor(self._executor, encode_entries, chunk)
                encoded.append(part)
                count += size
        now = self._clock.now().replace(microsecond=0)
        content = CrlContent(
            issuer_name=ca.certificate.subject.public_bytes(),
            authority_key_id=ca.key_identifier,
            number=number,
            this_update=now,
            next_update=now + self.policy.validity,
            expired_certs_since=ca.record.not_before or ca.certificate.not_valid_before_utc,
            signature_algorithm=signer.algorithm,
        )
        revoked = b"".join(encoded)
        del encoded
        der = await loop.run_in_executor(self._executor, sign_encoded, content, revoked, signer)
        del revoked
        stored = StoredCrl(ca_id, number, now, content.next_update, count, audit_seq, None, der)
        kept = await self._status.store_crl(
            stored,
            AuditEntry(now, CRL_PUBLISHED, actor, ca_id, detail={"number": number, "entries": count}),
        )
        published = PublishedCrl.of(stored)
        if kept:
            self._served[ca_id] = _Served(published, loop.time())
        log.info("CRL published", extra={"ca": ca_id, "number": number, "entries": count, "kept": kept})
        return published

    async def _publish_once(self, ca_id: str, covering_now: bool = False) -> PublishedCrl:
        """Concurrent callers in this worker share one build. With `covering_now` (after a
        status change) only a build that has not taken its number yet is shared, as it
        reads everything committed before this call; a later one is waited for, then the
        next build is shared."""
        while (build := self._building.get(ca_id)) is not None:
            if not (covering_now and build.numbered):
                return await asyncio.shield(build.result)
            with contextlib.suppress(Exception):
                await asyncio.shield(build.result)
        build = _Build(asyncio.get_running_loop().create_future())
        self._building[ca_id] = build
        try:
            crl = await self.publish(ca_id, numbered=build.mark_numbered)
        except BaseException as exc:
            build.result.set_exception(exc)
            build.result.exception()  # retrieved here, so an unshared failure is not reported twice
            raise
        else:
            build.result.set_result(crl)
            return crl
        finally:
            del self._building[ca_id]

    # --- serving ----------------------------------------------------------------------

    async def latest(self, ca_id: str) -> PublishedCrl:
        """The CRL every worker serves for `ca_id`; built on the spot if there is none yet
        or the stored one has passed its nextUpdate. NotFound for a CA that cannot sign."""
        loop_time = asyncio.get_running_loop().time()
        now = self._clock.now()
        served = self._served.get(ca_id)
        if (
            served is not None
            and loop_time - served.checked < self.policy.serve_check_seconds
            and served.crl.next_update > now
        ):
            return served.crl
        head = (await self._status.crl_heads([ca_id])).get(ca_id)
        if head is None or head.next_update <= now:
            try:
                return await self._publish_once(ca_id)
            except InvalidState:
                if head is None:
                    raise NotFound(f"CA {ca_id} publishes no CRL", ca=ca_id) from None
        assert head is not None
        if served is not None and served.crl.number == head.number:
            served.checked = loop_time
            return served.crl
        stored = await self._status.crl(ca_id)
        if stored is None:
            raise NotFound(f"CA {ca_id} publishes no CRL", ca=ca_id)
        crl = PublishedCrl.of(stored)
        self._served[ca_id] = _Served(crl, loop_time)
        return crl

    async def latest_der(self, ca_id: str) -> bytes | None:
        """The DER of `latest(ca_id)`, or None when the CA has no CRL to give now: the CRL
        source protocol front-ends hand to clients (CMP id-it-crls, SCEP GetCRL) without
        knowing how CRLs are built or served."""
        try:
            return (await self.latest(ca_id)).der
        except NotFound:
            return None
        except CegError as exc:  # e.g. the key backend is down: the client gets no CRL
            log.warning("no CRL to hand out", extra={"ca": ca_id, "error": exc.message})
            return None

    async def head(self, ca_id: str) -> StoredCrl | None:
        """What the database holds for `ca_id` now (number, times, staleness; no bytes)."""
        return (await self._status.crl_heads([ca_id])).get(ca_id)

    # --- scheduling ---------------------------------------------------------------------

    async def due(self) -> list[str]:
        """CAs whose CRL should be regenerated now (the scheduler calls this every minute)."""
        now = self._clock.now()
        heads = await self._status.crl_heads()
        due: list[str] = []
        for record in await self._authority.list():
            if record.state is not CaState.ACTIVE or record.kind is CaKind.EXTERNAL_ROOT:
                continue
            if not record.key_ref or record.certificate is None:
                continue
            head = heads.get(record.id)
            if head is None or self._needs_refresh(head, now):
                due.append(record.id)
                continue
            # Safety net for a change whose listener never ran (crash right after commit).
            first_change = await self._status.first_status_change_after(record.id, head.audit_seq)
            if first_change is not None and first_change <= now - self.policy.stale_grace:
                due.append(record.id)
        return due

    def _needs_refresh(self, head: StoredCrl, now: dt.datetime) -> bool:
        if head.this_update <= now - self.policy.refresh_every or head.next_update <= now:
            return True
        return head.stale_since is not None and head.stale_since <= now - self.policy.stale_grace

    # --- StatusListener -----------------------------------------------------------------

    async def status_changed(self, record: CertificateRecord, publish_now: bool) -> None:
        await self._status.mark_crl_stale(record.ca, self._clock.now())
        if publish_now:
            await self._publish_once(record.ca, covering_now=True)
