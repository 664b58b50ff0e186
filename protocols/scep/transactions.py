"""Where SCEP transactions are kept (core.py decides what they mean).

One (CA, transactionID) is a set of rows in the state store, found by their common
`lookup` (a hash of CA and transactionID), two per request fingerprint:

- a claim row, inserted before anything is evaluated: its key is unique, so of two twin
  requests only one inserts it (the other answers PENDING and the client polls);
- a result row (issued with its serial, pending with its approval id, rejected or
  refused with the reason), inserted once the request is decided.

Both are plain inserts on the hot path, group-committed with other requests' state
writes (StateStore.create); a new request is claimed without reading first (its claim
insert is what detects a replay). Only rare
paths (an officer's decision, retrying a refused request, taking over an abandoned
claim) update rows, by compare-and-set.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any

from ca_core.errors import Conflict
from ca_core.services import Services
from ca_core.store import StateDocument
from protocols.scep.core import TRANSACTION_TTL, Attempt, Outcome, Transaction, transaction_key

MAX_ROWS = 200


@dataclass
class LoadedTransaction:
    key: str  # the lookup shared by the transaction's rows
    transaction: Transaction
    claims: dict[str, StateDocument] = field(default_factory=dict)  # by fingerprint
    results: dict[str, StateDocument] = field(default_factory=dict)


def _row_key(lookup: str, fingerprint: str, kind: str) -> str:
    return hashlib.sha256(f"{lookup}\0{fingerprint}".encode()).hexdigest() + kind


class TransactionStore:
    def __init__(self, services: Services, namespace: str) -> None:
        self._services = services
        self._namespace = namespace

    async def load(self, ca: str, transaction_id: str, now: dt.datetime) -> LoadedTransaction:
        lookup = transaction_key(ca, transaction_id)
        rows = await self._services.store.state.find(self._namespace, lookup, limit=MAX_ROWS)
        loaded = LoadedTransaction(lookup, Transaction())
        for row in rows:
            if row.expires_at is not None and row.expires_at <= now:
                continue
            target = loaded.claims if row.document.get("kind") == "claim" else loaded.results
            target[row.document["fingerprint"]] = row
        attempts = []
        for fingerprint, claim in loaded.claims.items():
            result = loaded.results.get(fingerprint)
            if result is not None and result.updated_at >= claim.updated_at:
                attempts.append(Attempt.from_json(result.document))
            else:  # claimed, not decided yet (or being retried after a refusal)
                attempts.append(Attempt(fingerprint, Outcome.ISSUING, claim.updated_at))
        attempts.sort(key=lambda a: a.updated_at)
        loaded.transaction = Transaction(tuple(attempts))
        return loaded

    async def claim_fresh(
        self, ca: str, transaction_id: str, fingerprint: str, now: dt.datetime
    ) -> LoadedTransaction | None:
        """Claim a request never seen before without reading first (the common case):
        None when this request has rows already, and `load` must decide."""
        loaded = LoadedTransaction(transaction_key(ca, transaction_id), Transaction())
        return loaded if await self.claim(loaded, fingerprint, now) else None

    async def claim(self, loaded: LoadedTransaction, fingerprint: str, now: dt.datetime) -> bool:
        """Take the request for this worker; False when another holds it."""
        state = self._services.store.state
        document: dict[str, Any] = {"kind": "claim", "fingerprint": fingerprint}
        expires = now + TRANSACTION_TTL
        existing = loaded.claims.get(fingerprint)
        try:
            if existing is None:
                await state.create(
                    self._namespace,
                    _row_key(loaded.key, fingerprint, "c"),
                    document,
                    now,
                    loaded.key,
                    expires,
                )
            else:  # retried after a refusal or rejection, or an abandoned claim
                await state.put(
                    self._namespace, existing.key, document, now, existing.version, loaded.key, expires
                )
        except Conflict:
            return False
        return True

    async def record(self, loaded: LoadedTransaction, attempt: Attempt, now: dt.datetime) -> None:
        """Write the request's outcome (raises Conflict only if a racing worker wrote one)."""
        state = self._services.store.state
        document = {"kind": "result", **attempt.to_json()}
        expires = now + TRANSACTION_TTL
        existing = loaded.results.get(attempt.fingerprint)
        if existing is None:
            key = _row_key(loaded.key, attempt.fingerprint, "r")
            try:
                created = await state.create(self._namespace, key, document, now, loaded.key, expires)
            except Conflict:
                current = await state.get(self._namespace, key)
                if current is None:
                    raise
                existing = current
            else:
                loaded.results[attempt.fingerprint] = created
                return
        loaded.results[attempt.fingerprint] = await state.put(
            self._namespace, existing.key, document, now, existing.version, loaded.key, expires
        )
