"""Group commit and group fetch of state documents, on SQLite and PostgreSQL: the same
answers as one-at-a-time writes, and rows both paths read alike."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from ca_core.errors import Conflict
from ca_core.services import Services
from ca_core.store.state import StateWrite

NOW = dt.datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=dt.UTC)


async def test_batched_writes_are_readable_by_the_plain_path_and_back(matrix_services: Services) -> None:
    state = matrix_services.store.state
    expires = NOW + dt.timedelta(days=1)
    [version] = await state.commit(
        [StateWrite("t", "a", {"n": 1, "s": "é"}, lookup="L", expires_at=expires)], NOW
    )
    assert version == 1
    plain = await state.get("t", "a")
    assert plain is not None
    assert (plain.document, plain.version, plain.lookup, plain.expires_at) == (
        {"n": 1, "s": "é"},
        1,
        "L",
        expires,
    )
    assert plain.created_at == NOW and plain.updated_at == NOW
    await state.create("t", "b", {"x": [1, 2]}, NOW, lookup="M", expires_at=expires)
    batched = await state.get_batched("t", "b")
    assert batched is not None and batched.document == {"x": [1, 2]} and batched.expires_at == expires
    assert [d.key for d in await state.find("t", "L")] == ["a"]
    assert await state.get_batched("t", "missing") is None


async def test_compare_and_set_and_create_conflicts(matrix_services: Services) -> None:
    state = matrix_services.store.state
    await state.commit([StateWrite("t", "k", {"v": 0})], NOW)
    with pytest.raises(Conflict):
        await state.commit([StateWrite("t", "k", {"v": 9})], NOW)  # create of an existing key
    [v2] = await state.commit([StateWrite("t", "k", {"v": 1}, expected_version=1)], NOW)
    with pytest.raises(Conflict):
        await state.commit([StateWrite("t", "k", {"v": 2}, expected_version=1)], NOW)  # stale
    assert v2 == 2 and (await state.get_batched("t", "k")).document == {"v": 1}  # type: ignore[union-attr]


async def test_a_callers_writes_are_atomic(matrix_services: Services) -> None:
    state = matrix_services.store.state
    await state.commit([StateWrite("t", "taken", {})], NOW)
    with pytest.raises(Conflict):
        await state.commit([StateWrite("t", "new", {}), StateWrite("t", "taken", {})], NOW)
    assert await state.get("t", "new") is None


async def test_concurrent_callers_behave_as_if_one_after_another(matrix_services: Services) -> None:
    state = matrix_services.store.state
    await state.commit([StateWrite("t", "counter", {"n": 0})], NOW)
    # Ten callers all try version 1: exactly one wins; the others see Conflict.
    results = await asyncio.gather(
        *(state.commit([StateWrite("t", "counter", {"n": i}, expected_version=1)], NOW) for i in range(10)),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, BaseException))
    # Creates, updates and deletes of one batch apply in arrival order.
    outcomes = await asyncio.gather(
        state.commit([StateWrite("t", "x", {"step": 1})], NOW),
        state.commit([StateWrite("t", "x", {"step": 2}, expected_version=1)], NOW),
        state.commit([StateWrite("t", "x", delete=True, expected_version=2)], NOW),
        state.commit([StateWrite("t", "x", {"step": 3})], NOW),
    )
    assert outcomes == [[1], [2], [None], [1]]
    final = await state.get("t", "x")
    assert final is not None and final.document == {"step": 3} and final.version == 1


async def test_many_concurrent_readers_share_fetches(matrix_services: Services) -> None:
    state = matrix_services.store.state
    await state.commit([StateWrite("r", str(i), {"i": i}) for i in range(50)], NOW)
    docs = await asyncio.gather(*(state.get_batched("r", str(i % 60)) for i in range(300)))
    assert [d.document["i"] if d else None for d in docs[:60]] == [*range(50), *([None] * 10)]


async def test_light_commits_are_read_back_and_a_batch_is_durable_if_any_caller_asks(
    matrix_services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    state, db = matrix_services.store.state, matrix_services.store.db
    asked: list[bool] = []
    if db.direct is not None:
        direct_write = db.direct_write

        async def recording(fn, durable=True):  # type: ignore[no-untyped-def]
            asked.append(durable)
            return await direct_write(fn, durable)

        monkeypatch.setattr(db, "direct_write", recording)
    # On PostgreSQL the light commit sets synchronous_commit off for its transaction.
    assert await state.commit([StateWrite("d", "light", {"n": 1})], NOW, durable=False) == [1]
    outcomes = await asyncio.gather(
        state.commit([StateWrite("d", "a", {"n": 2})], NOW, durable=False),
        state.commit([StateWrite("d", "b", {"n": 3})], NOW),
    )
    assert outcomes == [[1], [1]]
    for key, n in (("light", 1), ("a", 2), ("b", 3)):
        doc = await state.get_batched("d", key)
        assert doc is not None and doc.document == {"n": n}
    if db.direct is not None:
        assert asked == [False, True], "the mixed batch must be committed durably"
