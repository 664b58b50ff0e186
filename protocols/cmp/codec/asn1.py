"""ASN.1 schema of CMP and CRMF, written for asn1crypto (which has no CMP).

Sources, by structure:
- RFC 4210 appendix F (module PKIXCMP, EXPLICIT TAGS) as updated by RFC 9480 (and
  RFC 9810): PKIMessage, PKIHeader, PKIBody, CertRepMessage, PKIStatusInfo,
  PKIFailureInfo, RevReqContent, RevRepContent, CertConfirmContent, PollReq/RepContent,
  ErrorMsgContent, InfoTypeAndValue, PBMParameter; RFC 9480 section 2 adds pvno cmp2021,
  CertStatus.hashAlg and the genm/genp values (RootCaKeyUpdateContent,
  CertReqTemplateContent, CRLStatus).
- RFC 4211 section 5 and appendix B (module PKIXCRMF, IMPLICIT TAGS): CertReqMessages,
  CertRequest, CertTemplate, ProofOfPossession, POPOSigningKey, CertId. Under IMPLICIT
  TAGS a tagged CHOICE (Name, Time, GeneralName, POPOPrivKey) is still explicitly
  tagged (X.680 31.2.7), which is why those fields say `explicit` below.

This package (protocols/cmp/codec) is the only place that imports asn1crypto
(HELPER_RULES: the codec owns the parsing library); everything else sees its frozen
dataclasses (model.py) and bytes.
"""

from __future__ import annotations

from asn1crypto import algos, cms, core, crl, csr, keys, x509

# --- shared pieces -----------------------------------------------------------------------


class PKIFreeText(core.SequenceOf):
    _child_spec = core.UTF8String


class KeyIdentifier(core.OctetString):
    pass


class CMPCertificate(x509.Certificate):
    """CMPCertificate ::= CHOICE { x509v3PKCert Certificate, ... }: only the one choice
    exists, and a CHOICE adds no tag, so it encodes exactly as a Certificate."""


class CMPCertificates(core.SequenceOf):
    _child_spec = CMPCertificate


class InfoTypeAndValue(core.Sequence):
    _fields = [
        ("info_type", core.ObjectIdentifier),
        ("info_value", core.Any, {"optional": True}),
    ]


class GeneralInfo(core.SequenceOf):
    _child_spec = InfoTypeAndValue


class AttributeTypeAndValue(core.Sequence):
    """CRMF controls and regInfo entries (RFC 4211 section 6)."""

    _fields = [
        ("type", core.ObjectIdentifier),
        ("value", core.Any),
    ]


class Controls(core.SequenceOf):
    _child_spec = AttributeTypeAndValue


# --- CRMF (RFC 4211) ------------------------------------------------------------------------


class OptionalValidity(core.Sequence):
    _fields = [
        ("not_before", x509.Time, {"explicit": 0, "optional": True}),
        ("not_after", x509.Time, {"explicit": 1, "optional": True}),
    ]


class CertTemplate(core.Sequence):
    _fields = [
        ("version", x509.Version, {"implicit": 0, "optional": True}),
        ("serial_number", core.Integer, {"implicit": 1, "optional": True}),
        ("signing_alg", algos.SignedDigestAlgorithm, {"implicit": 2, "optional": True}),
        ("issuer", x509.Name, {"explicit": 3, "optional": True}),
        ("validity", OptionalValidity, {"implicit": 4, "optional": True}),
        ("subject", x509.Name, {"explicit": 5, "optional": True}),
        ("public_key", keys.PublicKeyInfo, {"implicit": 6, "optional": True}),
        ("issuer_uid", core.BitString, {"implicit": 7, "optional": True}),
        ("subject_uid", core.BitString, {"implicit": 8, "optional": True}),
        ("extensions", x509.Extensions, {"implicit": 9, "optional": True}),
    ]


class CertRequest(core.Sequence):
    _fields = [
        ("cert_req_id", core.Integer),
        ("cert_template", CertTemplate),
        ("controls", Controls, {"optional": True}),
    ]


