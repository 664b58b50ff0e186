"""SCEP decisions without I/O (RFC 8894): binding settings, GetCACaps, which algorithms
are accepted and answered with, the transaction state machine, renewal rules.

Rules of this module:
- Nothing here reads the clock, draws random bytes or touches the store; `now` and
  stored documents come in, decisions and new documents go out (responder.py does I/O).
- A transaction is keyed by (CA, transactionID) and remembers its attempts, each
  identified by a fingerprint of the request (message type, CSR, and for a RenewalReq
  the signing certificate). The same request again gets the same answer (the same
  certificate, never a second one); a different request under the same transactionID
  starts a new attempt, unless one is still waiting for an officer or being issued
  (RFC 8894 3.2.1.1: one transactionID per enrolment). A refused request may be sent
  again (a corrected challenge, say) and is then heard afresh.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from protocols._shared import cms
from protocols.scep.errors import FailInfo, ScepFailure

PROFILES = (
    "scep-digital-signature",
    "scep-key-encipherment",
    "scep-non-repudiation",
    "scep-signature-key-encipherment",
)
DEFAULT_PROFILE = "scep-signature-key-encipherment"

TRANSACTION_TTL = dt.timedelta(days=90)
ISSUING_STALE_AFTER = dt.timedelta(minutes=2)  # a claim older than this was abandoned
MAX_CHALLENGE_TTL = 30 * 24 * 3600


# --- binding settings ------------------------------------------------------------------


class ChallengeMode(StrEnum):
    NONE = "none"  # anyone may enrol (lab use, or with manual approval)
    STATIC = "static"  # one shared secret per binding, stored as a hash
    DYNAMIC = "dynamic"  # one-time challenges from `ceg scep challenge` / the API (NDES-like)


class ApprovalMode(StrEnum):
    AUTO = "auto"
    MANUAL = "manual"  # PENDING until an officer approves (RFC 8894 2.4 manual mode)


@dataclass(frozen=True, slots=True)
class ScepSettings:
    """A SCEP binding's own settings (Binding.settings), checked by `check_settings`."""

    challenge: ChallengeMode = ChallengeMode.DYNAMIC
    challenge_hash: str | None = None  # scrypt of the static challenge (challenge.py)
    challenge_ttl_seconds: int = 3600  # default lifetime of a dynamic challenge
    approval: ApprovalMode = ApprovalMode.AUTO
    allow_renewal: bool = True  # RenewalReq signed with a valid certificate of this CA
    allow_legacy_clients: bool = False  # accept DES-EDE3-CBC and DES-CBC envelopes
    include_root: bool = False  # GetCACert also returns the CA chain up to the root
    max_clock_skew_seconds: int = 86400  # signingTime tolerance (badTime); 0 = unchecked

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "challenge": self.challenge.value,
            "challenge_ttl_seconds": self.challenge_ttl_seconds,
            "approval": self.approval.value,
            "allow_renewal": self.allow_renewal,
            "allow_legacy_clients": self.allow_legacy_clients,
            "include_root": self.include_root,
            "max_clock_skew_seconds": self.max_clock_skew_seconds,
        }
        if self.challenge_hash is not None:
            out["challenge_hash"] = self.challenge_hash
        return out


_BOOLS = ("allow_renewal", "allow_legacy_clients", "include_root")
_INTS = {"challenge_ttl_seconds": (60, MAX_CHALLENGE_TTL), "max_clock_skew_seconds": (0, 30 * 86400)}
# Keys the gateway itself may keep in a binding's settings.
_GATEWAY_KEYS = ("default",)


