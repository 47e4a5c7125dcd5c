"""Drift analysis, alerts and continuous training: samples remember the dataset
version they went into, so labelled samples enter exactly one new dataset version.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23

Written out by hand like 0001-0003; ``tests/integration/test_cp_migrations.py``
checks that the result matches the models. Drift reports, alerts and training jobs
already have their tables (0002); telemetry downsampling reuses ``telemetry_window``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sample") as batch:
        batch.add_column(sa.Column("dataset_version", sa.String(length=128), nullable=True))
    op.create_index("ix_sample_dataset_version", "sample", ["dataset_version"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_sample_dataset_version", table_name="sample")
    with op.batch_alter_table("sample") as batch:
        batch.drop_column("dataset_version")
