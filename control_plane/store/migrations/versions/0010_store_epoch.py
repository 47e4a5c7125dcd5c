"""The store's epoch: one row that desired states carry, raised when a device shows the
store went back in time (restored from a backup), so agents accept its revisions again.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06

Written out by hand like 0001-0009; ``tests/integration/test_cp_migrations.py``
checks that the result matches the models.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "store_epoch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=1024), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("store_epoch")
