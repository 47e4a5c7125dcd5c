"""Rollout waves and health gates: the ``rollout_wave`` table, the rollout's
policy, current wave and pause reason, and per-device release/ack times and fallback.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23

Written out by hand like 0001-0003; ``tests/integration/test_cp_migrations.py``
checks that the result matches the models.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _str(n: int) -> sa.String:
    return sa.String(length=n)


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "rollout_wave",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rollout_id", _str(64), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("mode", _str(16), nullable=False),
        sa.Column("state", _str(32), nullable=False),
        sa.Column("device_count", sa.Integer(), nullable=False),
        sa.Column("started_at", _ts(), nullable=True),
        sa.Column("finished_at", _ts(), nullable=True),
        sa.Column("gates", sa.JSON(), nullable=True),
        sa.Column("approved_by", _str(128), nullable=True),
        sa.Column("approved_at", _ts(), nullable=True),
        sa.ForeignKeyConstraint(["rollout_id"], ["rollout.rollout_id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("rollout_id", "number", name="uq_rollout_wave"),
    )
    op.create_index("ix_rollout_wave_rollout_id", "rollout_wave", ["rollout_id"], unique=False)
    with op.batch_alter_table("rollout") as batch:
        batch.add_column(sa.Column("policy", sa.JSON(), nullable=True))
        batch.add_column(
            sa.Column("current_wave", sa.Integer(), server_default="0", nullable=False)
        )
        batch.add_column(sa.Column("paused_reason", _str(1024), nullable=True))
    with op.batch_alter_table("rollout_device") as batch:
        batch.add_column(sa.Column("released_at", _ts(), nullable=True))
        batch.add_column(sa.Column("acked_at", _ts(), nullable=True))
        batch.add_column(sa.Column("fallback_release_id", _str(64), nullable=True))
    # Rollouts from before waves ran one wave to every target: record it as wave 1, so
    # the engine can carry on with those still in progress (their policy stays null,
    # which the engine reads as one wave, acknowledgement only).
    op.execute("UPDATE rollout_device SET wave = 1, released_at = updated_at")
    op.execute("UPDATE rollout SET current_wave = 1")
    op.execute(
        "INSERT INTO rollout_wave (rollout_id, number, mode, state, device_count, started_at) "
        "SELECT r.rollout_id, 1, r.mode, "
        "CASE WHEN r.state = 'in_progress' THEN 'running' ELSE 'passed' END, "
        "(SELECT count(*) FROM rollout_device d WHERE d.rollout_id = r.rollout_id), "
        "r.created_at FROM rollout r"
    )


def downgrade() -> None:
    with op.batch_alter_table("rollout_device") as batch:
        batch.drop_column("fallback_release_id")
        batch.drop_column("acked_at")
        batch.drop_column("released_at")
    with op.batch_alter_table("rollout") as batch:
        batch.drop_column("paused_reason")
        batch.drop_column("current_wave")
        batch.drop_column("policy")
    op.drop_index("ix_rollout_wave_rollout_id", table_name="rollout_wave")
    op.drop_table("rollout_wave")
