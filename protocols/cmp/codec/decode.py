"""PKIMessage DER -> the model (RFC 4210 5.1, 5.3; RFC 4211 5; RFC 9480).

Strict: exactly one DER PKIMessage (der.py walks the bytes first), parsed with the
schema of asn1.py; certificates must also parse with cryptography's strict parser; the
counts of repeated fields are bounded (model.py limits)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from asn1crypto import core
from cryptography import x509

from protocols.cmp import oids
from protocols.cmp.codec import asn1
from protocols.cmp.codec.algorithms import DIGEST_OIDS, decode_protection_algorithm, signature_algorithm
from protocols.cmp.codec.der import der_sequence, der_violation
from protocols.cmp.codec.model import (
    MAX_EXTRA_CERTS,
    MAX_ITEMS,
    MAX_MESSAGE_BYTES,
    Body,
    CertConfBody,
    CertConfirmation,
    CertId,
    CertRepBody,
    CertReqBody,
    CertRequest,
    CertResponse,
    CertTemplate,
    DecodeError,
    ErrorBody,
    Extension,
    GenBody,
    Header,
    InfoItem,
    Message,
    P10crBody,
    PkiConfBody,
    PkMac,
    PollRepBody,
    PollRepEntry,
    PollReqBody,
    Popo,
    RevDetails,
    RevRepBody,
    RevReqBody,
    StatusInfo,
    UnsupportedBody,
)

_BODY_NAMES = {
    "ir": "ir",
    "ip": "ip",
    "cr": "cr",
    "cp": "cp",
    "p10cr": "p10cr",
    "kur": "kur",
    "kup": "kup",
    "rr": "rr",
    "rp": "rp",
    "pkiconf": "pkiconf",
    "genm": "genm",
    "genp": "genp",
    "error": "error",
    "cert_conf": "certConf",
    "poll_req": "pollReq",
    "poll_rep": "pollRep",
}


def decode_message(data: bytes) -> Message:
    """Parse one DER PKIMessage; DecodeError for anything else."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise DecodeError(f"message larger than {MAX_MESSAGE_BYTES} bytes")
    violation = der_violation(data)
    try:
        msg = asn1.PKIMessage.load(data, strict=violation is None)
        raw_header = msg["header"]
        header_der = raw_header.dump()
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise DecodeError(violation or f"not a PKIMessage: {exc}") from None
    try:
        header = _decode_header(raw_header)
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise DecodeError(violation or f"PKIHeader does not parse: {exc}") from None
    if violation is not None:
        # The header could be read: the error answer can still echo its transactionID.
        raise DecodeError(violation, header)
    try:
        raw_body = msg["body"]
        body = _decode_body(raw_body)
        protected = der_sequence(header_der + raw_body.dump())
        protection = msg["protection"]
        protection_bits = None if isinstance(protection, core.Void) else _bit_bytes(protection)
        extra = msg["extra_certs"]
        extra_certs: tuple[bytes, ...] = ()
        if not isinstance(extra, core.Void):
            if len(extra) > MAX_EXTRA_CERTS:
                raise DecodeError(f"more than {MAX_EXTRA_CERTS} extraCerts", header)
            extra_certs = tuple(_strict_certificate(c.dump()) for c in extra)
    except DecodeError as exc:
        exc.header = exc.header or header
        raise
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise DecodeError(f"PKIBody does not parse: {exc}", header) from None
    return Message(header, body, protected, protection_bits, extra_certs)


def _bit_bytes(value: core.OctetBitString) -> bytes:
    # Signatures and MACs are whole octets; unused bits would mean a malformed value.
    contents = value.contents
    if not contents or contents[0] != 0:
        raise DecodeError("protection or signature BIT STRING has unused bits")
    return bytes(contents[1:])


def _strict_certificate(der: bytes) -> bytes:
    try:
        x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise DecodeError(f"a certificate does not parse: {exc}") from None
    return der


def _int(value: Any) -> int:
    """An INTEGER's value whatever its named-number map says."""
    return int.from_bytes(bytes(value.contents), "big", signed=True)


def _optional(value: Any) -> Any:
    return None if isinstance(value, core.Void) else value


def _octets(value: Any) -> bytes | None:
    value = _optional(value)
    return None if value is None else bytes(value.native)


def _free_text(value: Any) -> tuple[str, ...]:
    value = _optional(value)
    if value is None:
        return ()
    if len(value) > MAX_ITEMS:
        raise DecodeError(f"PKIFreeText with more than {MAX_ITEMS} strings")
    return tuple(str(s.native) for s in value)