def parse_settings(raw: Mapping[str, Any], hash_secret: Any = None) -> ScepSettings:
    """Settings from a binding; ValueError naming the bad key. `hash_secret(password)` turns
    a plain `challenge_password` (accepted on input only) into the stored hash."""
    known = {f for f in ScepSettings.__slots__} | {"challenge_password", *_GATEWAY_KEYS}
    for key in raw:
        if key not in known:
            raise ValueError(f"unknown SCEP setting {key!r}; known: {', '.join(sorted(known))}")
    values: dict[str, Any] = {}
    try:
        if "challenge" in raw:
            values["challenge"] = ChallengeMode(raw["challenge"])
        if "approval" in raw:
            values["approval"] = ApprovalMode(raw["approval"])
    except ValueError as exc:
        raise ValueError(f"challenge/approval: {exc}") from None
    for key in _BOOLS:
        if key in raw:
            if not isinstance(raw[key], bool):
                raise ValueError(f"{key} must be true or false")
            values[key] = raw[key]
    for key, (low, high) in _INTS.items():
        if key in raw:
            value = raw[key]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"{key} must be an integer from {low} to {high}")
            values[key] = value
    password = raw.get("challenge_password")
    if password is not None:
        if not isinstance(password, str) or not 8 <= len(password) <= 255:
            raise ValueError("challenge_password must be a string of 8 to 255 characters")
        if hash_secret is None:
            raise ValueError("challenge_password is accepted only when saving a binding")
        values["challenge_hash"] = hash_secret(password)
    elif raw.get("challenge_hash") is not None:
        if not isinstance(raw["challenge_hash"], str) or not raw["challenge_hash"].startswith("scrypt$"):
            raise ValueError("challenge_hash is not a hash this gateway wrote")
        values["challenge_hash"] = raw["challenge_hash"]
    settings = ScepSettings(**values)
    if settings.challenge is ChallengeMode.STATIC and settings.challenge_hash is None:
        raise ValueError("challenge 'static' needs challenge_password")
    if settings.challenge is not ChallengeMode.STATIC and settings.challenge_hash is not None:
        settings = replace(settings, challenge_hash=None)
    return settings


# --- GetCACaps and algorithms ---------------------------------------------------------


def capabilities(settings: ScepSettings, has_rollover: bool) -> tuple[str, ...]:
    """What this binding really does (RFC 8894 3.5.2): nothing advertised that a request
    would then be refused for."""
    caps = ["POSTPKIOperation", "SHA-256", "SHA-512", "AES", "SCEPStandard"]
    if settings.allow_legacy_clients:
        caps.append("DES3")
    if settings.allow_renewal:
        caps.append("Renewal")
    if has_rollover:
        caps.append("GetNextCACert")
    return tuple(caps)


def accepted_ciphers(settings: ScepSettings) -> frozenset[str]:
    """Content-encryption algorithms accepted in requests. Single DES is only read, for
    old clients (Debian's scepclient encrypts with it), and only when legacy is allowed."""
    modern = {cms.AES_128_CBC, cms.AES_192_CBC, cms.AES_256_CBC}
    if settings.allow_legacy_clients:
        modern |= {cms.DES_EDE3_CBC, cms.DES_CBC}
    return frozenset(modern)


def reply_cipher(request_cipher: str) -> str:
    """Answer with the requester's cipher, except single DES, which some clients cannot
    even decrypt: they get DES-EDE3-CBC (legacy bindings only ever see DES)."""
    return cms.DES_EDE3_CBC if request_cipher == cms.DES_CBC else request_cipher


def reply_digest(request_digest: str) -> str:
    """Sign the CertRep with the requester's hash when it is one we advertise (or
    SHA-384); SHA-1 requesters get SHA-256, which they verify everywhere we know of."""
    return request_digest if request_digest in ("sha256", "sha384", "sha512") else "sha256"


def check_signing_time(signing_time: dt.datetime | None, now: dt.datetime, skew_seconds: int) -> None:
    if signing_time is None or skew_seconds == 0:
        return
    if abs((signing_time - now).total_seconds()) > skew_seconds:
        raise ScepFailure(FailInfo.BAD_TIME, f"signingTime {signing_time.isoformat()} is too far from now")


def check_reply_recipient(public_key: object) -> None:
    """The reply is encrypted to the requester's key by RSA key transport; refuse up front
    (before anything is issued) when that key cannot receive it."""
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise ScepFailure(
            FailInfo.BAD_ALG, "the requester's key is not RSA: a CertRep cannot be encrypted to it"
        )


