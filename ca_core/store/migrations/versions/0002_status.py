"""certificate status: stored CRLs and pre-signed OCSP responses

Revision ID: 0002_status
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_status"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "crls",
        sa.Column("ca_id", sa.String(length=64), nullable=False),
        sa.Column("number", sa.BigInteger(), nullable=False),
        sa.Column("this_update", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_update", sa.DateTime(timezone=True), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("audit_seq", sa.BigInteger(), nullable=False),
        sa.Column("stale_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("ca_id", name=op.f("pk_crls")),
    )
    op.create_table(
        "ocsp_responses",
        sa.Column("serial", sa.String(length=40), nullable=False),
        sa.Column("hash_alg", sa.String(length=16), nullable=False),
        sa.Column("ca_id", sa.String(length=64), nullable=False),
        sa.Column("cert_id", sa.LargeBinary(), nullable=False),
        sa.Column("signer", sa.String(length=256), nullable=False),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("this_update", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_update", sa.DateTime(timezone=True), nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("serial", "hash_alg", name=op.f("pk_ocsp_responses")),
    )
    with op.batch_alter_table("ocsp_responses", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ocsp_responses_ca_id_this_update"), ["ca_id", "this_update"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("ocsp_responses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ocsp_responses_ca_id_this_update"))
    op.drop_table("ocsp_responses")
    op.drop_table("crls")
