"""The ACME Frontend object: binding defaults and checks through the gateway's registry,
and the demo.json section `ceg init --demo` writes."""

from __future__ import annotations

import pytest

from ca_core.errors import BadRequest
from ca_core.services import Services
from gateway.bindings import BindingRegistry
from protocols._shared.web import Frontend
from protocols.acme import frontend


async def test_frontend_binding_defaults_checks_and_demo(
    services: Services, hierarchy: tuple[str, str]
) -> None:
    _, issuing = hierarchy
    assert isinstance(frontend, Frontend)
    assert (frontend.name, frontend.prefixes, frontend.service) == ("acme", ("/acme/",), "privatessl")
    registry = BindingRegistry(services, {"acme": frontend})
    binding = await registry.put(
        "acme", issuing, settings={"http01_port": 8080, "dns_resolver": "127.0.0.1:8053"}
    )
    assert binding.default_profile == "privatessl-tls-server"
    assert set(binding.allowed_profiles) == {
        "privatessl-tls-server",
        "privatessl-tls-client",
        "privatessl-tls-client-server",
    }
    assert binding.settings["eab_required"] is False and binding.settings["http01_port"] == 8080
    with pytest.raises(BadRequest, match="allowed_ip_ranges"):
        await registry.put("acme", issuing, settings={"allowed_ip_ranges": ["not a range"]})
    demo = await frontend.demo_setup(services, binding, "https://127.0.0.1:8443")
    assert demo["directory"] == f"https://127.0.0.1:8443/acme/{issuing}/directory"
    assert (demo["http01_port"], demo["tls_alpn01_port"], demo["dns_resolver"]) == (
        8080,
        443,
        "127.0.0.1:8053",
    )
    record, key = await services.credentials.eab(demo["eab_kid"])
    assert record.scope == {"ca": issuing, "protocol": "acme"} and len(key) == 32
