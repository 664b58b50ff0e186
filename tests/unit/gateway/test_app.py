"""The app factory: probes, CA artifacts over HTTP and HTTPS, binding resolution."""

from __future__ import annotations

import asyncio

from tests.support.gateway import LiveGateway


async def _curl(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        "curl", "-sS", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    return proc.returncode or 0, (out + err).decode()


async def test_probes_and_ca_certificates(live_gateway: LiveGateway) -> None:
    code, body = await _curl(f"{live_gateway.http}/healthz")
    assert code == 0 and '"ok"' in body
    code, body = await _curl("--cacert", str(live_gateway.root_pem), f"{live_gateway.https}/readyz")
    assert code == 0 and '"problems": []' in body
    code, body = await _curl("--cacert", str(live_gateway.root_pem), f"{live_gateway.https}/ca/issuing.pem")
    assert code == 0 and body.count("BEGIN CERTIFICATE") == 2
    code, body = await _curl("-o", "/dev/null", "-w", "%{http_code}", f"{live_gateway.http}/ca/nope.crt")
    assert body == "404"
