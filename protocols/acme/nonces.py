"""Replay nonces (RFC 8555 sections 6.5 and 7.2), I/O-free.

A nonce is base64url(issued-at seconds (4 bytes) || 12 random bytes || HMAC-SHA256 of
those, first 16 bytes) under a key every worker shares (stored once in the state store).
So minting costs no database write, any worker can tell a nonce it never saw is genuine
and fresh, and only a *used* nonce is written (auth.py records it in the store's spent tokens; a
second use finds it and is badNonce). Used-nonce records expire with the nonce.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import struct

from ca_core.clock import RandomBytes
from protocols.acme.jws import b64url, b64url_decode
from protocols.acme.problems import AcmeProblem, ProblemType

_BODY = 4 + 12
_MAC = 16


def mint(key: bytes, now: dt.datetime, random_bytes: RandomBytes) -> str:
    body = struct.pack(">I", int(now.timestamp())) + random_bytes(12)
    return b64url(body + _mac(key, body))


def _mac(key: bytes, body: bytes) -> bytes:
    return hmac.digest(key, body, hashlib.sha256)[:_MAC]  # one-shot: OpenSSL's fast path


def bad_nonce(detail: str) -> AcmeProblem:
    return AcmeProblem(ProblemType.BAD_NONCE, detail, 400)


def check(
    key: bytes, nonce: object, now: dt.datetime, lifetime_seconds: int, floor: dt.datetime | None = None
) -> dt.datetime:
    """The nonce's expiry if it is genuine and fresh; badNonce otherwise (use not checked).
    Nonces minted before `floor` are refused too (the store may have lost their use)."""
    if not isinstance(nonce, str) or not nonce:
        raise bad_nonce("the protected header has no nonce")
    try:
        raw = b64url_decode(nonce, "nonce")
    except AcmeProblem:
        raise bad_nonce("the nonce is not one of ours") from None
    if len(raw) != _BODY + _MAC:
        raise bad_nonce("the nonce is not one of ours")
    body, mac = raw[:_BODY], raw[_BODY:]
    if not hmac.compare_digest(_mac(key, body), mac):
        raise bad_nonce("the nonce is not one of ours")
    issued = dt.datetime.fromtimestamp(struct.unpack(">I", body[:4])[0], dt.UTC)
    expires = issued + dt.timedelta(seconds=lifetime_seconds)
    # A little slack for workers whose clocks differ by a second or two.
    if issued > now + dt.timedelta(seconds=30) or now >= expires:
        raise bad_nonce("the nonce has expired")
    if floor is not None and issued < floor:
        raise bad_nonce("the nonce was minted before the server restarted")
    return expires
