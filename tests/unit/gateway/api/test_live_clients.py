"""What a new user does, with real clients over real TLS: curl enrolls through /cagw/v1
with a PKCS#12 client credential (`--cert-type P12`), and through /api/v1 with a bearer
token; `openssl verify` chains both certificates to the root."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.support.gateway import LiveGateway
from tests.support.pki import make_csr, openssl_verify
from tests.support.tools import require_tool


async def curl(*args: str) -> tuple[int, dict]:
    proc = await asyncio.create_subprocess_exec(
        "curl",
        "-sS",
        "-w",
        "\n%{http_code}",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    body, _, code = out.decode().rpartition("\n")
    return int(code), json.loads(body) if body.strip() else {}


async def test_curl_enrolls_with_p12_and_with_token(live_gateway: LiveGateway, tmp_path: Path) -> None:
    require_tool("curl")
    require_tool("openssl")
    gw = live_gateway
    ca = ["--cacert", str(gw.root_pem)]
    token = (await gw.services.credentials.create_token("admin", "admin")).secret
    bearer = ["-H", f"Authorization: Bearer {token}"]
    json_h = ["-H", "Content-Type: application/json", "-H", "Accept: application/json"]

    # 1. an admin creates the CA Gateway credential through the native API
    code, created = await curl(
        *ca,
        *bearer,
        *json_h,
        "-d",
        json.dumps({"kind": "client-cert", "name": "cagw-client", "ca": gw.issuing}),
        f"{gw.https}/api/v1/credentials",
    )
    assert code == 201, created
    p12 = tmp_path / "client.p12"
    p12.write_bytes(base64.b64decode(created["p12"]))
    cert_arg = ["--cert-type", "P12", "--cert", f"{p12}:{created['p12_password']}"]

    # 2. enroll through /cagw/v1 with it, as Entrust's shell utility does
    csr = make_csr(cn="curl.example", dns=["curl.example"])
    request = {
        "profileId": "privatessl-tls-server",
        "requiredFormat": {"format": "X509"},
        "csr": base64.b64encode(csr).decode(),
        "includeCa": True,
    }
    code, enrolled = await curl(
        *ca,
        *cert_arg,
        *json_h,
        "-d",
        json.dumps(request),
        f"{gw.https}/cagw/v1/certificate-authorities/{gw.issuing}/enrollments",
    )
    assert code == 200, enrolled
    cagw_cert = base64.b64decode(enrolled["enrollment"]["body"])
    record = await gw.services.store.certificates.get(enrolled["enrollment"]["serialNumber"])
    assert (
        record is not None
        and record.requester["protocol"] == "cagw"
        and record.requester["principal"] == "cagw-client"
    )

    # 3. enroll through /api/v1 with the token
    code, issued = await curl(
        *ca,
        *bearer,
        *json_h,
        "-d",
        json.dumps(
            {
                "ca": gw.issuing,
                "profile": "privatessl-tls-client",
                "csr": base64.b64encode(make_csr(cn="token.example")).decode(),
            }
        ),
        f"{gw.https}/api/v1/certificates",
    )
    assert code == 201, issued
    api_cert = x509.load_pem_x509_certificate(issued["certificate_pem"].encode()).public_bytes(
        serialization.Encoding.DER
    )

    root = await gw.services.authority.get(gw.root)
    issuing = await gw.services.authority.get(gw.issuing)
    openssl_verify(tmp_path, root.der, [issuing.der], [cagw_cert, api_cert])

    # no client certificate, or a revoked one: 401 in the CA Gateway's error format
    code, body = await curl(*ca, f"{gw.https}/cagw/v1/certificate-authorities")
    assert code == 401 and body["type"] == "ErrorResponse"
    code, body = await curl(*ca, *cert_arg, f"{gw.https}/cagw/v1/certificate-authorities")
    assert code == 200 and {c["id"] for c in body["caList"]} == {gw.root, gw.issuing}
    code, body = await curl(
        *ca, *bearer, "-X", "DELETE", f"{gw.https}/api/v1/credentials/{created['credential']['id']}"
    )
    assert code == 200
    code, body = await curl(*ca, *cert_arg, f"{gw.https}/cagw/v1/certificate-authorities")
    assert code == 401, "revoking the credential through the API locks its certificate out at once"
