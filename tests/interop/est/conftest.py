"""curl and openssl as the EST client, the way RFC 7030's examples (Appendix A) drive a
server: `openssl req` makes the CSR, `openssl base64` wraps it, `curl` posts it with
HTTP Basic or a TLS client certificate, `openssl base64 -d | openssl pkcs7` reads the
answer. Every tool runs as a subprocess of the test's event loop, where the gateway
serves."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from protocols.est import EstFrontend
from tests.support.gateway import LiveGateway, start_gateway
from tests.support.tools import require_tool

PASSWORD = "correct horse battery staple"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class ToolFailed(AssertionError):
    pass


async def run(*cmd: str, stdin: bytes | None = None, check: bool = True) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), timeout=120)
    code = proc.returncode or 0
    if check and code != 0:
        raise ToolFailed(f"{' '.join(cmd)} exited {code}:\n{err.decode(errors='replace')}")
    return code, out, err


@dataclass
class EstClient:
    live: LiveGateway
    dir: Path
    username: str = "device-user"
    password: str = PASSWORD
    _names: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def base(self) -> str:
        return f"{self.live.https}/.well-known/est/{self.live.issuing}"

    def path(self, stem: str) -> Path:
        return self.dir / f"{stem}-{next(self._names)}"

    async def configure(self, **settings: Any) -> None:
        """Replace the EST binding of the issuing CA (defaults plus `settings`)."""
        await self.live.bindings.put("est", self.live.issuing, settings=settings)
        if self.live.anchors is not None:
            await self.live.anchors.refresh(self.live.services)

    async def openssl(self, *args: str, stdin: bytes | None = None) -> bytes:
        return (await run("openssl", *args, stdin=stdin))[1]

    async def csr(
        self,
        cn: str = "device.example",
        key: str = "ec:P-256",
        sans: Sequence[str] = ("device.example",),
        key_usage: str | None = None,
        reuse_key: Path | None = None,
    ) -> tuple[Path, Path]:
        """(private key PEM, base64 CSR) made by `openssl req`, as an EST client does."""
        key_path = reuse_key or self.path("key").with_suffix(".pem")
        der_path = self.path("csr").with_suffix(".der")
        args = ["req", "-new", "-subj", f"/CN={cn}", "-outform", "DER", "-out", str(der_path)]
        if reuse_key is not None:
            args += ["-key", str(reuse_key)]
        else:
            kind, _, param = key.partition(":")
            if kind == "ec":
                args += ["-newkey", "ec", "-pkeyopt", f"ec_paramgen_curve:{param}"]
            else:
                args += ["-newkey", f"rsa:{param}"]
            args += ["-nodes", "-keyout", str(key_path)]
        if sans:
            args += ["-addext", "subjectAltName=" + ",".join(f"DNS:{s}" for s in sans)]
        if key_usage:
            args += ["-addext", f"keyUsage=critical,{key_usage}"]
        await self.openssl(*args)
        b64_path = der_path.with_suffix(".b64")
        await self.openssl("base64", "-in", str(der_path), "-out", str(b64_path))
        return key_path, b64_path

    async def curl(
        self,
        operation: str,
        body: Path | bytes | None = None,
        *,
        content_type: str | None = "application/pkcs10",
        basic: tuple[str, str] | None = None,
        client: tuple[Path, Path] | None = None,
        base: str | None = None,
        method: str | None = None,
    ) -> Reply:
        """One EST request with curl; raises if curl itself fails (no HTTP answer)."""
        code, reply = await self.curl_raw(
            operation,
            body,
            content_type=content_type,
            basic=basic,
            client=client,
            base=base,
            method=method,
        )
        if reply is None:
            raise ToolFailed(f"curl exited {code} without an HTTP answer")
        return reply

    async def curl_raw(
        self,
        operation: str,
        body: Path | bytes | None = None,
        *,
        content_type: str | None = "application/pkcs10",
        basic: tuple[str, str] | None = None,
        client: tuple[Path, Path] | None = None,
        base: str | None = None,
        method: str | None = None,
    ) -> tuple[int, Reply | None]:
        out, headers = self.path("body"), self.path("headers")
        args = ["curl", "-sS", "--cacert", str(self.live.root_pem), "-o", str(out), "-D", str(headers)]
        if basic is not None:
            args += ["-u", f"{basic[0]}:{basic[1]}"]
        if client is not None:
            args += ["--cert", str(client[0]), "--key", str(client[1])]
        stdin = None
        if body is not None:
            if isinstance(body, Path):
                args += ["--data-binary", f"@{body}"]
            else:
                args += ["--data-binary", "@-"]
                stdin = body
            if content_type is not None:
                args += ["-H", f"Content-Type: {content_type}"]
        if method is not None:
            args += ["-X", method]
        args.append(f"{base or self.base}/{operation}")
        code, _, _ = await run(*args, stdin=stdin, check=False)
        if not headers.exists() or not headers.read_bytes():
            return code, None
        return code, _parse_reply(headers.read_text(), out.read_bytes() if out.exists() else b"")

    async def certificates(self, base64_certs_only: bytes) -> list[str]:
        """PEM certificates of a base64 certs-only answer, through `openssl pkcs7`."""
        der = await self.openssl("base64", "-d", stdin=base64_certs_only)
        pem = (await self.openssl("pkcs7", "-inform", "DER", "-print_certs", stdin=der)).decode()
        blocks = pem.split("-----END CERTIFICATE-----")
        return [
            b[b.index("-----BEGIN") :] + "-----END CERTIFICATE-----\n" for b in blocks if "-----BEGIN" in b
        ]

    async def write_certificate(self, base64_certs_only: bytes) -> Path:
        (pem,) = await self.certificates(base64_certs_only)
        path = self.path("cert").with_suffix(".pem")
        path.write_text(pem)
        return path

    async def verify(self, leaf: Path) -> None:
        """`openssl verify` of an issued certificate against the chain /cacerts gave."""
        chain = await self.certificates((await self.curl("cacerts")).body)
        untrusted = self.path("chain").with_suffix(".pem")
        untrusted.write_text("".join(chain))  # a SET OF in DER order: the root may be anywhere
        out = await self.openssl(
            "verify",
            "-x509_strict",
            "-CAfile",
            str(self.live.root_pem),
            "-untrusted",
            str(untrusted),
            str(leaf),
        )
        assert out.strip().endswith(b": OK")

    async def x509_text(self, cert: Path, *options: str) -> str:
        return (await self.openssl("x509", "-in", str(cert), "-noout", *options)).decode()


def _parse_reply(raw: str, body: bytes) -> Reply:
    # With -D, curl writes every response's headers (a 100 Continue first, say): keep the last.
    blocks = [b for b in raw.replace("\r\n", "\n").split("\n\n") if b.strip()]
    lines = blocks[-1].splitlines()
    status = int(lines[0].split()[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Reply(status, headers, body)


@pytest.fixture
async def est(services: Any, tmp_path: Path) -> AsyncIterator[EstClient]:
    """A live gateway with only the EST front-end, an EST binding on its issuing CA (the
    defaults: Basic or client certificate) and a Basic user scoped to it."""
    require_tool("curl")
    require_tool("openssl")
    live, runner = await start_gateway(services, tmp_path, frontends={"est": EstFrontend()})
    client = EstClient(live, tmp_path / "client")
    client.dir.mkdir()
    await client.configure()
    await services.credentials.create_basic(
        client.username, {"protocol": "est", "ca": live.issuing}, PASSWORD
    )
    yield client
    await runner.cleanup()
