"""`ceg cert revoke|hold|unhold`, `ceg crl publish` and `ceg ca ocsp` on a demo data dir."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography import x509

from gateway.cli import main
from tests.support.gateway import free_port


def ceg(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, object]:
    code = main([*args, "--json"])
    out, err = capsys.readouterr()
    return code, json.loads(out) if code == 0 and out.strip() else err


@pytest.fixture
def data_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    d = tmp_path / "data"
    code, _ = ceg(
        capsys,
        "init",
        "--demo",
        "--data-dir",
        str(d),
        "--http-port",
        str(free_port()),
        "--https-port",
        str(free_port()),
    )
    assert code == 0
    return d


def test_revoke_hold_unhold_and_publish(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = ("--data-dir", str(data_dir))
    _, found = ceg(capsys, "cert", "search", "--ca", "issuing", *d)
    serials = [c["serial"] for c in found["items"]]  # type: ignore[index]
    assert len(serials) >= 2
    revoked, held = serials[0], serials[1]
    code, view = ceg(
        capsys, "cert", "revoke", revoked, "--reason", "keyCompromise", "--invalidity-date",
        "2026-01-01T00:00:00", "--comment", "lost laptop", "--publish-now", *d,
    )  # fmt: skip
    assert code == 0 and view["status"] == "revoked" and view["revocation_reason"] == "keyCompromise"  # type: ignore[index]
    code, view = ceg(capsys, "cert", "hold", held, *d)
    assert code == 0 and view["status"] == "held"  # type: ignore[index]
    code, published = ceg(capsys, "crl", "publish", "--ca", "issuing", *d)
    assert code == 0 and published[0]["entries"] == 2  # type: ignore[index]
    code, view = ceg(capsys, "cert", "unhold", held, "--publish-now", *d)
    assert code == 0 and view["status"] == "normal"  # type: ignore[index]
    code, published = ceg(capsys, "crl", "publish", *d)
    assert code == 0 and sorted(p["ca"] for p in published) == ["issuing", "root"]  # type: ignore[union-attr]
    assert next(p for p in published if p["ca"] == "issuing")["entries"] == 1  # type: ignore[union-attr]
    # Refusals: a revoked certificate takes no more changes; unknown serials are named.
    code, err = ceg(capsys, "cert", "hold", revoked, *d)
    assert code == 1 and "revoked" in str(err)
    code, err = ceg(capsys, "cert", "revoke", "abcdef", *d)
    assert code == 1 and "no certificate" in str(err)


def test_ocsp_settings(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = ("--data-dir", str(data_dir))
    code, view = ceg(capsys, "ca", "ocsp", "issuing", *d)
    assert code == 0 and view == {  # type: ignore[comparison-overlap]
        "ca": "issuing",
        "url": view["url"],  # type: ignore[index]
        "signer": "responder",
        "require_signed_requests": False,
    }
    code, view = ceg(
        capsys, "ca", "ocsp", "issuing", "--signer", "ca", "--require-signed-requests", "yes", *d
    )
    assert code == 0 and view["signer"] == "ca" and view["require_signed_requests"] is True  # type: ignore[index]


def test_crl_published_by_the_cli_is_a_valid_crl(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = ceg(capsys, "crl", "publish", "--ca", "root", "--data-dir", str(data_dir))
    assert code == 0
    import sqlite3

    with sqlite3.connect(data_dir / "ceg.db") as conn:
        (der,) = conn.execute("select der from crls where ca_id = 'root'").fetchone()
    crl = x509.load_der_x509_crl(der)
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number >= 1
