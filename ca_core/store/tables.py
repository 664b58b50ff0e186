"""The schema, as SQLAlchemy Core metadata: the only source of truth for the tables.

Alembic migrations (store/migrations) create exactly this; a test compares the two.
Types are chosen to work the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

TS = DateTime(timezone=True)

cas = Table(
    "cas",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("parent_id", String(64), nullable=True),
    Column("state", String(16), nullable=False),
    Column("subject", String(1024), nullable=False),
    Column("key_algorithm", String(16), nullable=True),
    Column("key_ref", String(256), nullable=True),
    Column("certificate", LargeBinary, nullable=True),
    Column("csr", LargeBinary, nullable=True),
    Column("not_before", TS, nullable=True),
    Column("not_after", TS, nullable=True),
    Column("ocsp_enabled", Boolean, nullable=False, default=False),
    Column("services", JSON, nullable=False),
    Column("settings", JSON, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
)

certificates = Table(
    "certificates",
    metadata,
    # Serials are 16 random bytes; the primary key is the uniqueness constraint.
    Column("serial", String(40), primary_key=True),
    Column("ca_id", String(64), nullable=False),
    Column("profile", String(64), nullable=False),
    Column("subject", String(1024), nullable=False),
    Column("sans", Text, nullable=False),  # one SAN per line, "dns:example.com"
    Column("status", String(16), nullable=False),
    Column("not_before", TS, nullable=False),
    Column("not_after", TS, nullable=False),
    Column("issued_at", TS, nullable=False),
    Column("status_changed_at", TS, nullable=False),
    Column("der", LargeBinary, nullable=False),
    Column("requester", JSON, nullable=False),
    Column("renewal_of", String(40), nullable=True),
    Column("revoked_at", TS, nullable=True),
    Column("revocation_reason", String(32), nullable=True),
    Column("invalidity_date", TS, nullable=True),
    # A protocol's idempotency key (IssuanceRequest.request_key): one certificate per key.
    Column("request_key", String(64), nullable=True),
    Index(None, "ca_id", "status"),
    Index(None, "ca_id", "not_after"),
    Index(None, "profile"),
    Index(None, "request_key", unique=True),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
    Column("at", TS, nullable=False),
    Column("action", String(64), nullable=False),
    Column("actor", String(256), nullable=False),
    Column("ca_id", String(64), nullable=True),
    Column("serial", String(40), nullable=True),
    Column("detail", JSON, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index(None, "ca_id", "seq"),
    Index(None, "serial"),
)

# One row (id=1): the last sequence number and hash. Locking it serialises appends across
# processes and replicas, so sequence order is commit order (the events feed relies on it).
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)

# Generic keyed documents for protocol state (ACME, SCEP, CMP, EST, ...): ca_core owns the
# table and knows no protocol names. `version` supports compare-and-set.
state_documents = Table(
    "state_documents",
    metadata,
    Column("namespace", String(32), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("lookup", String(255), nullable=True),
    Column("document", JSON, nullable=False),
    Column("version", Integer, nullable=False),
    Column("expires_at", TS, nullable=True),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Index(None, "namespace", "lookup"),
    Index(None, "expires_at"),
)

credentials = Table(
    "credentials",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("name", String(128), nullable=False),
    Column("role", String(16), nullable=False),
    Column("secret_hash", String(256), nullable=True),
    Column("lookup", String(128), nullable=True, unique=True),
    Column("scope", JSON, nullable=False),
    Column("data", JSON, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("expires_at", TS, nullable=True),
    Column("revoked_at", TS, nullable=True),
)

bindings = Table(
    "bindings",
    metadata,
    Column("protocol", String(16), primary_key=True),
    Column("ca_id", String(64), primary_key=True),
    Column("enabled", Boolean, nullable=False),
    Column("settings", JSON, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
)

# Fixed-window counters (rate limits, CRL numbers): shared by every replica.
counters = Table(
    "counters",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("value", BigInteger, nullable=False),
    Column("expires_at", TS, nullable=True),
)

# The latest CRL of each CA (ca_core/status/crl_store.py): every worker serves these bytes.
# `audit_seq` is the audit log head the CRL reflects; `stale_since` is set by a status
# change after it, so the scheduler knows what to regenerate.
crls = Table(
    "crls",
    metadata,
    Column("ca_id", String(64), primary_key=True),
    Column("number", BigInteger, nullable=False),
    Column("this_update", TS, nullable=False),
    Column("next_update", TS, nullable=False),
    Column("entries", Integer, nullable=False),
    Column("audit_seq", BigInteger, nullable=False),
    Column("stale_since", TS, nullable=True),
    Column("der", LargeBinary, nullable=False),
)

# Pre-signed OCSP responses (ca_core/status/responder.py), one per certificate and CertID
# hash algorithm; `status_changed_at` and `signer` tell whether a stored response is current.
ocsp_responses = Table(
    "ocsp_responses",
    metadata,
    Column("serial", String(40), primary_key=True),
    Column("hash_alg", String(16), primary_key=True),
    Column("ca_id", String(64), nullable=False),
    Column("cert_id", LargeBinary, nullable=False),
    Column("signer", String(256), nullable=False),
    Column("status_changed_at", TS, nullable=False),
    Column("this_update", TS, nullable=False),
    Column("next_update", TS, nullable=False),
    Column("der", LargeBinary, nullable=False),
    Index(None, "ca_id", "this_update"),
)
