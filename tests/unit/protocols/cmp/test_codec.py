"""The codec against messages OpenSSL 3.0's `openssl cmp` produced (tests/data/cmp), its
strictness on hostile input, and round trips of what ceg sends."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509

from protocols.cmp import codec, oids, protection
from protocols.cmp.codec import (
    CertRepBody,
    CertReqBody,
    CertResponse,
    ErrorBody,
    GenBody,
    Header,
    InfoItem,
    Pbm,
    PollRepBody,
    PollRepEntry,
    RevRepBody,
    StatusInfo,
    asn1,
)

DATA = Path(__file__).parents[3] / "data" / "cmp"
# The shared secret and reference the captured OpenSSL MAC-protected messages used.
OPENSSL_SECRET = b"s3cret"
CAPTURE_SECRET = b"s3cret"


def load(name: str) -> bytes:
    return (DATA / name).read_bytes()


def test_openssl_ir_decodes_with_its_pbm_and_signature_popo() -> None:
    msg = codec.decode_message(load("openssl-ir-mac.der"))
    header = msg.header
    assert header.pvno == 2 and header.sender_kid == b"myref"
    assert codec.is_null_dn(codec.directory_name_of(header.recipient) or b"")
    assert codec.name_text(codec.directory_name_of(header.sender)) == "CN=test"
    assert isinstance(header.protection_alg, Pbm)
    assert header.protection_alg.owf == "sha256" and header.protection_alg.mac == "sha1"
    assert header.protection_alg.iterations == 500
    assert len(header.transaction_id or b"") == 16 and len(header.sender_nonce or b"") == 16
    assert protection.verify_mac(
        OPENSSL_SECRET, header.protection_alg, msg.protected_part, msg.protection or b""
    )
    assert not protection.verify_mac(
        b"other", header.protection_alg, msg.protected_part, msg.protection or b""
    )
    body = msg.body
    assert isinstance(body, CertReqBody) and body.kind == "ir"
    (request,) = body.requests
    assert request.cert_req_id == 0 and request.popo is not None and request.popo.method == "signature"
    assert request.popo.signed == request.der  # no POPOSigningKeyInput: the CertRequest is signed
    assert request.template.public_key is not None
    key = protection.load_public_key(request.template.public_key)
    assert isinstance(request.popo.algorithm, codec.SignatureAlgorithm)
    assert protection.verify_signature(
        key, request.popo.algorithm, request.popo.signed, request.popo.signature
    )


def test_openssl_kur_carries_old_cert_id_and_its_signer_first_in_extra_certs() -> None:
    msg = codec.decode_message(load("openssl-kur-signed.der"))
    assert isinstance(msg.header.protection_alg, codec.SignatureAlgorithm)
    assert isinstance(msg.body, CertReqBody) and msg.body.kind == "kur"
    (request,) = msg.body.requests
    assert request.old_cert_id is not None
    signer = x509.load_der_x509_certificate(msg.extra_certs[0])
    assert request.old_cert_id.serial == signer.serial_number
    assert protection.verify_signature(
        signer.public_key(), msg.header.protection_alg, msg.protected_part, msg.protection or b""
    )
    assert codec.same_name(codec.directory_name_of(msg.header.sender) or b"", signer.subject.public_bytes())


def test_openssl_p10cr_rr_genm_and_certconf_decode() -> None:
    p10cr = codec.decode_message(load("openssl-p10cr-mac.der")).body
    assert isinstance(p10cr, codec.P10crBody)
    assert x509.load_der_x509_csr(p10cr.csr).is_signature_valid
    rr = codec.decode_message(load("openssl-rr-signed.der")).body
    assert isinstance(rr, codec.RevReqBody) and rr.entries[0].reason == 4 and rr.entries[0].serial
    genm = codec.decode_message(load("openssl-genm-cacerts.der")).body
    assert isinstance(genm, GenBody) and genm.items == (InfoItem(oids.OID_IT_CA_CERTS),)
    conf = codec.decode_message(load("openssl-certconf-mac.der")).body
    assert isinstance(conf, codec.CertConfBody) and conf.confirmations[0].accepted


def test_openssl_mock_server_ip_decodes() -> None:
    msg = codec.decode_message(load("openssl-mock-ip.der"))
    assert isinstance(msg.body, CertRepBody) and msg.body.responses[0].status.accepted
    assert msg.body.responses[0].certificate is not None
    assert isinstance(msg.header.protection_alg, Pbm)
    assert protection.verify_mac(
        CAPTURE_SECRET, msg.header.protection_alg, msg.protected_part, msg.protection or b""
    )


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda d: d + b"\x00", id="trailing-byte"),
        pytest.param(lambda d: d[:-1], id="truncated"),
        pytest.param(lambda d: b"\x30\x80" + d[4:] + b"\x00\x00", id="indefinite-length"),
        pytest.param(lambda d: b"\x30\x83\x00" + d[2:], id="long-form-length"),
        pytest.param(lambda d: b"\x31" + d[1:], id="set-not-sequence"),
        pytest.param(lambda d: b"", id="empty"),
        pytest.param(lambda d: b"\x30" + b"\x84\x7f\xff\xff\xff", id="huge-length"),
    ],
)
def test_not_der_is_refused(mutate: object) -> None:
    data = load("openssl-ir-mac.der")
    with pytest.raises(codec.DecodeError):
        codec.decode_message(mutate(data))  # type: ignore[operator]


def test_non_der_header_is_refused_but_the_header_is_reported() -> None:
    msg = codec.decode_message(load("openssl-ir-mac.der"))
    # The same ir with its body re-wrapped in a long-form length: BER, not DER.
    body = codec.prepare(msg.header, msg.body).protected_part
    del body
    raw = asn1.PKIMessage.load(load("openssl-ir-mac.der"))
    inner = raw["body"].dump()
    assert inner[0] == 0xA0
    contents = inner[4:] if inner[1] == 0x81 else inner[2:]
    ber_body = b"\xa0\x82" + len(contents).to_bytes(2, "big") + contents
    header = raw["header"].dump()
    rest = ber_body + raw["protection"].dump()
    seq = header + rest
    data = b"\x30\x82" + len(seq).to_bytes(2, "big") + seq
    with pytest.raises(codec.DecodeError) as caught:
        codec.decode_message(data)
    assert caught.value.header is not None and caught.value.header.sender_kid == b"myref"


def test_size_and_count_limits() -> None:
    with pytest.raises(codec.DecodeError, match="larger than"):
        codec.decode_message(b"\x30" * (codec.MAX_MESSAGE_BYTES + 1))
    header = _header()
    body = GenBody("genm", tuple(InfoItem(oids.OID_IT_CA_CERTS) for _ in range(codec.MAX_ITEMS + 1)))
    data = codec.prepare(header, body).finish(None)
    with pytest.raises(codec.DecodeError, match="more than"):
        codec.decode_message(data)


def _header(**kw: object) -> Header:
    base = Header(
        pvno=2,
        sender=codec.directory_name(codec.NULL_DN_NAME),
        recipient=codec.directory_name(x509.Name.from_rfc4514_string("CN=CA").public_bytes()),
        message_time=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        transaction_id=b"t" * 16,
        sender_nonce=b"n" * 16,
        recip_nonce=b"r" * 16,
        general_info=(InfoItem(oids.OID_IT_IMPLICIT_CONFIRM, codec.NULL_DER),),
    )
    from dataclasses import replace

    return replace(base, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            CertRepBody(
                "ip",
                (CertResponse(0, StatusInfo("rejection", frozenset({"badPOP", "badRequest"}), ("no",))),),
            ),
            id="ip-rejection",
        ),
        pytest.param(PollRepBody((PollRepEntry(0, 10, ("wait",)),)), id="pollRep"),
        pytest.param(RevRepBody((StatusInfo("accepted"),)), id="rp"),
        pytest.param(
            ErrorBody(StatusInfo("rejection", frozenset({"transactionIdInUse"})), 7, ("x",)), id="error"
        ),
        pytest.param(codec.PkiConfBody(), id="pkiConf"),
        pytest.param(GenBody("genp", (InfoItem(oids.OID_IT_ROOT_CA_KEY_UPDATE),)), id="genp"),
    ],
)
def test_round_trip(body: codec.Body) -> None:
    header = _header(
        protection_alg=Pbm(b"s" * 16, "sha256", 500, "sha1", "1.3.6.1.5.5.8.1.2"), sender_kid=b"k"
    )
    prepared = codec.prepare(header, body)
    mac = protection.compute_mac(b"pw", header.protection_alg, prepared.protected_part)  # type: ignore[arg-type]
    decoded = codec.decode_message(prepared.finish(mac))
    assert decoded.body == body
    assert decoded.header == header
    assert decoded.protected_part == prepared.protected_part and decoded.protection == mac


def test_fail_info_bits_encode_as_der_named_bits() -> None:
    from protocols.cmp.codec.encode import _status_value

    status = _status_value(StatusInfo("rejection", frozenset({"badPOP"})))
    # badPOP is bit 9: two octets (0x00 0x40), the six unused bits of the last one stated.
    assert status["fail_info"].dump() == bytes.fromhex("0303060040")


def test_general_message_values_round_trip() -> None:
    template, spec = codec.decode_cert_req_template(
        codec.encode_cert_req_template(codec.CertTemplate(), codec.KeySpec(("1.2.840.10045.3.1.7",), (2048,)))
    )
    assert template == codec.CertTemplate() and spec == codec.KeySpec(("1.2.840.10045.3.1.7",), (2048,))
    assert codec.decode_cert_profile(codec.encode_cert_profile(["a", "b"])) == ("a", "b")
    status = codec.CrlStatus(("http://x/crl",), (), dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    assert codec.decode_crl_status_list(codec.encode_crl_status_list([status])) == (status,)


def test_names() -> None:
    a = x509.Name.from_rfc4514_string("CN=Issuing CA,O=Example").public_bytes()
    b = x509.Name.from_rfc4514_string("CN=issuing  ca,O=EXAMPLE").public_bytes()
    assert codec.same_name(a, b)  # RFC 5280 7.1 comparison: case and spaces folded
    assert not codec.same_name(a, codec.NULL_DN_NAME)
    assert codec.to_x509_name(a) == x509.Name.from_rfc4514_string("CN=Issuing CA,O=Example")
    gn = codec.directory_name(a)
    assert codec.directory_name_of(gn) == a
