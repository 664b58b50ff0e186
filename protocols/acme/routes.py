"""The ACME server's HTTP resources (RFC 8555 section 7; RFC 9773; RFC 8738; RFC 8737).

Each handler: verify the POST (auth.py) -> load what it names (repository.py) ->
decide (core.py) -> store with compare-and-set -> render (codec.py). The envelope
middleware gives every response a fresh Replay-Nonce, the directory Link and
Cache-Control: no-store, and turns every refusal into a problem document.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ca_core.errors import CegError, Conflict, InvalidState, NotFound, Unauthorized
from ca_core.model import CertStatus
from ca_core.services import Services
from ca_core.status.revocation import StatusChange
from protocols._shared.web import Binding, binding_of, requester_of, services_of
from protocols.acme import caa, codec, core, jws, nonces, translate
from protocols.acme.auth import KeyRef, SignedRequest, verify_post
from protocols.acme.codec import Urls
from protocols.acme.context import ACME_CONTEXT, AcmeContext
from protocols.acme.model import (
    Account,
    AccountStatus,
    Authorization,
    AuthzStatus,
    Identifier,
    Order,
    OrderStatus,
)
from protocols.acme.problems import (
    PROBLEM_CONTENT_TYPE,
    AcmeProblem,
    ProblemType,
    Subproblem,
    malformed,
    not_found,
    unauthorized,
)
from protocols.acme.repository import AcmeRepository
from protocols.acme.settings import AcmeSettings
from protocols.acme.validation import ChallengeValidator, ValidationTarget

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PROTOCOL = "acme"
ORDERS_PAGE = 100


# --- per-request environment --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Env:
    request: web.Request
    services: Services
    binding: Binding
    settings: AcmeSettings
    ctx: AcmeContext
    repo: AcmeRepository
    urls: Urls

    def now(self) -> dt.datetime:
        return self.services.clock.now()

    def new_id(self, size: int = 16) -> str:
        return jws.b64url(self.services.random_bytes(size))

    async def verify(self, key_ref: KeyRef = KeyRef.KID) -> SignedRequest:
        return await verify_post(
            self.request,
            self.ctx,
            self.repo,
            await self.ctx.nonce_key(self.services),
            self.services.clock,
            self.settings,
            self.urls,
            self.binding.ca,
            key_ref,
        )


def directory_base(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}/acme/{request.match_info.get('ca', '')}"


def env_of(request: web.Request) -> Env:
    services = services_of(request)
    binding = binding_of(request)
    ctx = request.app[ACME_CONTEXT]
    return Env(
        request,
        services,
        binding,
        ctx.settings(binding),
        ctx,
        ctx.repository(services),
        Urls(directory_base(request)),
    )


def json_response(
    doc: Any, status: int = 200, location: str | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    response = web.Response(body=json.dumps(doc).encode(), status=status, content_type="application/json")
    if location is not None:
        response.headers["Location"] = location
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def problem_response(problem: AcmeProblem) -> web.Response:
    response = web.Response(
        body=json.dumps(problem.to_json()).encode(), status=problem.status, content_type=PROBLEM_CONTENT_TYPE
    )
    for name, value in problem.headers.items():
        response.headers[name] = value
    return response


@web.middleware
async def acme_envelope(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Replay-Nonce, Link index and no-store on every response; problems as problem+json."""
    try:
        response = await handler(request)
    except AcmeProblem as problem:
        response = problem_response(problem)
    except CegError as exc:
        response = problem_response(translate.problem_of(exc))
    except web.HTTPException as exc:
        if exc.status == 405:
            refusal = malformed(f"method {request.method} is not allowed here (use POST-as-GET)", 405)
        elif exc.status == 413:
            refusal = malformed("request too large", 413)
        elif exc.status == 404:
            refusal = not_found("resource")
        else:
            raise
        response = problem_response(refusal)
        if exc.status == 405:
            response.headers["Allow"] = exc.headers.get("Allow", "POST")
    services = services_of(request)
    ctx = request.app[ACME_CONTEXT]
    key = await ctx.nonce_key(services)
    response.headers["Replay-Nonce"] = nonces.mint(key, services.clock.now(), services.random_bytes)
    response.headers["Cache-Control"] = "no-store"
    if "ca" in request.match_info:
        response.headers.add("Link", f'<{directory_base(request)}/directory>;rel="index"')
    return response


