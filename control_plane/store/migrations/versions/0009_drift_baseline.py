"""Per-camera production baselines for drift, one per condition and release.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06

Written out by hand like 0001-0008; ``tests/integration/test_cp_migrations.py``
checks that the result matches the models.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


# No model imports (later model changes must not rewrite history); as ``models.BigId``.
_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "drift_baseline",
        sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True, nullable=False),
        sa.Column("device_id", sa.String(length=63), sa.ForeignKey("device.device_id"),
                  nullable=False),
        sa.Column("camera_id", sa.String(length=64), nullable=False),
        sa.Column("condition", sa.String(length=16), nullable=False),
        sa.Column("release_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("window_count", sa.Integer(), nullable=False),
        sa.Column("sample_count", sa.BigInteger(), nullable=False),
        sa.Column("window_minutes", sa.Float(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("levels", sa.JSON(), nullable=False),
        sa.Column("learned_from", _ts(), nullable=False),
        sa.Column("learned_to", _ts(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("retired_at", _ts(), nullable=True),
        sa.Column("retired_by", sa.String(length=128), nullable=True),
        sa.Column("retired_reason", sa.String(length=256), nullable=True),
    )
    op.create_index("ix_drift_baseline_key", "drift_baseline",
                    ["device_id", "camera_id", "condition", "release_id"])
    op.create_index("ix_drift_baseline_release_id", "drift_baseline", ["release_id"])


def downgrade() -> None:
    op.drop_index("ix_drift_baseline_release_id", table_name="drift_baseline")
    op.drop_index("ix_drift_baseline_key", table_name="drift_baseline")
    op.drop_table("drift_baseline")
