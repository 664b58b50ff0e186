"""ACME decisions and state transitions, free of I/O (RFC 8555 sections 7.1.6, 7.4, 7.5,
8; RFC 8738; RFC 9773 section 4).

Rules of this module:
- Every function takes the stored objects, the binding's settings and `now`, and returns
  new objects (or raises an AcmeProblem). Nothing here reads a clock, a database or the
  network; routes.py loads, calls these, and stores the result with compare-and-set.
- Statuses that follow from time are computed, not stored: an authorization past its
  `expires` is expired, an order past its `expires` (not yet valid) is invalid, and an
  order's pending/ready/invalid follows from its authorizations (7.1.6).

Authorization: pending -> valid | invalid (a challenge's result); pending or valid ->
deactivated (client), revoked (server), expired (time). Challenge: pending -> processing
-> valid | invalid. Order: pending -> ready (all authorizations valid) -> processing
(finalize) -> valid (certificate issued); invalid when an authorization fails or expires,
when the order expires, or when issuance fails for a reason the client cannot amend.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import ipaddress
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ca_core.errors import BadSubjectAltName
from ca_core.x509.names import check_dns_name
from protocols.acme.jws import b64url
from protocols.acme.model import (
    Account,
    AccountStatus,
    Authorization,
    AuthzStatus,
    Challenge,
    ChallengeStatus,
    Identifier,
    Order,
    OrderStatus,
)
from protocols.acme.problems import AcmeProblem, ProblemType, Subproblem, malformed
from protocols.acme.settings import AcmeSettings

RandomId = Callable[[], str]

# --- identifiers (RFC 8555 7.1.3/7.1.4, RFC 8738) ------------------------------------------


def _check_one(raw: object, settings: AcmeSettings) -> Identifier:
    """One requested identifier in canonical form; AcmeProblem naming what is wrong."""
    if (
        not isinstance(raw, dict)
        or not isinstance(raw.get("type"), str)
        or not isinstance(raw.get("value"), str)
    ):
        raise malformed("each identifier is an object with string type and value")
    kind, value = raw["type"], raw["value"]
    if kind == "ip":
        if not settings.allow_ip_identifiers:
            raise AcmeProblem(ProblemType.UNSUPPORTED_IDENTIFIER, "IP identifiers are not accepted here")
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            raise AcmeProblem(ProblemType.MALFORMED, f"{value!r} is not an IP address") from None
        if settings.allowed_ip_ranges and not any(
            address in ipaddress.ip_network(r) for r in settings.allowed_ip_ranges
        ):
            raise AcmeProblem(ProblemType.REJECTED_IDENTIFIER, f"{address} is outside the allowed IP ranges")
        return Identifier("ip", str(address))
    if kind != "dns":
        raise AcmeProblem(ProblemType.UNSUPPORTED_IDENTIFIER, f"identifier type {kind!r} is not supported")
    if value.endswith(".") or value != value.strip():
        raise AcmeProblem(ProblemType.MALFORMED, f"DNS identifier {value!r} must not end in a dot")
    try:
        ipaddress.ip_address(value)
    except ValueError:
        pass
    else:
        raise AcmeProblem(ProblemType.MALFORMED, f"{value!r} is an IP address: use an identifier of type ip")
    try:
        name = check_dns_name(value)
    except BadSubjectAltName as exc:
        raise AcmeProblem(ProblemType.REJECTED_IDENTIFIER, exc.message) from None
    if "*" in name[2:] or (name.startswith("*") and not name.startswith("*.")):
        raise AcmeProblem(ProblemType.MALFORMED, f"{value!r}: a wildcard is only the whole leftmost label")
    if name.startswith("*.") and not settings.allow_wildcards:
        raise AcmeProblem(ProblemType.REJECTED_IDENTIFIER, f"wildcard names are not issued here: {value}")
    base = name.removeprefix("*.")
    if settings.allowed_domain_suffixes and not any(
        base == s or base.endswith("." + s) for s in settings.allowed_domain_suffixes
    ):
        raise AcmeProblem(
            ProblemType.REJECTED_IDENTIFIER,
            f"{name} is not under an allowed domain ({', '.join(settings.allowed_domain_suffixes)})",
        )
    return Identifier("dns", name)


def check_identifiers(raw: object, settings: AcmeSettings) -> tuple[Identifier, ...]:
    """Canonical, de-duplicated identifiers of a newOrder; every refusal becomes a subproblem."""
    if not isinstance(raw, list) or not raw:
        raise malformed("identifiers must be a non-empty list")
    if len(raw) > settings.max_identifiers:
        raise AcmeProblem(
            ProblemType.REJECTED_IDENTIFIER,
            f"an order may name at most {settings.max_identifiers} identifiers",
        )
    found: list[Identifier] = []
    problems: list[Subproblem] = []
    for item in raw:
        try:
            found.append(_check_one(item, settings))
        except AcmeProblem as exc:
            ident = (
                {"type": str(item.get("type")), "value": str(item.get("value"))}
                if isinstance(item, dict)
                else {}
            )
            problems.append(Subproblem(exc.type, exc.detail, ident))
    if problems:
        kinds = {p.type for p in problems}
        top = kinds.pop() if len(kinds) == 1 else ProblemType.COMPOUND
        detail = problems[0].detail if len(problems) == 1 else f"{len(problems)} identifiers were refused"
        raise AcmeProblem(top, detail, subproblems=tuple(problems))
    return tuple(dict.fromkeys(found))


def authz_identifier(ident: Identifier) -> tuple[Identifier, bool]:
    """The identifier an authorization proves: wildcards drop their "*." (RFC 8555 7.1.4)."""
    if ident.type == "dns" and ident.value.startswith("*."):
        return Identifier("dns", ident.value[2:]), True
    return ident, False


def challenge_types_for(ident: Identifier, wildcard: bool, settings: AcmeSettings) -> tuple[str, ...]:
    """dns-01 alone proves a wildcard (7.1.4); IP addresses have no dns-01 (RFC 8738 7)."""
    allowed = settings.challenge_types
    if wildcard:
        wanted: tuple[str, ...] = ("dns-01",)
    elif ident.type == "ip":
        wanted = ("http-01", "tls-alpn-01")
    else:
        wanted = ("http-01", "dns-01", "tls-alpn-01")
    types = tuple(t for t in allowed if t in wanted)
    if not types:
        raise AcmeProblem(
            ProblemType.REJECTED_IDENTIFIER,
            f"no challenge type enabled here can prove {'*.' if wildcard else ''}{ident.value}",
        )
    return types


# --- computed statuses ----------------------------------------------------------------------


def authz_status(authz: Authorization, now: dt.datetime) -> AuthzStatus:
    if authz.status in (AuthzStatus.PENDING, AuthzStatus.VALID) and now >= authz.expires:
        return AuthzStatus.EXPIRED
    return authz.status


# A finalize that has been "processing" this long was interrupted (its worker stopped
# between marking the order and storing the certificate): the order is invalid.
PROCESSING_ABANDONED = dt.timedelta(minutes=5)


def order_status(order: Order, authzs: Sequence[Authorization], now: dt.datetime) -> OrderStatus:
    if order.status is OrderStatus.PROCESSING:
        since = order.processing_since
        abandoned = since is not None and now - since > PROCESSING_ABANDONED
        return OrderStatus.INVALID if abandoned else OrderStatus.PROCESSING
    if order.status in (OrderStatus.VALID, OrderStatus.INVALID):
        return order.status
    if now >= order.expires:
        return OrderStatus.INVALID
    statuses = [authz_status(a, now) for a in authzs]
    if any(s is not AuthzStatus.PENDING and s is not AuthzStatus.VALID for s in statuses):
        return OrderStatus.INVALID
    if statuses and all(s is AuthzStatus.VALID for s in statuses):
        return OrderStatus.READY
    return OrderStatus.PENDING


def order_error(order: Order, authzs: Sequence[Authorization], now: dt.datetime) -> dict[str, Any] | None:
    """Why an order is invalid, as a problem document, when it is."""
    if order.error is not None or order_status(order, authzs, now) is not OrderStatus.INVALID:
        return order.error
    if order.status is OrderStatus.PROCESSING:
        return AcmeProblem(
            ProblemType.SERVER_INTERNAL, "issuance was interrupted; place a new order", 500
        ).to_json()
    if now >= order.expires:
        return AcmeProblem(ProblemType.MALFORMED, "the order expired before it was finalized").to_json()
    for authz in authzs:
        status = authz_status(authz, now)
        if status is AuthzStatus.INVALID:
            failed = next((c.error for c in authz.challenges if c.error), None)
            return failed or AcmeProblem(ProblemType.UNAUTHORIZED, "authorization failed").to_json()
        if status is not AuthzStatus.PENDING and status is not AuthzStatus.VALID:
            return AcmeProblem(
                ProblemType.UNAUTHORIZED, f"authorization for {authz.identifier.value} is {status.value}"
            ).to_json()
    return None


def processing_retry(authz: Authorization) -> bool:
    return any(c.status is ChallengeStatus.PROCESSING for c in authz.challenges)


# --- orders and authorizations ----------------------------------------------------------------


def order_window(
    not_before: dt.datetime | None, not_after: dt.datetime | None, now: dt.datetime, settings: AcmeSettings
) -> None:
    """notBefore/notAfter of a newOrder (7.4): ordered, near now, within max validity."""
    if not_before is not None and not now - dt.timedelta(days=1) <= not_before <= now + dt.timedelta(days=1):
        raise malformed("notBefore must be within a day of now")
    start = not_before or now
    if not_after is not None:
        if not_after <= start or not_after <= now:
            raise malformed("notAfter must be after notBefore and in the future")
        if not_after - start > dt.timedelta(days=settings.max_validity_days):
            raise malformed(f"the validity asked for exceeds {settings.max_validity_days} days")


def reusable(authz: Authorization, account: str, now: dt.datetime, settings: AcmeSettings) -> bool:
    """A valid authorization of this account validated within the reuse window."""
    if settings.authz_reuse_seconds <= 0 or authz.account != account:
        return False
    if authz_status(authz, now) is not AuthzStatus.VALID or authz.validated is None:
        return False
    return now - authz.validated <= dt.timedelta(seconds=settings.authz_reuse_seconds)


def new_authorization(
    authz_id: str,
    ca: str,
    account: str,
    ident: Identifier,
    wildcard: bool,
    now: dt.datetime,
    expires: dt.datetime,
    settings: AcmeSettings,
    new_id: RandomId,
    new_token: RandomId,
) -> Authorization:
    challenges = tuple(
        Challenge(id=new_id(), type=t, token=new_token())
        for t in challenge_types_for(ident, wildcard, settings)
    )
    return Authorization(
        id=authz_id,
        ca=ca,
        account=account,
        identifier=ident,
        wildcard=wildcard,
        status=AuthzStatus.PENDING,
        expires=expires,
        challenges=challenges,
        created=now,
    )


def order_expiry(now: dt.datetime, reused: Iterable[Authorization], settings: AcmeSettings) -> dt.datetime:
    """An order never outlives the authorizations it reuses (so it cannot turn invalid
    merely because a reused authorization expired first)."""
    return min([now + dt.timedelta(seconds=settings.order_lifetime_seconds), *(a.expires for a in reused)])


def valid_authz_lifetime(settings: AcmeSettings) -> dt.timedelta:
    return dt.timedelta(seconds=max(settings.authz_reuse_seconds, settings.order_lifetime_seconds))


def deactivate_authz(authz: Authorization, now: dt.datetime) -> Authorization:
    """Client deactivation (7.5.2): from pending or valid only."""
    status = authz_status(authz, now)
    if status not in (AuthzStatus.PENDING, AuthzStatus.VALID):
        raise malformed(f"authorization is {status.value}; only pending or valid ones can be deactivated")
    return dataclasses.replace(authz, status=AuthzStatus.DEACTIVATED)


# --- challenges (section 8) --------------------------------------------------------------------


def key_authorization(token: str, account_thumbprint: str) -> str:
    return f"{token}.{account_thumbprint}"


def dns01_txt(key_auth: str) -> str:
    return b64url(hashlib.sha256(key_auth.encode()).digest())


def tls_alpn01_digest(key_auth: str) -> bytes:
    return hashlib.sha256(key_auth.encode()).digest()


def stale_after(settings: AcmeSettings) -> dt.timedelta:
    """A validation still "processing" after this was abandoned (its worker died)."""
    attempts = settings.validation_attempts
    return dt.timedelta(
        seconds=attempts * settings.validation_timeout_seconds
        + (attempts - 1) * settings.validation_retry_seconds
        + 10
    )


def should_validate(
    authz: Authorization, challenge_id: str, now: dt.datetime, settings: AcmeSettings
) -> Challenge | None:
    """The challenge to validate for a client's POST {} (7.5.1), or None when there is
    nothing to start (already final, or another worker is on it)."""
    challenge = authz.challenge(challenge_id)
    if challenge is None:
        raise AcmeProblem(ProblemType.MALFORMED, "no such challenge", 404)
    if challenge.status in (ChallengeStatus.VALID, ChallengeStatus.INVALID):
        return None
    status = authz_status(authz, now)
    if status is not AuthzStatus.PENDING:
        raise malformed(f"the authorization is {status.value}; its challenges cannot be attempted")
    if (
        challenge.status is ChallengeStatus.PROCESSING
        and challenge.processing_since is not None
        and now - challenge.processing_since < stale_after(settings)
    ):
        return None
    return challenge


def mark_processing(authz: Authorization, challenge_id: str, now: dt.datetime) -> Authorization | None:
    challenge = authz.challenge(challenge_id)
    if challenge is None or challenge.status is not ChallengeStatus.PENDING:
        return None
    if authz_status(authz, now) is not AuthzStatus.PENDING:
        return None
    return _with_challenge(
        authz, dataclasses.replace(challenge, status=ChallengeStatus.PROCESSING, processing_since=now)
    )


def record_validation(
    authz: Authorization,
    challenge_id: str,
    error: dict[str, Any] | None,
    now: dt.datetime,
    settings: AcmeSettings,
) -> Authorization | None:
    """The authorization after a validation result, or None if it has moved on meanwhile."""
    challenge = authz.challenge(challenge_id)
    if challenge is None or challenge.status in (ChallengeStatus.VALID, ChallengeStatus.INVALID):
        return None
    if authz_status(authz, now) is not AuthzStatus.PENDING:
        return None
    if error is None:
        done = dataclasses.replace(challenge, status=ChallengeStatus.VALID, validated=now, error=None)
        return dataclasses.replace(
            _with_challenge(authz, done),
            status=AuthzStatus.VALID,
            validated=now,
            expires=now + valid_authz_lifetime(settings),
        )
    failed = dataclasses.replace(challenge, status=ChallengeStatus.INVALID, error=error)
    return dataclasses.replace(_with_challenge(authz, failed), status=AuthzStatus.INVALID)


def _with_challenge(authz: Authorization, challenge: Challenge) -> Authorization:
    return dataclasses.replace(
        authz, challenges=tuple(challenge if c.id == challenge.id else c for c in authz.challenges)
    )


# --- finalize (7.4) -------------------------------------------------------------------------------


def csr_identifiers(dns_names: Iterable[str], ips: Iterable[str], common_name: str | None) -> set[Identifier]:
    names = {Identifier("dns", n.lower()) for n in dns_names}
    names |= {Identifier("ip", str(ipaddress.ip_address(i))) for i in ips}
    if common_name:
        try:
            names.add(Identifier("ip", str(ipaddress.ip_address(common_name))))
        except ValueError:
            names.add(Identifier("dns", common_name.lower()))
    return names


def check_csr_identifiers(requested: set[Identifier], order: Order) -> None:
    """The CSR must name exactly the order's identifiers (7.4), else badCSR."""
    wanted = set(order.identifiers)
    if requested == wanted:
        return
    extra = sorted(i.value for i in requested - wanted)
    missing = sorted(i.value for i in wanted - requested)
    parts = []
    if extra:
        parts.append(f"names not in the order: {', '.join(extra)}")
    if missing:
        parts.append(f"order identifiers missing from the CSR: {', '.join(missing)}")
    raise AcmeProblem(ProblemType.BAD_CSR, "CSR does not match the order: " + "; ".join(parts))