# --- transactions ------------------------------------------------------------------------


class Outcome(StrEnum):
    ISSUING = "issuing"  # claimed by a worker that is issuing right now
    ISSUED = "issued"
    PENDING = "pending"  # waiting for an officer (approval id kept)
    REJECTED = "rejected"  # by an officer
    REFUSED = "refused"  # by the gateway (challenge, policy, ...): failInfo kept


@dataclass(frozen=True, slots=True)
class Attempt:
    fingerprint: str
    outcome: Outcome
    updated_at: dt.datetime
    serial: str | None = None
    approval_id: str | None = None
    reason: str | None = None
    fail_info: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "outcome": self.outcome.value,
            "updated_at": self.updated_at.isoformat(),
            "serial": self.serial,
            "approval_id": self.approval_id,
            "reason": self.reason,
            "fail_info": self.fail_info,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Attempt:
        return cls(
            fingerprint=data["fingerprint"],
            outcome=Outcome(data["outcome"]),
            updated_at=dt.datetime.fromisoformat(data["updated_at"]),
            serial=data.get("serial"),
            approval_id=data.get("approval_id"),
            reason=data.get("reason"),
            fail_info=data.get("fail_info"),
        )


@dataclass(frozen=True, slots=True)
class Transaction:
    """The stored state of one (CA, transactionID), newest attempt last."""

    attempts: tuple[Attempt, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"attempts": [a.to_json() for a in self.attempts]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Transaction:
        if not data:
            return cls()
        return cls(tuple(Attempt.from_json(a) for a in data.get("attempts", ())))

    def find(self, fingerprint: str) -> Attempt | None:
        return next((a for a in reversed(self.attempts) if a.fingerprint == fingerprint), None)

    @property
    def latest(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    def with_attempt(self, attempt: Attempt) -> Transaction:
        """Record `attempt`, replacing an earlier one for the same request."""
        others = tuple(a for a in self.attempts if a.fingerprint != attempt.fingerprint)
        return Transaction((*others, attempt))


class Step(StrEnum):
    START = "start"  # claim the transaction and evaluate the request
    REPLAY_ISSUED = "replay-issued"  # answer with the certificate already issued
    POLL_APPROVAL = "poll-approval"  # look at the officer's decision
    WAIT = "wait"  # another worker is issuing: answer PENDING, the client polls
    REFUSE_BUSY = "refuse-busy"  # another request of this transaction is still open


@dataclass(frozen=True, slots=True)
class Decision:
    step: Step
    attempt: Attempt | None = None


def _open(attempt: Attempt, now: dt.datetime) -> bool:
    if attempt.outcome is Outcome.PENDING:
        return True
    return attempt.outcome is Outcome.ISSUING and now - attempt.updated_at < ISSUING_STALE_AFTER


def decide_enrolment(transaction: Transaction, fingerprint: str, now: dt.datetime) -> Decision:
    """What to do with a PKCSReq/RenewalReq given the transaction's stored state."""
    same = transaction.find(fingerprint)
    if same is not None:
        if same.outcome is Outcome.ISSUED:
            return Decision(Step.REPLAY_ISSUED, same)
        if same.outcome is Outcome.PENDING:
            return Decision(Step.POLL_APPROVAL, same)
        if _open(same, now):
            return Decision(Step.WAIT, same)
        # refused or rejected earlier, or an abandoned claim: evaluate afresh
    for other in transaction.attempts:
        if other.fingerprint != fingerprint and _open(other, now):
            return Decision(Step.REFUSE_BUSY, other)
    return Decision(Step.START)


def decide_poll(transaction: Transaction, now: dt.datetime) -> Decision:
    """CertPoll (GetCertInitial): the newest attempt of the transaction decides."""
    latest = transaction.latest
    if latest is None:
        raise ScepFailure(FailInfo.BAD_CERT_ID, "no enrolment with this transactionID")
    if latest.outcome is Outcome.ISSUED:
        return Decision(Step.REPLAY_ISSUED, latest)
    if latest.outcome is Outcome.PENDING:
        return Decision(Step.POLL_APPROVAL, latest)
    if latest.outcome in (Outcome.REJECTED, Outcome.REFUSED):
        # already audited when it was decided
        fail_info = FailInfo(latest.fail_info) if latest.fail_info else FailInfo.BAD_REQUEST
        raise ScepFailure(fail_info, latest.reason or "the request was refused", audited=True)
    if _open(latest, now):
        return Decision(Step.WAIT, latest)
    raise ScepFailure(FailInfo.BAD_CERT_ID, "the enrolment of this transactionID did not complete")


def transaction_key(ca: str, transaction_id: str) -> str:
    """State key of a transaction: hashed, so any printable transactionID fits the column."""
    return hashlib.sha256(f"{ca}\0{transaction_id}".encode()).hexdigest()


def issuance_key(protocol: str, ca: str, transaction_id: str, fingerprint: str) -> str:
    """The CA core's idempotency key for one request of one transaction: a retry after a
    crash between storing the certificate and recording the outcome finds it again."""
    return hashlib.sha256(f"{protocol}\0{ca}\0{transaction_id}\0{fingerprint}".encode()).hexdigest()


def request_fingerprint(message_type: str, csr_der: bytes, renewal_signer: bytes | None) -> str:
    """What makes two requests 'the same request'. A RenewalReq includes its signing
    certificate: clients such as scepclient renew with the same key, CSR and
    transactionID, so only the certificate they sign with tells two renewals apart."""
    digest = hashlib.sha256(message_type.encode() + b"\0" + csr_der)
    if renewal_signer is not None:
        digest.update(b"\0" + renewal_signer)
    return digest.hexdigest()


# --- what is being asked for ---------------------------------------------------------------


MS_TEMPLATE_NAME = "1.3.6.1.4.1.311.20.2"


def choose_profile(
    allowed: Sequence[str], default: str, template_name: str | None, previous: str | None = None
) -> str:
    """The profile to issue from. SCEP has no profile field: a certificateTemplateName
    naming an allowed profile selects it (as NDES maps templates), a renewal keeps its
    certificate's profile when still allowed, otherwise the binding's default."""
    for candidate in (template_name, previous):
        if candidate and candidate in allowed:
            return candidate
    return default


def check_renewal(old: x509.Certificate, csr: x509.CertificateSigningRequest) -> None:
    """A RenewalReq may not ask for other names than the certificate it is signed with:
    the same subject, and subject alternative names among the old ones."""
    if csr.subject != old.subject:
        raise ScepFailure(
            FailInfo.BAD_REQUEST,
            f"renewal subject {csr.subject.rfc4514_string()!r} differs from {old.subject.rfc4514_string()!r}",
        )
    new_sans = _sans(csr.extensions)
    if not new_sans <= _sans(old.extensions):
        raise ScepFailure(
            FailInfo.BAD_REQUEST, "renewal asks for subject alternative names the certificate lacks"
        )


def _sans(extensions: x509.Extensions) -> set[x509.GeneralName]:
    try:
        return set(extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return set()


def ra_subject(ca_id: str, ca_subject: x509.Name) -> x509.Name:
    """The RA certificate's subject: named after the CA it serves."""
    organisation = ca_subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, f"SCEP RA {ca_id}")]
    if organisation:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, str(organisation[0].value)))
    return x509.Name(attributes)


def ra_renewal_due(
    not_before: dt.datetime, not_after: dt.datetime, ca_not_after: dt.datetime, now: dt.datetime
) -> bool:
    """Renew the RA certificate in the last third of its life (at most 30 days before),
    unless a new one could not outlive it (the CA itself ends first)."""
    window = min((not_after - not_before) / 3, dt.timedelta(days=30))
    return now >= not_after - window and ca_not_after > not_after
