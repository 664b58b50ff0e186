"""The I/O-free ACME core: identifiers, state machines, expiry, reuse, CSR matching, ARI."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools

import pytest

from protocols.acme import core
from protocols.acme.model import (
    Account,
    AccountStatus,
    AuthzStatus,
    ChallengeStatus,
    Identifier,
    Order,
    OrderStatus,
)
from protocols.acme.problems import AcmeProblem, ProblemType
from protocols.acme.settings import AcmeSettings

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
S = AcmeSettings()
ids = (f"id{n}" for n in itertools.count())


def authz(ident: str = "a.example", wildcard: bool = False, **kw):  # type: ignore[no-untyped-def]
    made = core.new_authorization(
        next(ids),
        "ca",
        "acct",
        Identifier("dns", ident),
        wildcard,
        NOW,
        NOW + dt.timedelta(days=7),
        S,
        lambda: next(ids),
        lambda: next(ids),
    )
    return dataclasses.replace(made, **kw)


def order(authzs, **kw):  # type: ignore[no-untyped-def]
    base = Order(
        id="o",
        ca="ca",
        account="acct",
        status=OrderStatus.PENDING,
        expires=NOW + dt.timedelta(days=7),
        identifiers=(Identifier("dns", "a.example"),),
        authzs=tuple(a.id for a in authzs),
        profile="privatessl-tls-server",
        created=NOW,
    )
    return dataclasses.replace(base, **kw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"type": "dns", "value": "WWW.Example.COM"}, Identifier("dns", "www.example.com")),
        ({"type": "dns", "value": "*.example.com"}, Identifier("dns", "*.example.com")),
        ({"type": "ip", "value": "2001:db8:0::1"}, Identifier("ip", "2001:db8::1")),
    ],
    ids=["case-folded", "wildcard", "ipv6-canonical"],
)
def test_identifiers_are_canonical(raw: dict[str, str], expected: Identifier) -> None:
    assert core.check_identifiers([raw, raw], S) == (expected,)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"type": "email", "value": "a@b.c"}, ProblemType.UNSUPPORTED_IDENTIFIER),
        ({"type": "dns", "value": "a..b"}, ProblemType.REJECTED_IDENTIFIER),
        ({"type": "dns", "value": "a.*.b"}, ProblemType.REJECTED_IDENTIFIER),
        ({"type": "dns", "value": "foo*.b"}, ProblemType.REJECTED_IDENTIFIER),
        ({"type": "dns", "value": "example.com."}, ProblemType.MALFORMED),
        ({"type": "dns", "value": "10.0.0.1"}, ProblemType.MALFORMED),
        ({"type": "ip", "value": "10.0.0.256"}, ProblemType.MALFORMED),
    ],
)
def test_bad_identifiers_are_refused(raw: dict[str, str], problem: ProblemType) -> None:
    with pytest.raises(AcmeProblem) as refused:
        core.check_identifiers([raw], S)
    assert refused.value.type is problem
    assert refused.value.subproblems[0].identifier == raw


def test_policy_suffixes_and_ranges_name_each_refused_identifier() -> None:
    settings = AcmeSettings(allowed_domain_suffixes=("corp.example",), allowed_ip_ranges=("10.0.0.0/8",))
    ok = [
        {"type": "dns", "value": "a.corp.example"},
        {"type": "dns", "value": "corp.example"},
        {"type": "ip", "value": "10.1.2.3"},
        {"type": "dns", "value": "*.corp.example"},
    ]
    assert len(core.check_identifiers(ok, settings)) == 4
    with pytest.raises(AcmeProblem) as refused:
        core.check_identifiers(
            [*ok, {"type": "dns", "value": "evilcorp.example"}, {"type": "ip", "value": "11.0.0.1"}], settings
        )
    assert refused.value.type is ProblemType.REJECTED_IDENTIFIER
    assert [s.identifier["value"] for s in refused.value.subproblems] == ["evilcorp.example", "11.0.0.1"]


def test_wildcards_and_ips_get_the_right_challenges() -> None:
    assert core.challenge_types_for(Identifier("dns", "x"), True, S) == ("dns-01",)
    assert core.challenge_types_for(Identifier("ip", "10.0.0.1"), False, S) == ("http-01", "tls-alpn-01")
    only_http = AcmeSettings(challenge_types=("http-01",))
    with pytest.raises(AcmeProblem):
        core.challenge_types_for(Identifier("dns", "x"), True, only_http)


def test_order_is_ready_when_all_authorizations_are_valid() -> None:
    a, b = authz(), authz("b.example")
    assert core.order_status(order([a, b]), [a, b], NOW) is OrderStatus.PENDING
    a_valid = core.record_validation(a, a.challenges[0].id, None, NOW, S)
    b_valid = core.record_validation(b, b.challenges[1].id, None, NOW, S)
    assert a_valid is not None and b_valid is not None
    assert a_valid.status is AuthzStatus.VALID and a_valid.challenges[0].status is ChallengeStatus.VALID
    assert core.order_status(order([a, b]), [a_valid, b], NOW) is OrderStatus.PENDING
    assert core.order_status(order([a, b]), [a_valid, b_valid], NOW) is OrderStatus.READY


def test_a_failed_challenge_invalidates_authorization_and_order() -> None:
    a = authz()
    error = AcmeProblem(ProblemType.CONNECTION, "refused").to_json()
    failed = core.record_validation(a, a.challenges[0].id, error, NOW, S)
    assert failed is not None and failed.status is AuthzStatus.INVALID
    assert core.order_status(order([a]), [failed], NOW) is OrderStatus.INVALID
    assert core.order_error(order([a]), [failed], NOW) == error
    # Once final, later results change nothing.
    assert core.record_validation(failed, a.challenges[1].id, None, NOW, S) is None


def test_expiry_is_a_function_of_now() -> None:
    a = authz()
    later = a.expires + dt.timedelta(seconds=1)
    assert core.authz_status(a, later) is AuthzStatus.EXPIRED
    o = order([a])
    assert core.order_status(o, [a], o.expires) is OrderStatus.INVALID
    assert "expired" in core.order_error(o, [a], o.expires)["detail"]  # type: ignore[index]
    with pytest.raises(AcmeProblem) as late:
        core.should_validate(a, a.challenges[0].id, later, S)
    assert "expired" in late.value.detail
    with pytest.raises(AcmeProblem) as not_ready:
        core.begin_finalize(o, [a], o.expires)
    assert not_ready.value.type is ProblemType.ORDER_NOT_READY


def test_valid_authorization_is_reused_only_by_its_account_within_the_window() -> None:
    a = core.record_validation(authz(), "id-none", None, NOW, S)
    assert a is None  # unknown challenge id: nothing recorded
    v = authz()
    v = core.record_validation(v, v.challenges[0].id, None, NOW, S)
    assert v is not None
    assert core.reusable(v, "acct", NOW + dt.timedelta(hours=1), S)
    assert not core.reusable(v, "other", NOW, S)
    assert not core.reusable(v, "acct", NOW + dt.timedelta(seconds=S.authz_reuse_seconds + 1), S)
    assert not core.reusable(v, "acct", NOW, AcmeSettings(authz_reuse_seconds=0))
    # An order never outlives what it reuses.
    assert core.order_expiry(NOW, [v], S) == min(
        v.expires, NOW + dt.timedelta(seconds=S.order_lifetime_seconds)
    )


def test_processing_validation_is_not_restarted_until_stale() -> None:
    a = authz()
    cid = a.challenges[0].id
    busy = core.mark_processing(a, cid, NOW)
    assert busy is not None and busy.challenges[0].status is ChallengeStatus.PROCESSING
    assert core.processing_retry(busy)
    assert core.should_validate(busy, cid, NOW + dt.timedelta(seconds=1), S) is None
    assert core.should_validate(busy, cid, NOW + core.stale_after(S), S) is not None


def test_deactivation_only_from_pending_or_valid() -> None:
    a = authz()
    gone = core.deactivate_authz(a, NOW)
    assert gone.status is AuthzStatus.DEACTIVATED
    assert core.order_status(order([a]), [gone], NOW) is OrderStatus.INVALID
    with pytest.raises(AcmeProblem):
        core.deactivate_authz(gone, NOW)


def test_finalize_transitions() -> None:
    a = authz()
    a = core.record_validation(a, a.challenges[0].id, None, NOW, S)
    assert a is not None
    o = order([a])
    processing = core.begin_finalize(o, [a], NOW)
    assert core.order_status(processing, [a], NOW) is OrderStatus.PROCESSING
    with pytest.raises(AcmeProblem):
        core.begin_finalize(processing, [a], NOW)
    assert core.order_status(core.reopen_order(processing), [a], NOW) is OrderStatus.READY
    valid = core.complete_order(processing, "abc")
    assert core.order_status(valid, [a], NOW + dt.timedelta(days=30)) is OrderStatus.VALID
    abandoned_at = NOW + core.PROCESSING_ABANDONED + dt.timedelta(seconds=1)
    assert core.order_status(processing, [a], abandoned_at) is OrderStatus.INVALID
    assert core.order_error(processing, [a], abandoned_at)["type"].endswith("serverInternal")  # type: ignore[index]
    failed = core.fail_order(processing, AcmeProblem(ProblemType.SERVER_INTERNAL, "x", 500))
    assert core.order_status(failed, [a], NOW) is OrderStatus.INVALID and failed.error is not None


def test_csr_must_name_exactly_the_order() -> None:
    o = order([], identifiers=(Identifier("dns", "a.example"), Identifier("ip", "10.0.0.1")))
    core.check_csr_identifiers(core.csr_identifiers(["A.example"], ["10.0.0.1"], "a.example"), o)
    with pytest.raises(AcmeProblem) as extra:
        core.check_csr_identifiers(core.csr_identifiers(["a.example", "b.example"], ["10.0.0.1"], None), o)
    assert extra.value.type is ProblemType.BAD_CSR and "b.example" in extra.value.detail
    with pytest.raises(AcmeProblem) as missing:
        core.check_csr_identifiers(core.csr_identifiers(["a.example"], [], None), o)
    assert "10.0.0.1" in missing.value.detail
    with pytest.raises(AcmeProblem):  # a CN outside the order counts as a name
        core.check_csr_identifiers(core.csr_identifiers(["a.example"], ["10.0.0.1"], "c.example"), o)


def test_order_window() -> None:
    core.order_window(None, NOW + dt.timedelta(days=30), NOW, S)
    for nb, na in [
        (NOW - dt.timedelta(days=2), None),
        (None, NOW - dt.timedelta(days=1)),
        (None, NOW + dt.timedelta(days=S.max_validity_days + 1)),
        (NOW + dt.timedelta(hours=1), NOW),
    ]:
        with pytest.raises(AcmeProblem):
            core.order_window(nb, na, NOW, S)


def test_account_update_and_contacts() -> None:
    acct = Account("a", "ca", AccountStatus.VALID, {}, "tp", (), False, NOW)
    updated = core.update_account(acct, {"contact": ["mailto:ops@example.com"], "termsOfServiceAgreed": True})
    assert updated.contact == ("mailto:ops@example.com",) and updated.tos_agreed
    assert core.update_account(acct, {"status": "deactivated"}).status is AccountStatus.DEACTIVATED
    assert core.update_account(acct, {"status": "valid"}) == acct  # echoed back: no change
    with pytest.raises(AcmeProblem):
        core.update_account(acct, {"status": "revoked"})
    for bad, kind in [
        (["tel:+123"], ProblemType.UNSUPPORTED_CONTACT),
        (["mailto:a@b.example,c@d.example"], ProblemType.INVALID_CONTACT),
        (["mailto:nobody"], ProblemType.INVALID_CONTACT),
    ]:
        with pytest.raises(AcmeProblem) as refused:
            core.check_contacts(bad)
        assert refused.value.type is kind


def test_renewal_window() -> None:
    nb, na = NOW, NOW + dt.timedelta(days=90)
    start, end = core.renewal_window(nb, na, False, NOW)
    assert start == nb + dt.timedelta(days=60) and end == nb + dt.timedelta(days=75)
    start, end = core.renewal_window(nb, na, True, NOW + dt.timedelta(days=1))
    assert end == NOW + dt.timedelta(days=1) and start < end


def test_key_authorization_digests() -> None:
    # RFC 8555 8.4: base64url(SHA-256(key authorization)), here a value computed apart.
    ka = core.key_authorization("token", "thumb")
    assert ka == "token.thumb"
    assert core.dns01_txt(ka) == "lCdftpJCXapaZHkBGIZbcubeKW8RmA0jSG_aZN01zbU"
    assert len(core.tls_alpn01_digest(ka)) == 32