def begin_finalize(order: Order, authzs: Sequence[Authorization], now: dt.datetime) -> Order:
    status = order_status(order, authzs, now)
    if status is not OrderStatus.READY:
        raise AcmeProblem(ProblemType.ORDER_NOT_READY, f"the order is {status.value}, not ready", 403)
    return dataclasses.replace(order, status=OrderStatus.PROCESSING, processing_since=now)


def issuance_key(order: Order) -> str:
    """The CA core's idempotency key of an order's certificate: an interrupted finalize
    (certificate stored, order not yet valid) is completed with it, not issued again."""
    return hashlib.sha256(f"acme\0{order.ca}\0{order.id}".encode()).hexdigest()


def complete_order(order: Order, serial: str, der: bytes | None = None) -> Order:
    return dataclasses.replace(
        order, status=OrderStatus.VALID, certificate=serial, certificate_der=der, processing_since=None
    )


def reopen_order(order: Order) -> Order:
    """Issuance refused the request in a way the client can amend: ready again (7.4)."""
    return dataclasses.replace(order, status=OrderStatus.READY, processing_since=None)


def fail_order(order: Order, problem: AcmeProblem) -> Order:
    return dataclasses.replace(
        order, status=OrderStatus.INVALID, error=problem.to_json(), processing_since=None
    )


