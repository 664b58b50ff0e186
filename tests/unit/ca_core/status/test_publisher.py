"""Publishing CRLs: numbering across restarts and workers, hold/unhold, staleness, roots."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509

from ca_core.clock import ManualClock
from ca_core.errors import NotFound
from ca_core.model import RevocationReason
from ca_core.services import Services
from ca_core.status.revocation import StatusChange
from ca_core.status.storage import RevokedSnapshot, StoredCrl
from tests.unit.ca_core.status.conftest import OpenWorker, issue


def crl_of(der: bytes) -> x509.CertificateRevocationList:
    return x509.load_der_x509_crl(der)


def number_of(der: bytes) -> int:
    return crl_of(der).extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


async def test_hold_appears_with_certificate_hold_and_goes_after_unhold(status_services: Services) -> None:
    s = status_services
    cert = await issue(s)
    await s.revocation.hold(StatusChange(cert.serial_hex, "officer", publish_now=True))
    first = await s.crls.latest("issuing")
    entry = crl_of(first.der).get_revoked_certificate_by_serial_number(cert.serial)
    assert entry is not None
    assert (
        entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
        is x509.ReasonFlags.certificate_hold
    )
    await s.revocation.unhold(StatusChange(cert.serial_hex, "officer", publish_now=True))
    after = await s.crls.latest("issuing")
    assert crl_of(after.der).get_revoked_certificate_by_serial_number(cert.serial) is None
    assert number_of(after.der) > number_of(first.der)


async def test_revocation_with_reason_and_invalidity_date(
    status_services: Services, clock: ManualClock
) -> None:
    s = status_services
    cert = await issue(s)
    compromised = clock.now() - dt.timedelta(days=3)
    await s.revocation.revoke(
        StatusChange(cert.serial_hex, "o", RevocationReason.KEY_COMPROMISE, compromised, publish_now=True)
    )
    crl = crl_of((await s.crls.latest("issuing")).der)
    ca = await s.authority.get("issuing")
    assert ca.certificate is not None and crl.is_signature_valid(ca.certificate.public_key())
    entry = crl.get_revoked_certificate_by_serial_number(cert.serial)
    assert entry is not None and entry.revocation_date_utc == clock.now().replace(microsecond=0)
    assert (
        entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
        is x509.ReasonFlags.key_compromise
    )
    invalidity = entry.extensions.get_extension_for_class(x509.InvalidityDate).value
    assert invalidity.invalidity_date_utc == compromised.replace(microsecond=0)
    assert crl.next_update_utc - crl.last_update_utc == dt.timedelta(days=7)


async def test_crl_number_survives_a_restart(status_services: Services, open_worker: OpenWorker) -> None:
    first = [(await status_services.crls.publish("issuing")).number for _ in range(3)]
    await status_services.close()
    restarted = await open_worker()
    again = (await restarted.crls.publish("issuing")).number
    assert first == sorted(first) and len(set(first)) == 3
    assert again > max(first)
    assert number_of((await restarted.crls.latest("issuing")).der) == again


async def test_two_workers_hammering_never_share_a_crl_number(
    status_services: Services, open_worker: OpenWorker
) -> None:
    other = await open_worker()

    async def hammer(s: Services) -> list[int]:
        return [(await s.crls.publish("issuing")).number for _ in range(8)]

    mine, theirs = await asyncio.gather(hammer(status_services), hammer(other))
    assert mine == sorted(mine) and theirs == sorted(theirs)  # strictly increasing per worker
    assert len(set(mine) | set(theirs)) == 16  # and never reused between them
    # The stored CRL is the highest-numbered one, whatever order the writes landed in.
    head = await status_services.crls.head("issuing")
    assert head is not None and head.number == max(mine + theirs)


_WORKER = textwrap.dedent(
    """
    import asyncio, json, sys
    from pathlib import Path
    from ca_core.keys.file import FileKeyStore
    from ca_core.services import open_services

    async def main():
        url, keys, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
        s = await open_services(url, FileKeyStore(Path(keys), b"test-passphrase"), "http://x", run_migrations=False)
        numbers = [(await s.crls.publish("issuing")).number for _ in range(count)]
        await s.close()
        print(json.dumps(numbers))

    asyncio.run(main())
    """
)


async def test_two_processes_hammering_never_share_a_crl_number(
    status_services: Services, sqlite_url: str, tmp_path: Path
) -> None:
    import json

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _WORKER,
        sqlite_url,
        str(tmp_path / "keys"),
        "10",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=str(Path(__file__).parents[4]),
    )
    mine = [(await status_services.crls.publish("issuing")).number for _ in range(10)]
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    theirs = json.loads(out)
    assert mine == sorted(mine) and theirs == sorted(theirs)
    assert len(set(mine) | set(theirs)) == 20
    head = await status_services.crls.head("issuing")
    assert head is not None and head.number == max(mine + theirs)


async def test_a_lower_number_never_replaces_a_higher_one(status_services: Services) -> None:
    s = status_services
    latest = await s.crls.publish("issuing")
    status = s.crls._status  # the storage, as a racing worker's write would reach it
    older = StoredCrl(
        "issuing", latest.number - 1, latest.this_update, latest.next_update, 0, 0, None, b"old"
    )
    assert await status.store_crl(older) is False
    assert (await status.crl("issuing")).number == latest.number  # type: ignore[union-attr]


async def test_status_change_marks_the_crl_stale_and_the_scheduler_picks_it_up(
    status_services: Services, clock: ManualClock
) -> None:
    s = status_services
    cert = await issue(s)
    await s.crls.publish("issuing")
    await s.crls.publish("root")
    assert await s.crls.due() == []
    await s.revocation.revoke(StatusChange(cert.serial_hex, "o", RevocationReason.SUPERSEDED))
    head = await s.crls.head("issuing")
    assert head is not None and head.stale_since == clock.now()
    # Not yet: changes wait the grace period to share one CRL; then due, well within 15 min.
    assert await s.crls.due() == []
    clock.advance(s.crls.policy.stale_grace)
    assert await s.crls.due() == ["issuing"]
    crl = await s.crls.publish("issuing")
    assert crl_of(crl.der).get_revoked_certificate_by_serial_number(cert.serial) is not None
    head = await s.crls.head("issuing")
    assert head is not None and head.stale_since is None
    assert await s.crls.due() == []


async def test_a_change_whose_listener_never_ran_is_still_caught(
    status_services: Services, clock: ManualClock
) -> None:
    s = status_services
    cert = await issue(s)
    await s.crls.publish("issuing")
    await s.crls.publish("root")
    s.revocation._listeners.clear()  # as if the process died right after the commit
    await s.revocation.revoke(StatusChange(cert.serial_hex, "o"))
    clock.advance(s.crls.policy.stale_grace)
    assert await s.crls.due() == ["issuing"]


async def test_crls_are_refreshed_daily_and_served_until_then(
    status_services: Services, clock: ManualClock
) -> None:
    s = status_services
    first = await s.crls.latest("issuing")  # none yet: built on the spot
    await s.crls.latest("root")
    assert await s.crls.latest("issuing") == first
    clock.advance(dt.timedelta(hours=23))
    assert await s.crls.due() == []
    clock.advance(dt.timedelta(hours=1))
    assert sorted(await s.crls.due()) == ["issuing", "root"]


async def test_another_worker_serves_the_same_bytes(
    status_services: Services, open_worker: OpenWorker
) -> None:
    other = await open_worker()
    cert = await issue(status_services)
    await status_services.revocation.revoke(StatusChange(cert.serial_hex, "o", publish_now=True))
    assert (await other.crls.latest("issuing")).der == (await status_services.crls.latest("issuing")).der


async def test_root_crl_lists_a_revoked_issuing_ca(status_services: Services) -> None:
    s = status_services
    issuing = await s.authority.get("issuing")
    assert issuing.certificate is not None
    serial = format(issuing.certificate.serial_number, "x")
    await s.revocation.revoke(
        StatusChange(serial, "o", RevocationReason.CESSATION_OF_OPERATION, publish_now=True, ca="root")
    )
    crl = crl_of((await s.crls.latest("root")).der)
    root = await s.authority.get("root")
    assert root.certificate is not None and crl.issuer == root.certificate.subject
    entry = crl.get_revoked_certificate_by_serial_number(issuing.certificate.serial_number)
    assert entry is not None


async def test_unknown_ca_has_no_crl(status_services: Services) -> None:
    with pytest.raises(NotFound):
        await status_services.crls.latest("nope")


async def test_crl_source_for_front_ends(status_services: Services) -> None:
    """`latest_der` is what CMP (and SCEP GetCRL) are handed: the served bytes, or None."""
    s = status_services
    assert await s.crls.latest_der("issuing") == (await s.crls.latest("issuing")).der
    assert await s.crls.latest_der("nope") is None


def pause_first_snapshot(services: Services) -> tuple[asyncio.Event, asyncio.Event]:
    """Hold the next CRL build of `services` inside its read of the revoked rows (after its
    snapshot is taken) until the returned gate is set; `entered` tells when it is there."""
    status = services.crls._status  # the seam between reading the rows and building
    original = status.revoked_snapshot
    entered, gate = asyncio.Event(), asyncio.Event()

    @contextlib.asynccontextmanager
    async def paused(ca_id: str, chunk_size: int = 20_000) -> AsyncIterator[RevokedSnapshot]:
        async with original(ca_id, chunk_size) as snapshot:
            if not entered.is_set():
                entered.set()
                await gate.wait()
            yield snapshot

    status.revoked_snapshot = paused  # type: ignore[method-assign]
    return entered, gate


async def test_a_slower_build_never_hides_a_published_revocation(
    status_services: Services, open_worker: OpenWorker
) -> None:
    """Worker A is building a CRL from rows read before a revocation; worker B revokes with
    publish_now meanwhile. Whichever CRL ends up served lists the revocation: A took its
    number before reading, so B's CRL is numbered higher and A's is not kept."""
    a, b, reader = status_services, await open_worker(), await open_worker()
    cert = await issue(a)
    await a.crls.publish("issuing")
    entered, gate = pause_first_snapshot(a)
    slow = asyncio.create_task(a.crls.publish("issuing"))
    await entered.wait()
    await b.revocation.revoke(StatusChange(cert.serial_hex, "o", publish_now=True))
    gate.set()
    overtaken = await slow
    assert crl_of(overtaken.der).get_revoked_certificate_by_serial_number(cert.serial) is None
    served = await reader.crls.latest("issuing")
    assert served.number > overtaken.number
    assert crl_of(served.der).get_revoked_certificate_by_serial_number(cert.serial) is not None


async def test_publish_now_does_not_share_a_build_that_read_before_the_change(
    status_services: Services,
) -> None:
    """In one worker, a revocation with publish_now while a CRL build is under way waits
    for it and builds again, instead of returning the build that cannot list it."""
    s = status_services
    cert = await issue(s)
    assert await s.crls.head("issuing") is None
    entered, gate = pause_first_snapshot(s)
    first = asyncio.create_task(s.crls.latest("issuing"))  # no CRL yet: built on the spot
    await entered.wait()
    revoking = asyncio.create_task(s.revocation.revoke(StatusChange(cert.serial_hex, "o", publish_now=True)))
    await asyncio.sleep(0.1)  # committed, and waiting for the build under way
    assert not revoking.done()
    gate.set()
    await first
    await revoking
    served = await s.crls.latest("issuing")
    assert served.number > (await first).number
    assert crl_of(served.der).get_revoked_certificate_by_serial_number(cert.serial) is not None