def _decode_header(raw: asn1.PKIHeader) -> Header:
    general_info: tuple[InfoItem, ...] = ()
    info = _optional(raw["general_info"])
    if info is not None:
        if len(info) > MAX_ITEMS:
            raise DecodeError(f"generalInfo with more than {MAX_ITEMS} entries")
        general_info = tuple(_info_item(i) for i in info)
    alg = _optional(raw["protection_alg"])
    message_time = _optional(raw["message_time"])
    return Header(
        pvno=_int(raw["pvno"]),
        sender=raw["sender"].dump(),
        recipient=raw["recipient"].dump(),
        message_time=message_time.native if message_time is not None else None,
        protection_alg=decode_protection_algorithm(alg) if alg is not None else None,
        sender_kid=_octets(raw["sender_kid"]),
        recip_kid=_octets(raw["recip_kid"]),
        transaction_id=_octets(raw["transaction_id"]),
        sender_nonce=_octets(raw["sender_nonce"]),
        recip_nonce=_octets(raw["recip_nonce"]),
        free_text=_free_text(raw["free_text"]),
        general_info=general_info,
    )


def _info_item(raw: asn1.InfoTypeAndValue) -> InfoItem:
    value = _optional(raw["info_value"])
    return InfoItem(raw["info_type"].dotted, value.dump() if value is not None else None)


def _decode_body(raw: asn1.PKIBody) -> Body:
    name = raw.name
    kind = _BODY_NAMES.get(name)
    if kind is None:
        return UnsupportedBody(name)
    value = raw.chosen
    if kind in ("ir", "cr", "kur"):
        if len(value) > MAX_ITEMS:
            raise DecodeError(f"more than {MAX_ITEMS} CertReqMsg")
        return CertReqBody(kind, tuple(_cert_req_msg(m) for m in value))
    if kind == "p10cr":
        return P10crBody(bytes(value.untag().dump()))
    if kind in ("ip", "cp", "kup"):
        return _cert_rep(kind, value)
    if kind == "certConf":
        if len(value) > MAX_ITEMS:
            raise DecodeError(f"more than {MAX_ITEMS} CertStatus")
        return CertConfBody(tuple(_cert_status(s) for s in value))
    if kind == "pkiconf":
        return PkiConfBody()
    if kind == "pollReq":
        if len(value) > MAX_ITEMS:
            raise DecodeError(f"more than {MAX_ITEMS} pollReq entries")
        return PollReqBody(tuple(int(p["cert_req_id"].native) for p in value))
    if kind == "pollRep":
        return PollRepBody(
            tuple(
                PollRepEntry(
                    int(p["cert_req_id"].native), int(p["check_after"].native), _free_text(p["reason"])
                )
                for p in value
            )
        )
    if kind == "rr":
        if len(value) > MAX_ITEMS:
            raise DecodeError(f"more than {MAX_ITEMS} RevDetails")
        return RevReqBody(tuple(_rev_details(d) for d in value))
    if kind == "rp":
        revoked = _optional(value["rev_certs"])
        return RevRepBody(
            tuple(_status_info(s) for s in value["status"]),
            tuple(CertId(c["issuer"].dump(), int(c["serial_number"].native)) for c in revoked or ()),
        )
    if kind in ("genm", "genp"):
        if len(value) > MAX_ITEMS:
            raise DecodeError(f"more than {MAX_ITEMS} InfoTypeAndValue")
        return GenBody(kind, tuple(_info_item(i) for i in value))
    # error
    code = _optional(value["error_code"])
    return ErrorBody(
        _status_info(value["pki_status_info"]),
        int(code.native) if code is not None else None,
        _free_text(value["error_details"]),
    )


def _status_info(raw: asn1.PKIStatusInfo) -> StatusInfo:
    status = raw["status"].native
    fail = _optional(raw["fail_info"])
    bits: frozenset[str] = frozenset()
    if fail is not None:
        bits = frozenset(str(b) if not isinstance(b, int) else f"bit{b}" for b in fail.native)
    return StatusInfo(str(status), bits, _free_text(raw["status_string"]))


def _time(value: Any) -> dt.datetime | None:
    value = _optional(value)
    return None if value is None else value.native


def _template(raw: asn1.CertTemplate) -> CertTemplate:
    unexpected = tuple(
        name for name in ("signing_alg", "issuer_uid", "subject_uid") if _optional(raw[name]) is not None
    )
    validity = _optional(raw["validity"])
    extensions = _optional(raw["extensions"])
    subject = _optional(raw["subject"])
    issuer = _optional(raw["issuer"])
    public_key = _optional(raw["public_key"])
    serial = _optional(raw["serial_number"])
    version = _optional(raw["version"])
    return CertTemplate(
        subject=_untagged(subject),
        issuer=_untagged(issuer),
        public_key=_untagged(public_key),
        not_before=_time(validity["not_before"]) if validity is not None else None,
        not_after=_time(validity["not_after"]) if validity is not None else None,
        extensions=tuple(
            Extension(e["extn_id"].dotted, bool(e["critical"].native), e["extn_value"].contents)
            for e in extensions or ()
        ),
        serial_number=int(serial.native) if serial is not None else None,
        version=_int(version) if version is not None else None,
        unexpected_fields=unexpected,
    )


