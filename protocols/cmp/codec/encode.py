"""The model -> PKIMessage DER (RFC 4210 5.1, 5.3; RFC 4211 5): `prepare` builds header
and body, whose ProtectedPart the caller signs or MACs; `Prepared.finish` adds the
protection and extraCerts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from asn1crypto import algos, core, crl, csr, keys
from asn1crypto import x509 as ax509

from protocols.cmp import oids
from protocols.cmp.codec import asn1
from protocols.cmp.codec.algorithms import DIGEST_OID_OF, algorithm_identifier
from protocols.cmp.codec.der import der_sequence
from protocols.cmp.codec.model import (
    Body,
    CertConfBody,
    CertRepBody,
    CertReqBody,
    CertTemplate,
    ErrorBody,
    GenBody,
    Header,
    InfoItem,
    P10crBody,
    PkiConfBody,
    PollRepBody,
    PollReqBody,
    Popo,
    RevRepBody,
    RevReqBody,
    StatusInfo,
)
from protocols.cmp.codec.names import directory_name


def _free_text_value(texts: Sequence[str]) -> asn1.PKIFreeText:
    return asn1.PKIFreeText([core.UTF8String(t) for t in texts])


def _status_value(status: StatusInfo) -> asn1.PKIStatusInfo:
    value: dict[str, Any] = {"status": status.status}
    if status.text:
        value["status_string"] = _free_text_value(status.text)
    if status.fail_info:
        value["fail_info"] = asn1.PKIFailureInfo(set(status.fail_info))
    return asn1.PKIStatusInfo(value)


def _header_value(header: Header) -> asn1.PKIHeader:
    value: dict[str, Any] = {
        "pvno": header.pvno,
        "sender": ax509.GeneralName.load(header.sender),
        "recipient": ax509.GeneralName.load(header.recipient),
    }
    if header.message_time is not None:
        value["message_time"] = core.GeneralizedTime(header.message_time.replace(microsecond=0))
    if header.protection_alg is not None:
        value["protection_alg"] = algorithm_identifier(header.protection_alg)
    for key in ("sender_kid", "recip_kid", "transaction_id", "sender_nonce", "recip_nonce"):
        if getattr(header, key) is not None:
            value[key] = getattr(header, key)
    if header.free_text:
        value["free_text"] = _free_text_value(header.free_text)
    if header.general_info:
        value["general_info"] = asn1.GeneralInfo(
            [
                asn1.InfoTypeAndValue(
                    {"info_type": i.oid, "info_value": core.Any.load(i.value)}
                    if i.value is not None
                    else {"info_type": i.oid}
                )
                for i in header.general_info
            ]
        )
    return asn1.PKIHeader(value)


def _template_value(t: CertTemplate) -> asn1.CertTemplate:
    value: dict[str, Any] = {}
    if t.version is not None:
        value["version"] = t.version
    if t.serial_number is not None:
        value["serial_number"] = t.serial_number
    if t.issuer is not None:
        value["issuer"] = ax509.Name.load(t.issuer)
    if t.not_before is not None or t.not_after is not None:
        validity: dict[str, Any] = {}
        if t.not_before is not None:
            validity["not_before"] = ax509.Time(name="general_time", value=t.not_before)
        if t.not_after is not None:
            validity["not_after"] = ax509.Time(name="general_time", value=t.not_after)
        value["validity"] = validity
    if t.subject is not None:
        value["subject"] = ax509.Name.load(t.subject)
    if t.public_key is not None:
        value["public_key"] = keys.PublicKeyInfo.load(t.public_key)
    if t.extensions:
        value["extensions"] = ax509.Extensions(
            [
                ax509.Extension(
                    {
                        "extn_id": e.oid,
                        "critical": e.critical,
                        "extn_value": core.ParsableOctetString(e.value),
                    }
                )
                for e in t.extensions
            ]
        )
    if not value:
        # asn1crypto takes a Sequence built from {} for "not set"; an empty template is set.
        return asn1.CertTemplate.load(b"\x30\x00")
    return asn1.CertTemplate(value)


def encode_cert_request(cert_req_id: int, template: CertTemplate, controls: Sequence[InfoItem] = ()) -> bytes:
    """DER of a CertRequest (what the requester signs for a signature POPO)."""
    value: dict[str, Any] = {"cert_req_id": cert_req_id, "cert_template": _template_value(template)}
    if controls:
        value["controls"] = asn1.Controls(
            [
                asn1.AttributeTypeAndValue({"type": c.oid, "value": core.Any.load(c.value or b"")})
                for c in controls
            ]
        )
    return bytes(asn1.CertRequest(value).dump())


def encode_cert_id(issuer_name_der: bytes, serial: int) -> bytes:
    return bytes(
        asn1.CertId(
            {"issuer": ax509.GeneralName.load(directory_name(issuer_name_der)), "serial_number": serial}
        ).dump()
    )


def _popo_value(popo: Popo) -> asn1.ProofOfPossession:
    if popo.method == "raVerified":
        return asn1.ProofOfPossession(name="ra_verified", value=core.Null())
    if popo.method != "signature" or popo.algorithm is None:
        raise ValueError(f"cannot encode POPO {popo.method}")
    signing: dict[str, Any] = {
        "algorithm_identifier": algos.SignedDigestAlgorithm.load(algorithm_identifier(popo.algorithm).dump()),
        "signature": core.OctetBitString(popo.signature),
    }
    return asn1.ProofOfPossession(name="signature", value=asn1.POPOSigningKey(signing))


def _body_value(body: Body) -> asn1.PKIBody:
    if isinstance(body, CertReqBody):
        messages = []
        for req in body.requests:
            msg: dict[str, Any] = {"cert_req": asn1.CertRequest.load(req.der)}
            if req.popo is not None:
                msg["popo"] = _popo_value(req.popo)
            messages.append(asn1.CertReqMsg(msg))
        return asn1.PKIBody(name=body.kind, value=asn1.CertReqMessages(messages))
    if isinstance(body, P10crBody):
        return asn1.PKIBody(name="p10cr", value=csr.CertificationRequest.load(body.csr))
    if isinstance(body, CertRepBody):
        responses = []
        for r in body.responses:
            item: dict[str, Any] = {"cert_req_id": r.cert_req_id, "status": _status_value(r.status)}
            if r.certificate is not None:
                item["certified_key_pair"] = {
                    "cert_or_enc_cert": asn1.CertOrEncCert(
                        name="certificate", value=asn1.CMPCertificate.load(r.certificate)
                    )
                }
            responses.append(asn1.CertResponse(item))
        rep: dict[str, Any] = {"response": asn1.CertResponses(responses)}
        if body.ca_pubs:
            rep["ca_pubs"] = asn1.CMPCertificates([asn1.CMPCertificate.load(c) for c in body.ca_pubs])
        return asn1.PKIBody(name=body.kind, value=asn1.CertRepMessage(rep))
    if isinstance(body, CertConfBody):
        statuses = []
        for c in body.confirmations:
            item = {"cert_hash": c.cert_hash, "cert_req_id": c.cert_req_id}
            if c.status is not None:
                item["status_info"] = _status_value(c.status)
            if c.hash_alg is not None:
                item["hash_alg"] = {"algorithm": DIGEST_OID_OF[c.hash_alg]}
            statuses.append(asn1.CertStatus(item))
        return asn1.PKIBody(name="cert_conf", value=asn1.CertConfirmContent(statuses))
    if isinstance(body, PkiConfBody):
        return asn1.PKIBody(name="pkiconf", value=core.Null())
    if isinstance(body, PollReqBody):
        return asn1.PKIBody(
            name="poll_req", value=asn1.PollReqContent([{"cert_req_id": i} for i in body.cert_req_ids])
        )
    if isinstance(body, PollRepBody):
        entries = []
        for e in body.entries:
            entry: dict[str, Any] = {"cert_req_id": e.cert_req_id, "check_after": e.check_after}
            if e.reason:
                entry["reason"] = _free_text_value(e.reason)
            entries.append(asn1.PollRep(entry))
        return asn1.PKIBody(name="poll_rep", value=asn1.PollRepContent(entries))
    if isinstance(body, RevReqBody):
        details = []
        for d in body.entries:
            template = CertTemplate(serial_number=d.serial, issuer=d.issuer)
            item = {"cert_details": _template_value(template)}
            extensions = []
            if d.reason is not None:
                extensions.append(
                    {
                        "extn_id": oids.OID_CRL_REASON,
                        "critical": False,
                        "extn_value": crl.CRLReason(d.reason).dump(),
                    }
                )
            if d.invalidity_date is not None:
                extensions.append(
                    {
                        "extn_id": oids.OID_INVALIDITY_DATE,
                        "critical": False,
                        "extn_value": core.GeneralizedTime(d.invalidity_date).dump(),
                    }
                )
            if extensions:
                item["crl_entry_details"] = ax509.Extensions(
                    [
                        ax509.Extension(
                            {
                                "extn_id": e["extn_id"],
                                "critical": False,
                                "extn_value": core.ParsableOctetString(e["extn_value"]),
                            }
                        )
                        for e in extensions
                    ]
                )
            details.append(asn1.RevDetails(item))
        return asn1.PKIBody(name="rr", value=asn1.RevReqContent(details))
    if isinstance(body, RevRepBody):
        rp: dict[str, Any] = {"status": asn1.PKIStatusInfos([_status_value(s) for s in body.statuses])}
        if body.revoked:
            rp["rev_certs"] = asn1.CertIds(
                [
                    asn1.CertId({"issuer": ax509.GeneralName.load(c.issuer), "serial_number": c.serial})
                    for c in body.revoked
                ]
            )
        return asn1.PKIBody(name="rp", value=asn1.RevRepContent(rp))
    if isinstance(body, GenBody):
        items = asn1.GenMsgContent(
            [
                asn1.InfoTypeAndValue(
                    {"info_type": i.oid, "info_value": core.Any.load(i.value)}
                    if i.value is not None
                    else {"info_type": i.oid}
                )
                for i in body.items
            ]
        )
        return asn1.PKIBody(name=body.kind, value=items)
    if isinstance(body, ErrorBody):
        err: dict[str, Any] = {"pki_status_info": _status_value(body.status)}
        if body.error_code is not None:
            err["error_code"] = body.error_code
        if body.details:
            err["error_details"] = _free_text_value(body.details)
        return asn1.PKIBody(name="error", value=asn1.ErrorMsgContent(err))
    raise ValueError(f"cannot encode a {body.kind} body")


@dataclass(frozen=True, slots=True)
class Prepared:
    """A message ready for protection: sign or MAC `protected_part`, then `finish`."""

    protected_part: bytes
    _header: asn1.PKIHeader = field(repr=False)
    _body: asn1.PKIBody = field(repr=False)
    _extra_certs: tuple[bytes, ...] = ()

    def finish(self, protection: bytes | None) -> bytes:
        value: dict[str, Any] = {"header": self._header, "body": self._body}
        if protection is not None:
            value["protection"] = core.OctetBitString(protection)
        if self._extra_certs:
            value["extra_certs"] = asn1.CMPCertificates(
                [asn1.CMPCertificate.load(c) for c in self._extra_certs]
            )
        return bytes(asn1.PKIMessage(value).dump())


def prepare(header: Header, body: Body, extra_certs: Sequence[bytes] = ()) -> Prepared:
    header_value = _header_value(header)
    body_value = _body_value(body)
    protected = der_sequence(header_value.dump() + body_value.dump())
    return Prepared(protected, header_value, body_value, tuple(extra_certs))
