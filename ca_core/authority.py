"""The CA hierarchy: roots, issuing CAs, issuing CAs under an external root.

Rules (issue 2, seed 1.1.1):
- A root is self-signed (basic-ca-root), valid up to 20 years.
- An issuing CA (basic-ca-subord, pathLen 0) is signed by a root, up to 10 years, never
  past the root.
- An issuing CA under an external root: its key is generated here and a PKCS#10 exported
  (state csr-ready); the certificate the operator's root signed is accepted only if it
  carries this key, is a CA certificate and verifies under the registered external root.
- States: provisioning -> (csr-ready ->) active -> deleting -> deleted. A root can be
  deleted only without live issuing CAs; deleting an issuing CA takes it (and so its
  certificates) out of service and destroys its key, while rows and audit stay.
- Services (profile sets) and the OCSP flag are per issuing CA; OCSP is fixed at creation.
"""

from __future__ import annotations

import asyncio
import builtins
import datetime as dt
import hashlib
import re
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from ca_core.audit import Action, AuditEntry
from ca_core.clock import Clock, RandomBytes
from ca_core.errors import BadRequest, Conflict, InvalidState, NotFound, PolicyViolation
from ca_core.keys import KeyStore, Signer
from ca_core.model import (
    CaKind,
    CaState,
    CertificateRecord,
    CertStatus,
    KeyAlgorithm,
    Service,
    add_years,
    utc,
)
from ca_core.profiles import Catalogue
from ca_core.store import Store, tables
from ca_core.store.cas import CaRecord
from ca_core.store.certificates import record_row
from ca_core.x509.certificate import CertificateSpec, new_serial, sign_certificate, sign_csr
from ca_core.x509.extensions import IssuerRef, PublicationUrls, build_extensions
from ca_core.x509.names import parse_dn

_T = TypeVar("_T")
_CA_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_CACHE_SECONDS = 5.0  # how long another worker's CA change may take to be seen here


@dataclass(frozen=True)
class CertificateAuthority:
    """A CA as the rest of the core uses it: record, parsed certificate, chain, signer."""

    record: CaRecord
    certificate: x509.Certificate | None
    chain: tuple[bytes, ...]  # this CA's certificate first, up to its root
    signer: Signer | None

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def kind(self) -> CaKind:
        return self.record.kind

    @property
    def state(self) -> CaState:
        return self.record.state

    @property
    def ocsp_enabled(self) -> bool:
        return self.record.ocsp_enabled

    @property
    def services(self) -> tuple[str, ...]:
        return self.record.services

    @property
    def not_after(self) -> dt.datetime:
        assert self.record.not_after is not None
        return self.record.not_after

    @property
    def der(self) -> bytes:
        assert self.record.certificate is not None
        return self.record.certificate

    @property
    def key_identifier(self) -> bytes:
        assert self.certificate is not None
        ski = self.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        return ski.value.digest

    def require_active(self) -> None:
        if self.state is not CaState.ACTIVE:
            raise InvalidState(f"CA {self.id} is {self.state.value}, not active", ca=self.id)

    def require_signer(self) -> Signer:
        self.require_active()
        if self.signer is None:
            raise InvalidState(f"CA {self.id} has no key here", ca=self.id)
        return self.signer


def _check_id(ca_id: str) -> None:
    if not _CA_ID.match(ca_id):
        raise BadRequest(
            f"CA id {ca_id!r} must be 1-63 lower-case letters, digits or '-' (it appears in URLs)",
            ca=ca_id,
        )


def _check_services(services: Iterable[str]) -> tuple[str, ...]:
    out = []
    for s in services:
        try:
            out.append(Service(s).value)
        except ValueError:
            raise BadRequest(f"unknown service {s!r}; one of {[x.value for x in Service]}") from None
    return tuple(dict.fromkeys(out))


def _whole_seconds(value: dt.datetime) -> dt.datetime:
    return value.replace(microsecond=0)


