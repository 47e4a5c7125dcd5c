"""Hourly and daily rollups of telemetry windows, written by ingest.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07

Written out by hand like 0001-0012; ``tests/integration/test_cp_migrations.py``
checks that the result matches the models. Windows stored before this revision are not
added into rollups: reports count from the upgrade on (docs/drift.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    counts = sa.JSON().with_variant(postgresql.ARRAY(postgresql.DOUBLE_PRECISION), "postgresql")
    op.create_table(
        "telemetry_rollup",
        sa.Column("grain", sa.String(length=4), nullable=False),
        sa.Column("bucket", _ts(), nullable=False),
        sa.Column("device_id", sa.String(length=63), nullable=False),
        sa.Column("release_id", sa.String(length=64), nullable=False),
        sa.Column("camera_id", sa.String(length=64), nullable=False),
        sa.Column("condition", sa.String(length=16), nullable=False),
        sa.Column("windows", sa.BigInteger(), nullable=False),
        sa.Column("mismatched", sa.BigInteger(), nullable=False),
        sa.Column("first_start", _ts(), nullable=False),
        sa.Column("last_end", _ts(), nullable=False),
        sa.Column("counts", counts, nullable=False),
        sa.PrimaryKeyConstraint("grain", "bucket", "device_id", "release_id", "camera_id",
                                "condition"),
    )
    op.create_index("ix_rollup_camera", "telemetry_rollup",
                    ["device_id", "camera_id", "grain", "bucket"])


def downgrade() -> None:
    op.drop_index("ix_rollup_camera", table_name="telemetry_rollup")
    op.drop_table("telemetry_rollup")
