"""What one ACME sub-application keeps between requests: nothing that must agree across
workers (that is in the store), only reusable things: the nonce MAC key once read, the
validator's HTTP session and TLS context, parsed account keys, and the background
validation tasks so they are cancelled when the app stops.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

from aiohttp import web

from ca_core.services import Services
from protocols._shared.web import Binding
from protocols.acme.jws import PublicKey, canonical_jwk, jwk_of, public_key_of, thumbprint
from protocols.acme.repository import AcmeRepository
from protocols.acme.settings import AcmeSettings
from protocols.acme.validation import ChallengeValidator

_KEY_CACHE_SIZE = 4096
log = logging.getLogger(__name__)
T = TypeVar("T")


class AcmeContext:
    def __init__(self) -> None:
        self.validator = ChallengeValidator()
        self._nonce_key: bytes | None = None
        self._nonce_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._keys: dict[tuple[tuple[str, Any], ...], tuple[PublicKey, str]] = {}
        self._repository: AcmeRepository | None = None
        self._settings: tuple[Binding, AcmeSettings] | None = None

    def repository(self, services: Services) -> AcmeRepository:
        if self._repository is None:
            self._repository = AcmeRepository(services.store)
        return self._repository

    def settings(self, binding: Binding) -> AcmeSettings:
        """The binding's settings, parsed again only when the registry hands out a new
        Binding (bindings are immutable values, replaced when changed)."""
        cached = self._settings
        if cached is None or cached[0] is not binding:
            cached = (binding, AcmeSettings.of(binding.settings))
            self._settings = cached
        return cached[1]

    async def nonce_key(self, services: Services) -> bytes:
        if self._nonce_key is None:
            async with self._nonce_lock:
                if self._nonce_key is None:
                    self._nonce_key = await self.repository(services).nonce_key(
                        services.clock.now(), services.random_bytes
                    )
        return self._nonce_key

    def account_key(self, jwk: dict[str, Any]) -> tuple[PublicKey, str]:
        """The public key and thumbprint of a JWK, parsed once per distinct key: keys are
        immutable values, so caching them cannot go stale."""
        # The required members in their fixed order: one spelling per key, and cheaper to
        # build than the JSON text it replaced. A member that is not a string (no valid
        # key has one) is not cached; public_key_of refuses it.
        members = canonical_jwk(jwk)
        raw = tuple(members.items())
        cacheable = all(isinstance(value, str) for value in members.values())
        hit = self._keys.get(raw) if cacheable else None
        if hit is None:
            key = public_key_of(jwk)
            # The thumbprint of the re-encoded key: one key, one identity, however the
            # client spelled its JWK (leading zero octets, extra members).
            hit = (key, thumbprint(jwk_of(key)))
            if len(self._keys) >= _KEY_CACHE_SIZE:
                self._keys.clear()
            if cacheable:
                self._keys[raw] = hit
        return hit

    def spawn(self, coroutine: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.validator.close()


ACME_CONTEXT = web.AppKey("ceg.acme.context", AcmeContext)
