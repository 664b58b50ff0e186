"""Authentication and authorisation of both APIs: 401 without (or with a bad) credential,
403 for a role or CA scope that does not cover the call, and 403s written to the audit log."""

from __future__ import annotations

import pytest

from tests.unit.gateway.api.conftest import Api

# (method, path, role that may, role that may not)
MATRIX = [
    ("GET", "/api/v1/cas", "auditor", None),
    ("POST", "/api/v1/cas", "admin", "officer"),
    ("POST", "/api/v1/certificates", "officer", "auditor"),
    ("GET", "/api/v1/audit", "auditor", "officer"),
    ("GET", "/api/v1/credentials", "auditor", "officer"),
    ("POST", "/api/v1/credentials", "admin", "auditor"),
    ("PUT", "/api/v1/cas/issuing/bindings/echo", "admin", "officer"),
    ("POST", "/api/v1/approvals/x/approve", "officer", "auditor"),
    ("POST", "/cagw/v1/certificate-authorities/issuing/enrollments", "officer", "auditor"),
    ("POST", "/cagw/v1/certificate-authorities/issuing/certificates/ab/actions", "officer", "auditor"),
]


@pytest.mark.parametrize(("method", "path", "allowed", "refused"), MATRIX)
async def test_roles(sqlite_api: Api, method: str, path: str, allowed: str, refused: str | None) -> None:
    api = sqlite_api
    status, body = await api.call(method, path, role=None, json={})
    assert status == 401, body
    status, _ = await api.call(method, path, role=allowed, json={})
    assert status not in (401, 403), f"{allowed} may {method} {path}"
    if refused is not None:
        status, body = await api.call(method, path, role=refused, json={})
        assert status == 403, body
        error = body["error"]
        assert error["code"] == "forbidden" and refused in error["message"]


async def test_unauthenticated_answers_are_native_and_say_how(sqlite_api: Api) -> None:
    api = sqlite_api
    async with api.client.get("/api/v1/whoami") as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        body = await response.json()
        assert body["error"]["code"] == "unauthorized" and body["request_id"]
    async with api.client.get("/cagw/v1/certificate-authorities") as response:
        body = await response.json()
        assert response.status == 401 and body["type"] == "ErrorResponse"
    for header in ("Bearer ceg_nope_nope", "Bearer garbage", "Basic dXNlcjpwdw==", "Bearer "):
        async with api.client.get("/api/v1/whoami", headers={"Authorization": header}) as response:
            assert response.status == 401, header
    # a Basic (protocol) credential is not an API credential, even with the right secret
    basic = await api.services.credentials.create_basic("dev", {"ca": "issuing"}, "pw")
    async with api.client.get(
        "/api/v1/whoami", headers={"Authorization": f"Bearer ceg_{basic.credential.id}_pw"}
    ) as response:
        assert response.status == 401


async def test_scope_limits_a_credential_to_its_cas(sqlite_api: Api) -> None:
    api = sqlite_api
    status, body = await api.call(
        "POST", "/cagw/v1/certificate-authorities/issuing/enrollments", "scoped", {"profileId": "x"}
    )
    assert status == 403 and "issuing" in body["error"]["message"]
    status, body = await api.call("GET", "/api/v1/cas/issuing", "scoped")
    assert status == 403
    status, listing = await api.call("GET", "/api/v1/cas", "scoped")
    assert status == 200 and listing["items"] == []
    status, listing = await api.call("GET", "/cagw/v1/certificate-authorities", "scoped")
    assert status == 200 and listing["caList"] == []
    # an issuing-CA credential reads its root too (to fetch the chain), but acts on it not
    issuing_only = (
        await api.services.credentials.create_token("io", "officer", scope={"ca": "issuing"})
    ).secret
    headers = {"Authorization": f"Bearer {issuing_only}"}
    async with api.client.get("/cagw/v1/certificate-authorities/root", headers=headers) as response:
        assert response.status == 200
    async with api.client.get("/cagw/v1/certificate-authorities", headers=headers) as response:
        assert {c["id"] for c in (await response.json())["caList"]} == {"root", "issuing"}
    async with api.client.post(
        "/cagw/v1/certificate-authorities/root/enrollments", json={"profileId": "x"}, headers=headers
    ) as response:
        assert response.status == 403
    async with api.client.post("/api/v1/cas", json={"kind": "root", "id": "x"}, headers=headers) as response:
        assert response.status == 403


async def test_refusals_are_audited(sqlite_api: Api) -> None:
    api = sqlite_api
    await api.call("DELETE", "/api/v1/cas/issuing", "officer")
    entries = await api.services.store.audit.entries(actions=["api.denied"], limit=10)
    assert len(entries) == 1
    entry = entries[0]
    assert entry.actor == "api:test-officer" and entry.ca_id == "issuing"
    assert entry.detail["method"] == "DELETE" and "manage" in entry.detail["reason"]
    assert (await api.services.authority.get("issuing")).state.value == "active"
