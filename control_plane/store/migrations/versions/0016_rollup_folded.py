"""Day rollup rows are folded from the hour rows by a job, no longer written by ingest.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07

``folded``: whether an hour row is added into its day's rows. Until now ingest wrote
every window into its hour and its day in one transaction, so every stored hour is
already in its day: existing rows start folded.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("telemetry_rollup", sa.Column("folded", sa.Boolean(), nullable=False,
                                                server_default=sa.true()))
    with op.batch_alter_table("telemetry_rollup") as batch:
        batch.alter_column("folded", server_default=sa.false())
    op.create_index("ix_rollup_unfolded", "telemetry_rollup", ["bucket"],
                    postgresql_where=sa.text("NOT folded"), sqlite_where=sa.text("folded = 0"))


def downgrade() -> None:
    op.drop_index("ix_rollup_unfolded", table_name="telemetry_rollup")
    with op.batch_alter_table("telemetry_rollup") as batch:
        batch.drop_column("folded")
