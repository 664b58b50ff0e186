"""The status routes over HTTP (aiohttp test client): content types, caching headers,
conditional GET, GET and POST OCSP, and refusals as OCSP statuses."""

from __future__ import annotations

import base64
import urllib.parse
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from ca_core.model import IssuanceRequest, Requester
from ca_core.services import Services
from ca_core.status.revocation import StatusChange
from gateway.app import create_app
from gateway.config import Config
from gateway.status_routes import decode_get_request
from tests.support.pki import make_csr


@pytest.fixture
async def client(
    aiohttp_client, services: Services, hierarchy: tuple[str, str], tmp_path: Path
) -> TestClient:  # type: ignore[no-untyped-def]
    return await aiohttp_client(create_app(Config(data_dir=tmp_path), services=services, frontends={}))


async def ocsp_request(services: Services, nonce: bytes | None = None) -> tuple[bytes, int]:
    issued = await services.issuance.issue(
        IssuanceRequest(
            ca="issuing", profile="est-digital-signature", requester=Requester("t"), csr=make_csr()
        )
    )
    ca = await services.authority.get("issuing")
    assert ca.certificate is not None
    builder = ocsp.OCSPRequestBuilder().add_certificate(issued.certificate, ca.certificate, hashes.SHA1())
    if nonce:
        builder = builder.add_extension(x509.OCSPNonce(nonce), False)
    return builder.build().public_bytes(serialization.Encoding.DER), issued.serial


async def test_crl_is_der_with_caching_headers_and_conditional_get(
    client: TestClient, services: Services
) -> None:
    response = await client.get("/crl/issuing.crl")
    assert response.status == 200 and response.content_type == "application/pkix-crl"
    crl = x509.load_der_x509_crl(await response.read())
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 1
    etag = response.headers["ETag"]
    assert etag == '"issuing-1"' and "max-age=" in response.headers["Cache-Control"]
    assert response.headers["Last-Modified"] and response.headers["Expires"]
    again = await client.get("/crl/issuing.crl", headers={"If-None-Match": etag})
    assert again.status == 304
    await services.crls.publish("issuing")
    services.crls.policy = type(services.crls.policy)(serve_check_seconds=0)
    newer = await client.get("/crl/issuing.crl", headers={"If-None-Match": etag})
    assert newer.status == 200 and newer.headers["ETag"] == '"issuing-2"'


@pytest.mark.parametrize("path", ["/crl/nope.crl", "/crl/issuing.pem", "/crl/issuing"])
async def test_crl_not_found(client: TestClient, path: str) -> None:
    assert (await client.get(path)).status == 404


async def test_ocsp_post_and_get_give_the_same_cacheable_response(
    client: TestClient, services: Services
) -> None:
    data, serial = await ocsp_request(services)
    post = await client.post("/ocsp/issuing", data=data, headers={"Content-Type": "application/ocsp-request"})
    assert post.status == 200 and post.content_type == "application/ocsp-response"
    body = await post.read()
    assert ocsp.load_der_ocsp_response(body).serial_number == serial
    cache_control = post.headers["Cache-Control"]
    assert (
        "public" in cache_control and "must-revalidate" in cache_control and "max-age=3600" in cache_control
    )
    encoded = urllib.parse.quote(base64.b64encode(data).decode(), safe="")
    get = await client.get(f"/ocsp/issuing/{encoded}")
    assert get.status == 200 and await get.read() == body
    assert get.headers["ETag"] == post.headers["ETag"]
    assert get.headers["Last-Modified"] and get.headers["Expires"]


async def test_ocsp_with_nonce_is_not_cacheable(client: TestClient, services: Services) -> None:
    data, _ = await ocsp_request(services, nonce=b"x" * 16)
    response = await client.post("/ocsp/issuing", data=data)
    assert response.headers["Cache-Control"] == "no-store"
    assert (
        ocsp.load_der_ocsp_response(await response.read()).response_status
        is ocsp.OCSPResponseStatus.SUCCESSFUL
    )


async def test_revocation_shows_over_http_at_once(client: TestClient, services: Services) -> None:
    data, serial = await ocsp_request(services)
    first = ocsp.load_der_ocsp_response(await (await client.post("/ocsp/issuing", data=data)).read())
    assert first.certificate_status is ocsp.OCSPCertStatus.GOOD
    await services.revocation.revoke(StatusChange(format(serial, "x"), "o"))
    second = ocsp.load_der_ocsp_response(await (await client.post("/ocsp/issuing", data=data)).read())
    assert second.certificate_status is ocsp.OCSPCertStatus.REVOKED


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/ocsp/issuing/not-base64!!", None, 1),
        ("GET", "/ocsp/issuing/", None, 1),
        ("GET", "/ocsp/issuing", None, 1),
        ("GET", "/ocsp/issuing/" + base64.b64encode(b"\x30\x03\x02\x01").decode(), None, 1),
        ("POST", "/ocsp/issuing", b"\x30\x80garbage", 1),
        ("POST", "/ocsp/issuing", b"\x30" * 70_000, 1),
        ("POST", "/ocsp/nope", b"", 1),
    ],
    ids=[
        "bad-base64",
        "empty-get",
        "no-request",
        "truncated-get",
        "garbage-post",
        "oversized-post",
        "empty-post",
    ],
)
async def test_ocsp_refusals_are_ocsp_statuses(
    client: TestClient, method: str, path: str, body: bytes | None, status: int
) -> None:
    response = await client.request(method, path, data=body)
    assert response.status == 200 and response.content_type == "application/ocsp-response"
    assert response.headers["Cache-Control"] == "no-store"
    assert ocsp.load_der_ocsp_response(await response.read()).response_status.value == status


async def test_ocsp_unknown_ca_is_unauthorized(client: TestClient, services: Services) -> None:
    data, _ = await ocsp_request(services)
    response = await client.post("/ocsp/nope", data=data)
    assert (
        ocsp.load_der_ocsp_response(await response.read()).response_status
        is ocsp.OCSPResponseStatus.UNAUTHORIZED
    )


@pytest.mark.parametrize(
    "tail",
    ["%2B%2F%2B%2F%2Bw%3D%3D", "+/+/+w==", "-_-_-w", "+/+/+w%3D%3D", "+%2F+/+w"],
    ids=["percent-encoded", "raw", "url-safe-unpadded", "mixed", "unpadded"],
)
def test_get_request_decoding_keeps_base64_characters(tail: str) -> None:
    assert decode_get_request(f"/ocsp/issuing/{tail}", "issuing") == b"\xfb\xff\xbf\xfb"


async def test_a_responder_failure_is_an_ocsp_internal_error(
    client: TestClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, _ = await ocsp_request(services)

    async def broken(ca_id: str, body: bytes) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(services.ocsp, "respond", broken)
    response = await client.post("/ocsp/issuing", data=data)
    assert response.status == 200
    assert (
        ocsp.load_der_ocsp_response(await response.read()).response_status
        is ocsp.OCSPResponseStatus.INTERNAL_ERROR
    )
