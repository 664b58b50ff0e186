"""Which ACME writes wait for the disk (protocols/acme/repository.py): an order's and an
authorization's progress does not; accounts and a deactivation do."""

from __future__ import annotations

import dataclasses
import sqlite3
import time

import pytest

from ca_core.services import Services
from ca_core.store import Store
from protocols.acme import core
from protocols.acme.model import Account, AccountStatus
from protocols.acme.repository import ACCOUNT_COPY_SECONDS, AcmeRepository
from tests.unit.protocols.acme.test_core import NOW, authz, order


async def test_progress_is_committed_lightly_and_decisions_durably(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = services.store.state
    asked: list[tuple[str, bool]] = []
    commit = state.commit

    async def recording(writes, now, durable=True):  # type: ignore[no-untyped-def]
        asked.append((writes[-1].namespace, durable))
        return await commit(writes, now, durable)

    monkeypatch.setattr(state, "commit", recording)
    repo = AcmeRepository(services.store)
    account = Account("acct", "ca", AccountStatus.VALID, {"kty": "EC"}, "thumb", (), True, NOW)
    await repo.create_account(account, NOW)
    pending = authz()
    placed = await repo.create_order(order([pending]), [pending], NOW)
    stored = await repo.authz(pending.id)
    assert stored is not None
    await repo.save_order(dataclasses.replace(placed, profile="privatessl-tls-client"), NOW)
    processing = core.mark_processing(stored, stored.challenges[0].id, NOW)
    assert processing is not None
    saved = await repo.save_authz(processing, NOW)
    await repo.save_authz(core.deactivate_authz(saved, NOW), NOW)
    assert asked == [
        ("acme-account", True),
        ("acme-order", False),
        ("acme-order", False),
        ("acme-authz", False),
        ("acme-authz", True),
    ]


async def test_an_account_change_in_one_worker_is_seen_at_once_by_another(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each worker keeps the accounts it read (repository.py); a write in another worker
    changes the store's token, so the next read is fresh, not the kept copy."""
    other_store = Store.open(services.store.db.url)
    try:
        here, there = AcmeRepository(services.store), AcmeRepository(other_store)
        account = Account("acct", "ca", AccountStatus.VALID, {"kty": "EC"}, "thumb", (), True, NOW)
        await here.create_account(account, NOW)
        kept = await here.account("acct")
        assert kept is not None and kept.status is AccountStatus.VALID
        assert await here.account("acct") is kept  # the copy, not a new read
        seen = await there.account("acct")
        assert seen is not None
        await there.save_account(dataclasses.replace(seen, status=AccountStatus.DEACTIVATED), NOW)
        fresh = await here.account("acct")
        assert fresh is not None and fresh.status is AccountStatus.DEACTIVATED
    finally:
        await other_store.close()


async def test_a_kept_account_is_read_again_after_its_lifetime(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bound for a change whose token never came (a worker killed after its commit):
    a write made behind the store's back is seen once ACCOUNT_COPY_SECONDS have passed."""
    repo = AcmeRepository(services.store)
    await repo.create_account(
        Account("acct", "ca", AccountStatus.VALID, {"kty": "EC"}, "thumb", (), True, NOW), NOW
    )
    assert (await repo.account("acct")).status is AccountStatus.VALID  # type: ignore[union-attr]
    path = services.store.db.sqlite_file
    assert path is not None
    with sqlite3.connect(path) as conn:  # no change of token: as if its writer died
        conn.execute(
            "UPDATE state_documents SET document = json_set(document, '$.status', 'deactivated')"
            " WHERE namespace = 'acme-account' AND key = 'acct'"
        )
    assert (await repo.account("acct")).status is AccountStatus.VALID  # type: ignore[union-attr]
    later = time.monotonic() + ACCOUNT_COPY_SECONDS + 1
    monkeypatch.setattr(time, "monotonic", lambda: later)
    assert (await repo.account("acct")).status is AccountStatus.DEACTIVATED  # type: ignore[union-attr]
