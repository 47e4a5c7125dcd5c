"""A device's clock skew: its clock minus the control plane's, measured at its last connect.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06

Written out by hand like 0001-0010; ``tests/integration/test_cp_migrations.py``
checks that the result matches the models.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("device", sa.Column("clock_skew_s", sa.Float(), nullable=True))


def downgrade() -> None:
    op.drop_column("device", "clock_skew_s")