# --- directory and nonces (7.1.1, 7.2) ------------------------------------------------------------


async def directory(request: web.Request) -> web.Response:
    env = env_of(request)
    profiles = {p: env.services.catalogue[p].description or p for p in env.binding.allowed_profiles}
    return json_response(codec.directory_json(env.urls, env.settings, profiles))


async def new_nonce(request: web.Request) -> web.Response:
    # The nonce itself is added by the envelope, as on every response.
    return web.Response(status=200 if request.method == "HEAD" else 204)


# --- accounts (7.3) ---------------------------------------------------------------------------------


async def new_account(request: web.Request) -> web.Response:
    env = env_of(request)
    signed = await env.verify(KeyRef.JWK)
    wanted = codec.new_account_request(signed.payload)
    existing = await env.repo.account_by_key(env.binding.ca, signed.thumbprint)
    if existing is not None:
        if existing.status is not AccountStatus.VALID:
            raise unauthorized(f"the account of this key is {existing.status.value}")
        return json_response(
            codec.account_json(existing, env.urls), 200, location=env.urls.account(existing.id)
        )
    if wanted.only_return_existing:
        raise AcmeProblem(ProblemType.ACCOUNT_DOES_NOT_EXIST, "no account exists with this key")
    if env.settings.terms_of_service and not wanted.tos_agreed:
        raise malformed("you must agree to the terms of service (termsOfServiceAgreed)")
    contacts = core.check_contacts(wanted.contact)
    eab_kid = None
    if wanted.external_account_binding is not None:
        eab_kid = await verify_external_account(env, signed, wanted.external_account_binding)
    elif env.settings.eab_required:
        raise AcmeProblem(
            ProblemType.EXTERNAL_ACCOUNT_REQUIRED, "this directory requires an external account binding"
        )
    assert signed.jwk is not None
    account = Account(
        id=env.new_id(),
        ca=env.binding.ca,
        status=AccountStatus.VALID,
        jwk=jws.canonical_jwk(signed.jwk),
        thumbprint=signed.thumbprint,
        contact=contacts,
        tos_agreed=wanted.tos_agreed,
        created=env.now(),
        eab_kid=eab_kid,
    )
    try:
        account = await env.repo.create_account(account, env.now())
    except Conflict:  # the same key registered at the same moment through another worker
        raced = await env.repo.account_by_key(env.binding.ca, signed.thumbprint)
        if raced is None:
            raise
        return json_response(codec.account_json(raced, env.urls), 200, location=env.urls.account(raced.id))
    log.info("ACME account created", extra={"ca": env.binding.ca, "account": account.id, "eab": eab_kid})
    return json_response(codec.account_json(account, env.urls), 201, location=env.urls.account(account.id))


async def verify_external_account(env: Env, signed: SignedRequest, binding_jws: dict[str, Any]) -> str:
    """RFC 8555 7.3.4: a JWS over the account's JWK, MACed with a ceg EAB credential."""
    inner = jws.parse_jws(binding_jws, "externalAccountBinding")
    header = inner.header
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid or "nonce" in header or "jwk" in header:
        raise malformed("externalAccountBinding needs a kid and no nonce or jwk")
    if header.get("url") != signed.url:
        raise malformed("externalAccountBinding url must be the newAccount URL")
    assert signed.jwk is not None
    bound = jws.load_json(inner.payload, "externalAccountBinding payload")
    if not isinstance(bound, dict) or jws.canonical_jwk(bound) != jws.canonical_jwk(signed.jwk):
        raise malformed("externalAccountBinding must sign the same key as the request")
    try:
        record, hmac_key = await env.services.credentials.eab(kid)
    except Unauthorized as exc:
        raise unauthorized(exc.message) from None
    scope = record.scope
    if scope.get("ca") not in (None, env.binding.ca) or scope.get("protocol") not in (None, PROTOCOL):
        raise unauthorized(f"EAB key {kid} is not for this ACME directory")
    jws.verify_mac(inner, hmac_key)
    return kid


