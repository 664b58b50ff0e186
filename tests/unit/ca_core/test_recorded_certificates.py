"""A certificate and the state documents that record it commit in one transaction (on
SQLite's direct path and through SQLAlchemy on PostgreSQL): both or, when the documents
moved meanwhile, the certificate alone and the caller told; never the documents alone."""

from __future__ import annotations

import datetime as dt

import pytest

from ca_core.audit import AuditEntry
from ca_core.errors import Conflict
from ca_core.services import Services
from ca_core.store.state import StateWrite
from ca_core.store.state_batch import Changes
from tests.unit.ca_core.test_sqlite_inserts import record

NOW = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)


def audit(serial: str) -> AuditEntry:
    return AuditEntry(NOW, "certificate.issued", "acme:acct", "issuing", serial)


async def test_the_record_commits_with_the_certificate(matrix_services: Services) -> None:
    store = matrix_services.store
    await store.state.commit([StateWrite("order", "o1", {"status": "processing"})], NOW)
    made_valid = Changes([StateWrite("order", "o1", {"status": "valid", "serial": "a1"}, 1)], NOW)
    assert await store.certificates.insert(record("a1"), audit("a1"), state=made_valid) is True
    doc = await store.state.get("order", "o1")
    assert doc is not None and doc.version == 2 and doc.document == {"status": "valid", "serial": "a1"}
    assert await store.certificates.get("a1") is not None


async def test_a_moved_record_leaves_the_certificate_stored_and_says_so(matrix_services: Services) -> None:
    store = matrix_services.store
    await store.state.commit([StateWrite("order", "o2", {"status": "processing"})], NOW)
    await store.state.commit([StateWrite("order", "o2", {"status": "processing", "by": "other"}, 1)], NOW)
    stale = Changes([StateWrite("order", "o2", {"status": "valid"}, 1)], NOW)
    assert await store.certificates.insert(record("b2"), audit("b2"), state=stale) is False
    assert await store.certificates.get("b2") is not None, "the certificate is never lost"
    doc = await store.state.get("order", "o2")
    assert doc is not None and doc.version == 2 and doc.document["by"] == "other"


async def test_a_refused_certificate_writes_no_record(matrix_services: Services) -> None:
    store = matrix_services.store
    await store.certificates.insert(record("c3"), audit("c3"))
    await store.state.commit([StateWrite("order", "o3", {"status": "processing"})], NOW)
    again = Changes([StateWrite("order", "o3", {"status": "valid"}, 1)], NOW)
    with pytest.raises(Conflict):  # the serial is stored already
        await store.certificates.insert(record("c3"), audit("c3"), state=again)
    doc = await store.state.get("order", "o3")
    assert doc is not None and doc.version == 1 and doc.document == {"status": "processing"}


async def test_records_in_one_batch_each_stand_alone(matrix_services: Services) -> None:
    import asyncio

    store = matrix_services.store
    await store.state.commit([StateWrite("order", "o4", {"n": 0}), StateWrite("order", "o5", {"n": 0})], NOW)
    results = await asyncio.gather(
        store.certificates.insert(
            record("d4"), audit("d4"), state=Changes([StateWrite("order", "o4", {"n": 1}, 1)], NOW)
        ),
        store.certificates.insert(
            record("d5"), audit("d5"), state=Changes([StateWrite("order", "o5", {"n": 1}, 7)], NOW)
        ),
    )
    assert results == [True, False]
    assert (await store.state.get("order", "o4")).document == {"n": 1}  # type: ignore[union-attr]
    assert (await store.state.get("order", "o5")).document == {"n": 0}  # type: ignore[union-attr]
    assert await store.certificates.get("d4") is not None and await store.certificates.get("d5") is not None
