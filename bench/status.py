"""Certificate status figures: OCSP responses per second and CRL build time and size.

- OCSP over HTTP: `ceg serve --workers 2` on loopback (logging at WARNING), driven by wrk
  on the same 2 cores: a pre-signed GET (RFC 5019 style, no nonce), and POSTs with a
  nonce (signed per request). Target for the record: >= 10,000 responses/s pre-signed.
- OCSP in process: `services.ocsp.respond` alone, without HTTP, for the same two cases.
- CRL: `services.crls.publish` (read the revoked rows, encode, sign, store) for 100,000
  and 1,000,000 revoked entries in SQLite. Target: 1,000,000 entries in under 10 s.

Everything runs in a temporary directory on loopback ports and stops by itself.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import shutil
import socket
import sqlite3
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from bench.report import Report

NAME = "status"
WRK_SECONDS = 10
WRK_CONNECTIONS = 64


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ocsp_request(cert: x509.Certificate, issuer: x509.Certificate, nonce: bytes | None) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), False)
    return builder.build().public_bytes(serialization.Encoding.DER)


async def _run(*args: str, timeout: float = 300) -> str:
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{args[:3]} failed: {out.decode(errors='replace')[-500:]}")
    return out.decode(errors="replace")


# --- OCSP over HTTP -------------------------------------------------------------------------


async def _wrk(url: str, script: Path | None = None) -> float:
    args = ["wrk", "-t2", f"-c{WRK_CONNECTIONS}", f"-d{WRK_SECONDS}s", "--latency"]
    if script is not None:
        args += ["-s", str(script)]
    out = await _run(*args, url, timeout=WRK_SECONDS + 60)
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw errors: {out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if match is None:
        raise RuntimeError(f"no Requests/sec in wrk output: {out}")
    return float(match.group(1))


def _lua_post(path: Path, body: bytes) -> Path:
    escaped = "".join(f"\\{b:03d}" for b in body)
    path.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/ocsp-request"\n'
        f'wrk.body = "{escaped}"\n'
    )
    return path


async def _ocsp_http(report: Report, work: Path) -> None:
    if shutil.which("wrk") is None:
        report.add(NAME, "OCSP over HTTP", "skipped", "wrk is not installed")
        return
    http_port, https_port = _free_port(), _free_port()
    data = work / "gateway"
    ceg = [sys.executable, "-m", "gateway"]
    await _run(*ceg, "init", "--demo", "--data-dir", str(data), "--http-port", str(http_port),
               "--https-port", str(https_port))  # fmt: skip
    config = data / "ceg.toml"
    config.write_text(config.read_text().replace('level = "INFO"', 'level = "WARNING"'))
    server = await asyncio.create_subprocess_exec(
        *ceg, "serve", "--data-dir", str(data), "--workers", "2",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{http_port}"
    try:
        for _ in range(200):
            try:
                await asyncio.to_thread(urllib.request.urlopen, f"{base}/healthz", timeout=1)
                break
            except OSError:
                await asyncio.sleep(0.1)
        issuer_der = await asyncio.to_thread(lambda: urllib.request.urlopen(f"{base}/ca/issuing.crt").read())
        issuer = x509.load_der_x509_certificate(issuer_der)
        leaf = x509.load_pem_x509_certificates((data / "tls" / "server.pem").read_bytes())[0]
        presigned = _ocsp_request(leaf, issuer, None)
        url = f"{base}/ocsp/issuing/{urllib.parse.quote(base64.b64encode(presigned).decode(), safe='')}"
        body = await asyncio.to_thread(lambda: urllib.request.urlopen(url).read())
        status = ocsp.load_der_ocsp_response(body).certificate_status.name
        load_before = os.getloadavg()[0]  # the machine is shared: say what else was running
        rate = await _wrk(url)
        report.add(
            NAME,
            "OCSP pre-signed GET, HTTP, 2 workers",
            f"{rate:,.0f} responses/s",
            f"({rate / 10_000:.2f}x the 10,000/s target; {status}, {len(body)} B; wrk on the same "
            f"2 cores; load average before {load_before:.1f})",
        )
        with_nonce = _ocsp_request(leaf, issuer, os.urandom(16))
        rate = await _wrk(f"{base}/ocsp/issuing", _lua_post(work / "post.lua", with_nonce))
        report.add(
            NAME, "OCSP with nonce POST, HTTP, 2 workers", f"{rate:,.0f} responses/s", "(signed per request)"
        )
    finally:
        server.terminate()
        await server.wait()


# --- OCSP and CRL in process -------------------------------------------------------------------


def _csr() -> bytes:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench.example")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.DER)


async def _in_process(report: Report, work: Path) -> None:
    from ca_core.keys.file import FileKeyStore
    from ca_core.model import IssuanceRequest, KeyAlgorithm, Requester, Service
    from ca_core.services import open_services

    url = f"sqlite+aiosqlite:///{work}/inproc.db"
    keys = FileKeyStore(work / "keys", b"bench")
    s = await open_services(url, keys, "http://127.0.0.1:1")
    await s.authority.create_root("root", "CN=Bench Root", KeyAlgorithm.EC_P256, ocsp_enabled=True)
    await s.authority.create_issuing(
        "issuing",
        "root",
        "CN=Bench Issuing",
        KeyAlgorithm.EC_P256,
        [x.value for x in Service],
        ocsp_enabled=True,
    )
    issued = await s.issuance.issue(
        IssuanceRequest(
            ca="issuing", profile="est-digital-signature", requester=Requester("bench"), csr=_csr()
        )
    )
    issuing = await s.authority.get("issuing")
    assert issuing.certificate is not None
    presigned = _ocsp_request(issued.certificate, issuing.certificate, None)
    await s.ocsp.respond("issuing", presigned)
    rounds = 50_000
    started = time.perf_counter()
    for _ in range(rounds):
        await s.ocsp.respond("issuing", presigned)
    rate = rounds / (time.perf_counter() - started)
    report.add(NAME, "OCSP pre-signed, in process, 1 core", f"{rate:,.0f} responses/s", "(no HTTP)")
    requests = [_ocsp_request(issued.certificate, issuing.certificate, os.urandom(16)) for _ in range(2000)]
    started = time.perf_counter()
    for data in requests:
        await s.ocsp.respond("issuing", data)
    rate = len(requests) / (time.perf_counter() - started)
    report.add(
        NAME, "OCSP with nonce, in process, 1 core", f"{rate:,.0f} responses/s", "(parse, look up, sign)"
    )
    await s.close()

    await _crl_builds(report, work, url, keys)


def _seed_revoked(db: Path, start: int, count: int) -> None:
    """Revoked rows straight into SQLite (the bench's setup, not the code under test)."""
    conn = sqlite3.connect(db)
    when = "2026-01-01 00:00:00.000000"
    reasons = ("keyCompromise", "superseded", "cessationOfOperation", "affiliationChanged", "unspecified")

    def rows():  # type: ignore[no-untyped-def]
        for i in range(start, start + count):
            serial = format((i * 0x9E3779B97F4A7C15 + 0x1234567) % (1 << 127) | (1 << 120), "x")
            revoked_at = f"2026-01-{1 + i % 28:02d} {i % 24:02d}:{i % 60:02d}:{(i // 60) % 60:02d}.000000"
            invalidity = revoked_at if i % 10 == 0 else None
            yield (serial, "issuing", "est-digital-signature", "CN=bench", "", "revoked", when, "2030-01-01 00:00:00.000000",
                   when, revoked_at, b"\x00", "{}", revoked_at, reasons[i % 5], invalidity)  # fmt: skip

    with conn:
        conn.executemany(
            "INSERT INTO certificates (serial, ca_id, profile, subject, sans, status, not_before, not_after, "
            "issued_at, status_changed_at, der, requester, revoked_at, revocation_reason, invalidity_date) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            rows(),
        )
    conn.close()


async def _crl_builds(report: Report, work: Path, url: str, keys: object) -> None:
    from ca_core.services import open_services

    seeded = 0
    for target in (100_000, 1_000_000):
        await asyncio.to_thread(_seed_revoked, work / "inproc.db", seeded, target - seeded)
        seeded = target
        s = await open_services(url, keys, "http://127.0.0.1:1", run_migrations=False)  # type: ignore[arg-type]
        try:
            started = time.perf_counter()
            crl = await s.crls.publish("issuing")
            elapsed = time.perf_counter() - started
        finally:
            await s.close()
        assert crl.entries >= target
        note = f"({len(crl.der) / 1e6:.1f} MB, DB read + encode + sign + store"
        if target == 1_000_000:
            note += f"; target under 10 s: {'met' if elapsed < 10 else 'missed'}"
        report.add(NAME, f"CRL with {target:,} entries", f"{elapsed:.2f} s", note + ")")


async def run(report: Report) -> None:
    work = Path(tempfile.mkdtemp(prefix="ceg-bench-status-"))
    try:
        await _ocsp_http(report, work)
        await _in_process(report, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