async def account(request: web.Request) -> web.Response:
    env = env_of(request)
    signed = await env.verify()
    current = signed.require_account()
    if current.id != request.match_info["account"]:
        raise unauthorized("the kid does not match the account URL")
    if signed.payload is not None:
        updated = core.update_account(current, codec.payload_object(signed.payload, "account"))
        if updated != current:
            current = await env.repo.save_account(updated, env.now())
            if current.status is AccountStatus.DEACTIVATED:
                log.info("ACME account deactivated", extra={"ca": env.binding.ca, "account": current.id})
    return json_response(codec.account_json(current, env.urls), location=env.urls.account(current.id))


async def account_orders(request: web.Request) -> web.Response:
    """The orders list (7.1.2.1): pending and valid orders, not invalid ones, paginated."""
    env = env_of(request)
    signed = await env.verify()
    current = signed.require_account()
    if current.id != request.match_info["account"]:
        raise unauthorized("the kid does not match the account URL")
    now = env.now()
    orders = [
        o
        for o in await env.repo.orders_of(current.id)
        if o.status is OrderStatus.VALID or (o.status is not OrderStatus.INVALID and now < o.expires)
    ]
    cursor = request.query.get("cursor", "0")
    start = int(cursor) if cursor.isdigit() else 0
    page = orders[start : start + ORDERS_PAGE]
    headers = {}
    if start + ORDERS_PAGE < len(orders):
        headers["Link"] = f'<{env.urls.orders(current.id)}?cursor={start + ORDERS_PAGE}>;rel="next"'
    return json_response({"orders": [env.urls.order(o.id) for o in page]}, headers=headers)


async def key_change(request: web.Request) -> web.Response:
    """Account key rollover (7.3.5): an inner JWS by the new key inside the outer one."""
    env = env_of(request)
    signed = await env.verify()
    current = signed.require_account()
    inner = jws.parse_jws(codec.payload_object(signed.payload, "keyChange"), "keyChange inner JWS")
    header = inner.header
    if "jwk" not in header or "kid" in header or "nonce" in header:
        raise malformed("the inner JWS needs a jwk and no kid or nonce")
    if header.get("url") != signed.url:
        raise malformed("the inner JWS url must equal the outer url")
    if inner.alg not in jws.SIGNATURE_ALGORITHMS:
        raise jws.bad_algorithm(inner.alg)
    new_jwk = header["jwk"]
    if not isinstance(new_jwk, dict):
        raise malformed("jwk must be a JSON object")
    new_key, new_thumbprint = env.ctx.account_key(new_jwk)
    jws.verify_signature(inner, new_key)
    change = codec.key_change_request(jws.load_json(inner.payload, "keyChange inner payload"))
    if change.account != env.urls.account(current.id):
        raise malformed("keyChange names another account")
    if jws.canonical_jwk(change.old_key) != jws.canonical_jwk(current.jwk):
        raise unauthorized("oldKey is not the account's current key")
    holder = await env.repo.account_by_key(env.binding.ca, new_thumbprint)
    if holder is not None:
        raise AcmeProblem(
            ProblemType.MALFORMED,
            "the new key already belongs to an account",
            409,
            headers={"Location": env.urls.account(holder.id)},
        )
    updated = dataclasses.replace(current, jwk=jws.canonical_jwk(new_jwk), thumbprint=new_thumbprint)
    try:
        updated = await env.repo.change_key(updated, current.thumbprint, env.now())
    except Conflict:
        raise AcmeProblem(
            ProblemType.MALFORMED, "the account or the new key changed meanwhile", 409
        ) from None
    log.info("ACME account key rolled over", extra={"ca": env.binding.ca, "account": updated.id})
    return json_response(codec.account_json(updated, env.urls), location=env.urls.account(updated.id))


