"""EST wire format with bytes only: base64 (RFC 8951), PKCS#10, certs-only, CSR
attributes, the server-keygen multipart."""

from __future__ import annotations

import base64
import email
import email.policy

import pytest
from asn1crypto import cms
from asn1crypto import core as asn1_core
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import AttributeOID, NameOID

from protocols.est import codec
from protocols.est.errors import EstError
from tests.support.pki import make_csr, new_key, self_signed


def _self_signed(cn: str) -> bytes:
    return self_signed(new_key(), cn)


def _lines(text: bytes, width: int, sep: bytes) -> bytes:
    return sep.join(text[i : i + width] for i in range(0, len(text), width)) + sep


@pytest.mark.parametrize(
    "shape",
    [
        pytest.param(lambda b: b, id="one-line"),
        pytest.param(lambda b: _lines(b, 64, b"\r\n"), id="crlf-64"),
        pytest.param(lambda b: _lines(b, 76, b"\n"), id="lf-76"),
        pytest.param(lambda b: b.rstrip(b"="), id="no-padding"),
        pytest.param(lambda b: b"  " + _lines(b, 10, b" \t\n"), id="odd-whitespace"),
    ],
)
def test_base64_bodies_decode_with_or_without_line_breaks(shape) -> None:  # type: ignore[no-untyped-def]
    der = make_csr()
    assert codec.decode_base64(shape(base64.b64encode(der))) == der


def test_pem_armour_around_the_base64_is_tolerated() -> None:
    der = make_csr()
    pem = x509.load_der_x509_csr(der).public_bytes(serialization.Encoding.PEM)
    assert codec.decode_base64(pem) == der


@pytest.mark.parametrize(
    "body",
    [b"", b"   \r\n", b"!!!not base64!!!", b"QUJD$RA==", bytes(range(0x80, 0x90)), b"QUJDR"],
    ids=["empty", "blank", "punctuation", "dollar", "binary", "one-char-too-many"],
)
def test_malformed_base64_is_a_400(body: bytes) -> None:
    with pytest.raises(EstError) as err:
        codec.decode_base64(body)
    assert err.value.status == 400


def test_answers_are_base64_in_64_column_crlf_lines() -> None:
    out = codec.encode_base64(bytes(range(256)) * 3)
    lines = out.split(b"\r\n")
    assert lines[-1] == b"" and all(len(line) == 64 for line in lines[:-2])
    assert base64.b64decode(out) == bytes(range(256)) * 3


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        ("application/pkcs10", True),
        ("Application/PKCS10; charset=binary", True),
        ("application/octet-stream", False),
        ("application/x-www-form-urlencoded", False),
        (None, False),
    ],
)
def test_content_type_must_be_pkcs10(header: str | None, ok: bool) -> None:
    if ok:
        codec.require_media_type(header, codec.PKCS10)
    else:
        with pytest.raises(EstError) as err:
            codec.require_media_type(header, codec.PKCS10)
        assert err.value.status == 415 and "application/pkcs10" in err.value.message


def test_basic_authorization_header() -> None:
    token = base64.b64encode(b"dev:pa:ss").decode()
    assert codec.parse_basic_authorization(f"Basic {token}") == ("dev", "pa:ss")
    assert codec.parse_basic_authorization(None) is None
    assert codec.parse_basic_authorization("Bearer abc") is None
    for bad in ("Basic !!!", "Basic " + base64.b64encode(b"nocolon").decode(), "Basic " + "A" * 5000):
        with pytest.raises(EstError) as err:
            codec.parse_basic_authorization(bad)
        assert err.value.status == 401


def test_read_csr_extracts_names_key_usage_extensions_and_attributes() -> None:
    key = new_key()
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "router-7")]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("router-7.example")]), critical=False)
        .add_extension(
            x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True
        )
        .add_extension(
            x509.CertificatePolicies([x509.PolicyInformation(x509.ObjectIdentifier("1.2.3.4"), None)]),
            critical=False,
        )
        .add_attribute(AttributeOID.CHALLENGE_PASSWORD, b"link-me")
        .sign(key, hashes.SHA256())
    )
    view = codec.read_csr(base64.b64encode(csr.public_bytes(serialization.Encoding.DER)))
    assert view.subject.rfc4514_string() == "CN=router-7"
    assert view.subject_alt_names == (x509.DNSName("router-7.example"),)
    assert view.key_usage == {"digitalSignature", "nonRepudiation"}
    assert [e.oid for e in view.extensions] == ["2.5.29.32"]
    assert view.challenge_password() == "link-me"
    assert not view.asks_encrypted_key()
    assert view.public_key_der() == key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_read_csr_notices_a_request_for_an_encrypted_key() -> None:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "d")]))
        .add_attribute(x509.ObjectIdentifier(codec.DECRYPT_KEY_IDENTIFIER), b"kek-1")
        .sign(new_key(), hashes.SHA256())
    )
    view = codec.read_csr(base64.b64encode(csr.public_bytes(serialization.Encoding.DER)))
    assert view.asks_encrypted_key()
    assert not view.asks_name_change()


