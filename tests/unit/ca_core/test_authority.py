"""The CA hierarchy (issue 2, seed 1.1.1): states, validity limits, services, OCSP flag, deletion."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509
from sqlalchemy import func, select

from ca_core.clock import ManualClock
from ca_core.errors import BadRequest, Conflict, InvalidState, KeyBackendError, NotFound, PolicyViolation
from ca_core.keys.file import FileKeyStore
from ca_core.model import CaKind, CaState, IssuanceRequest, Requester, Service, add_years
from ca_core.services import Services, open_services
from ca_core.status.revocation import StatusChange
from ca_core.store import tables
from tests.conftest import BASE_URL
from tests.support.hierarchy import make_hierarchy
from tests.support.pki import make_csr

START = dt.datetime(2026, 5, 4, 8, 0, tzinfo=dt.UTC)


@pytest.fixture
async def clocked(tmp_path: Path) -> AsyncIterator[Services]:
    s = await open_services(
        f"sqlite+aiosqlite:///{tmp_path}/ceg.db",
        FileKeyStore(tmp_path / "keys", b"pw"),
        BASE_URL,
        clock=ManualClock(START),
    )
    yield s
    await s.close()


async def cas_rows(s: Services) -> int:
    async with s.store.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(tables.cas))).scalar_one())


def issue(ca: str = "issuing", profile: str = "est-digital-signature") -> IssuanceRequest:
    return IssuanceRequest(ca=ca, profile=profile, requester=Requester("test"), csr=make_csr())


# --- creation, states and validity -----------------------------------------------------------


async def test_root_and_issuing_are_active_with_the_specified_lifetimes(clocked: Services) -> None:
    s = clocked
    root = await s.authority.create_root("root", "CN=Operator Root,O=Example Corp,C=US")
    assert root.kind is CaKind.ROOT and root.state is CaState.ACTIVE
    assert root.record.subject == "CN=Operator Root,O=Example Corp,C=US"  # the operator's DN
    assert root.not_after == add_years(START, 20)  # default 20 years
    issuing = await s.authority.create_issuing("issuing", "root", "CN=Issuing", services=["est"])
    assert issuing.kind is CaKind.ISSUING and issuing.state is CaState.ACTIVE
    assert issuing.not_after == add_years(START, 10)  # default 10 years
    assert issuing.record.parent_id == "root" and issuing.chain == (issuing.der, root.der)
    assert [e.action for e in await s.store.audit.entries()] == ["ca.created", "ca.created"]


async def test_issuing_ca_never_outlives_its_root(clocked: Services) -> None:
    s = clocked
    root = await s.authority.create_root("root", "CN=R", validity_years=4)
    issuing = await s.authority.create_issuing("issuing", "root", "CN=I", validity_years=10)
    assert issuing.not_after == root.not_after
    assert issuing.certificate is not None
    assert issuing.certificate.not_valid_after_utc == root.not_after


@pytest.mark.parametrize("years", [0, 21, -1])
async def test_root_validity_limits(clocked: Services, years: int) -> None:
    with pytest.raises(PolicyViolation):
        await clocked.authority.create_root("root", "CN=R", validity_years=years)
    assert await cas_rows(clocked) == 0


@pytest.mark.parametrize("years", [0, 11])
async def test_issuing_validity_limits(clocked: Services, years: int) -> None:
    await clocked.authority.create_root("root", "CN=R")
    with pytest.raises(PolicyViolation):
        await clocked.authority.create_issuing("issuing", "root", "CN=I", validity_years=years)
    assert await cas_rows(clocked) == 1
    ok = await clocked.authority.create_issuing("issuing", "root", "CN=I", validity_years=10)
    assert ok.state is CaState.ACTIVE


async def test_bad_ids_parents_and_services_refused(services: Services) -> None:
    a = services.authority
    for bad in ("Root", "with space", "-dash", "x" * 64, "", "a/b"):
        with pytest.raises(BadRequest):
            await a.create_root(bad, "CN=R")
    await a.create_root("root", "CN=R")
    with pytest.raises(Conflict):
        await a.create_root("root", "CN=Again")
    with pytest.raises(NotFound):
        await a.create_issuing("issuing", "nowhere", "CN=I")
    with pytest.raises(BadRequest, match="unknown service"):
        await a.create_issuing("issuing", "root", "CN=I", services=["est", "telnet"])
    await a.create_issuing("issuing", "root", "CN=I")
    with pytest.raises(BadRequest, match="not a root"):
        await a.create_issuing("deeper", "issuing", "CN=Deeper")
    with pytest.raises(BadRequest):
        await a.create_root("bad-dn", "CN=R,,=x")
    assert {r.id for r in await a.list()} == {"root", "issuing"}


async def test_concurrent_creation_of_one_id_makes_one_ca(services: Services) -> None:
    results = await asyncio.gather(
        *(services.authority.create_root("root", f"CN=R{i}") for i in range(4)), return_exceptions=True
    )
    made = [r for r in results if not isinstance(r, BaseException)]
    assert len(made) == 1
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, BaseException))
    assert await cas_rows(services) == 1
    # The key of the CA that was made is the one on record and still loads.
    ca = await services.authority.get("root", fresh=True)
    assert ca.record.subject == made[0].record.subject


class FailingKeys:
    """A key store that fails at a chosen step, to show that creation leaves nothing behind."""

    def __init__(self, inner: FileKeyStore, fail_on: str) -> None:
        self.inner, self.fail_on, self.destroyed = inner, fail_on, []  # type: ignore[var-annotated]
        self.name = inner.name

    def generate(self, label, algorithm):  # type: ignore[no-untyped-def]
        if self.fail_on == "generate":
            raise KeyBackendError("token full")
        signer = self.inner.generate(label, algorithm)
        if self.fail_on == "sign":

            class Broken:
                key_ref, algorithm, blocking = signer.key_ref, signer.algorithm, signer.blocking
                public_key = signer.public_key

                def private_key(self):  # type: ignore[no-untyped-def]
                    raise KeyBackendError("signing failed")

            return Broken()
        return signer

    def load(self, key_ref):  # type: ignore[no-untyped-def]
        return self.inner.load(key_ref)

    def destroy(self, key_ref):  # type: ignore[no-untyped-def]
        self.destroyed.append(key_ref)
        self.inner.destroy(key_ref)

    def close(self) -> None:
        self.inner.close()


@pytest.mark.parametrize("fail_on", ["generate", "sign"])
async def test_failed_provisioning_leaves_no_ca_and_no_key(tmp_path: Path, fail_on: str) -> None:
    keys = FailingKeys(FileKeyStore(tmp_path / "keys", b"pw"), fail_on)
    s = await open_services(f"sqlite+aiosqlite:///{tmp_path}/ceg.db", keys, BASE_URL)  # type: ignore[arg-type]
    try:
        with pytest.raises(KeyBackendError):
            await s.authority.create_root("root", "CN=R")
        assert await cas_rows(s) == 0
        assert list((tmp_path / "keys").iterdir()) == []
        assert keys.destroyed == ([] if fail_on == "generate" else ["file:root"])
        keys.fail_on = "nothing"
        assert (await s.authority.create_root("root", "CN=R")).state is CaState.ACTIVE
    finally:
        await s.close()


# --- services and the OCSP flag ---------------------------------------------------------------


async def test_services_per_issuing_ca(services: Services) -> None:
    a = services.authority
    await a.create_root("root", "CN=R")
    await a.create_issuing("one", "root", "CN=One", services=["est", "scep", "est"])
    await a.create_issuing("two", "root", "CN=Two", services=["privatessl"])
    assert (await a.get("one")).services == ("est", "scep")
    assert (await a.get("two")).services == ("privatessl",)
    await services.issuance.issue(issue("one"))
    with pytest.raises(Exception, match="does not enable"):
        await services.issuance.issue(issue("two"))
    changed = await a.set_services("two", [s.value for s in Service])
    assert set(changed.services) == {s.value for s in Service}
    await services.issuance.issue(issue("two"))
    with pytest.raises(BadRequest):
        await a.set_services("root", ["est"])
    with pytest.raises(BadRequest):
        await a.set_services("two", ["gopher"])
    with pytest.raises(NotFound):
        await a.set_services("nowhere", ["est"])
    entries = await services.store.audit.entries(actions=["ca.services_changed"])
    assert entries[-1].ca_id == "two"


async def test_ocsp_flag_is_fixed_at_creation(services: Services) -> None:
    a = services.authority
    await a.create_root("root", "CN=R", ocsp_enabled=True)
    await a.create_issuing("with", "root", "CN=With", services=["est"], ocsp_enabled=True)
    await a.create_issuing("without", "root", "CN=Without", services=["est"], ocsp_enabled=False)
    await a.set_services("without", ["est", "scep"])  # changing services leaves OCSP alone
    assert (await a.get("with")).ocsp_enabled and not (await a.get("without")).ocsp_enabled
    # No Authority operation changes the flag after creation.
    assert not [name for name in dir(a) if "ocsp" in name.lower() and not name.startswith("_")]
    has_aia = {}
    for ca in ("with", "without"):
        cert = (await services.issuance.issue(issue(ca))).certificate
        try:
            cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
            has_aia[ca] = True
        except x509.ExtensionNotFound:
            has_aia[ca] = False
    assert has_aia == {"with": True, "without": False}


async def test_issuing_ca_aia_follows_the_roots_responder(services: Services) -> None:
    """Catalogue reading 8: the issuing CA certificate names the root's OCSP responder."""
    a = services.authority
    await a.create_root("plain", "CN=No OCSP Root", ocsp_enabled=False)
    await a.create_root("answering", "CN=OCSP Root", ocsp_enabled=True)
    under_plain = await a.create_issuing("i1", "plain", "CN=I1", ocsp_enabled=True)
    under_answering = await a.create_issuing("i2", "answering", "CN=I2", ocsp_enabled=False)
    assert under_plain.certificate is not None and under_answering.certificate is not None
    with pytest.raises(x509.ExtensionNotFound):
        under_plain.certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
    aia = under_answering.certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
    assert {d.access_location.value for d in aia.value} == {
        f"{BASE_URL}/ocsp/answering",
        f"{BASE_URL}/ca/answering.crt",
    }


