"""Ingest by agent instance and receipt time.

- ``telemetry_window.instance`` and ``device_event.instance`` (the agent outbox's
  instance id; '' for older agents): the unique keys become (device_id, instance, seq),
  so a re-imaged agent numbering from 0 again is not taken for a copy of the old one;
- ``ix_telemetry_received``: windows are selected and aged by ``received_at`` (the
  control plane's clock), no longer by the agent's ``window_end``;
- ``telemetry_watermark``: per (device, instance) the highest seq retention merged;
  ingest refuses windows at or below it (a re-send would be counted twice).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

Written out by hand like 0001-0006; ``tests/integration/test_cp_migrations.py``
checks that the result matches the models.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_KEYS = {"telemetry_window": "uq_telemetry_device_seq", "device_event": "uq_event_device_seq"}


# Batch mode copies these two tables on SQLite (the only way to change a unique key
# there); they reference ``device``, nothing references them.
def upgrade() -> None:
    for table, key in _KEYS.items():
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("instance", sa.String(length=32), nullable=False,
                                       server_default=""))
            batch.drop_constraint(key, type_="unique")
            batch.create_unique_constraint(key, ["device_id", "instance", "seq"])
    op.create_index("ix_telemetry_received", "telemetry_window", ["received_at"])
    op.create_table(
        "telemetry_watermark",
        sa.Column("device_id", sa.String(length=63), nullable=False),
        sa.Column("instance", sa.String(length=32), nullable=False),
        sa.Column("merged_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "instance"),
    )


def downgrade() -> None:
    op.drop_table("telemetry_watermark")
    op.drop_index("ix_telemetry_received", table_name="telemetry_window")
    for table, key in _KEYS.items():
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(key, type_="unique")
            batch.create_unique_constraint(key, ["device_id", "seq"])
            batch.drop_column("instance")
