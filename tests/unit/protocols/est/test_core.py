"""EST decisions without I/O: settings, authentication, profile choice, reenroll names,
trust anchors, CSR attributes, parked requests."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from ca_core.approvals import ApprovalState
from ca_core.errors import PolicyViolation, ProfileNotEnabled, UnsupportedKey
from ca_core.model import KeyAlgorithm
from protocols.est import EstFrontend, codec, core
from protocols.est.errors import EstError
from tests.support.pki import new_key

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
OK = core.Credential(principal="alice")
BAD = core.Credential(problem="wrong")
CERT_OK = core.Credential(principal="cert:01")
CERT_BAD = core.Credential(problem="untrusted certificate")
A = core.ABSENT
M = core.AuthMode


# --- settings ----------------------------------------------------------------------------------


def test_default_settings_round_trip_and_name_the_four_profiles() -> None:
    defaults = EstFrontend().default_settings("issuing")
    assert defaults["allowed_profiles"] == list(core.PROFILES)
    assert defaults["default_profile"] == "est-digital-signature"
    settings = core.EstSettings.parse(defaults)
    assert settings == core.EstSettings()
    assert core.EstSettings.parse(settings.as_dict()) == settings


@pytest.mark.parametrize(
    ("settings", "names"),
    [
        ({"authentication": "kerberos"}, "authentication"),
        ({"manual_approval": "yes"}, "manual_approval"),
        ({"retry_after_seconds": 0}, "retry_after_seconds"),
        ({"retry_after_seconds": True}, "retry_after_seconds"),
        ({"key_types": []}, "key_types"),
        ({"key_types": ["ed25519"]}, "key_types"),
        ({"trust_anchors": ["not a pem"]}, "trust_anchors[0]"),
        ({"trust_anchors": [42]}, "trust_anchors[0]"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_settings_name_the_key(settings: dict[str, object], names: str) -> None:
    with pytest.raises(ValueError, match=names.replace("[", r"\[").replace("]", r"\]")):
        EstFrontend().check_settings(settings)


# --- authentication ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "basic", "cert", "outcome"),
    [
        (M.BASIC, OK, A, "alice"),
        (M.BASIC, A, CERT_OK, 401),
        (M.BASIC, BAD, A, 401),
        (M.CLIENT_CERT, A, CERT_OK, "cert:01"),
        (M.CLIENT_CERT, OK, A, 403),
        (M.CLIENT_CERT, A, CERT_BAD, 403),
        (M.EITHER, OK, A, "alice"),
        (M.EITHER, A, CERT_OK, "cert:01"),
        (M.EITHER, OK, CERT_BAD, "alice"),
        (M.EITHER, BAD, CERT_OK, 401),  # a wrong password is refused even with a good cert
        (M.EITHER, A, CERT_BAD, 401),
        (M.EITHER, A, A, 401),
        (M.BOTH, OK, CERT_OK, "alice"),
        (M.BOTH, OK, A, 403),
        (M.BOTH, OK, CERT_BAD, 403),
        (M.BOTH, A, CERT_OK, 401),
    ],
)
def test_authentication_modes(
    mode: core.AuthMode, basic: core.Credential, cert: core.Credential, outcome: str | int
) -> None:
    if isinstance(outcome, str):
        assert core.authenticate(mode, basic, cert, "issuing") == outcome
        return
    with pytest.raises(EstError) as err:
        core.authenticate(mode, basic, cert, "issuing")
    assert err.value.status == outcome
    # 401 always says how to authenticate; 403 never offers a useless challenge.
    assert ("WWW-Authenticate" in err.value.headers) == (outcome == 401)
    if cert is CERT_BAD:
        assert "untrusted certificate" in err.value.message


def test_basic_scope() -> None:
    assert core.basic_scope_problem({}, "issuing") is None
    assert core.basic_scope_problem({"protocol": "est", "ca": "issuing"}, "issuing") is None
    assert "for wstep" in (core.basic_scope_problem({"protocol": "wstep"}, "issuing") or "")
    assert core.basic_scope_problem({"ca": "other"}, "issuing")
    assert core.basic_scope_problem({"cas": ["a", "b"]}, "issuing")
    assert core.basic_scope_problem({"cas": ["issuing"]}, "issuing") is None


def test_plain_http_is_refused_unless_the_binding_allows_it() -> None:
    with pytest.raises(EstError) as err:
        core.require_transport(core.EstSettings(), secure=False)
    assert err.value.status == 403
    core.require_transport(core.EstSettings(require_https=False), secure=False)
    core.require_transport(core.EstSettings(), secure=True)


# --- trust anchors ------------------------------------------------------------------------------


def _cert(
    subject: str, issuer: str, key, signer, not_after: dt.datetime, ca: bool = False
) -> x509.Certificate:  # type: ignore[no-untyped-def]
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(not_after)
    )
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    return builder.sign(signer, hashes.SHA256())


def test_anchored_accepts_certificates_an_anchor_issued_directly() -> None:
    maker_key, other_key, device_key = new_key(), new_key(), new_key()
    later = NOW + dt.timedelta(days=30)
    maker = _cert("Maker CA", "Maker CA", maker_key, maker_key, later, ca=True)
    impostor = _cert("Maker CA", "Maker CA", other_key, other_key, later, ca=True)
    device = _cert("device", "Maker CA", device_key, maker_key, later)
    forged = _cert("device", "Maker CA", device_key, other_key, later)
    expired = _cert("device", "Maker CA", device_key, maker_key, NOW - dt.timedelta(seconds=1))
    assert core.anchored(device, [impostor, maker], NOW) == maker
    assert core.anchored(forged, [maker], NOW) is None  # same issuer name, wrong signature
    assert core.anchored(expired, [maker], NOW) is None
    assert core.anchored(device, [], NOW) is None
    assert core.anchored(device, [device], NOW) == device  # a pinned certificate


# --- what is asked -------------------------------------------------------------------------------


def test_key_types_restricted_by_the_binding() -> None:
    settings = core.EstSettings(key_types=(KeyAlgorithm.EC_P384,))
    assert core.check_key_type(settings, new_key(KeyAlgorithm.EC_P384).public_key()) is KeyAlgorithm.EC_P384
    with pytest.raises(PolicyViolation, match="ec-p256 is not accepted here; allowed: ec-p384"):
        core.check_key_type(settings, new_key(KeyAlgorithm.EC_P256).public_key())
    from cryptography.hazmat.primitives.asymmetric import ed25519

    with pytest.raises(UnsupportedKey):
        core.check_key_type(core.EstSettings(), ed25519.Ed25519PrivateKey.generate().public_key())


BITS = {
    "est-digital-signature": ("digitalSignature",),
    "est-key-encipherment": ("keyEncipherment",),
    "est-non-repudiation": ("nonRepudiation",),
    "est-signature-key-encipherment": ("digitalSignature", "keyEncipherment"),
}


@pytest.mark.parametrize(
    ("requested", "previous", "chosen"),
    [
        (None, None, "est-digital-signature"),
        (frozenset({"nonRepudiation"}), None, "est-non-repudiation"),
        (frozenset({"keyAgreement"}), None, "est-key-encipherment"),  # EC spelling
        (frozenset({"digitalSignature", "keyEncipherment"}), None, "est-signature-key-encipherment"),
        (frozenset({"digitalSignature"}), None, "est-digital-signature"),
        (frozenset({"nonRepudiation"}), "est-key-encipherment", "est-key-encipherment"),  # renewal
        (frozenset({"keyCertSign"}), None, ProfileNotEnabled),
    ],
)
def test_profile_from_the_requested_key_usage(
    requested: frozenset[str] | None, previous: str | None, chosen: str | type
) -> None:
    allowed = tuple(BITS)
    if isinstance(chosen, str):
        assert core.choose_profile(allowed, allowed[0], BITS, requested, True, previous) == chosen
    else:
        with pytest.raises(ProfileNotEnabled, match="offered: est-digital-signature"):
            core.choose_profile(allowed, allowed[0], BITS, requested, True, previous)


def test_profile_by_key_usage_can_be_switched_off_and_respects_allowed() -> None:
    only = ("est-digital-signature",)
    assert core.choose_profile(only, only[0], BITS, frozenset({"keyCertSign"}), False) == only[0]
    with pytest.raises(ProfileNotEnabled):
        core.choose_profile(only, only[0], BITS, frozenset({"nonRepudiation"}), True)
    # A renewed certificate's profile that the binding no longer allows is not kept.
    assert core.choose_profile(only, only[0], BITS, None, True, "est-non-repudiation") == only[0]


def _named(cn: str, dns: tuple[str, ...]) -> x509.Certificate:
    key = new_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CA")]))
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW)
        .not_valid_after(NOW + dt.timedelta(days=1))
    )
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), False)
    return builder.sign(key, hashes.SHA256())


def test_reenroll_keeps_subject_and_sans_unless_allowed() -> None:
    current = _named("router", ("a.example", "b.example"))
    same = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "router")])
    other = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "switch")])
    sans = [x509.DNSName("b.example"), x509.DNSName("a.example")]
    core.check_renewal(same, sans, False, current, allow_change=False)  # order does not matter
    for subject, names in ((other, sans), (same, sans[:1]), (same, [*sans, x509.DNSName("c.example")])):
        with pytest.raises(EstError) as err:
            core.check_renewal(subject, names, False, current, allow_change=False)
        assert err.value.status == 400 and "simplereenroll" in err.value.message
        core.check_renewal(subject, names, False, current, allow_change=True)
    core.check_renewal(same, [], False, _named("router", ()), allow_change=False)
    for allow in (False, True):
        with pytest.raises(EstError, match="ChangeSubjectName"):
            core.check_renewal(same, sans, True, current, allow_change=allow)


def test_csr_attributes_follow_the_binding() -> None:
    restricted = core.EstSettings(key_types=(KeyAlgorithm.EC_P384,))
    wanted = core.csr_attributes(restricted, ("digitalSignature",), link_identity=True)
    assert wanted[0] == codec.WantedAttribute(codec.CHALLENGE_PASSWORD)
    assert codec.WantedAttribute("1.2.840.10045.2.1", (codec.OidValue("1.3.132.0.34"),)) in wanted
    assert not any(w.oid == "1.2.840.113549.1.1.1" for w in wanted)  # no RSA offered
    assert wanted[-1].values == (codec.KeyUsageRequest(frozenset({"digitalSignature"})),)
    everything = core.csr_attributes(core.EstSettings(), ("digitalSignature",))
    rsa = next(w for w in everything if w.oid == "1.2.840.113549.1.1.1")
    assert rsa.values == tuple(codec.IntegerValue(n) for n in (2048, 3072, 4096))
    assert codec.WantedAttribute(codec.CHALLENGE_PASSWORD) not in everything


# --- parked requests -----------------------------------------------------------------------------


def test_pending_key_is_the_same_for_the_same_public_key_only() -> None:
    spki_a, spki_b = b"key-a", b"key-b"
    enroll, reenroll = core.Operation.ENROLL, core.Operation.REENROLL
    assert core.pending_key("ca", enroll, spki_a) == core.pending_key("ca", enroll, spki_a)
    assert core.pending_key("ca", enroll, spki_a) != core.pending_key("ca", enroll, spki_b)
    assert core.pending_key("ca", enroll, spki_a) != core.pending_key("ca", reenroll, spki_a)
    assert core.pending_key("ca", enroll, spki_a) != core.pending_key("ca2", enroll, spki_a)


def test_next_step_after_the_officer() -> None:
    parked = core.ParkedRequest.from_document(core.ParkedRequest("a1", "alice").as_document())
    assert core.next_step(parked, "alice", ApprovalState.PENDING) is core.NextStep.WAIT
    assert core.next_step(parked, "alice", ApprovalState.ISSUED) is core.NextStep.DELIVER
    assert core.next_step(parked, "alice", ApprovalState.REJECTED) is core.NextStep.REFUSE
    with pytest.raises(EstError) as err:
        core.next_step(parked, "mallory", ApprovalState.ISSUED)
    assert err.value.status == 403
    assert core.pending_expired(NOW, NOW) and not core.pending_expired(None, NOW)


def test_identity_link_compares_the_challenge_password_with_tls_unique() -> None:
    import base64

    linked = core.EstSettings(link_identity=True)
    unique = b"\x01\x02finished"
    core.check_identity_link(core.EstSettings(), None, None)  # off: nothing asked
    core.check_identity_link(linked, base64.b64encode(unique).decode(), unique)
    for challenge, tls_unique, words in (
        (None, unique, "needs a challengePassword"),
        ("AAAA", unique, "not this connection's tls-unique"),
        (base64.b64encode(unique).decode(), None, "TLS 1.2"),
    ):
        with pytest.raises(EstError) as err:
            core.check_identity_link(linked, challenge, tls_unique)
        assert err.value.status == 400 and words in err.value.message
