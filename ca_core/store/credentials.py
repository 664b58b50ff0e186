"""Credential rows (API tokens, client certificates, Basic users, ACME EAB keys, CMP secrets)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.exc import IntegrityError

from ca_core.errors import Conflict
from ca_core.model import utc
from ca_core.store import tables as t
from ca_core.store.database import Database

_T = t.credentials


@dataclass(frozen=True, slots=True)
class CredentialRecord:
    id: str
    kind: str
    name: str
    role: str
    secret_hash: str | None
    lookup: str | None
    scope: dict[str, Any]
    data: dict[str, Any]
    created_at: dt.datetime
    expires_at: dt.datetime | None = None
    revoked_at: dt.datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def active(self, now: dt.datetime) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or now < self.expires_at


def _record(row: Any) -> CredentialRecord:
    m = row._mapping
    return CredentialRecord(
        id=m["id"],
        kind=m["kind"],
        name=m["name"],
        role=m["role"],
        secret_hash=m["secret_hash"],
        lookup=m["lookup"],
        scope=dict(m["scope"] or {}),
        data=dict(m["data"] or {}),
        created_at=utc(m["created_at"]),
        expires_at=utc(m["expires_at"]) if m["expires_at"] else None,
        revoked_at=utc(m["revoked_at"]) if m["revoked_at"] else None,
    )


class CredentialRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def insert(self, record: CredentialRecord, audit: Any = None) -> None:
        try:
            async with self._db.transaction() as tx:
                await tx.conn.execute(
                    insert(_T),
                    [
                        {
                            "id": record.id,
                            "kind": record.kind,
                            "name": record.name,
                            "role": record.role,
                            "secret_hash": record.secret_hash,
                            "lookup": record.lookup,
                            "scope": record.scope,
                            "data": record.data,
                            "created_at": record.created_at,
                            "expires_at": record.expires_at,
                            "revoked_at": None,
                        }
                    ],
                )
                if audit is not None:
                    tx.audit(audit)
        except IntegrityError:
            raise Conflict(f"credential {record.name!r} already exists") from None

    async def get(self, credential_id: str) -> CredentialRecord | None:
        async with self._db.read() as conn:
            row = (await conn.execute(select(_T).where(_T.c.id == credential_id))).first()
        return _record(row) if row else None

    async def by_lookup(self, lookup: str) -> CredentialRecord | None:
        async with self._db.read() as conn:
            row = (await conn.execute(select(_T).where(_T.c.lookup == lookup))).first()
        return _record(row) if row else None

    async def list(self, kind: str | None = None, include_revoked: bool = False) -> list[CredentialRecord]:
        conditions = []
        if kind is not None:
            conditions.append(_T.c.kind == kind)
        if not include_revoked:
            conditions.append(_T.c.revoked_at.is_(None))
        query = select(_T).order_by(_T.c.created_at)
        if conditions:
            query = query.where(and_(*conditions))
        async with self._db.read() as conn:
            return [_record(r) for r in (await conn.execute(query)).all()]

    async def revoke(self, credential_id: str, at: dt.datetime, audit: Any = None) -> bool:
        async with self._db.transaction() as tx:
            result = await tx.conn.execute(
                update(_T).where(_T.c.id == credential_id, _T.c.revoked_at.is_(None)).values(revoked_at=at)
            )
            if result.rowcount and audit is not None:
                tx.audit(audit)
        return bool(result.rowcount)
