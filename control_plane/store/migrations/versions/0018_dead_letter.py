"""Messages that failed to store are kept, not dropped: the dead-letter table.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07

Ingest acknowledges a message that fails alone with a non-transient error (a retry would
fail the same way); it first writes it here so that nothing acknowledged is lost, and an
operator replays it once the cause is fixed (``parkwatch dead-letters replay``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dead_letter",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("device_id", sa.String(length=63), nullable=False),
        sa.Column("topic", sa.String(length=255), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("error", sa.String(length=1024), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_dead_letter_received_at", "dead_letter", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_dead_letter_received_at", table_name="dead_letter")
    op.drop_table("dead_letter")
