"""The OpenAPI documents match the code: every route is documented and every documented
operation is routed; both documents load as OpenAPI 3.1; and schemathesis, driving
generated requests (valid and invalid) at a live gateway over TLS, never gets a 5xx."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from gateway.api import admin, cagw
from gateway.api.openapi import admin_document, cagw_document
from gateway.api.routing import Route
from gateway.client_credentials import issue_client_credential
from tests.support.gateway import LiveGateway

APIS = [
    pytest.param(cagw.ROUTES, cagw_document, cagw.PREFIX, id="cagw"),
    pytest.param(admin.ROUTES, admin_document, admin.PREFIX, id="admin"),
]
EXAMPLES_PER_OPERATION = 20


def documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item}


@pytest.mark.parametrize(("routes", "document", "prefix"), APIS)
def test_every_route_is_documented_and_every_documented_operation_is_routed(
    routes: tuple[Route, ...], document: Any, prefix: str
) -> None:
    doc = document()
    routed = {(r.method, r.path) for r in routes}
    assert routed == documented(doc)
    assert doc["openapi"] == "3.1.0" and doc["servers"] == [{"url": prefix}]
    ids = {r.path: r.name for r in routes}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert op["operationId"] == next(
                r.name for r in routes if r.path == path and r.method == method.upper()
            )
            assert "200" in op["responses"] or "201" in op["responses"]
    assert len(set(ids.values())) == len(ids)


@pytest.mark.parametrize(("routes", "document", "prefix"), APIS)
def test_documents_load_as_openapi(routes: tuple[Route, ...], document: Any, prefix: str) -> None:
    import schemathesis

    schema = schemathesis.openapi.from_dict(document())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == len(routes)


async def test_documents_are_served(live_gateway: LiveGateway) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        for prefix, document in ((cagw.PREFIX, cagw_document), (admin.PREFIX, admin_document)):
            async with session.get(f"{live_gateway.http}{prefix}/openapi.json") as response:
                assert response.status == 200
                assert await response.json() == document()


def _run_schemathesis(
    document: dict[str, Any], base_url: str, session: Any, headers: dict[str, str], tls: dict[str, Any]
) -> tuple[list[str], Counter[int]]:
    """Every operation, valid and invalid inputs; returns the server errors found.

    501 is what the CA Gateway API answers for operations ceg does not offer (the brief
    and the API's own error model): it passes where the document declares it, and only
    there. Any other 5xx is a failure.
    """
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode

    failures: list[str] = []
    statuses: Counter[int] = Counter()
    schema = schemathesis.openapi.from_dict(document)
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case: Any) -> None:
                response = case.call(base_url=base_url, session=session, headers=headers, timeout=30, **tls)
                status = response.status_code
                statuses[status] += 1
                declared = str(status) in case.operation.definition.raw.get("responses", {})
                if status >= 500 and not (status == 501 and declared):
                    failures.append(f"{case.method} {case.formatted_path} -> {status}: {response.text[:300]}")

            try:
                check()
            except Unsatisfiable:
                continue  # nothing to make invalid (no parameters, no body)
    return failures, statuses


async def test_schemathesis_finds_no_server_error(live_gateway: LiveGateway, tmp_path: Path) -> None:
    import requests

    gw = live_gateway
    token = (await gw.services.credentials.create_token("fuzz-admin", "admin")).secret
    _, p12 = await issue_client_credential(gw.services, gw.issuing, "fuzz-cagw", "admin", {}, "pw")
    key, cert, _ = pkcs12.load_key_and_certificates(p12, b"pw")
    assert key is not None and cert is not None
    cert_file, key_file = tmp_path / "client.pem", tmp_path / "client.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    # Something for the generated requests to find: a certificate and an event.
    from ca_core.model import IssuanceRequest, Requester
    from tests.support.pki import make_csr

    await gw.services.issuance.issue(
        IssuanceRequest(
            ca=gw.issuing, profile="privatessl-tls-server", requester=Requester("test"), csr=make_csr()
        )
    )

    session = requests.Session()
    mtls = {"verify": str(gw.root_pem), "cert": (str(cert_file), str(key_file))}
    cagw_failures, cagw_statuses = await asyncio.to_thread(
        _run_schemathesis, cagw_document(), f"{gw.https}{cagw.PREFIX}", session, {}, mtls
    )
    bearer = {"Authorization": f"Bearer {token}"}
    admin_failures, admin_statuses = await asyncio.to_thread(
        _run_schemathesis,
        admin_document(),
        f"{gw.https}{admin.PREFIX}",
        requests.Session(),
        bearer,
        {"verify": str(gw.root_pem)},
    )
    assert cagw_failures == [] and admin_failures == []
    # The credentials worked: most answers are not 401/403, and many are successes.
    for statuses in (cagw_statuses, admin_statuses):
        total = sum(statuses.values())
        assert total > 100, statuses
        assert statuses[401] + statuses[403] < total / 4, statuses
        assert sum(n for s, n in statuses.items() if s < 300) > total / 10, statuses
