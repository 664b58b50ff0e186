"""The per-process ACME context's cache of account keys (protocols/acme/context.py)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from protocols.acme.context import AcmeContext
from protocols.acme.jws import jwk_of
from protocols.acme.problems import AcmeProblem, ProblemType


async def test_one_key_however_spelled_is_parsed_once() -> None:
    ctx = AcmeContext()
    jwk = jwk_of(ec.generate_private_key(ec.SECP256R1()).public_key())
    first = ctx.account_key(jwk)
    again = ctx.account_key({**jwk, "use": "sig", "kid": "whatever"})  # extra members
    assert again is first


@pytest.mark.parametrize("bad", [["x"], {"x": 1}, 7, None])
async def test_a_member_that_is_not_a_string_is_refused_not_crashed_on(bad: object) -> None:
    ctx = AcmeContext()
    jwk = jwk_of(ec.generate_private_key(ec.SECP256R1()).public_key())
    with pytest.raises(AcmeProblem) as caught:
        ctx.account_key({**jwk, "x": bad})
    assert caught.value.type in (ProblemType.BAD_PUBLIC_KEY, ProblemType.MALFORMED)
