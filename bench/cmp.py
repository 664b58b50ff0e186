"""CMP ir transactions per second: ceg against OpenSSL's built-in CMP mock server, with
the same client on both sides.

Each transaction is a MAC-protected ir -> ip, certConf -> pkiConf (the full RFC 4210
exchange, two round trips). The mock (`openssl cmp -port ...`) answers every request
with one fixed certificate, so the client enrolls the mock certificate's own key, and
uses that same key against ceg (which issues, stores and audits a new certificate every
time).

Figures:
- `openssl cmp` as the client, one process per transaction, sequential and 4 at a time;
  plus the client alone (`-use_mock_srv`, no network) to show how much of each side is
  the client's own process start-up.
- An in-process async client (tests/support/cmp_client.py over aiohttp, keep-alive),
  sequential and 16 at a time, against both servers.
Load stays on 127.0.0.1 and every loop is bounded.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from bench.report import Report
from ca_core.keys.file import FileKeyStore, generate_private_key
from ca_core.model import KeyAlgorithm
from ca_core.services import open_services
from protocols.cmp import frontend
from tests.support import cmp_client
from tests.support.gateway import free_port, start_gateway

NAME = "cmp"
CEG_REF, CEG_SECRET = "bench", "bench-secret"
MOCK_REF, MOCK_SECRET = "mock", "mock-secret"
OPENSSL_SEQUENTIAL = 30
OPENSSL_CONCURRENT = (4, 15)  # processes at a time, transactions each
INPROC = ((1, 100), (16, 25))  # concurrency, transactions per worker


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

        services = await open_services(
            f"sqlite+aiosqlite:///{tmp}/ceg.db", FileKeyStore(tmp / "keys", b"bench"), "http://127.0.0.1"
        )
        live, runner = await start_gateway(services, tmp, {"cmp": frontend})
        mock = None
        try:
            await live.bindings.put("cmp", live.issuing)
            await services.credentials.create_shared_secret(
                CEG_REF, {"protocol": "cmp", "ca": live.issuing}, secret=CEG_SECRET
            )
            mock_port = free_port()
            mock = await _start_mock(mock_port, mock_cert, tmp)
            ceg = Target("ceg", live.http.rsplit(":", 1)[1], ".well-known/cmp/p/issuing", CEG_REF, CEG_SECRET)
            openssl_mock = Target("openssl-mock", str(mock_port), "pkix/", MOCK_REF, MOCK_SECRET)
            await _openssl_client(report, tmp, key_pem, mock_cert, ceg, openssl_mock)
            await _inprocess_client(report, key, ceg, openssl_mock)
        finally:
            if mock is not None and mock.returncode is None:
                mock.terminate()
                await mock.wait()
            await runner.cleanup()
            await services.close()


class Target:
    def __init__(self, name: str, port: str, path: str, ref: str, secret: str) -> None:
        self.name, self.port, self.path, self.ref, self.secret = name, port, path, ref, secret

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{self.path}"


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


async def _start_mock(port: int, cert: Path, tmp: Path) -> asyncio.subprocess.Process:
    mock = await asyncio.create_subprocess_exec(
        "openssl",
        "cmp",
        "-config",
        "",
        "-port",
        str(port),
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
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return mock
        except OSError:
            await asyncio.sleep(0.05)
    raise RuntimeError("the OpenSSL mock server did not start")


async def _openssl_ir(tmp: Path, key: Path, target: Target | None, out: str, mock_cert: Path) -> None:
    if target is None:  # the client alone: OpenSSL's in-process mock, no network
        where = [
            "-use_mock_srv",
            "-srv_ref",
            MOCK_REF,
            "-srv_secret",
            f"pass:{MOCK_SECRET}",
            "-rsp_cert",
            str(mock_cert),
        ]
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
        raise RuntimeError(
            f"openssl cmp against {target.name if target else 'itself'} failed: {err.decode()[-300:]}"
        )


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
    rates: dict[str, float] = {}
    await _openssl_ir(tmp, key, ceg, "warm.pem", mock_cert)  # responder key, caches
    for target in (ceg, mock):
        rate = await _timed(
            1, OPENSSL_SEQUENTIAL, lambda i, t=target: _openssl_ir(tmp, key, t, f"{t.name}.pem", mock_cert)
        )
        rates[target.name] = rate
        report.add(NAME, f"openssl cmp -> {target.name}, sequential", f"{rate:.1f} tx/s")
    report.add(
        NAME,
        "ratio ceg / openssl-mock (openssl cmp, sequential)",
        f"{rates['ceg'] / rates['openssl-mock']:.2f}",
    )
    workers, each = OPENSSL_CONCURRENT
    for target in (ceg, mock):
        rate = await _timed(
            workers, each, lambda i, t=target: _openssl_ir(tmp, key, t, f"{t.name}-{i}.pem", mock_cert)
        )
        rates[f"{target.name}-c"] = rate
        report.add(NAME, f"openssl cmp -> {target.name}, {workers} at a time", f"{rate:.1f} tx/s")
    report.add(
        NAME,
        f"ratio ceg / openssl-mock (openssl cmp, {workers} at a time)",
        f"{rates['ceg-c'] / rates['openssl-mock-c']:.2f}",
    )
    alone = await _timed(1, OPENSSL_SEQUENTIAL, lambda i: _openssl_ir(tmp, key, None, "alone.pem", mock_cert))
    report.add(
        NAME, "openssl cmp alone (-use_mock_srv, no network)", f"{alone:.1f} tx/s", "the client's own ceiling"
    )


async def _inprocess_client(report: Report, key: object, ceg: Target, mock: Target) -> None:
    request = cmp_client.cert_request(key, "CN=bench device")  # type: ignore[arg-type]
    # ceg keeps connections alive; the OpenSSL mock closes each one after its answer
    # (HTTP/1.0), so its client session opens a connection per message.
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as keep_alive,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64, force_close=True)) as closing,
    ):

        def sender(target: Target) -> Callable[[bytes], Awaitable[bytes]]:
            http = keep_alive if target is ceg else closing

            async def send(data: bytes) -> bytes:
                headers = {"Content-Type": "application/pkixcmp"}
                async with http.post(target.url, data=data, headers=headers) as response:
                    return await response.read()

            return send

        async def transaction(target: Target) -> None:
            credential = cmp_client.MacCredential(target.ref, target.secret.encode())
            session = cmp_client.Session(credential, sender(target))
            answer = await session.exchange(cmp_client.CertReqBody("ir", (request,)))
            certificate = cmp_client.issued_certificate(answer)
            done = await session.exchange(cmp_client.cert_conf(certificate))
            if done.body.kind != "pkiconf":
                raise RuntimeError(f"{target.name} answered certConf with {done.body.kind}")

        for workers, each in INPROC:
            rates = {}
            for target in (ceg, mock):
                rates[target.name] = await _timed(workers, each, lambda i, t=target: transaction(t))
                report.add(
                    NAME,
                    f"in-process client -> {target.name}, {workers} at a time",
                    f"{rates[target.name]:.1f} tx/s",
                )
            report.add(
                NAME,
                f"ratio ceg / openssl-mock (in-process client, {workers} at a time)",
                f"{rates['ceg'] / rates['openssl-mock']:.2f}",
            )
