"""Each telemetry window's two chart figures, in columns written at ingest.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07

The fleet page charts the newest windows' frames inferred per second (summed over their
cameras) and worst camera p95 latency; reading them out of each window's JSON cost
the page's ``GET /fleet`` most of its time at 10,000 devices. Existing rows are filled
from their stored JSON, by the database, in one statement.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

# The same reading as control_plane.services.fleet_summary.chart_figures, on the stored
# JSON (a migration must not import the application).
_FILL = {
    "postgresql": (
        "UPDATE telemetry_window SET "
        "inference_fps = coalesce((SELECT sum((c->>'inference_fps')::float) FROM {cams}), 0), "
        "latency_p95_ms = (SELECT max((c->'inference_ms'->>'p95')::float) FROM {cams})"
    ).replace("{cams}", "json_array_elements(CASE WHEN json_typeof(payload->'cameras') = "
                        "'array' THEN payload->'cameras' END) AS c"),
    "sqlite": (
        "UPDATE telemetry_window SET "
        "inference_fps = (SELECT total(json_extract(c.value, '$.inference_fps')) FROM {cams}), "
        "latency_p95_ms = (SELECT max(json_extract(c.value, '$.inference_ms.p95')) FROM {cams})"
    ).replace("{cams}", "json_each(CASE WHEN json_type(telemetry_window.payload, '$.cameras') "
                        "= 'array' THEN telemetry_window.payload END, '$.cameras') AS c"),
}


def upgrade() -> None:
    op.add_column("telemetry_window", sa.Column("inference_fps", sa.Float(), nullable=False,
                                                server_default="0"))
    op.add_column("telemetry_window", sa.Column("latency_p95_ms", sa.Float(), nullable=True))
    bind = op.get_bind()
    bind.exec_driver_sql(_FILL[bind.dialect.name])


def downgrade() -> None:
    op.drop_column("telemetry_window", "latency_p95_ms")
    op.drop_column("telemetry_window", "inference_fps")
