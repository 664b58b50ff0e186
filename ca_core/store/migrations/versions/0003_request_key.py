"""certificates.request_key: a protocol's idempotency key for one issuance

Revision ID: 0003_request_key
Revises: 0002_status
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_request_key"
down_revision = "0002_status"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("certificates") as batch:
        batch.add_column(sa.Column("request_key", sa.String(length=64), nullable=True))
    op.create_index(op.f("ix_certificates_request_key"), "certificates", ["request_key"], unique=True)


def downgrade() -> None:
    op.drop_index(op.f("ix_certificates_request_key"), table_name="certificates")
    with op.batch_alter_table("certificates") as batch:
        batch.drop_column("request_key")
