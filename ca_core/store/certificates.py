"""Certificate rows: insert (group-committed with their audit entry), lookup, search."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from ca_core.audit import AuditEntry
from ca_core.errors import Conflict
from ca_core.model import CertificateRecord, CertStatus, RevocationReason, utc
from ca_core.store import tables as t
from ca_core.store.database import Database, UnitOfWork

_T = t.certificates


@dataclass(frozen=True, slots=True)
class CertificateQuery:
    """Search criteria; every field is optional and they combine with AND."""

    ca: str | None = None
    serial: str | None = None
    status: CertStatus | None = None
    profile: str | None = None
    text: str | None = None  # substring of the subject DN or any SAN
    expires_after: dt.datetime | None = None
    expires_before: dt.datetime | None = None
    issued_after: dt.datetime | None = None
    limit: int = 100
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Page:
    items: list[CertificateRecord]
    total: int
    offset: int
    limit: int

    @property
    def has_more(self) -> bool:
        return self.offset + len(self.items) < self.total


def record_row(record: CertificateRecord) -> dict[str, Any]:
    return {
        "serial": record.serial,
        "ca_id": record.ca,
        "profile": record.profile,
        "subject": record.subject,
        "sans": "\n".join(record.sans),
        "status": record.status.value,
        "not_before": record.not_before,
        "not_after": record.not_after,
        "issued_at": record.issued_at,
        "status_changed_at": record.issued_at,
        "der": record.der,
        "requester": record.requester,
        "renewal_of": record.renewal_of,
        "revoked_at": record.revoked_at,
        "revocation_reason": record.revocation_reason.value if record.revocation_reason else None,
        "invalidity_date": record.invalidity_date,
        "request_key": record.request_key,
    }


def record_of(row: Row[Any]) -> CertificateRecord:
    m = row._mapping
    return CertificateRecord(
        serial=m["serial"],
        ca=m["ca_id"],
        profile=m["profile"],
        subject=m["subject"],
        sans=tuple(s for s in m["sans"].split("\n") if s),
        status=CertStatus(m["status"]),
        not_before=utc(m["not_before"]),
        not_after=utc(m["not_after"]),
        der=bytes(m["der"]),
        issued_at=utc(m["issued_at"]),
        requester=dict(m["requester"] or {}),
        renewal_of=m["renewal_of"],
        revoked_at=utc(m["revoked_at"]) if m["revoked_at"] else None,
        revocation_reason=RevocationReason(m["revocation_reason"]) if m["revocation_reason"] else None,
        invalidity_date=utc(m["invalidity_date"]) if m["invalidity_date"] else None,
        request_key=m.get("request_key"),
    )


class CertificateRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def insert(
        self, record: CertificateRecord, audit: AuditEntry, ca_must_be_active: bool = False
    ) -> None:
        """Store a new certificate and its audit entry; returns once committed.

        `ca_must_be_active`: refuse (InvalidState, nothing written) if the issuing CA is not
        active at commit time. Conflict (nothing written) if the serial or the request key
        is stored already.
        """
        try:
            await self._db.insert_batched(
                [(_T, record_row(record))], [audit], active_ca=record.ca if ca_must_be_active else None
            )
        except IntegrityError:
            raise Conflict(
                f"certificate {record.serial} or its request key is stored already", ca=record.ca
            ) from None

    async def by_request_key(self, request_key: str) -> CertificateRecord | None:
        """The certificate stored for an idempotency key (IssuanceRequest.request_key)."""
        async with self._db.read() as conn:
            row = (await conn.execute(select(_T).where(_T.c.request_key == request_key))).first()
        return record_of(row) if row else None

    async def get(self, serial: str, ca: str | None = None) -> CertificateRecord | None:
        query = select(_T).where(_T.c.serial == serial.lower())
        if ca is not None:
            query = query.where(_T.c.ca_id == ca)
        async with self._db.read() as conn:
            row = (await conn.execute(query)).first()
        return record_of(row) if row else None

    async def get_for_update(self, uow: UnitOfWork, serial: str) -> CertificateRecord | None:
        query = select(_T).where(_T.c.serial == serial.lower())
        if uow.is_postgres:
            query = query.with_for_update()
        row = (await uow.conn.execute(query)).first()
        return record_of(row) if row else None

    async def update_status(self, uow: UnitOfWork, serial: str, at: dt.datetime, **fields: Any) -> None:
        values = dict(fields, status_changed_at=at)
        if isinstance(values.get("status"), CertStatus):
            values["status"] = values["status"].value
        if isinstance(values.get("revocation_reason"), RevocationReason):
            values["revocation_reason"] = values["revocation_reason"].value
        await uow.conn.execute(update(_T).where(_T.c.serial == serial.lower()).values(**values))

    async def search(self, q: CertificateQuery, now: dt.datetime | None = None) -> Page:
        conditions = []
        if q.ca:
            conditions.append(_T.c.ca_id == q.ca)
        if q.serial:
            conditions.append(_T.c.serial == q.serial.lower().replace(":", ""))
        if q.status is CertStatus.EXPIRED and now is not None:
            conditions.append(
                or_(_T.c.status == "expired", and_(_T.c.status == "normal", _T.c.not_after <= now))
            )
        elif q.status is CertStatus.NORMAL and now is not None:
            conditions.append(and_(_T.c.status == "normal", _T.c.not_after > now))
        elif q.status:
            conditions.append(_T.c.status == q.status.value)
        if q.profile:
            conditions.append(_T.c.profile == q.profile)
        if q.text:
            pattern = "%" + q.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            conditions.append(
                or_(_T.c.subject.ilike(pattern, escape="\\"), _T.c.sans.ilike(pattern, escape="\\"))
            )
        if q.expires_after:
            conditions.append(_T.c.not_after >= q.expires_after)
        if q.expires_before:
            conditions.append(_T.c.not_after < q.expires_before)
        if q.issued_after:
            conditions.append(_T.c.issued_at >= q.issued_after)
        where = and_(*conditions) if conditions else None
        query = select(_T).order_by(_T.c.issued_at.desc(), _T.c.serial).limit(q.limit).offset(q.offset)
        count = select(func.count()).select_from(_T)
        if where is not None:
            query, count = query.where(where), count.where(where)
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
            total = (await conn.execute(count)).scalar_one()
        return Page([record_of(r) for r in rows], total, q.offset, q.limit)

    async def count(self, ca: str | None = None) -> int:
        query = select(func.count()).select_from(_T)
        if ca is not None:
            query = query.where(_T.c.ca_id == ca)
        async with self._db.read() as conn:
            return int((await conn.execute(query)).scalar_one())
