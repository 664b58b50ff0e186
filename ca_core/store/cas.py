"""CA rows."""

from __future__ import annotations

import builtins
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Row

from ca_core.model import CaKind, CaState, KeyAlgorithm, utc
from ca_core.store import tables as t
from ca_core.store.database import Database, UnitOfWork

_T = t.cas


@dataclass(frozen=True, slots=True)
class CaRecord:
    id: str
    kind: CaKind
    state: CaState
    subject: str
    parent_id: str | None
    key_algorithm: KeyAlgorithm | None
    key_ref: str | None
    certificate: bytes | None
    csr: bytes | None
    not_before: dt.datetime | None
    not_after: dt.datetime | None
    ocsp_enabled: bool
    services: tuple[str, ...]
    created_at: dt.datetime
    updated_at: dt.datetime
    settings: dict[str, Any] = field(default_factory=dict)


def _record(row: Row[Any]) -> CaRecord:
    m = row._mapping
    return CaRecord(
        id=m["id"],
        kind=CaKind(m["kind"]),
        state=CaState(m["state"]),
        subject=m["subject"],
        parent_id=m["parent_id"],
        key_algorithm=KeyAlgorithm(m["key_algorithm"]) if m["key_algorithm"] else None,
        key_ref=m["key_ref"],
        certificate=bytes(m["certificate"]) if m["certificate"] is not None else None,
        csr=bytes(m["csr"]) if m["csr"] is not None else None,
        not_before=utc(m["not_before"]) if m["not_before"] else None,
        not_after=utc(m["not_after"]) if m["not_after"] else None,
        ocsp_enabled=bool(m["ocsp_enabled"]),
        services=tuple(m["services"] or ()),
        created_at=utc(m["created_at"]),
        updated_at=utc(m["updated_at"]),
        settings=dict(m["settings"] or {}),
    )


class CaRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, ca_id: str) -> CaRecord | None:
        async with self._db.read() as conn:
            row = (await conn.execute(select(_T).where(_T.c.id == ca_id))).first()
        return _record(row) if row else None

    async def get_for_update(self, uow: UnitOfWork, ca_id: str) -> CaRecord | None:
        query = select(_T).where(_T.c.id == ca_id)
        if uow.is_postgres:
            query = query.with_for_update()
        row = (await uow.conn.execute(query)).first()
        return _record(row) if row else None

    async def list(self, include_deleted: bool = False) -> list[CaRecord]:
        query = select(_T).order_by(_T.c.created_at, _T.c.id)
        if not include_deleted:
            query = query.where(_T.c.state != CaState.DELETED.value)
        async with self._db.read() as conn:
            return [_record(r) for r in (await conn.execute(query)).all()]

    async def children(self, uow: UnitOfWork, parent_id: str) -> builtins.list[CaRecord]:
        query = select(_T).where(_T.c.parent_id == parent_id, _T.c.state != CaState.DELETED.value)
        return [_record(r) for r in (await uow.conn.execute(query)).all()]

    async def insert(self, uow: UnitOfWork, record: CaRecord) -> None:
        await uow.conn.execute(
            insert(_T),
            [
                {
                    "id": record.id,
                    "kind": record.kind.value,
                    "parent_id": record.parent_id,
                    "state": record.state.value,
                    "subject": record.subject,
                    "key_algorithm": record.key_algorithm.value if record.key_algorithm else None,
                    "key_ref": record.key_ref,
                    "certificate": record.certificate,
                    "csr": record.csr,
                    "not_before": record.not_before,
                    "not_after": record.not_after,
                    "ocsp_enabled": record.ocsp_enabled,
                    "services": list(record.services),
                    "settings": record.settings,
                    "created_at": record.created_at,
                    "updated_at": record.updated_at,
                }
            ],
        )

    async def update(self, uow: UnitOfWork, ca_id: str, at: dt.datetime, **values: Any) -> None:
        for key in ("state", "kind", "key_algorithm"):
            if key in values and hasattr(values[key], "value"):
                values[key] = values[key].value
        if "services" in values:
            values["services"] = list(values["services"])
        await uow.conn.execute(update(_T).where(_T.c.id == ca_id).values(updated_at=at, **values))
