"""Complete ACME orders per second: ceg against Debian's Pebble, with the same driver.

An order is the whole RFC 8555 flow: newOrder -> fetch the authorization -> answer
http-01 (served by this process) -> poll until valid -> finalize -> poll until valid ->
download the certificate. Accounts, CSRs and keys are made before the clock starts, so
what is timed is the servers' work plus the driver's JWS signing, the same for both.

Both servers run as their own processes on loopback, over HTTPS, validating through
pebble-challtestsrv as DNS (every name answers 127.0.0.1) against this process's http-01
responder. Pebble runs with its sleeps off (PEBBLE_VA_NOSLEEP=1), no authorization reuse
(PEBBLE_AUTHZREUSE=0) and no rejected nonces (PEBBLE_WFE_NONCEREJECT=0); ceg's binding
has authorization reuse off too. Besides orders per second, the CPU time the server
processes spent per order is printed: it does not depend on what else the machine runs.

ceg runs in two shapes: one worker process, and the default of `ceg serve` (one worker
per core, all on the one SQLite file), each against the same Pebble figure; Pebble, a
single Go process, uses every core. Debian's Pebble 2.4 now and then deadlocks (every
handler stuck): a run in which no request is answered for STALL_SECONDS is abandoned and
Pebble restarted, up to PEBBLE_ATTEMPTS times; the figures say how many runs it took.

Environment: CEG_BENCH_ACME_ORDERS (default 1500), CEG_BENCH_ACME_CONCURRENCY (16),
CEG_BENCH_ACME_WORKERS (comma-separated ceg worker counts, "default" being what `ceg
serve` picks; default "1,default"), CEG_BENCH_ACME_ONLY (ceg or pebble: run one side
only), CEG_BENCH_ACME_PYARGS (options for the ceg server's interpreter, e.g. "-m cProfile
-o ceg.prof"), CEG_BENCH_ACME_KEEP (keep the work directory with the servers' logs),
CEG_BENCH_ACME_ROUNDS (3: rounds of every side, interleaved; each side's best is reported).
A round of 1500 orders lasts about five seconds: long enough that a burst of the shared
machine's other load does not decide it, and three rounds give both sides a quiet one.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ipaddress
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from bench.report import Report
from tests.support import pki

ORDERS = int(os.environ.get("CEG_BENCH_ACME_ORDERS", "1500"))
# Debian's Pebble 2.4 deadlocks (every handler stuck) within a few hundred orders at 32
# or more concurrent clients, so both servers are driven by 16.
CONCURRENCY = int(os.environ.get("CEG_BENCH_ACME_CONCURRENCY", "16"))
CEG_WORKERS = [
    w.strip() for w in os.environ.get("CEG_BENCH_ACME_WORKERS", "1,default").split(",") if w.strip()
]
WARMUP = 20
ROUNDS = int(os.environ.get("CEG_BENCH_ACME_ROUNDS", "3"))
POLL_SECONDS = 0.02
STALL_SECONDS = 10.0
PEBBLE_ATTEMPTS = 3


class Stalled(RuntimeError):
    """No request was answered for STALL_SECONDS."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --- the driver ----------------------------------------------------------------------------------


@dataclass
class Account:
    key: ec.EllipticCurvePrivateKey
    jwk: dict[str, str]
    thumbprint: str
    kid: str = ""


def new_account_key() -> Account:
    key = ec.generate_private_key(ec.SECP256R1())
    numbers = key.public_key().public_numbers()
    jwk = {
        "crv": "P-256",
        "kty": "EC",
        "x": b64(numbers.x.to_bytes(32, "big")),
        "y": b64(numbers.y.to_bytes(32, "big")),
    }
    thumb = b64(hashlib.sha256(json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode()).digest())
    return Account(key, jwk, thumb)


