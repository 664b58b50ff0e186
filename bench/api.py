"""Enrollments per second through /cagw/v1, with keep-alive mutual-TLS clients.

Starts `ceg init --demo` in a temporary data dir and `ceg serve --workers 2` on free
loopback ports, then drives POST .../enrollments (a fresh P-256 CSR body per request,
format X509) from C keep-alive TLS connections that present the demo's PKCS#12 client
credential. The client is a lean HTTP/1.1 writer on asyncio streams (one process), so
most of the machine's CPU goes to the server. Prints throughput, p50/p99 latency and
ratios against the target (1,000/s with 2 workers) and against a trivial mTLS request
(`GET /healthz`) on the same connections: the ceiling the HTTP and TLS stack sets.

The machine is shared (other work competes for the same 2 cores), so the bench also
reads the server processes' CPU time from /proc and prints the CPU cost of one
enrollment and the rate two dedicated cores would sustain at that cost: a figure that
does not depend on what else the machine is doing.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from bench.report import Report

NAME = "api"
WORKERS = 2
CONNECTIONS = 32
WARMUP_SECONDS = 2.0
MEASURE_SECONDS = 10.0
DISTINCT_CSRS = 512
TARGET_PER_SECOND = 1000.0


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes (Linux /proc); 0 for any that is gone."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _process_tree(pid: int) -> list[int]:
    """The server and its worker processes."""
    found = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if int(entry.joinpath("stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _csr_bodies(n: int) -> list[bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    bodies = []
    for i in range(n):
        key = ec.generate_private_key(ec.SECP256R1())
        name = f"bench-{i}.example"
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256())
        )
        der = csr.public_bytes(serialization.Encoding.DER)
        body = {
            "profileId": "privatessl-tls-server",
            "requiredFormat": {"format": "X509"},
            "csr": base64.b64encode(der).decode(),
        }
        bodies.append(json.dumps(body).encode())
    return bodies


def _client_context(demo: dict, tmp: Path) -> ssl.SSLContext:
    p12 = Path(demo["cagw"]["p12"]).read_bytes()
    key, cert, chain = pkcs12.load_key_and_certificates(p12, demo["cagw"]["p12_password"].encode())
    assert key is not None and cert is not None
    cert_file, key_file = tmp / "client.pem", tmp / "client.key"
    cert_file.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in [cert, *chain]))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.create_default_context(cafile=demo["tls_ca_pem"])
    context.load_cert_chain(str(cert_file), str(key_file))
    return context


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


class Load:
    def __init__(self, host: str, port: int, context: ssl.SSLContext) -> None:
        self.host, self.port, self.context = host, port, context
        self.latencies: list[float] = []
        self.errors = 0
        self.recording = False
        self.stop = False
        self.server_cpu = 0.0

    async def connection(self, requests: list[bytes], offset: int) -> None:
        reader, writer = await asyncio.open_connection(
            self.host, self.port, ssl=self.context, server_hostname="localhost"
        )
        i = offset
        try:
            while not self.stop:
                started = time.perf_counter()
                writer.write(requests[i % len(requests)])
                i += 1
                status = await _read_response(reader)
                if self.recording:
                    if status == 200:
                        self.latencies.append(time.perf_counter() - started)
                    else:
                        self.errors += 1
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def run(
        self,
        requests: list[bytes],
        connections: int,
        server_pids: list[int] = (),  # type: ignore[assignment]
    ) -> tuple[float, list[float], int]:
        tasks = [asyncio.create_task(self.connection(requests, i * 7)) for i in range(connections)]
        await asyncio.sleep(WARMUP_SECONDS)
        self.recording = True
        cpu_before = _cpu_seconds(server_pids)
        started = time.perf_counter()
        await asyncio.sleep(MEASURE_SECONDS)
        self.recording = False
        elapsed = time.perf_counter() - started
        self.server_cpu = _cpu_seconds(server_pids) - cpu_before
        self.stop = True
        await asyncio.gather(*tasks, return_exceptions=True)
        return len(self.latencies) / elapsed, sorted(self.latencies), self.errors


def _post(path: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        f"Accept: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def _percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(p * len(values)))]


async def _wait_ready(url_port: int, context: ssl.SSLContext, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", url_port, ssl=context, server_hostname="localhost"
            )
            writer.write(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            status = await _read_response(reader)
            writer.close()
            if status == 200:
                return
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        await asyncio.sleep(0.3)
    raise RuntimeError("ceg serve did not become ready")


async def run(report: Report) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="ceg-bench-api-"))
    data = tmp / "data"
    http_port, https_port = _free_port(), _free_port()
    env = {**os.environ, "CEG_DATA_DIR": str(data)}
    ceg = [sys.executable, "-m", "gateway"]
    server = None
    try:
        init = await asyncio.create_subprocess_exec(
            *ceg, "init", "--demo", "--data-dir", str(data), "--http-port", str(http_port),
            "--https-port", str(https_port), env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await init.communicate()
        if init.returncode != 0:
            raise RuntimeError(f"ceg init failed: {err.decode()[-500:]}")
        demo = json.loads((data / "demo.json").read_text())
        # Access logging off for the measurement: it is configuration, not the API's cost.
        config = data / "ceg.toml"
        config.write_text(config.read_text().replace('level = "INFO"', 'level = "WARNING"'))
        server = await asyncio.create_subprocess_exec(
            *ceg, "serve", "--data-dir", str(data), "--workers", str(WORKERS), env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        context = _client_context(demo, tmp)
        await _wait_ready(https_port, context)
        issuing = demo["cas"]["issuing"]
        path = f"/cagw/v1/certificate-authorities/{issuing}/enrollments"
        requests = [_post(path, body) for body in await asyncio.to_thread(_csr_bodies, DISTINCT_CSRS)]

        load = Load("127.0.0.1", https_port, context)
        rate, latencies, errors = await load.run(requests, CONNECTIONS, _process_tree(server.pid))
        p50, p99 = _percentile(latencies, 0.50), _percentile(latencies, 0.99)
        report.add(NAME, f"enrollments/s ({WORKERS} workers, {CONNECTIONS} mTLS keep-alive conns)", f"{rate:,.0f}",
                   f"{rate / TARGET_PER_SECOND:.2f}x of the 1,000/s target; {errors} errors")  # fmt: skip
        report.add(NAME, "enrollment latency p50", f"{p50 * 1000:.1f} ms")
        report.add(NAME, "enrollment latency p99", f"{p99 * 1000:.1f} ms")
        if latencies:
            report.add(NAME, "enrollment latency mean", f"{statistics.fmean(latencies) * 1000:.1f} ms")
            cost = load.server_cpu / len(latencies)
            report.add(NAME, "server CPU per enrollment (all workers)", f"{cost * 1000:.2f} ms",
                       f"{load.server_cpu / MEASURE_SECONDS:.2f} cores busy of {os.cpu_count()}")  # fmt: skip
            capacity = WORKERS / cost
            report.add(NAME, f"capacity of {WORKERS} dedicated cores at that cost", f"{capacity:,.0f}/s",
                       f"{capacity / TARGET_PER_SECOND:.2f}x of the target")  # fmt: skip

        probe = [b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"]
        ceiling, _, _ = await Load("127.0.0.1", https_port, context).run(probe, CONNECTIONS)
        report.add(NAME, "GET /healthz/s on the same mTLS connections", f"{ceiling:,.0f}",
                   f"enrollments reach {rate / ceiling:.2f}x of this HTTP+TLS ceiling")  # fmt: skip
        metrics = await _scrape(https_port, context)
        issued = sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("ceg_issuances_total{") and 'outcome="issued"' in line
        )
        report.add(NAME, "issuances counted by /metrics (both workers)", f"{issued:,.0f}")
    finally:
        if server is not None and server.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(server.wait(), 20)
            except TimeoutError:
                os.killpg(server.pid, signal.SIGKILL)
                await server.wait()
        shutil.rmtree(tmp, ignore_errors=True)


async def _scrape(port: int, context: ssl.SSLContext) -> str:
    await asyncio.sleep(1.5)  # let each worker publish its latest snapshot
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname="localhost"
    )
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    raw = await reader.read()
    writer.close()
    return raw.split(b"\r\n\r\n", 1)[1].decode(errors="replace")