# --- orders (7.4) -------------------------------------------------------------------------------------


async def new_order(request: web.Request) -> web.Response:
    env = env_of(request)
    signed = await env.verify()
    owner = signed.require_account()
    wanted = codec.new_order_request(signed.payload)
    settings, now = env.settings, env.now()
    identifiers = core.check_identifiers(wanted.identifiers, settings)
    core.order_window(wanted.not_before, wanted.not_after, now, settings)
    profile = env.binding.choose_profile(wanted.profile)
    replaces = await replaced_serial(env, owner, wanted.replaces, identifiers) if wanted.replaces else None
    chosen: list[tuple[str, Authorization | None, tuple[Identifier, bool]]] = []
    for ident in identifiers:
        base, wildcard = core.authz_identifier(ident)
        reuse = None
        if settings.authz_reuse_seconds > 0:
            candidates = await env.repo.valid_authzs_for(owner.id, base, wildcard)
            reuse = next((a for a in candidates if core.reusable(a, owner.id, now, settings)), None)
        chosen.append((reuse.id if reuse else env.new_id(), reuse, (base, wildcard)))
    expires = core.order_expiry(now, [a for _, a, _ in chosen if a is not None], settings)
    fresh = [
        core.new_authorization(
            authz_id,
            env.binding.ca,
            owner.id,
            base,
            wildcard,
            now,
            expires,
            settings,
            lambda: env.new_id(6),
            lambda: env.new_id(32),
        )
        for authz_id, reuse, (base, wildcard) in chosen
        if reuse is None
    ]
    order = Order(
        id=env.new_id(),
        ca=env.binding.ca,
        account=owner.id,
        status=OrderStatus.PENDING,
        expires=expires,
        identifiers=identifiers,
        authzs=tuple(authz_id for authz_id, _, _ in chosen),
        profile=profile,
        created=now,
        not_before=wanted.not_before,
        not_after=wanted.not_after,
        replaces=replaces,
    )
    order = await env.repo.create_order(order, fresh, now)
    authzs = [a for _, a, _ in chosen if a is not None] + fresh
    status = core.order_status(order, authzs, now)
    return json_response(
        codec.order_json(order, status, None, env.urls), 201, location=env.urls.order(order.id)
    )


async def replaced_serial(env: Env, owner: Account, cert_id: str, identifiers: tuple[Identifier, ...]) -> str:
    """The serial a newOrder's `replaces` names, after RFC 9773 5's checks."""
    aki, serial = codec.parse_ari_cert_id(cert_id)
    record = await env.services.store.certificates.get(format(serial, "x"), ca=env.binding.ca)
    ca = await env.services.authority.get(env.binding.ca)
    if record is None or aki != ca.key_identifier:
        raise malformed(f"replaces: no certificate {cert_id} from this CA")
    if record.requester.get("protocol") != PROTOCOL or record.requester.get("principal") != owner.id:
        raise unauthorized("replaces names a certificate another account ordered")
    if not {f"{i.type}:{i.value}" for i in identifiers} & set(record.sans):
        raise malformed("replaces names a certificate that shares no identifier with this order")
    if await env.repo.replaced_by(record.serial) is not None:
        raise AcmeProblem(ProblemType.ALREADY_REPLACED, f"certificate {cert_id} was already replaced")
    return record.serial


_Owned = TypeVar("_Owned", Order, Authorization)


