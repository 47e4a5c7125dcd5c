"""Snapshots on request: ``camera_snapshot`` keeps each command an operator sent and the
device's answer (boxes, and the JPEG's sha256 in the artifact store).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

Written out by hand like 0001-0007; ``tests/integration/test_cp_migrations.py``
checks that the result matches the models.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "camera_snapshot",
        sa.Column("command_id", sa.String(length=64), primary_key=True),
        sa.Column("device_id", sa.String(length=63), sa.ForeignKey("device.device_id"),
                  nullable=False),
        sa.Column("camera_id", sa.String(length=64), nullable=False),
        sa.Column("requested_by", sa.String(length=128), nullable=False),
        sa.Column("requested_at", _ts(), nullable=False),
        sa.Column("expires_at", _ts(), nullable=False),
        sa.Column("captured_at", _ts(), nullable=True),
        sa.Column("received_at", _ts(), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("boxes", sa.JSON(), nullable=False),
        sa.Column("image_sha256", sa.String(length=64), nullable=True),
    )
    op.create_index("ix_snapshot_device_camera", "camera_snapshot", ["device_id", "camera_id"])


def downgrade() -> None:
    op.drop_index("ix_snapshot_device_camera", table_name="camera_snapshot")
    op.drop_table("camera_snapshot")
