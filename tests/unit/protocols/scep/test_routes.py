"""SCEP over HTTP (RFC 8894 4) on the real gateway: GET and POST PKIOperation, both URL
forms, content types, and HTTP statuses for what cannot be answered with a CertRep."""

from __future__ import annotations

import base64
from urllib.parse import quote

import aiohttp
import pytest

from protocols._shared import cms
from protocols.scep.codec import MessageType, PkiStatus
from tests.support.gateway import LiveGateway
from tests.support.scep_peer import ScepPeer, scep_csr

SECRET = "route-test-secret"


@pytest.fixture
async def gateway(live_gateway: LiveGateway) -> LiveGateway:
    await live_gateway.bindings.put(
        "scep", live_gateway.issuing, {"challenge": "static", "challenge_password": SECRET}
    )
    return live_gateway


async def _ra(session: aiohttp.ClientSession, url: str) -> bytes:
    async with session.get(url, params={"operation": "GetCACert"}) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/x-x509-ca-ra-cert"
        return cms.certificates_of(await resp.read())[-1]


@pytest.mark.parametrize("suffix", ["", "/pkiclient.exe"])
async def test_get_ca_caps_and_post_pki_operation(gateway: LiveGateway, suffix: str) -> None:
    url = f"{gateway.http}/scep/{gateway.issuing}{suffix}"
    async with aiohttp.ClientSession() as session:
        async with session.get(url, params={"operation": "GetCACaps"}) as resp:
            assert resp.status == 200 and resp.content_type == "text/plain"
            assert "POSTPKIOperation" in (await resp.text()).split()
        peer = ScepPeer.new(await _ra(session, url))
        body = peer.request(MessageType.PKCS_REQ, scep_csr(peer.key, challenge=SECRET))
        async with session.post(url, params={"operation": "PKIOperation"}, data=body) as resp:
            assert resp.status == 200 and resp.content_type == "application/x-pki-message"
            assert peer.read(await resp.read()).status is PkiStatus.SUCCESS


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(lambda b: quote(base64.b64encode(b).decode(), safe=""), id="standard-escaped"),
        pytest.param(lambda b: base64.b64encode(b).decode(), id="standard-plus-unescaped"),
        pytest.param(lambda b: base64.urlsafe_b64encode(b).decode(), id="urlsafe-padded"),
        pytest.param(lambda b: base64.urlsafe_b64encode(b).decode().rstrip("="), id="urlsafe-unpadded"),
        pytest.param(lambda b: quote(base64.encodebytes(b).decode(), safe=""), id="wrapped-lines"),
    ],
)
async def test_pki_operation_by_get(gateway: LiveGateway, encode) -> None:  # type: ignore[no-untyped-def]
    """Clients send PKIOperation by GET even when POST is advertised, base64 all ways."""
    url = f"{gateway.http}/scep/{gateway.issuing}"
    async with aiohttp.ClientSession() as session:
        peer = ScepPeer.new(await _ra(session, url))
        message = encode(peer.request(MessageType.PKCS_REQ, scep_csr(peer.key, challenge=SECRET)))
        async with session.get(f"{url}?operation=PKIOperation&message={message}") as resp:
            assert resp.status == 200, await resp.text()
            assert peer.read(await resp.read()).status is PkiStatus.SUCCESS


@pytest.mark.parametrize(
    ("method", "query", "body", "status"),
    [
        pytest.param("POST", "operation=PKIOperation", b"this is not CMS", 400, id="post-not-cms"),
        pytest.param("GET", "operation=PKIOperation&message=%%%", b"", 400, id="get-not-base64"),
        pytest.param("GET", "operation=PKIOperation&message=aGVsbG8=", b"", 400, id="get-not-cms"),
        pytest.param("GET", "operation=Bogus", b"", 400, id="unknown-operation"),
        pytest.param("GET", "", b"", 400, id="no-operation"),
        pytest.param("POST", "operation=GetCACert", b"", 405, id="post-get-operation"),
        pytest.param("GET", "operation=GetNextCACert", b"", 404, id="no-rollover"),
        pytest.param("POST", "operation=PKIOperation", b"\x30" * 300_000, 413, id="too-large"),
    ],
)
async def test_what_cannot_be_a_cert_rep_gets_an_http_status(
    gateway: LiveGateway, method: str, query: str, body: bytes, status: int
) -> None:
    url = f"{gateway.http}/scep/{gateway.issuing}?{query}"
    async with aiohttp.ClientSession() as session, session.request(method, url, data=body) as resp:
        assert resp.status == status
        assert resp.content_type == "text/plain"


async def test_unknown_ca_is_404(gateway: LiveGateway) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{gateway.http}/scep/nope", params={"operation": "GetCACaps"}) as resp,
    ):
        assert resp.status == 404


async def test_one_time_challenges_through_the_admin_api(gateway: LiveGateway) -> None:
    """POST /api/v1/cas/{ca}/bindings/scep/challenges: what `ceg scep challenge` does, for
    an MDM or a portal; the challenge enrols once, then is refused."""
    services = gateway.services
    officer = (await services.credentials.create_token("portal", "officer")).secret
    auditor = (await services.credentials.create_token("reader", "auditor")).secret
    api = f"{gateway.http}/api/v1/cas/{gateway.issuing}/bindings"
    url = f"{gateway.http}/scep/{gateway.issuing}"
    async with aiohttp.ClientSession() as session:

        async def create(token: str, protocol: str = "scep", **body: object) -> tuple[int, dict]:  # type: ignore[type-arg]
            headers = {"Authorization": f"Bearer {token}"}
            async with session.post(f"{api}/{protocol}/challenges", json=body, headers=headers) as resp:
                return resp.status, await resp.json()

        status, body = await create(officer)
        assert status == 400 and "not 'dynamic'" in body["error"]["message"], "static binding"
        await gateway.bindings.put("scep", gateway.issuing, {"challenge": "dynamic"})
        status, issued = await create(officer, subject="CN=api.example", ttl_seconds=600)
        assert status == 201, issued
        assert issued["subject"] == "CN=api.example" and issued["protocol"] == "scep"
        assert len(issued["challenge"]) == 32 and issued["expires_at"].endswith("Z")
        assert (await create(auditor))[0] == 403
        assert (await create(officer, "est"))[0] == 404
        assert (await create(officer, ttl_seconds=5))[0] == 400

        peer = ScepPeer.new(await _ra(session, url))
        replies = []
        for tx in ("tx-api-1", "tx-api-2"):
            body_ = peer.request(
                MessageType.PKCS_REQ, scep_csr(peer.key, "api.example", issued["challenge"]), tx
            )
            async with session.post(url, params={"operation": "PKIOperation"}, data=body_) as resp:
                replies.append(peer.read(await resp.read()))
    assert replies[0].status is PkiStatus.SUCCESS
    assert replies[1].status is PkiStatus.FAILURE, "a one-time challenge enrols once"
    audit = await services.store.audit.entries(ca=gateway.issuing)
    created = [e for e in audit if e.action == "scep.challenge_created"]
    assert [(e.actor, e.detail["id"]) for e in created] == [("api:portal", issued["id"])]