async def verified_and_owned(
    env: Env, read: Callable[[str], Awaitable[_Owned | None]], part: str, what: str
) -> tuple[SignedRequest, Account, _Owned]:
    """The verified request and the resource its URL part names, which must be the
    account's and this CA's (else not found). One read after the other: on SQLite each
    is answered at once, and running them side by side cost two tasks per request; on
    PostgreSQL this is a fetch more per request (each still shared with other requests')."""
    signed = await env.verify()
    found = await read(env.request.match_info[part])
    owner = signed.require_account()
    if found is None or found.ca != env.binding.ca or found.account != owner.id:
        raise not_found(what)
    return signed, owner, found


async def verify_for_order(env: Env) -> tuple[SignedRequest, Account, Order]:
    return await verified_and_owned(env, env.repo.order, "order", "order")


def order_reply(env: Env, order: Order, authzs: list[Authorization]) -> web.Response:
    now = env.now()
    status = core.order_status(order, authzs, now)
    headers = {}
    if status is OrderStatus.PROCESSING:
        headers["Retry-After"] = str(env.settings.retry_after_seconds)
    return json_response(
        codec.order_json(order, status, core.order_error(order, authzs, now), env.urls),
        location=env.urls.order(order.id),
        headers=headers,
    )


async def order(request: web.Request) -> web.Response:
    env = env_of(request)
    signed, _, found = await verify_for_order(env)
    if not signed.post_as_get:
        raise malformed("an order is read with POST-as-GET (empty payload)")
    if found.status is OrderStatus.PROCESSING:
        found = await recover_finalize(env, found)
    return order_reply(env, found, await env.repo.authzs(found.authzs))


async def recover_finalize(env: Env, processing: Order) -> Order:
    """An order left "processing" by a finalize that stored its certificate and stopped
    before saving the order: the certificate is found by its request key and the order
    completed with it (else the order is as it was; it turns invalid once abandoned)."""
    stored = await env.services.store.certificates.by_request_key(core.issuance_key(processing))
    if stored is None:
        return processing
    return await complete(env, processing, stored.serial, stored.der, stored.not_after)


async def complete(env: Env, processing: Order, serial: str, der: bytes, not_after: dt.datetime) -> Order:
    """Make the order valid with its certificate; if another worker did it first, its
    saved order is the answer."""
    try:
        done = await env.repo.save_order(core.complete_order(processing, serial, der), env.now())
    except Conflict:
        current = await env.repo.order(processing.id)
        if current is None or current.status is not OrderStatus.VALID:
            raise
        return current
    if done.replaces is not None:
        try:
            await env.repo.mark_replaced(done.replaces, done.id, env.now(), not_after)
        except Conflict:
            log.info("certificate %s replaced twice", done.replaces, extra={"ca": env.binding.ca})
    return done


async def finalize(request: web.Request) -> web.Response:
    env = env_of(request)
    signed, owner, found = await verify_for_order(env)
    authzs = await env.repo.authzs(found.authzs)
    now = env.now()
    status = core.order_status(found, authzs, now)
    if status is not OrderStatus.READY:
        raise AcmeProblem(ProblemType.ORDER_NOT_READY, f"the order is {status.value}, not ready")
    csr_der = codec.finalize_request(signed.payload)
    parsed, names, common_name = translate.parse_order_csr(csr_der)
    core.check_csr_identifiers(names, found)
    if parsed.public_key_der == signed.key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        raise AcmeProblem(ProblemType.BAD_CSR, "the certificate key must not be the account key")
    try:
        processing = await env.repo.save_order(core.begin_finalize(found, authzs, now), now)
    except Conflict:
        raise AcmeProblem(ProblemType.ORDER_NOT_READY, "the order is already being finalized") from None
    await check_caa(env, processing)
    requester = requester_of(request, PROTOCOL, owner.id)
    try:
        issued = await env.services.issuance.issue(
            translate.issuance_request(processing, csr_der, common_name, env.settings, requester)
        )
    except CegError as exc:
        problem = translate.problem_of(exc, finalizing=True)
        amendable = problem.type in (
            ProblemType.BAD_CSR,
            ProblemType.RATE_LIMITED,
            ProblemType.INVALID_PROFILE,
        )
        after = core.reopen_order(processing) if amendable else core.fail_order(processing, problem)
        await env.repo.save_order(after, env.now())
        raise problem from None
    except BaseException:
        await asyncio.shield(env.repo.save_order(core.fail_order(processing, internal_problem()), env.now()))
        raise
    done = await complete(env, processing, issued.serial_hex, issued.der, issued.not_after)
    log.info(
        "ACME certificate issued",
        extra={"ca": env.binding.ca, "account": owner.id, "order": done.id, "serial": issued.serial_hex},
    )
    return order_reply(env, done, authzs)