class PKMACValue(core.Sequence):
    _fields = [
        ("alg_id", algos.AlgorithmIdentifier),
        ("value", core.OctetBitString),
    ]


class POPOAuthInfo(core.Choice):
    _alternatives = [
        ("sender", x509.GeneralName, {"explicit": 0}),
        ("public_key_mac", PKMACValue),
    ]


class POPOSigningKeyInput(core.Sequence):
    _fields = [
        ("auth_info", POPOAuthInfo),
        ("public_key", keys.PublicKeyInfo),
    ]


class POPOSigningKey(core.Sequence):
    _fields = [
        ("poposk_input", POPOSigningKeyInput, {"implicit": 0, "optional": True}),
        ("algorithm_identifier", algos.SignedDigestAlgorithm),
        ("signature", core.OctetBitString),
    ]


class SubsequentMessage(core.Integer):
    _map = {0: "encr_cert", 1: "challenge_resp"}


class POPOPrivKey(core.Choice):
    _alternatives = [
        ("this_message", core.BitString, {"implicit": 0}),
        ("subsequent_message", SubsequentMessage, {"implicit": 1}),
        ("dh_mac", core.BitString, {"implicit": 2}),
        ("agree_mac", PKMACValue, {"implicit": 3}),
        ("encrypted_key", cms.EnvelopedData, {"implicit": 4}),
    ]


class ProofOfPossession(core.Choice):
    _alternatives = [
        ("ra_verified", core.Null, {"implicit": 0}),
        ("signature", POPOSigningKey, {"implicit": 1}),
        ("key_encipherment", POPOPrivKey, {"explicit": 2}),
        ("key_agreement", POPOPrivKey, {"explicit": 3}),
    ]


class CertReqMsg(core.Sequence):
    _fields = [
        ("cert_req", CertRequest),
        ("popo", ProofOfPossession, {"optional": True}),
        ("reg_info", Controls, {"optional": True}),
    ]


class CertReqMessages(core.SequenceOf):
    _child_spec = CertReqMsg


class CertId(core.Sequence):
    _fields = [
        ("issuer", x509.GeneralName),
        ("serial_number", core.Integer),
    ]


# --- CMP (RFC 4210, RFC 9480) -----------------------------------------------------------


class PKIFailureInfo(core.BitString):
    _map = {
        0: "badAlg",
        1: "badMessageCheck",
        2: "badRequest",
        3: "badTime",
        4: "badCertId",
        5: "badDataFormat",
        6: "wrongAuthority",
        7: "incorrectData",
        8: "missingTimeStamp",
        9: "badPOP",
        10: "certRevoked",
        11: "certConfirmed",
        12: "wrongIntegrity",
        13: "badRecipientNonce",
        14: "timeNotAvailable",
        15: "unacceptedPolicy",
        16: "unacceptedExtension",
        17: "addInfoNotAvailable",
        18: "badSenderNonce",
        19: "badCertTemplate",
        20: "signerNotTrusted",
        21: "transactionIdInUse",
        22: "unsupportedVersion",
        23: "notAuthorized",
        24: "systemUnavail",
        25: "systemFailure",
        26: "duplicateCertReq",
    }


class PKIStatus(core.Integer):
    _map = {
        0: "accepted",
        1: "grantedWithMods",
        2: "rejection",
        3: "waiting",
        4: "revocationWarning",
        5: "revocationNotification",
        6: "keyUpdateWarning",
    }


class PKIStatusInfo(core.Sequence):
    _fields = [
        ("status", PKIStatus),
        ("status_string", PKIFreeText, {"optional": True}),
        ("fail_info", PKIFailureInfo, {"optional": True}),
    ]


class CertOrEncCert(core.Choice):
    _alternatives = [
        ("certificate", CMPCertificate, {"explicit": 0}),
        # EncryptedKey (RFC 9480 2.7); ceg never encrypts certificates, so it stays opaque.
        ("encrypted_cert", core.Any, {"explicit": 1}),
    ]


