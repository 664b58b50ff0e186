"""EST simpleenroll throughput: certificates per second over keep-alive TLS with HTTP
Basic, and p50 / p99 latency.

A throwaway gateway (`ceg init --demo` in a temp dir, free ports, P-256 issuing CA, file
keys) runs as `ceg serve --workers 2`; wrk drives it from a Lua script that posts one
base64 P-256 CSR again and again with the demo's EST user, over several keep-alive
connections, in a few rounds (the machine is shared, so one round can mislead): the
median round is reported, with the best. Every 200 is a certificate signed and committed
before it was sent; the database count is printed beside wrk's (a few more are stored:
requests still in flight when a round ends). Load stays on loopback and stops by itself;
nothing is asserted about timing.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import socket
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bench.report import Report

DURATION_S = int(os.environ.get("CEG_BENCH_EST_SECONDS", "10"))
ROUNDS = int(os.environ.get("CEG_BENCH_EST_ROUNDS", "3"))
CONNECTIONS = int(os.environ.get("CEG_BENCH_EST_CONNECTIONS", "64"))
WORKERS = int(os.environ.get("CEG_BENCH_EST_WORKERS", "2"))
TARGET = 1500

_LUA = """
wrk.method = "POST"
wrk.body = [[%(body)s]]
wrk.headers["Content-Type"] = "application/pkcs10"
wrk.headers["Authorization"] = "Basic %(token)s"

done = function(summary, latency, requests)
  local non2xx = summary.errors.status
  io.write(string.format(
    '{"requests": %%d, "non2xx": %%d, "socket_errors": %%d, "duration_us": %%d, ' ..
    '"p50_us": %%d, "p90_us": %%d, "p99_us": %%d, "max_us": %%d}\\n',
    summary.requests, non2xx,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _csr_base64() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench-device.example")]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("bench-device.example")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return base64.b64encode(csr.public_bytes(serialization.Encoding.DER)).decode()


async def _run(*cmd: str, env: dict[str, str] | None = None) -> str:
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {err.decode()[-2000:]}")
    return out.decode()


async def _wait_ready(url_host: str, port: int, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.open_connection(url_host, port)
            writer.write(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            await writer.drain()
            head = await reader.read(64)
            writer.close()
            if head.startswith(b"HTTP/1.1 200"):
                return
        except OSError:
            pass
        await asyncio.sleep(0.3)
    raise RuntimeError("the gateway did not become ready")


def _certificates(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM certificates WHERE profile LIKE 'est-%'").fetchone()[0])


async def run(report: Report) -> None:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (make system-deps)")
    data = Path(tempfile.mkdtemp(prefix="ceg-bench-est-"))
    http_port, https_port = _free_port(), _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    server: asyncio.subprocess.Process | None = None
    load_before = os.getloadavg()[0]
    try:
        await _run(
            sys.executable, "-m", "gateway", "init", "--demo", "--data-dir", str(data),
            "--http-port", str(http_port), "--https-port", str(https_port), env=env,
        )  # fmt: skip
        demo = json.loads((data / "demo.json").read_text())
        server = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "serve", "--data-dir", str(data), "--workers", str(WORKERS),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, env=env,
            start_new_session=True,
        )  # fmt: skip
        await _wait_ready("127.0.0.1", http_port)
        est = demo["est"]
        token = base64.b64encode(f"{est['username']}:{est['password']}".encode()).decode()
        script = data / "simpleenroll.lua"
        script.write_text(_LUA % {"body": _csr_base64(), "token": token})
        url = f"{est['base']}/simpleenroll"
        before = _certificates(data / "ceg.db")
        # A short warm-up so caches (binding, Basic check, CA) are filled in every worker.
        await _run(wrk, "-t1", "-c4", "-d2s", "-s", str(script), url)
        warm = _certificates(data / "ceg.db")
        rounds: list[dict[str, float]] = []
        for _ in range(ROUNDS):
            out = await _run(
                wrk, "-t2", f"-c{CONNECTIONS}", f"-d{DURATION_S}s", "--latency", "-s", str(script), url
            )
            figures = json.loads(out.strip().splitlines()[-1])
            ok = figures["requests"] - figures["non2xx"]
            rounds.append({**figures, "ok": ok, "rate": ok / (figures["duration_us"] / 1e6)})
        await asyncio.sleep(1)  # requests in flight when wrk stopped finish and are stored
        issued = _certificates(data / "ceg.db") - warm
        rates = sorted(r["rate"] for r in rounds)
        median = next(r for r in rounds if r["rate"] == rates[len(rates) // 2])
        report.add(
            "est",
            "simpleenroll certificates/s",
            f"{median['rate']:,.0f}",
            f"median of {ROUNDS} x {DURATION_S}s; best {rates[-1]:,.0f}; "
            f"target >= {TARGET:,} ({median['rate'] / TARGET:.2f}x)",
        )
        report.add(
            "est", "latency p50", f"{median['p50_us'] / 1000:.1f} ms", f"{CONNECTIONS} keep-alive TLS conns"
        )
        report.add(
            "est", "latency p99", f"{median['p99_us'] / 1000:.1f} ms", f"max {median['max_us'] / 1000:.0f} ms"
        )
        ok_total = int(sum(r["ok"] for r in rounds))
        report.add(
            "est",
            "certificates stored / 200s",
            f"{issued:,} / {ok_total:,}",
            f"non-2xx {int(sum(r['non2xx'] for r in rounds))}, "
            f"socket errors {int(sum(r['socket_errors'] for r in rounds))}, warm-up {warm - before}",
        )
        report.add(
            "est",
            "setup",
            f"{WORKERS} workers",
            f"P-256 issuing CA, file keys, SQLite, wrk; load average before {load_before:.1f} "
            f"on {os.cpu_count()} cores (other work on the machine shares them)",
        )
    finally:
        if server is not None and server.returncode is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(server.wait(), 30)
            except TimeoutError:
                os.killpg(server.pid, signal.SIGKILL)
        shutil.rmtree(data, ignore_errors=True)
