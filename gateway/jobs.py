"""Scheduled work, run by one leader per cluster (ARCHITECTURE.md section 8).

Every worker process of every replica runs a Scheduler; each tick it tries to hold the
lease row (state store, namespace `scheduler`, key `leader`): create it if absent, renew
it if it is ours, take it over if it has expired; every write is a compare-and-set on
the row's version, so two contenders never both win. Only the holder runs the jobs. A
leader that dies stops renewing and another worker takes over once the lease expires
(`lease_ttl`); a leader that stops cleanly releases the lease at once.

Jobs (each runs when its interval has passed, on whichever worker leads):
- crl-refresh (every minute): CRLs that are 24 h old, past nextUpdate, missing, or stale
  since a status change for longer than the grace period (well within 15 minutes).
- ocsp-responder-renewal (hourly): delegated responder certificates near expiry.
- ocsp-presign (every 5 minutes): pre-signed responses for new or aging certificates.
- certificate-expiry (every 5 minutes): normal certificates past notAfter become expired,
  each with its "expired" certificate event.
- state-purge (every 5 minutes): state documents (protocol transactions, leases) past
  their expiry are deleted.
- spent-token-purge (every 5 minutes): used ACME nonces past their expiry are forgotten.
- every front-end's optional `periodic_jobs` (protocols._shared.web.PeriodicJob), named
  "<front-end>:<job>", e.g. CMP's revocation of certificates never confirmed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from aiohttp import web

from ca_core.clock import Clock
from ca_core.errors import CegError, Conflict
from ca_core.services import Services
from ca_core.store.state import StateStore
from gateway.keys import FRONTENDS
from protocols._shared.web import SERVICES, Frontend, PeriodicJob

log = logging.getLogger(__name__)

LEASE_NAMESPACE = "scheduler"
LEASE_KEY = "leader"


class LeaderLease:
    """The cluster-wide leader lease: one row, compare-and-set, with an expiry."""

    def __init__(self, state: StateStore, clock: Clock, holder: str, ttl: dt.timedelta) -> None:
        self._state = state
        self._clock = clock
        self.holder = holder
        self._ttl = ttl

    async def hold(self) -> bool:
        """Acquire, renew or take over the lease; True when this holder leads now."""
        now = self._clock.now()
        doc = await self._state.get(LEASE_NAMESPACE, LEASE_KEY)
        document = {"holder": self.holder, "since": now.isoformat()}
        try:
            if doc is None:
                await self._state.create(
                    LEASE_NAMESPACE, LEASE_KEY, document, now, expires_at=now + self._ttl
                )
                return True
            ours = doc.document.get("holder") == self.holder
            expired = doc.expires_at is None or doc.expires_at <= now
            if not ours and not expired:
                return False
            if ours:
                document["since"] = doc.document.get("since", document["since"])
            await self._state.put(
                LEASE_NAMESPACE,
                LEASE_KEY,
                document,
                now,
                expected_version=doc.version,
                expires_at=now + self._ttl,
            )
            return True
        except Conflict:
            return False  # another worker wrote first

    async def release(self) -> None:
        now = self._clock.now()
        doc = await self._state.get(LEASE_NAMESPACE, LEASE_KEY)
        if doc is None or doc.document.get("holder") != self.holder:
            return
        with contextlib.suppress(Conflict):
            await self._state.put(
                LEASE_NAMESPACE, LEASE_KEY, doc.document, now, expected_version=doc.version, expires_at=now
            )


@dataclass
class Job:
    name: str
    every: dt.timedelta
    run: Callable[[], Awaitable[object]]
    last_run: float | None = field(default=None)  # loop time, in this worker


class Scheduler:
    def __init__(
        self,
        lease: LeaderLease,
        jobs: list[Job],
        tick: dt.timedelta = dt.timedelta(seconds=10),
    ) -> None:
        self.lease = lease
        self.jobs = jobs
        self._tick = tick
        self.leading = False

    async def run_once(self) -> dict[str, object]:
        """One tick: hold the lease, then run the jobs that are due. Returns their results."""
        try:
            self.leading = await self.lease.hold()
        except Exception:
            log.exception("scheduler could not reach the lease")
            self.leading = False
        if not self.leading:
            for job in self.jobs:  # a new leader later runs everything at once
                job.last_run = None
            return {}
        results: dict[str, object] = {}
        loop_time = asyncio.get_running_loop().time()
        for job in self.jobs:
            if job.last_run is not None and loop_time - job.last_run < job.every.total_seconds():
                continue
            # Renew between jobs, so a long job cannot outlive the lease unnoticed.
            if job is not self.jobs[0] and not await self.lease.hold():
                self.leading = False
                break
            job.last_run = loop_time
            try:
                results[job.name] = await job.run()
            except Exception:
                log.exception("scheduled job failed", extra={"job": job.name})
                results[job.name] = None
        return results

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                results = await self.run_once()
                if results:
                    log.debug(
                        "scheduled jobs ran", extra={"results": {k: repr(v) for k, v in results.items()}}
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._tick.total_seconds())
        finally:
            if self.leading:
                with contextlib.suppress(Exception):
                    await self.lease.release()


def status_jobs(services: Services) -> list[Job]:
    async def refresh_crls() -> list[int]:
        numbers = []
        for ca_id in await services.crls.due():
            try:
                numbers.append((await services.crls.publish(ca_id, actor="system:scheduler")).number)
            except CegError as exc:
                log.warning("CRL not published", extra={"ca": ca_id, "error": exc.message})
        return numbers

    async def presign() -> int:
        return sum([await services.ocsp.presign(ca_id) for ca_id in await services.ocsp.ocsp_cas()])

    return [
        Job("crl-refresh", dt.timedelta(minutes=1), refresh_crls),
        Job("ocsp-responder-renewal", dt.timedelta(hours=1), services.ocsp.renew_responders),
        Job("ocsp-presign", dt.timedelta(minutes=5), presign),
        Job("certificate-expiry", dt.timedelta(minutes=5), services.expiry.run),
    ]


def housekeeping_jobs(services: Services) -> list[Job]:
    async def purge_state() -> int:
        return await services.store.state.purge_expired(services.clock.now())

    async def purge_spent() -> int:
        return await services.store.spent.purge_expired(services.clock.now())

    return [
        Job("state-purge", dt.timedelta(minutes=5), purge_state),
        Job("spent-token-purge", dt.timedelta(minutes=5), purge_spent),
    ]


def frontend_jobs(services: Services, frontends: Iterable[Frontend]) -> list[Job]:
    """The `periodic_jobs` front-ends declare (optional attribute of a Frontend)."""
    jobs = []
    for frontend in frontends:
        for periodic in getattr(frontend, "periodic_jobs", ()):
            if not isinstance(periodic, PeriodicJob) or periodic.every_seconds <= 0:
                # one front-end's mistake must not stop the CRL and OCSP jobs
                log.error("ignoring a malformed periodic job", extra={"frontend": frontend.name})
                continue
            jobs.append(
                Job(
                    f"{frontend.name}:{periodic.name}",
                    dt.timedelta(seconds=periodic.every_seconds),
                    functools.partial(periodic.run, services),
                )
            )
    return jobs


def scheduler_for(
    services: Services,
    frontends: Iterable[Frontend] = (),
    lease_ttl: dt.timedelta = dt.timedelta(seconds=30),
) -> Scheduler:
    holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
    lease = LeaderLease(services.store.state, services.clock, holder, lease_ttl)
    jobs = status_jobs(services) + housekeeping_jobs(services) + frontend_jobs(services, frontends)
    return Scheduler(lease, jobs)


async def jobs_context(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: run the scheduler for the app's lifetime (after its services exist)."""
    scheduler = scheduler_for(app[SERVICES], app[FRONTENDS].values())
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run(stop), name="ceg-scheduler")
    try:
        yield
    finally:
        stop.set()
        await task
