"""Issuance throughput in-process: certificates per second through IssuanceService.issue().

Each run: a root and an issuing CA of one key type on one key backend, SQLite (as `ceg
init` makes it, WAL and synchronous=FULL), then CONCURRENCY tasks calling issue() in a
loop for SECONDS; every certificate is signed, stored and committed (with its audit entry)
before its call returns. Subscriber CSRs (P-256) are made beforehand and reused, so the
figure is the CA's work: CSR proof-of-possession check, profile, build, sign, store.

Next to each figure: the machine's raw signing rate for the CA key from `openssl speed`
(one core) and the ratio, and for PKCS#11 the ratio to the file backend. Because that
last ratio is mostly the token's own speed, the CPU cost of one bare signature through
each backend (same key type, no certificate around it) is printed too: the PKCS#11 path
cannot beat the ratio of those two.
Targets for the record (issue 2): >= 3,000/s with a P-256 file key, PKCS#11 >= 70% of file.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench.report import Report
from ca_core.keys import KeyStore
from ca_core.keys.file import FileKeyStore, generate_private_key
from ca_core.model import IssuanceRequest, KeyAlgorithm, Requester, Service
from ca_core.services import open_services

SECONDS = float(os.environ.get("BENCH_SECONDS", "4"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "256"))
CSR_POOL = 512
NAME = "issuance"


def openssl_sign_rates() -> dict[str, float]:
    """Signatures per second on one core: {"ecdsap256": ..., "rsa2048": ...}."""
    out = subprocess.run(
        ["openssl", "speed", "-mr", "-seconds", "2", "ecdsap256", "rsa2048"],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    rates = {}
    # -mr lines: "+F2:<n>:2048:<sign/s>:<verify/s>" (RSA), "+F4:<n>:256:<sign/s>:<verify/s>" (ECDSA)
    for kind, label in (("F2", "rsa2048"), ("F4", "ecdsap256")):
        m = re.search(rf"^\+{kind}:\d+:\d+:([\d.]+):([\d.]+)", out, re.M)
        if m:
            rates[label] = float(m.group(1))
    return rates


def csr_pool() -> list[bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    keys = [generate_private_key(KeyAlgorithm.EC_P256) for _ in range(32)]
    out = []
    for i in range(CSR_POOL):
        name = f"device{i}.bench.example"
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(keys[i % len(keys)], hashes.SHA256())
        )
        out.append(csr.public_bytes(serialization.Encoding.DER))
    return out


async def throughput(
    keys: KeyStore, workdir: Path, algorithm: KeyAlgorithm, csrs: list[bytes]
) -> tuple[float, float, int]:
    """(certificates per second, process CPU seconds per certificate, certificates stored)."""
    services = await open_services(
        f"sqlite+aiosqlite:///{workdir}/bench.db", keys, "http://127.0.0.1:8080", executor_threads=4
    )
    try:
        await services.authority.create_root("root", "CN=Bench Root", algorithm)
        await services.authority.create_issuing(
            "issuing", "root", "CN=Bench Issuing", algorithm, services=[s.value for s in Service]
        )
        requester = Requester("bench", "load")
        issued = 0

        async def worker(start: int, deadline: float | None, count: int | None) -> None:
            nonlocal issued
            i = start
            while (deadline is None or time.perf_counter() < deadline) and (
                count is None or i - start < count
            ):
                await services.issuance.issue(
                    IssuanceRequest(
                        ca="issuing",
                        profile="privatessl-tls-server",
                        requester=requester,
                        csr=csrs[i % len(csrs)],
                    )
                )
                i += 1
                issued += 1

        await asyncio.gather(*(worker(i, None, 2) for i in range(64)))  # warm up caches and the pool
        issued = 0
        started, cpu_started = time.perf_counter(), time.process_time()
        deadline = started + SECONDS
        await asyncio.gather(*(worker(i * 7, deadline, None) for i in range(CONCURRENCY)))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        stored = await services.store.certificates.count(ca="issuing")
        return issued / elapsed, cpu / max(issued, 1), stored
    finally:
        await services.close()


def sign_cost(keys: KeyStore, algorithm: KeyAlgorithm, count: int = 500) -> float:
    """CPU seconds of one bare signature by a fresh key of `keys` (best of three runs)."""
    signer = keys.generate(f"probe-{algorithm.value}", algorithm)
    data = b"\x30" * 300  # about a TBSCertificate's size
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        for _ in range(count):
            signer.sign(data)
        best = min(best, (time.process_time() - started) / count)
    return best


def pkcs11_keystore(workdir: Path) -> KeyStore | None:
    from tests.support.softhsm import PIN, SoftHsmToken, softhsm_module

    module = softhsm_module()
    if module is None or shutil.which("softhsm2-util") is None:
        return None
    token = SoftHsmToken(label=f"bench-{os.getpid()}")
    token.init()
    from ca_core.keys.pkcs11 import Pkcs11KeyStore, Pkcs11Token

    return Pkcs11KeyStore(Pkcs11Token(module, token.label, PIN))


async def run(report: Report) -> None:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    report.add(NAME, "load average at start", load, f"{os.cpu_count()} CPUs, shared")
    rates = openssl_sign_rates()
    raw = {KeyAlgorithm.EC_P256: rates.get("ecdsap256"), KeyAlgorithm.RSA_2048: rates.get("rsa2048")}
    for algorithm, rate in raw.items():
        if rate:
            report.add(NAME, f"openssl speed sign {algorithm.value}", f"{rate:,.0f}/s", "one core, raw")
    csrs = csr_pool()
    file_rates: dict[KeyAlgorithm, float] = {}
    sign_costs: dict[tuple[str, KeyAlgorithm], float] = {}
    for backend in ("file", "pkcs11"):
        for algorithm in (KeyAlgorithm.EC_P256, KeyAlgorithm.RSA_2048):
            with tempfile.TemporaryDirectory(prefix="ceg-bench-") as tmp:
                workdir = Path(tmp)
                keys = (
                    FileKeyStore(workdir / "keys", b"bench")
                    if backend == "file"
                    else pkcs11_keystore(workdir)
                )
                if keys is None:
                    report.add(NAME, f"{backend} {algorithm.value}", "skipped", "SoftHSM2 not installed")
                    continue
                per_second, cpu, stored = await throughput(keys, workdir, algorithm, csrs)
                sign_costs[backend, algorithm] = sign_cost(keys, algorithm)
            # CPU time per certificate is the steadier figure on a shared machine.
            notes = [f"{cpu * 1e6:.0f} us CPU/cert", f"{CONCURRENCY} concurrent, SQLite, {stored} stored"]
            rate = raw.get(algorithm)
            if rate:
                notes.append(f"{per_second / rate:.0%} of openssl's raw sign rate")
            if backend == "file":
                file_rates[algorithm] = per_second
            elif algorithm in file_rates:
                notes.append(f"{per_second / file_rates[algorithm]:.0%} of the file backend")
            report.add(
                NAME, f"issue {backend} {algorithm.value}", f"{per_second:,.0f} certs/s", "; ".join(notes)
            )
            own = sign_costs[backend, algorithm]
            note = "CPU, one signature, no certificate"
            if backend == "pkcs11" and ("file", algorithm) in sign_costs:
                note += f"; the file key's is {sign_costs['file', algorithm] / own:.0%} of it"
            report.add(NAME, f"bare sign {backend} {algorithm.value}", f"{own * 1e6:.0f} us", note)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    report.add(NAME, "load average at end", load)
