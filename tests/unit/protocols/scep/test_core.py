"""core.py without I/O: binding settings, capabilities, algorithm choices, the
transaction state machine, RA renewal timing."""

from __future__ import annotations

import datetime as dt

import pytest

from protocols._shared import cms
from protocols.scep import core, frontend
from protocols.scep.core import Attempt, Outcome, ScepSettings, Step, Transaction
from protocols.scep.errors import FailInfo, ScepFailure

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


# --- settings --------------------------------------------------------------------------------


def test_default_settings_round_trip_through_check_settings() -> None:
    defaults = frontend.default_settings("issuing")
    assert defaults["default_profile"] in defaults["allowed_profiles"]
    checked = frontend.check_settings(defaults)
    assert checked["challenge"] == "dynamic" and checked["allow_legacy_clients"] is False


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"chalenge": "none"}, "unknown SCEP setting 'chalenge'"),
        ({"challenge": "sometimes"}, "challenge"),
        ({"challenge": "static"}, "needs challenge_password"),
        ({"challenge": "static", "challenge_password": "short"}, "8 to 255"),
        ({"approval": "maybe"}, "approval"),
        ({"allow_renewal": "yes"}, "true or false"),
        ({"challenge_ttl_seconds": 10}, "from 60"),
        ({"max_clock_skew_seconds": True}, "integer"),
        ({"challenge": "static", "challenge_hash": "plain-text"}, "not a hash"),
    ],
)
def test_bad_settings_name_the_key(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        frontend.check_settings(settings)


def test_static_password_is_replaced_by_its_hash_and_survives_a_second_check() -> None:
    checked = frontend.check_settings({"challenge": "static", "challenge_password": "s3cret-s3cret"})
    assert "challenge_password" not in checked and checked["challenge_hash"].startswith("scrypt$")
    assert frontend.check_settings(checked)["challenge_hash"] == checked["challenge_hash"]
    # switching away from static drops the hash
    assert "challenge_hash" not in frontend.check_settings({**checked, "challenge": "none"})


def test_plain_password_is_refused_where_nothing_can_hash_it() -> None:
    with pytest.raises(ValueError, match="only when saving"):
        core.parse_settings({"challenge": "static", "challenge_password": "s3cret-s3cret"})


# --- capabilities and algorithms -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "rollover", "expected"),
    [
        (ScepSettings(), False, ["POSTPKIOperation", "SHA-256", "SHA-512", "AES", "SCEPStandard", "Renewal"]),
        (
            ScepSettings(allow_renewal=False),
            False,
            ["POSTPKIOperation", "SHA-256", "SHA-512", "AES", "SCEPStandard"],
        ),
        (
            ScepSettings(allow_legacy_clients=True),
            True,
            [
                "POSTPKIOperation",
                "SHA-256",
                "SHA-512",
                "AES",
                "SCEPStandard",
                "DES3",
                "Renewal",
                "GetNextCACert",
            ],
        ),
    ],
)
def test_capabilities(settings: ScepSettings, rollover: bool, expected: list[str]) -> None:
    assert list(core.capabilities(settings, rollover)) == expected


def test_ciphers_accepted_and_answered() -> None:
    assert cms.DES_EDE3_CBC not in core.accepted_ciphers(ScepSettings())
    assert {cms.DES_EDE3_CBC, cms.DES_CBC} <= core.accepted_ciphers(ScepSettings(allow_legacy_clients=True))
    assert core.reply_cipher(cms.DES_CBC) == cms.DES_EDE3_CBC  # never single DES back
    assert core.reply_cipher(cms.AES_128_CBC) == cms.AES_128_CBC
    assert core.reply_digest("sha1") == "sha256"
    assert core.reply_digest("sha512") == "sha512"


def test_signing_time_window() -> None:
    core.check_signing_time(None, NOW, 60)
    core.check_signing_time(NOW - dt.timedelta(seconds=59), NOW, 60)
    core.check_signing_time(NOW - dt.timedelta(days=9), NOW, 0)  # 0 turns the check off
    with pytest.raises(ScepFailure) as caught:
        core.check_signing_time(NOW + dt.timedelta(seconds=61), NOW, 60)
    assert caught.value.fail_info is FailInfo.BAD_TIME


# --- transactions ----------------------------------------------------------------------------------


def _tx(*attempts: Attempt) -> Transaction:
    return Transaction(attempts)


