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
    await services.store.spent.spend("used-nonce", now, now - dt.timedelta(seconds=1))
    scheduler = scheduler_for(services, discover().values())
    names = [job.name for job in scheduler.jobs]
    assert "cmp:cmp-revoke-unconfirmed" in names and "state-purge" in names and "spent-token-purge" in names
    results = await scheduler.run_once()
    assert results["state-purge"] == 1 and results["cmp:cmp-revoke-unconfirmed"] == 0
    # On a SQLite file spent tokens are in the shared table, which reuses expired entries
    # instead of purging them (spent_table.py); the job is for the state documents of
    # PostgreSQL (test_spent.py). Either way the expired token is forgotten.
    assert results["spent-token-purge"] == 0
    assert await services.store.spent.spend("used-nonce", now, now - dt.timedelta(seconds=1)) is True
    assert await services.store.state.get("test-ns", "gone") is None


async def test_any_front_end_may_declare_periodic_jobs(services: Services) -> None:
    """The mechanism is generic: a front-end lists PeriodicJobs; each runs with the Services
    on the leader, one failing job does not stop the others, a malformed entry is skipped,
    and the state purge keeps documents that have not expired."""
    import datetime as dt

    from gateway.jobs import frontend_jobs, scheduler_for
    from protocols._shared.web import PeriodicJob

    calls: list[Services] = []

    async def tick(s: Services) -> int:
        calls.append(s)
        return len(calls)

    async def broken(s: Services) -> int:
        raise RuntimeError("boom")

    class Ticker:
        name = "ticker"
        periodic_jobs = (
            PeriodicJob("broken", 60.0, broken),
            PeriodicJob("tick", 60.0, tick),
            "not a job",
            PeriodicJob("never", 0.0, tick),
        )

    class Plain:
        name = "plain"  # no periodic_jobs at all

    assert [j.name for j in frontend_jobs(services, [Ticker(), Plain()])] == ["ticker:broken", "ticker:tick"]  # type: ignore[list-item]
    now = services.clock.now()
    await services.store.state.create("test-ns", "kept", {}, now, expires_at=now + dt.timedelta(hours=1))
    scheduler = scheduler_for(services, [Ticker(), Plain()])  # type: ignore[list-item]
    results = await scheduler.run_once()
    assert results["ticker:broken"] is None and results["ticker:tick"] == 1 and calls == [services]
    assert results["state-purge"] == 0 and await services.store.state.get("test-ns", "kept") is not None
    assert await scheduler.run_once() == {}  # nothing is due again within its interval