class CertifiedKeyPair(core.Sequence):
    _fields = [
        ("cert_or_enc_cert", CertOrEncCert),
        ("private_key", core.Any, {"explicit": 0, "optional": True}),
        ("publication_info", core.Any, {"explicit": 1, "optional": True}),
    ]


class CertResponse(core.Sequence):
    _fields = [
        ("cert_req_id", core.Integer),
        ("status", PKIStatusInfo),
        ("certified_key_pair", CertifiedKeyPair, {"optional": True}),
        ("rsp_info", core.OctetString, {"optional": True}),
    ]


class CertResponses(core.SequenceOf):
    _child_spec = CertResponse


class CertRepMessage(core.Sequence):
    _fields = [
        ("ca_pubs", CMPCertificates, {"explicit": 1, "optional": True}),
        ("response", CertResponses),
    ]


class RevDetails(core.Sequence):
    _fields = [
        ("cert_details", CertTemplate),
        ("crl_entry_details", x509.Extensions, {"optional": True}),
    ]


class RevReqContent(core.SequenceOf):
    _child_spec = RevDetails


class PKIStatusInfos(core.SequenceOf):
    _child_spec = PKIStatusInfo


class CertIds(core.SequenceOf):
    _child_spec = CertId


class CertificateLists(core.SequenceOf):
    _child_spec = crl.CertificateList


class RevRepContent(core.Sequence):
    _fields = [
        ("status", PKIStatusInfos),
        ("rev_certs", CertIds, {"explicit": 0, "optional": True}),
        ("crls", CertificateLists, {"explicit": 1, "optional": True}),
    ]


class CertStatus(core.Sequence):
    _fields = [
        ("cert_hash", core.OctetString),
        ("cert_req_id", core.Integer),
        ("status_info", PKIStatusInfo, {"optional": True}),
        ("hash_alg", algos.AlgorithmIdentifier, {"explicit": 0, "optional": True}),
    ]


class CertConfirmContent(core.SequenceOf):
    _child_spec = CertStatus


class PollReq(core.Sequence):
    _fields = [("cert_req_id", core.Integer)]


class PollReqContent(core.SequenceOf):
    _child_spec = PollReq


class PollRep(core.Sequence):
    _fields = [
        ("cert_req_id", core.Integer),
        ("check_after", core.Integer),
        ("reason", PKIFreeText, {"optional": True}),
    ]


class PollRepContent(core.SequenceOf):
    _child_spec = PollRep


class ErrorMsgContent(core.Sequence):
    _fields = [
        ("pki_status_info", PKIStatusInfo),
        ("error_code", core.Integer, {"optional": True}),
        ("error_details", PKIFreeText, {"optional": True}),
    ]


class GenMsgContent(core.SequenceOf):
    _child_spec = InfoTypeAndValue


class PKIBody(core.Choice):
    # Bodies ceg never receives nor sends (key recovery, announcements, nested, popdecc)
    # are kept as Any so that a message carrying one still parses and gets a clean
    # "not supported" answer instead of a decoding failure.
    _alternatives = [
        ("ir", CertReqMessages, {"explicit": 0}),
        ("ip", CertRepMessage, {"explicit": 1}),
        ("cr", CertReqMessages, {"explicit": 2}),
        ("cp", CertRepMessage, {"explicit": 3}),
        ("p10cr", csr.CertificationRequest, {"explicit": 4}),
        ("popdecc", core.Any, {"explicit": 5}),
        ("popdecr", core.Any, {"explicit": 6}),
        ("kur", CertReqMessages, {"explicit": 7}),
        ("kup", CertRepMessage, {"explicit": 8}),
        ("krr", core.Any, {"explicit": 9}),
        ("krp", core.Any, {"explicit": 10}),
        ("rr", RevReqContent, {"explicit": 11}),
        ("rp", RevRepContent, {"explicit": 12}),
        ("ccr", core.Any, {"explicit": 13}),
        ("ccp", core.Any, {"explicit": 14}),
        ("ckuann", core.Any, {"explicit": 15}),
        ("cann", core.Any, {"explicit": 16}),
        ("rann", core.Any, {"explicit": 17}),
        ("crlann", core.Any, {"explicit": 18}),
        ("pkiconf", core.Null, {"explicit": 19}),
        ("nested", core.Any, {"explicit": 20}),
        ("genm", GenMsgContent, {"explicit": 21}),
        ("genp", GenMsgContent, {"explicit": 22}),
        ("error", ErrorMsgContent, {"explicit": 23}),
        ("cert_conf", CertConfirmContent, {"explicit": 24}),
        ("poll_req", PollReqContent, {"explicit": 25}),
        ("poll_rep", PollRepContent, {"explicit": 26}),
    ]


