"""Why a camera × condition has no drift baseline yet: the latest attempt to learn one.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07

A baseline that could not be learned (too few windows, too few with enough crops, the
release not healthy on the device, a fit that raised) left only a log line: the report
said ``learning`` and the operator could not tell waiting from stuck. One row per
(device, camera, condition, release), replaced by each attempt and removed when the
baseline is learned, so the table stays as small as the cameras still learning.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "drift_baseline_attempt",
        sa.Column("device_id", sa.String(length=63), sa.ForeignKey("device.device_id"),
                  primary_key=True, nullable=False),
        sa.Column("camera_id", sa.String(length=64), primary_key=True, nullable=False),
        sa.Column("condition", sa.String(length=16), primary_key=True, nullable=False),
        sa.Column("release_id", sa.String(length=64), primary_key=True, nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("message", sa.String(length=512), nullable=False),
        sa.Column("windows", sa.Integer(), nullable=False),
        sa.Column("windows_needed", sa.Integer(), nullable=False),
        sa.Column("busy_windows", sa.Integer(), nullable=True),
        sa.Column("first_tried_at", _ts(), nullable=False),
        sa.Column("tried_at", _ts(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("drift_baseline_attempt")
