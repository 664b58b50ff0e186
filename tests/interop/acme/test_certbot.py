"""certbot (Debian's, unmodified) against the ACME front-end: standalone http-01, then revoke.

certbot trusts the gateway's HTTPS listener through REQUESTS_CA_BUNDLE; its standalone
server listens on the binding's http01_port. Debian's certbot 2.1.0 reports some ACME
errors as an AttributeError; on failure the assertion shows its log, where the problem
document is.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ca_core.model import CertStatus, RevocationReason
from tests.interop.acme.support import AcmeSetup, chain_ders
from tests.support.pki import openssl_verify
from tests.support.tools import require_tool


async def certbot(setup: AcmeSetup, work: Path, *args: str) -> str:
    require_tool("certbot")
    dirs = {name: work / name for name in ("config", "work", "logs")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "REQUESTS_CA_BUNDLE": str(setup.root_pem)}
    proc = await asyncio.create_subprocess_exec(
        "certbot",
        *args,
        "--non-interactive",
        "--server",
        setup.directory,
        "--config-dir",
        str(dirs["config"]),
        "--work-dir",
        str(dirs["work"]),
        "--logs-dir",
        str(dirs["logs"]),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=180)
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        log = dirs["logs"] / "letsencrypt.log"
        tail = log.read_text()[-6000:] if log.exists() else "(no log)"
        raise AssertionError(f"certbot {args[0]} failed ({proc.returncode}):\n{text}\n--- log ---\n{tail}")
    return text


async def test_certbot_standalone_http01_then_revoke(acme: AcmeSetup, tmp_path: Path) -> None:
    domain = "certbot.example.test"
    await certbot(
        acme,
        tmp_path,
        "certonly",
        "--standalone",
        "--preferred-challenges",
        "http",
        "--http-01-port",
        str(acme.http01_port),
        "--http-01-address",
        "127.0.0.1",
        "--agree-tos",
        "--no-eff-email",
        "-m",
        "ops@example.com",
        "-d",
        domain,
    )
    live = tmp_path / "config" / "live" / domain
    ders = chain_ders((live / "fullchain.pem").read_text())
    leaf = x509.load_der_x509_certificate(ders[0])
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [domain]
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]  # privatessl-tls-server, the default
    root_der = x509.load_pem_x509_certificate(acme.root_pem.read_bytes()).public_bytes(
        serialization.Encoding.DER
    )
    openssl_verify(tmp_path, root_der, ders[1:], ders[:1])

    await certbot(
        acme,
        tmp_path,
        "revoke",
        "--cert-path",
        str(live / "cert.pem"),
        "--reason",
        "keycompromise",
        "--no-delete-after-revoke",
    )
    record = await acme.live.services.store.certificates.get(format(leaf.serial_number, "x"))
    assert record is not None
    assert record.status is CertStatus.REVOKED
    assert record.revocation_reason is RevocationReason.KEY_COMPROMISE