# --- deletion ----------------------------------------------------------------------------------


async def test_root_deleted_only_without_live_issuing_cas(services: Services) -> None:
    a = services.authority
    await make_hierarchy(services)
    with pytest.raises(InvalidState, match="issuing"):
        await a.delete("root")
    assert (await a.get("root", fresh=True)).state is CaState.ACTIVE
    await a.delete("issuing")
    await a.delete("root")
    assert (await a.get("root", fresh=True)).state is CaState.DELETED
    with pytest.raises(InvalidState):
        await a.delete("root")
    with pytest.raises(NotFound):
        await a.delete("nowhere")
    assert await a.list() == []
    assert {r.id for r in await a.list(include_deleted=True)} == {"root", "issuing"}


async def test_deleting_an_issuing_ca_takes_its_certificates_out_of_service(
    matrix_services: Services,
) -> None:
    s = matrix_services
    await make_hierarchy(s)
    issued = [await s.issuance.issue(issue()) for _ in range(3)]
    key_ref = (await s.authority.get("issuing")).record.key_ref
    assert key_ref is not None
    audit_before = len(await s.store.audit.entries(limit=10_000))

    await s.authority.delete("issuing")

    ca = await s.authority.get("issuing", fresh=True)
    assert ca.state is CaState.DELETED and ca.signer is None
    with pytest.raises(NotFound):  # the key is destroyed on its backend
        s.keys.load(key_ref)
    with pytest.raises(InvalidState):
        await s.issuance.issue(issue())
    with pytest.raises(InvalidState, match="out of service"):
        await s.revocation.revoke(StatusChange(issued[0].serial_hex, "officer"))
    # The certificates and their audit trail stay, and the chain still verifies.
    for cert in issued:
        stored = await s.store.certificates.get(cert.serial_hex)
        assert stored is not None and stored.der == cert.der
        assert [e.action for e in await s.store.audit.entries(serial=stored.serial)] == ["certificate.issued"]
    entries = await s.store.audit.entries(limit=10_000)
    assert [e.action for e in entries[audit_before:]] == ["ca.deleted", "certificate.refused"]
    assert await s.store.audit.verify() == []
    # The root is unaffected and can have a new issuing CA (under a new id).
    await s.authority.create_issuing("issuing-2", "root", "CN=Second", services=["est"])
    await s.issuance.issue(issue("issuing-2"))


async def test_deleted_root_issues_no_new_issuing_ca(services: Services) -> None:
    await services.authority.create_root("root", "CN=R")
    await services.authority.delete("root")
    with pytest.raises(InvalidState):
        await services.authority.create_issuing("issuing", "root", "CN=I")


async def test_a_ca_deleted_by_another_worker_gets_no_more_certificates(matrix_services: Services) -> None:
    """This process still has the CA cached as active; the commit checks the stored state."""
    from sqlalchemy import update

    s = matrix_services
    await make_hierarchy(s)
    await s.issuance.issue(issue())  # the CA and its signer are now cached here
    async with s.store.db.transaction() as uow:  # another worker deletes it
        await uow.conn.execute(
            update(tables.cas).where(tables.cas.c.id == "issuing").values(state=CaState.DELETED.value)
        )
    before = await s.store.certificates.count(ca="issuing")
    with pytest.raises(InvalidState, match="no longer active"):
        await s.issuance.issue(issue())
    assert await s.store.certificates.count(ca="issuing") == before
    [refusal] = await s.store.audit.entries(actions=["certificate.refused"])
    assert refusal.detail["code"] == "invalid_state"
    assert (await s.authority.get("issuing")).state is CaState.DELETED  # the cache was dropped
