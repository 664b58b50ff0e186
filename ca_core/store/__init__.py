"""The async store: one Database, one repository per kind of row.

SQLAlchemy Core over aiosqlite (one node) or asyncpg (a cluster); the same code runs on
both. The schema is `tables.py`; `migrate()` brings a database to it with Alembic.
"""

from __future__ import annotations

from dataclasses import dataclass

from ca_core.store.audit_log import AuditLog
from ca_core.store.bindings import BindingRepository
from ca_core.store.cas import CaRepository
from ca_core.store.certificates import CertificateQuery, CertificateRepository, Page
from ca_core.store.counters import Counters
from ca_core.store.credentials import CredentialRepository
from ca_core.store.database import Database, UnitOfWork
from ca_core.store.migrate import migrate
from ca_core.store.spent import SpentTokens, open_spent_tokens
from ca_core.store.state import StateDocument, StateStore


@dataclass(frozen=True)
class Store:
    db: Database
    cas: CaRepository
    certificates: CertificateRepository
    audit: AuditLog
    state: StateStore
    credentials: CredentialRepository
    bindings: BindingRepository
    counters: Counters
    spent: SpentTokens

    @classmethod
    def open(cls, url: str) -> Store:
        db = Database.open(url)
        state = StateStore(db)
        return cls(
            db=db,
            cas=CaRepository(db),
            certificates=CertificateRepository(db),
            audit=AuditLog(db),
            state=state,
            credentials=CredentialRepository(db),
            bindings=BindingRepository(db),
            counters=Counters(db),
            spent=open_spent_tokens(db.sqlite_file, state),
        )

    async def close(self) -> None:
        self.spent.close()
        self.state.close()
        await self.db.close()


__all__ = [
    "CertificateQuery",
    "Database",
    "Page",
    "SpentTokens",
    "StateDocument",
    "Store",
    "UnitOfWork",
    "migrate",
]
