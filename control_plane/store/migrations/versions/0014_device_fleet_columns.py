"""What each device's reported state says, in columns the fleet page counts with.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07

Counting releases and cameras out of every device's reported JSON cost the fleet page
most of a second at 10,000 devices; ingest now writes these beside the JSON. Existing
rows are filled from their stored JSON.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

COLUMNS = (
    sa.Column("active_release_id", sa.String(length=64), nullable=True),
    sa.Column("active_stage", sa.String(length=16), nullable=True),
    sa.Column("shadow_release_id", sa.String(length=64), nullable=True),
    sa.Column("shadow_stage", sa.String(length=16), nullable=True),
    sa.Column("cameras_up", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("cameras_not_up", sa.Integer(), nullable=False, server_default="0"),
)


def _figures(reported: Any) -> dict[str, Any]:
    # The same reading as control_plane.services.fleet_summary.reported_columns, on the
    # stored JSON as it is (a migration must not import the application).
    if isinstance(reported, str):
        reported = json.loads(reported)
    reported = reported if isinstance(reported, dict) else {}
    out: dict[str, Any] = {}
    for kind in ("active", "shadow"):
        part = reported.get(kind)
        part = part if isinstance(part, dict) else {}
        release, stage = part.get("release_id"), part.get("stage")
        out[f"{kind}_release_id"] = release if isinstance(release, str) else None
        out[f"{kind}_stage"] = stage if isinstance(stage, str) else None
    cams = reported.get("cameras")
    states = [c.get("state") for c in cams if isinstance(c, dict)] if isinstance(cams, list) else []
    out["cameras_up"] = sum(s == "up" for s in states)
    out["cameras_not_up"] = len(states) - out["cameras_up"]
    return out


def upgrade() -> None:
    for column in COLUMNS:
        op.add_column("device", column)
    bind = op.get_bind()
    device = sa.table("device", sa.column("device_id"), sa.column("reported", sa.JSON()),
                      *(sa.column(c.name) for c in COLUMNS))
    rows = bind.execute(sa.select(device.c.device_id, device.c.reported)
                        .where(device.c.reported.is_not(None))).all()
    for device_id, reported in rows:
        bind.execute(device.update().where(device.c.device_id == device_id)
                     .values(**_figures(reported)))


def downgrade() -> None:
    for column in reversed(COLUMNS):
        op.drop_column("device", column.name)
