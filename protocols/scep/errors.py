"""SCEP's own errors (RFC 8894 3.2.1.4.5): a FAILURE CertRep with a failInfo, or, for a
body that is not a pkiMessage at all, a plain HTTP 400 (no CertRep can be signed for a
message whose transactionID and senderNonce cannot be read)."""

from __future__ import annotations

from enum import StrEnum


class FailInfo(StrEnum):
    """failInfo values (RFC 8894 3.2.1.4.5), sent as PrintableStrings."""

    BAD_ALG = "0"  # unrecognised or unsupported algorithm
    BAD_MESSAGE_CHECK = "1"  # integrity check (signature, decryption) failed
    BAD_REQUEST = "2"  # transaction not permitted or supported
    BAD_TIME = "3"  # signingTime not close enough to the system time
    BAD_CERT_ID = "4"  # no certificate matches the given criteria

    @property
    def label(self) -> str:
        return {
            "0": "badAlg",
            "1": "badMessageCheck",
            "2": "badRequest",
            "3": "badTime",
            "4": "badCertId",
        }[self.value]


class MalformedMessage(Exception):
    """The body is not a pkiMessage (not CMS, or no transactionID/messageType): HTTP 400."""


class ScepFailure(Exception):
    """A refusal answered with a FAILURE CertRep carrying `fail_info`.

    `audited` is True when the CA core has already written the refusal to the audit log
    (IssuanceService does for every refused issuance), so it is not written twice.
    """

    def __init__(self, fail_info: FailInfo, reason: str, audited: bool = False) -> None:
        super().__init__(reason)
        self.fail_info = fail_info
        self.reason = reason
        self.audited = audited
