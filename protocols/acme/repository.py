"""ACME state in the shared state store (ARCHITECTURE.md sections 4 and 8).

Every worker and replica reads and writes the same documents, so a client may talk to
any of them. Namespaces (the documents are model.py's `to_doc`):

  acme-account      account id -> Account
  acme-account-key  "{ca}:{JWK thumbprint}" -> {"account": id}; created with the account
                    in one transaction, so one key names at most one account per CA
  acme-order        order id -> Order; lookup "acct:{account id}" (the orders list)
  acme-authz        authz id -> Authorization; lookup, once valid, a hash of
                    (account, identifier, wildcard): how newOrder finds one to reuse
  acme-nonce        used nonces until they expire (see nonces.py)
  acme-secret       the nonce MAC key, created by whichever worker needs it first
  acme-replaced     serial -> order id: certificates already renewed (RFC 9773 5)

Updates are compare-and-set on the document version: a Conflict means another worker
changed the document first; callers re-read and decide again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Sequence
from typing import TypeVar

from ca_core.clock import RandomBytes
from ca_core.errors import Conflict
from ca_core.store import Store
from protocols.acme.jws import b64url, b64url_decode
from protocols.acme.model import Account, Authorization, AuthzStatus, Identifier, Order
from protocols.acme.nonces import bad_nonce

NS_ACCOUNT = "acme-account"
NS_ACCOUNT_KEY = "acme-account-key"
NS_ORDER = "acme-order"
NS_AUTHZ = "acme-authz"
NS_NONCE = "acme-nonce"
NS_SECRET = "acme-secret"
NS_REPLACED = "acme-replaced"

# How long finished orders and authorizations stay readable after they expire.
KEEP_AFTER_EXPIRY = dt.timedelta(days=30)


def reuse_lookup(account: str, identifier: Identifier, wildcard: bool) -> str:
    text = f"{account}|{identifier.type}|{identifier.value}|{int(wildcard)}"
    return "reuse:" + hashlib.sha256(text.encode()).hexdigest()


class AcmeRepository:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._state = store.state

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

    async def use_nonce(self, nonce: str, now: dt.datetime, expires: dt.datetime) -> None:
        """Record a nonce as used; badNonce if it already was (on any worker)."""
        try:
            await self._state.create_batched(NS_NONCE, nonce, {}, now, expires_at=expires)
        except Conflict:
            raise bad_nonce("the nonce was already used") from None

    # --- accounts --------------------------------------------------------------------------

    async def account(self, account_id: str) -> Account | None:
        doc = await self._state.get(NS_ACCOUNT, account_id)
        return Account.from_doc(doc.key, doc.document, doc.version) if doc else None

    async def account_by_key(self, ca: str, thumbprint: str) -> Account | None:
        index = await self._state.get(NS_ACCOUNT_KEY, f"{ca}:{thumbprint}")
        return await self.account(index.document["account"]) if index else None

    async def create_account(self, account: Account, now: dt.datetime) -> Account:
        """Conflict if the key already names an account of this CA."""
        async with self._store.db.transaction() as uow:
            await self._state.create(
                NS_ACCOUNT_KEY, f"{account.ca}:{account.thumbprint}", {"account": account.id}, now, uow=uow
            )
            await self._state.create(NS_ACCOUNT, account.id, account.to_doc(), now, uow=uow)
        return _versioned(account, 1)

    async def save_account(self, account: Account, now: dt.datetime) -> Account:
        doc = await self._state.put(NS_ACCOUNT, account.id, account.to_doc(), now, account.version)
        return _versioned(account, doc.version)

    async def change_key(self, account: Account, old_thumbprint: str, now: dt.datetime) -> Account:
        """Move the key index to the new key and save the account, atomically (7.3.5)."""
        async with self._store.db.transaction() as uow:
            await self._state.create(
                NS_ACCOUNT_KEY, f"{account.ca}:{account.thumbprint}", {"account": account.id}, now, uow=uow
            )
            await self._state.delete(NS_ACCOUNT_KEY, f"{account.ca}:{old_thumbprint}", uow=uow)
            doc = await self._state.put(
                NS_ACCOUNT, account.id, account.to_doc(), now, account.version, uow=uow
            )
        return _versioned(account, doc.version)

    # --- orders and authorizations --------------------------------------------------------

    async def order(self, order_id: str) -> Order | None:
        doc = await self._state.get(NS_ORDER, order_id)
        return Order.from_doc(doc.key, doc.document, doc.version) if doc else None

    async def orders_of(self, account_id: str, limit: int = 1000) -> list[Order]:
        docs = await self._state.find(NS_ORDER, f"acct:{account_id}", limit=limit)
        return [Order.from_doc(d.key, d.document, d.version) for d in docs]

    async def authz(self, authz_id: str) -> Authorization | None:
        doc = await self._state.get(NS_AUTHZ, authz_id)
        return Authorization.from_doc(doc.key, doc.document, doc.version) if doc else None

    async def authzs(self, authz_ids: Sequence[str]) -> list[Authorization]:
        found = []
        for authz_id in authz_ids:
            authz = await self.authz(authz_id)
            if authz is not None:
                found.append(authz)
        return found

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
        async with self._store.db.transaction() as uow:
            for authz in new_authzs:
                await self._state.create(
                    NS_AUTHZ,
                    authz.id,
                    authz.to_doc(),
                    now,
                    expires_at=authz.expires + KEEP_AFTER_EXPIRY,
                    uow=uow,
                )
            await self._state.create(
                NS_ORDER,
                order.id,
                order.to_doc(),
                now,
                lookup=f"acct:{order.account}",
                expires_at=order.expires + KEEP_AFTER_EXPIRY,
                uow=uow,
            )
        return _versioned(order, 1)

    async def save_order(self, order: Order, now: dt.datetime) -> Order:
        doc = await self._state.put(
            NS_ORDER,
            order.id,
            order.to_doc(),
            now,
            order.version,
            lookup=f"acct:{order.account}",
            expires_at=max(order.expires, now) + KEEP_AFTER_EXPIRY,
        )
        return _versioned(order, doc.version)

    async def save_authz(self, authz: Authorization, now: dt.datetime) -> Authorization:
        lookup = (
            reuse_lookup(authz.account, authz.identifier, authz.wildcard)
            if authz.status is AuthzStatus.VALID
            else None
        )
        doc = await self._state.put(
            NS_AUTHZ,
            authz.id,
            authz.to_doc(),
            now,
            authz.version,
            lookup=lookup,
            expires_at=authz.expires + KEEP_AFTER_EXPIRY,
        )
        return _versioned(authz, doc.version)

    # --- renewal (RFC 9773) -------------------------------------------------------------------

    async def replaced_by(self, serial: str) -> str | None:
        doc = await self._state.get(NS_REPLACED, serial)
        return str(doc.document["order"]) if doc else None

    async def mark_replaced(self, serial: str, order_id: str, now: dt.datetime, until: dt.datetime) -> None:
        """Conflict if another order already replaced this certificate."""
        await self._state.create(NS_REPLACED, serial, {"order": order_id}, now, expires_at=until)


_Record = TypeVar("_Record", Account, Order, Authorization)


def _versioned(obj: _Record, version: int) -> _Record:
    return dataclasses.replace(obj, version=version)
