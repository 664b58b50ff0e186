"""lego (Debian's 4.9, unmodified) against the ACME front-end: http-01, tls-alpn-01 and
dns-01 (lego's exec provider writes the TXT record into pebble-challtestsrv, which is the
DNS server the binding validates through), external account binding, and a renewal.
lego 4.9 predates ARI, so renewal information is shown with the `acme` library
(test_acme_library.py). Every certificate ends with `openssl verify`.
"""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.interop.acme.support import AcmeSetup, chain_ders
from tests.support.pki import openssl_verify
from tests.support.tools import require_tool


async def lego(setup: AcmeSetup, path: Path, *args: str, env: dict[str, str] | None = None) -> str:
    require_tool("lego")
    proc = await asyncio.create_subprocess_exec(
        "lego",
        "--server",
        setup.directory,
        "--path",
        str(path),
        "--email",
        "ops@example.com",
        "--accept-tos",
        *(() if "--key-type" in args else ("--key-type", "ec256")),
        *args,
        env={**os.environ, "LEGO_CA_CERTIFICATES": str(setup.root_pem), **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=180)
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        raise AssertionError(f"lego {' '.join(args)} failed ({proc.returncode}):\n{text}")
    return text


def verify_bundle(setup: AcmeSetup, tmp: Path, bundle: Path, domain: str) -> x509.Certificate:
    ders = chain_ders(bundle.read_text())
    leaf = x509.load_der_x509_certificate(ders[0])
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert domain in san.get_values_for_type(x509.DNSName)
    root = x509.load_pem_x509_certificate(setup.root_pem.read_bytes()).public_bytes(
        serialization.Encoding.DER
    )
    openssl_verify(tmp, root, ders[1:], ders[:1])
    return leaf


def exec_hook(tmp: Path, setup: AcmeSetup) -> Path:
    """lego's exec DNS provider: `hook present|cleanup <fqdn> <value>` -> challtestsrv API."""
    hook = tmp / "dns-hook.sh"
    hook.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = present ]; then path=set-txt; else path=clear-txt; fi\n'
        f'exec curl -sf -X POST -d "{{\\"host\\":\\"$2\\",\\"value\\":\\"$3\\"}}" '
        f"{setup.dns.management}/$path\n"
    )
    hook.chmod(hook.stat().st_mode | stat.S_IEXEC)
    return hook


@pytest.mark.parametrize("challenge", ["http-01", "tls-alpn-01", "dns-01"])
async def test_lego_obtains_with_each_challenge(acme: AcmeSetup, tmp_path: Path, challenge: str) -> None:
    domain = f"lego-{challenge}.example.test"
    env: dict[str, str] = {}
    if challenge == "http-01":
        solver = ["--http", "--http.port", f"127.0.0.1:{acme.http01_port}"]
    elif challenge == "tls-alpn-01":
        solver = ["--tls", "--tls.port", f"127.0.0.1:{acme.tls_alpn01_port}"]
    else:
        solver = ["--dns", "exec", "--dns.resolvers", f"127.0.0.1:{acme.dns.dns_port}", "--dns.disable-cp"]
        env = {
            "EXEC_PATH": str(exec_hook(tmp_path, acme)),
            "EXEC_POLLING_INTERVAL": "1",
            "EXEC_PROPAGATION_TIMEOUT": "10",
        }
    await lego(acme, tmp_path / "lego", "--domains", domain, *solver, "run", env=env)
    verify_bundle(acme, tmp_path, tmp_path / "lego" / "certificates" / f"{domain}.crt", domain)


async def test_lego_with_external_account_binding_then_renew(acme_eab: AcmeSetup, tmp_path: Path) -> None:
    acme = acme_eab
    kid, hmac_key = await acme.live.services.credentials.create_eab(
        "lego-test", {"ca": acme.live.issuing, "protocol": "acme"}
    )
    domain = "lego-eab.example.test"
    common = ["--domains", domain, "--http", "--http.port", f"127.0.0.1:{acme.http01_port}"]
    # The directory's meta says EAB is required; lego refuses to go on without one (the
    # server's own refusal is tested with the acme library).
    with pytest.raises(AssertionError, match="requires External Account Binding"):
        await lego(acme, tmp_path / "noeab", *common, "run")
    await lego(acme, tmp_path / "lego", "--eab", "--kid", kid, "--hmac", hmac_key, *common, "run")
    bundle = tmp_path / "lego" / "certificates" / f"{domain}.crt"
    first = verify_bundle(acme, tmp_path, bundle, domain)
    # A 90-day certificate is renewed when asked for 400 days of headroom.
    # lego checks the directory's meta before it loads its account, so renew repeats --eab.
    await lego(
        acme,
        tmp_path / "lego",
        "--eab",
        "--kid",
        kid,
        "--hmac",
        hmac_key,
        *common,
        "renew",
        "--days",
        "400",
        "--no-random-sleep",
    )
    second = verify_bundle(acme, tmp_path, bundle, domain)
    assert second.serial_number != first.serial_number


async def test_lego_with_rsa_keys_and_the_client_server_profile(acme: AcmeSetup, tmp_path: Path) -> None:
    """An RS256-signing account (lego's RSA account key) and an RSA certificate key; the
    binding's default profile switched to privatessl-tls-client-server."""
    await acme.live.bindings.put(
        "acme",
        acme.live.issuing,
        settings={"http01_port": acme.http01_port, "dns_resolver": f"127.0.0.1:{acme.dns.dns_port}"},
        default_profile="privatessl-tls-client-server",
    )
    domain = "lego-rsa.example.test"
    await lego(
        acme, tmp_path / "lego", "--key-type", "rsa2048", "--domains", domain,
        "--http", "--http.port", f"127.0.0.1:{acme.http01_port}", "run",
    )  # fmt: skip
    leaf = verify_bundle(acme, tmp_path, tmp_path / "lego" / "certificates" / f"{domain}.crt", domain)
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {x509.oid.ExtendedKeyUsageOID.SERVER_AUTH, x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH}
    assert leaf.public_key().key_size == 2048
