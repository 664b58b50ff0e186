"""The rows certificate status reads and writes: revoked entries, stored CRLs, certificate
states for OCSP, pre-signed OCSP responses, and status changes seen in the audit log.

Ordering argument (used by CRLs and by the OCSP caches): audit sequence numbers are handed
out under the audit head's lock, so they follow commit order. A reader that takes the head
first and then reads certificates sees every change up to that head; anything newer has a
larger sequence number and is found later by `status_changes_after`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from ca_core.audit import Action, AuditEntry
from ca_core.model import CertStatus, RevocationReason, utc
from ca_core.status.crl import RevokedEntry
from ca_core.store import tables as t
from ca_core.store.database import Database

STATUS_ACTIONS = (Action.CERT_REVOKED, Action.CERT_HELD, Action.CERT_UNHELD)
_ON_CRL = (CertStatus.REVOKED.value, CertStatus.HELD.value)


@dataclass(frozen=True, slots=True)
class StoredCrl:
    ca_id: str
    number: int
    this_update: dt.datetime
    next_update: dt.datetime
    entries: int
    audit_seq: int
    stale_since: dt.datetime | None
    der: bytes | None = None  # None when only the head was read


@dataclass(frozen=True, slots=True)
class RevokedSnapshot:
    audit_seq: int  # the CRL built from `chunks` reflects the audit log up to here
    chunks: AsyncIterator[Sequence[RevokedEntry]]


@dataclass(frozen=True, slots=True)
class CertificateState:
    """What OCSP needs to know about one certificate."""

    serial: str
    ca: str
    status: CertStatus
    revoked_at: dt.datetime | None
    reason: RevocationReason | None
    status_changed_at: dt.datetime
    not_after: dt.datetime


@dataclass(frozen=True, slots=True)
class StoredResponse:
    serial: str
    hash_alg: str
    ca_id: str
    cert_id: bytes
    signer: str
    status_changed_at: dt.datetime
    this_update: dt.datetime
    next_update: dt.datetime
    der: bytes


@dataclass(frozen=True, slots=True)
class StatusChangeSeen:
    seq: int
    ca_id: str | None
    serial: str | None


def _state(m: Any) -> CertificateState:
    return CertificateState(
        serial=m["serial"],
        ca=m["ca_id"],
        status=CertStatus(m["status"]),
        revoked_at=utc(m["revoked_at"]) if m["revoked_at"] else None,
        reason=RevocationReason(m["revocation_reason"]) if m["revocation_reason"] else None,
        status_changed_at=utc(m["status_changed_at"]),
        not_after=utc(m["not_after"]),
    )


_C = t.certificates
_R = t.ocsp_responses
_L = t.crls
_STATE_COLUMNS = (
    _C.c.serial,
    _C.c.ca_id,
    _C.c.status,
    _C.c.revoked_at,
    _C.c.revocation_reason,
    _C.c.status_changed_at,
    _C.c.not_after,
)


class StatusStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def _insert(self, table: t.Table) -> Any:
        return (postgresql.insert if self._db.is_postgres else sqlite.insert)(table)

    # --- audit log ----------------------------------------------------------------------

    async def audit_head(self) -> int:
        async with self._db.read() as conn:
            seq = (await conn.execute(select(t.audit_head.c.seq).where(t.audit_head.c.id == 1))).scalar()
        return int(seq or 0)

    async def status_changes_after(self, seq: int, limit: int = 1000) -> list[StatusChangeSeen]:
        log = t.audit_log
        query = (
            select(log.c.seq, log.c.ca_id, log.c.serial)
            .where(log.c.seq > seq, log.c.action.in_((*STATUS_ACTIONS, Action.CERT_EXPIRED)))
            .order_by(log.c.seq)
            .limit(limit)
        )
        async with self._db.read() as conn:
            return [StatusChangeSeen(int(r.seq), r.ca_id, r.serial) for r in await conn.execute(query)]

    # --- CRLs ---------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def revoked_snapshot(self, ca_id: str, chunk_size: int = 20_000) -> AsyncIterator[RevokedSnapshot]:
        """The audit head and every revoked or held certificate of `ca_id`, as one read
        snapshot, streamed in chunks so encoding overlaps reading (a million rows)."""
        query = select(_C.c.serial, _C.c.revoked_at, _C.c.revocation_reason, _C.c.invalidity_date).where(
            _C.c.ca_id == ca_id, _C.c.status.in_(_ON_CRL)
        )
        async with self._db.read() as conn:
            # Head first (see the module docstring): a change after it shows up as stale.
            head = (await conn.execute(select(t.audit_head.c.seq).where(t.audit_head.c.id == 1))).scalar()
            if self._db.is_postgres:
                yield RevokedSnapshot(int(head or 0), (await conn.stream(query)).partitions(chunk_size))
                return
            # closed here even when the reader stops early, before the read transaction ends
            async with contextlib.aclosing(_sqlite_revoked_rows(conn, ca_id, chunk_size)) as rows:
                yield RevokedSnapshot(int(head or 0), rows)

    async def store_crl(self, crl: StoredCrl, audit: AuditEntry | None = None) -> bool:
        """Keep `crl` as the CA's latest unless a higher-numbered one is already stored.

        `stale_since` is recomputed from the audit log in the same transaction: a status
        change committed after the CRL's snapshot keeps (or makes) it stale, whichever of
        this write and that change's listener comes first.
        """
        assert crl.der is not None
        async with self._db.transaction() as uow:
            log = t.audit_log
            stale_since = (
                await uow.conn.execute(
                    select(func.min(log.c.at)).where(
                        log.c.ca_id == crl.ca_id, log.c.seq > crl.audit_seq, log.c.action.in_(STATUS_ACTIONS)
                    )
                )
            ).scalar()
            values = {
                "ca_id": crl.ca_id,
                "number": crl.number,
                "this_update": crl.this_update,
                "next_update": crl.next_update,
                "entries": crl.entries,
                "audit_seq": crl.audit_seq,
                "stale_since": stale_since,
                "der": crl.der,
            }
            ins = self._insert(_L).values(**values)
            stmt = ins.on_conflict_do_update(
                index_elements=[_L.c.ca_id],
                set_={k: ins.excluded[k] for k in values if k != "ca_id"},
                where=_L.c.number < ins.excluded.number,
            )
            result = await uow.conn.execute(stmt)
            if audit is not None:
                uow.audit(audit)
        return bool(result.rowcount)

    async def first_status_change_after(self, ca_id: str, seq: int) -> dt.datetime | None:
        log = t.audit_log
        query = select(func.min(log.c.at)).where(
            log.c.ca_id == ca_id, log.c.seq > seq, log.c.action.in_(STATUS_ACTIONS)
        )
        async with self._db.read() as conn:
            first = (await conn.execute(query)).scalar()
        return utc(first) if first else None

    async def crl_heads(self, ca_ids: Iterable[str] | None = None) -> dict[str, StoredCrl]:
        columns = [c for c in _L.c if c.name != "der"]
        query = select(*columns)
        if ca_ids is not None:
            query = query.where(_L.c.ca_id.in_(list(ca_ids)))
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        return {r.ca_id: self._crl(r._mapping, None) for r in rows}

    async def crl(self, ca_id: str, number: int | None = None) -> StoredCrl | None:
        query = select(_L).where(_L.c.ca_id == ca_id)
        if number is not None:
            query = query.where(_L.c.number == number)
        async with self._db.read() as conn:
            row = (await conn.execute(query)).first()
        return self._crl(row._mapping, bytes(row.der)) if row else None

    @staticmethod
    def _crl(m: Any, der: bytes | None) -> StoredCrl:
        return StoredCrl(
            ca_id=m["ca_id"],
            number=int(m["number"]),
            this_update=utc(m["this_update"]),
            next_update=utc(m["next_update"]),
            entries=int(m["entries"]),
            audit_seq=int(m["audit_seq"]),
            stale_since=utc(m["stale_since"]) if m["stale_since"] else None,
            der=der,
        )

    async def mark_crl_stale(self, ca_id: str, at: dt.datetime) -> None:
        async with self._db.transaction() as uow:
            await uow.conn.execute(
                update(_L).where(_L.c.ca_id == ca_id, _L.c.stale_since.is_(None)).values(stale_since=at)
            )

    # --- OCSP ---------------------------------------------------------------------------

    async def states(self, serials: Sequence[str]) -> dict[str, CertificateState]:
        if not serials:
            return {}
        query = select(*_STATE_COLUMNS).where(_C.c.serial.in_(list(serials)))
        async with self._db.read() as conn:
            return {r.serial: _state(r._mapping) for r in await conn.execute(query)}

    async def state_and_response(
        self, serial: str, hash_alg: str
    ) -> tuple[CertificateState | None, StoredResponse | None]:
        """One certificate's state and its stored response for `hash_alg`, in one query."""
        query = (
            select(
                *_STATE_COLUMNS,
                _R.c.cert_id,
                _R.c.signer,
                _R.c.status_changed_at.label("r_changed"),
                _R.c.this_update,
                _R.c.next_update,
                _R.c.der,
            )
            .select_from(_C.outerjoin(_R, and_(_R.c.serial == _C.c.serial, _R.c.hash_alg == hash_alg)))
            .where(_C.c.serial == serial)
        )
        async with self._db.read() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None, None
        m = row._mapping
        state = _state(m)
        if m["der"] is None:
            return state, None
        return state, StoredResponse(
            serial=serial,
            hash_alg=hash_alg,
            ca_id=state.ca,
            cert_id=bytes(m["cert_id"]),
            signer=m["signer"],
            status_changed_at=utc(m["r_changed"]),
            this_update=utc(m["this_update"]),
            next_update=utc(m["next_update"]),
            der=bytes(m["der"]),
        )

    async def has_response(self, serial: str) -> bool:
        async with self._db.read() as conn:
            found = (await conn.execute(select(_R.c.serial).where(_R.c.serial == serial).limit(1))).first()
        return found is not None

    async def store_responses(self, responses: Sequence[StoredResponse]) -> None:
        if not responses:
            return
        rows = [
            {
                "serial": r.serial,
                "hash_alg": r.hash_alg,
                "ca_id": r.ca_id,
                "cert_id": r.cert_id,
                "signer": r.signer,
                "status_changed_at": r.status_changed_at,
                "this_update": r.this_update,
                "next_update": r.next_update,
                "der": r.der,
            }
            for r in responses
        ]
        ins = self._insert(_R)
        stmt = ins.on_conflict_do_update(
            index_elements=[_R.c.serial, _R.c.hash_alg],
            set_={k: ins.excluded[k] for k in rows[0] if k not in ("serial", "hash_alg")},
        )
        async with self._db.transaction() as uow:
            await uow.conn.execute(stmt, rows)

    async def due_for_presigning(
        self, ca_id: str, hash_alg: str, signer: str, signed_before: dt.datetime, now: dt.datetime, limit: int
    ) -> list[CertificateState]:
        """Unexpired certificates of `ca_id` without a current pre-signed response."""
        query = (
            select(*_STATE_COLUMNS)
            .select_from(_C.outerjoin(_R, and_(_R.c.serial == _C.c.serial, _R.c.hash_alg == hash_alg)))
            .where(
                _C.c.ca_id == ca_id,
                _C.c.not_after > now,
                or_(
                    _R.c.serial.is_(None),
                    _R.c.this_update < signed_before,
                    _R.c.signer != signer,
                    _R.c.status_changed_at != _C.c.status_changed_at,
                ),
            )
            .limit(limit)
        )
        async with self._db.read() as conn:
            return [_state(r._mapping) for r in await conn.execute(query)]


# The revoked rows of one CA straight from the SQLite driver, in the read transaction the
# caller opened. SQLAlchemy's per-row work (Row objects, parsing every stored time) takes
# two thirds of a million-entry CRL's build; the encoder reads the stored time text as it
# is (see crl.encode_entries).
_SQLITE_REVOKED = (
    "SELECT serial, revoked_at, revocation_reason, invalidity_date FROM certificates"
    " WHERE ca_id = ? AND status IN (?, ?)"
)


async def _sqlite_revoked_rows(
    conn: AsyncConnection, ca_id: str, chunk_size: int
) -> AsyncGenerator[Sequence[RevokedEntry], None]:
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection  # the aiosqlite connection, inside the open BEGIN
    assert driver is not None
    async with driver.execute(_SQLITE_REVOKED, (ca_id, *_ON_CRL)) as cursor:
        while rows := await cursor.fetchmany(chunk_size):
            yield rows
