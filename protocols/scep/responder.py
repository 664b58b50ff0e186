"""SCEP operations over the CA core (RFC 8894 3.3, 4), without HTTP.

`ScepResponder` answers GetCACaps, GetCACert, GetNextCACert and PKIOperation for a
binding. A PKIOperation goes: read the pkiMessage (codec) -> verify its signature ->
check signingTime and the message type -> decrypt the messageData with the RA key ->
decide (core) -> issue, submit for approval, or look up -> CertRep signed by the RA
and, on SUCCESS, encrypted to the requester's certificate (3.3.2).

- PKCSReq: the binding's ChallengeVerifier decides; RenewalReq: the signing
  certificate must be one this CA issued, in service (protocols/_shared/client_auth).
- Replays: the transaction state (core.py) makes a repeated request return the
  certificate already issued; its claim is written before anything is issued.
- Refusals become FAILURE CertReps with a failInfo and an audit entry (IssuanceService
  audits its own refusals, so those are not written twice).

The Intune front-end reuses this class with its own protocol name (state namespaces,
audit actor) and its own ChallengeVerifier factory.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ca_core.approvals import ApprovalState
from ca_core.audit import Action, AuditEntry
from ca_core.authority import CertificateAuthority
from ca_core.errors import CegError, Conflict, Forbidden, NotFound, Unauthorized
from ca_core.keys import with_signer
from ca_core.model import CertificateRecord, Requester
from ca_core.services import Services
from ca_core.x509.csr import parse_csr
from protocols._shared import cms
from protocols._shared.client_auth import issued_here
from protocols._shared.web import Binding
from protocols.scep import codec, core, translate
from protocols.scep.challenge import (
    ChallengeContext,
    ChallengeVerifier,
    RememberedSecrets,
    VerifierFactory,
    challenge_verifiers,
)
from protocols.scep.codec import MessageType, PkiMessage, PkiStatus
from protocols.scep.core import ApprovalMode, Attempt, Outcome, ScepSettings, Step
from protocols.scep.errors import FailInfo, ScepFailure
from protocols.scep.ra import RaIdentity, RegistrationAuthority
from protocols.scep.transactions import LoadedTransaction, TransactionStore

T = TypeVar("T")
A = TypeVar("A")
B = TypeVar("B")
log = logging.getLogger(__name__)
_ENROLMENT = (MessageType.PKCS_REQ.value, MessageType.RENEWAL_REQ.value)


@dataclass(frozen=True)
class _Answer:
    """What a CertRep will say, before it is encrypted and signed."""

    status: PkiStatus
    certificates: tuple[bytes, ...] = ()
    crls: tuple[bytes, ...] = ()
    fail_info: FailInfo | None = None
    reason: str | None = None

    @classmethod
    def success(cls, certificates: Sequence[bytes] = (), crls: Sequence[bytes] = ()) -> _Answer:
        return cls(PkiStatus.SUCCESS, tuple(certificates), tuple(crls))

    @classmethod
    def pending(cls) -> _Answer:
        return cls(PkiStatus.PENDING)


@dataclass
class _Request:
    """One PKIOperation being answered: what was learnt about it so far."""

    binding: Binding
    settings: ScepSettings
    message: PkiMessage
    requester: Requester
    now: dt.datetime
    recipient: bytes = b""  # the requester's certificate (DER), where SUCCESS is encrypted to
    cipher: str = cms.AES_256_CBC
    recipient_key: Any = None  # the requester's public key, parsed once
    plaintext: bytes = b""
    loaded: LoadedTransaction | None = None
    # Writes started before the CertRep is signed and awaited before it is returned:
    # the commit overlaps the RA's signature, and nothing is answered before it is stored.
    writes: list[asyncio.Task[None]] = field(default_factory=list)


def rollover_certificate(ca: CertificateAuthority) -> bytes | None:
    """The CA's next certificate (RFC 8894 4.7), when its record names one.

    The CA core has no rollover yet; this reads `next_certificate` (base64 DER) from the
    CA record's settings, so GetNextCACert appears in GetCACaps exactly when one exists.
    """
    raw = ca.record.settings.get("next_certificate")
    if not raw:
        return None
    try:
        return base64.b64decode(raw, validate=True)
    except ValueError:
        return None


async def _together(first: Awaitable[A], second: Awaitable[B]) -> tuple[A, B]:
    """Both results; when either fails, the other is cancelled and the failure raised."""
    one, two = asyncio.ensure_future(first), asyncio.ensure_future(second)
    try:
        return await one, await two
    except BaseException:
        for task in (one, two):
            task.cancel()
        await asyncio.gather(one, two, return_exceptions=True)
        raise


class ScepResponder:
    def __init__(
        self,
        services: Services,
        protocol: str = "scep",
        verifiers: VerifierFactory | None = None,
    ) -> None:
        self._services = services
        self._protocol = protocol
        self._ra = RegistrationAuthority(services, protocol)
        self._verifiers = verifiers or challenge_verifiers(RememberedSecrets())
        self._transactions = TransactionStore(services, f"{protocol}-tx")

    @property
    def registration_authority(self) -> RegistrationAuthority:
        return self._ra

    # --- the plain GET operations (RFC 8894 4.1, 4.2, 4.7) -----------------------------------

    async def capabilities(self, binding: Binding) -> bytes:
        ca = await self._services.authority.get(binding.ca)
        settings = core.parse_settings(binding.settings)
        return codec.capabilities_text(core.capabilities(settings, rollover_certificate(ca) is not None))

    async def ca_certificates(self, binding: Binding) -> tuple[bytes, str]:
        """GetCACert: the CA and the RA certificates together (clients encrypt to the RA
        and many expect both), plus the chain to the root when the binding says so."""
        settings = core.parse_settings(binding.settings)
        ca = await self._services.authority.get(binding.ca)
        identity = await self._ra.identity(binding.ca)
        chain = list(ca.chain) if settings.include_root else [ca.der]
        return codec.ca_certificates([*chain, identity.current.certificate])

    async def next_ca_certificates(self, binding: Binding) -> bytes | None:
        """GetNextCACert: the next CA certificate in a SignedData signed with the current CA
        key, which links the new key to the old one (RFC 8894 4.7.1); None without one."""
        ca = await self._services.authority.get(binding.ca)
        following = rollover_certificate(ca)
        if following is None:
            return None
        signer = ca.require_signer()
        identity = await self._ra.identity(binding.ca)
        content_signer = cms.key_signer(ca.der, signer.private_key(), signer.algorithm.signature_hash().name)
        return await with_signer(
            signer.blocking,
            self._services.executor,
            cms.sign_signed,
            content_signer,
            None,
            (),
            [following, identity.current.certificate],
        )

    # --- PKIOperation (RFC 8894 3.3) ------------------------------------------------------------

    async def pki_operation(self, binding: Binding, body: bytes, requester: Requester) -> bytes:
        """The CertRep for a pkiMessage; MalformedMessage when `body` is not one."""
        message = codec.decode_pki_message(body)
        settings = core.parse_settings(binding.settings)
        identity = await self._ra.identity(binding.ca)
        request = _Request(binding, settings, message, requester, self._services.clock.now())
        try:
            try:
                answer = await self._operate(request, identity)
            except ScepFailure as failure:
                if not failure.audited:
                    request.writes.append(asyncio.create_task(self._audit_refusal(request, failure)))
                answer = _Answer(PkiStatus.FAILURE, fail_info=failure.fail_info, reason=failure.reason)
            reply = await self._cert_rep(request, identity, answer)
        except BaseException:
            await asyncio.gather(*request.writes, return_exceptions=True)
            raise
        for outcome in await asyncio.gather(*request.writes, return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome
        return reply

    async def _operate(self, request: _Request, identity: RaIdentity) -> _Answer:
        message, settings = request.message, request.settings
        signer = codec.verify_pki_message(message)
        core.check_signing_time(message.signing_time, request.now, settings.max_clock_skew_seconds)
        if message.sender_nonce is None:
            raise ScepFailure(FailInfo.BAD_REQUEST, "pkiMessage without senderNonce")
        kinds = {
            MessageType.CERT_POLL.value,
            MessageType.GET_CERT.value,
            MessageType.GET_CRL.value,
            *_ENROLMENT,
        }
        if message.message_type not in kinds:
            raise ScepFailure(FailInfo.BAD_REQUEST, f"messageType {message.message_type} is not supported")
        request.recipient_key = signer.public_key()
        core.check_reply_recipient(request.recipient_key)
        request.recipient = signer.public_bytes(Encoding.DER)
        polls = message.message_type == MessageType.CERT_POLL.value
        if polls or (message.message_type in _ENROLMENT and settings.approval is ApprovalMode.MANUAL):
            # The transaction's rows are read while the RA key decrypts. (Automatic
            # enrolment claims first and reads only on a conflict: see _enrol.)
            transactions = self._transactions
            opened, request.loaded = await _together(
                self._open(request, identity),
                transactions.load(request.binding.ca, message.transaction_id, request.now),
            )
        else:
            opened = await self._open(request, identity)
        request.cipher = core.reply_cipher(opened.cipher)
        request.plaintext = opened.plaintext
        if message.message_type in _ENROLMENT:
            return await self._enrol(request)
        if message.message_type == MessageType.CERT_POLL.value:
            return await self._poll(request)
        return await self._lookup(request)

    async def _open(self, request: _Request, identity: RaIdentity) -> cms.Opened:
        accepted = core.accepted_ciphers(request.settings)
        blocking = identity.current.signer.blocking
        random_bytes = self._services.random_bytes
        try:
            return await with_signer(
                blocking,
                self._services.executor,
                codec.open_message_data,
                request.message,
                identity.recipients,
                accepted,
                random_bytes,
            )
        except ScepFailure as failure:
            if failure.fail_info is not FailInfo.BAD_MESSAGE_CHECK:
                raise
            # Another worker may have renewed the RA since this one cached it: look once more.
            fresh = await self._ra.identity(request.binding.ca, refresh=True)
            if fresh.recipients == identity.recipients:
                raise
        return await with_signer(
            blocking,
            self._services.executor,
            codec.open_message_data,
            request.message,
            fresh.recipients,
            accepted,
            random_bytes,
        )

    async def _cert_rep(self, request: _Request, identity: RaIdentity, answer: _Answer) -> bytes:
        message_data = None
        if answer.status is PkiStatus.SUCCESS:
            message_data = codec.seal_certificates(
                answer.certificates,
                request.recipient,
                request.cipher,
                self._services.random_bytes,
                answer.crls,
                request.recipient_key,
            )
        reply = codec.CertRep(
            transaction_id=request.message.transaction_id,
            sender_nonce=self._services.random_bytes(codec.NONCE_BYTES),
            recipient_nonce=request.message.sender_nonce,
            status=answer.status,
            fail_info=answer.fail_info,
            fail_text=answer.reason,
            message_data=message_data,
        )
        key = identity.current
        content_signer = key.content_signer(core.reply_digest(request.message.digest_algorithm))
        return await with_signer(
            key.signer.blocking,
            self._services.executor,
            codec.encode_cert_rep,
            reply,
            content_signer,
            request.now,
        )

    # --- enrolment: PKCSReq, RenewalReq (RFC 8894 3.3.1) -----------------------------------------

    async def _enrol(self, request: _Request) -> _Answer:
        message = request.message
        renewal = message.message_type == MessageType.RENEWAL_REQ.value
        if renewal and not request.settings.allow_renewal:
            raise ScepFailure(FailInfo.BAD_REQUEST, "renewal is not enabled on this binding")
        try:
            parsed = parse_csr(request.plaintext)
        except CegError as exc:
            raise ScepFailure(FailInfo.BAD_REQUEST, exc.message) from None
        fingerprint = core.request_fingerprint(
            message.message_type, request.plaintext, request.recipient if renewal else None
        )
        request_key = core.issuance_key(
            self._protocol, request.binding.ca, message.transaction_id, fingerprint
        )
        loaded = request.loaded
        if loaded is None:
            # Automatic approval: claim first; only a conflict (a replay, a twin, a retry)
            # needs the transaction's rows read and a decision taken.
            ca, transaction_id = request.binding.ca, message.transaction_id
            loaded = await self._transactions.claim_fresh(ca, transaction_id, fingerprint, request.now)
            if loaded is None:
                loaded = await self._transactions.load(ca, transaction_id, request.now)
                early = await self._decide_and_claim(request, loaded, fingerprint)
                if early is not None:
                    return early
        else:
            early = await self._decide_and_claim(request, loaded, fingerprint)
            if early is not None:
                return early
        if fingerprint in loaded.claims:
            # Taken over (an abandoned claim) or heard again: if a worker stored the
            # certificate and stopped before recording it, that certificate is the answer
            # (its one-time challenge is spent, so it could not be verified again).
            earlier = await self._services.store.certificates.by_request_key(request_key)
            if earlier is not None:
                attempt = Attempt(fingerprint, Outcome.ISSUED, request.now, serial=earlier.serial)
                await self._record(loaded, attempt)
                return _Answer.success([earlier.der])
        verified: tuple[ChallengeVerifier, ChallengeContext] | None = None
        try:
            binding = request.binding
            if renewal:
                old = await self._renewed_certificate(binding.ca, request.recipient)
                core.check_renewal(x509.load_der_x509_certificate(old.der), parsed.csr)
                profile_id = core.choose_profile(
                    binding.allowed_profiles, binding.default_profile, None, old.profile
                )
                principal, renewal_of = f"certificate:{old.serial}", old.serial
            else:
                verifier = self._verifiers(self._services, request.settings)
                context = ChallengeContext(
                    self._protocol,
                    binding.ca,
                    message.transaction_id,
                    parsed.challenge_password(),
                    parsed.csr,
                )
                principal = await verifier.verify(context)
                verified = (verifier, context)
                profile_id = core.choose_profile(
                    binding.allowed_profiles, binding.default_profile, translate.template_name(parsed.csr)
                )
                renewal_of = None
            issuance_request = translate.to_issuance_request(
                binding.ca,
                self._services.catalogue[profile_id],
                parsed,
                replace(request.requester, principal=principal),
                renewal_of,
                request_key,
            )
            if request.settings.approval is ApprovalMode.MANUAL:
                pending = await self._services.approvals.submit(issuance_request)
                attempt = Attempt(fingerprint, Outcome.PENDING, request.now, approval_id=pending.id)
                await self._record(loaded, attempt)
                return _Answer.pending()
            try:
                issued = await self._services.issuance.issue(issuance_request)
            except CegError as exc:
                raise translate.failure_of(exc, audited=True) from None
        except (ScepFailure, CegError) as exc:
            failure = exc if isinstance(exc, ScepFailure) else translate.failure_of(exc, audited=False)
            refused = Attempt(
                fingerprint,
                Outcome.REFUSED,
                request.now,
                reason=failure.reason,
                fail_info=failure.fail_info.value,
            )
            request.writes.append(asyncio.create_task(self._record(loaded, refused)))
            if verified is not None:
                await verified[0].report_failed(verified[1], failure.reason)
            raise failure from None
        await self._record(
            loaded, Attempt(fingerprint, Outcome.ISSUED, request.now, serial=issued.serial_hex)
        )
        if verified is not None:
            await verified[0].report_issued(verified[1], issued.der)
        return _Answer.success([issued.der])

    async def _decide_and_claim(
        self, request: _Request, loaded: LoadedTransaction, fingerprint: str
    ) -> _Answer | None:
        """The answer for a request the transaction already knows, or None once this
        worker has claimed it for evaluation."""
        decision = core.decide_enrolment(loaded.transaction, fingerprint, request.now)
        if decision.step is Step.REFUSE_BUSY:
            raise ScepFailure(
                FailInfo.BAD_REQUEST, "another request under this transactionID is still being decided"
            )
        if decision.step is not Step.START:
            return await self._resume(request, loaded, decision)
        if not await self._transactions.claim(loaded, fingerprint, request.now):
            return _Answer.pending()  # a twin request is being handled right now; the client polls
        return None

    async def _record(self, loaded: LoadedTransaction, attempt: Attempt) -> None:
        try:
            await self._transactions.record(loaded, attempt, attempt.updated_at)
        except Conflict:
            # Only a worker that took over this claim as abandoned can race here; its
            # outcome stands. Logged, because a replay could then be answered by either.
            log.warning(
                "transaction outcome written concurrently", extra={"fingerprint": attempt.fingerprint}
            )

    async def _renewed_certificate(self, ca: str, signer_der: bytes) -> CertificateRecord:
        try:
            return await issued_here(self._services, ca, signer_der)
        except Unauthorized as exc:
            raise ScepFailure(
                FailInfo.BAD_CERT_ID, f"RenewalReq not signed by a certificate of this CA: {exc}"
            ) from None
        except Forbidden as exc:
            raise ScepFailure(
                FailInfo.BAD_REQUEST, f"RenewalReq signed by a certificate out of service: {exc}"
            ) from None

    async def _poll(self, request: _Request) -> _Answer:
        """CertPoll (GetCertInitial, RFC 8894 3.3.3): the transactionID names the enrolment."""
        codec.decode_issuer_and_subject(request.plaintext)
        loaded = request.loaded
        assert loaded is not None
        return await self._resume(request, loaded, core.decide_poll(loaded.transaction, request.now))

    async def _resume(self, request: _Request, loaded: LoadedTransaction, decision: core.Decision) -> _Answer:
        attempt = decision.attempt
        assert attempt is not None
        if decision.step is Step.REPLAY_ISSUED:
            assert attempt.serial is not None
            return _Answer.success([await self._certificate(request.binding.ca, attempt.serial)])
        if decision.step is Step.WAIT:
            return _Answer.pending()
        assert attempt.approval_id is not None
        try:
            pending = await self._services.approvals.get(attempt.approval_id)
        except NotFound:
            raise ScepFailure(FailInfo.BAD_CERT_ID, "the pending request no longer exists") from None
        if pending.state is ApprovalState.PENDING:
            return _Answer.pending()
        if pending.state is ApprovalState.REJECTED:
            reason = pending.reason or "rejected by an officer"
            await self._record(
                loaded, replace(attempt, outcome=Outcome.REJECTED, reason=reason, updated_at=request.now)
            )
            raise ScepFailure(FailInfo.BAD_REQUEST, reason, audited=True)  # the officer's decision is audited
        assert pending.serial is not None
        await self._record(
            loaded, replace(attempt, outcome=Outcome.ISSUED, serial=pending.serial, updated_at=request.now)
        )
        return _Answer.success([await self._certificate(request.binding.ca, pending.serial)])

    async def _certificate(self, ca: str, serial: str) -> bytes:
        record = await self._services.store.certificates.get(serial, ca=ca)
        if record is None:
            raise ScepFailure(FailInfo.BAD_CERT_ID, f"certificate {serial} is not in the store")
        return record.der

    # --- GetCert, GetCRL (RFC 8894 3.3.4, 3.3.5) ---------------------------------------------------

    async def _lookup(self, request: _Request) -> _Answer:
        issuer, serial = codec.decode_issuer_and_serial(request.plaintext)
        ca = await self._services.authority.get(request.binding.ca)
        assert ca.certificate is not None
        if not cms.names_equal(issuer, ca.certificate.subject.public_bytes()):
            raise ScepFailure(FailInfo.BAD_CERT_ID, "the issuer named is not this CA")
        if request.message.message_type == MessageType.GET_CRL.value:
            crl = await self._services.crls.latest_der(ca.id)
            if crl is None:  # RFC 8894 3.3.5 has no "no CRL" answer; FAILURE it is
                raise ScepFailure(FailInfo.BAD_REQUEST, f"CA {ca.id} has no CRL to give now")
            return _Answer.success(crls=[crl])
        return _Answer.success([await self._certificate(ca.id, format(serial, "x"))])

    # --- audit -----------------------------------------------------------------------------------

    async def _audit_refusal(self, request: _Request, failure: ScepFailure) -> None:
        requester = request.requester
        entry = AuditEntry(
            request.now,
            Action.CERT_REFUSED,
            f"{self._protocol}:{requester.principal}",
            request.binding.ca,
            None,
            {
                "protocol": self._protocol,
                "code": f"{self._protocol}.{failure.fail_info.label}",
                "reason": failure.reason,
                "transaction_id": request.message.transaction_id,
                "message_type": request.message.message_type,
                "remote_addr": requester.remote_addr,
                "request_id": requester.request_id,
            },
        )
        await self._services.store.db.insert_batched([], [entry])