class Authority:
    """Creates, finds and retires CAs."""

    def __init__(
        self,
        store: Store,
        keys: KeyStore,
        catalogue: Catalogue,
        clock: Clock,
        random_bytes: RandomBytes,
        urls: PublicationUrls,
        executor: Executor | None = None,
    ) -> None:
        self._store = store
        self._keys = keys
        self._catalogue = catalogue
        self._clock = clock
        self._random = random_bytes
        self._urls = urls
        self._executor = executor
        self._cache: dict[str, tuple[float, CertificateAuthority]] = {}
        self._refreshing: dict[str, asyncio.Future[CertificateAuthority]] = {}
        self._signers: dict[str, Signer] = {}

    @property
    def urls(self) -> PublicationUrls:
        return self._urls

    async def _blocking(self, fn: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # --- lookup -----------------------------------------------------------------------

    async def get(self, ca_id: str, fresh: bool = False) -> CertificateAuthority:
        """The CA, from a short-lived cache; raises NotFound.

        When the cached entry expires under load, one read refreshes it and the other
        callers wait for that read instead of each going to the database.
        """
        loop_time = asyncio.get_running_loop().time()
        cached = self._cache.get(ca_id)
        if cached is not None and not fresh and loop_time - cached[0] < _CACHE_SECONDS:
            return cached[1]
        if fresh:
            return await self._refresh(ca_id, loop_time)
        pending = self._refreshing.get(ca_id)
        if pending is None:
            pending = asyncio.ensure_future(self._refresh(ca_id, loop_time))
            self._refreshing[ca_id] = pending
            pending.add_done_callback(lambda _: self._refreshing.pop(ca_id, None))
        return await asyncio.shield(pending)

    async def _refresh(self, ca_id: str, loop_time: float) -> CertificateAuthority:
        record = await self._store.cas.get(ca_id)
        if record is None:
            self._cache.pop(ca_id, None)
            raise NotFound(f"no CA {ca_id!r}", ca=ca_id)
        ca = await self._load(record)
        self._cache[ca_id] = (loop_time, ca)
        return ca

    def forget(self, ca_id: str) -> None:
        self._cache.pop(ca_id, None)

    async def list(self, include_deleted: bool = False) -> builtins.list[CaRecord]:
        return await self._store.cas.list(include_deleted=include_deleted)

    async def _load(self, record: CaRecord) -> CertificateAuthority:
        certificate = x509.load_der_x509_certificate(record.certificate) if record.certificate else None
        chain: list[bytes] = [record.certificate] if record.certificate else []
        parent_id = record.parent_id
        seen = {record.id}
        while parent_id and parent_id not in seen:
            seen.add(parent_id)
            parent = await self._store.cas.get(parent_id)
            if parent is None or parent.certificate is None:
                break
            chain.append(parent.certificate)
            parent_id = parent.parent_id
        signer = None
        if record.key_ref and record.state is not CaState.DELETED:
            signer = self._signers.get(record.key_ref)
            if signer is None:
                signer = await self._blocking(self._keys.load, record.key_ref)
                self._signers[record.key_ref] = signer
        return CertificateAuthority(record, certificate, tuple(chain), signer)

    # --- creation -----------------------------------------------------------------------

    async def create_root(
        self,
        ca_id: str,
        subject: str | x509.Name,
        key_algorithm: KeyAlgorithm = KeyAlgorithm.EC_P256,
        validity_years: int = 20,
        ocsp_enabled: bool = False,
        actor: str = "system",
    ) -> CertificateAuthority:
        _check_id(ca_id)
        name = parse_dn(subject) if isinstance(subject, str) else subject
        profile = self._catalogue["basic-ca-root"]
        if not 1 <= validity_years <= 20:
            raise PolicyViolation("a root CA is valid for 1 to 20 years", ca=ca_id)
        now = _whole_seconds(self._clock.now())
        not_after = add_years(now, validity_years)
        assert profile.validity.max_days is not None

        async def build(signer: Signer) -> CaRecord:
            spec = CertificateSpec(
                subject=name,
                issuer=name,
                public_key=signer.public_key(),
                serial=new_serial(self._random),
                not_before=now,
                not_after=not_after,
                extensions=build_extensions(
                    profile,
                    signer.public_key(),
                    signer.algorithm,
                    IssuerRef(ca_id, None),
                    self._urls,
                    aia_enabled=False,
                ),
            )
            der = await self._blocking(sign_certificate, spec, signer)
            return self._record(
                ca_id, CaKind.ROOT, CaState.ACTIVE, name, None, signer, der, None, ocsp_enabled, ()
            )

        return await self._provision(
            ca_id, CaKind.ROOT, name, key_algorithm, None, ocsp_enabled, (), build, actor
        )

    async def create_issuing(
        self,
        ca_id: str,
        parent_id: str,
        subject: str | x509.Name,
        key_algorithm: KeyAlgorithm = KeyAlgorithm.EC_P256,
        services: Iterable[str] = (),
        ocsp_enabled: bool = False,
        validity_years: int = 10,
        actor: str = "system",
    ) -> CertificateAuthority:
        _check_id(ca_id)
        name = parse_dn(subject) if isinstance(subject, str) else subject
        enabled = _check_services(services)
        parent = await self.get(parent_id, fresh=True)
        if parent.kind is not CaKind.ROOT:
            raise BadRequest(f"{parent_id} is not a root CA; issuing CAs are created under a root")
        parent_signer = parent.require_signer()
        if not 1 <= validity_years <= 10:
            raise PolicyViolation("an issuing CA is valid for 1 to 10 years", ca=ca_id)
        profile = self._catalogue["basic-ca-subord"]
        now = _whole_seconds(self._clock.now())
        not_after = min(add_years(now, validity_years), parent.not_after)

        async def build(signer: Signer) -> CaRecord:
            assert parent.certificate is not None
            spec = CertificateSpec(
                subject=name,
                issuer=parent.certificate.subject,
                public_key=signer.public_key(),
                serial=new_serial(self._random),
                not_before=now,
                not_after=not_after,
                extensions=build_extensions(
                    profile,
                    signer.public_key(),
                    signer.algorithm,
                    IssuerRef(parent.id, parent.key_identifier),
                    self._urls,
                    # The AIA names the root's responder, which exists when the root has OCSP.
                    aia_enabled=parent.ocsp_enabled,
                ),
            )
            der = await self._blocking(sign_certificate, spec, parent_signer)
            return self._record(
                ca_id,
                CaKind.ISSUING,
                CaState.ACTIVE,
                name,
                parent.id,
                signer,
                der,
                None,
                ocsp_enabled,
                enabled,
            )

        return await self._provision(
            ca_id,
            CaKind.ISSUING,
            name,
            key_algorithm,
            parent.id,
            ocsp_enabled,
            enabled,
            build,
            actor,
        )

    async def register_external_root(
        self, ca_id: str, certificate_der: bytes, actor: str = "system"
    ) -> CertificateAuthority:
        """Record the certificate of an operator's own root (no key here)."""
        _check_id(ca_id)
        try:
            cert = x509.load_der_x509_certificate(certificate_der)
        except ValueError as exc:
            raise BadRequest(f"external root certificate does not parse: {exc}") from None
        if not _is_ca(cert):
            raise BadRequest("the external root certificate is not a CA certificate")
        if cert.issuer != cert.subject or not _signed_by(cert, cert):
            raise BadRequest("the external root certificate is not self-signed")
        now = self._clock.now()
        record = CaRecord(
            id=ca_id,
            kind=CaKind.EXTERNAL_ROOT,
            state=CaState.ACTIVE,
            subject=cert.subject.rfc4514_string(),
            parent_id=None,
            key_algorithm=_key_algorithm_or_none(cert),
            key_ref=None,
            certificate=certificate_der,
            csr=None,
            not_before=utc(cert.not_valid_before_utc),
            not_after=utc(cert.not_valid_after_utc),
            ocsp_enabled=False,
            services=(),
            created_at=now,
            updated_at=now,
        )
        await self._insert(record, actor, {"kind": "external-root"})
        return await self.get(ca_id, fresh=True)

    async def create_external_issuing(
        self,
        ca_id: str,
        external_root_id: str,
        subject: str | x509.Name,
        key_algorithm: KeyAlgorithm = KeyAlgorithm.EC_P256,
        services: Iterable[str] = (),
        ocsp_enabled: bool = False,
        actor: str = "system",
    ) -> CertificateAuthority:
        """Generate the key and a CSR; the CA waits in csr-ready for its certificate."""
        _check_id(ca_id)
        name = parse_dn(subject) if isinstance(subject, str) else subject
        enabled = _check_services(services)
        root = await self.get(external_root_id, fresh=True)
        if root.kind is not CaKind.EXTERNAL_ROOT:
            raise BadRequest(f"{external_root_id} is not a registered external root")
        root.require_active()

        async def build(signer: Signer) -> CaRecord:
            csr = await self._blocking(sign_csr, name, signer)
            return self._record(
                ca_id,
                CaKind.ISSUING,
                CaState.CSR_READY,
                name,
                root.id,
                signer,
                None,
                csr,
                ocsp_enabled,
                enabled,
            )

        return await self._provision(
            ca_id, CaKind.ISSUING, name, key_algorithm, root.id, ocsp_enabled, enabled, build, actor
        )

    async def export_csr(self, ca_id: str, actor: str = "system") -> bytes:
        ca = await self.get(ca_id, fresh=True)
        if ca.record.csr is None:
            raise InvalidState(f"CA {ca_id} has no CSR (only issuing CAs under an external root do)")
        async with self._store.db.transaction() as uow:
            uow.audit(AuditEntry(self._clock.now(), Action.CA_CSR_EXPORTED, actor, ca_id))
        return ca.record.csr

    async def import_certificate(
        self, ca_id: str, certificate_der: bytes, actor: str = "system"
    ) -> CertificateAuthority:
        """Accept the external root's signature on our CSR: key, CA-ness and chain checked.
        A refused certificate is audited (with its SHA-256) and changes nothing else."""
        ca = await self.get(ca_id, fresh=True)
        if ca.state is not CaState.CSR_READY or ca.signer is None or ca.record.parent_id is None:
            raise InvalidState(f"CA {ca_id} is {ca.state.value}, not waiting for a certificate")
        root = await self.get(ca.record.parent_id, fresh=True)
        now = self._clock.now()
        try:
            cert = _checked_import(ca, root, certificate_der, now)
        except BadRequest as exc:
            detail = {"reason": exc.message, "sha256": hashlib.sha256(certificate_der).hexdigest()}
            entry = AuditEntry(now, Action.CA_CERT_REFUSED, actor, ca_id, detail=detail)
            await self._store.db.insert_batched([], [entry])
            raise
        async with self._store.db.transaction() as uow:
            current = await self._store.cas.get_for_update(uow, ca_id)
            if current is None or current.state is not CaState.CSR_READY:
                raise Conflict(f"CA {ca_id} changed while importing")
            await self._store.cas.update(
                uow,
                ca_id,
                now,
                state=CaState.ACTIVE,
                certificate=certificate_der,
                not_before=utc(cert.not_valid_before_utc),
                not_after=utc(cert.not_valid_after_utc),
                subject=cert.subject.rfc4514_string(),
            )
            uow.audit(
                AuditEntry(
                    now,
                    Action.CA_CERT_IMPORTED,
                    actor,
                    ca_id,
                    detail={"serial": format(cert.serial_number, "x")},
                )
            )
        self.forget(ca_id)
        return await self.get(ca_id, fresh=True)

    # --- changes ------------------------------------------------------------------------

    async def set_services(
        self, ca_id: str, services: Iterable[str], actor: str = "system"
    ) -> CertificateAuthority:
        enabled = _check_services(services)
        now = self._clock.now()
        async with self._store.db.transaction() as uow:
            record = await self._store.cas.get_for_update(uow, ca_id)
            if record is None:
                raise NotFound(f"no CA {ca_id!r}", ca=ca_id)
            if record.kind is not CaKind.ISSUING:
                raise BadRequest("services are enabled on issuing CAs")
            if record.state is CaState.DELETED:
                raise InvalidState(f"CA {ca_id} is deleted")
            await self._store.cas.update(uow, ca_id, now, services=enabled)
            uow.audit(
                AuditEntry(
                    now,
                    Action.CA_SERVICES_CHANGED,
                    actor,
                    ca_id,
                    detail={"services": list(enabled)},
                )
            )
        self.forget(ca_id)
        return await self.get(ca_id, fresh=True)

    async def delete(self, ca_id: str, actor: str = "system") -> None:
        now = self._clock.now()
        async with self._store.db.transaction() as uow:
            record = await self._store.cas.get_for_update(uow, ca_id)
            if record is None:
                raise NotFound(f"no CA {ca_id!r}", ca=ca_id)
            if record.state in (CaState.DELETING, CaState.DELETED):
                raise InvalidState(f"CA {ca_id} is already {record.state.value}")
            if record.kind in (CaKind.ROOT, CaKind.EXTERNAL_ROOT):
                live = await self._store.cas.children(uow, ca_id)
                if live:
                    raise InvalidState(
                        f"root {ca_id} still has issuing CAs: {', '.join(c.id for c in live)}",
                        ca=ca_id,
                    )
            await self._store.cas.update(uow, ca_id, now, state=CaState.DELETING)
        # The key goes first: once it is gone the CA can sign nothing, whatever else fails.
        if record.key_ref:
            self._signers.pop(record.key_ref, None)
            await self._blocking(self._keys.destroy, record.key_ref)
        async with self._store.db.transaction() as uow:
            await self._store.cas.update(uow, ca_id, self._clock.now(), state=CaState.DELETED)
            uow.audit(AuditEntry(now, Action.CA_DELETED, actor, ca_id, detail={"kind": record.kind.value}))
        self.forget(ca_id)

    # --- helpers ------------------------------------------------------------------------

    def _record(
        self,
        ca_id: str,
        kind: CaKind,
        state: CaState,
        name: x509.Name,
        parent_id: str | None,
        signer: Signer,
        der: bytes | None,
        csr: bytes | None,
        ocsp_enabled: bool,
        services: tuple[str, ...],
    ) -> CaRecord:
        now = self._clock.now()
        cert = x509.load_der_x509_certificate(der) if der else None
        return CaRecord(
            id=ca_id,
            kind=kind,
            state=state,
            subject=name.rfc4514_string(),
            parent_id=parent_id,
            key_algorithm=signer.algorithm,
            key_ref=signer.key_ref,
            certificate=der,
            csr=csr,
            not_before=utc(cert.not_valid_before_utc) if cert else None,
            not_after=utc(cert.not_valid_after_utc) if cert else None,
            ocsp_enabled=ocsp_enabled,
            services=services,
            created_at=now,
            updated_at=now,
        )

    async def _provision(
        self,
        ca_id: str,
        kind: CaKind,
        name: x509.Name,
        key_algorithm: KeyAlgorithm,
        parent_id: str | None,
        ocsp_enabled: bool,
        services: tuple[str, ...],
        build: Callable[[Signer], Awaitable[CaRecord]],
        actor: str,
    ) -> CertificateAuthority:
        """Reserve the id (state provisioning), make the key and certificate, then activate.

        On any failure the reservation and the key are removed again: nothing half-made stays.
        """
        now = self._clock.now()
        placeholder = CaRecord(
            id=ca_id,
            kind=kind,
            state=CaState.PROVISIONING,
            subject=name.rfc4514_string(),
            parent_id=parent_id,
            key_algorithm=key_algorithm,
            key_ref=None,
            certificate=None,
            csr=None,
            not_before=None,
            not_after=None,
            ocsp_enabled=ocsp_enabled,
            services=services,
            created_at=now,
            updated_at=now,
        )
        await self._reserve(placeholder)
        signer: Signer | None = None
        try:
            signer = await self._blocking(self._keys.generate, ca_id, key_algorithm)
            final: CaRecord = await build(signer)
            async with self._store.db.transaction() as uow:
                await self._store.cas.update(
                    uow,
                    ca_id,
                    self._clock.now(),
                    state=final.state,
                    key_ref=final.key_ref,
                    certificate=final.certificate,
                    csr=final.csr,
                    not_before=final.not_before,
                    not_after=final.not_after,
                    subject=final.subject,
                )
                if kind is CaKind.ISSUING and final.certificate is not None and parent_id is not None:
                    # The root's own certificate register: its CRL and OCSP answer for it.
                    uow.insert_later(
                        tables.certificates, record_row(self._ca_certificate_record(final, parent_id, actor))
                    )
                uow.audit(
                    AuditEntry(
                        self._clock.now(),
                        Action.CA_CREATED,
                        actor,
                        ca_id,
                        detail={
                            "kind": kind.value,
                            "state": final.state.value,
                            "parent": parent_id,
                            "subject": final.subject,
                            "key_algorithm": key_algorithm.value,
                            "ocsp": ocsp_enabled,
                            "services": list(services),
                        },
                    )
                )
        except BaseException:
            if signer is not None:
                await self._blocking(self._keys.destroy, signer.key_ref)
            from sqlalchemy import delete

            async with self._store.db.transaction() as uow:
                await uow.conn.execute(delete(tables.cas).where(tables.cas.c.id == ca_id))
            raise
        self._signers[signer.key_ref] = signer
        self.forget(ca_id)
        return await self.get(ca_id, fresh=True)

    def _ca_certificate_record(self, final: CaRecord, parent_id: str, actor: str) -> CertificateRecord:
        assert final.certificate is not None and final.not_before and final.not_after
        cert = x509.load_der_x509_certificate(final.certificate)
        return CertificateRecord(
            serial=format(cert.serial_number, "x"),
            ca=parent_id,
            profile="basic-ca-subord",
            subject=final.subject,
            sans=(),
            status=CertStatus.NORMAL,
            not_before=final.not_before,
            not_after=final.not_after,
            der=final.certificate,
            issued_at=self._clock.now(),
            requester={"protocol": "ca", "principal": actor},
        )

    async def _reserve(self, record: CaRecord) -> None:
        from sqlalchemy.exc import IntegrityError

        try:
            async with self._store.db.transaction() as uow:
                await self._store.cas.insert(uow, record)
        except IntegrityError:
            raise Conflict(f"a CA with id {record.id!r} already exists", ca=record.id) from None

    async def _insert(self, record: CaRecord, actor: str, detail: dict[str, object]) -> None:
        from sqlalchemy.exc import IntegrityError

        try:
            async with self._store.db.transaction() as uow:
                await self._store.cas.insert(uow, record)
                uow.audit(AuditEntry(self._clock.now(), Action.CA_CREATED, actor, record.id, detail=detail))
        except IntegrityError:
            raise Conflict(f"a CA with id {record.id!r} already exists", ca=record.id) from None
        self.forget(record.id)


def _checked_import(
    ca: CertificateAuthority, root: CertificateAuthority, certificate_der: bytes, now: dt.datetime
) -> x509.Certificate:
    """The operator's certificate for `ca`, if it is one we may accept; else BadRequest."""
    try:
        cert = x509.load_der_x509_certificate(certificate_der)
    except ValueError as exc:
        raise BadRequest(f"certificate does not parse: {exc}") from None
    assert ca.signer is not None and root.certificate is not None
    ours = ca.signer.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    theirs = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if ours != theirs:
        raise BadRequest("the certificate does not carry this CA's public key")
    if not _is_ca(cert):
        raise BadRequest("the certificate is not a CA certificate (basicConstraints cA=true)")
    if cert.issuer != root.certificate.subject or not _signed_by(cert, root.certificate):
        raise BadRequest(f"the certificate is not signed by the external root {root.id}")
    if not _has_ski(cert):
        raise BadRequest("the certificate has no subjectKeyIdentifier (RFC 5280 4.2.1.2)")
    if not _signs_certificates_and_crls(cert):
        raise BadRequest("the certificate's keyUsage lacks keyCertSign or cRLSign (RFC 5280 4.2.1.3)")
    if utc(cert.not_valid_after_utc) <= now:
        raise BadRequest("the certificate has already expired")
    return cert


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    return bool(bc.ca)


def _has_ski(cert: x509.Certificate) -> bool:
    try:
        cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except x509.ExtensionNotFound:
        return False
    return True


def _signs_certificates_and_crls(cert: x509.Certificate) -> bool:
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return bool(usage.key_cert_sign and usage.crl_sign)


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _key_algorithm_or_none(cert: x509.Certificate) -> KeyAlgorithm | None:
    try:
        return KeyAlgorithm.of_public_key(cert.public_key())
    except Exception:
        return None


__all__ = ["Authority", "CertificateAuthority", "add_years"]
