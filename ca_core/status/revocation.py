"""Revoke, hold and unhold (seed 1.1.3.1; RFC 5280 5.3.1).

Rules:
- revoke: from normal or held; reason one of the six supported. Revoking with reason
  certificateHold is a hold.
- hold: from normal only (certificateHold, reversible).
- unhold: from held only, back to normal.
- A revoked certificate cannot be held or unheld; a deleted CA's certificates are out
  of service and take no actions.
Each change is one transaction with its audit entry (which is also the certificate
event), then the registered StatusListeners hear of it (CRL and OCSP refresh).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, Protocol

from ca_core.audit import Action, AuditEntry
from ca_core.clock import Clock
from ca_core.errors import InvalidState, NotFound
from ca_core.model import CaState, CertificateRecord, CertStatus, RevocationReason
from ca_core.store import Store

log = logging.getLogger(__name__)


class StatusListener(Protocol):
    async def status_changed(self, record: CertificateRecord, publish_now: bool) -> None:
        """Called after a status change is committed."""
        ...


@dataclass(frozen=True, slots=True)
class StatusChange:
    serial: str
    actor: str
    reason: RevocationReason = RevocationReason.UNSPECIFIED
    invalidity_date: dt.datetime | None = None
    comment: str | None = None
    publish_now: bool = False
    ca: str | None = None  # when given, the certificate must belong to this CA


def normalise_serial(serial: str) -> str:
    cleaned = serial.strip().lower().replace(":", "").replace(" ", "")
    try:
        return format(int(cleaned, 16), "x")
    except ValueError:
        from ca_core.errors import BadRequest

        raise BadRequest(f"{serial!r} is not a hexadecimal serial number") from None


class RevocationService:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._listeners: list[StatusListener] = []

    def add_listener(self, listener: StatusListener) -> None:
        self._listeners.append(listener)

    async def revoke(self, change: StatusChange) -> CertificateRecord:
        if change.reason is RevocationReason.CERTIFICATE_HOLD:
            return await self.hold(change)
        return await self._apply(change, Action.CERT_REVOKED)

    async def hold(self, change: StatusChange) -> CertificateRecord:
        return await self._apply(change, Action.CERT_HELD)

    async def unhold(self, change: StatusChange) -> CertificateRecord:
        return await self._apply(change, Action.CERT_UNHELD)

    async def _apply(self, change: StatusChange, action: str) -> CertificateRecord:
        serial = normalise_serial(change.serial)
        now = self._clock.now()
        async with self._store.db.transaction() as uow:
            record = await self._store.certificates.get_for_update(uow, serial)
            if record is None or (change.ca is not None and record.ca != change.ca):
                raise NotFound(f"no certificate with serial {serial}", serial=serial)
            ca = await self._store.cas.get_for_update(uow, record.ca)
            if ca is None or ca.state is not CaState.ACTIVE:
                raise InvalidState(f"the CA of {serial} is out of service", serial=serial)
            fields = self._transition(record, action, change, now)
            await self._store.certificates.update_status(uow, serial, now, **fields)
            detail: dict[str, object] = {"status": fields["status"].value}
            if action != Action.CERT_UNHELD:
                detail["reason"] = fields["revocation_reason"].value
            if change.invalidity_date:
                detail["invalidity_date"] = change.invalidity_date.isoformat()
            if change.comment:
                detail["comment"] = change.comment[:500]
            detail["publish_now"] = change.publish_now
            uow.audit(AuditEntry(now, action, change.actor, record.ca, serial, detail))
        updated = await self._store.certificates.get(serial)
        assert updated is not None
        for listener in self._listeners:
            try:
                await listener.status_changed(updated, change.publish_now)
            except Exception:  # the change is committed; a listener's failure is logged
                log.exception("status listener failed", extra={"serial": serial})
        return updated

    @staticmethod
    def _transition(
        record: CertificateRecord, action: str, change: StatusChange, now: dt.datetime
    ) -> dict[str, Any]:
        status = record.status
        if status is CertStatus.REVOKED:
            raise InvalidState(
                f"certificate {record.serial} is revoked; nothing more can change", serial=record.serial
            )
        if action == Action.CERT_REVOKED:
            return {
                "status": CertStatus.REVOKED,
                "revoked_at": now,
                "revocation_reason": change.reason,
                "invalidity_date": change.invalidity_date,
            }
        if action == Action.CERT_HELD:
            if status is CertStatus.HELD:
                raise InvalidState(f"certificate {record.serial} is already on hold", serial=record.serial)
            return {
                "status": CertStatus.HELD,
                "revoked_at": now,
                "revocation_reason": RevocationReason.CERTIFICATE_HOLD,
                "invalidity_date": change.invalidity_date,
            }
        if status is not CertStatus.HELD:
            raise InvalidState(f"certificate {record.serial} is not on hold", serial=record.serial)
        return {
            "status": CertStatus.NORMAL,
            "revoked_at": None,
            "revocation_reason": None,
            "invalidity_date": None,
        }
