"""The HTTP transfer (RFC 6712 / RFC 9811) through the real gateway app: both prefixes,
operation labels, content type, size limit, unknown CA; the front-end's settings and
demo credentials."""

from __future__ import annotations

import aiohttp
import pytest

from ca_core.errors import BadRequest
from ca_core.keys.file import generate_private_key
from ca_core.model import KeyAlgorithm
from protocols._shared.web import Frontend
from protocols.cmp import codec, frontend
from tests.support import cmp_client
from tests.support.cmp_client import MacCredential, Session
from tests.support.gateway import LiveGateway

CMP = "application/pkixcmp"


@pytest.fixture
async def gateway(live_gateway: LiveGateway) -> LiveGateway:
    await live_gateway.bindings.put("cmp", live_gateway.issuing)
    await live_gateway.services.credentials.create_shared_secret(
        "route-ref", {"protocol": "cmp", "ca": live_gateway.issuing}, secret="route-secret"
    )
    return live_gateway


async def post(url: str, data: bytes, content_type: str = CMP) -> tuple[int, str, bytes]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=data, headers={"Content-Type": content_type}) as response,
    ):
        return response.status, response.content_type, await response.read()


def ir() -> codec.Body:
    key = generate_private_key(KeyAlgorithm.EC_P256)
    return codec.CertReqBody("ir", (cmp_client.cert_request(key, "CN=route.example"),))


async def session_for(url: str) -> Session:
    async def send(data: bytes) -> bytes:
        status, content_type, body = await post(url, data)
        assert status == 200 and content_type == CMP
        return body

    return Session(MacCredential("route-ref", b"route-secret"), send)


@pytest.mark.parametrize(
    "path", [".well-known/cmp/p/issuing", "cmp/issuing", ".well-known/cmp/p/issuing/initialization"]
)
async def test_enrollment_on_every_path(gateway: LiveGateway, path: str) -> None:
    session = await session_for(f"{gateway.http}/{path}")
    answer = await session.exchange(ir())
    cmp_client.issued_certificate(answer)
    done = await session.exchange(cmp_client.cert_conf(cmp_client.issued_certificate(answer)))
    assert isinstance(done.body, codec.PkiConfBody)


async def test_https_listener(gateway: LiveGateway) -> None:
    import ssl

    context = ssl.create_default_context(cafile=str(gateway.root_pem))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as http:

        async def send(data: bytes) -> bytes:
            url = f"{gateway.https}/.well-known/cmp/p/issuing"
            async with http.post(url, data=data, headers={"Content-Type": CMP}) as response:
                return await response.read()

        answer = await Session(MacCredential("route-ref", b"route-secret"), send).exchange(ir())
        cmp_client.issued_certificate(answer)


async def test_refusals_before_the_message_is_read(gateway: LiveGateway) -> None:
    base = f"{gateway.http}/.well-known/cmp/p"
    data = (await session_for(base)).encode(ir())
    status, content_type, body = await post(f"{base}/issuing", data, "application/octet-stream")
    assert status == 415 and content_type == CMP
    assert cmp_client.fail_info(codec.decode_message(body)) == {"badDataFormat"}
    status, _, body = await post(f"{base}/issuing/not-an-operation", data)
    assert status == 404 and cmp_client.fail_info(codec.decode_message(body)) == {"badRequest"}
    status, _, body = await post(f"{base}/no-such-ca", data)
    assert status == 404 and cmp_client.fail_info(codec.decode_message(body)) == {"wrongAuthority"}
    status, _, _ = await post(f"{base}/issuing", b"\x30" * (codec.MAX_MESSAGE_BYTES + 1))
    assert status == 413
    async with aiohttp.ClientSession() as http, http.get(f"{base}/issuing") as response:
        assert response.status == 405


async def test_settings_are_checked_when_a_binding_is_saved(gateway: LiveGateway) -> None:
    assert isinstance(frontend, Frontend)
    with pytest.raises(BadRequest, match="confirm_wait_seconds"):
        await gateway.bindings.put("cmp", gateway.issuing, settings={"confirm_wait_seconds": 0})
    with pytest.raises(BadRequest, match="unknown CMP setting"):
        await gateway.bindings.put("cmp", gateway.issuing, settings={"approval": "manual"})
    binding = await gateway.bindings.put(
        "cmp",
        gateway.issuing,
        settings={"manual_approval": True},
        allowed_profiles=["cmp-non-repudiation"],
        default_profile="cmp-non-repudiation",
    )
    assert binding.settings["manual_approval"] is True and binding.default_profile == "cmp-non-repudiation"


async def test_demo_setup_gives_working_credentials(gateway: LiveGateway) -> None:
    binding = await gateway.bindings.resolve("cmp", gateway.issuing)
    assert binding is not None
    demo = await frontend.demo_setup(gateway.services, binding, gateway.http)
    assert demo["url"] == f"{gateway.http}/.well-known/cmp/p/{gateway.issuing}"
    session = await session_for(demo["url"])
    session.credential = MacCredential(demo["reference"], demo["secret"].encode())
    cmp_client.issued_certificate(await session.exchange(ir()))


async def test_crl_status_list_is_answered_with_the_crl_the_gateway_serves(gateway: LiveGateway) -> None:
    """The gateway wires the status service's CRL source (services.crls.latest_der) into
    CMP: genm id-it-crlStatusList gets the same CRL as /crl/{ca}.crl, and the revocation
    published since shows in the next one."""
    from cryptography import x509

    from ca_core.model import RevocationReason
    from ca_core.status.revocation import StatusChange
    from protocols.cmp import oids

    url = f"{gateway.http}/.well-known/cmp/p/issuing"
    crl_url = f"{gateway.http}/crl/issuing.crl"
    status_list = codec.encode_crl_status_list([codec.CrlStatus((crl_url,), (), None)])

    async def crls_by_cmp() -> bytes:
        answer = await (await session_for(url)).exchange(
            cmp_client.genm(oids.OID_IT_CRL_STATUS_LIST, status_list)
        )
        assert isinstance(answer.body, codec.GenBody)
        (item,) = answer.body.items
        assert item.oid == oids.OID_IT_CRLS and item.value is not None
        return item.value

    async with aiohttp.ClientSession() as http, http.get(crl_url) as response:
        served = await response.read()
    assert await crls_by_cmp() == codec.encode_crls([served])

    session = await session_for(url)
    der = cmp_client.issued_certificate(await session.exchange(ir()))
    await session.exchange(cmp_client.cert_conf(der))
    cert = x509.load_der_x509_certificate(der)
    await gateway.services.revocation.revoke(
        StatusChange(
            format(cert.serial_number, "x"), "test", RevocationReason.KEY_COMPROMISE, publish_now=True
        )
    )
    newer = (await gateway.services.crls.latest("issuing")).der
    assert await crls_by_cmp() == codec.encode_crls([newer])
    revoked = x509.load_der_x509_crl(newer).get_revoked_certificate_by_serial_number(cert.serial_number)
    assert revoked is not None
