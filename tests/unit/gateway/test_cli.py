"""The `ceg` command, run as a user runs it (a subprocess on a real data dir)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.pki import make_csr


def ceg(data_dir: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CEG_KEY_PASSPHRASE": "cli-test-passphrase"}
    result = subprocess.run(
        [sys.executable, "-m", "gateway", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    if ok and result.returncode != 0:
        raise AssertionError(
            f"ceg {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def ceg_json(data_dir: Path, *args: str) -> object:
    return json.loads(ceg(data_dir, *args, "--json").stdout)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("cli") / "data"
    ceg(d, "init")
    return d


def test_init_twice_is_refused(data_dir: Path) -> None:
    again = ceg(data_dir, "init", ok=False)
    assert again.returncode == 2 and "already initialised" in again.stderr


def test_bad_config_stops_with_the_key_named(tmp_path: Path) -> None:
    ceg(tmp_path, "init")
    config = tmp_path / "ceg.toml"
    config.write_text(config.read_text().replace("http_port = 8080", "http_port = 99999"))
    for args in (("ca", "list"), ("serve",)):
        result = ceg(tmp_path, *args, ok=False)
        assert result.returncode == 2
        assert "server.http_port" in result.stderr and "99999" in result.stderr


def test_ca_lifecycle(data_dir: Path) -> None:
    root = ceg_json(
        data_dir, "ca", "create-root", "cli-root", "--subject", "CN=CLI Root,O=ceg", "--key-type", "ec-p384"
    )
    assert isinstance(root, dict) and root["kind"] == "root" and root["key_algorithm"] == "ec-p384"
    issuing = ceg_json(
        data_dir,
        "ca",
        "create-issuing",
        "cli-issuing",
        "--parent",
        "cli-root",
        "--subject",
        "CN=CLI Issuing",
        "--services",
        "privatessl,est",
        "--ocsp",
    )
    assert (
        isinstance(issuing, dict) and issuing["services"] == ["privatessl", "est"] and issuing["ocsp"] is True
    )
    listed = ceg_json(data_dir, "ca", "list")
    assert {c["id"] for c in listed} >= {"cli-root", "cli-issuing"}  # type: ignore[union-attr]
    shown = ceg_json(data_dir, "ca", "show", "cli-issuing")
    assert isinstance(shown, dict) and "BEGIN CERTIFICATE" in shown["certificate_pem"]
    # The same view as the REST API's, dates included (RFC 3339, UTC as Z).
    assert shown["not_after"].endswith("Z") and "T" in shown["not_after"]
    assert ceg_json(data_dir, "ca", "services", "cli-issuing", "--set", "privatessl,est,scep") == [
        "privatessl",
        "est",
        "scep",
    ]
    bad = ceg(data_dir, "ca", "services", "cli-issuing", "--set", "bogus", ok=False)
    assert bad.returncode == 1 and "unknown service" in bad.stderr
    refused = ceg(data_dir, "ca", "delete", "cli-root", ok=False)
    assert refused.returncode == 1 and "still has issuing CAs" in refused.stderr
    missing = ceg(data_dir, "ca", "show", "nope", "--json", ok=False)
    assert missing.returncode == 1 and json.loads(missing.stderr)["error"] == "not_found"


def test_cert_issue_show_search_export(data_dir: Path, tmp_path: Path) -> None:
    ceg(data_dir, "ca", "create-root", "c-root", "--subject", "CN=C Root")
    ceg(
        data_dir,
        "ca",
        "create-issuing",
        "c-issuing",
        "--parent",
        "c-root",
        "--subject",
        "CN=C Issuing",
        "--services",
        "privatessl",
    )
    csr = tmp_path / "host.csr"
    csr.write_bytes(make_csr(cn="cli-host.example", dns=["cli-host.example"]))
    out = tmp_path / "host.pem"
    issued = ceg_json(
        data_dir,
        "cert",
        "issue",
        "--ca",
        "c-issuing",
        "--profile",
        "privatessl-tls-server",
        "--csr",
        str(csr),
        "--san",
        "dns:cli-host.example",
        "--days",
        "30",
        "--out",
        str(out),
        "--chain",
    )
    assert isinstance(issued, dict)
    assert out.read_text().count("BEGIN CERTIFICATE") == 3
    serial = issued["serial"]
    shown = ceg_json(data_dir, "cert", "show", serial)
    assert (
        isinstance(shown, dict) and shown["sans"] == ["dns:cli-host.example"] and shown["status"] == "normal"
    )
    found = ceg_json(data_dir, "cert", "search", "--text", "cli-host", "--ca", "c-issuing")
    assert isinstance(found, dict) and [c["serial"] for c in found["items"]] == [serial]
    none = ceg_json(data_dir, "cert", "search", "--text", "cli-host", "--status", "revoked")
    assert isinstance(none, dict) and none["total"] == 0
    export = tmp_path / "export"
    result = ceg(data_dir, "cert", "export", "--ca", "c-issuing", "--out", str(export), "--progress")
    assert (export / f"{serial}.pem").exists() and "exporting" in result.stderr
    refused = ceg(
        data_dir,
        "cert",
        "issue",
        "--ca",
        "c-issuing",
        "--profile",
        "est-digital-signature",
        "--csr",
        str(csr),
        ok=False,
    )
    assert refused.returncode == 1 and "est" in refused.stderr


def test_external_root_flow_with_openssl(data_dir: Path, tmp_path: Path) -> None:
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    openssl(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        str(tmp_path / "ext.key"),
        "-out",
        str(tmp_path / "ext.pem"),
        "-subj",
        "/CN=Corp Root",
        "-days",
        "3650",
        "-addext",
        "basicConstraints=critical,CA:true",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    )
    ceg(data_dir, "ca", "register-external-root", "corp-root", "--cert", str(tmp_path / "ext.pem"))
    pending = ceg_json(
        data_dir,
        "ca",
        "create-external-issuing",
        "corp-issuing",
        "--root",
        "corp-root",
        "--subject",
        "CN=Corp Issuing",
        "--services",
        "est",
    )
    assert isinstance(pending, dict) and pending["state"] == "csr-ready"
    ceg(data_dir, "ca", "export-csr", "corp-issuing", "--out", str(tmp_path / "corp.csr"))
    (tmp_path / "ext.cnf").write_text(
        "[v3]\nbasicConstraints=critical,CA:true,pathlen:0\nkeyUsage=critical,digitalSignature,keyCertSign,cRLSign\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
    )
    openssl(
        "x509",
        "-req",
        "-in",
        str(tmp_path / "corp.csr"),
        "-CA",
        str(tmp_path / "ext.pem"),
        "-CAkey",
        str(tmp_path / "ext.key"),
        "-CAcreateserial",
        "-days",
        "1000",
        "-extfile",
        str(tmp_path / "ext.cnf"),
        "-extensions",
        "v3",
        "-out",
        str(tmp_path / "corp.pem"),
    )
    active = ceg_json(data_dir, "ca", "import-cert", "corp-issuing", str(tmp_path / "corp.pem"))
    assert isinstance(active, dict) and active["state"] == "active"


def test_credentials(data_dir: Path, tmp_path: Path) -> None:
    token = ceg_json(
        data_dir, "credential", "create", "--kind", "token", "--name", "ops", "--role", "auditor"
    )
    assert isinstance(token, dict) and token["token"].startswith("ceg_")
    basic = ceg_json(
        data_dir,
        "credential",
        "create",
        "--kind",
        "basic",
        "--name",
        "router1",
        "--ca",
        "x",
        "--protocol",
        "est",
    )
    assert isinstance(basic, dict) and basic["password"]
    eab = ceg_json(data_dir, "credential", "create", "--kind", "eab", "--name", "acme-team")
    assert isinstance(eab, dict) and eab["kid"] and eab["hmac_key"]
    listed = ceg_json(data_dir, "credential", "list")
    assert {c["name"] for c in listed} >= {"ops", "router1", "acme-team"}  # type: ignore[union-attr]
    ceg(data_dir, "credential", "revoke", token["id"])
    after = ceg_json(data_dir, "credential", "list")
    assert "ops" not in {c["name"] for c in after}  # type: ignore[union-attr]
    twice = ceg(data_dir, "credential", "revoke", token["id"], ok=False)
    assert twice.returncode == 1


def test_audit_verify_and_db_migrate(tmp_path: Path) -> None:
    data_dir = tmp_path / "audit"
    ceg(data_dir, "init")
    assert ceg_json(data_dir, "db", "migrate") == {"migrated": True}
    ceg(data_dir, "ca", "create-root", "a-root", "--subject", "CN=A")
    ceg(data_dir, "credential", "create", "--name", "n", "--role", "admin")
    result = ceg_json(data_dir, "audit", "verify")
    assert result == {"ok": True, "problems": []}
    import sqlite3

    db = sqlite3.connect(data_dir / "ceg.db")
    db.execute("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 2")
    db.commit()
    db.close()
    tampered = ceg(data_dir, "audit", "verify", "--json", ok=False)
    assert tampered.returncode == 3
    assert json.loads(tampered.stdout)["problems"][0]["seq"] == 2


def test_init_on_pkcs11(tmp_path: Path, softhsm_token: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.support.softhsm import PIN, SoftHsmToken

    assert isinstance(softhsm_token, SoftHsmToken)
    data = tmp_path / "p11"
    monkeypatch.setenv("CEG_PKCS11_PIN", PIN)
    monkeypatch.setenv("SOFTHSM2_CONF", str(softhsm_token.conf))
    ceg(data, "init", "--key-backend", "pkcs11")
    config = data / "ceg.toml"
    config.write_text(
        config.read_text().replace('token_label = "ceg"', f'token_label = "{softhsm_token.label}"')
    )
    root = ceg_json(
        data, "ca", "create-root", "hsm-root", "--subject", "CN=HSM Root", "--key-type", "rsa-3072"
    )
    assert isinstance(root, dict) and root["key_algorithm"] == "rsa-3072"
    assert not (data / "keys").exists() or not any((data / "keys").iterdir())  # nothing on disk
