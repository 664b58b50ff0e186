"""PKCSReq enrolments per second: ceg's SCEP front-end against Debian's `scepserver`.

Both servers get the same client load on loopback: CONCURRENCY connections POSTing
ENROLMENTS distinct PKCSReqs (RSA-2048 requester keys, AES-256-CBC envelope, SHA-256
signature, static challenge), prepared before the clock starts so the client's own
RSA work is not measured. A reply counts when it is a SUCCESS CertRep.

- ceg: `ceg init --demo` in a temp dir (EC P-256 issuing CA, RSA-2048 RA, SQLite with
  synchronous=FULL, file keys), SCEP binding with a static challenge, `ceg serve` with
  one worker per core.
- scepserver: its own depot in a temp dir, CA key RSA-2048 (its default is 4096, which
  would only slow it down), `-challenge`.

Each server runs ROUNDS times, alternating, and the best round counts (the machine is
shared). Prints figures; asserts nothing about timing. Only SUCCESS replies count:
scepserver's file depot keeps its serial counter in a file that concurrent requests
race on, so some of its replies are FAILURE ("failed to sign CSR ... depot/serial: file
exists", "could not convert to serial number" in its log); ceg should fail none.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bench.report import Report
from protocols._shared import cms
from protocols.scep import codec
from protocols.scep.codec import MessageType, PkiStatus
from tests.support.gateway import free_port
from tests.support.pki import self_signed
from tests.support.scep_peer import scep_csr

ENROLMENTS = 600
WARMUP = 24
CONCURRENCY = 16
ROUNDS = int(os.environ.get("ROUNDS", "2"))
KEYS = 24
SECRET = "bench-static-secret"


@dataclass
class Requester:
    key: rsa.RSAPrivateKey
    certificate: bytes


def _requesters(count: int) -> list[Requester]:
    """RSA-2048 devices with the throwaway self-signed certificates they sign with."""
    out = []
    for i in range(count):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        out.append(Requester(key, self_signed(key, f"bench signer {i}")))
    return out


def _pkcsreqs(recipient: bytes, requesters: Sequence[Requester], count: int, tag: str) -> list[bytes]:
    """`count` distinct PKCSReqs (own CN and transactionID each) encrypted to `recipient`."""
    bodies = []
    for i in range(count):
        who = requesters[i % len(requesters)]
        csr = scep_csr(who.key, f"bench-{tag}-{i}.example", SECRET)
        bodies.append(
            codec.encode_pki_request(
                MessageType.PKCS_REQ,
                f"{tag}-{i}-{os.urandom(4).hex()}",
                os.urandom(16),
                csr,
                recipient,
                cms.key_signer(who.certificate, who.key, "sha256"),
                cms.AES_256_CBC,
                os.urandom,
                certificates=[who.certificate],
            )
        )
    return bodies


async def _recipient(session: aiohttp.ClientSession, url: str) -> bytes:
    """The certificate to encrypt to: the RSA key-encipherment certificate of GetCACert."""
    async with session.get(url, params={"operation": "GetCACert"}) as resp:
        body = await resp.read()
        multiple = resp.content_type == codec.CONTENT_TYPE_CA_RA_CERT
    rsa_certs = [
        x509.load_der_x509_certificate(der)
        for der in (cms.certificates_of(body) if multiple else [body])
        if isinstance(x509.load_der_x509_certificate(der).public_key(), rsa.RSAPublicKey)
    ]

    def enciphers(cert: x509.Certificate) -> bool:
        try:
            return cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_encipherment
        except x509.ExtensionNotFound:
            return True

    # An RA marked for key encipherment if there is one (ceg), else the RSA CA (scepserver).
    for cert in sorted(rsa_certs, key=lambda c: not enciphers(c)):
        return cert.public_bytes(serialization.Encoding.DER)
    raise RuntimeError(f"{url}: no RSA encryption certificate in GetCACert")


async def _wait_ready(url: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url, params={"operation": "GetCACaps"}) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


@dataclass
class Run:
    seconds: float
    ok: int
    failed: int

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


async def _load(url: str, bodies: list[bytes]) -> Run:
    queue = list(reversed(bodies))
    ok = failed = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal ok, failed
        while queue:
            body = queue.pop()
            async with session.post(url, params={"operation": "PKIOperation"}, data=body) as resp:
                reply = await resp.read()
            try:
                success = (
                    resp.status == 200
                    and codec.decode_cert_rep(reply, verify=False).status is PkiStatus.SUCCESS
                )
            except codec.MalformedMessage:
                success = False
            if success:
                ok += 1
            else:
                failed += 1

    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(CONCURRENCY)))
        return Run(time.perf_counter() - started, ok, failed)


async def _measure(name: str, url: str, requesters: list[Requester], tag: str) -> Run:
    async with aiohttp.ClientSession() as session:
        recipient = await _recipient(session, url)
    bodies = await asyncio.to_thread(_pkcsreqs, recipient, requesters, WARMUP + ENROLMENTS, tag)
    await _load(url, bodies[:WARMUP])
    run = await _load(url, bodies[WARMUP:])
    print(f"  {name}: {run.ok} ok, {run.failed} failed in {run.seconds:.2f}s = {run.rate:.0f}/s", flush=True)
    return run


async def _exec(*args: str, cwd: Path | None = None) -> None:
    proc = await asyncio.create_subprocess_exec(
        *args, cwd=cwd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{args[0]} {args[1]} failed: {err.decode()[-500:]}")


async def _start_ceg(work: Path) -> tuple[asyncio.subprocess.Process, str]:
    ceg = str(Path(sys.executable).with_name("ceg"))
    port = free_port()
    data = work / "ceg-data"
    await _exec(
        ceg,
        "init",
        "--demo",
        "--data-dir",
        str(data),
        "--http-port",
        str(port),
        "--https-port",
        str(free_port()),
    )
    await _exec(
        ceg, "gateway", "add", "scep", "issuing", "--data-dir", str(data),
        "--set", "challenge=static", "--set", f"challenge_password={SECRET}",
    )  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        ceg, "serve", "--data-dir", str(data), "--workers", os.environ.get("CEG_BENCH_WORKERS", str(os.cpu_count() or 1)),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/scep/issuing"
    await _wait_ready(url)
    return proc, url


async def _start_scepserver(work: Path) -> tuple[asyncio.subprocess.Process, str]:
    exe = shutil.which("scepserver")
    if exe is None:
        raise RuntimeError("scepserver is not installed (Debian package scep)")
    depot = work / "depot"
    await _exec(exe, "ca", "-init", "-depot", str(depot), "-keySize", "2048")
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        exe, "-depot", str(depot), "-port", str(port), "-challenge", SECRET,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/scep"
    await _wait_ready(url)
    return proc, url


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def run(report: Report) -> None:
    requesters = await asyncio.to_thread(_requesters, KEYS)
    with tempfile.TemporaryDirectory(prefix="ceg-bench-scep-") as tmp:
        work = Path(tmp)
        ceg_proc, ceg_url = await _start_ceg(work)
        scep_proc, scep_url = await _start_scepserver(work)
        try:
            best: dict[str, Run] = {}
            for round_ in range(ROUNDS):
                for name, url in (("ceg", ceg_url), ("scepserver", scep_url)):
                    result = await _measure(name, url, requesters, f"{name}{round_}")
                    if name not in best or result.rate > best[name].rate:
                        best[name] = result
        finally:
            await _stop(ceg_proc)
            await _stop(scep_proc)
    note = f"{ENROLMENTS} PKCSReq, {CONCURRENCY} connections, best of {ROUNDS}"
    for name, result in best.items():
        report.add("scep", f"{name} enrolments/s", f"{result.rate:.0f}", f"{note}; {result.failed} failed")
    ratio = best["ceg"].rate / best["scepserver"].rate if best["scepserver"].rate else float("nan")
    report.add("scep", "ceg / scepserver", f"{ratio:.2f}", "target > 1")
