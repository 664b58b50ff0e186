"""The scheduler: one leader per cluster through the lease row, and the status jobs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from ca_core.clock import ManualClock
from ca_core.keys.file import FileKeyStore
from ca_core.model import IssuanceRequest, Requester, RevocationReason
from ca_core.services import Services, open_services
from ca_core.status.revocation import StatusChange
from gateway.jobs import LeaderLease, Scheduler, status_jobs
from tests.conftest import BASE_URL
from tests.support.hierarchy import make_hierarchy
from tests.support.pki import make_csr

TTL = dt.timedelta(seconds=30)


async def test_one_leader_takeover_after_expiry_and_release(sqlite_url: str, tmp_path: Path) -> None:
    clock = ManualClock()
    s = await open_services(sqlite_url, FileKeyStore(tmp_path / "k", b"p"), BASE_URL, clock=clock)
    try:
        a = LeaderLease(s.store.state, clock, "worker-a", TTL)
        b = LeaderLease(s.store.state, clock, "worker-b", TTL)
        assert await a.hold() is True
        assert await b.hold() is False
        clock.advance(dt.timedelta(seconds=20))
        assert await a.hold() is True  # renewed
        clock.advance(dt.timedelta(seconds=20))
        assert await b.hold() is False  # still within a's renewed lease
        clock.advance(dt.timedelta(seconds=11))  # a stopped renewing: its lease ran out
        assert await b.hold() is True
        assert await a.hold() is False
        await b.release()
        assert await a.hold() is True  # no waiting for expiry after a clean stop
    finally:
        await s.close()


async def test_racing_contenders_never_both_win(sqlite_url: str, tmp_path: Path) -> None:
    import asyncio

    clock = ManualClock()
    s = await open_services(sqlite_url, FileKeyStore(tmp_path / "k", b"p"), BASE_URL, clock=clock)
    other = await open_services(
        sqlite_url, FileKeyStore(tmp_path / "k", b"p"), BASE_URL, clock=clock, run_migrations=False
    )
    try:
        for round_ in range(5):
            leases = [
                LeaderLease(svc.store.state, clock, f"w{round_}-{i}", TTL)
                for i, svc in enumerate((s, other, s))
            ]
            won = await asyncio.gather(*(lease.hold() for lease in leases))
            assert sum(won) == 1, f"round {round_}: {won}"
            clock.advance(TTL)  # everyone's lease expires; the next round races again
    finally:
        await s.close()
        await other.close()


async def test_status_jobs_run_only_on_the_leader(sqlite_url: str, tmp_path: Path) -> None:
    clock = ManualClock()
    s = await open_services(sqlite_url, FileKeyStore(tmp_path / "k", b"p"), BASE_URL, clock=clock)
    try:
        await make_hierarchy(s)
        short = await s.issuance.issue(
            IssuanceRequest(
                ca="issuing",
                profile="est-digital-signature",
                requester=Requester("t"),
                csr=make_csr(),
                validity=dt.timedelta(hours=1),
            )
        )
        leader = Scheduler(LeaderLease(s.store.state, clock, "leader", TTL), status_jobs(s))
        follower = Scheduler(LeaderLease(s.store.state, clock, "follower", TTL), status_jobs(s))
        results = await leader.run_once()
        assert sorted(results["crl-refresh"]) == [1, 1]  # type: ignore[arg-type]  # both CAs got CRL #1
        assert sorted(results["ocsp-responder-renewal"]) == ["issuing", "root"]  # type: ignore[arg-type]
        assert results["ocsp-presign"] >= 2  # type: ignore[operator]
        assert results["certificate-expiry"] == 0
        assert await follower.run_once() == {}
        assert await leader.run_once() == {}  # nothing due yet
        # A revocation makes the CRL stale; within the grace period plus a tick, it is rebuilt.
        other = await s.issuance.issue(
            IssuanceRequest(
                ca="issuing", profile="est-digital-signature", requester=Requester("t"), csr=make_csr()
            )
        )
        await s.revocation.revoke(StatusChange(other.serial_hex, "o", RevocationReason.KEY_COMPROMISE))
        clock.advance(dt.timedelta(hours=2))
        for job in leader.jobs:
            job.last_run = None  # as if their intervals had passed
        results = await leader.run_once()
        assert results["crl-refresh"] == [2]
        assert results["certificate-expiry"] == 1
        record = await s.store.certificates.get(short.serial_hex)
        assert record is not None and record.status.value == "expired"
    finally:
        await s.close()


async def test_front_end_jobs_and_state_purge_run_on_the_leader(
    services: Services, hierarchy: tuple[str, str]
) -> None:
    """CMP's periodic job (revoking unconfirmed certificates) and the purge of expired
    state documents are scheduled with the status jobs."""
    import datetime as dt

    from gateway.frontends import discover
    from gateway.jobs import scheduler_for

    now = services.clock.now()
    await services.store.state.create("test-ns", "gone", {}, now, expires_at=now - dt.timedelta(seconds=1))
    scheduler = scheduler_for(services, discover().values())
    names = [job.name for job in scheduler.jobs]
    assert "cmp:cmp-revoke-unconfirmed" in names and "state-purge" in names
    results = await scheduler.run_once()
    assert results["state-purge"] == 1 and results["cmp:cmp-revoke-unconfirmed"] == 0
    assert await services.store.state.get("test-ns", "gone") is None
