"""Each telemetry window's cameras binned for the drift analysis, in columns written at
ingest.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07

Every analysis judges each device's latest windows; parsing and binning their JSON was
most of a 10,000-device report (``drift.stored_rows``). Existing rows stay NULL: the
analysis reads a window without them from its JSON, as before, and within a report's
range they are soon replaced by windows that have them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("telemetry_window", sa.Column("drift_rows", sa.LargeBinary(), nullable=True))
    op.add_column("telemetry_window", sa.Column("drift_cameras", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("telemetry_window", "drift_cameras")
    op.drop_column("telemetry_window", "drift_rows")
