"""Debian's `scepclient` (micromdm/scep 2.1) against the gateway's SCEP front-end.

What this client does, and so what these tests show works:
- GetCACaps, then GetCACert; it encrypts to *every* certificate GetCACert returns and
  panics on an EC one, so with an EC issuing CA it needs `-ca-fingerprint` naming the
  RA (the demo's `ra_sha256`); with an RSA CA it needs nothing.
- single-DES envelopes and SHA-1 signatures: the binding must allow legacy clients; it
  is answered in DES-EDE3-CBC, never DES.
- PKIOperation by POST once POSTPKIOperation/SCEPStandard is advertised.
- a second run beside an existing client.pem sends a RenewalReq signed with it, with
  the same key, the same CSR (csr.pem beside the key is reused silently: each
  enrolment here gets its own directory) and the same transactionID.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ca_core.audit import Action
from ca_core.model import KeyAlgorithm
from protocols.scep import create_challenge
from tests.support.gateway import LiveGateway
from tests.support.hierarchy import make_hierarchy
from tests.support.pki import openssl_verify
from tests.support.tools import require_tool

pytestmark = pytest.mark.interop
SECRET = "interop-static-secret"


async def scepclient(directory: Path, url: str, *args: str) -> tuple[int, str]:
    exe = require_tool("scepclient")
    directory.mkdir(parents=True, exist_ok=True)
    proc = await asyncio.create_subprocess_exec(
        exe,
        "-private-key",
        str(directory / "key.pem"),
        "-server-url",
        url,
        "-debug",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    return proc.returncode or 0, out.decode(errors="replace")


async def _verify_chain(live: LiveGateway, ca_id: str, leaf_pem: Path, tmp_path: Path) -> x509.Certificate:
    leaf = x509.load_pem_x509_certificate(leaf_pem.read_bytes())
    ca = await live.services.authority.get(ca_id)
    work = tmp_path / f"verify-{leaf.serial_number:x}"
    work.mkdir()
    openssl_verify(work, ca.chain[-1], list(ca.chain[:-1]), [leaf.public_bytes(Encoding.DER)])
    return leaf


@pytest.fixture
async def rsa_gateway(live_gateway: LiveGateway) -> LiveGateway:
    """An RSA issuing CA beside the EC one, with a legacy-friendly static-challenge binding."""
    await make_hierarchy(live_gateway.services, KeyAlgorithm.RSA_2048, "rsa-root", "rsa-issuing")
    await live_gateway.bindings.put(
        "scep",
        "rsa-issuing",
        {"challenge": "static", "challenge_password": SECRET, "allow_legacy_clients": True},
    )
    return live_gateway


async def _refusals(live: LiveGateway) -> list[str]:
    """The gateway's side of a refusal, for assertion messages."""
    entries = await live.services.store.audit.entries(after_seq=0, limit=1000)
    return [str(e.detail.get("reason")) for e in entries if e.action == Action.CERT_REFUSED]


def _url(live: LiveGateway, ca: str) -> str:
    return f"{live.http}/scep/{ca}"


async def test_get_ca_cert_gives_ca_and_ra_to_openssl(rsa_gateway: LiveGateway, tmp_path: Path) -> None:
    curl = require_tool("curl")
    out = tmp_path / "cacert.p7"
    proc = await asyncio.create_subprocess_exec(
        curl, "-sS", "-o", str(out), f"{_url(rsa_gateway, 'rsa-issuing')}?operation=GetCACert"
    )
    assert await proc.wait() == 0
    proc = await asyncio.create_subprocess_exec(
        "openssl", "pkcs7", "-inform", "DER", "-in", str(out), "-print_certs", stdout=asyncio.subprocess.PIPE
    )
    printed = (await proc.communicate())[0].decode()
    assert printed.count("BEGIN CERTIFICATE") == 2
    assert "SCEP RA rsa-issuing" in printed and "Test Issuing rsa-issuing" in printed


async def test_pkcsreq_with_static_challenge(rsa_gateway: LiveGateway, tmp_path: Path) -> None:
    code, out = await scepclient(
        tmp_path / "static", _url(rsa_gateway, "rsa-issuing"), "-challenge", SECRET, "-cn", "static.example"
    )
    assert code == 0, (out, await _refusals(rsa_gateway))
    assert "count=2" in out  # GetCACert gave the client the CA and the RA together
    leaf = await _verify_chain(rsa_gateway, "rsa-issuing", tmp_path / "static" / "client.pem", tmp_path)
    assert leaf.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "static.example"


