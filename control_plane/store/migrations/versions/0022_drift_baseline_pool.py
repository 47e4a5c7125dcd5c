"""The windows of camera × conditions still learning their drift baseline, kept across
analyses.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-08

A baseline was learned from the device's latest 8 x baseline_windows windows only, so a
condition rarer than 1 window in 8 (dusk, rain) never got one; and raw windows are merged
after two days anyway. Each analysis now adds a learning camera × condition's new windows
to this table (its camera's part of each), and the baseline is learned from them once
enough arrived, over as many days as it takes; they are deleted then. At most
baseline_windows rows per (device, release, camera, condition).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drift_baseline_pool",
        sa.Column("device_id", sa.String(length=63), sa.ForeignKey("device.device_id"),
                  primary_key=True, nullable=False),
        sa.Column("release_id", sa.String(length=64), primary_key=True, nullable=False),
        sa.Column("camera_id", sa.String(length=64), primary_key=True, nullable=False),
        sa.Column("condition", sa.String(length=16), primary_key=True, nullable=False),
        sa.Column("window_id", sa.BigInteger(), primary_key=True, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("camera", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("drift_baseline_pool")
