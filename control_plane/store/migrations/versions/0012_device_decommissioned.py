"""When a device was decommissioned (null: in service).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06

Written out by hand like 0001-0011; ``tests/integration/test_cp_migrations.py``
checks that the result matches the models.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("device", sa.Column("decommissioned_at", sa.DateTime(timezone=True),
                                      nullable=True))


def downgrade() -> None:
    op.drop_column("device", "decommissioned_at")
