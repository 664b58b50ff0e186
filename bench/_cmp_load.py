"""The in-process async CMP client of bench/cmp.py, run as its own process so it never
shares a CPU-bound event loop with the server it measures.

    python -m bench._cmp_load URL REFERENCE SECRET KEY_PEM WORKERS EACH

Each transaction opens one connection and sends ir then certConf over it (as `openssl
cmp` does); WORKERS transactions run at a time, EACH per worker. Prints one JSON line:
{"rate": transactions per second, "transactions": n}.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import aiohttp
from cryptography.hazmat.primitives import serialization

from tests.support import cmp_client


async def main(url: str, reference: str, secret: str, key_pem: str, workers: int, each: int) -> None:
    key = serialization.load_pem_private_key(Path(key_pem).read_bytes(), None)
    request = cmp_client.cert_request(key, "CN=bench device")  # type: ignore[arg-type]
    credential = cmp_client.MacCredential(reference, secret.encode())
    headers = {"Content-Type": "application/pkixcmp"}

    async def transaction() -> None:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as http:

            async def send(data: bytes) -> bytes:
                async with http.post(url, data=data, headers=headers) as response:
                    return await response.read()

            session = cmp_client.Session(credential, send)
            answer = await session.exchange(cmp_client.CertReqBody("ir", (request,)))
            certificate = cmp_client.issued_certificate(answer)
            done = await session.exchange(cmp_client.cert_conf(certificate))
            if done.body.kind != "pkiconf":
                raise RuntimeError(f"certConf answered with {done.body.kind}: {cmp_client.fail_info(done)}")

    async def worker() -> None:
        for _ in range(each):
            await transaction()

    await transaction()  # warm up
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    elapsed = time.perf_counter() - started
    print(json.dumps({"rate": workers * each / elapsed, "transactions": workers * each}))


if __name__ == "__main__":
    url, reference, secret, key_pem, workers, each = sys.argv[1:7]
    asyncio.run(main(url, reference, secret, key_pem, int(workers), int(each)))
