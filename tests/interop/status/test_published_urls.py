"""The URLs issued certificates carry lead relying parties to working endpoints (RFC 5280
4.2.1.13 CRL distribution points, 4.2.2.1 authority information access): openssl follows
the CDP itself (`verify -crl_download`), asks the OCSP URL the certificate names, and the
caIssuers URL gives the issuing CA's certificate. The gateway's public base URL is its
real loopback address here, so nothing is rewritten between certificate and request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtensionOID

from ca_core.keys.file import FileKeyStore
from ca_core.model import IssuanceRequest, IssuedCertificate, Requester, RevocationReason
from ca_core.services import Services, open_services
from ca_core.status.revocation import StatusChange
from gateway.app import create_app
from gateway.config import Config
from tests.support.gateway import free_port
from tests.support.hierarchy import make_hierarchy
from tests.support.pki import make_csr, write_pem
from tests.support.tools import require_tool

pytestmark = pytest.mark.interop


@dataclass
class Published:
    services: Services
    base: str
    dir: Path
    root: Path
    issuing: Path
    chain: Path


async def run(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


@pytest.fixture
async def published(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Published]:
    require_tool("openssl")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    services = await open_services(sqlite_url, FileKeyStore(tmp_path / "keys", b"test-passphrase"), base)
    runner = None
    try:
        root_id, issuing_id = await make_hierarchy(services)
        app = create_app(Config(data_dir=tmp_path), services=services, frontends={})
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        work = tmp_path / "pki"
        work.mkdir()
        root = (await services.authority.get(root_id)).der
        issuing = (await services.authority.get(issuing_id)).der
        yield Published(
            services,
            base,
            work,
            write_pem(work / "root.pem", [root]),
            write_pem(work / "issuing.pem", [issuing]),
            write_pem(work / "chain.pem", [root, issuing]),
        )
    finally:
        if runner is not None:
            await runner.cleanup()
        await services.close()


async def issue_leaf(p: Published, name: str) -> tuple[IssuedCertificate, Path]:
    issued = await p.services.issuance.issue(
        IssuanceRequest(
            ca="issuing", profile="est-digital-signature", requester=Requester("t"), csr=make_csr()
        )
    )
    return issued, write_pem(p.dir / f"{name}.pem", [issued.der])


def uris(cert: x509.Certificate) -> tuple[list[str], list[str], list[str]]:
    """(CRL distribution points, OCSP URLs, caIssuers URLs) the certificate names."""
    cdp = cert.extensions.get_extension_for_oid(ExtensionOID.CRL_DISTRIBUTION_POINTS).value
    aia = cert.extensions.get_extension_for_oid(ExtensionOID.AUTHORITY_INFORMATION_ACCESS).value
    crls = [n.value for point in cdp for n in point.full_name or ()]
    ocsp = [d.access_location.value for d in aia if d.access_method == AuthorityInformationAccessOID.OCSP]
    issuers = [
        d.access_location.value for d in aia if d.access_method == AuthorityInformationAccessOID.CA_ISSUERS
    ]
    return crls, ocsp, issuers


async def test_openssl_downloads_the_crls_the_chain_names(published: Published) -> None:
    p = published
    issued, leaf = await issue_leaf(p, "leaf")
    crls, _, _ = uris(issued.certificate)
    assert crls == [f"{p.base}/crl/issuing.crl"]
    root_crls, _, _ = uris(x509.load_pem_x509_certificate(p.issuing.read_bytes()))
    assert root_crls == [f"{p.base}/crl/root.crl"]

    async def verify(*checks: str) -> tuple[int, str]:
        return await run(
            "openssl", "verify", *checks, "-crl_download",
            "-CAfile", str(p.root), "-untrusted", str(p.issuing), str(leaf),
        )  # fmt: skip

    code, out = await verify("-crl_check")
    assert code == 0 and f"{leaf}: OK" in out, out
    # The whole chain: the root's CRL, fetched from the URL in the issuing CA's CDP, covers
    # the issuing CA and the root itself (a trust anchor names no CDP, so openssl gets that
    # one as a file, as a relying party would configure it).
    async with aiohttp.ClientSession() as http, http.get(root_crls[0]) as response:
        assert response.status == 200 and response.content_type == "application/pkix-crl"
        root_crl = x509.load_der_x509_crl(await response.read())
    root_crl_pem = p.dir / "root-crl.pem"
    root_crl_pem.write_bytes(root_crl.public_bytes(serialization.Encoding.PEM))
    code, out = await verify("-crl_check_all", "-CRLfile", str(root_crl_pem))
    assert code == 0 and f"{leaf}: OK" in out, out

    await p.services.revocation.revoke(
        StatusChange(issued.serial_hex, "test", RevocationReason.KEY_COMPROMISE, publish_now=True)
    )
    code, out = await verify("-crl_check")
    assert code != 0 and "certificate revoked" in out, out


async def test_openssl_asks_the_ocsp_url_the_certificate_names(published: Published) -> None:
    p = published
    good, good_pem = await issue_leaf(p, "good")
    revoked, revoked_pem = await issue_leaf(p, "revoked")
    await p.services.revocation.revoke(StatusChange(revoked.serial_hex, "test", RevocationReason.SUPERSEDED))
    _, ocsp_urls, _ = uris(good.certificate)
    assert ocsp_urls == [f"{p.base}/ocsp/issuing"]
    code, named = await run("openssl", "x509", "-noout", "-ocsp_uri", "-in", str(good_pem))
    assert code == 0 and named.strip() == ocsp_urls[0]
    code, out = await run(
        "openssl", "ocsp", "-issuer", str(p.issuing), "-cert", str(good_pem), "-cert", str(revoked_pem),
        "-url", named.strip(), "-CAfile", str(p.chain),
    )  # fmt: skip
    assert code == 0 and "Response verify OK" in out, out
    assert f"{good_pem}: good" in out and f"{revoked_pem}: revoked" in out, out
    assert "Reason: superseded" in out, out


async def test_ca_issuers_url_gives_the_issuing_ca_certificate(published: Published) -> None:
    p = published
    issued, _ = await issue_leaf(p, "leaf")
    _, _, issuers = uris(issued.certificate)
    assert issuers == [f"{p.base}/ca/issuing.crt"]
    async with aiohttp.ClientSession() as http, http.get(issuers[0]) as response:
        assert response.status == 200
        body = await response.read()
    issuing = (await p.services.authority.get("issuing")).der
    assert body == issuing  # DER, as RFC 5280 4.2.2.1 asks for a single certificate
    # and the issuing CA's own AIA leads to the root's certificate and OCSP responder
    _, ocsp_urls, root_issuers = uris(x509.load_der_x509_certificate(issuing))
    assert ocsp_urls == [f"{p.base}/ocsp/root"] and root_issuers == [f"{p.base}/ca/root.crt"]