def _untagged(value: Any) -> bytes | None:
    """The DER of a tagged field's value as it would stand alone (universal tag)."""
    if value is None:
        return None
    return bytes(value.untag().dump()) if value.explicit or value.implicit else bytes(value.dump())


def _cert_req_msg(raw: asn1.CertReqMsg) -> CertRequest:
    request = raw["cert_req"]
    controls = tuple(
        InfoItem(c["type"].dotted, c["value"].dump()) for c in _optional(request["controls"]) or ()
    )
    old: CertId | None = None
    for control in controls:
        if control.oid == oids.OID_REGCTRL_OLD_CERT_ID and control.value is not None:
            parsed = asn1.CertId.load(control.value, strict=True)
            old = CertId(parsed["issuer"].dump(), int(parsed["serial_number"].native))
    return CertRequest(
        cert_req_id=int(request["cert_req_id"].native),
        template=_template(request["cert_template"]),
        der=request.dump(),
        popo=_popo(_optional(raw["popo"]), request.dump()),
        old_cert_id=old,
        controls=controls,
    )


def _popo(raw: Any, cert_request_der: bytes) -> Popo | None:
    if raw is None:
        return None
    if raw.name == "ra_verified":
        return Popo("raVerified")
    if raw.name in ("key_encipherment", "key_agreement"):
        return Popo("keyEncipherment" if raw.name == "key_encipherment" else "keyAgreement")
    signing = raw.chosen
    alg = signing["algorithm_identifier"]
    algorithm = signature_algorithm(alg["algorithm"].dotted, _optional(alg["parameters"]))
    poposk = _optional(signing["poposk_input"])
    if poposk is None:
        return Popo("signature", algorithm, _bit_bytes(signing["signature"]), cert_request_der)
    auth = poposk["auth_info"]
    sender = auth.chosen.untag().dump() if auth.name == "sender" else None
    mac = None
    if auth.name == "public_key_mac":
        pk = auth.chosen
        mac = PkMac(decode_protection_algorithm(pk["alg_id"]), _bit_bytes(pk["value"]))
    return Popo(
        "signature",
        algorithm,
        _bit_bytes(signing["signature"]),
        poposk.untag().dump(),
        input_sender=sender,
        input_mac=mac,
        input_public_key=poposk["public_key"].dump(),
    )


def _cert_rep(kind: str, raw: asn1.CertRepMessage) -> CertRepBody:
    responses = []
    for r in raw["response"]:
        pair = _optional(r["certified_key_pair"])
        cert = None
        if pair is not None and pair["cert_or_enc_cert"].name == "certificate":
            cert = pair["cert_or_enc_cert"].chosen.untag().dump()
        responses.append(CertResponse(int(r["cert_req_id"].native), _status_info(r["status"]), cert))
    ca_pubs = _optional(raw["ca_pubs"])
    return CertRepBody(kind, tuple(responses), tuple(c.dump() for c in ca_pubs or ()))


def _cert_status(raw: asn1.CertStatus) -> CertConfirmation:
    status = _optional(raw["status_info"])
    hash_alg = _optional(raw["hash_alg"])
    return CertConfirmation(
        bytes(raw["cert_hash"].native),
        int(raw["cert_req_id"].native),
        _status_info(status) if status is not None else None,
        DIGEST_OIDS.get(hash_alg["algorithm"].dotted, "unknown") if hash_alg is not None else None,
    )


oids.OID_CRL_REASON = "2.5.29.21"
oids.OID_INVALIDITY_DATE = "2.5.29.24"


def _rev_details(raw: asn1.RevDetails) -> RevDetails:
    template = raw["cert_details"]
    serial = _optional(template["serial_number"])
    issuer = _optional(template["issuer"])
    others = tuple(
        name
        for name in (
            "version",
            "signing_alg",
            "validity",
            "subject",
            "public_key",
            "issuer_uid",
            "subject_uid",
            "extensions",
        )
        if _optional(template[name]) is not None
    )
    reason = None
    invalidity = None
    for ext in _optional(raw["crl_entry_details"]) or ():
        oid = ext["extn_id"].dotted
        if oid == oids.OID_CRL_REASON:
            reason = _int(core.Enumerated.load(ext["extn_value"].contents, strict=True))
        elif oid == oids.OID_INVALIDITY_DATE:
            invalidity = core.GeneralizedTime.load(ext["extn_value"].contents, strict=True).native
    return RevDetails(
        int(serial.native) if serial is not None else None,
        _untagged(issuer),
        reason,
        invalidity,
        others,
    )