# --- accounts (7.3) --------------------------------------------------------------------------------


def check_contacts(raw: object) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > 10:
        raise malformed("contact must be a list of at most 10 URLs")
    out = []
    for item in raw:
        if not isinstance(item, str) or len(item) > 320:
            raise AcmeProblem(ProblemType.INVALID_CONTACT, "each contact is a mailto: URL")
        if not item.startswith("mailto:"):
            raise AcmeProblem(ProblemType.UNSUPPORTED_CONTACT, f"only mailto: contacts are supported: {item}")
        address = item[len("mailto:") :]
        local, at, domain = address.partition("@")
        if not local or not at or "," in address or "?" in address or " " in address or not domain:
            raise AcmeProblem(ProblemType.INVALID_CONTACT, f"{item!r} is not a single mailto: address")
        try:
            check_dns_name(domain)
        except BadSubjectAltName:
            raise AcmeProblem(ProblemType.INVALID_CONTACT, f"{item!r} has an invalid domain") from None
        out.append(item)
    return tuple(out)


def update_account(account: Account, payload: dict[str, Any]) -> Account:
    """Account update or deactivation (7.3.2, 7.3.6)."""
    changed = account
    if "contact" in payload:
        changed = dataclasses.replace(changed, contact=check_contacts(payload["contact"]))
    if payload.get("termsOfServiceAgreed") is True:
        changed = dataclasses.replace(changed, tos_agreed=True)
    # Clients such as certbot's library echo the whole account back, status included:
    # the current status is no change; deactivated is the only change a client may ask.
    if "status" in payload and payload["status"] != account.status.value:
        if payload["status"] != AccountStatus.DEACTIVATED.value:
            raise malformed("an account's status can only be changed to deactivated")
        changed = dataclasses.replace(changed, status=AccountStatus.DEACTIVATED)
    return changed


# --- ACME Renewal Information (RFC 9773 4.2) -------------------------------------------------------


def renewal_window(
    not_before: dt.datetime, not_after: dt.datetime, revoked: bool, now: dt.datetime
) -> tuple[dt.datetime, dt.datetime]:
    """The suggested renewal window: the last third of the lifetime, renewing before the
    final sixth; a revoked certificate gets a window in the past (renew now)."""
    if revoked:
        return now - dt.timedelta(hours=1), now
    lifetime = not_after - not_before
    return not_after - lifetime / 3, not_after - lifetime / 6
