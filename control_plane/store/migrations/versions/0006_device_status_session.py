"""Device status by arrival and session: ``device.status_session`` keeps the agent's
connection (``{process}-{n}``) that the stored online/offline came from, so a Last Will
of an old connection cannot overrule a newer ``online`` (and ``status_at`` becomes the
control plane's receipt time, no longer the device's clock).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-10

Written out by hand like 0001-0005; ``tests/integration/test_cp_migrations.py``
checks that the result matches the models.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


# Plain ALTER TABLE, not batch mode: a batch would copy ``device`` into a new table, and
# SQLite refuses to drop the old one while telemetry rows reference it.
def upgrade() -> None:
    op.add_column("device", sa.Column("status_session", sa.String(length=48), nullable=True))


def downgrade() -> None:
    op.drop_column("device", "status_session")
