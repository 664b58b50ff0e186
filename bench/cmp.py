"""CMP ir transactions per second: ceg against OpenSSL's built-in CMP mock server, with
the same client on both sides.

A transaction is a MAC-protected ir -> ip, certConf -> pkiConf (the full RFC 4210
exchange, two round trips). ceg runs as `ceg serve` on a `ceg init --demo` data dir
(SQLite, file keys) and issues, stores and audits a new certificate each time; the mock
(`openssl cmp -port ...`) answers every request with one fixed certificate, so the
client enrolls the mock certificate's own key (and the same key at ceg). Each server is
its own process, and so is each client.

Clients:
- `openssl cmp`, one process per transaction, one at a time and 4 at a time; and the
  client alone (`-use_mock_srv`, no network), which bounds both sides from above.
- The in-process async client (bench/_cmp_load.py: tests/support/cmp_client.py over
  aiohttp, one connection per transaction), 1 and 16 transactions at a time. OpenSSL's
  mock serves one connection at a time, so its transactions queue.
Load stays on 127.0.0.1 and every loop is bounded.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from bench.report import Report
from ca_core.keys.file import generate_private_key
from ca_core.model import KeyAlgorithm
from tests.support.gateway import free_port

NAME = "cmp"
MOCK_REF, MOCK_SECRET = "mock", "mock-secret"
OPENSSL_SEQUENTIAL = 30
OPENSSL_CONCURRENT = (4, 15)  # processes at a time, transactions each
INPROC = ((1, 100), (16, 15))  # transactions at a time, transactions each


@dataclass(frozen=True)
class Target:
    name: str
    port: int
    path: str
    ref: str
    secret: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{self.path}"


async def run(report: Report) -> None:
    if shutil.which("openssl") is None:
        report.add(NAME, "error", "openssl not installed", "")
        return
    with tempfile.TemporaryDirectory(prefix="ceg-bench-cmp-") as tmp_name:
        tmp = Path(tmp_name)
        key = generate_private_key(KeyAlgorithm.EC_P256)
        key_pem = tmp / "client.key"
        key_pem.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        mock_cert = tmp / "mock-cert.pem"
        mock_cert.write_bytes(_self_signed(key).public_bytes(serialization.Encoding.PEM))
        ceg_port = free_port()
        demo = await _ceg_init(tmp / "ceg", ceg_port)
        ceg = Target("ceg", ceg_port, "/".join(demo["url"].split("/")[3:]), demo["reference"], demo["secret"])
        mock = Target("openssl-mock", free_port(), "pkix/", MOCK_REF, MOCK_SECRET)
        processes: list[asyncio.subprocess.Process] = []
        try:
            processes.append(await _ceg_serve(tmp / "ceg", ceg_port, workers=1))
            processes.append(await _start_mock(mock, mock_cert, tmp))
            await _openssl_client(report, tmp, key_pem, mock_cert, ceg, mock)
            await _load_client(report, key_pem, ceg, mock)
            await _stop(processes.pop(0))
            processes.insert(0, await _ceg_serve(tmp / "ceg", ceg_port, workers=2))
            workers, each = INPROC[1]
            rate = await _load(ceg, key_pem, workers, each)
            report.add(NAME, f"in-process client -> ceg --workers 2, {workers} at a time", f"{rate:.1f} tx/s")
        finally:
            for process in processes:
                await _stop(process)


def _self_signed(key: object) -> x509.Certificate:
    name = x509.Name.from_rfc4514_string("CN=bench device")
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())  # type: ignore[attr-defined]
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())  # type: ignore[arg-type]
    )


def _ceg() -> str:
    return str(Path(sys.executable).with_name("ceg"))


async def _ceg_init(data_dir: Path, port: int) -> dict[str, str]:
    proc = await asyncio.create_subprocess_exec(
        _ceg(),
        "init",
        "--data-dir",
        str(data_dir),
        "--demo",
        "--http-port",
        str(port),
        "--https-port",
        str(free_port()),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"ceg init failed: {err.decode()[-500:]}")
    demo: dict[str, dict[str, str]] = json.loads((data_dir / "demo.json").read_text())
    return demo["cmp"]


async def _ceg_serve(data_dir: Path, port: int, workers: int) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        _ceg(),
        "serve",
        "--data-dir",
        str(data_dir),
        "--workers",
        str(workers),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                    if response.status == 200:
                        return proc
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("ceg serve did not come up")


async def _start_mock(target: Target, cert: Path, tmp: Path) -> asyncio.subprocess.Process:
    mock = await asyncio.create_subprocess_exec(
        "openssl",
        "cmp",
        "-config",
        "",
        "-port",
        str(target.port),
        "-srv_ref",
        MOCK_REF,
        "-srv_secret",
        f"pass:{MOCK_SECRET}",
        "-rsp_cert",
        str(cert),
        "-rsp_capubs",
        str(cert),
        cwd=tmp,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", target.port)
            writer.close()
            return mock
        except OSError:
            await asyncio.sleep(0.05)
    raise RuntimeError("the OpenSSL mock server did not start")


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


async def _openssl_ir(tmp: Path, key: Path, target: Target | None, out: str, mock_cert: Path) -> None:
    if target is None:  # the client alone: OpenSSL's in-process mock, no network
        where = ["-use_mock_srv", "-srv_ref", MOCK_REF, "-srv_secret", f"pass:{MOCK_SECRET}"]
        where += ["-rsp_cert", str(mock_cert)]
        ref, secret = MOCK_REF, MOCK_SECRET
    else:
        where = ["-server", f"127.0.0.1:{target.port}", "-path", target.path]
        ref, secret = target.ref, target.secret
    proc = await asyncio.create_subprocess_exec(
        "openssl",
        "cmp",
        "-config",
        "",
        *where,
        "-cmd",
        "ir",
        "-ref",
        ref,
        "-secret",
        f"pass:{secret}",
        "-newkey",
        str(key),
        "-subject",
        "/CN=bench device",
        "-certout",
        out,
        cwd=tmp,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    if proc.returncode != 0:
        who = target.name if target else "itself"
        raise RuntimeError(f"openssl cmp against {who} failed: {err.decode()[-300:]}")


async def _timed(workers: int, per_worker: int, one: Callable[[int], Awaitable[None]]) -> float:
    async def worker(index: int) -> None:
        for _ in range(per_worker):
            await one(index)

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(workers)))
    return workers * per_worker / (time.perf_counter() - started)


async def _openssl_client(
    report: Report, tmp: Path, key: Path, mock_cert: Path, ceg: Target, mock: Target
) -> None:
    await _openssl_ir(tmp, key, ceg, "warm.pem", mock_cert)  # responder credential, caches
    for workers, each, label in (
        (1, OPENSSL_SEQUENTIAL, "one at a time"),
        (*OPENSSL_CONCURRENT, "4 at a time"),
    ):
        rates = {}
        for target in (ceg, mock):

            def one(i: int, t: Target = target) -> Awaitable[None]:
                return _openssl_ir(tmp, key, t, f"{t.name}-{i}.pem", mock_cert)

            rates[target.name] = await _timed(workers, each, one)
            report.add(NAME, f"openssl cmp -> {target.name}, {label}", f"{rates[target.name]:.1f} tx/s")
        ratio = rates["ceg"] / rates["openssl-mock"]
        report.add(NAME, f"ratio ceg / openssl-mock (openssl cmp, {label})", f"{ratio:.2f}")
    alone = await _timed(1, OPENSSL_SEQUENTIAL, lambda i: _openssl_ir(tmp, key, None, "alone.pem", mock_cert))
    report.add(
        NAME, "openssl cmp alone (-use_mock_srv, no network)", f"{alone:.1f} tx/s", "the client's ceiling"
    )


async def _load(target: Target, key_pem: Path, workers: int, each: int) -> float:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench._cmp_load",
        target.url,
        target.ref,
        target.secret,
        str(key_pem),
        str(workers),
        str(each),
        cwd=Path(__file__).parents[1],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 600)
    if proc.returncode != 0:
        raise RuntimeError(f"load client against {target.name} failed: {err.decode()[-500:]}")
    return float(json.loads(out.decode().strip().splitlines()[-1])["rate"])


async def _load_client(report: Report, key_pem: Path, ceg: Target, mock: Target) -> None:
    for workers, each in INPROC:
        rates = {}
        for target in (ceg, mock):
            rates[target.name] = await _load(target, key_pem, workers, each)
            report.add(
                NAME,
                f"in-process client -> {target.name}, {workers} at a time",
                f"{rates[target.name]:.1f} tx/s",
            )
        ratio = rates["ceg"] / rates["openssl-mock"]
        report.add(NAME, f"ratio ceg / openssl-mock (in-process client, {workers} at a time)", f"{ratio:.2f}")
