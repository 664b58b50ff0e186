"""Build the CA-core services a gateway process runs on, from its configuration."""

from __future__ import annotations

from ca_core.clock import Clock
from ca_core.issuance import RateLimit, RateLimits
from ca_core.keys import KeyStore
from ca_core.services import Services, open_services
from gateway.config import Config


def build_keystore(config: Config) -> KeyStore:
    if config.keys.backend == "pkcs11":
        from ca_core.keys.pkcs11 import Pkcs11KeyStore, Pkcs11Token

        p11 = config.keys.pkcs11
        pin = p11.pin.resolve(config.data_dir, "keys.pkcs11.pin")
        return Pkcs11KeyStore(Pkcs11Token(p11.module, p11.token_label, pin))
    from ca_core.keys.file import FileKeyStore

    passphrase = config.keys.passphrase.resolve(config.data_dir, "keys.passphrase")
    return FileKeyStore(config.path(config.keys.directory), passphrase.encode())


def rate_limits(config: Config) -> RateLimits:
    per_ca = config.issuance.rate_limit_per_ca
    per_req = config.issuance.rate_limit_per_requester
    return RateLimits(
        per_ca=RateLimit(per_ca.count, per_ca.per_seconds) if per_ca else None,
        per_requester=RateLimit(per_req.count, per_req.per_seconds) if per_req else None,
    )


async def open_gateway_services(
    config: Config, run_migrations: bool = True, clock: Clock | None = None
) -> Services:
    return await open_services(
        config.database.resolved_url(config.data_dir),
        build_keystore(config),
        config.server.base_url(),
        clock=clock,
        rate_limits=rate_limits(config),
        run_migrations=run_migrations,
    )