async def check_caa(env: Env, processing: Order) -> None:
    """When the binding names its CAA identities, the order's DNS names must allow them
    (protocols/acme/caa.py); else the order fails with a caa problem, one subproblem per
    name."""
    identities = env.settings.caa_identities
    if not identities:
        return
    names = [i.value for i in processing.identifiers if i.type == "dns"]
    lookup = caa.resolver_lookup(ChallengeValidator.resolver(env.settings))
    refused = await caa.refusals(names, identities, lookup)
    if not refused:
        return
    problem = AcmeProblem(
        ProblemType.CAA,
        "CAA records forbid this CA to issue for " + ", ".join(name for name, _ in refused),
        403,
        tuple(Subproblem(ProblemType.CAA, why, {"type": "dns", "value": name}) for name, why in refused),
    )
    await env.repo.save_order(core.fail_order(processing, problem), env.now())
    raise problem


def internal_problem() -> AcmeProblem:
    return AcmeProblem(ProblemType.SERVER_INTERNAL, "issuance failed", 500)


def pem_chain(ders: list[bytes]) -> bytes:
    blocks = []
    for der in ders:
        text = base64.b64encode(der).decode()
        body = "\n".join(text[i : i + 64] for i in range(0, len(text), 64))
        blocks.append(f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n")
    return "".join(blocks).encode()


async def certificate(request: web.Request) -> web.Response:
    """Download (7.4.2): the leaf and its issuing CAs; alternate 1 adds the root, for
    relying parties that want the whole path in one file."""
    env = env_of(request)
    signed, _, found = await verify_for_order(env)
    if not signed.post_as_get:
        raise malformed("a certificate is fetched with POST-as-GET (empty payload)")
    if found.status is not OrderStatus.VALID or found.certificate is None:
        raise not_found("certificate")
    leaf = found.certificate_der
    if leaf is None:
        record = await env.services.store.certificates.get(found.certificate)
        if record is None:
            raise not_found("certificate")
        leaf = record.der
    ca = await env.services.authority.get(found.ca)
    chains = [[leaf, *ca.chain[:-1]], [leaf, *ca.chain]]
    alternate = request.match_info.get("alt")
    index = int(alternate) if alternate and alternate.isdigit() else 0
    if alternate is not None and not 1 <= index < len(chains):
        raise not_found("certificate chain")
    response = web.Response(body=pem_chain(chains[index]), content_type=codec.PEM_CHAIN)
    for other in range(len(chains)):
        if other != index:
            response.headers.add("Link", f'<{env.urls.certificate(found.id, other)}>;rel="alternate"')
    return response


# --- authorizations and challenges (7.5) ---------------------------------------------------------


async def verify_for_authz(env: Env) -> tuple[SignedRequest, Account, Authorization]:
    return await verified_and_owned(env, env.repo.authz, "authz", "authorization")


def authz_headers(env: Env, authz: Authorization) -> dict[str, str]:
    return {"Retry-After": str(env.settings.retry_after_seconds)} if core.processing_retry(authz) else {}


async def authorization(request: web.Request) -> web.Response:
    env = env_of(request)
    signed, _, authz = await verify_for_authz(env)
    if signed.payload is not None and codec.authz_update(signed.payload):
        authz = await env.repo.save_authz(core.deactivate_authz(authz, env.now()), env.now())
    status = core.authz_status(authz, env.now())
    return json_response(codec.authz_json(authz, status, env.urls), headers=authz_headers(env, authz))


async def challenge(request: web.Request) -> web.Response:
    env = env_of(request)
    signed, owner, authz = await verify_for_authz(env)
    challenge_id = request.match_info["challenge"]
    if signed.payload is not None:
        codec.payload_object(signed.payload, "challenge")
        to_validate = core.should_validate(authz, challenge_id, env.now(), env.settings)
        if to_validate is not None:
            target = ValidationTarget(
                authz.identifier,
                to_validate.type,
                to_validate.token,
                core.key_authorization(to_validate.token, owner.thumbprint),
            )
            task = env.ctx.spawn(validate_and_record(env, authz, challenge_id, target))
            # Most validations take milliseconds: answering with the result saves the
            # client a round of polling. Slow ones go on in the background.
            done, _ = await asyncio.wait({task}, timeout=env.settings.inline_validation_seconds)
            validated = task.result() if done else None
            if validated is not None:
                authz = validated
            else:
                marked = await update_authz(
                    env, authz, lambda a, now: core.mark_processing(a, challenge_id, now)
                )
                authz = marked or (await env.repo.authz(authz.id)) or authz
    found = authz.challenge(challenge_id)
    if found is None:
        raise not_found("challenge")
    headers = authz_headers(env, authz)
    headers["Link"] = f'<{env.urls.authz(authz.id)}>;rel="up"'
    return json_response(codec.challenge_json(found, authz.id, env.urls), headers=headers)


async def update_authz(
    env: Env,
    authz: Authorization,
    decide: Callable[[Authorization, dt.datetime], Authorization | None],
) -> Authorization | None:
    """Decide on the authorization as read, store with compare-and-set, and on a lost race
    re-read and decide again; the stored result, or None when there was nothing to do."""
    current: Authorization | None = authz
    for _ in range(10):
        now = env.now()
        updated = decide(current, now) if current is not None else None
        if updated is None:
            return None
        try:
            return await env.repo.save_authz(updated, now)
        except Conflict:
            current = await env.repo.authz(authz.id)
    log.warning("authorization %s kept changing; update abandoned", authz.id)
    return None


async def validate_and_record(
    env: Env, authz: Authorization, challenge_id: str, target: ValidationTarget
) -> Authorization | None:
    try:
        error = await env.ctx.validator.validate(target, env.settings)
    except Exception:  # a validator bug must still end the challenge, not leave it pending
        log.exception("validation of %s failed unexpectedly", target.identifier.value)
        error = AcmeProblem(ProblemType.SERVER_INTERNAL, "validation failed", 500).to_json()
    settings = env.settings
    stored = await update_authz(
        env, authz, lambda a, now: core.record_validation(a, challenge_id, error, now, settings)
    )
    log.info(
        "ACME challenge %s",
        "valid" if error is None else "invalid",
        extra={"ca": env.binding.ca, "authz": authz.id, "type": target.challenge_type, "error": error},
    )
    return stored


# --- revocation (7.6) ----------------------------------------------------------------------------


async def revoke_cert(request: web.Request) -> web.Response:
    env = env_of(request)
    signed = await env.verify(KeyRef.EITHER)
    wanted = codec.revocation_request(signed.payload)
    reason = translate.revocation_reason(wanted.reason)
    try:
        cert = x509.load_der_x509_certificate(wanted.certificate)
    except ValueError:
        raise malformed("certificate does not parse") from None
    record = await env.services.store.certificates.get(format(cert.serial_number, "x"), ca=env.binding.ca)
    if record is None or record.der != wanted.certificate:
        raise AcmeProblem(ProblemType.MALFORMED, "this CA did not issue that certificate", 404)
    if signed.account is not None:
        actor = f"{PROTOCOL}:{signed.account.id}"
        if not await account_may_revoke(env, signed.account, record.requester, record.sans):
            raise unauthorized("the account neither ordered this certificate nor holds authorizations for it")
    else:
        spki = cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if spki != signed.key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ):
            raise unauthorized("the JWS key is not the certificate's key")
        actor = f"{PROTOCOL}:certificate-key"
    if record.status is CertStatus.REVOKED:
        raise AcmeProblem(ProblemType.ALREADY_REVOKED, "the certificate is already revoked")
    try:
        await env.services.revocation.revoke(
            StatusChange(record.serial, actor=actor, reason=reason, ca=env.binding.ca)
        )
    except InvalidState as exc:
        raise AcmeProblem(ProblemType.ALREADY_REVOKED, exc.message) from None
    except NotFound:
        raise AcmeProblem(ProblemType.MALFORMED, "this CA did not issue that certificate", 404) from None
    log.info("ACME revocation", extra={"ca": env.binding.ca, "serial": record.serial, "actor": actor})
    return web.Response(status=200)


