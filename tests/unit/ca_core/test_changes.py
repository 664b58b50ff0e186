"""Change tokens (ca_core/store/changes.py and StateStore.change_token): a committed write
to a namespace changes its token, in every worker of the host; nothing else does."""

from __future__ import annotations

import datetime as dt
import zlib
from pathlib import Path

import pytest

from ca_core.services import Services
from ca_core.store import Store
from ca_core.store.changes import SLOTS, ChangeTokens
from ca_core.store.state import StateWrite

NOW = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)


def test_a_change_is_seen_through_another_mapping_of_the_file(tmp_path: Path) -> None:
    one, two = ChangeTokens(str(tmp_path / "c")), ChangeTokens(str(tmp_path / "c"))
    assert one.token("acme-account") == two.token("acme-account") == 0
    seen = {two.token("acme-account")}
    for _ in range(20):  # every change gives a value not seen before
        one.changed(["acme-account"])
        assert two.token("acme-account") not in seen
        seen.add(two.token("acme-account"))
    one.close()
    one.changed(["acme-account"])  # closed: a no-op, not an error
    two.close()


def test_none_changes_every_slot(tmp_path: Path) -> None:
    tokens = ChangeTokens(str(tmp_path / "c"))
    names = [f"ns-{i}" for i in range(SLOTS * 4)]
    before = {n: tokens.token(n) for n in names}
    tokens.changed(None)
    assert all(tokens.token(n) != before[n] for n in names)
    tokens.close()


async def test_commits_change_the_token_of_their_namespace_only(services: Services) -> None:
    state = services.store.state
    token = state.change_token
    assert token("acme-account") is not None
    other = next(f"other-{i}" for i in range(1000) if _slot(f"other-{i}") != _slot("acme-account"))
    before, untouched = token("acme-account"), token(other)
    await state.commit([StateWrite("acme-account", "a", {"v": 1})], NOW)
    after_create = token("acme-account")
    assert after_create != before and token(other) == untouched
    await state.commit([StateWrite("acme-account", "a", {"v": 2}, expected_version=1)], NOW, durable=False)
    assert token("acme-account") != after_create
    before = token("acme-account")
    assert await state.delete("acme-account", "a")
    assert token("acme-account") != before


async def test_a_unit_of_work_changes_the_token_when_it_commits_not_before(services: Services) -> None:
    state, db = services.store.state, services.store.db
    before = state.change_token("scep-tx")
    async with db.transaction() as uow:
        await state.create("scep-tx", "t", {"v": 1}, NOW, uow=uow)
        assert state.change_token("scep-tx") == before  # not committed yet: a reader may still see the old
    after = state.change_token("scep-tx")
    assert after != before
    with pytest.raises(RuntimeError):
        async with db.transaction() as uow:
            await state.put("scep-tx", "t", {"v": 2}, NOW, expected_version=1, uow=uow)
            raise RuntimeError("rolled back")
    assert state.change_token("scep-tx") == after
    assert (await state.get("scep-tx", "t")).document == {"v": 1}  # type: ignore[union-attr]


async def test_two_stores_on_one_file_share_tokens(services: Services) -> None:
    other = Store.open(services.store.db.url)
    try:
        seen = other.state.change_token("acme-account")
        await services.store.state.commit([StateWrite("acme-account", "b", {})], NOW)
        assert other.state.change_token("acme-account") != seen
    finally:
        await other.close()


def _slot(namespace: str) -> int:
    return zlib.crc32(namespace.encode()) % SLOTS


async def test_no_token_where_other_hosts_may_write(matrix_services: Services) -> None:
    token = matrix_services.store.state.change_token("acme-account")
    assert (token is None) == matrix_services.store.db.is_postgres
