"""What a new user does: `make run` in a fresh copy of the repository, then read
demo.json, enroll through /cagw/v1 with curl and the demo's PKCS#12 credential and
through /api/v1 with the demo token, and chain both certificates to root_ca_pem with
`openssl verify`."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.gateway import free_port
from tests.support.pki import make_csr
from tests.support.tools import require_tool

REPO = Path(__file__).resolve().parents[2]


def fresh_copy(dest: Path) -> Path:
    """The committed and working-tree files, without .venv, data or caches."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    for name in files:
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (REPO / name).is_file():
            shutil.copy2(REPO / name, target)
    return dest


@pytest.fixture
def make_run(tmp_path: Path) -> Iterator[tuple[dict[str, object], Path]]:
    require_tool("make")
    repo = fresh_copy(tmp_path / "ceg")
    http, https = free_port(), free_port()
    log = (tmp_path / "make-run.log").open("wb")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "CEG_DATA_DIR")}
    proc = subprocess.Popen(
        ["make", "run", f"INIT_ARGS=--http-port {http} --https-port {https}"],
        cwd=repo,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    demo_file = repo / "ceg-data" / "demo.json"
    deadline = time.monotonic() + 600  # creating the venv dominates
    try:
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "make-run.log").read_text()[-3000:]
            if demo_file.exists():
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{http}/healthz", timeout=1).read()
                    break
                except OSError:
                    pass
            time.sleep(0.5)
        else:
            raise AssertionError(
                "make run did not come up:\n" + (tmp_path / "make-run.log").read_text()[-3000:]
            )
        yield json.loads(demo_file.read_text()), tmp_path
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def curl(*args: str) -> tuple[int, dict[str, object]]:
    out = subprocess.run(
        ["curl", "-sS", "-w", "\n%{http_code}", *args], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    body, _, code = out.stdout.rpartition("\n")
    return int(code), json.loads(body) if body.strip() else {}


def test_make_run_then_enroll_like_a_new_user(make_run: tuple[dict[str, object], Path]) -> None:
    require_tool("curl")
    require_tool("openssl")
    demo, tmp = make_run
    printed = (tmp / "make-run.log").read_text()
    assert "demo.json" in printed and str(demo["https"]) in printed  # make run prints the endpoints
    assert isinstance(demo["cas"], dict) and isinstance(demo["cagw"], dict) and isinstance(demo["api"], dict)
    ca, root = demo["cas"]["issuing"], str(demo["root_ca_pem"])
    trust = ["--cacert", str(demo["tls_ca_pem"])]
    headers = ["-H", "Content-Type: application/json"]
    csr = base64.b64encode(make_csr(cn="new-user.example", dns=["new-user.example"])).decode()

    p12 = f"{demo['cagw']['p12']}:{demo['cagw']['p12_password']}"
    code, enrolled = curl(
        *trust,
        "--cert-type",
        "P12",
        "--cert",
        p12,
        *headers,
        "-d",
        json.dumps(
            {
                "profileId": "privatessl-tls-server",
                "requiredFormat": {"format": "PEM"},
                "csr": csr,
                "includeCa": True,
            }
        ),
        f"{demo['cagw']['base']}/certificate-authorities/{ca}/enrollments",
    )
    assert code == 200, enrolled
    enrollment = enrolled["enrollment"]
    assert isinstance(enrollment, dict)
    cagw_pem = tmp / "cagw.pem"
    cagw_pem.write_text(str(enrollment["body"]))

    code, issued = curl(
        *trust,
        "-H",
        f"Authorization: Bearer {demo['api']['token']}",
        *headers,
        "-d",
        json.dumps({"ca": ca, "profile": "privatessl-tls-client", "csr": csr}),
        f"{demo['api']['base']}/certificates",
    )
    assert code == 201, issued
    api_pem = tmp / "api.pem"
    api_pem.write_text(str(issued["certificate_pem"]))

    chain = tmp / "issuing.pem"
    with urllib.request.urlopen(f"{demo['http']}/ca/{ca}.pem", timeout=5) as response:
        chain.write_bytes(response.read())
    for leaf in (cagw_pem, api_pem):
        result = subprocess.run(
            ["openssl", "verify", "-CAfile", root, "-untrusted", str(chain), str(leaf)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0 and ": OK" in result.stdout, result.stdout + result.stderr
