"""The hand-built CRL (ca_core/status/crl.py) against cryptography as an independent oracle."""

from __future__ import annotations

import datetime as dt

import pytest
from asn1crypto import core as asn1
from asn1crypto import crl as asn1_crl
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ObjectIdentifier

from ca_core.keys.file import FileSigner, generate_private_key
from ca_core.model import KeyAlgorithm
from ca_core.status import der
from ca_core.status.crl import CrlContent, RevokedEntry, sign_crl

NOW = dt.datetime(2026, 3, 1, 10, 30, tzinfo=dt.UTC)
ISSUER = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Oracle CA")])
KEY_ID = bytes(range(20))


def content(algorithm: KeyAlgorithm, number: int = 7, this_update: dt.datetime = NOW) -> CrlContent:
    return CrlContent(
        issuer_name=ISSUER.public_bytes(),
        authority_key_id=KEY_ID,
        number=number,
        this_update=this_update,
        next_update=this_update + dt.timedelta(days=7),
        expired_certs_since=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        signature_algorithm=algorithm,
    )


ENTRIES: list[RevokedEntry] = [
    (
        "1f",
        NOW - dt.timedelta(hours=1) + dt.timedelta(microseconds=5),
        "keyCompromise",
        NOW - dt.timedelta(days=2),
    ),
    ("8000000000000000000000000000000a", NOW, "certificateHold", None),  # high bit: needs 00
    ("abc", NOW, None, None),  # odd length, no reason
    ("00ff", NOW, "unspecified", None),  # leading zero octet dropped; unspecified: no reasonCode
    ("7fffffffffffffffffffffffffffffff", NOW, "superseded", None),
]


@pytest.mark.parametrize("algorithm", [KeyAlgorithm.EC_P256, KeyAlgorithm.EC_P384, KeyAlgorithm.RSA_2048])
def test_crl_parses_verifies_and_says_what_was_revoked(algorithm: KeyAlgorithm) -> None:
    key = generate_private_key(algorithm)
    signer = FileSigner("file:t", key)
    data, count = sign_crl(content(algorithm), ENTRIES, signer)
    assert count == len(ENTRIES)
    crl = x509.load_der_x509_crl(data)
    assert crl.is_signature_valid(key.public_key())
    assert crl.issuer == ISSUER
    assert crl.last_update_utc == NOW and crl.next_update_utc == NOW + dt.timedelta(days=7)
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 7
    aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == KEY_ID
    expired = crl.extensions.get_extension_for_oid(ObjectIdentifier("2.5.29.60"))
    assert not expired.critical
    assert asn1.GeneralizedTime.load(expired.value.value).native == dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    by_serial = {r.serial_number: r for r in crl}
    assert set(by_serial) == {int(s, 16) for s, *_ in ENTRIES}
    first = by_serial[0x1F]
    assert first.revocation_date_utc == (NOW - dt.timedelta(hours=1)).replace(microsecond=0)
    assert (
        first.extensions.get_extension_for_class(x509.CRLReason).value.reason
        is x509.ReasonFlags.key_compromise
    )
    invalidity = first.extensions.get_extension_for_class(x509.InvalidityDate).value.invalidity_date_utc
    assert invalidity == NOW - dt.timedelta(days=2)
    held = by_serial[0x8000000000000000000000000000000A]
    assert (
        held.extensions.get_extension_for_class(x509.CRLReason).value.reason
        is x509.ReasonFlags.certificate_hold
    )
    # RFC 5280 5.3.1: reasonCode unspecified SHOULD be absent; so is a missing reason.
    assert len(by_serial[0xABC].extensions) == 0
    assert len(by_serial[0xFF].extensions) == 0


def test_tbs_is_byte_for_byte_what_cryptography_builds() -> None:
    """Same content through cryptography's CRL builder gives the same TBSCertList."""
    key = ec.generate_private_key(ec.SECP256R1())
    entries = [e for e in ENTRIES if e[2] != "unspecified"]
    ours = x509.load_der_x509_crl(
        sign_crl(content(KeyAlgorithm.EC_P256), entries, FileSigner("file:t", key))[0]
    )
    reasons = {
        "keyCompromise": x509.ReasonFlags.key_compromise,
        "certificateHold": x509.ReasonFlags.certificate_hold,
    }
    reasons["superseded"] = x509.ReasonFlags.superseded
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ISSUER)
        .last_update(NOW)
        .next_update(NOW + dt.timedelta(days=7))
        .add_extension(x509.AuthorityKeyIdentifier(KEY_ID, None, None), False)
        .add_extension(x509.CRLNumber(7), False)
        .add_extension(
            x509.UnrecognizedExtension(
                ObjectIdentifier("2.5.29.60"), der.generalized_time(dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
            ),
            False,
        )
    )
    for serial, revoked_at, reason, invalidity in entries:
        entry = x509.RevokedCertificateBuilder().serial_number(int(serial, 16))
        entry = entry.revocation_date(revoked_at.replace(microsecond=0))
        if reason:
            entry = entry.add_extension(x509.CRLReason(reasons[reason]), False)
        if invalidity:
            entry = entry.add_extension(x509.InvalidityDate(invalidity.replace(tzinfo=None)), False)
        builder = builder.add_revoked_certificate(entry.build())
    oracle = builder.sign(key, hashes.SHA256())
    assert ours.tbs_certlist_bytes == oracle.tbs_certlist_bytes