async def account_may_revoke(
    env: Env, owner: Account, requester: dict[str, str | None], sans: tuple[str, ...]
) -> bool:
    """The ordering account, or one holding valid authorizations for every name (7.6)."""
    if requester.get("protocol") == PROTOCOL and requester.get("principal") == owner.id:
        return True
    now = env.now()
    for san in sans:
        kind, _, value = san.partition(":")
        if kind not in ("dns", "ip"):
            return False
        ident, wildcard = core.authz_identifier(core.Identifier(kind, value))
        held = await env.repo.valid_authzs_for(owner.id, ident, wildcard, limit=5)
        if not any(core.authz_status(a, now) is AuthzStatus.VALID for a in held):
            return False
    return bool(sans)


# --- renewal information (RFC 9773) ------------------------------------------------------------


async def renewal_info(request: web.Request) -> web.Response:
    env = env_of(request)
    aki, serial = codec.parse_ari_cert_id(request.match_info["cert_id"])
    record = await env.services.store.certificates.get(format(serial, "x"), ca=env.binding.ca)
    ca = await env.services.authority.get(env.binding.ca)
    if record is None or aki != ca.key_identifier:
        raise not_found("certificate")
    revoked = record.status in (CertStatus.REVOKED, CertStatus.HELD)
    start, end = core.renewal_window(record.not_before, record.not_after, revoked, env.now())
    return json_response(
        codec.renewal_info_json(start, end),
        headers={"Retry-After": str(env.settings.renewal_info_retry_seconds)},
    )


# --- the sub-application ------------------------------------------------------------------------


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/{ca}/directory", directory)
    r.add_route("HEAD", "/{ca}/new-nonce", new_nonce)
    r.add_get("/{ca}/new-nonce", new_nonce, allow_head=False)
    r.add_post("/{ca}/new-account", new_account)
    r.add_post("/{ca}/acct/{account}", account)
    r.add_post("/{ca}/acct/{account}/orders", account_orders)
    r.add_post("/{ca}/key-change", key_change)
    r.add_post("/{ca}/new-order", new_order)
    r.add_post("/{ca}/order/{order}", order)
    r.add_post("/{ca}/order/{order}/finalize", finalize)
    r.add_post("/{ca}/authz/{authz}", authorization)
    r.add_post("/{ca}/chall/{authz}/{challenge}", challenge)
    r.add_post("/{ca}/cert/{order}", certificate)
    r.add_post("/{ca}/cert/{order}/{alt}", certificate)
    r.add_post("/{ca}/revoke-cert", revoke_cert)
    r.add_get("/{ca}/renewal-info/{cert_id}", renewal_info)