def test_read_csr_notices_change_subject_name() -> None:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "d")]))
        .add_attribute(x509.ObjectIdentifier(codec.CHANGE_SUBJECT_NAME), b"\x30\x00")
        .sign(new_key(), hashes.SHA256())
    )
    assert codec.read_csr(base64.b64encode(csr.public_bytes(serialization.Encoding.DER))).asks_name_change()


def test_read_csr_refuses_what_is_not_a_pkcs10() -> None:
    with pytest.raises(EstError) as err:
        codec.read_csr(base64.b64encode(b"\x30\x03\x02\x01\x01"))
    assert err.value.status == 400 and "PKCS#10" in err.value.message


def test_certs_only_body_holds_the_certificates_and_no_signer() -> None:
    first, second = _self_signed("a"), _self_signed("b")
    info = cms.ContentInfo.load(base64.b64decode(codec.certs_only_body([first, second])))
    assert info["content_type"].native == "signed_data"
    signed = info["content"]
    assert len(signed["signer_infos"]) == 0
    # CertificateSet is a SET OF: DER sorts it, so compare without order.
    assert sorted(c.chosen.dump() for c in signed["certificates"]) == sorted([first, second])


def test_serverkeygen_multipart_has_the_key_then_the_certificate() -> None:
    cert = _self_signed("k")
    body, content_type = codec.serverkeygen_body(b"\x30\x00fake-pkcs8", cert, "est-b0undary")
    message = email.message_from_bytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body, policy=email.policy.HTTP
    )
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["application/pkcs8", "application/pkcs7-mime"]
    assert parts[1].get_param("smime-type") == "certs-only"
    assert base64.b64decode(parts[0].get_payload()) == b"\x30\x00fake-pkcs8"
    signed = cms.ContentInfo.load(base64.b64decode(parts[1].get_payload()))["content"]
    assert signed["certificates"][0].chosen.dump() == cert
    with pytest.raises(ValueError):
        codec.serverkeygen_body(b"", cert, "bad boundary\r\n")


def test_csrattrs_encode_oids_and_attributes() -> None:
    der = codec.csrattrs_der(
        [
            codec.WantedAttribute(codec.CHALLENGE_PASSWORD),
            codec.WantedAttribute("1.2.840.10045.2.1", (codec.OidValue("1.3.132.0.34"),)),
            codec.WantedAttribute("1.2.840.113549.1.1.1", (codec.IntegerValue(3072),)),
            codec.WantedAttribute(
                codec.EXTENSION_REQUEST, (codec.KeyUsageRequest(frozenset({"digitalSignature"})),)
            ),
        ]
    )
    items = asn1_core.Sequence.load(der)
    parsed = [items[i] for i in range(len(items))]
    assert parsed[0].dump() == asn1_core.ObjectIdentifier(codec.CHALLENGE_PASSWORD).dump()
    curve = asn1_core.Sequence.load(parsed[1].dump())
    assert asn1_core.ObjectIdentifier.load(curve[0].dump()).dotted == "1.2.840.10045.2.1"
    assert asn1_core.ObjectIdentifier("1.3.132.0.34").dump() in curve[1].dump()
    rsa = asn1_core.Sequence.load(parsed[2].dump())
    assert asn1_core.Integer(3072).dump() in rsa[1].dump()
    # The extensionRequest value is Extensions (RFC 8951 section 4) with a KeyUsage.
    ext_req = asn1_core.Sequence.load(parsed[3].dump())
    from asn1crypto import x509 as asn1_x509

    extensions = asn1_x509.Extensions.load(asn1_core.SetOf.load(ext_req[1].dump())[0].dump())
    assert extensions[0]["extn_id"].native == "key_usage"
    assert extensions[0]["extn_value"].native == {"digital_signature"}


@pytest.mark.parametrize("count", [0, 1, 2, 3])
def test_certs_only_is_the_der_asn1crypto_would_write(count: int) -> None:
    """protocols/_shared/cms.certs_only writes the DER by hand for speed; it must be
    byte-for-byte what the asn1crypto construction gives."""
    from asn1crypto import x509 as asn1_x509

    from protocols._shared.cms import certs_only

    certificates = [_self_signed(f"cert-{i}" * (i + 1)) for i in range(count)]
    signed = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [],
            "encap_content_info": {"content_type": "data"},
            "certificates": [asn1_x509.Certificate.load(der) for der in certificates],
            "signer_infos": [],
        }
    )
    expected = cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump()
    assert certs_only(certificates) == expected
