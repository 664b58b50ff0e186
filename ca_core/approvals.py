"""Manual approval: a request waits in the store until an officer approves or rejects it.

Protocols that answer "pending" (EST 202 + Retry-After, SCEP PENDING, CMP pollRep)
submit the IssuanceRequest here and keep the returned id in their own state; on the
client's next attempt they look the request up: still pending, issued (with the
certificate's serial), or rejected (with the officer's reason). Approval issues through
the normal IssuanceService, so every policy check still applies at that moment.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cryptography import x509

from ca_core.audit import AuditEntry
from ca_core.clock import Clock, RandomBytes
from ca_core.errors import CegError, Conflict, InvalidState, NotFound
from ca_core.issuance import IssuanceService
from ca_core.model import IssuanceRequest, IssuedCertificate, RequestedExtension, Requester, utc
from ca_core.store import Store
from ca_core.x509.names import parse_san, san_text

NAMESPACE = "approval"


class ApprovalState(StrEnum):
    PENDING = "pending"
    ISSUED = "issued"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class PendingRequest:
    id: str
    ca: str
    profile: str
    protocol: str
    state: ApprovalState
    created_at: dt.datetime
    subject: str
    sans: tuple[str, ...]
    request: IssuanceRequest
    serial: str | None = None
    reason: str | None = None
    decided_by: str | None = None
    decided_at: dt.datetime | None = None
    version: int = 1


def request_to_json(request: IssuanceRequest) -> dict[str, Any]:
    def b64(data: bytes | None) -> str | None:
        return base64.b64encode(data).decode() if data is not None else None

    return {
        "ca": request.ca,
        "profile": request.profile,
        "requester": request.requester.as_dict(),
        "csr": b64(request.csr),
        "public_key": b64(request.public_key),
        "pop_verified": request.pop_verified,
        "subject": request.subject.rfc4514_string() if request.subject is not None else None,
        "subject_alt_names": [san_text(n) for n in request.subject_alt_names]
        if request.subject_alt_names is not None
        else None,
        "not_before": request.not_before.isoformat() if request.not_before else None,
        "not_after": request.not_after.isoformat() if request.not_after else None,
        "validity_seconds": request.validity.total_seconds() if request.validity else None,
        "extensions": [
            {"oid": e.oid, "value": b64(e.value), "critical": e.critical} for e in request.extensions
        ],
        "renewal_of": request.renewal_of,
        "request_key": request.request_key,
    }


def request_from_json(data: dict[str, Any]) -> IssuanceRequest:
    def unb64(text: str | None) -> bytes | None:
        return base64.b64decode(text) if text is not None else None

    sans = data.get("subject_alt_names")
    return IssuanceRequest(
        ca=data["ca"],
        profile=data["profile"],
        requester=Requester(**data["requester"]),
        csr=unb64(data.get("csr")),
        public_key=unb64(data.get("public_key")),
        pop_verified=bool(data.get("pop_verified")),
        subject=x509.Name.from_rfc4514_string(data["subject"]) if data.get("subject") is not None else None,
        subject_alt_names=tuple(parse_san(s) for s in sans) if sans is not None else None,
        not_before=dt.datetime.fromisoformat(data["not_before"]) if data.get("not_before") else None,
        not_after=dt.datetime.fromisoformat(data["not_after"]) if data.get("not_after") else None,
        validity=dt.timedelta(seconds=data["validity_seconds"]) if data.get("validity_seconds") else None,
        extensions=tuple(
            RequestedExtension(e["oid"], base64.b64decode(e["value"]), bool(e["critical"]))
            for e in data.get("extensions", [])
        ),
        renewal_of=data.get("renewal_of"),
        request_key=data.get("request_key"),
    )


class ApprovalService:
    def __init__(
        self, store: Store, issuance: IssuanceService, clock: Clock, random_bytes: RandomBytes
    ) -> None:
        self._store = store
        self._issuance = issuance
        self._clock = clock
        self._random = random_bytes

    async def submit(self, request: IssuanceRequest) -> PendingRequest:
        """Park a request for an officer. Its CSR is checked now, so only a sound request waits."""
        if request.csr is not None:
            from ca_core.x509.csr import parse_csr

            parse_csr(request.csr)
        now = self._clock.now()
        request_id = self._random(12).hex()
        subject = request.subject.rfc4514_string() if request.subject is not None else ""
        if request.subject is None and request.csr is not None:
            subject = x509.load_der_x509_csr(request.csr).subject.rfc4514_string()
        doc = {
            "ca": request.ca,
            "profile": request.profile,
            "protocol": request.requester.protocol,
            "state": ApprovalState.PENDING.value,
            "subject": subject,
            "request": request_to_json(request),
        }
        await self._store.state.create(NAMESPACE, request_id, doc, now, lookup=ApprovalState.PENDING.value)
        async with self._store.db.transaction() as uow:
            uow.audit(
                AuditEntry(
                    now,
                    "approval.submitted",
                    f"{request.requester.protocol}:{request.requester.principal}",
                    request.ca,
                    None,
                    {"id": request_id, "profile": request.profile, "subject": subject},
                )
            )
        pending = await self.get(request_id)
        return pending

    async def get(self, request_id: str) -> PendingRequest:
        doc = await self._store.state.get(NAMESPACE, request_id)
        if doc is None:
            raise NotFound(f"no pending request {request_id!r}")
        d = doc.document
        request = request_from_json(d["request"])
        return PendingRequest(
            id=request_id,
            ca=d["ca"],
            profile=d["profile"],
            protocol=d["protocol"],
            state=ApprovalState(d["state"]),
            created_at=doc.created_at,
            subject=d.get("subject", ""),
            sans=tuple(d["request"].get("subject_alt_names") or ()),
            request=request,
            serial=d.get("serial"),
            reason=d.get("reason"),
            decided_by=d.get("decided_by"),
            decided_at=utc(dt.datetime.fromisoformat(d["decided_at"])) if d.get("decided_at") else None,
            version=doc.version,
        )

    async def list(
        self, state: ApprovalState | None = ApprovalState.PENDING, ca: str | None = None
    ) -> list[PendingRequest]:
        states = [state] if state is not None else list(ApprovalState)
        out: list[PendingRequest] = []
        for s in states:
            for doc in await self._store.state.find(NAMESPACE, s.value, limit=1000):
                item = await self.get(doc.key)
                if ca is None or item.ca == ca:
                    out.append(item)
        return out

    async def approve(self, request_id: str, actor: str) -> IssuedCertificate:
        pending = await self.get(request_id)
        if pending.state is not ApprovalState.PENDING:
            raise InvalidState(f"request {request_id} is already {pending.state.value}")
        # Claim the request first (compare-and-set), so two officers cannot issue twice.
        await self._decide(pending, ApprovalState.PENDING, actor, claim=True)
        try:
            issued = await self._issuance.issue(pending.request)
        except CegError as exc:
            await self._decide(
                pending, ApprovalState.REJECTED, actor, reason=f"refused at approval: {exc.message}"
            )
            raise
        await self._decide(pending, ApprovalState.ISSUED, actor, serial=issued.serial_hex)
        return issued

    async def reject(self, request_id: str, actor: str, reason: str) -> PendingRequest:
        pending = await self.get(request_id)
        if pending.state is not ApprovalState.PENDING:
            raise InvalidState(f"request {request_id} is already {pending.state.value}")
        await self._decide(pending, ApprovalState.REJECTED, actor, reason=reason or "rejected")
        return await self.get(request_id)

    async def _decide(
        self,
        pending: PendingRequest,
        state: ApprovalState,
        actor: str,
        serial: str | None = None,
        reason: str | None = None,
        claim: bool = False,
    ) -> None:
        doc = await self._store.state.get(NAMESPACE, pending.id)
        assert doc is not None
        if claim:
            if doc.document.get("claimed_by"):
                raise Conflict(f"request {pending.id} is being decided by {doc.document['claimed_by']}")
            document = {**doc.document, "claimed_by": actor}
            lookup = ApprovalState.PENDING.value
        else:
            now = self._clock.now()
            document = {
                **doc.document,
                "state": state.value,
                "serial": serial,
                "reason": reason,
                "decided_by": actor,
                "decided_at": now.isoformat(),
            }
            lookup = state.value
        now = self._clock.now()
        async with self._store.db.transaction() as uow:
            await self._store.state.put(
                NAMESPACE, pending.id, document, now, doc.version, lookup=lookup, uow=uow
            )
            if not claim:
                uow.audit(
                    AuditEntry(
                        now,
                        f"approval.{state.value}",
                        actor,
                        pending.ca,
                        serial,
                        {"id": pending.id, "reason": reason},
                    )
                )