class PKIVersion(core.Integer):
    _map = {1: "cmp1999", 2: "cmp2000", 3: "cmp2021"}


class PKIHeader(core.Sequence):
    _fields = [
        ("pvno", PKIVersion),
        ("sender", x509.GeneralName),
        ("recipient", x509.GeneralName),
        ("message_time", core.GeneralizedTime, {"explicit": 0, "optional": True}),
        ("protection_alg", algos.AlgorithmIdentifier, {"explicit": 1, "optional": True}),
        ("sender_kid", KeyIdentifier, {"explicit": 2, "optional": True}),
        ("recip_kid", KeyIdentifier, {"explicit": 3, "optional": True}),
        ("transaction_id", core.OctetString, {"explicit": 4, "optional": True}),
        ("sender_nonce", core.OctetString, {"explicit": 5, "optional": True}),
        ("recip_nonce", core.OctetString, {"explicit": 6, "optional": True}),
        ("free_text", PKIFreeText, {"explicit": 7, "optional": True}),
        ("general_info", GeneralInfo, {"explicit": 8, "optional": True}),
    ]


class PKIMessage(core.Sequence):
    _fields = [
        ("header", PKIHeader),
        ("body", PKIBody),
        ("protection", core.OctetBitString, {"explicit": 0, "optional": True}),
        ("extra_certs", CMPCertificates, {"explicit": 1, "optional": True}),
    ]


class ProtectedPart(core.Sequence):
    _fields = [
        ("header", PKIHeader),
        ("body", PKIBody),
    ]


# --- protection parameters (RFC 4210 5.1.3.1, RFC 9481 6.1) ----------------------------


class PBMParameter(core.Sequence):
    _fields = [
        ("salt", core.OctetString),
        ("owf", algos.AlgorithmIdentifier),
        ("iteration_count", core.Integer),
        ("mac", algos.AlgorithmIdentifier),
    ]


# --- general message values (RFC 9480 sections 2.3 to 2.6, 4.3 of RFC 9483) -------------


class RootCaKeyUpdateContent(core.Sequence):
    _fields = [
        ("new_with_new", CMPCertificate),
        ("new_with_old", CMPCertificate, {"explicit": 0, "optional": True}),
        ("old_with_new", CMPCertificate, {"explicit": 1, "optional": True}),
    ]


class CertReqTemplateContent(core.Sequence):
    _fields = [
        ("cert_template", CertTemplate),
        ("key_spec", Controls, {"optional": True}),
    ]


class CertProfileValue(core.SequenceOf):
    _child_spec = core.UTF8String


class CRLSource(core.Choice):
    _alternatives = [
        ("dpn", x509.DistributionPointName, {"explicit": 0}),
        ("issuer", x509.GeneralNames, {"explicit": 1}),
    ]


class CRLStatus(core.Sequence):
    _fields = [
        ("source", CRLSource),
        ("this_update", x509.Time, {"optional": True}),
    ]


class CRLStatusListValue(core.SequenceOf):
    _child_spec = CRLStatus
