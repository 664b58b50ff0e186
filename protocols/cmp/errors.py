"""The CMP failure: a PKIStatusInfo with failInfo bits (RFC 4210 5.2.3), raised wherever a
request is refused and turned into an error message (or a rejected ip/cp/kup/rp) once,
at the edge."""

from __future__ import annotations

from collections.abc import Iterable

FAIL_INFO_BITS = frozenset(
    {
        "badAlg",
        "badMessageCheck",
        "badRequest",
        "badTime",
        "badCertId",
        "badDataFormat",
        "wrongAuthority",
        "incorrectData",
        "missingTimeStamp",
        "badPOP",
        "certRevoked",
        "certConfirmed",
        "wrongIntegrity",
        "badRecipientNonce",
        "timeNotAvailable",
        "unacceptedPolicy",
        "unacceptedExtension",
        "addInfoNotAvailable",
        "badSenderNonce",
        "badCertTemplate",
        "signerNotTrusted",
        "transactionIdInUse",
        "unsupportedVersion",
        "notAuthorized",
        "systemUnavail",
        "systemFailure",
        "duplicateCertReq",
    }
)


class CmpFailure(Exception):
    """A refusal with its failInfo bits and a statusString for the client.

    `protection_failed` marks failures of the request's own protection: the answer then
    cannot be protected with the requester's shared secret (the MAC did not check out), so
    it is signed by the CA's CMP responder instead.
    """

    def __init__(
        self,
        fail_info: str | Iterable[str],
        text: str,
        *,
        protection_failed: bool = False,
    ) -> None:
        bits = frozenset({fail_info} if isinstance(fail_info, str) else fail_info)
        unknown = bits - FAIL_INFO_BITS
        if unknown:
            raise ValueError(f"unknown failInfo bits {sorted(unknown)}")
        super().__init__(text)
        self.fail_info = bits
        self.text = text
        self.protection_failed = protection_failed

    def __repr__(self) -> str:
        return f"CmpFailure({sorted(self.fail_info)}, {self.text!r})"
