"""CRLs and OCSP against the real tools relying parties use: openssl (crl, verify -crl_check,
ocsp) and curl, talking to a live gateway over HTTP."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from ca_core.keys.file import generate_private_key
from ca_core.model import IssuanceRequest, IssuedCertificate, KeyAlgorithm, Requester, RevocationReason
from ca_core.status.revocation import StatusChange
from tests.support.gateway import LiveGateway
from tests.support.pki import make_csr, write_pem
from tests.support.tools import require_tool

pytestmark = pytest.mark.interop


async def run(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


@dataclass
class Pki:
    dir: Path
    root: Path
    issuing: Path
    chain: Path  # root + issuing: what a relying party trusts for the delegated responder
    leaves: list[Path]
    issued: list[IssuedCertificate]


@pytest.fixture
async def pki(live_gateway: LiveGateway, tmp_path: Path) -> Pki:
    require_tool("openssl")
    require_tool("curl")
    s = live_gateway.services
    issued = [
        await s.issuance.issue(
            IssuanceRequest(
                ca="issuing", profile="est-digital-signature", requester=Requester("t"), csr=make_csr()
            )
        )
        for _ in range(3)
    ]
    issuing = await s.authority.get(live_gateway.issuing)
    root = await s.authority.get(live_gateway.root)
    work = tmp_path / "pki"
    work.mkdir()
    leaves = [write_pem(work / f"leaf{i}.pem", [c.der]) for i, c in enumerate(issued)]
    return Pki(
        work,
        write_pem(work / "root.pem", [root.der]),
        write_pem(work / "issuing.pem", [issuing.der]),
        write_pem(work / "chain.pem", [root.der, issuing.der]),
        leaves,
        issued,
    )


async def fetch_crl(live: LiveGateway, pki: Pki, ca: str) -> Path:
    der = pki.dir / f"{ca}.crl"
    code, out = await run("curl", "-sS", "--fail", "-o", str(der), f"{live.http}/crl/{ca}.crl")
    assert code == 0, out
    pem = pki.dir / f"{ca}.crl.pem"
    code, out = await run("openssl", "crl", "-inform", "DER", "-in", str(der), "-out", str(pem))
    assert code == 0, out
    return pem


async def test_openssl_parses_and_verifies_every_crl(live_gateway: LiveGateway, pki: Pki) -> None:
    s = live_gateway.services
    compromised = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    await s.revocation.revoke(
        StatusChange(pki.issued[0].serial_hex, "o", RevocationReason.KEY_COMPROMISE, compromised)
    )
    await s.revocation.hold(StatusChange(pki.issued[1].serial_hex, "o", publish_now=True))
    for ca, issuer in (("issuing", pki.chain), ("root", pki.root)):
        der = pki.dir / f"{ca}.crl"
        code, out = await run("curl", "-sS", "--fail", "-o", str(der), f"{live_gateway.http}/crl/{ca}.crl")
        assert code == 0, out
        code, text = await run(
            "openssl", "crl", "-inform", "DER", "-in", str(der), "-noout", "-text", "-CAfile", str(issuer)
        )
        assert code == 0, text
        assert "verify OK" in text and "CRL Number" in text and "Authority Key Identifier" in text
        assert "2.5.29.60" in text  # expiredCertsOnCRL
    _, text = await run(
        "openssl", "crl", "-inform", "DER", "-in", str(pki.dir / "issuing.crl"), "-noout", "-text"
    )
    assert pki.issued[0].serial_hex.upper() in text and "Key Compromise" in text and "Invalidity Date" in text
    assert pki.issued[1].serial_hex.upper() in text and "Certificate Hold" in text
    assert pki.issued[2].serial_hex.upper() not in text


async def test_crl_check_fails_when_held_and_passes_after_unhold(live_gateway: LiveGateway, pki: Pki) -> None:
    s = live_gateway.services
    leaf = pki.leaves[0]

    async def verify() -> tuple[int, str]:
        crl = await fetch_crl(live_gateway, pki, "issuing")
        return await run(
            "openssl", "verify", "-crl_check", "-CAfile", str(pki.root), "-untrusted", str(pki.issuing),
            "-CRLfile", str(crl), str(leaf),
        )  # fmt: skip

    code, out = await verify()
    assert code == 0, out
    await s.revocation.hold(StatusChange(pki.issued[0].serial_hex, "o", publish_now=True))
    code, out = await verify()
    assert code != 0 and "certificate revoked" in out
    await s.revocation.unhold(StatusChange(pki.issued[0].serial_hex, "o", publish_now=True))
    code, out = await verify()
    assert code == 0 and f"{leaf}: OK" in out


async def ocsp(live: LiveGateway, pki: Pki, *extra: str, ca: str = "issuing") -> tuple[int, str]:
    certs = [arg for leaf in pki.leaves for arg in ("-cert", str(leaf))]
    return await run(
        "openssl", "ocsp", "-issuer", str(pki.issuing), *certs, "-url", f"{live.http}/ocsp/{ca}",
        "-CAfile", str(pki.chain), "-resp_text", *extra,
    )  # fmt: skip


async def test_openssl_ocsp_several_certificates_with_and_without_nonce(
    live_gateway: LiveGateway, pki: Pki
) -> None:
    s = live_gateway.services
    await s.revocation.revoke(StatusChange(pki.issued[1].serial_hex, "o", RevocationReason.SUPERSEDED))
    await s.revocation.hold(StatusChange(pki.issued[2].serial_hex, "o"))
    for extra, nonce in (((), True), (("-no_nonce",), False)):
        code, out = await ocsp(live_gateway, pki, *extra)
        assert code == 0, out
        assert "Response verify OK" in out and "WARNING" not in out
        assert f"{pki.leaves[0]}: good" in out
        assert f"{pki.leaves[1]}: revoked" in out and "Reason: superseded" in out
        assert f"{pki.leaves[2]}: revoked" in out and "Reason: certificateHold" in out
        assert ("OCSP Nonce" in out) is nonce
        assert out.count("OCSP Archive Cutoff") == 3
        assert "OCSP Signing" in out and "OCSP No Check" in out  # the delegated responder's certificate


async def test_signed_requests_accepted_and_then_required(live_gateway: LiveGateway, pki: Pki) -> None:
    s = live_gateway.services
    key = generate_private_key(KeyAlgorithm.EC_P256)
    client = await s.issuance.issue(
        IssuanceRequest(
            ca="issuing", profile="privatessl-tls-client", requester=Requester("t"), csr=make_csr(key)
        )
    )
    signer = write_pem(pki.dir / "client.pem", [client.der])
    signkey = pki.dir / "client.key"
    signkey.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    signing = ("-signer", str(signer), "-signkey", str(signkey))
    code, out = await ocsp(live_gateway, pki, *signing)
    assert code == 0 and "Response verify OK" in out and f"{pki.leaves[0]}: good" in out, out
    await s.ocsp.configure("issuing", require_signed_requests=True)
    code, out = await ocsp(live_gateway, pki)
    assert "sigrequired" in out.lower(), out
    code, out = await ocsp(live_gateway, pki, *signing, "-no_nonce")
    assert code == 0 and "Response verify OK" in out, out


async def test_root_ocsp_answers_for_the_issuing_ca(live_gateway: LiveGateway, pki: Pki) -> None:
    code, out = await run(
        "openssl", "ocsp", "-issuer", str(pki.root), "-cert", str(pki.issuing),
        "-url", f"{live_gateway.http}/ocsp/root", "-CAfile", str(pki.root),
    )  # fmt: skip
    assert code == 0 and "Response verify OK" in out and f"{pki.issuing}: good" in out, out
    code, out = await ocsp(live_gateway, pki, ca="root")  # leaves are not the root's
    assert "unauthorized" in out.lower(), out


async def test_ocsp_get_with_curl(live_gateway: LiveGateway, pki: Pki) -> None:
    request = pki.dir / "req.der"
    code, out = await run(
        "openssl", "ocsp", "-issuer", str(pki.issuing), "-cert", str(pki.leaves[0]), "-no_nonce", "-reqout", str(request)
    )  # fmt: skip
    assert code == 0, out
    encoded = urllib.parse.quote(base64.b64encode(request.read_bytes()).decode(), safe="")
    response, headers = pki.dir / "resp.der", pki.dir / "headers.txt"
    url = f"{live_gateway.http}/ocsp/issuing/{encoded}"
    code, out = await run("curl", "-sS", "--fail", "-D", str(headers), "-o", str(response), url)
    assert code == 0, out
    head = headers.read_text().lower()
    assert "content-type: application/ocsp-response" in head
    assert "cache-control: max-age=" in head and "public" in head and "must-revalidate" in head
    assert "etag:" in head and "last-modified:" in head and "expires:" in head
    code, out = await run(
        "openssl", "ocsp", "-respin", str(response), "-issuer", str(pki.issuing), "-cert", str(pki.leaves[0]),
        "-CAfile", str(pki.chain),
    )  # fmt: skip
    assert code == 0 and "Response verify OK" in out and f"{pki.leaves[0]}: good" in out, out
    # The same GET again is the same bytes (pre-signed), as RFC 5019 caches expect.
    again = pki.dir / "again.der"
    code, out = await run("curl", "-sS", "--fail", "-o", str(again), url)
    assert code == 0 and again.read_bytes() == response.read_bytes()
