"""Initial schema: registry, releases, devices, tokens, rollouts, telemetry, events, audit.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Written out by hand (no model imports), so later model changes never rewrite
history; ``tests/integration/test_cp_migrations.py`` checks it matches the models.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _str(n: int) -> sa.String:
    return sa.String(length=n)


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _index(table: str, name: str, columns: list[str]) -> None:
    op.create_index(name, table, columns, unique=False)


def upgrade() -> None:
    op.create_table(
        "artifact",
        sa.Column("sha256", _str(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("sha256"),
    )
    op.create_table(
        "audit_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", _ts(), nullable=False),
        sa.Column("who", _str(128), nullable=False),
        sa.Column("action", _str(64), nullable=False),
        sa.Column("target", _str(256), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    _index("audit_entry", "ix_audit_entry_action", ["action"])
    _index("audit_entry", "ix_audit_entry_at", ["at"])

    op.create_table(
        "device",
        sa.Column("device_id", _str(63), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("last_seen", _ts(), nullable=True),
        sa.Column("status_at", _ts(), nullable=True),
        sa.Column("agent_version", _str(32), nullable=True),
        sa.Column("desired_release_id", _str(64), nullable=True),
        sa.Column("desired_revision", sa.BigInteger(), nullable=False),
        sa.Column("desired_mode", _str(16), nullable=True),
        sa.Column("desired_rollout_id", _str(64), nullable=True),
        sa.Column("desired_fallback_release_id", _str(64), nullable=True),
        sa.Column("desired_issued_at", _ts(), nullable=True),
        sa.Column("reported", sa.JSON(), nullable=True),
        sa.Column("reported_at", _ts(), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("device_id"),
    )
    op.create_table(
        "model",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", _str(64), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name", name="uq_model_name"),
    )
    op.create_table(
        "api_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_sha256", _str(64), nullable=False),
        sa.Column("name", _str(128), nullable=False),
        sa.Column("scopes", _str(128), nullable=False),
        sa.Column("device_id", _str(63), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["device.device_id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_sha256", name="uq_api_token_sha256"),
    )
    _index("api_token", "ix_api_token_device_id", ["device_id"])

    op.create_table(
        "device_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", _str(63), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("kind", _str(32), nullable=False),
        sa.Column("at", _ts(), nullable=False),
        sa.Column("release_id", _str(64), nullable=True),
        sa.Column("received_at", _ts(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["device.device_id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("device_id", "seq", name="uq_event_device_seq"),
    )
    _index("device_event", "ix_event_device_at", ["device_id", "at"])

    op.create_table(
        "model_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("version", _str(32), nullable=False),
        sa.Column("primary_sha256", _str(64), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("created_by", _str(128), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["model.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("model_id", "number", name="uq_model_version_number"),
    )
    _index("model_version", "ix_model_version_model_id", ["model_id"])

    op.create_table(
        "telemetry_window",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", _str(63), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("window_start", _ts(), nullable=False),
        sa.Column("window_end", _ts(), nullable=False),
        sa.Column("release_id", _str(64), nullable=True),
        sa.Column("received_at", _ts(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["device.device_id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("device_id", "seq", name="uq_telemetry_device_seq"),
    )
    _index("telemetry_window", "ix_telemetry_device_start", ["device_id", "window_start"])

    op.create_table(
        "release",
        sa.Column("release_id", _str(64), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("model_name", _str(64), nullable=False),
        sa.Column("model_version", _str(32), nullable=False),
        sa.Column("key_id", _str(16), nullable=False),
        sa.Column("primary_sha256", _str(64), nullable=False),
        sa.Column("manifest", sa.JSON(), nullable=False),
        sa.Column("created_by", _str(128), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.ForeignKeyConstraint(["model_version_id"], ["model_version.id"]),
        sa.PrimaryKeyConstraint("release_id"),
    )
    _index("release", "ix_release_model_version_id", ["model_version_id"])

    op.create_table(
        "rollout",
        sa.Column("rollout_id", _str(64), nullable=False),
        sa.Column("release_id", _str(64), nullable=False),
        sa.Column("mode", _str(16), nullable=False),
        sa.Column("state", _str(32), nullable=False),
        sa.Column("created_by", _str(128), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.ForeignKeyConstraint(["release_id"], ["release.release_id"]),
        sa.PrimaryKeyConstraint("rollout_id"),
    )
    _index("rollout", "ix_rollout_release_id", ["release_id"])

    op.create_table(
        "rollout_device",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rollout_id", _str(64), nullable=False),
        sa.Column("device_id", _str(63), nullable=False),
        sa.Column("wave", sa.Integer(), nullable=False),
        sa.Column("state", _str(32), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("detail", _str(1024), nullable=True),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["device.device_id"]),
        sa.ForeignKeyConstraint(["rollout_id"], ["rollout.rollout_id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("rollout_id", "device_id", name="uq_rollout_device"),
    )
    _index("rollout_device", "ix_rollout_device_device_id", ["device_id"])
    _index("rollout_device", "ix_rollout_device_rollout_id", ["rollout_id"])


def downgrade() -> None:
    for table in (
        "rollout_device",
        "rollout",
        "release",
        "telemetry_window",
        "model_version",
        "device_event",
        "api_token",
        "model",
        "device",
        "audit_entry",
        "artifact",
    ):
        op.drop_table(table)  # indexes go with their table
