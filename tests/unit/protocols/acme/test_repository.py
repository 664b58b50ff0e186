"""Which ACME writes wait for the disk (protocols/acme/repository.py): an order's and an
authorization's progress does not; accounts and a deactivation do."""

from __future__ import annotations

import dataclasses

import pytest

from ca_core.services import Services
from protocols.acme import core
from protocols.acme.model import Account, AccountStatus
from protocols.acme.repository import AcmeRepository
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
