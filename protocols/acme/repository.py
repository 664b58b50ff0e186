"""ACME state in the shared state store (ARCHITECTURE.md sections 4 and 8).

Every worker and replica reads and writes the same documents, so a client may talk to
any of them. Namespaces (the documents are model.py's `to_doc`):

  acme-account      account id -> Account
  acme-account-key  "{ca}:{JWK thumbprint}" -> {"account": id}; created with the account
                    in one transaction, so one key names at most one account per CA
  acme-order        order id -> Order; lookup "acct:{account id}" (the orders list)
  acme-authz        authz id -> Authorization; lookup, once valid, a hash of
                    (account, identifier, wildcard): how newOrder finds one to reuse
  acme-secret       the nonce MAC key, created by whichever worker needs it first
  acme-replaced     serial -> order id: certificates already renewed (RFC 9773 5)

Updates are compare-and-set on the document version: a Conflict means another worker
changed the document first; callers re-read and decide again. Documents with an expiry
(orders, authorizations, replaced serials) are deleted once it passes by the gateway's
state-purge job (gateway/jobs.py), which runs on one worker only. Used nonces are the
store's spent tokens (ca_core/store/spent.py), not documents: written on every request,
they are kept where writing them is cheapest.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import time
from collections.abc import Sequence
from typing import TypeVar

from ca_core.clock import RandomBytes
from ca_core.errors import Conflict
from ca_core.store import Store
from ca_core.store.state import StateDocument, StateWrite
from protocols.acme.jws import b64url, b64url_decode
from protocols.acme.model import Account, Authorization, AuthzStatus, Identifier, Order
from protocols.acme.nonces import bad_nonce

NS_ACCOUNT = "acme-account"
NS_ACCOUNT_KEY = "acme-account-key"
NS_ORDER = "acme-order"
NS_AUTHZ = "acme-authz"
NS_SECRET = "acme-secret"
NS_REPLACED = "acme-replaced"


# How long finished orders and authorizations stay readable after they expire.
KEEP_AFTER_EXPIRY = dt.timedelta(days=30)

# The longest a worker trusts its copy of an account without a new read. The change
# token makes a write visible at once; this bounds the one case it misses, a worker
# killed between committing an account and changing the token.
ACCOUNT_COPY_SECONDS = 5.0
_ACCOUNT_COPIES = 10_000  # a bound on memory, not an eviction policy


def reuse_lookup(account: str, identifier: Identifier, wildcard: bool) -> str:
    text = f"{account}|{identifier.type}|{identifier.value}|{int(wildcard)}"
    return "reuse:" + hashlib.sha256(text.encode()).hexdigest()


class AcmeRepository:
    """Reads go through the store's hot-path get and writes through its group commit
    (ca_core/store/state_batch.py): under load, many requests share one transaction,
    which is what keeps SQLite's single writer from being the limit."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._state = store.state
        # Accounts as last read, under the namespace's change token (account()).
        self._accounts: dict[str, tuple[int, float, Account]] = {}

    async def _get(self, namespace: str, key: str) -> StateDocument | None:
        return await self._state.get_batched(namespace, key)

    async def _commit(
        self, writes: list[StateWrite], now: dt.datetime, durable: bool = True
    ) -> list[int | None]:
        return await self._state.commit(writes, now, durable)

    # --- nonces ------------------------------------------------------------------------

    async def nonce_key(self, now: dt.datetime, random_bytes: RandomBytes) -> bytes:
        """The shared nonce MAC key; the first worker to need it creates it."""
        found = await self._state.get(NS_SECRET, "nonce-key")
        if found is None:
            try:
                found = await self._state.create(
                    NS_SECRET, "nonce-key", {"key": b64url(random_bytes(32))}, now
                )
            except Conflict:
                found = await self._state.get(NS_SECRET, "nonce-key")
        assert found is not None
        return b64url_decode(found.document["key"], "nonce key")

    @property
    def nonce_floor(self) -> dt.datetime | None:
        """Nonces minted before this are refused: their use may have gone unrecorded."""
        return self._store.spent.floor

    async def use_nonce(self, nonce: str, now: dt.datetime, expires: dt.datetime) -> None:
        """Record a nonce as used; badNonce if it already was (on any worker)."""
        if not await self._store.spent.spend(nonce, now, expires):
            raise bad_nonce("the nonce was already used")

    # --- accounts --------------------------------------------------------------------------

    async def account(self, account_id: str) -> Account | None:
        """Every request signed with a kid reads its account: a worker keeps the copy it
        read while the store's change token for accounts stays the same (a write in any
        worker of the host changes it; ca_core/store/changes.py), and for at most
        ACCOUNT_COPY_SECONDS. Where the store gives no token (PostgreSQL), always read."""
        token = self._state.change_token(NS_ACCOUNT)
        if token is not None:
            copy = self._accounts.get(account_id)
            if copy is not None and copy[0] == token and time.monotonic() < copy[1]:
                return copy[2]
        doc = await self._get(NS_ACCOUNT, account_id)
        account = Account.from_doc(doc.key, doc.document, doc.version) if doc else None
        if token is not None and account is not None:
            if len(self._accounts) >= _ACCOUNT_COPIES:
                self._accounts.clear()
            self._accounts[account_id] = (token, time.monotonic() + ACCOUNT_COPY_SECONDS, account)
        return account

    async def account_by_key(self, ca: str, thumbprint: str) -> Account | None:
        index = await self._get(NS_ACCOUNT_KEY, f"{ca}:{thumbprint}")
        return await self.account(index.document["account"]) if index else None

    async def create_account(self, account: Account, now: dt.datetime) -> Account:
        """Conflict if the key already names an account of this CA."""
        await self._commit(
            [
                StateWrite(NS_ACCOUNT_KEY, f"{account.ca}:{account.thumbprint}", {"account": account.id}),
                StateWrite(NS_ACCOUNT, account.id, account.to_doc()),
            ],
            now,
        )
        return _versioned(account, 1)

    async def save_account(self, account: Account, now: dt.datetime) -> Account:
        [version] = await self._commit(
            [StateWrite(NS_ACCOUNT, account.id, account.to_doc(), expected_version=account.version)], now
        )
        return _versioned(account, version or 0)

    async def change_key(self, account: Account, old_thumbprint: str, now: dt.datetime) -> Account:
        """Move the key index to the new key and save the account, atomically (7.3.5)."""
        versions = await self._commit(
            [
                StateWrite(NS_ACCOUNT_KEY, f"{account.ca}:{account.thumbprint}", {"account": account.id}),
                StateWrite(NS_ACCOUNT_KEY, f"{account.ca}:{old_thumbprint}", delete=True),
                StateWrite(NS_ACCOUNT, account.id, account.to_doc(), expected_version=account.version),
            ],
            now,
        )
        return _versioned(account, versions[-1] or 0)

    # --- orders and authorizations --------------------------------------------------------

    async def order(self, order_id: str) -> Order | None:
        doc = await self._get(NS_ORDER, order_id)
        return Order.from_doc(doc.key, doc.document, doc.version) if doc else None

    async def orders_of(self, account_id: str, limit: int = 1000) -> list[Order]:
        docs = await self._state.find(NS_ORDER, f"acct:{account_id}", limit=limit)
        return [Order.from_doc(d.key, d.document, d.version) for d in docs]

    async def authz(self, authz_id: str) -> Authorization | None:
        doc = await self._get(NS_AUTHZ, authz_id)
        return Authorization.from_doc(doc.key, doc.document, doc.version) if doc else None

    async def authzs(self, authz_ids: Sequence[str]) -> list[Authorization]:
        found = [await self.authz(a) for a in authz_ids]
        return [a for a in found if a is not None]

    async def valid_authzs_for(
        self, account: str, identifier: Identifier, wildcard: bool, limit: int = 20
    ) -> list[Authorization]:
        """The account's valid authorizations for an identifier, newest first."""
        docs = await self._state.find(
            NS_AUTHZ, reuse_lookup(account, identifier, wildcard), limit=limit, newest_first=True
        )
        return [Authorization.from_doc(d.key, d.document, d.version) for d in docs]

    async def create_order(
        self, order: Order, new_authzs: Sequence[Authorization], now: dt.datetime
    ) -> Order:
        writes = [
            StateWrite(NS_AUTHZ, a.id, a.to_doc(), expires_at=a.expires + KEEP_AFTER_EXPIRY)
            for a in new_authzs
        ]
        writes.append(
            StateWrite(
                NS_ORDER,
                order.id,
                order.to_doc(),
                lookup=f"acct:{order.account}",
                expires_at=order.expires + KEEP_AFTER_EXPIRY,
            )
        )
        await self._commit(writes, now, durable=False)
        return _versioned(order, 1)

    async def save_order(self, order: Order, now: dt.datetime) -> Order:
        write = StateWrite(
            NS_ORDER,
            order.id,
            order.to_doc(),
            expected_version=order.version,
            lookup=f"acct:{order.account}",
            expires_at=max(order.expires, now) + KEEP_AFTER_EXPIRY,
        )
        # An order's progress need not wait for the disk (StateStore.commit): its
        # certificate is stored durably, and a power loss at worst sends the client back
        # a step (an order still processing is completed from the stored certificate).
        [version] = await self._commit([write], now, durable=False)
        return _versioned(order, version or 0)

    async def save_authz(self, authz: Authorization, now: dt.datetime) -> Authorization:
        lookup = (
            reuse_lookup(authz.account, authz.identifier, authz.wildcard)
            if authz.status is AuthzStatus.VALID
            else None
        )
        write = StateWrite(
            NS_AUTHZ,
            authz.id,
            authz.to_doc(),
            expected_version=authz.version,
            lookup=lookup,
            expires_at=authz.expires + KEEP_AFTER_EXPIRY,
        )
        # Validation progress is redone by the client if lost; a deactivation (the
        # client giving up an authorization) is kept durably.
        durable = authz.status is AuthzStatus.DEACTIVATED
        [version] = await self._commit([write], now, durable)
        return _versioned(authz, version or 0)

    # --- renewal (RFC 9773) -------------------------------------------------------------------

    async def replaced_by(self, serial: str) -> str | None:
        doc = await self._get(NS_REPLACED, serial)
        return str(doc.document["order"]) if doc else None

    async def mark_replaced(self, serial: str, order_id: str, now: dt.datetime, until: dt.datetime) -> None:
        """Conflict if another order already replaced this certificate."""
        await self._commit([StateWrite(NS_REPLACED, serial, {"order": order_id}, expires_at=until)], now)


_Record = TypeVar("_Record", Account, Order, Authorization)


def _versioned(obj: _Record, version: int) -> _Record:
    return dataclasses.replace(obj, version=version)