@dataclass
class Driver:
    """A small asynchronous ACME client: just what a complete order needs."""

    directory_url: str
    ssl_context: ssl.SSLContext
    tokens: dict[str, str]
    session: aiohttp.ClientSession = field(init=False)
    directory: dict[str, Any] = field(init=False)
    nonces: list[str] = field(default_factory=list)
    requests: int = 0
    answered: int = 0  # responses read: the watchdog's sign of life

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(ssl=self.ssl_context, limit=CONCURRENCY * 2)
        self.session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60))
        async with self.session.get(self.directory_url) as response:
            self.directory = await response.json()

    async def close(self) -> None:
        await self.session.close()

    async def _nonce(self) -> str:
        if self.nonces:
            return self.nonces.pop()
        async with self.session.head(self.directory["newNonce"]) as response:
            return response.headers["Replay-Nonce"]

    async def post(self, account: Account, url: str, payload: Any) -> tuple[int, dict[str, str], bytes]:
        for _ in range(5):
            header: dict[str, Any] = {"alg": "ES256", "nonce": await self._nonce(), "url": url}
            if account.kid:
                header["kid"] = account.kid
            else:
                header["jwk"] = account.jwk
            protected = b64(json.dumps(header).encode())
            body = "" if payload is None else b64(json.dumps(payload).encode())
            r, s = decode_dss_signature(
                account.key.sign(f"{protected}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
            )
            jws = json.dumps(
                {
                    "protected": protected,
                    "payload": body,
                    "signature": b64(r.to_bytes(32, "big") + s.to_bytes(32, "big")),
                }
            )
            self.requests += 1
            async with self.session.post(
                url, data=jws, headers={"Content-Type": "application/jose+json"}
            ) as response:
                data = await response.read()
                self.answered += 1
                if "Replay-Nonce" in response.headers:
                    self.nonces.append(response.headers["Replay-Nonce"])
                if response.status == 400 and b"badNonce" in data:
                    continue
                return response.status, dict(response.headers), data
        raise RuntimeError(f"too many badNonce answers from {url}")

    async def register(self) -> Account:
        account = new_account_key()
        status, headers, body = await self.post(
            account, self.directory["newAccount"], {"termsOfServiceAgreed": True}
        )
        if status not in (200, 201):
            raise RuntimeError(f"newAccount: {status} {body[:300]!r}")
        account.kid = headers["Location"]
        return account

    async def poll(self, account: Account, url: str, done: tuple[str, ...]) -> dict[str, Any]:
        while True:
            status, _, body = await self.post(account, url, None)
            doc = json.loads(body)
            if status != 200:
                raise RuntimeError(f"poll {url}: {status} {doc}")
            if doc["status"] in done:
                return doc
            if doc["status"] in ("invalid", "deactivated", "expired", "revoked"):
                raise RuntimeError(f"{url} became {doc['status']}: {doc}")
            await asyncio.sleep(POLL_SECONDS)

    async def complete_order(self, account: Account, name: str, csr_der: bytes) -> bytes:
        status, headers, body = await self.post(
            account, self.directory["newOrder"], {"identifiers": [{"type": "dns", "value": name}]}
        )
        if status != 201:
            raise RuntimeError(f"newOrder: {status} {body[:300]!r}")
        order, order_url = json.loads(body), headers["Location"]
        for authz_url in order["authorizations"]:
            _, _, body = await self.post(account, authz_url, None)
            authz = json.loads(body)
            challenge = next(c for c in authz["challenges"] if c["type"] == "http-01")
            self.tokens[challenge["token"]] = f"{challenge['token']}.{account.thumbprint}"
            _, _, body = await self.post(account, challenge["url"], {})
            if json.loads(body).get("status") != "valid":
                await self.poll(account, authz_url, ("valid",))
        status, _, body = await self.post(account, order["finalize"], {"csr": b64(csr_der)})
        if status != 200:
            raise RuntimeError(f"finalize: {status} {body[:300]!r}")
        order = json.loads(body)
        if order["status"] != "valid":
            order = await self.poll(account, order_url, ("valid",))
        status, _, pem = await self.post(account, order["certificate"], None)
        if status != 200 or b"BEGIN CERTIFICATE" not in pem:
            raise RuntimeError(f"certificate download: {status}")
        return pem


def make_csrs(count: int, prefix: str) -> list[tuple[str, bytes]]:
    key = ec.generate_private_key(ec.SECP256R1())  # one certificate key for all: CSRs are not what is timed
    out = []
    for n in range(count):
        name = f"{prefix}{n}.bench.test"
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256())
        )
        out.append((name, csr.public_bytes(serialization.Encoding.DER)))
    return out


def cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU time (user, system) of a process and all its descendants, from /proc."""
    parents: dict[int, int] = {}
    times: dict[int, tuple[float, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        tick = os.sysconf("SC_CLK_TCK")
        times[int(entry.name)] = (int(fields[11]) / tick, int(fields[12]) / tick)
    user = system = 0.0
    todo = [pid]
    while todo:
        current = todo.pop()
        u, s = times.get(current, (0.0, 0.0))
        user, system = user + u, system + s
        todo.extend(child for child, parent in parents.items() if parent == current)
    return user, system


@dataclass(frozen=True)
class Figures:
    rate: float  # complete orders per second
    orders: int
    requests: int
    cpu_ms: float  # server CPU per order
    sys_ms: float  # the part of it spent in the kernel
    driver_cpu_ms: float  # this process's CPU per order (client and http-01 responder)


async def watched(work: Any, driver: Driver, what: str) -> Any:
    """Await `work`, abandoning it (Stalled) when the server stops answering."""
    task = asyncio.ensure_future(work)
    last, since = driver.answered, time.monotonic()
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=1.0)
            if done:
                return task.result()
            if driver.answered != last:
                last, since = driver.answered, time.monotonic()
            elif time.monotonic() - since > STALL_SECONDS:
                raise Stalled(f"{what}: no request answered for {STALL_SECONDS:g} s")
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def drive(
    directory_url: str, cafile: Path, tokens: dict[str, str], label: str, server_pid: int
) -> Figures:
    """Figures for ORDERS complete orders at CONCURRENCY."""
    context = ssl.create_default_context(cafile=str(cafile))
    driver = Driver(directory_url, context, tokens)
    await driver.start()
    try:
        return await watched(_drive(driver, label, server_pid), driver, label)
    finally:
        await driver.close()


async def _drive(driver: Driver, label: str, server_pid: int) -> Figures:
    """Accounts and a warm-up, then ORDERS orders timed."""
    accounts = [await driver.register() for _ in range(CONCURRENCY)]
    warm = make_csrs(WARMUP, f"warm-{label}-")
    await asyncio.gather(
        *(driver.complete_order(accounts[i % len(accounts)], n, c) for i, (n, c) in enumerate(warm))
    )
    csrs = make_csrs(ORDERS, f"{label}-")
    queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    for item in csrs:
        queue.put_nowait(item)

    async def worker(account: Account) -> None:
        while not queue.empty():
            name, csr = queue.get_nowait()
            await driver.complete_order(account, name, csr)

    driver.requests = 0
    cpu_before = cpu_seconds(server_pid)
    driver_before = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(worker(a) for a in accounts))
    elapsed = time.perf_counter() - started
    cpu_after = cpu_seconds(server_pid)
    user, system = (after - before for after, before in zip(cpu_after, cpu_before, strict=True))
    driver_cpu = time.process_time() - driver_before
    return Figures(
        ORDERS / elapsed,
        ORDERS,
        driver.requests,
        (user + system) * 1000 / ORDERS,
        system * 1000 / ORDERS,
        driver_cpu * 1000 / ORDERS,
    )


async def http01_responder(port: int, tokens: dict[str, str]) -> web.AppRunner:
    async def serve(request: web.Request) -> web.Response:
        value = tokens.get(request.match_info["token"])
        return web.Response(text=value) if value else web.Response(status=404)

    app = web.Application()
    app.router.add_get("/.well-known/acme-challenge/{token}", serve)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


# --- the servers ----------------------------------------------------------------------------------


@contextmanager
def process(
    args: list[str], env: dict[str, str] | None = None, log: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(args, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        if log:
            out.close()  # type: ignore[union-attr]


def wait_for_port(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def self_signed(work: Path) -> tuple[Path, Path]:
    """Pebble's TLS certificate and key, for 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    der = pki.self_signed(key, "pebble bench", [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    cert_path, key_path = work / "pebble.pem", work / "pebble.key"
    cert_path.write_bytes(pki.pem(der))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def report_runs(report: Report, runs: dict[str, dict[int, Figures]]) -> None:
    """Each side's best round (the one least disturbed by the rest of the machine), all
    rounds in the note, and ceg's ratios to Pebble: best to best, and each round's."""
    for side, by_round in runs.items():
        figures = list(by_round.values())
        if not figures:
            continue
        best = max(figures, key=lambda f: f.rate)
        is_ceg = side != "pebble"
        name = f"ceg {_workers(side)}w" if is_ceg else "pebble"
        setup = f", {_workers(side)} worker process(es)" if is_ceg else ""
        setup += (", the default" if side == "default" else "") + (", SQLite" if is_ceg else "")
        rounds = ", ".join(f"{f.rate:.0f}" for f in figures)
        report.add(
            "acme",
            f"{name} orders/s",
            f"{best.rate:.1f}",
            f"best of {len(figures)} rounds ({rounds}); {best.orders} orders, "
            f"{best.requests / best.orders:.1f} requests each, {CONCURRENCY} clients{setup}",
        )
        report.add(
            "acme",
            f"{name} server CPU ms/order",
            f"{best.cpu_ms:.2f}",
            f"{best.sys_ms:.2f} in the kernel" + ("; all worker processes" if is_ceg else ""),
        )
        report.add(
            "acme",
            f"driver CPU ms/order vs {name}",
            f"{best.driver_cpu_ms:.1f}",
            "client and http-01 responder",
        )
    pebble = runs.get("pebble") or {}
    if not pebble:
        return
    pebble_best = max(f.rate for f in pebble.values())
    for side, by_round in runs.items():
        if side == "pebble" or not by_round:
            continue
        paired = [f.rate / pebble[r].rate for r, f in by_round.items() if r in pebble]
        report.add(
            "acme",
            f"ceg {_shape(side)} / pebble",
            f"{max(f.rate for f in by_round.values()) / pebble_best:.2f}",
            "best to best; round by round " + ", ".join(f"{r:.2f}" for r in paired),
        )


