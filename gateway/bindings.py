"""BindingRegistry: (protocol, CA) -> Binding, read from the store and cached briefly.

Bindings live in the database so one created through the API works at once on every
worker and replica; the cache only saves a query per request (a change is seen within
`ttl` seconds elsewhere, immediately in the process that made it).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ca_core.audit import AuditEntry
from ca_core.errors import BadRequest, NotFound
from ca_core.services import Services
from ca_core.store.bindings import BindingRecord
from protocols._shared.web import Binding, Frontend


def binding_of(record: BindingRecord) -> Binding:
    s = dict(record.settings)
    allowed = tuple(s.pop("allowed_profiles", ()))
    default = s.pop("default_profile", allowed[0] if allowed else "")
    return Binding(record.protocol, record.ca, allowed, default, record.enabled, s)


class BindingRegistry:
    def __init__(self, services: Services, frontends: Mapping[str, Frontend], ttl: float = 2.0) -> None:
        self._services = services
        self._frontends = frontends
        self._ttl = ttl
        self._cache: dict[tuple[str, str | None], tuple[float, Binding | None]] = {}

    @property
    def frontends(self) -> Mapping[str, Frontend]:
        return self._frontends

    async def resolve(self, protocol: str, ca: str | None) -> Binding | None:
        """The binding for `ca` (or the protocol's default binding when ca is None)."""
        key = (protocol, ca)
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        if ca is None:
            records = await self._services.store.bindings.list(protocol=protocol)
            live = [r for r in records if r.enabled]
            chosen = next((r for r in live if r.settings.get("default")), live[0] if len(live) == 1 else None)
            binding = binding_of(chosen) if chosen else None
        else:
            record = await self._services.store.bindings.get(protocol, ca)
            binding = binding_of(record) if record else None
        self._cache[key] = (now, binding)
        return binding

    def invalidate(self) -> None:
        self._cache.clear()

    async def put(
        self,
        protocol: str,
        ca: str,
        settings: Mapping[str, Any] | None = None,
        allowed_profiles: list[str] | None = None,
        default_profile: str | None = None,
        enabled: bool = True,
        actor: str = "system",
    ) -> Binding:
        """Create or replace a binding after checking it against the CA and the catalogue."""
        frontend = self._frontends.get(protocol)
        if frontend is None:
            raise NotFound(f"no protocol {protocol!r}; installed: {', '.join(self._frontends)}")
        ca_obj = await self._services.authority.get(ca, fresh=True)
        if ca_obj.kind.value != "issuing":
            raise BadRequest(f"{ca} is not an issuing CA")
        base = frontend.default_settings(ca)
        merged: dict[str, Any] = {**base, **dict(settings or {})}
        if allowed_profiles is not None:
            merged["allowed_profiles"] = list(allowed_profiles)
        if default_profile is not None:
            merged["default_profile"] = default_profile
        allowed = list(merged.get("allowed_profiles") or [])
        default = merged.get("default_profile") or (allowed[0] if allowed else None)
        if not allowed or default not in allowed:
            raise BadRequest("a binding needs allowed_profiles, and its default_profile among them")
        catalogue = self._services.catalogue
        for profile_id in allowed:
            profile = catalogue[profile_id]
            if profile.internal:
                raise BadRequest(f"profile {profile_id} is internal to ceg")
            if profile.service not in ca_obj.services:
                raise BadRequest(
                    f"profile {profile_id} needs service {profile.service}, not enabled on CA {ca}"
                )
        merged["default_profile"] = default
        try:
            protocol_settings = frontend.check_settings(
                {k: v for k, v in merged.items() if k not in ("allowed_profiles", "default_profile")}
            )
        except ValueError as exc:
            raise BadRequest(f"binding settings: {exc}") from None
        stored = {**protocol_settings, "allowed_profiles": allowed, "default_profile": default}
        now = self._services.clock.now()
        audit = AuditEntry(now, "binding.saved", actor, ca, None, {"protocol": protocol, "settings": stored})
        record = await self._services.store.bindings.put(protocol, ca, stored, now, enabled, audit)
        self.invalidate()
        return binding_of(record)

    async def remove(self, protocol: str, ca: str, actor: str = "system") -> None:
        now = self._services.clock.now()
        audit = AuditEntry(now, "binding.removed", actor, ca, None, {"protocol": protocol})
        if not await self._services.store.bindings.delete(protocol, ca, audit):
            raise NotFound(f"no {protocol} binding on CA {ca}")
        self.invalidate()
