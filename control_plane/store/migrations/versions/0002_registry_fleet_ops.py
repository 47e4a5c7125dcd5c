"""Aliases, dataset versions, device groups, drift reports, alerts, training jobs;
BIGINT row ids for telemetry windows and device events.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24

Written out by hand like 0001; ``tests/integration/test_cp_migrations.py`` checks
that the result matches the models on SQLite and PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_BIG_ID_TABLES = ("telemetry_window", "device_event")


def _str(n: int) -> sa.String:
    return sa.String(length=n)


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _big_id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _index(table: str, name: str, columns: list[str]) -> None:
    op.create_index(name, table, columns, unique=False)


def _widen_ids(to_big: bool) -> None:
    """INTEGER <-> BIGINT ids on PostgreSQL (column and its sequence); SQLite's rowid is
    64-bit already, so nothing changes there."""
    if op.get_bind().dialect.name != "postgresql":
        return
    new, old = (sa.BigInteger(), sa.Integer()) if to_big else (sa.Integer(), sa.BigInteger())
    for table in _BIG_ID_TABLES:
        op.alter_column(table, "id", type_=new, existing_type=old, existing_nullable=False)
        op.execute(
            f"ALTER SEQUENCE IF EXISTS {table}_id_seq AS {'bigint' if to_big else 'integer'}"
        )


def upgrade() -> None:
    _widen_ids(to_big=True)
    with op.batch_alter_table("model") as batch:
        batch.add_column(sa.Column("last_number", sa.Integer(), server_default="0", nullable=False))
    op.execute(
        "UPDATE model SET last_number = COALESCE("
        "(SELECT MAX(number) FROM model_version WHERE model_version.model_id = model.id), 0)"
    )
    op.create_table(
        "model_alias",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("alias", _str(64), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("updated_by", _str(128), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["model.id"]),
        sa.ForeignKeyConstraint(["model_version_id"], ["model_version.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("model_id", "alias", name="uq_model_alias"),
    )
    _index("model_alias", "ix_model_alias_model_id", ["model_id"])
    _index("model_alias", "ix_model_alias_model_version_id", ["model_version_id"])

    op.create_table(
        "dataset_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", _str(64), nullable=False),
        sa.Column("version", _str(64), nullable=False),
        sa.Column("manifest_sha256", _str(64), nullable=True),
        sa.Column("sample_count", sa.BigInteger(), nullable=False),
        sa.Column("class_counts", sa.JSON(), nullable=False),
        sa.Column("source", _str(1024), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("created_by", _str(128), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name", "version", name="uq_dataset_version"),
    )
    op.create_table(
        "device_group",
        sa.Column("name", _str(64), nullable=False),
        sa.Column("selector", sa.JSON(), nullable=False),
        sa.Column("description", _str(1024), nullable=True),
        sa.Column("created_by", _str(128), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "drift_report",
        sa.Column("id", _big_id(), nullable=False),
        sa.Column("device_id", _str(63), nullable=True),
        sa.Column("release_id", _str(64), nullable=True),
        sa.Column("window_start", _ts(), nullable=False),
        sa.Column("window_end", _ts(), nullable=False),
        sa.Column("window_count", sa.Integer(), nullable=False),
        sa.Column("sample_count", sa.BigInteger(), nullable=False),
        sa.Column("drifted", sa.Boolean(), nullable=False),
        sa.Column("statistics", sa.JSON(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["device.device_id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    _index("drift_report", "ix_drift_report_device_created", ["device_id", "created_at"])
    _index("drift_report", "ix_drift_report_release_id", ["release_id"])

    op.create_table(
        "alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", _str(32), nullable=False),
        sa.Column("severity", _str(16), nullable=False),
        sa.Column("state", _str(16), nullable=False),
        sa.Column("message", _str(1024), nullable=False),
        sa.Column("device_id", _str(63), nullable=True),
        sa.Column("release_id", _str(64), nullable=True),
        sa.Column("drift_report_id", _big_id(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.Column("updated_by", _str(128), nullable=True),
        sa.ForeignKeyConstraint(["device_id"], ["device.device_id"]),
        sa.ForeignKeyConstraint(["drift_report_id"], ["drift_report.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    _index("alert", "ix_alert_device_id", ["device_id"])
    _index("alert", "ix_alert_state_created", ["state", "created_at"])

    op.create_table(
        "training_job",
        sa.Column("job_id", _str(64), nullable=False),
        sa.Column("model_name", _str(64), nullable=False),
        sa.Column("trigger", _str(32), nullable=False),
        sa.Column("status", _str(16), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("stage", _str(64), nullable=True),
        sa.Column("message", _str(1024), nullable=True),
        sa.Column("dataset_version", _str(128), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("result_version", _str(32), nullable=True),
        sa.Column("created_by", _str(128), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("started_at", _ts(), nullable=True),
        sa.Column("finished_at", _ts(), nullable=True),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("job_id"),
    )
    _index("training_job", "ix_training_job_model_name", ["model_name"])
    _index("training_job", "ix_training_job_status_created", ["status", "created_at"])


def downgrade() -> None:
    for table in (
        "training_job",
        "alert",
        "drift_report",
        "device_group",
        "dataset_version",
        "model_alias",
    ):
        op.drop_table(table)
    with op.batch_alter_table("model") as batch:
        batch.drop_column("last_number")
    _widen_ids(to_big=False)