def ceg(*args: str, data: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", *args, "--data-dir", str(data)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        raise RuntimeError(f"ceg {' '.join(args)}: {result.stdout}{result.stderr}")
    return result.stdout


async def run(report: Report) -> None:
    for tool in ("pebble", "pebble-challtestsrv"):
        if shutil.which(tool) is None:
            report.add("acme", "error", f"{tool} is not installed", "make system-deps")
            return
    work = Path(tempfile.mkdtemp(prefix="ceg-bench-acme-"))
    tokens: dict[str, str] = {}
    http01, dns_port, dns_mgmt = free_port(), free_port(), free_port()
    responder = await http01_responder(http01, tokens)
    challtest = [
        "pebble-challtestsrv", "-dns01", f"127.0.0.1:{dns_port}", "-management", f"127.0.0.1:{dns_mgmt}",
        "-http01", "", "-https01", "", "-tlsalpn01", "", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
    ]  # fmt: skip
    try:
        with process(challtest):
            wait_for_port(dns_mgmt)
            only = os.environ.get("CEG_BENCH_ACME_ONLY", "")
            sides = ([] if only == "pebble" else CEG_WORKERS) + ([] if only == "ceg" else ["pebble"])
            runs: dict[str, dict[int, Figures]] = {side: {} for side in sides}
            for round_ in range(1, ROUNDS + 1):
                for side in sides:  # interleaved, so a busy spell on the machine hits both
                    where = work / f"{side}-{round_}"
                    got = (
                        await bench_pebble(where, http01, dns_port, tokens)
                        if side == "pebble"
                        else await bench_ceg(where, side, http01, dns_port, tokens)
                    )
                    name = "pebble" if side == "pebble" else f"ceg {_shape(side)}"
                    if isinstance(got, str):
                        report.add("acme", f"{name} round {round_}", "error", got)
                        continue
                    print(f"  round {round_} {name}: {got.rate:.1f} orders/s", flush=True)
                    runs[side][round_] = got
        report_runs(report, runs)
    finally:
        await responder.cleanup()
        if not os.environ.get("CEG_BENCH_ACME_KEEP"):
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"  kept {work}")


