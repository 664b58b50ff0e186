"""Helpers for the ACME interop tests: pebble-challtestsrv, an http-01 responder, and
certbot's `acme` library (blocking, so it runs in a thread while the gateway answers in
the test's event loop)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import josepy as jose
from acme import challenges, client, messages
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.support.gateway import LiveGateway

T = TypeVar("T")


class Challtestsrv:
    """pebble-challtestsrv as a DNS server: every A query answers 127.0.0.1 (no AAAA),
    TXT records are set through the management API (lego's exec hook and the tests)."""

    def __init__(self, dns_port: int, management_port: int) -> None:
        self.dns_port = dns_port
        self.management_port = management_port
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def management(self) -> str:
        return f"http://127.0.0.1:{self.management_port}"

    def start(self) -> None:
        self._proc = subprocess.Popen(
            [
                "pebble-challtestsrv",
                "-dns01",
                f"127.0.0.1:{self.dns_port}",
                "-management",
                f"127.0.0.1:{self.management_port}",
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
                "-defaultIPv4",
                "127.0.0.1",
                "-defaultIPv6",
                "",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                self._post("/set-default-ipv4", {"ip": "127.0.0.1"})
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("pebble-challtestsrv did not start")

    def _post(self, path: str, body: dict[str, Any]) -> None:
        req = urllib.request.Request(self.management + path, data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(req, timeout=5) as resp:
            resp.read()

    def set_txt(self, host: str, value: str) -> None:
        self._post("/set-txt", {"host": host.rstrip(".") + ".", "value": value})

    def add_caa(self, host: str, *policies: tuple[str, str]) -> None:
        """CAA records (tag, value) at `host`."""
        body = {"host": host.rstrip(".") + ".", "policies": [{"tag": t, "value": v} for t, v in policies]}
        self._post("/add-caa", body)

    def clear_txt(self, host: str) -> None:
        self._post("/clear-txt", {"host": host.rstrip(".") + "."})

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)


@dataclass
class AcmeSetup:
    live: LiveGateway
    dns: Challtestsrv
    directory: str
    http01_port: int
    tls_alpn01_port: int

    @property
    def root_pem(self) -> Path:
        return self.live.root_pem


@dataclass
class Http01Responder:
    """The client side of http-01: serves key authorizations on the binding's port."""

    port: int
    tokens: dict[str, str] = field(default_factory=dict)
    _runner: web.AppRunner | None = None

    async def start(self) -> Http01Responder:
        async def serve(request: web.Request) -> web.Response:
            value = self.tokens.get(request.match_info["token"])
            if value is None:
                raise web.HTTPNotFound()
            return web.Response(text=value)

        app = web.Application()
        app.router.add_get("/.well-known/acme-challenge/{token}", serve)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.to_thread(fn, *args)


def account_key(kind: str = "ec") -> jose.JWK:
    if kind == "rsa":
        return jose.JWKRSA(key=rsa.generate_private_key(65537, 2048))
    return jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))


def alg_for(key: jose.JWK) -> jose.JWASignature:
    return jose.ES256 if isinstance(key, jose.JWKEC) else jose.RS256


def acme_client(setup: AcmeSetup, key: jose.JWK | None = None) -> client.ClientV2:
    """A ClientV2 with a fresh account (blocking: call in a thread)."""
    key = key or account_key()
    net = client.ClientNetwork(key, alg=alg_for(key), verify_ssl=str(setup.root_pem), user_agent="ceg-tests")
    directory = client.ClientV2.get_directory(setup.directory, net)
    acme = client.ClientV2(directory, net)
    regr = acme.new_account(
        messages.NewRegistration.from_data(email="ops@example.com", terms_of_service_agreed=True)
    )
    net.account = regr
    return acme


def cert_key_and_csr(names: list[str], key: Any = None, ips: list[str] | None = None) -> tuple[Any, bytes]:
    import ipaddress

    from acme import crypto_util

    key = key or ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    csr = crypto_util.make_csr(pem, names, ipaddrs=[ipaddress.ip_address(i) for i in ips or []])
    return key, csr


def http01_answers(
    acme: client.ClientV2, order: messages.OrderResource, responder: Http01Responder
) -> list[tuple[messages.ChallengeBody, challenges.ChallengeResponse]]:
    answers = []
    for authz in order.authorizations:
        for challb in authz.body.challenges:
            if isinstance(challb.chall, challenges.HTTP01):
                response, validation = challb.response_and_validation(acme.net.key)
                responder.tokens[challb.chall.encode("token")] = validation
                answers.append((challb, response))
    return answers


def dns01_answers(
    acme: client.ClientV2, order: messages.OrderResource, dns: Challtestsrv
) -> list[tuple[messages.ChallengeBody, challenges.ChallengeResponse]]:
    answers = []
    for authz in order.authorizations:
        for challb in authz.body.challenges:
            if isinstance(challb.chall, challenges.DNS01):
                response, validation = challb.response_and_validation(acme.net.key)
                dns.set_txt(challb.chall.validation_domain_name(authz.body.identifier.value), validation)
                answers.append((challb, response))
    return answers


def issue(
    acme: client.ClientV2,
    csr_pem: bytes,
    solve: Callable[[client.ClientV2, messages.OrderResource], list[Any]],
    profile: str | None = None,
) -> messages.OrderResource:
    """new order -> answer challenges -> finalize; returns the finished order (blocking)."""
    import datetime as dt

    order = acme.new_order(csr_pem, profile=profile)
    for challb, response in solve(acme, order):
        acme.answer_challenge(challb, response)
    deadline = dt.datetime.now() + dt.timedelta(seconds=60)
    return acme.poll_and_finalize(order, deadline)


def chain_ders(fullchain_pem: str) -> list[bytes]:
    return [
        c.public_bytes(serialization.Encoding.DER)
        for c in x509.load_pem_x509_certificates(fullchain_pem.encode())
    ]


# --- hand-made requests, for what the library will not send ------------------------------------


class RawPayload(jose.JSONDeSerializable):
    """Any JSON document as a josepy object, for `ClientNetwork.post`."""

    def __init__(self, doc: Any) -> None:
        self.doc = doc

    def to_partial_json(self) -> Any:
        return self.doc

    @classmethod
    def from_json(cls, jobj: Any) -> RawPayload:
        return cls(jobj)


def fresh_nonce(acme: client.ClientV2) -> str:
    response = acme.net.session.head(acme.directory["newNonce"], verify=acme.net.verify_ssl, timeout=10)
    return str(response.headers["Replay-Nonce"])


def signed_body(
    acme: client.ClientV2,
    url: str,
    payload: Any,
    *,
    nonce: bytes | str | None = "fresh",
    key: jose.JWK | None = None,
    alg: jose.JWASignature | None = None,
    kid: str | bool | None = True,
) -> str:
    """A JWS as ACME wants it; every part can be made wrong on purpose."""
    from acme import jws as acme_jws

    raw = b"" if payload is None else json.dumps(payload).encode()
    if nonce == "fresh":
        nonce = jose.b64.b64decode(fresh_nonce(acme))
    key = key or acme.net.key
    if kid is True:
        kid = acme.net.account["uri"] if acme.net.account is not None else None
    return acme_jws.JWS.sign(
        raw,
        key=key,
        alg=alg or alg_for(key),
        nonce=nonce,
        url=url,
        kid=kid or None,  # type: ignore[arg-type]
    ).json_dumps()


def raw_post(acme: client.ClientV2, url: str, body: str, content_type: str = "application/jose+json") -> Any:
    """POST without the library's retries or checks; returns the requests.Response."""
    return acme.net.session.post(
        url, data=body, headers={"Content-Type": content_type}, verify=acme.net.verify_ssl, timeout=30
    )