ISSUED = Attempt("a", Outcome.ISSUED, NOW, serial="1f")
PENDING = Attempt("a", Outcome.PENDING, NOW, approval_id="x")
ISSUING = Attempt("a", Outcome.ISSUING, NOW - dt.timedelta(seconds=10))
ABANDONED = Attempt("a", Outcome.ISSUING, NOW - dt.timedelta(minutes=10))
REJECTED = Attempt("a", Outcome.REJECTED, NOW, reason="no")


@pytest.mark.parametrize(
    ("transaction", "fingerprint", "step"),
    [
        pytest.param(_tx(), "a", Step.START, id="new"),
        pytest.param(_tx(ISSUED), "a", Step.REPLAY_ISSUED, id="same-request-issued"),
        pytest.param(_tx(PENDING), "a", Step.POLL_APPROVAL, id="same-request-pending"),
        pytest.param(_tx(ISSUING), "a", Step.WAIT, id="same-request-being-issued"),
        pytest.param(_tx(ABANDONED), "a", Step.START, id="same-request-abandoned"),
        pytest.param(_tx(REJECTED), "a", Step.START, id="same-request-rejected-retried"),
        pytest.param(_tx(ISSUED), "b", Step.START, id="other-request-after-issue"),
        pytest.param(_tx(PENDING), "b", Step.REFUSE_BUSY, id="other-request-while-pending"),
        pytest.param(_tx(ISSUING), "b", Step.REFUSE_BUSY, id="other-request-while-issuing"),
    ],
)
def test_decide_enrolment(transaction: Transaction, fingerprint: str, step: Step) -> None:
    assert core.decide_enrolment(transaction, fingerprint, NOW).step is step


def test_decide_poll() -> None:
    assert core.decide_poll(_tx(PENDING), NOW).step is Step.POLL_APPROVAL
    assert core.decide_poll(_tx(ISSUED), NOW).step is Step.REPLAY_ISSUED
    assert core.decide_poll(_tx(ISSUING), NOW).step is Step.WAIT
    for transaction, info in (
        (_tx(), FailInfo.BAD_CERT_ID),
        (_tx(REJECTED), FailInfo.BAD_REQUEST),
        (_tx(ABANDONED), FailInfo.BAD_CERT_ID),
    ):
        with pytest.raises(ScepFailure) as caught:
            core.decide_poll(transaction, NOW)
        assert caught.value.fail_info is info


def test_transaction_round_trips_and_replaces_an_attempt() -> None:
    tx = Transaction().with_attempt(ISSUING).with_attempt(Attempt("b", Outcome.ISSUED, NOW, serial="2"))
    tx = tx.with_attempt(ISSUED)
    assert [a.fingerprint for a in tx.attempts] == ["b", "a"] and tx.find("a") == ISSUED
    assert Transaction.from_json(tx.to_json()) == tx


def test_a_refused_request_is_heard_afresh_and_polls_as_its_failure() -> None:
    refused = Attempt("a", Outcome.REFUSED, NOW, reason="wrong challengePassword", fail_info="2")
    assert core.decide_enrolment(_tx(refused), "a", NOW).step is Step.START
    with pytest.raises(ScepFailure) as caught:
        core.decide_poll(_tx(refused), NOW)
    assert caught.value.fail_info is FailInfo.BAD_REQUEST and caught.value.audited


def test_fingerprint_tells_renewals_with_the_same_csr_apart() -> None:
    csr = b"csr"
    assert core.request_fingerprint("19", csr, None) != core.request_fingerprint("17", csr, b"cert-1")
    assert core.request_fingerprint("17", csr, b"cert-1") != core.request_fingerprint("17", csr, b"cert-2")
    assert core.transaction_key("a", "t") != core.transaction_key("b", "t")


def test_choose_profile() -> None:
    allowed = ("p1", "p2")
    assert core.choose_profile(allowed, "p1", "p2") == "p2"
    assert core.choose_profile(allowed, "p1", "elsewhere") == "p1"
    assert core.choose_profile(allowed, "p1", None, previous="p2") == "p2"


def test_ra_renewal_due() -> None:
    start = NOW
    end = start + dt.timedelta(days=365)
    far = end + dt.timedelta(days=3650)
    assert not core.ra_renewal_due(start, end, far, start + dt.timedelta(days=300))
    assert core.ra_renewal_due(start, end, far, start + dt.timedelta(days=336))
    assert not core.ra_renewal_due(start, end, end, start + dt.timedelta(days=364))  # CA ends first
    short_end = start + dt.timedelta(days=30)
    assert core.ra_renewal_due(start, short_end, far, start + dt.timedelta(days=21))
