"""`ceg init`: the data dir, its configuration and secrets, the database, and (with
--demo) a root and an issuing CA, a binding per protocol, demo credentials, the HTTPS
listener's certificate and `demo.json` (ARCHITECTURE.md section 5)."""

from __future__ import annotations

import json
import os
import secrets
import socket
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from ca_core.keys.file import generate_private_key
from ca_core.model import IssuanceRequest, KeyAlgorithm, Requester, Service
from ca_core.services import Services
from ca_core.store.migrate import migrate
from gateway.assembly import open_gateway_services
from gateway.bindings import BindingRegistry
from gateway.client_credentials import issue_client_credential
from gateway.config import CONFIG_NAME, Config, load_config
from gateway.frontends import discover

DEMO_ROOT = "root"
DEMO_ISSUING = "issuing"


def _write_secret(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")


def write_config(
    data_dir: Path,
    db_url: str | None,
    key_backend: str,
    http_port: int = 8080,
    https_port: int = 8443,
    host: str = "127.0.0.1",
) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / CONFIG_NAME
    if path.exists():
        raise FileExistsError(f"{path} exists; this data dir is already initialised")
    url = db_url or "sqlite+aiosqlite:///{data_dir}/ceg.db"
    text = f"""# ceg configuration (see README.md). Secrets are never written here: each names an
# environment variable or a file (relative to this directory) that holds it.

[server]
host = "{host}"
http_port = {http_port}
https_port = {https_port}
# public_base_url = "https://pki.example.com"  # base of CRL/OCSP/CA URLs put in certificates
workers = 0                                    # 0: one worker process per core
# event_loop = "asyncio"                       # default uvloop
tls_cert = "tls/server.pem"
tls_key = "tls/server.key"

[database]
url = "{url}"
# password = {{ env = "CEG_DB_PASSWORD" }}

[keys]
backend = "{key_backend}"
directory = "keys"
passphrase = {{ env = "CEG_KEY_PASSPHRASE", file = "secrets/key-passphrase" }}

[keys.pkcs11]
module = "/usr/lib/softhsm/libsofthsm2.so"
token_label = "ceg"
pin = {{ env = "CEG_PKCS11_PIN", file = "secrets/pkcs11-pin" }}

[logging]
level = "INFO"
json = true
"""
    path.write_text(text)
    if key_backend == "file" and not os.environ.get("CEG_KEY_PASSPHRASE"):
        secret_file = data_dir / "secrets" / "key-passphrase"
        if not secret_file.exists():
            _write_secret(secret_file, secrets.token_urlsafe(32))
    return path


async def initialise(
    data_dir: Path,
    demo: bool,
    db_url: str | None = None,
    key_backend: str = "file",
    http_port: int = 8080,
    https_port: int = 8443,
    host: str = "127.0.0.1",
) -> dict[str, Any]:
    write_config(data_dir, db_url, key_backend, http_port, https_port, host)
    config = load_config(data_dir)
    await migrate(config.database.resolved_url(config.data_dir))
    if not demo:
        return {"data_dir": str(config.data_dir), "config": str(config.data_dir / CONFIG_NAME)}
    services = await open_gateway_services(config, run_migrations=False)
    try:
        return await create_demo(config, services)
    finally:
        await services.close()


async def create_demo(config: Config, services: Services) -> dict[str, Any]:
    authority = services.authority
    await authority.create_root(
        DEMO_ROOT, "CN=ceg Demo Root CA,O=ceg demo", KeyAlgorithm.EC_P256, ocsp_enabled=True, actor="init"
    )
    await authority.create_issuing(
        DEMO_ISSUING,
        DEMO_ROOT,
        "CN=ceg Demo Issuing CA,O=ceg demo",
        KeyAlgorithm.EC_P256,
        services=[s.value for s in Service],
        ocsp_enabled=True,
        actor="init",
    )
    tls_dir = config.data_dir / "tls"
    tls_dir.mkdir(exist_ok=True)
    await issue_listener_certificate(config, services, DEMO_ISSUING, host_names(config.server.host))
    root = await authority.get(DEMO_ROOT)
    root_pem = config.data_dir / "root-ca.pem"
    root_pem.write_bytes(x509.load_der_x509_certificate(root.der).public_bytes(serialization.Encoding.PEM))

    token = await services.credentials.create_token("demo-admin", "admin", actor="init")
    p12_password = secrets.token_urlsafe(12)
    _, p12 = await issue_client_credential(
        services, DEMO_ISSUING, "demo-cagw", "officer", {"cas": [DEMO_ISSUING]}, p12_password, actor="init"
    )
    p12_path = config.data_dir / "demo-cagw.p12"
    p12_path.write_bytes(p12)
    os.chmod(p12_path, 0o600)

    host = config.server.host
    http = f"http://{host}:{config.server.http_port}"
    https = f"https://{_url_host(host)}:{config.server.https_port}"
    demo: dict[str, Any] = {
        "http": http,
        "https": https,
        "root_ca_pem": str(root_pem),
        "tls_ca_pem": str(root_pem),
        "cas": {"root": DEMO_ROOT, "issuing": DEMO_ISSUING},
        "api": {"base": f"{https}/api/v1", "http_base": f"{http}/api/v1", "token": token.secret},
        "cagw": {"base": f"{https}/cagw/v1", "p12": str(p12_path), "p12_password": p12_password},
        "ocsp": services.urls.ocsp(DEMO_ISSUING),
        "crl": services.urls.crl(DEMO_ISSUING),
    }
    registry = BindingRegistry(services, discover())
    for name, frontend in registry.frontends.items():
        binding = await registry.put(name, DEMO_ISSUING, actor="init")
        demo[name] = await frontend.demo_setup(services, binding, https if name != "scep" else http)
    (config.data_dir / "demo.json").write_text(json.dumps(demo, indent=2) + "\n")
    os.chmod(config.data_dir / "demo.json", 0o600)
    return demo


def host_names(host: str) -> list[x509.GeneralName]:
    import ipaddress

    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    candidates = {host, socket.gethostname()}
    for candidate in sorted(candidates):
        try:
            ip = ipaddress.ip_address(candidate)
        except ValueError:
            if candidate and candidate != "localhost":
                names.append(x509.DNSName(candidate.lower()))
        else:
            if not ip.is_unspecified and x509.IPAddress(ip) not in names:
                names.append(x509.IPAddress(ip))
    return names


async def issue_listener_certificate(
    config: Config, services: Services, ca: str, names: list[x509.GeneralName]
) -> None:
    """The HTTPS listener's key and certificate (chain without the root) in the data dir."""
    key = generate_private_key(KeyAlgorithm.EC_P256)
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    issued = await services.issuance.issue(
        IssuanceRequest(
            ca=ca,
            profile="internal-tls-server",
            requester=Requester("cli", "init"),
            public_key=spki,
            pop_verified=True,
            subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ceg gateway")]),
            subject_alt_names=tuple(names),
            allow_internal_profile=True,
        )
    )
    chain = [issued.der, *issued.chain[:-1]]
    pem = b"".join(x509.load_der_x509_certificate(d).public_bytes(serialization.Encoding.PEM) for d in chain)
    cert_path, key_path = config.path(config.server.tls_cert), config.path(config.server.tls_key)
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    cert_path.write_bytes(pem)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    _write_secret(key_path, key_pem.strip())


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
