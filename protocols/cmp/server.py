"""One CMP exchange: a PKIMessage in, the answer out (RFC 4210 5.3, RFC 9483 4 and 5).

`CmpServer.handle` decodes (codec), checks the header (core), authenticates the request's
protection against the shared secret or certificate it names, opens or continues the
transaction (state store, compare-and-set), acts (issuance, approvals, revocation) and
protects the answer the way the request was protected: MAC with the same secret and
algorithm (fresh salt), or the CA's responder signature (responder.py).

Message-level failures (undecodable, bad header, bad protection, unknown transaction)
are answered with an error message; a refused certificate or revocation request is
answered in its own body type (ip/cp/kup/rp) with a rejection PKIStatusInfo, as RFC 9483
4.1 and 4.2 describe. Either way the failInfo says why.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from cryptography import x509

from ca_core.approvals import ApprovalState
from ca_core.audit import AuditEntry
from ca_core.authority import CertificateAuthority
from ca_core.errors import CegError, Conflict, Forbidden, InvalidState, NotFound, Unauthorized
from ca_core.model import CertStatus, IssuanceRequest, KeyAlgorithm, Requester
from ca_core.services import Services
from ca_core.status.revocation import StatusChange
from protocols._shared.client_auth import issued_here
from protocols._shared.web import Binding
from protocols.cmp import codec, confirmation, core, oids, protection, translate
from protocols.cmp.codec import (
    CertConfBody,
    CertRepBody,
    CertReqBody,
    CertResponse,
    ErrorBody,
    GenBody,
    Header,
    InfoItem,
    Message,
    P10crBody,
    Pbm,
    Pbmac1,
    PollRepBody,
    PollRepEntry,
    PollReqBody,
    RevRepBody,
    RevReqBody,
    SignatureAlgorithm,
    StatusInfo,
)
from protocols.cmp.core import CmpSettings, Sender, Transaction, TxState
from protocols.cmp.errors import CmpFailure
from protocols.cmp.responder import Responders, responder_subject

log = logging.getLogger(__name__)

# The newest CRL (DER) of a CA, or None (the gateway passes services.crls.latest_der).
# Without a source, or when it has no CRL, genm id-it-crlStatusList gets systemUnavail.
CrlSource = Callable[[str], Awaitable[bytes | None]]

_CURVE_OIDS = {
    KeyAlgorithm.EC_P256: "1.2.840.10045.3.1.7",
    KeyAlgorithm.EC_P384: "1.3.132.0.34",
    KeyAlgorithm.EC_P521: "1.3.132.0.35",
}


@dataclass
class Exchange:
    """What one request's handling knows so far."""

    binding: Binding
    settings: CmpSettings
    ca: CertificateAuthority
    ca_name: bytes  # the issuing CA's subject, Name DER
    now: dt.datetime
    requester: Requester
    label: str | None
    message: Message | None = None
    sender: Sender | None = None
    nonce: bytes = b""  # senderNonce of the answer

    @property
    def header(self) -> Header | None:
        return self.message.header if self.message is not None else None

    @property
    def tx_key(self) -> str:
        assert self.header is not None and self.header.transaction_id is not None
        return Transaction.key(self.ca.id, self.header.transaction_id)


@dataclass(frozen=True)
class Reply:
    body: codec.Body
    general_info: tuple[InfoItem, ...] = ()
    extra_certs: tuple[bytes, ...] = ()
    transaction: Transaction | None = None  # what a first message leaves behind


# Shared secrets are looked up once per this many seconds per worker: a revoked secret
# stops working within that time (as a changed binding does, gateway/bindings.py).
SECRET_CACHE_SECONDS = 5.0


@dataclass
class ServerState:
    """What one worker's exchanges share: the responder credentials, parsed binding
    settings and recently looked-up shared secrets."""

    responders: Responders = field(default_factory=Responders)
    settings: dict[int, tuple[Binding, CmpSettings]] = field(default_factory=dict)
    secrets: dict[tuple[str, str], tuple[float, bytes | None]] = field(default_factory=dict)


