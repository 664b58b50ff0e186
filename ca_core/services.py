"""Services: the frozen bundle of CA-core services the gateway builds and passes around.

Nothing here is global: the gateway (or a test) calls `open_services` and closes what it
opened. Protocol front-ends receive this bundle and call only its public services.
"""

from __future__ import annotations

from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass

from ca_core.approvals import ApprovalService
from ca_core.authority import Authority
from ca_core.clock import Clock, RandomBytes, SystemClock, SystemRandomBytes
from ca_core.credentials import CredentialService
from ca_core.issuance import IssuanceService, RateLimits
from ca_core.keys import KeyStore
from ca_core.profiles import Catalogue, load_catalogue
from ca_core.status.events import EventFeed
from ca_core.status.expiry import CertificateExpiry
from ca_core.status.publisher import CrlPublisher
from ca_core.status.responder import OcspResponder
from ca_core.status.responder_certs import ResponderCertificates
from ca_core.status.revocation import RevocationService
from ca_core.status.storage import StatusStore
from ca_core.store import Store, migrate
from ca_core.x509.extensions import PublicationUrls


@dataclass(frozen=True)
class Services:
    store: Store
    keys: KeyStore
    catalogue: Catalogue
    authority: Authority
    issuance: IssuanceService
    clock: Clock
    random_bytes: RandomBytes
    urls: PublicationUrls
    executor: Executor
    credentials: CredentialService
    revocation: RevocationService
    events: EventFeed
    approvals: ApprovalService
    crls: CrlPublisher
    ocsp: OcspResponder
    expiry: CertificateExpiry

    async def close(self) -> None:
        await self.store.close()
        self.keys.close()
        if isinstance(self.executor, ThreadPoolExecutor):
            self.executor.shutdown(wait=True)


async def open_services(
    database_url: str,
    keys: KeyStore,
    public_base_url: str,
    clock: Clock | None = None,
    random_bytes: RandomBytes | None = None,
    rate_limits: RateLimits | None = None,
    run_migrations: bool = True,
    executor_threads: int = 4,
    catalogue: Catalogue | None = None,
) -> Services:
    if run_migrations:
        await migrate(database_url)
    store = Store.open(database_url)
    clock = clock or SystemClock()
    random_bytes = random_bytes or SystemRandomBytes()
    catalogue = catalogue or load_catalogue()
    urls = PublicationUrls(public_base_url)
    executor = ThreadPoolExecutor(max_workers=executor_threads, thread_name_prefix="ceg-sign")
    authority = Authority(store, keys, catalogue, clock, random_bytes, urls, executor)
    issuance = IssuanceService(store, authority, catalogue, clock, random_bytes, urls, executor, rate_limits)
    status = StatusStore(store.db)
    revocation = RevocationService(store, clock)
    crls = CrlPublisher(store, status, authority, clock, executor)
    responders = ResponderCertificates(store, keys, issuance, clock, random_bytes, executor)
    ocsp = OcspResponder(store, status, authority, responders, clock, executor)
    # After every committed status change: the CA's CRL goes stale (or is rebuilt at once)
    # and the certificate's OCSP response is re-signed.
    revocation.add_listener(crls)
    revocation.add_listener(ocsp)
    return Services(
        store=store,
        keys=keys,
        catalogue=catalogue,
        authority=authority,
        issuance=issuance,
        clock=clock,
        random_bytes=random_bytes,
        urls=urls,
        executor=executor,
        credentials=CredentialService(store, clock, random_bytes),
        revocation=revocation,
        events=EventFeed(store),
        approvals=ApprovalService(store, issuance, clock, random_bytes),
        crls=crls,
        ocsp=ocsp,
        expiry=CertificateExpiry(store, clock),
    )