def test_empty_crl_leaves_out_revoked_certificates() -> None:
    """RFC 5280 5.1.2.6: when nothing is revoked the field is absent, not an empty list."""
    signer = FileSigner("file:t", ec.generate_private_key(ec.SECP256R1()))
    data, count = sign_crl(content(KeyAlgorithm.EC_P256), [], signer)
    assert count == 0
    parsed = asn1_crl.CertificateList.load(data)
    assert isinstance(parsed["tbs_cert_list"]["revoked_certificates"], asn1.Void)
    assert len(x509.load_der_x509_crl(data)) == 0


def test_dates_from_2050_are_generalized_time() -> None:
    later = dt.datetime(2051, 6, 1, tzinfo=dt.UTC)
    signer = FileSigner("file:t", ec.generate_private_key(ec.SECP256R1()))
    data, _ = sign_crl(content(KeyAlgorithm.EC_P256, this_update=later), [("01", later, None, None)], signer)
    tbs = asn1_crl.CertificateList.load(data)["tbs_cert_list"]
    assert tbs["this_update"].name == "general_time"
    assert tbs["revoked_certificates"][0]["revocation_date"].name == "general_time"
    assert x509.load_der_x509_crl(data).last_update_utc == later


def test_signer_algorithm_must_match() -> None:
    signer = FileSigner("file:t", ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(ValueError, match="signature algorithm"):
        sign_crl(content(KeyAlgorithm.EC_P256), [], signer)


@pytest.mark.parametrize("value", [0, 1, 127, 128, 255, 256, -1, -128, -129, 2**127 - 1, 2**127, 2**160])
def test_der_integer_matches_asn1crypto(value: int) -> None:
    assert der.integer(value) == asn1.Integer(value).dump()


@pytest.mark.parametrize("serial", ["1", "7f", "80", "00ff", "abc", "8" + "0" * 31, "0"])
def test_serial_from_hex_is_the_der_integer(serial: str) -> None:
    assert der.serial_from_hex(serial) == asn1.Integer(int(serial, 16)).dump()


@pytest.mark.parametrize("dotted", ["2.5.29.60", "1.3.6.1.5.5.7.48.1.6", "1.2.840.113549.1.1.11", "2.999.1"])
def test_der_oid_matches_asn1crypto(dotted: str) -> None:
    assert der.oid(dotted) == asn1.ObjectIdentifier(dotted).dump()


@pytest.mark.parametrize("size", [0, 1, 127, 128, 255, 256, 65_536, 50_000_000])
def test_der_length(size: int) -> None:
    encoded = der.tlv(0x04, b"\x00" * size) if size < 100_000 else der.length(size)
    if size < 100_000:
        assert encoded == asn1.OctetString(b"\x00" * size).dump()
    else:
        assert encoded == b"\x84" + size.to_bytes(4, "big")


def test_times_in_other_zones_and_naive_utc_are_encoded_as_utc() -> None:
    """PostgreSQL hands back aware times, SQLite naive UTC ones: both mean the same instant."""
    signer = FileSigner("file:t", ec.generate_private_key(ec.SECP256R1()))
    plus_two = dt.timezone(dt.timedelta(hours=2))
    entries: list[RevokedEntry] = [
        ("01", NOW.astimezone(plus_two), None, None),
        ("02", NOW.replace(tzinfo=None), None, None),
    ]
    crl = x509.load_der_x509_crl(sign_crl(content(KeyAlgorithm.EC_P256), entries, signer)[0])
    assert [r.revocation_date_utc for r in crl] == [NOW, NOW]


def _as_stored(value: dt.datetime, micro: bool = True) -> str:
    """How SQLAlchemy keeps a UTC time in a SQLite DATETIME column."""
    text = value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    return text + value.strftime(".%f") if micro else text


@pytest.mark.parametrize(
    "when",
    [
        NOW + dt.timedelta(microseconds=999_999),
        dt.datetime(1999, 12, 31, 23, 59, 59, tzinfo=dt.UTC),
        dt.datetime(2049, 12, 31, 23, 59, 59, tzinfo=dt.UTC),  # last UTCTime
        dt.datetime(2050, 1, 1, tzinfo=dt.UTC),  # first GeneralizedTime
        dt.datetime(1949, 6, 1, tzinfo=dt.UTC),  # before UTCTime's range
    ],
    ids=["micro", "1999", "2049", "2050", "1949"],
)
@pytest.mark.parametrize("micro", [True, False], ids=["with-fraction", "whole-seconds"])
def test_stored_sqlite_text_encodes_like_the_datetime(when: dt.datetime, micro: bool) -> None:
    """SQLite rows reach the encoder as stored text (storage.revoked_snapshot skips
    SQLAlchemy's parsing): the entries must be the same bytes as from datetimes."""
    from ca_core.status.crl import encode_entries

    as_datetimes: list[RevokedEntry] = [("1f", when, "keyCompromise", when), ("20", when, None, None)]
    stored = _as_stored(when, micro)
    as_text: list[RevokedEntry] = [("1f", stored, "keyCompromise", stored), ("20", stored, None, None)]
    assert encode_entries(as_text) == encode_entries(as_datetimes)


def test_other_time_text_is_parsed_and_garbage_refused() -> None:
    from ca_core.status.crl import encode_entries

    offset = "2026-03-01T12:30:00+02:00"  # not the stored form: parsed, then made UTC
    assert encode_entries([("1", offset, None, offset)]) == encode_entries([("1", NOW, None, NOW)])
    with pytest.raises(ValueError, match="not a stored time"):
        encode_entries([("1", "20xx-03-01 10:30:00", None, None)])