def _workers(shape: str) -> int:
    # "default" is what `ceg serve` does without --workers and with server.workers = 0.
    return (os.cpu_count() or 1) if shape == "default" else int(shape)


def _shape(shape: str) -> str:
    return f"{_workers(shape)}w" + (", the default" if shape == "default" else "")


async def bench_ceg(
    data: Path, workers: str, http01: int, dns_port: int, tokens: dict[str, str]
) -> Figures | str:
    """One run against a fresh ceg of `workers` worker processes: its figures, or why not."""
    http_port, https_port = free_port(), free_port()
    ceg("init", "--demo", "--http-port", str(http_port), "--https-port", str(https_port), data=data)
    ceg(
        "gateway", "add", "acme", "issuing",
        "--set", f"http01_port={http01}",
        "--set", f'dns_resolver="127.0.0.1:{dns_port}"',
        "--set", "authz_reuse_seconds=0",
        data=data,
    )  # fmt: skip
    count = _workers(workers)
    flags = [] if workers == "default" else ["--workers", workers]
    with process(
        [
            sys.executable,
            *os.environ.get("CEG_BENCH_ACME_PYARGS", "").split(),
            "-m",
            "gateway",
            "serve",
            "--data-dir",
            str(data),
            *flags,
        ],
        log=data / "serve.log",
    ) as server:
        wait_for_port(https_port)
        await asyncio.sleep(1.0)  # every worker up
        try:
            return await drive(
                f"https://127.0.0.1:{https_port}/acme/issuing/directory",
                data / "root-ca.pem",
                tokens,
                f"ceg{count}-{data.name}",
                server.pid,
            )
        except Stalled as exc:
            return str(exc)


async def bench_pebble(work: Path, http01: int, dns_port: int, tokens: dict[str, str]) -> Figures | str:
    """One run against a fresh Pebble (restarted when it deadlocks): its figures, or why not."""
    for attempt in range(1, PEBBLE_ATTEMPTS + 1):
        try:
            return await _pebble_run(work / f"run-{attempt}", http01, dns_port, tokens, attempt)
        except Stalled as exc:
            print(f"  pebble run {attempt} stalled ({exc}); restarting Pebble", flush=True)
    return f"Pebble deadlocked in all {PEBBLE_ATTEMPTS} runs"


async def _pebble_run(
    work: Path, http01: int, dns_port: int, tokens: dict[str, str], attempt: int
) -> Figures:
    work.mkdir(parents=True, exist_ok=True)
    cert, key = self_signed(work)
    port, management = free_port(), free_port()
    config = {
        "pebble": {
            "listenAddress": f"127.0.0.1:{port}",
            "managementListenAddress": f"127.0.0.1:{management}",
            "certificate": str(cert),
            "privateKey": str(key),
            "httpPort": http01,
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
        }
    }
    (work / "pebble.json").write_text(json.dumps(config))
    env = {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_AUTHZREUSE": "0", "PEBBLE_WFE_NONCEREJECT": "0"}
    with process(
        ["pebble", "-config", str(work / "pebble.json"), "-dnsserver", f"127.0.0.1:{dns_port}"],
        env=env,
        log=work / "pebble.log",
    ) as server:
        wait_for_port(port)
        return await drive(f"https://127.0.0.1:{port}/dir", cert, tokens, f"pebble{attempt}", server.pid)
