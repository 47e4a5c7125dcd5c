"""Samples: frames agents upload for labelling (active learning).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

Written out by hand like 0001/0002; ``tests/integration/test_cp_migrations.py``
checks that the result matches the models.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _str(n: int) -> sa.String:
    return sa.String(length=n)


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sample",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("device_id", _str(63), nullable=False),
        sa.Column("camera_id", _str(64), nullable=False),
        sa.Column("release_id", _str(64), nullable=True),
        sa.Column("model_version", _str(128), nullable=True),
        sa.Column("predicted_label", _str(64), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("predictions", sa.JSON(), nullable=False),
        sa.Column("image_sha256", _str(64), nullable=False),
        sa.Column("image_size", sa.Integer(), nullable=False),
        sa.Column("captured_at", _ts(), nullable=False),
        sa.Column("status", _str(16), nullable=False),
        sa.Column("label", _str(64), nullable=True),
        sa.Column("note", _str(1024), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.Column("updated_by", _str(128), nullable=True),
        sa.ForeignKeyConstraint(["device_id"], ["device.device_id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sample_device_id", "sample", ["device_id"], unique=False)
    op.create_index("ix_sample_release_id", "sample", ["release_id"], unique=False)
    op.create_index("ix_sample_status_created", "sample", ["status", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_table("sample")
