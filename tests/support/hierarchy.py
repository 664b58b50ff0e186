"""A root and an issuing CA for tests."""

from __future__ import annotations

from ca_core.model import KeyAlgorithm, Service
from ca_core.services import Services


async def make_hierarchy(
    services: Services,
    key: KeyAlgorithm = KeyAlgorithm.EC_P256,
    root_id: str = "root",
    issuing_id: str = "issuing",
    ocsp: bool = True,
) -> tuple[str, str]:
    """A root and an issuing CA with every service enabled."""
    await services.authority.create_root(
        root_id, f"CN=Test Root {root_id},O=ceg tests", key, ocsp_enabled=ocsp
    )
    await services.authority.create_issuing(
        issuing_id,
        root_id,
        f"CN=Test Issuing {issuing_id},O=ceg tests",
        key,
        services=[s.value for s in Service],
        ocsp_enabled=ocsp,
    )
    return root_id, issuing_id
