"""The checks every ACME POST passes before its handler decides anything (RFC 8555
sections 6.2-6.5): content type, flattened JWS, supported algorithm, `url` equal to the
request URL, a genuine unused nonce, exactly one of `jwk` / `kid` as the resource
requires, an existing valid account for `kid`, a verifying signature; then the nonce
is spent and the payload decoded (empty payload: POST-as-GET, 6.3).

Order matters: the nonce is only spent once the signature verifies, so junk cannot
burn nonces, and a bad nonce is reported before any account lookup.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from aiohttp import web

from ca_core.clock import Clock
from protocols._shared.web import read_body
from protocols.acme import nonces
from protocols.acme.codec import ACME_TYPES, Urls
from protocols.acme.context import AcmeContext
from protocols.acme.jws import (
    MAX_JWS_BYTES,
    SIGNATURE_ALGORITHMS,
    Jws,
    PublicKey,
    bad_algorithm,
    load_json,
    parse_jws,
    verify_signature,
)
from protocols.acme.model import Account, AccountStatus
from protocols.acme.problems import AcmeProblem, ProblemType, malformed, unauthorized
from protocols.acme.repository import AcmeRepository
from protocols.acme.settings import AcmeSettings


class KeyRef(Enum):
    JWK = "jwk"  # newAccount, and revokeCert by the certificate's key
    KID = "kid"  # everything an account does
    EITHER = "either"  # revokeCert


@dataclass(frozen=True, slots=True)
class SignedRequest:
    jws: Jws
    payload: Any  # None for POST-as-GET
    account: Account | None  # set when signed with kid
    jwk: dict[str, Any] | None  # set when signed with jwk
    key: PublicKey
    thumbprint: str
    url: str

    @property
    def post_as_get(self) -> bool:
        return self.payload is None

    def require_account(self) -> Account:
        if self.account is None:
            raise malformed("this resource needs a request signed with the account key (kid)")
        return self.account


def request_url(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}{request.raw_path}"


async def verify_post(
    request: web.Request,
    ctx: AcmeContext,
    repo: AcmeRepository,
    nonce_key: bytes,
    clock: Clock,
    settings: AcmeSettings,
    urls: Urls,
    ca: str,
    key_ref: KeyRef = KeyRef.KID,
) -> SignedRequest:
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type not in ACME_TYPES:
        raise malformed("ACME requests are application/jose+json", 415)
    jws = parse_jws(await read_body(request, MAX_JWS_BYTES))
    header = jws.header
    if jws.alg not in SIGNATURE_ALGORITHMS:
        raise bad_algorithm(jws.alg)
    url = request_url(request)
    if header.get("url") != url:
        raise unauthorized(f"the JWS url header {header.get('url')!r} is not the request URL {url!r}")
    now = clock.now()
    nonce_expires = nonces.check(
        nonce_key, header.get("nonce"), now, settings.nonce_lifetime_seconds, repo.nonce_floor
    )
    has_jwk, has_kid = "jwk" in header, "kid" in header
    if has_jwk == has_kid:
        raise malformed("the protected header needs exactly one of jwk and kid")
    account: Account | None = None
    if has_kid:
        if key_ref is KeyRef.JWK:
            raise malformed("this request must be signed with a jwk, not a kid")
        account_id = urls.account_id(header["kid"])
        account = await repo.account(account_id) if account_id else None
        if account is None or account.ca != ca:
            raise AcmeProblem(ProblemType.ACCOUNT_DOES_NOT_EXIST, "no account with that kid", 400)
        if account.status is not AccountStatus.VALID:
            raise unauthorized(f"the account is {account.status.value}")
        key, thumb = ctx.account_key(account.jwk)
        jwk = None
    else:
        if key_ref is KeyRef.KID:
            raise malformed("this request must be signed with the account's kid, not a jwk")
        jwk = header["jwk"]
        if not isinstance(jwk, dict):
            raise malformed("jwk must be a JSON object")
        key, thumb = ctx.account_key(jwk)
    verify_signature(jws, key)
    await repo.use_nonce(header["nonce"], now, nonce_expires)
    payload = load_json(jws.payload, "payload") if jws.payload else None
    return SignedRequest(jws, payload, account, jwk, key, thumb, url)