async def test_pkcsreq_to_an_ec_ca_through_the_ra_fingerprint(
    live_gateway: LiveGateway, tmp_path: Path
) -> None:
    await live_gateway.bindings.put(
        "scep",
        live_gateway.issuing,
        {"challenge": "static", "challenge_password": SECRET, "allow_legacy_clients": True},
    )
    url = _url(live_gateway, live_gateway.issuing)
    from protocols.scep import frontend

    identity = await frontend.responder(live_gateway.services).registration_authority.identity(
        live_gateway.issuing
    )
    fingerprint = hashlib.sha256(identity.current.certificate).hexdigest()
    code, out = await scepclient(tmp_path / "ec", url, "-challenge", SECRET, "-ca-fingerprint", fingerprint)
    assert code == 0, out
    await _verify_chain(live_gateway, live_gateway.issuing, tmp_path / "ec" / "client.pem", tmp_path)


async def test_pkcsreq_with_a_dynamic_challenge_used_once(rsa_gateway: LiveGateway, tmp_path: Path) -> None:
    await rsa_gateway.bindings.put(
        "scep", "rsa-issuing", {"challenge": "dynamic", "allow_legacy_clients": True}
    )
    # scepclient's subject: its -cn plus its defaults for OU, O and C
    subject = "CN=dyn.example,OU=MDM,O=scep-client,C=US"
    issued = await create_challenge(rsa_gateway.services, "rsa-issuing", subject=subject, actor="test")
    url = _url(rsa_gateway, "rsa-issuing")
    code, out = await scepclient(tmp_path / "dyn", url, "-challenge", issued.challenge, "-cn", "dyn.example")
    assert code == 0, (out, await _refusals(rsa_gateway))
    await _verify_chain(rsa_gateway, "rsa-issuing", tmp_path / "dyn" / "client.pem", tmp_path)
    code, out = await scepclient(
        tmp_path / "dyn-again", url, "-challenge", issued.challenge, "-cn", "dyn.example"
    )
    assert code != 0 and "badRequest" in out, out
    assert not (tmp_path / "dyn-again" / "client.pem").exists()


async def test_wrong_challenge_is_refused(rsa_gateway: LiveGateway, tmp_path: Path) -> None:
    code, out = await scepclient(
        tmp_path / "wrong", _url(rsa_gateway, "rsa-issuing"), "-challenge", "not-the-secret"
    )
    assert code != 0 and "failInfo: badRequest" in out, out
    assert not (tmp_path / "wrong" / "client.pem").exists()
    entries = await rsa_gateway.services.store.audit.entries(after_seq=0, limit=1000)
    refusals = [e for e in entries if e.action == Action.CERT_REFUSED and e.ca_id == "rsa-issuing"]
    assert refusals and refusals[-1].detail["reason"] == "wrong challengePassword"


async def test_single_des_is_refused_without_legacy(rsa_gateway: LiveGateway, tmp_path: Path) -> None:
    await rsa_gateway.bindings.put(
        "scep", "rsa-issuing", {"challenge": "static", "challenge_password": SECRET}
    )
    code, out = await scepclient(tmp_path / "des", _url(rsa_gateway, "rsa-issuing"), "-challenge", SECRET)
    assert code != 0 and "failInfo: badAlg" in out, out


async def test_renewal_with_the_existing_certificate(rsa_gateway: LiveGateway, tmp_path: Path) -> None:
    directory = tmp_path / "renew"
    url = _url(rsa_gateway, "rsa-issuing")
    code, out = await scepclient(directory, url, "-challenge", SECRET, "-cn", "renew.example")
    assert code == 0, out
    first = await _verify_chain(rsa_gateway, "rsa-issuing", directory / "client.pem", tmp_path)
    # Run again beside client.pem: scepclient sends a RenewalReq signed with it.
    code, out = await scepclient(directory, url, "-cn", "renew.example")
    assert code == 0, out
    second = await _verify_chain(rsa_gateway, "rsa-issuing", directory / "client.pem", tmp_path)
    assert second.serial_number != first.serial_number
    record = await rsa_gateway.services.store.certificates.get(format(second.serial_number, "x"))
    assert record is not None and record.renewal_of == format(first.serial_number, "x")