class CmpServer:
    def __init__(self, services: Services, state: ServerState, crls: CrlSource | None = None) -> None:
        self._services = services
        self._state = state
        self._responders = state.responders
        self._crls = crls

    # --- entry point ---------------------------------------------------------------------

    async def handle(self, binding: Binding, data: bytes, requester: Requester, label: str | None) -> bytes:
        services = self._services
        try:
            ca = await services.authority.get(binding.ca)
            ca.require_signer()
        except CegError as error:
            # No CA to answer for (deleted, not active, key unreachable): nothing can be
            # protected on its behalf, so the error goes out unprotected.
            failure = CmpFailure("systemUnavail", f"CA {binding.ca} cannot serve requests: {error.message}")
            header = core.reply_header(
                None, codec.NULL_DN_NAME, services.clock.now(), services.random_bytes(16)
            )
            return codec.prepare(header, core.error_body(failure)).finish(None)
        assert ca.certificate is not None
        ex = Exchange(
            binding=binding,
            settings=self._settings(binding),
            ca=ca,
            ca_name=ca.certificate.subject.public_bytes(),
            now=services.clock.now(),
            requester=requester,
            label=label,
            nonce=services.random_bytes(16),
        )
        try:
            ex.message = codec.decode_message(data)
        except codec.DecodeError as exc:
            if exc.header is not None:  # echo what could be read of the request
                ex.message = Message(exc.header, codec.UnsupportedBody("undecodable"))
            failure = CmpFailure("badDataFormat", str(exc), protection_failed=True)
            await self._audit_refusal(ex, "undecodable", failure)
            return await self._answer(ex, Reply(core.error_body(failure)))
        kind = ex.message.body.kind
        try:
            reply = await self._dispatch(ex, kind)
        except CmpFailure as failure:
            await self._audit_refusal(ex, kind, failure)
            reply = Reply(core.error_body(failure))
        except CegError as error:
            reply = Reply(core.error_body(translate.failure_for(error)))
        return await self._answer(ex, reply)

    def _settings(self, binding: Binding) -> CmpSettings:
        cache = self._state.settings
        cached = cache.get(id(binding))
        if cached is not None and cached[0] is binding:
            return cached[1]
        settings = CmpSettings.parse(binding.settings)
        if len(cache) > 64:
            cache.clear()
        cache[id(binding)] = (binding, settings)
        return settings

    async def _shared_secret(self, ca: str, reference: str) -> bytes | None:
        cache = self._state.secrets
        now = time.monotonic()
        hit = cache.get((ca, reference))
        if hit is not None and now - hit[0] < SECRET_CACHE_SECONDS:
            return hit[1]
        try:
            _, secret = await self._services.credentials.shared_secret("cmp", ca, reference)
        except Unauthorized:
            secret = None  # remembered too, so unknown references cannot make every request a query
        if len(cache) > 10_000:
            cache.clear()
        cache[(ca, reference)] = (now, secret)
        return secret

    async def _dispatch(self, ex: Exchange, kind: str) -> Reply:
        assert ex.message is not None
        message = ex.message
        own_names = (ex.ca_name, responder_subject(ex.ca.id).public_bytes())
        tolerance = dt.timedelta(seconds=ex.settings.message_time_tolerance_seconds)
        core.check_header(message.header, ex.now, tolerance, own_names)
        core.check_operation(kind, ex.label, message.body)
        ex.sender = await self._authenticate(ex, message)
        ex.requester = dataclasses.replace(ex.requester, principal=ex.sender.principal)
        if kind in core.FOLLOW_UPS:
            return await self._follow_up(ex, kind)
        core.check_kur_protection(ex.sender, kind)
        await self._check_unused(ex)
        tx = core.open_transaction(ex.ca.id, kind, ex.sender, message.header, ex.nonce)
        issues = kind in core.CERTIFICATE_REQUESTS
        if issues:
            tx = core.claim(tx, ex.now, dt.timedelta(seconds=ex.settings.confirm_wait_seconds))
        # Claimed before anything is done: of two copies of one first message, the second
        # stops here; a refused request uses up its transactionID too.
        tx = await self._claim(ex, tx)
        try:
            reply = await self._first_message(ex, tx, message.body)
        except CmpFailure:
            if issues:
                await self._save(ex, core.closed(tx))
            raise
        if reply.transaction is not None:
            await self._save(ex, reply.transaction)
        elif issues:
            await self._save(ex, core.closed(tx))
        return reply

    async def _first_message(self, ex: Exchange, tx: Transaction, body: codec.Body) -> Reply:
        if isinstance(body, CertReqBody):
            return await self._certify(ex, tx, body)
        if isinstance(body, P10crBody):
            return await self._p10cr(ex, tx, body)
        if isinstance(body, RevReqBody):
            return await self._revoke(ex, body)
        assert isinstance(body, GenBody)
        return await self._general(ex, body)

    # --- protection of the request --------------------------------------------------------

    async def _authenticate(self, ex: Exchange, message: Message) -> Sender:
        header = message.header
        algorithm = header.protection_alg
        if algorithm is None or message.protection is None:
            raise CmpFailure("badMessageCheck", "the request is not protected", protection_failed=True)
        if isinstance(algorithm, Pbm | Pbmac1):
            return await self._check_mac(ex, message, algorithm)
        if isinstance(algorithm, SignatureAlgorithm):
            return await self._check_signature(ex, message, algorithm)
        raise CmpFailure(
            "badAlg", f"protection algorithm {algorithm.oid}: {algorithm.reason}", protection_failed=True
        )

    async def _check_mac(self, ex: Exchange, message: Message, algorithm: Pbm | Pbmac1) -> Sender:
        kid = message.header.sender_kid
        if not kid:
            raise CmpFailure("badMessageCheck", "MAC protection needs the senderKID", protection_failed=True)
        try:
            reference = kid.decode("utf-8")
        except UnicodeDecodeError:
            reference = ""
        secret = await self._shared_secret(ex.ca.id, reference) if reference else None
        if secret is None:
            raise CmpFailure(
                "badMessageCheck",
                "unknown senderKID: no shared secret of that reference",
                protection_failed=True,
            )
        try:
            valid = protection.verify_mac(
                secret, algorithm, message.protected_part, message.protection or b""
            )
        except protection.ParameterError as exc:
            raise CmpFailure("badAlg", f"MAC parameters: {exc}", protection_failed=True) from None
        if not valid:
            raise CmpFailure("badMessageCheck", "the MAC does not verify", protection_failed=True)
        # "ref:" keeps a reference apart from a certificate subject (an RFC 4514 string,
        # which cannot contain ':' before its first '='): rr trusts the enroller's principal.
        return Sender("mac", f"ref:{reference}", f"mac:{reference}", secret=secret, mac_algorithm=algorithm)

    async def _check_signature(self, ex: Exchange, message: Message, algorithm: SignatureAlgorithm) -> Sender:
        def refuse(bit: str, text: str) -> CmpFailure:
            return CmpFailure(bit, text, protection_failed=True)

        if not message.extra_certs:
            raise refuse("badMessageCheck", "signature protection needs its certificate first in extraCerts")
        der = message.extra_certs[0]
        cert = x509.load_der_x509_certificate(der)
        sender_name = codec.directory_name_of(message.header.sender) or b""
        if not codec.same_name(sender_name, cert.subject.public_bytes()):
            raise refuse("badMessageCheck", "the sender is not the subject of the protection certificate")
        kid = message.header.sender_kid
        if kid is not None:
            try:
                ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
            except x509.ExtensionNotFound:
                ski = None
            if ski is not None and ski != kid:
                raise refuse(
                    "badMessageCheck", "senderKID is not the protection certificate's key identifier"
                )
        if not protection.verify_signature(
            cert.public_key(), algorithm, message.protected_part, message.protection or b""
        ):
            raise refuse("badMessageCheck", "the protection signature does not verify")
        if not protection.allows_digital_signature(cert):
            raise refuse("signerNotTrusted", "the protection certificate does not allow digitalSignature")
        serial = await self._trust(ex, der, cert, message.extra_certs[1:])
        fp = core.fingerprint(der)
        return Sender(
            "signature",
            cert.subject.rfc4514_string() or fp,
            f"cert:{fp}",
            certificate=der,
            serial=serial,
            trusted_ra=fp in ex.settings.trusted_ras,
        )

    async def _trust(
        self, ex: Exchange, der: bytes, cert: x509.Certificate, intermediates: Sequence[bytes]
    ) -> str | None:
        """The serial when this CA issued the certificate (and it is in service); None when it
        chains to a trust anchor of the binding; else signerNotTrusted / certRevoked."""
        try:
            record = await issued_here(self._services, ex.ca.id, der)
            return record.serial
        except Forbidden:
            stored = await self._services.store.certificates.get(format(cert.serial_number, "x"), ca=ex.ca.id)
            revoked = stored is not None and stored.status in (CertStatus.REVOKED, CertStatus.HELD)
            raise CmpFailure(
                "certRevoked" if revoked else "signerNotTrusted",
                "the protection certificate is revoked or on hold"
                if revoked
                else "the protection certificate is not valid now",
                protection_failed=True,
            ) from None
        except Unauthorized:
            pass
        anchors = ex.settings.anchor_certificates()
        untrusted = [x509.load_der_x509_certificate(d) for d in intermediates]
        if anchors and protection.chain_to_anchor(cert, untrusted, anchors, ex.now) is not None:
            return None
        raise CmpFailure(
            "signerNotTrusted",
            "the protection certificate was not issued by this CA nor under a trust anchor",
            protection_failed=True,
        )

    # --- transactions ----------------------------------------------------------------------

    async def _check_unused(self, ex: Exchange) -> None:
        """A first message must open a new transaction (RFC 4210 5.1.1: transactionIdInUse)."""
        if await self._services.store.state.get(core.TX_NAMESPACE, ex.tx_key, ex.now) is not None:
            raise CmpFailure("transactionIdInUse", "this transactionID is already in use")

    async def _claim(self, ex: Exchange, tx: Transaction) -> Transaction:
        """Create the transaction's document before its first message is acted on
        (transactionIdInUse if it exists; an expired one's id may be used again)."""
        state = self._services.store.state
        for _ in range(2):
            try:
                await state.create(
                    core.TX_NAMESPACE, ex.tx_key, tx.document(), ex.now, tx.lookup(), tx.expires_at(ex.now)
                )
                return dataclasses.replace(tx, version=1)
            except Conflict:
                existing = await state.get(core.TX_NAMESPACE, ex.tx_key)
                if existing is None or existing.expires_at is None or existing.expires_at > ex.now:
                    break
                await state.delete(core.TX_NAMESPACE, ex.tx_key)  # expired: its id may be reused
        raise CmpFailure("transactionIdInUse", "this transactionID is already in use")

    async def _load_transaction(self, ex: Exchange) -> Transaction | None:
        doc = await self._services.store.state.get(core.TX_NAMESPACE, ex.tx_key, ex.now)
        return Transaction.from_document(doc.document, doc.version) if doc is not None else None

    async def _save(self, ex: Exchange, tx: Transaction) -> Transaction:
        try:
            await self._services.store.state.put(
                core.TX_NAMESPACE,
                ex.tx_key,
                tx.document(),
                ex.now,
                tx.version,
                lookup=tx.lookup(),
                expires_at=tx.expires_at(ex.now),
            )
        except Conflict:
            raise CmpFailure(
                "badRequest", "another message of this transaction was handled meanwhile"
            ) from None
        return dataclasses.replace(tx, version=tx.version + 1)

    # --- certificate requests (ir, cr, kur, p10cr) ---------------------------------------------

    async def _certify(self, ex: Exchange, tx: Transaction, body: CertReqBody) -> Reply:
        assert ex.message is not None and ex.sender is not None
        request = core.single_request(body.requests)
        tx = dataclasses.replace(tx, cert_req_id=request.cert_req_id)
        try:
            core.check_template(request.template, ex.ca_name)
            core.check_popo(request, ex.message.header, ex.sender)
            profile = ex.binding.choose_profile(core.requested_profile(ex.message.header))
            old_certificate, renewal_of = None, None
            if body.kind == "kur":
                old_certificate, renewal_of = await self._certificate_to_update(ex, request)
            issuance = translate.issuance_request(
                ex.ca.id, profile, ex.requester, request.template, old_certificate, renewal_of
            )
        except CegError as error:
            return self._rejected(ex, tx, translate.failure_for(error))
        except CmpFailure as failure:
            await self._audit_refusal(ex, body.kind, failure)
            return self._rejected(ex, tx, failure)
        return await self._issue_or_park(ex, tx, issuance, profile)

    async def _p10cr(self, ex: Exchange, tx: Transaction, body: P10crBody) -> Reply:
        assert ex.message is not None
        tx = dataclasses.replace(tx, cert_req_id=core.P10CR_CERT_REQ_ID)
        try:
            core.check_p10cr(body.csr)
            profile = ex.binding.choose_profile(core.requested_profile(ex.message.header))
        except CegError as error:
            return self._rejected(ex, tx, translate.failure_for(error))
        except CmpFailure as failure:
            await self._audit_refusal(ex, "p10cr", failure)
            return self._rejected(ex, tx, failure)
        issuance = IssuanceRequest(ca=ex.ca.id, profile=profile, requester=ex.requester, csr=body.csr)
        return await self._issue_or_park(ex, tx, issuance, profile)

    async def _certificate_to_update(
        self, ex: Exchange, request: codec.CertRequest
    ) -> tuple[x509.Certificate, str]:
        """kur: the certificate being updated is the protection certificate, or (for a trusted
        RA) the one oldCertID names (RFC 9483 4.1.3, 5.1.3)."""
        sender = ex.sender
        assert sender is not None
        old_id = request.old_cert_id
        if old_id is not None:
            issuer = codec.directory_name_of(old_id.issuer)
            if issuer is None or not codec.same_name(issuer, ex.ca_name):
                raise CmpFailure("badCertId", "oldCertID names another issuer")
        if sender.serial is not None and (old_id is None or format(old_id.serial, "x") == sender.serial):
            serial = sender.serial
        elif sender.trusted_ra and old_id is not None:
            serial = format(old_id.serial, "x")
        elif old_id is not None:
            raise CmpFailure("notAuthorized", "kur must be signed with the certificate it updates")
        else:
            raise CmpFailure("notAuthorized", "kur must be signed with a certificate of this CA")
        record = await self._services.store.certificates.get(serial, ca=ex.ca.id)
        if record is None or record.effective_status(ex.now) is not CertStatus.NORMAL:
            raise CmpFailure("badCertId", f"certificate {serial} is not one of this CA's valid certificates")
        old = x509.load_der_x509_certificate(record.der)
        if request.template.public_key == codec.spki_of_certificate(record.der):
            raise CmpFailure("badCertTemplate", "kur needs a new key; the template repeats the old one")
        return old, record.serial

    async def _issue_or_park(
        self, ex: Exchange, tx: Transaction, issuance: IssuanceRequest, profile: str
    ) -> Reply:
        assert ex.message is not None and ex.sender is not None
        header = ex.message.header
        implicit = header.implicit_confirm and ex.settings.implicit_confirm
        issuance = dataclasses.replace(issuance, request_key=core.issuance_key(ex.tx_key, tx))
        if ex.settings.manual_approval:
            try:
                pending = await self._services.approvals.submit(issuance)
            except CegError as error:
                return self._rejected(ex, tx, translate.failure_for(error))
            parked = core.waiting(tx, pending.id, implicit, ex.nonce, profile)
            waiting = StatusInfo("waiting", text=("the request waits for an officer's approval",))
            body = CertRepBody(tx.response_kind, (CertResponse(tx.cert_req_id, waiting),))
            return Reply(body, transaction=parked)
        try:
            issued = await self._services.issuance.issue(issuance)
        except CegError as error:
            # IssuanceService has audited the refusal already.
            return self._rejected(ex, tx, translate.failure_for(error))
        return self._delivered(ex, tx, issued.der, issued.serial_hex, implicit)

    def _delivered(
        self, ex: Exchange, tx: Transaction, certificate: bytes, serial: str, implicit: bool
    ) -> Reply:
        """The ip/cp/kup carrying a new certificate, and the transaction it leaves behind."""
        assert ex.sender is not None
        cert = x509.load_der_x509_certificate(certificate)
        confirm_wait = dt.timedelta(seconds=ex.settings.confirm_wait_seconds)
        tx = core.issued(tx, serial, cert, implicit, ex.now, confirm_wait, ex.nonce)
        if tx.confirm_by is None:
            info = (core.implicit_confirm_item(),)
        else:
            info = (core.confirm_wait_item(tx.confirm_by),)
        chain = ex.ca.chain
        # caPubs: the root, for a MAC-authenticated ir (RFC 4210 5.3.2, RFC 9483 4.1.1).
        ca_pubs = (chain[-1],) if ex.sender.kind == "mac" and tx.kind == "ir" else ()
        response = CertResponse(tx.cert_req_id, core.ACCEPTED, certificate)
        body = CertRepBody(tx.response_kind, (response,), ca_pubs)
        return Reply(body, info, _chain_without_root(chain), transaction=tx)

    def _rejected(self, ex: Exchange, tx: Transaction, failure: CmpFailure) -> Reply:
        return Reply(CertRepBody(tx.response_kind, (CertResponse(tx.cert_req_id, core.rejection(failure)),)))

    # --- follow-ups (certConf, pollReq, error) -----------------------------------------------

    async def _follow_up(self, ex: Exchange, kind: str) -> Reply:
        assert ex.message is not None and ex.sender is not None
        tx = core.check_follow_up(await self._load_transaction(ex), kind, ex.sender, ex.message.header)
        body = ex.message.body
        if isinstance(body, CertConfBody):
            return await self._confirm(ex, tx, body)
        if isinstance(body, PollReqBody):
            return await self._poll(ex, tx, body)
        # An error message ends the transaction; a certificate not yet accepted is revoked.
        if tx.state is TxState.UNCONFIRMED:
            await confirmation.revoke_unaccepted(self._services, tx, ex.tx_key, "the client sent an error")
        elif tx.state is TxState.WAITING:
            await self._save(ex, dataclasses.replace(tx, state=TxState.CLOSED))
        return Reply(codec.PkiConfBody())

    async def _confirm(self, ex: Exchange, tx: Transaction, body: CertConfBody) -> Reply:
        certificate = None
        if core.needs_certificate(tx, body):
            assert tx.serial is not None
            record = await self._services.store.certificates.get(tx.serial, ca=ex.ca.id)
            if record is None:
                raise CmpFailure("badCertId", "the certificate of this transaction is gone")
            certificate = x509.load_der_x509_certificate(record.der)
        try:
            outcome = core.check_confirmation(tx, body, ex.now, certificate)
        except CmpFailure as failure:
            if "badTime" in failure.fail_info:
                await confirmation.revoke_unaccepted(self._services, tx, ex.tx_key, "certConf too late")
            raise
        if outcome is core.Confirmation.REJECTED:
            await confirmation.revoke_unaccepted(self._services, tx, ex.tx_key, "rejected in certConf")
        else:
            await self._save(
                ex, dataclasses.replace(tx, state=TxState.CONFIRMED, confirm_by=None, nonce=ex.nonce)
            )
        return Reply(codec.PkiConfBody())

    async def _poll(self, ex: Exchange, tx: Transaction, body: PollReqBody) -> Reply:
        core.poll_ids_match(tx, body.cert_req_ids)
        assert tx.approval_id is not None
        pending = await self._services.approvals.get(tx.approval_id)
        if pending.state is ApprovalState.PENDING:
            await self._save(ex, dataclasses.replace(tx, nonce=ex.nonce))
            entry = PollRepEntry(tx.cert_req_id, ex.settings.poll_interval_seconds, ("awaiting approval",))
            return Reply(PollRepBody((entry,)))
        if pending.state is ApprovalState.ISSUED and pending.serial is not None:
            record = await self._services.store.certificates.get(pending.serial, ca=ex.ca.id)
            if record is not None:
                reply = self._delivered(ex, tx, record.der, record.serial, tx.implicit)
                assert reply.transaction is not None
                await self._save(ex, reply.transaction)
                return reply
        await self._save(ex, dataclasses.replace(tx, state=TxState.CLOSED, nonce=ex.nonce))
        reason = pending.reason or "rejected"
        return self._rejected(
            ex, tx, CmpFailure("notAuthorized", f"an officer rejected the request: {reason}")
        )

    # --- revocation (rr) ----------------------------------------------------------------------

    async def _revoke(self, ex: Exchange, body: RevReqBody) -> Reply:
        assert ex.sender is not None
        if len(body.entries) != 1:
            raise CmpFailure("badRequest", "exactly one RevDetails per rr (RFC 9483 4.2)")
        entry = body.entries[0]
        try:
            serial = await self._revocable(ex, entry)
            await self._services.revocation.revoke(
                StatusChange(
                    serial=serial,
                    actor=f"cmp:{ex.sender.principal}",
                    reason=core.revocation_reason(entry.reason),
                    invalidity_date=entry.invalidity_date,
                    comment="CMP rr",
                    ca=ex.ca.id,
                )
            )
        except CmpFailure as failure:
            await self._audit_refusal(ex, "rr", failure)
            return Reply(RevRepBody((core.rejection(failure),)))
        except InvalidState as error:
            return Reply(RevRepBody((core.rejection(CmpFailure("certRevoked", error.message)),)))
        except NotFound as error:
            return Reply(RevRepBody((core.rejection(CmpFailure("badCertId", error.message)),)))
        revoked = codec.CertId(codec.directory_name(ex.ca_name), int(serial, 16))
        return Reply(RevRepBody((core.ACCEPTED,), (revoked,)))

    async def _revocable(self, ex: Exchange, entry: codec.RevDetails) -> str:
        """The serial to revoke, once the sender may revoke it (RFC 9483 4.2, 5.1.4)."""
        sender = ex.sender
        assert sender is not None
        if entry.serial is None or entry.issuer is None:
            raise CmpFailure("badRequest", "RevDetails needs the serialNumber and issuer of the certificate")
        if not codec.same_name(entry.issuer, ex.ca_name):
            raise CmpFailure(
                "badCertId", f"the certificate's issuer {codec.name_text(entry.issuer)} is not this CA"
            )
        serial = format(entry.serial, "x")
        record = await self._services.store.certificates.get(serial, ca=ex.ca.id)
        if record is None:
            raise CmpFailure("badCertId", f"this CA has no certificate {serial}")
        by_itself = sender.serial == record.serial
        by_its_enroller = (
            sender.kind == "mac"
            and record.requester.get("protocol") == "cmp"
            and record.requester.get("principal") == sender.principal
        )
        if not (by_itself or by_its_enroller or sender.trusted_ra):
            raise CmpFailure(
                "notAuthorized", "only the certificate itself, its enroller or a trusted RA may revoke it"
            )
        if record.status is CertStatus.REVOKED:
            raise CmpFailure("certRevoked", f"certificate {serial} is already revoked")
        return record.serial

    # --- general messages (genm) --------------------------------------------------------------

    async def _general(self, ex: Exchange, body: GenBody) -> Reply:
        assert ex.message is not None
        if len(body.items) > 1:
            raise CmpFailure("badRequest", "one InfoTypeAndValue per genm (RFC 9483 4.3)")
        # An empty genm asks for "whatever is useful" (RFC 4210 5.3.19): the CA certificates.
        item = body.items[0] if body.items else InfoItem(oids.OID_IT_CA_CERTS)
        if item.oid == oids.OID_IT_CA_CERTS:
            if item.value is not None and item.value != codec.NULL_DER:
                raise CmpFailure("badRequest", "id-it-caCerts takes no value")
            answer = InfoItem(oids.OID_IT_CA_CERTS, codec.encode_certificates(ex.ca.chain))
        elif item.oid in (oids.OID_IT_ROOT_CA_CERT, oids.OID_IT_ROOT_CA_KEY_UPDATE):
            # RFC 9480 asks with id-it-rootCaCert; OpenSSL 3.0 (before RFC 9480) asks with
            # the answer's own infoType, id-it-rootCaKeyUpdate, and no value.
            answer = self._root_update(ex, item)
        elif item.oid == oids.OID_IT_CERT_REQ_TEMPLATE:
            answer = self._template(ex, item)
        elif item.oid == oids.OID_IT_CRL_STATUS_LIST:
            answer = await self._crl_update(ex, item)
        else:
            raise CmpFailure("badRequest", f"genm infoType {item.oid} is not offered")
        return Reply(GenBody("genp", (answer,)))

    def _root_update(self, ex: Exchange, item: InfoItem) -> InfoItem:
        """id-it-rootCaKeyUpdate (RFC 9483 4.3.2): ceg roots are not re-keyed in place, so the
        answer is "no update" (value absent) for the current root."""
        root = ex.ca.chain[-1]
        if item.value is not None:
            try:
                old_root = codec.decode_certificate(item.value)
            except (ValueError, codec.DecodeError) as exc:
                raise CmpFailure("badDataFormat", f"id-it-rootCaCert: {exc}") from None
            if old_root != root:
                raise CmpFailure("badRequest", "the given root is not the root of this CA")
        return InfoItem(oids.OID_IT_ROOT_CA_KEY_UPDATE)

    def _template(self, ex: Exchange, item: InfoItem) -> InfoItem:
        """id-it-certReqTemplate (RFC 9483 4.3.3): the key types ceg certifies; names and
        extensions are the requester's to fill in, within the chosen profile."""
        assert ex.message is not None
        if item.value is not None and item.value != codec.NULL_DER:
            raise CmpFailure("badRequest", "id-it-certReqTemplate takes no value")
        profile = ex.binding.choose_profile(core.requested_profile(ex.message.header))
        del profile  # every profile takes the same key types; checked so a wrong name fails
        spec = codec.KeySpec(
            ec_curves=tuple(_CURVE_OIDS[k] for k in KeyAlgorithm if k.is_ec),
            rsa_key_lengths=tuple(k.rsa_bits for k in KeyAlgorithm if not k.is_ec),
        )
        value = codec.encode_cert_req_template(codec.CertTemplate(), spec)
        return InfoItem(oids.OID_IT_CERT_REQ_TEMPLATE, value)

    async def _crl_update(self, ex: Exchange, item: InfoItem) -> InfoItem:
        """id-it-crlStatusList -> id-it-crls (RFC 9483 4.3.4): the CA's CRL when it is newer
        than the one the client has."""
        if item.value is None:
            raise CmpFailure("badRequest", "id-it-crlStatusList needs a value")
        try:
            statuses = codec.decode_crl_status_list(item.value)
        except ValueError as exc:
            raise CmpFailure("badDataFormat", f"id-it-crlStatusList: {exc}") from None
        crl_der = await self._crls(ex.ca.id) if self._crls is not None else None
        if crl_der is None:
            raise CmpFailure("systemUnavail", "CRLs are not available from this CA yet")
        this_update = x509.load_der_x509_crl(crl_der).last_update_utc
        if all(s.this_update is not None and s.this_update >= this_update for s in statuses):
            return InfoItem(oids.OID_IT_CRLS)  # the client's CRL is current
        return InfoItem(oids.OID_IT_CRLS, codec.encode_crls([crl_der]))

    # --- the answer ----------------------------------------------------------------------------

    async def _answer(self, ex: Exchange, reply: Reply) -> bytes:
        """Protect the reply as the request was protected (RFC 4210 5.1.3, RFC 9483 3.2)."""
        request = ex.header
        sender = ex.sender
        if sender is not None and sender.kind == "mac":
            assert sender.mac_algorithm is not None and sender.secret is not None and request is not None
            algorithm = protection.reply_mac_algorithm(sender.mac_algorithm, self._services.random_bytes(16))
            header = core.reply_header(
                request, ex.ca_name, ex.now, ex.nonce, algorithm, request.sender_kid, reply.general_info
            )
            prepared = codec.prepare(header, reply.body, reply.extra_certs)
            return prepared.finish(protection.compute_mac(sender.secret, algorithm, prepared.protected_part))
        if request is None and isinstance(reply.body, ErrorBody):
            # Nothing of the request could be read: an unprotected error is all that fits.
            header = core.reply_header(None, ex.ca_name, ex.now, ex.nonce)
            return codec.prepare(header, reply.body).finish(None)
        responder = await self._responders.get(self._services, ex.ca.id)
        header = core.reply_header(
            request,
            responder.subject,
            ex.now,
            ex.nonce,
            responder.algorithm,
            responder.key_identifier,
            reply.general_info,
        )
        extra = [responder.certificate, *_chain_without_root(ex.ca.chain)]
        extra += [c for c in reply.extra_certs if c not in extra]
        prepared = codec.prepare(header, reply.body, extra)
        return prepared.finish(await responder.sign(prepared.protected_part, self._services))

    async def _audit_refusal(self, ex: Exchange, kind: str, failure: CmpFailure) -> None:
        header = ex.header
        entry = AuditEntry(
            ex.now,
            "cmp.refused",
            f"cmp:{ex.sender.principal if ex.sender else 'unauthenticated'}",
            ex.ca.id,
            None,
            {
                "message": kind,
                "fail_info": sorted(failure.fail_info),
                "reason": failure.text,
                "transaction_id": header.transaction_id.hex() if header and header.transaction_id else None,
                "remote_addr": ex.requester.remote_addr,
                "request_id": ex.requester.request_id,
            },
        )
        await self._services.store.db.insert_batched([], [entry])


def _chain_without_root(chain: Sequence[bytes]) -> tuple[bytes, ...]:
    """extraCerts carry the chain but not the self-signed root (RFC 9483 3.3)."""
    return tuple(chain[:-1]) if len(chain) > 1 else tuple(chain)


__all__ = ["CmpServer", "CrlSource"]
